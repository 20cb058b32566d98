#!/usr/bin/env bash
# tests/train/test_controls.sh — the controls of issue #16 and the generation eval during training, through
# the iqtrain binary: --label-smoothing and --entropy-coef (recorded in run.json and config.json's "iqtrain"
# section, part of the logged loss but not of nll, checked on resume like the other loss options, an older
# run.json without them resumes when they are off), and --eval-generation-every epoch ("generation" rows in
# metrics.jsonl at each epoch's end and after the last step, with an eval row at the same step; the same rows
# from two runs and from a run resumed at an epoch's end; the rows of the last step equal `iqtrain eval` of
# final/ on the same rows).
# The exactness of the loss and its gradients is tests/reference's (PyTorch) and test_gradcheck's.
#
#   usage: tests/train/test_controls.sh IQTRAIN_BINARY REPO_ROOT
#
# With --online-mix, the controls stay on the expert rows (the first step's value term is the same as without them).
#
# Small: the tiny preset, 12 training rows (3 steps an epoch), 2 epochs, generation on 3 eval rows of 8 tokens.
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init controls "$@"

# want_py CHECK ARGS...: the helper below prints "ok" or the problems, one a line
want_py() {
    local r l
    r=$("$PY" "$W/h.py" "$@" 2>&1)
    [ "$r" = ok ] || while IFS= read -r l; do WHY+=("$1: $l"); done < <(printf '%s\n' "$r" | head -8)
}

cat >"$W/h.py" <<'EOF'
import json, math, sys

IGNORED = {"elapsed_s", "tokens_per_s"}  # DESIGN §7: every other field is bit-exact
problems = []

def bad(msg):
    problems.append(msg)

def rows(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]

def strip(r):
    return {k: v for k, v in r.items() if k not in IGNORED}

def cmd_same(a, b):
    """identical metrics rows, all fields but the times"""
    ra, rb = [strip(r) for r in rows(a)], [strip(r) for r in rows(b)]
    if ra != rb:
        i = next((i for i, (x, y) in enumerate(zip(ra, rb)) if x != y), min(len(ra), len(rb)))
        bad(f"{len(ra)} vs {len(rb)} rows; row {i + 1}: {ra[i] if i < len(ra) else None} vs {rb[i] if i < len(rb) else None}")

def cmd_recorded(run, eps, beta):
    """run.json's options and the "iqtrain" section of every model folder carry the controls"""
    o = json.load(open(f"{run}/run.json"))["options"]
    if o.get("label-smoothing") != float(eps) or o.get("entropy-coef") != float(beta):
        bad(f"run.json options: label-smoothing {o.get('label-smoothing')} entropy-coef {o.get('entropy-coef')}")
    for d in ("checkpoint-3", "checkpoint-6", "final"):
        s = json.load(open(f"{run}/{d}/config.json")).get("iqtrain", {})
        if s.get("label_smoothing") != float(eps) or s.get("entropy_coef") != float(beta):
            bad(f"{d}/config.json iqtrain section: {s}")

def cmd_objective(run, lam):
    """train and eval rows: loss is the objective (not nll + lambda td), nll the plain negative log-likelihood"""
    m = rows(f"{run}/metrics.jsonl")
    for r in m:
        if r["type"] in ("train", "eval") and abs(r["loss"] - (r["nll"] + float(lam) * r["td"])) < 1e-3:
            bad(f"{r['type']} row of step {r['step']}: loss {r['loss']} = nll + lambda td: the controls are not in it")
            break
    for r in m:
        if r["type"] == "eval" and abs(r["ppl"] - math.exp(r["nll"])) > 1e-6 * r["ppl"]:
            bad(f"eval row: ppl {r['ppl']} != exp(nll {r['nll']})")

