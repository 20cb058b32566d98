#!/usr/bin/env bash
# tests/train/test_train.sh — end-to-end checks of the training driver (DESIGN §5 command line, exit
# codes and resume policy, §6 output folder, §7 determinism), run through the iqtrain binary.
#
#   usage: tests/train/test_train.sh IQTRAIN_BINARY REPO_ROOT
#
# Every check asserts an exit code and a part of stderr, stdout or the files written, prints one line
# ("ok" or "FAIL" with the reasons), and the script ends with "N passed, M failed" (exit status 1 when
# any failed; harness in tests/lib/harness.sh). Any AddressSanitizer / UndefinedBehaviorSanitizer report
# on stderr fails the check that produced it, so the script also serves the sanitizer build.
#
# Kept fast (well under 3 minutes on 2 cores, also under ASan): the tiny preset, a 300-id tokenizer
# trained on 400 rows of data/arith, batches of 4 rows, tens of steps at most.
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init train "$@"

# want_py CMD ARGS...: the helper below prints "ok" or the problems, one a line
want_py() {
    local r
    r=$("$PY" "$W/h.py" "$@" 2>&1)
    if [ "$r" != ok ]; then
        local l
        while IFS= read -r l; do WHY+=("$1: $l"); done < <(printf '%s\n' "$r" | head -8)
    fi
}

# ---------------------------------------------------------------------------------------------------
# Python helper: metrics rows, the output folder's layout, safetensors files

cat >"$W/h.py" <<'EOF'
import hashlib, json, math, os, struct, sys, zlib

IGNORED = {"elapsed_s", "tokens_per_s"}  # DESIGN §7: every other field is bit-exact
TRAIN = ["type", "step", "epoch", "elapsed_s", "tokens", "loss", "nll", "td", "lambda", "lr", "grad_norm",
         "reward_mean", "reward_abs_mean", "reward_abs_max", "token_accuracy", "tokens_per_s"]
EVAL = ["type", "step", "epoch", "elapsed_s", "loss", "nll", "td", "token_accuracy", "ppl"]
MODEL_FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "vocab.json",
               "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]
problems = []

def bad(msg):
    problems.append(msg)

def rows(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]

def strip(r):
    return {k: v for k, v in r.items() if k not in IGNORED}

def train_rows(path):
    return [r for r in rows(path) if r.get("type") == "train"]

def st_read(path):
    """safetensors: 8-byte LE header length, JSON header, data. -> {name: (dtype, shape, bytes)}, metadata"""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", None)
    data = b[8 + n:]
    out = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}
    return out, meta

def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-30)

def cmd_same(a, b):
    """identical metrics rows, all fields but elapsed_s and tokens_per_s"""
    ra, rb = rows(a), rows(b)
    if len(ra) != len(rb):
        bad(f"{len(ra)} rows vs {len(rb)} rows")
    for i, (x, y) in enumerate(zip(ra, rb)):
        if strip(x) != strip(y):
            bad(f"row {i + 1} differs: {json.dumps(strip(x))[:300]} vs {json.dumps(strip(y))[:300]}")
            break

