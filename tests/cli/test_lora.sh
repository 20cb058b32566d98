#!/usr/bin/env bash
# tests/cli/test_lora.sh — `iqtrain train --lora-rank` (issue #19) end to end on a tiny Llama: a base trained
# from scratch, then adapters on all seven targets with the base frozen (the loss falls; final/ is a PEFT adapter
# folder, not a model; checkpoints hold adapter/ and the adapters' AdamW moments; the base in the checkpoint is
# the base, bit for bit); --gradient-checkpointing changes no bit; the refusals (64 naming the option): dropout
# > 0, an unknown target, the gpt2 family, online IQLearn and the generation eval with adapters (not yet
# supported). Resuming and adapter folders: test_lora_io.sh.
#
#   usage: tests/cli/test_lora.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init lora "$@"
TOK=$ROOT/tests/fixtures/gpt2

for i in 0 1 2 3 4 5 6 7; do
    printf '{"prompt": "Question %d: what is %d + %d?", "completion": " It is %d."}\n' $i $i $((2 * i)) $((3 * i))
done >data.jsonl

require "a tiny llama base from scratch" "$BIN" --arch llama --preset tiny --tokenizer "$TOK" --max-steps 5 \
    --batch-size 4 --threads 2 --out base data.jsonl

ALL=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
run "$BIN" --model base/final --lora-rank 4 --lora-alpha 8 --lora-targets $ALL --max-steps 30 --batch-size 4 \
    --lr 1e-2 --warmup 2 --save-every 10 --threads 2 --json --out run data.jsonl
want_rc 0
$PY - <<'PY' || WHY+=("the LoRA run's outputs (above)")
import json, struct, sys
def header(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
    return h
bad = []
losses = [json.loads(l)["loss"] for l in open("run/metrics.jsonl") if '"train"' in l and '"loss"' in l]
if not (len(losses) >= 2 and losses[-1] < 0.98 * losses[0]):   # a random tiny base, its head frozen: a few %
    bad.append("the loss did not fall: %r" % losses)
ac = json.load(open("run/final/adapter_config.json"))
for k, v in {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "base_model_name_or_path": "base/final"}.items():
    if ac.get(k) != v:
        bad.append("final/adapter_config.json %s = %r" % (k, ac.get(k)))
h = header("run/final/adapter_model.safetensors")
a = "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"
if len(h) != 2 * 2 * 7 or a not in h:
    bad.append("final/adapter_model.safetensors: %d tensors %s" % (len(h), sorted(h)[:2]))
import os
if os.path.exists("run/final/model.safetensors"):
    bad.append("final/ holds a model.safetensors (the frozen base): it should be the adapter only")
o = header("run/checkpoint-20/optimizer.safetensors")
if len(o) != 2 * 28 or "exp_avg.model.layers.0.self_attn.q_proj.lora_B.weight" not in o:
    bad.append("checkpoint-20/optimizer.safetensors: %d tensors %s" % (len(o), sorted(o)[:2]))
if not os.path.exists("run/checkpoint-20/adapter/adapter_model.safetensors"):
    bad.append("checkpoint-20/adapter/ is missing")
if open("run/checkpoint-20/model.safetensors", "rb").read() != open("base/final/model.safetensors", "rb").read():
    bad.append("the base changed under the adapters (checkpoint-20/model.safetensors != base/final's)")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done_check "adapters on all targets train a frozen base; final/ is a PEFT adapter folder; checkpoints hold them"

# --gradient-checkpointing recomputes the adapters' products too: the same metrics and adapter, bit for bit
run "$BIN" --model base/final --lora-rank 4 --lora-alpha 8 --lora-targets $ALL --max-steps 30 --batch-size 4 \
    --lr 1e-2 --warmup 2 --save-every 10 --threads 2 --json --out run-gc --gradient-checkpointing data.jsonl
want_rc 0
$PY - run/metrics.jsonl run-gc/metrics.jsonl <<'PY' || WHY+=("metrics differ with --gradient-checkpointing")
import json, sys
rows = [[{k: v for k, v in json.loads(l).items() if k not in ("elapsed_s", "tokens_per_s")} for l in open(p)] for p in sys.argv[1:]]
sys.exit(0 if rows[0] == rows[1] and len(rows[0]) >= 2 else 1)
PY
cmp -s run/final/adapter_model.safetensors run-gc/final/adapter_model.safetensors ||
    WHY+=("final/adapter_model.safetensors differs with --gradient-checkpointing")
done_check "LoRA with --gradient-checkpointing: bit-identical metrics and adapter"

while IFS='|' read -r want args; do
    # shellcheck disable=SC2086
    run "$BIN" --model base/final --max-steps 1 --batch-size 2 --out refused $args data.jsonl
    want_rc 64
    want_err "$want"
    done_check "refused (64): $args"
done <<'T'
not yet supported|--lora-rank 4 --lora-dropout 0.1
unknown module 'qproj'|--lora-rank 4 --lora-targets q_proj,qproj
not yet supported|--lora-rank 4 --online-mix 0.5
not yet supported|--lora-rank 4 --eval-generation-every 1 --eval-split 0.25
T
run "$BIN" --arch gpt2 --preset tiny --tokenizer "$TOK" --lora-rank 4 --max-steps 1 --batch-size 2 --out g data.jsonl
want_rc 64
want_err "gpt2 family is not yet supported"
done_check "refused (64): --lora-rank on the gpt2 family"
finish