def cmd_plain(run, lam):
    """without the controls: loss = nll + lambda td as before"""
    for r in rows(f"{run}/metrics.jsonl"):
        if r["type"] == "train" and abs(r["loss"] - (r["nll"] + float(lam) * r["td"])) > 1e-6 * abs(r["loss"]):
            bad(f"train row of step {r['step']}: loss {r['loss']} != nll + lambda td")

SETTINGS = [("greedy", 0), ("beam", 0), ("sample", 0.7), ("sample", 1)]

def cmd_generation(run, steps, n_rows):
    """generation rows at the given steps, one per setting, with an eval row of the same step"""
    m = rows(f"{run}/metrics.jsonl")
    g = [r for r in m if r["type"] == "generation"]
    want = [(int(s), d, t) for s in steps.split(",") for d, t in SETTINGS]
    got = [(r["step"], r["decoding"], r["temperature"]) for r in g]
    if got != want:
        bad(f"generation rows (step, decoding, temperature) {got}, expected {want}")
    ev = {r["step"] for r in m if r["type"] == "eval"}
    for r in g:
        if r["step"] not in ev:
            bad(f"no eval row at step {r['step']}")
        if r["rows"] != int(n_rows) or not 0 <= r["accuracy"] <= 1 or r["epoch"] != r["step"] / 3:
            bad(f"generation row: rows {r['rows']} accuracy {r['accuracy']} epoch {r['epoch']}")
        keys = {"samples_per_prompt", "reward_correct", "reward_wrong", "spearman_reward_correct"}
        if r["decoding"] == "sample":
            keys |= {"self_bleu", "pass_at_k"}
        if r["decoding"] == "beam":
            keys |= {"beam"}
        if not keys <= set(r):
            bad(f"{r['decoding']} row lacks {sorted(keys - set(r))}")
        if r["decoding"] == "sample" and not (isinstance(r["self_bleu"], (int, float)) and 0 <= r["self_bleu"] <= 1):
            bad(f"self_bleu {r['self_bleu']}")

def cmd_as_eval(run, step, eval_json):
    """the generation rows of a step equal `iqtrain eval --json`'s settings for the same weights and rows"""
    g = [r for r in rows(f"{run}/metrics.jsonl") if r["type"] == "generation" and r["step"] == int(step)]
    e = json.load(open(eval_json))["settings"]
    if len(g) != len(e):
        bad(f"{len(g)} generation rows vs {len(e)} eval settings")
    for r, s in zip(g, e):
        for k, v in s.items():
            if k != "samples" and (r.get(k) != v and not (v is None and r.get(k) is None)):
                bad(f"{s['decoding']} {s.get('temperature')}: {k} {r.get(k)} in metrics, {v} from iqtrain eval")

def cmd_online(d, e, lam, mix):
    """online IQLearn with the controls (run d) and without them (run e), from the same weights: the first step's
    value term (its samples, gap and sample length) and nll are the same, the controls are in d's loss only"""
    rd, re_ = [[r for r in rows(f"{x}/metrics.jsonl") if r["type"] == "train"] for x in (d, e)]
    a, b = rd[0], re_[0]
    for k in ("online_value_gap", "online_sample_len", "nll", "td"):
        if k not in a or a.get(k) != b.get(k):
            bad(f"step 1 {k}: {a.get(k)} with the controls, {b.get(k)} without")
    lam, mix = float(lam), float(mix)
    for r, ctl in ((a, True), (b, False)):
        rest = r["loss"] - (r["nll"] + lam * r["td"] + mix * r["online_value_gap"])
        if (abs(rest) > 1e-6 * abs(r["loss"])) != ctl:
            bad(f"loss {r['loss']} - (nll + lambda td + alpha gap) = {rest} {'with' if ctl else 'without'} the controls")
    s = json.load(open(f"{d}/final/config.json")).get("iqtrain", {})
    if s.get("online_mix") != mix or not s.get("label_smoothing") or not s.get("entropy_coef"):
        bad(f"final/config.json iqtrain section: {s}")

globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
print("\n".join(problems) if problems else "ok")
EOF