def cmd_layout(run, data, nsteps):
    """check 1: run.json, metrics.jsonl, rotated checkpoints and final/ of the 20-step reference run"""
    nsteps = int(nsteps)
    rj = json.load(open(os.path.join(run, "run.json")))
    for k in ("options", "data", "data_sha256", "version", "build"):
        if k not in rj:
            bad(f"run.json lacks {k}")
    o = rj.get("options", {})
    if o.get("lambda") != 0.1 or o.get("max-steps") != nsteps or o.get("save-every") != 5:
        bad(f"run.json options: lambda {o.get('lambda')} max-steps {o.get('max-steps')} save-every {o.get('save-every')}")
    sha = hashlib.sha256(open(data, "rb").read()).hexdigest()
    if sha not in json.dumps(rj.get("data_sha256")):
        bad(f"run.json data_sha256 lacks {sha}: {rj.get('data_sha256')}")
    if not isinstance(rj.get("build"), dict) or "threads" not in rj["build"]:
        bad(f"run.json build: {rj.get('build')}")
    m = rows(os.path.join(run, "metrics.jsonl"))
    tr = [r for r in m if r["type"] == "train"]
    if [r["step"] for r in tr] != list(range(1, nsteps + 1)):
        bad(f"train steps {[r['step'] for r in tr]}")
    for r in tr:
        if sorted(r) != sorted(TRAIN):
            bad(f"train row fields {sorted(r)}")
            break
        if not all(isinstance(r[k], (int, float)) and math.isfinite(r[k]) for k in TRAIN[1:]):
            bad(f"train row with a non-number: {r}")
            break
    if tr and tr[0]["lambda"] != tr[-1]["lambda"] or abs(tr[0]["lambda"] - 0.1) > 1e-6:
        bad(f"lambda {tr[0]['lambda']}")
    if tr and not tr[-1]["loss"] < tr[0]["loss"]:
        bad(f"loss did not fall: step 1 {tr[0]['loss']}, step {nsteps} {tr[-1]['loss']}")
    if tr and not all(tr[i]["tokens"] < tr[i + 1]["tokens"] for i in range(len(tr) - 1)):
        bad("tokens is not increasing")
    ev = [r for r in m if r["type"] == "eval"]
    if [r["step"] for r in ev] != [10, 20]:
        bad(f"eval steps {[r['step'] for r in ev]}")
    for r in ev:
        if sorted(r) != sorted(EVAL):
            bad(f"eval row fields {sorted(r)}")
            break
        if abs(r["ppl"] - math.exp(r["nll"])) > 1e-6 * r["ppl"] or rel(r["loss"], r["nll"] + 0.1 * r["td"]) > 1e-6:
            bad(f"eval row: ppl != exp(nll) or loss != nll + 0.1 td: {r}")
    ck = [r for r in m if r["type"] == "ckpt"]
    if [(r["step"], r.get("path")) for r in ck] != [(s, f"checkpoint-{s}") for s in (5, 10, 15, 20)]:
        bad(f"ckpt rows {[(r['step'], r.get('path')) for r in ck]}")
    if not m or m[-1]["type"] != "final" or sum(r["type"] == "final" for r in m) != 1 or m[-1]["step"] != nsteps:
        bad(f"last row {m[-1] if m else None} (one final row, last)")
    entries = sorted(os.listdir(run))
    want = ["checkpoint-10", "checkpoint-15", "checkpoint-20", "final", "metrics.jsonl", "run.json"]
    if entries != want:
        bad(f"folder holds {entries}, expected {want}")
    for s in (10, 15, 20):
        d = os.path.join(run, f"checkpoint-{s}")
        files = MODEL_FILES + ["optimizer.safetensors", "trainer_state.json"]
        missing = [f for f in files if not os.path.isfile(os.path.join(d, f))]
        if missing:
            bad(f"{d} lacks {missing}")
            continue
        c = json.load(open(os.path.join(d, "config.json")))
        iq = c.get("iqtrain", {})
        if c.get("model_type") != "gpt2" or c.get("architectures") != ["GPT2LMHeadModel"] or \
                iq.get("lambda") != 0.1 or iq.get("gamma") != 0.99:  # written as given, not as 0.100000001
            bad(f"{d}/config.json: model_type {c.get('model_type')} architectures {c.get('architectures')} iqtrain {iq}")
        ts = json.load(open(os.path.join(d, "trainer_state.json")))
        if ts.get("step") != s:
            bad(f"{d}/trainer_state.json step {ts.get('step')}")
        crcs = ts.get("files", {})
        for f in files[:-1]:
            got = zlib.crc32(open(os.path.join(d, f), "rb").read())
            if crcs.get(f) != got:
                bad(f"{d}/trainer_state.json: CRC of {f} is {crcs.get(f)}, the file's is {got}")
        t, meta = st_read(os.path.join(d, "model.safetensors"))
        if meta != {"format": "pt"} or "wte.weight" not in t or "h.1.mlp.c_fc.weight" not in t or "lm_head.weight" in t:
            bad(f"{d}/model.safetensors: metadata {meta}, tensors {sorted(t)[:5]}...")
        if t["h.0.attn.c_attn.weight"][1] != [64, 192] or any(v[0] != "F32" for v in t.values()):
            bad(f"{d}/model.safetensors: c_attn shape {t['h.0.attn.c_attn.weight'][1]} or not F32")
        o, _ = st_read(os.path.join(d, "optimizer.safetensors"))
        if len(o) != 2 * len(t):
            bad(f"{d}/optimizer.safetensors: {len(o)} tensors for {len(t)} parameters")
    fin = os.path.join(run, "final")
    missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(fin, f))]
    if missing:
        bad(f"final/ lacks {missing}")
    else:
        c = json.load(open(os.path.join(fin, "config.json")))
        if c.get("model_type") != "gpt2" or "iqtrain" not in c or c.get("n_layer") != 2 or c.get("vocab_size") != 300:
            bad(f"final/config.json: {c}")
        # final = the weights of the last checkpoint (same step)
        a, _ = st_read(os.path.join(fin, "model.safetensors"))
        b, _ = st_read(os.path.join(run, "checkpoint-20", "model.safetensors"))
        if a != b:
            bad("final/model.safetensors differs from checkpoint-20's")

