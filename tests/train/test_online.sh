#!/usr/bin/env bash
# tests/train/test_online.sh — online IQLearn (issue #17, DESIGN §10) through the iqtrain binary:
#   1. --online-mix 0 is the offline run: the same metrics rows and weights as a run without the option, and
#      no online field anywhere;
#   2. alpha > 0 logs online_value_gap and online_sample_len, records the options in run.json and the model
#      folder's "iqtrain" section, and keeps the samples in each checkpoint with their refresh step;
#   3. determinism: the same alpha > 0 command twice gives the same rows and weights;
#   4. resume between two refreshes (--online-every 3, checkpoint-4) is bit-exact, and a checkpoint without
#      its samples file is refused (65) rather than silently drawing new samples;
#   5. kill -9 at a seeded moment, then --resume auto: the same rows and weights as the uninterrupted run;
#   6. bench --what train --online-mix reports the sampling cost beside the update's.
# Tiny preset, 32 sampled tokens, batches of 4 with --grad-accum 2 (two policy batches per step): seconds.
#
#   usage: tests/train/test_online.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init online "$@"

DATA=$W/data.jsonl
zcat "$ROOT/data/arith/train.jsonl.gz" | head -n 200 >"$DATA"
run "$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$DATA"
require "setup: train-tokenizer" test "$RC" = 0
BASE=("$BIN" --tokenizer "$W/tok" --preset tiny --batch-size 4 --grad-accum 2 --threads 2 --log-every 1 --lr 1e-3
      --warmup 0 --eval-split 0.1 --eval-every 5)
ONLINE=(--online-mix 0.5 --online-every 3 --online-max-new-tokens 32)

# same A B: the rows of two metrics.jsonl files agree in every field but the times (DESIGN §7), byte for byte
same() {
    local r
    r=$("$PY" - "$1" "$2" <<'PY' 2>&1
import json, sys
def rows(p):
    out = []
    for l in open(p):
        r = json.loads(l)
        r.pop("elapsed_s", None)
        r.pop("tokens_per_s", None)
        out.append(json.dumps(r))
    return out
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a != b:
    diff = [i for i in range(min(len(a), len(b))) if a[i] != b[i]]
    print("%d vs %d rows; first difference at row %s" % (len(a), len(b), diff[0] + 1 if diff else min(len(a), len(b)) + 1))
else:
    print("ok")
PY
)
    [ "$r" = ok ] || WHY+=("$1 vs $2: $r")
}

# ---- 1. alpha = 0 is the offline loss
run "${BASE[@]}" --max-steps 6 --out OFF "$DATA"
want_rc 0
run "${BASE[@]}" --max-steps 6 --online-mix 0 --online-every 2 --online-max-new-tokens 8 --out ZERO "$DATA"
want_rc 0
same OFF/metrics.jsonl ZERO/metrics.jsonl
want_same_file OFF/final/model.safetensors ZERO/final/model.safetensors
! grep -q online_ ZERO/metrics.jsonl ZERO/final/config.json || WHY+=("an alpha 0 run logs or records online fields")
done_check "1. --online-mix 0: the offline run's metrics rows and weights, no online fields"

# ---- 2. alpha > 0: the fields, the options, the samples in the checkpoint
run "${BASE[@]}" "${ONLINE[@]}" --max-steps 8 --save-every 4 --out A "$DATA"
want_rc 0
want_eq "$("$PY" - A <<'PY' 2>&1
import json, math, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl")]
train = [r for r in rows if r["type"] == "train"]
bad = []
if len(train) != 8: bad.append("%d train rows" % len(train))
for r in train:
    g, n = r.get("online_value_gap"), r.get("online_sample_len")
    if not (isinstance(g, float) and math.isfinite(g)): bad.append("step %d: online_value_gap %r" % (r["step"], g))
    if not (isinstance(n, (int, float)) and 0 < n <= 32): bad.append("step %d: online_sample_len %r" % (r["step"], n))
# the samples of steps 0-2 are reused: the same mean length until the refresh at step 3 (row "step" counts done)
if len({r["online_sample_len"] for r in train[:3]}) != 1: bad.append("samples not reused between refreshes")
if any("online_value_gap" in r for r in rows if r["type"] == "eval"): bad.append("eval rows carry the online term")
opts = json.load(open(d + "/run.json"))["options"]
for k, v in (("online-mix", 0.5), ("online-every", 3), ("online-temperature", 1), ("online-max-new-tokens", 32)):
    if opts.get(k) != v: bad.append("run.json %s = %r" % (k, opts.get(k)))