zcat "$ROOT/data/arith/train.jsonl.gz" | head -n 200 >"$W/tok.jsonl"
zcat "$ROOT/data/arith/train.jsonl.gz" | sed -n '201,212p' >"$W/train.jsonl"
zcat "$ROOT/data/arith/eval.jsonl.gz" | head -n 5 >"$W/eval.jsonl"
run "$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$W/tok.jsonl"
want_rc 0
want_file "$W/tok/tokenizer.json"
done_check "setup: train-tokenizer --vocab-size 300"
[ "$FAIL" -eq 0 ] || finish

# 12 rows in batches of 4: 3 steps an epoch; a constant learning rate, so that a run cut at step 3 and resumed
# follows the same schedule as one planned for 6 steps
BASE=(--preset tiny --tokenizer "$W/tok" --batch-size 4 --threads 2 --lr 1e-3 --lr-schedule constant --warmup 0
    --log-every 1 --eval-every 100 --save-every 3 --eval-data "$W/eval.jsonl")
CTL=(--lambda 0.1 --label-smoothing 0.1 --entropy-coef 0.05)
GEN=(--eval-generation-every epoch --eval-limit 3 --eval-max-new-tokens 8 --eval-num-samples 2 --eval-beam 2
    --eval-temperatures 0.7,1.0)

# ---------------------------------------------------------------------------------------------------
# options

run "$BIN" train --dry-run "${BASE[@]}" --label-smoothing 1 "$W/train.jsonl"
want_rc 64
want_err "--label-smoothing must be in [0,1), got 1"
done_check "--label-smoothing 1 is refused (64): eps in [0,1)"
run "$BIN" train --dry-run "${BASE[@]}" --entropy-coef -0.5 "$W/train.jsonl"
want_rc 64
want_err "--entropy-coef must be in [0,inf)"
done_check "--entropy-coef -0.5 is refused (64): beta >= 0"
run "$BIN" train --dry-run "${BASE[@]}" --label-smoothing 0.99 --entropy-coef 3 "$W/train.jsonl"
want_rc 0
want_out '"label-smoothing":	0.99'
done_check "--label-smoothing 0.99 --entropy-coef 3 are accepted"
for v in 0 -3 2x every; do
    run "$BIN" train "${BASE[@]}" --max-steps 1 --eval-generation-every "$v" --out "bad$v" "$W/train.jsonl"
    want_rc 64
    want_err "--eval-generation-every: '$v' is neither 'epoch' nor a number of steps >= 1"
    done_check "--eval-generation-every $v is refused (64)"
done
run "$BIN" train --preset tiny --tokenizer "$W/tok" --max-steps 1 --eval-generation-every 1 --out noeval "$W/train.jsonl"
want_rc 64
want_err "--eval-generation-every needs eval rows"
done_check "--eval-generation-every without eval rows is refused (64)"
run "$BIN" train "${BASE[@]}" --max-steps 1 "${GEN[@]}" --eval-temperatures 0.7,-1 --out badt "$W/train.jsonl"
want_rc 64
want_err "--eval-temperatures: '-1' is not a temperature"
done_check "--eval-temperatures with a negative temperature is refused (64)"
run "$BIN" train --help
want_out "--label-smoothing EPS"
want_out "--entropy-coef BETA"
want_out "--eval-generation-every epoch|N"
done_check "--help lists the controls and the generation eval"

# ---------------------------------------------------------------------------------------------------
# the controls in a run, with generations at each epoch's end

run "$BIN" train "${BASE[@]}" "${CTL[@]}" "${GEN[@]}" --epochs 2 --out A "$W/train.jsonl"
want_rc 0
want_err "generation at step 3"
want_py recorded A 0.1 0.05
want_py objective A 0.1
want_py generation A 3,6 3
done_check "2 epochs with label smoothing, entropy bonus and --eval-generation-every epoch: recorded, in the loss, rows at steps 3 and 6"

