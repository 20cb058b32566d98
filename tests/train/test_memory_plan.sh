#!/usr/bin/env bash
# tests/train/test_memory_plan.sh — --dry-run's predicted peak RSS (memory_mb.predicted_peak_rss, memory_plan.h)
# against the maximum resident set size /usr/bin/time measures for the same run (2 steps), within 15%, on small
# models whose arenas dominate: a Llama (one layer of activation gradients) in fp32 and with bf16 matmuls (where
# this build and CPU have them: bf16 weight copies and operands), and a GPT-2. Also: the items add up to the
# prediction, and the Llama's activation gradients are one layer's (less than a third of its activations);
# --gradient-checkpointing (activation recomputation) is predicted too and changes no metric and no weight; so are
# LoRA adapters (--lora-rank: AdamW's moments of the adapters only, the adapters' arenas, no gradient arena for the
# frozen base, and the plan without adapters beside it), also with the base in bf16 (--base-dtype bf16).
#
#   usage: tests/train/test_memory_plan.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init memory_plan "$@"

[ -x /usr/bin/time ] || skip "/usr/bin/time (GNU time) is not installed"
DATA=$W/data.jsonl
$PY - "$DATA" <<'EOF'
import json, random, sys
random.seed(1)
words = "the model learns from expert demonstrations and its reward is implicit in a soft value function".split()
with open(sys.argv[1], "w") as f:
    for i in range(16):
        f.write(json.dumps({"text": " ".join(random.choice(words) + str(random.randint(0, 999)) for _ in range(200))}) + "\n")
EOF
TOK=$ROOT/tests/fixtures/gpt2
# a sanitizer build's shadow memory and quarantine are no part of the plan: its runs are checked for the rest
SAN=0
"$BIN" --version | grep -q "asan" && SAN=1

# plan_vs_rss NAME TRAIN_ARGS...: the dry run's prediction and items, then the measured peak of the real run
plan_vs_rss() {
    local name=$1
    shift
    run "$BIN" train "$@" --dry-run "$DATA"
    want_rc 0
    cp "$W/out" "$W/plan-$name.json"
    /usr/bin/time -f "%M" -o "$W/rss-$name" "$BIN" train "$@" --max-steps 2 --out "$W/run-$name" "$DATA" >"$W/out" 2>"$W/err"
    RC=$?
    want_rc 0
    local verdict
    verdict=$($PY - "$W/plan-$name.json" "$W/rss-$name" "$name" "$SAN" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))
m = plan["memory_mb"]
measured = int(open(sys.argv[2]).read().split()[-1]) * 1024 / 1e6
pred = m["predicted_peak_rss"]
items = sum(v for k, v in m.items() if k not in ("predicted_peak_rss", "dry_run_peak_rss"))
why = []
if sys.argv[4] == "0" and not abs(pred / measured - 1) <= 0.15:
    why.append("predicted %.1f MB, measured %.1f MB (ratio %.3f): more than 15%% off" % (pred, measured, pred / measured))
if not abs(items - pred) <= 0.01 * pred:
    why.append("the items add up to %.1f MB, not the predicted %.1f MB" % (items, pred))
if sys.argv[3] in ("llama-fp32", "llama-bf16") and not m["activation_grads"] < m["activations"] / 3:
    why.append("activation gradients %.1f MB vs activations %.1f MB: not one layer's" % (m["activation_grads"], m["activations"]))
if sys.argv[3].startswith("llama-lora"):  # a frozen base: no gradient arena; the full fine-tune's plan beside it
    full = plan.get("memory_mb_without_lora", {})
    if m["gradients"] != 0 or not full.get("gradients", 0) > 0 or not full.get("predicted_peak_rss", 0) > pred:
        why.append("LoRA: gradients %r MB (want 0), without LoRA %r" % (m["gradients"], full))
    if "bf16" in sys.argv[3] and not m["parameters"] < full.get("parameters", 0):
        why.append("--base-dtype bf16: parameters %.1f MB, not under fp32's %r" % (m["parameters"], full.get("parameters")))
print("; ".join(why) if why else "ok predicted %.1f MB measured %.1f MB ratio %.3f" % (pred, measured, pred / measured))
EOF
)
    echo "      $name: $verdict"
    [ "${verdict#ok}" != "$verdict" ] || WHY+=("$verdict")
    if [ $SAN = 1 ]; then
        done_check "dry-run memory plan adds up: $name"
        skip_check "dry-run predicts peak RSS within 15%: $name" "sanitizer build (shadow memory)"
    else
        done_check "dry-run predicts peak RSS within 15%: $name"
    fi
}

LLAMA=(--arch llama --preset small --n-layer 6 --tokenizer "$TOK" --batch-size 8 --max-seq-len 192 --threads 2 --log-every 1)
plan_vs_rss llama-fp32 "${LLAMA[@]}"
plan_vs_rss llama-bf16 "${LLAMA[@]}" --matmul-precision bf16
plan_vs_rss llama-recompute "${LLAMA[@]}" --gradient-checkpointing
plan_vs_rss llama-lora "${LLAMA[@]}" --lora-rank 8 --lora-targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
plan_vs_rss llama-lora-base-bf16 "${LLAMA[@]}" --lora-rank 8 --lora-targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
    --base-dtype bf16
plan_vs_rss llama-lora-base-bf16-mm "${LLAMA[@]}" --lora-rank 8 --lora-targets q_proj,v_proj --base-dtype bf16 \
    --matmul-precision bf16 --gradient-checkpointing
plan_vs_rss gpt2-fp32 --preset small --tokenizer "$TOK" --batch-size 8 --max-seq-len 192 --threads 2

# --gradient-checkpointing changes no numbers: the same metrics and final weights bit for bit, with activations
# (the residual stream of every layer and one layer's rest) well under the stacked ones
$PY - "$W/run-llama-fp32/metrics.jsonl" "$W/run-llama-recompute/metrics.jsonl" <<'EOF' >"$W/out" 2>"$W/err"
import json, sys
rows = [[{k: v for k, v in json.loads(l).items() if k not in ("elapsed_s", "tokens_per_s")} for l in open(p)] for p in sys.argv[1:]]
sys.exit(0 if rows[0] == rows[1] and len(rows[0]) >= 2 else 1)
EOF
RC=$?
want_rc 0
cmp -s "$W/run-llama-fp32/final/model.safetensors" "$W/run-llama-recompute/final/model.safetensors" ||
    WHY+=("final/model.safetensors differs with --gradient-checkpointing")
act() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["memory_mb"]["activations"])' "$1"; }
$PY -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) / 3 else 1)' \
    "$(act "$W/plan-llama-recompute.json")" "$(act "$W/plan-llama-fp32.json")" || WHY+=("recomputation did not shrink the activations 3x")
done_check "--gradient-checkpointing: bit-identical metrics and weights, a third of the activations"
finish