sec = json.load(open(d + "/final/config.json"))["iqtrain"]
for k, v in (("online_mix", 0.5), ("online_every", 3), ("online_temperature", 1), ("online_max_new_tokens", 32)):
    if sec.get(k) != v: bad.append("config.json iqtrain.%s = %r" % (k, sec.get(k)))
ts = json.load(open(d + "/checkpoint-4/trainer_state.json"))
if ts.get("online_refresh_step") != 3: bad.append("checkpoint-4 online_refresh_step %r" % ts.get("online_refresh_step"))
if "online_samples.safetensors" not in ts.get("files", {}): bad.append("no CRC of online_samples.safetensors")
print("ok" if not bad else "; ".join(bad))
PY
)" ok "metrics, run.json, config.json, trainer_state.json"
want_file A/checkpoint-4/online_samples.safetensors
done_check "2. --online-mix 0.5: online_value_gap and online_sample_len per train row, options recorded, samples checkpointed"

# ---- 3. determinism
run "${BASE[@]}" "${ONLINE[@]}" --max-steps 8 --save-every 4 --out A2 "$DATA"
want_rc 0
same A/metrics.jsonl A2/metrics.jsonl
want_same_file A/final/model.safetensors A2/final/model.safetensors
done_check "3. the same online command twice: identical metrics rows and final weights"

# ---- 4. resume at step 4, between the refreshes of steps 3 and 6: the stored samples are reused
cp -r A R && rm -rf R/final R/checkpoint-8
run "${BASE[@]}" "${ONLINE[@]}" --max-steps 8 --save-every 4 --resume R/checkpoint-4 --out R "$DATA"
want_rc 0
want_err "resuming R/checkpoint-4 at step 4"
same A/metrics.jsonl R/metrics.jsonl
want_same_file A/final/model.safetensors R/final/model.safetensors
done_check "4. --resume checkpoint-4 (samples of step 3 reused): the same rows and weights as 8 straight"
cp -r A N && rm -rf N/final N/checkpoint-8 N/checkpoint-4/online_samples.safetensors
run "${BASE[@]}" "${ONLINE[@]}" --max-steps 8 --save-every 4 --resume N/checkpoint-4 --out N "$DATA"
want_rc 65
want_err "online_samples.safetensors"
want_no N/final
done_check "4. a checkpoint without its samples file: exit 65 naming it"

# ---- 5. kill -9 at a seeded moment (after metrics row K, K from the run's seed), then --resume auto
KILL=(--max-steps 24 --save-every 1 --keep-last 2 --seed 7)
run "${BASE[@]}" "${ONLINE[@]}" "${KILL[@]}" --out K0 "$DATA"
want_rc 0
K=$((7 % 5 + 6)) # 8: past a refresh (step 6), before the next (9)
kill_after_rows "$K" K1 "${BASE[@]}" "${ONLINE[@]}" "${KILL[@]}" --out K1 "$DATA"
run "${BASE[@]}" "${ONLINE[@]}" "${KILL[@]}" --resume auto --out K1 "$DATA"
want_rc 0
want_err "resuming K1/checkpoint-"
same K0/metrics.jsonl K1/metrics.jsonl
want_same_file K0/final/model.safetensors K1/final/model.safetensors
done_check "5. kill -9 after train row $K, then --resume auto: the uninterrupted run's rows and weights"

# ---- 6. bench: the cost of sampling against the update
run "$BIN" bench --what train --n-layer 1 --n-head 2 --n-embd 32 --ctx 64 --vocab-size 64 --batch-size 2 --seq-len 32 \
    --steps 3 --threads 1 --online-mix 0.1 --json
want_rc 0
for k in sample_ms policy_ms sample_len ms_per_step; do
    "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; sys.exit(0 if v > 0 else 1)' "$W/out" "$k" \
        2>/dev/null || WHY+=("bench --json: $k missing or not positive")
done
run "$BIN" bench --what train --n-layer 1 --n-head 2 --n-embd 32 --ctx 64 --vocab-size 64 --batch-size 2 --seq-len 32 \
    --steps 3 --threads 1 --online-mix 0.1
want_rc 0
want_out "sampling is"
done_check "6. bench --what train --online-mix 0.1: sample_ms, policy_ms and sample_len beside ms_per_step"

finish