def cmd_close(a, b, tol, nsteps):
    """check 5: same steps and tokens; loss, nll, td, grad_norm within tol (relative)"""
    ta, tb = train_rows(a), train_rows(b)
    if [r["step"] for r in ta] != list(range(1, int(nsteps) + 1)) or [r["step"] for r in tb] != [r["step"] for r in ta]:
        bad(f"steps {[r['step'] for r in ta]} vs {[r['step'] for r in tb]}")
    for x, y in zip(ta, tb):
        if x["tokens"] != y["tokens"]:
            bad(f"step {x['step']}: tokens {x['tokens']} vs {y['tokens']} (not the same rows)")
        for k in ("loss", "nll", "td", "grad_norm", "reward_abs_mean"):
            if rel(x[k], y[k]) > float(tol):
                bad(f"step {x['step']}: {k} {x[k]} vs {y[k]}")

def cmd_tokens(a, b, nsteps):
    """check 4: the tokens field of the first nsteps train rows is equal"""
    n = int(nsteps)
    ta, tb = [r["tokens"] for r in train_rows(a)][:n], [r["tokens"] for r in train_rows(b)][:n]
    if len(ta) != n or ta != tb:
        bad(f"tokens {ta} vs {tb}")
    la = {r["lambda"] for r in train_rows(a)}
    lb = {r["lambda"] for r in train_rows(b)}
    if la == lb:
        bad(f"both runs have lambda {la}")

def cmd_dry(path, run_metrics):
    """check 6: --dry-run's JSON; its first batch is step 1's (same rows at the same initial weights)"""
    d = json.load(open(path))
    for k in ("options", "parameters", "data", "steps_per_epoch", "first_batch"):
        if k not in d:
            bad(f"no {k}")
    if not problems:
        if d["options"].get("batch-size") != 4 or d["options"].get("lambda") != 0.1:
            bad(f"options {d['options']}")
        if not any(k.startswith("memory") for k in d):
            bad(f"no memory plan: {sorted(d)}")
        if d["parameters"] != 127488:  # tiny: L2 C64 ctx 128, vocab 300
            bad(f"parameters {d['parameters']}")
        dd = d["data"]
        if not isinstance(dd, dict) or dd.get("rows") != 399 or not dd.get("tokens"):
            bad(f"data {dd}")
        if d["steps_per_epoch"] != math.ceil(dd.get("train_rows", 0) / 4) or dd.get("train_rows") != 399 - 40:
            bad(f"steps_per_epoch {d['steps_per_epoch']} for {dd.get('train_rows')} train rows of batch 4")
        fb = d["first_batch"]
        if not (0 < fb.get("reward_abs_mean", 0) <= fb.get("reward_abs_max", 0)):
            bad(f"first_batch |r| statistics {fb}")
        t1 = train_rows(run_metrics)[0]
        for k in ("loss", "nll", "td", "reward_abs_mean", "reward_abs_max"):
            if rel(fb.get(k, 0), t1[k]) > 1e-5:
                bad(f"first_batch {k} {fb.get(k)} but step 1 of the run has {t1[k]}")