run "$BIN" train "${BASE[@]}" "${CTL[@]}" "${GEN[@]}" --epochs 2 --out A2 "$W/train.jsonl"
want_rc 0
want_py same A/metrics.jsonl A2/metrics.jsonl
want_same_file A/final/model.safetensors A2/final/model.safetensors
done_check "the same run twice: identical metrics rows (generation rows included) and weights"

run "$BIN" train "${BASE[@]}" "${CTL[@]}" "${GEN[@]}" --max-steps 3 --out B "$W/train.jsonl"
want_rc 0
run "$BIN" train "${BASE[@]}" "${CTL[@]}" "${GEN[@]}" --epochs 2 --resume auto --out B "$W/train.jsonl"
want_rc 0
want_err "resuming B/checkpoint-3 at step 3"
not_err "bit-exact"
want_py same A/metrics.jsonl B/metrics.jsonl
want_same_file A/final/model.safetensors B/final/model.safetensors
done_check "3 steps, then --resume auto to 2 epochs: the same rows (generation rows included) and weights"

run "$BIN" eval --model A/final --data "$W/eval.jsonl" --limit 3 --max-new-tokens 8 --num-samples 2 --beam 2 \
    --temperatures 0.7,1.0 --threads 2 --json
want_rc 0
cp "$W/out" eval.json
want_py as_eval A 6 eval.json
done_check "the generation rows of the last step equal iqtrain eval of final/ on the same rows"

run "$BIN" train "${BASE[@]}" "${CTL[@]}" "${GEN[@]}" --epochs 2 --resume auto --out B --entropy-coef 0.1 "$W/train.jsonl"
want_rc 64
want_err "changed options: entropy-coef"
done_check "resuming with another --entropy-coef is refused (64)"
run "$BIN" train "${BASE[@]}" "${CTL[@]}" --epochs 3 --resume B/checkpoint-6 --out B3 "$W/train.jsonl"
want_rc 0
done_check "resuming without the generation eval (an eval option, not a loss option) is accepted"

# ---------------------------------------------------------------------------------------------------
# without the controls: loss = nll + lambda td; an older run.json (no such options) resumes when they are off

run "$BIN" train "${BASE[@]}" --lambda 0.1 --max-steps 3 --out C "$W/train.jsonl"
want_rc 0
want_py plain C 0.1
"$PY" -c 'import json,sys
p=sys.argv[1]; j=json.load(open(p))
for k in ("label-smoothing", "entropy-coef"): del j["options"][k]
json.dump(j, open(p, "w"))' C/run.json
cp -r C C2
run "$BIN" train "${BASE[@]}" --lambda 0.1 --max-steps 6 --resume auto --out C "$W/train.jsonl"
want_rc 0
want_err "resuming C/checkpoint-3 at step 3"
done_check "no controls: loss = nll + lambda td; a run.json without the options resumes with them off"
run "$BIN" train "${BASE[@]}" --lambda 0.1 --max-steps 6 --resume auto --out C2 --label-smoothing 0.1 "$W/train.jsonl"
want_rc 64
want_err "changed options: label-smoothing"
done_check "... and is refused (64) with --label-smoothing 0.1"

# ---------------------------------------------------------------------------------------------------
# with online IQLearn: the controls are terms of the expert rows; the policy samples carry only the value term
# (the gradients: tests/reference's online_*_ls*_ent* cases)

ONL=(--online-mix 0.5 --online-max-new-tokens 8 --max-steps 2)
run "$BIN" train "${BASE[@]}" "${CTL[@]}" "${ONL[@]}" "${GEN[@]}" --out D "$W/train.jsonl"
want_rc 0
want_err "generation at step 2"
run "$BIN" train "${BASE[@]}" --lambda 0.1 "${ONL[@]}" --out E "$W/train.jsonl"
want_rc 0
want_py online D E 0.1 0.5
done_check "--online-mix with the controls (and the generation eval): the first step's value gap, sample length and nll as without them, the controls in the loss only"

finish