def cmd_epochs(path, spe, supervised):
    """every row once per epoch: the tokens seen at the end of epoch e are e times the supervised tokens"""
    tr = train_rows(path)
    spe, sup = int(spe), int(supervised)
    ends = {r["step"]: r["tokens"] for r in tr if r["step"] % spe == 0}
    want = {e * spe: e * sup for e in range(1, len(tr) // spe + 1)}
    if not want or ends != want:
        bad(f"tokens at the epoch ends {ends}, expected {want}")
    eps = [r["epoch"] for r in tr]
    if any(abs(x - (i + 1) / spe) > 1e-6 for i, x in enumerate(eps)):
        bad(f"epoch fields {eps}")

def cmd_contiguous(path, nsteps):
    """check 10: train rows 1..nsteps exactly once, one ckpt row at the stop step, one final row last"""
    m = rows(path)
    steps = [r["step"] for r in m if r["type"] == "train"]
    if steps != list(range(1, int(nsteps) + 1)):
        bad(f"train steps {steps}")
    if m[-1]["type"] != "final" or sum(r["type"] == "final" for r in m) != 1:
        bad("not one final row at the end")

def cmd_eval(j1, j2, j3, model, supervised):
    """check 11: eval --json with the model's lambda/gamma, with --lambda, with --lambda and --gamma"""
    a, b, c = (json.load(open(p)) for p in (j1, j2, j3))
    sec = json.load(open(os.path.join(model, "config.json")))["iqtrain"]
    for j in (a, b, c):
        for k in ("nll", "td", "loss", "tokens", "token_accuracy", "ppl", "lambda", "gamma"):
            if not isinstance(j.get(k), (int, float)):
                bad(f"no number {k} in {j}")
                return
        if rel(j["loss"], j["nll"] + j["lambda"] * j["td"]) > 1e-6 or rel(j["ppl"], math.exp(j["nll"])) > 1e-6:
            bad(f"loss != nll + lambda td or ppl != exp(nll): {j}")
        if j["tokens"] != int(supervised) or not 0 <= j["token_accuracy"] <= 1:
            bad(f"tokens {j['tokens']} (all {supervised} supervised tokens), token_accuracy {j['token_accuracy']}")
    if rel(a["lambda"], sec["lambda"]) > 1e-7 or rel(a["gamma"], sec["gamma"]) > 1e-7:
        bad(f"default lambda/gamma {a['lambda']}/{a['gamma']}, the model's section has {sec['lambda']}/{sec['gamma']}")
    if rel(b["lambda"], 0.5) > 1e-7 or b["gamma"] != a["gamma"] or b["td"] != a["td"] or b["nll"] != a["nll"]:
        bad(f"--lambda 0.5: lambda {b['lambda']} gamma {b['gamma']} td {b['td']} (td {a['td']} expected)")
    if rel(c["lambda"], 0.5) > 1e-7 or rel(c["gamma"], 0.9) > 1e-7 or c["td"] == a["td"] or c["nll"] != a["nll"]:
        bad(f"--lambda 0.5 --gamma 0.9: lambda {c['lambda']} gamma {c['gamma']} td {c['td']}")

def cmd_st_same(a, b):
    """the same tensors (names, dtypes, shapes, raw bytes)"""
    ta, _ = st_read(a)
    tb, _ = st_read(b)
    if sorted(ta) != sorted(tb):
        bad(f"tensor names differ: {sorted(set(ta) ^ set(tb))}")
    for k in ta:
        if k in tb and ta[k] != tb[k]:
            bad(f"tensor {k} differs ({ta[k][0]} {ta[k][1]} vs {tb[k][0]} {tb[k][1]})")

def cmd_bf16(final, ckpt):
    """check 12: final/ in BF16 = the checkpoint's F32 weights rounded to nearest even; checkpoint in F32"""
    tf, _ = st_read(final)
    tc, _ = st_read(ckpt)
    if sorted(tf) != sorted(tc):
        bad("tensor names differ")
    for k, (dt, shape, data) in tf.items():
        cdt, cshape, cdata = tc[k]
        if dt != "BF16" or cdt != "F32" or shape != cshape:
            bad(f"{k}: final {dt} {shape}, checkpoint {cdt} {cshape}")
            continue
        f32 = struct.unpack(f"<{len(cdata) // 4}I", cdata)
        bf = struct.unpack(f"<{len(data) // 2}H", data)
        rne = [((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF for u in f32]
        if list(bf) != rne:
            trunc = [u >> 16 for u in f32]
            bad(f"{k}: BF16 values are not the F32 ones rounded to nearest even"
                + (" (they are truncated)" if list(bf) == trunc else ""))

globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
print("\n".join(problems) if problems else "ok")
EOF

# ---------------------------------------------------------------------------------------------------
# data, tokenizer, the common options

DATA=$W/data.jsonl
zcat "$ROOT/data/arith/train.jsonl.gz" | head -n 400 >"$DATA"
run "$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$DATA"
want_rc 0
want_file "$W/tok/tokenizer.json"
done_check "setup: train-tokenizer --vocab-size 300 on 400 rows"
[ "$FAIL" -eq 0 ] || finish # every run below needs the tokenizer
TOK=$W/tok

BASE=(--preset tiny --tokenizer "$TOK" --batch-size 4 --threads 2)
# the reference run of check 1
REF=("${BASE[@]}" --lambda 0.1 --log-every 1 --save-every 5 --eval-every 10 --eval-split 0.1)
# last_step RUN: the step of the last train row
last_step() { "$PY" -c 'import json,sys
s=[json.loads(l)["step"] for l in open(sys.argv[1]) if "\"train\"" in l]
print(s[-1] if s else 0)' "$1/metrics.jsonl"; }

# ---------------------------------------------------------------------------------------------------
# 1. the output folder (DESIGN §6)

run "$BIN" "${REF[@]}" --max-steps 20 --out A "$DATA"
want_rc 0
want_err "done: 20 steps"
want_py layout A "$DATA" 20
done_check "1. 20 steps: run.json, metrics rows, checkpoints 10/15/20 (keep-last 3), final/, loss falls"

# ---------------------------------------------------------------------------------------------------
# 2. determinism (§7)

run "$BIN" "${REF[@]}" --max-steps 20 --out A2 "$DATA"
want_rc 0
want_py same A/metrics.jsonl A2/metrics.jsonl
want_same_file A/final/model.safetensors A2/final/model.safetensors
done_check "2. the same command twice: identical metrics rows and final weights"

# ---------------------------------------------------------------------------------------------------
# 3. resume is bit-exact (§7)

run "$BIN" "${REF[@]}" --max-steps 10 --out R "$DATA"
want_rc 0
want_file R/checkpoint-10/trainer_state.json
run "$BIN" "${REF[@]}" --max-steps 20 --resume auto --out R "$DATA"
want_rc 0
want_err "resuming R/checkpoint-10 at step 10"
not_err "bit-exact"
want_py same A/metrics.jsonl R/metrics.jsonl
want_same_file A/final/model.safetensors R/final/model.safetensors
done_check "3. 10 steps, then --resume auto to 20: the same metrics rows and weights as 20 straight"

cp -r R Rx
run "$BIN" "${REF[@]}" --max-steps 20 --resume Rx/checkpoint-10 "$DATA"
want_rc 0
want_err "resuming Rx/checkpoint-10 at step 10"
want_py same A/metrics.jsonl Rx/metrics.jsonl
want_same_file A/final/model.safetensors Rx/final/model.safetensors
done_check "3. --resume RUN/checkpoint-10 (explicit folder, --out implied): the same rows as 20 straight"

# Epochs: 10 rows in batches of 4 are 3 steps an epoch (4, 4, then 2 rows); every row is seen once per
# epoch, and a resume in the middle of an epoch continues the same order across the next boundaries.
# A constant schedule: a cosine one depends on --max-steps, which differs between the two invocations.
SMALL=$W/small.jsonl
sed -n '101,110p' "$DATA" >"$SMALL"
SSUP=$("$BIN" tokenize --tokenizer "$TOK" --data "$SMALL" --max-seq-len 128 --json 2>/dev/null |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["supervised"])')
EP=("${BASE[@]}" --log-every 1 --save-every 4 --lr-schedule constant --warmup 2 --lr 1e-3)
run "$BIN" "${EP[@]}" --max-steps 9 --out E1 "$SMALL"
want_rc 0
want_py epochs E1/metrics.jsonl 3 "$SSUP"
run "$BIN" "${EP[@]}" --max-steps 5 --out E2 "$SMALL"
want_rc 0
run "$BIN" "${EP[@]}" --max-steps 9 --resume auto --out E2 "$SMALL"
want_rc 0
want_err "resuming E2/checkpoint-4 at step 4"
want_py same E1/metrics.jsonl E2/metrics.jsonl
done_check "3. 3 epochs of a partial last batch, resumed mid-epoch: each row once per epoch, bit-exact rows"

# ---------------------------------------------------------------------------------------------------
# 4. lambda does not change the data order

run "$BIN" "${REF[@]}" --lambda 0 --max-steps 10 --save-every 100 --out L0 "$DATA"
want_rc 0
want_py tokens A/metrics.jsonl L0/metrics.jsonl 10
done_check "4. lambda 0 and lambda 0.1, same seed: the same supervised tokens at every step"

# ---------------------------------------------------------------------------------------------------
# 5. gradient accumulation: an optimizer step sees the same rows, cut into micro-batches

GA=(--preset tiny --tokenizer "$TOK" --threads 2 --log-every 1 --max-steps 5 --save-every 100)
run "$BIN" "${GA[@]}" --batch-size 8 --grad-accum 1 --out G1 "$DATA"
want_rc 0
run "$BIN" "${GA[@]}" --batch-size 4 --grad-accum 2 --out G2 "$DATA"
want_rc 0
want_py close G1/metrics.jsonl G2/metrics.jsonl 1e-5 5
done_check "5. --batch-size 8 vs --batch-size 4 --grad-accum 2: loss and grad_norm within 1e-5 at every step"

# ---------------------------------------------------------------------------------------------------
# 6. --dry-run

run "$BIN" "${REF[@]}" --max-steps 20 --dry-run --out DRY "$DATA"
want_rc 0
want_no DRY
cp "$W/out" dry.json
want_py dry dry.json A/metrics.jsonl
done_check "6. --dry-run: JSON with options, parameters, memory, data, steps_per_epoch, first batch |r|; no --out"

# ---------------------------------------------------------------------------------------------------
# 7. the resume policy (§5)

run "$BIN" "${REF[@]}" --max-steps 20 --out A "$DATA"
want_rc 73
want_err "A holds another run"
want_eq "$(grep -c . A/metrics.jsonl)" "$(grep -c . A2/metrics.jsonl)" "rows of A/metrics.jsonl after the refusal"
done_check "7. --out holding another run without --resume: exit 73, the run untouched"

run "$BIN" "${REF[@]}" --max-steps 20 --resume auto "$DATA"
want_rc 64
want_err "--resume auto needs --out"
done_check "7. --resume auto without --out: exit 64"

cp -r A P
run "$BIN" "${REF[@]}" --max-steps 20 --resume auto --out P --lambda 0.2 "$DATA"
want_rc 64
want_err "changed options: lambda"
run "$BIN" "${REF[@]}" --max-steps 20 --resume auto --out P --seed 7 "$DATA"
want_rc 64
want_err "changed options: seed"
want_py same A/metrics.jsonl P/metrics.jsonl
done_check "7. resuming with a changed --lambda or --seed: exit 64 naming the option"

run "$BIN" "${REF[@]}" --max-steps 20 --resume A/checkpoint-15 --out N --seed 7 "$DATA"
want_rc 64
want_err "changed options: seed"
want_no N
done_check "7. --resume RUN/checkpoint-15 into a new --out with a changed --seed: exit 64 (checked against RUN)"

run "$BIN" "${REF[@]}" --max-steps 15 --resume auto --out P "$DATA"
want_rc 64
want_err "P/checkpoint-20 is at step 20, past --max-steps 15"
want_py same A/metrics.jsonl P/metrics.jsonl
done_check "7. --resume auto with --max-steps below the newest checkpoint's step: exit 64, the run untouched"

cp -r E1 E3
cp "$SMALL" small.orig
sed -i '1s/Question/Query/' "$SMALL"
! cmp -s small.orig "$SMALL" || WHY+=("the data file did not change")
run "$BIN" "${EP[@]}" --max-steps 12 --resume auto --out E3 "$SMALL"
want_rc 64
want_err "changed options: data"
want_py same E1/metrics.jsonl E3/metrics.jsonl
done_check "7. resuming on a data file whose contents changed (same name): exit 64 naming data"

run "$BIN" "${REF[@]}" --max-steps 22 --resume auto --out P "$DATA"
want_rc 0
want_err "resuming P/checkpoint-20 at step 20"
want_eq "$(last_step P)" 22 "last step"
run "$BIN" "${REF[@]}" --max-steps 23 --threads 1 --resume auto --out P "$DATA"
want_rc 0
want_err "no longer bit-exact"
want_eq "$(last_step P)" 23 "last step"
done_check "7. resuming with a changed --max-steps, then --threads (with a bit-exactness warning): accepted"

# ---------------------------------------------------------------------------------------------------
# 8. corrupt checkpoints

cp -r A C
"$PY" - C/checkpoint-20/model.safetensors <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(b)
EOF
run "$BIN" "${REF[@]}" --max-steps 20 --resume auto --out C "$DATA"
want_rc 0
want_err "warning: C/checkpoint-20/model.safetensors"
want_err "resuming C/checkpoint-15 at step 15"
want_py same A/metrics.jsonl C/metrics.jsonl
want_same_file A/checkpoint-20/model.safetensors C/checkpoint-20/model.safetensors
done_check "8. --resume auto with a corrupt newest checkpoint: warns naming the file, resumes the previous one"

cp -r A T
truncate -s 1000 T/checkpoint-15/optimizer.safetensors
run "$BIN" "${REF[@]}" --max-steps 20 --resume T/checkpoint-15 --out T "$DATA"
want_rc 65
want_err "T/checkpoint-15/optimizer.safetensors"
want_py same A/metrics.jsonl T/metrics.jsonl
done_check "8. --resume DIR with a truncated optimizer.safetensors: exit 65 naming the file"

# ---------------------------------------------------------------------------------------------------
# 9. divergence: a hostile learning rate turns the loss into NaN within a few steps

run "$BIN" "${BASE[@]}" --log-every 1 --save-every 1 --max-steps 20 --lr 1e10 --out D "$DATA"
want_rc 75
K=$(last_step D)
want_err "diverged at step $((K + 1))"
want_no D/final
[ "$K" -ge 1 ] || WHY+=("no good step before the divergence")
want_file "D/checkpoint-$K/trainer_state.json"
run "$BIN" "${BASE[@]}" --log-every 1 --save-every 1 --max-steps 20 --lr 1e10 --resume auto --out D "$DATA"
want_rc 75
want_err "resuming D/checkpoint-$K at step $K"
want_err "diverged at step $((K + 1))"
done_check "9. --lr 1e10: exit 75 naming the step; the last good checkpoint verifies and resumes"

# ---------------------------------------------------------------------------------------------------
# 10. signals: the first SIGINT/SIGTERM finishes the step, saves and exits 130/143

signal_check() { # SIGNAL EXPECTED_RC
    local dir=S$1 i
    "$BIN" "${BASE[@]}" --log-every 1 --save-every 1000 --max-steps 2000 --out "$dir" "$DATA" </dev/null \
        >"$W/out" 2>"$W/err" &
    BGPID=$!
track_pid "$BGPID"
    for ((i = 0; i < 1200; i++)); do # up to 120 s
        [ "$(wc -l 2>/dev/null <"$dir/metrics.jsonl")" -ge 3 ] 2>/dev/null && break
        kill -0 "$BGPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -s "$1" "$BGPID"
    wait "$BGPID"
    RC=$?
    BGPID=
    san_check
    want_rc "$2"
    local k
    k=$(last_step "$dir")
    [ "$k" -ge 3 ] && [ "$k" -lt 2000 ] || WHY+=("stopped at step $k")
    want_err "saved checkpoint-$k"
    want_file "$dir/checkpoint-$k/trainer_state.json"
    run "$BIN" "${BASE[@]}" --log-every 1 --save-every 1000 --max-steps $((k + 2)) --resume auto --out "$dir" "$DATA"
    want_rc 0
    want_err "resuming $dir/checkpoint-$k at step $k"
    want_py contiguous "$dir/metrics.jsonl" $((k + 2))
}
signal_check INT 130
done_check "10. SIGINT: exit 130 with checkpoint-STEP of the stop step; --resume auto continues from it"
signal_check TERM 143
done_check "10. SIGTERM: exit 143 with checkpoint-STEP of the stop step; --resume auto continues from it"

# A second signal exits at once, leaving the last complete checkpoint (here none, or the one of the first
# signal when the two arrive together and the kernel merges them): the folder resumes either way.
"$BIN" "${BASE[@]}" --log-every 1 --save-every 1000 --max-steps 2000 --out S2 "$DATA" </dev/null >"$W/out" 2>"$W/err" &
BGPID=$!
track_pid "$BGPID"
for ((i = 0; i < 1200; i++)); do
    [ "$(wc -l 2>/dev/null <S2/metrics.jsonl)" -ge 2 ] 2>/dev/null && break
    kill -0 "$BGPID" 2>/dev/null || break
    sleep 0.1
done
kill -s INT "$BGPID"
sleep 0.01
kill -s INT "$BGPID"
wait "$BGPID"
RC=$?
BGPID=
san_check
want_rc 130
K=$(last_step S2)
run "$BIN" "${BASE[@]}" --log-every 1 --save-every 1000 --max-steps $((K + 2)) --resume auto --out S2 "$DATA"
want_rc 0
not_err "falling back"
want_py contiguous S2/metrics.jsonl $((K + 2))
done_check "10. two SIGINTs: exit 130; the folder resumes (from its last complete checkpoint, or step 0)"

# ---------------------------------------------------------------------------------------------------
# 11. eval, and training from a model folder

# 50 rows (eval is a forward pass over every row: the whole file would dominate the runtime under ASan)
EV=$W/eval.jsonl
head -n 50 "$DATA" >"$EV"
SUP=$("$BIN" tokenize --tokenizer "$TOK" --data "$EV" --max-seq-len 128 --json 2>/dev/null |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["supervised"])')
run "$BIN" eval --model A/final --data "$EV" --json --threads 2
want_rc 0
cp "$W/out" e1.json
run "$BIN" eval --model A/final --data "$EV" --json --threads 2 --lambda 0.5
want_rc 0
cp "$W/out" e2.json
run "$BIN" eval --model A/final --data "$EV" --json --threads 2 --lambda 0.5 --gamma 0.9
want_rc 0
cp "$W/out" e3.json
want_py eval e1.json e2.json e3.json A/final "$SUP"
done_check "11. eval --json: nll, td, loss, tokens, accuracy, ppl; lambda/gamma from the model, or the options"

run "$BIN" eval --model "$W/nonexistent" --data "$EV" --json
want_rc 66
want_err "$W/nonexistent"
done_check "11. eval on a missing model folder: exit 66 naming it"

run "$BIN" --model A/final --max-steps 0 --batch-size 4 --threads 2 --out M0 "$DATA"
want_rc 0
want_file M0/final/tokenizer.json
want_py st-same A/final/model.safetensors M0/final/model.safetensors
done_check "11. --model RUN/final --max-steps 0: final/ with the input's tensors"

# ---------------------------------------------------------------------------------------------------
# 12. --save-dtype bf16 applies to final/ only

run "$BIN" "${BASE[@]}" --max-steps 3 --save-every 3 --save-dtype bf16 --out BF "$DATA"
want_rc 0
grep -q '"torch_dtype":[[:space:]]*"bfloat16"' BF/final/config.json || WHY+=("final/config.json torch_dtype is not bfloat16")
want_py bf16 BF/final/model.safetensors BF/checkpoint-3/model.safetensors
done_check "12. --save-dtype bf16: final/ holds BF16 (rounded to nearest even), checkpoints stay F32"

# ---------------------------------------------------------------------------------------------------
finish
