#!/usr/bin/env bash
# tests/cli/test_lora.sh — `iqtrain train --lora-rank` (issue #19) end to end on a tiny Llama: a base trained
# from scratch, then adapters on all seven targets with the base frozen (the loss falls; final/ is a PEFT adapter
# folder, not a model; checkpoints hold adapter/ and the adapters' AdamW moments; the base in the checkpoint is
# the base, bit for bit); --gradient-checkpointing changes no bit; --base-dtype bf16 trains, deterministically, and
# checkpoints the base as held; --lora-dropout's masks are deterministic; the refusals (64 naming the option):
# dropout 1, an unknown target, online IQLearn and the generation eval with adapters (not yet supported),
# --base-dtype bf16 without adapters. GPT-2 (c_attn, c_proj, c_fc; HF Conv1D layers): a run trains a frozen base,
# final/ in PEFT's layout with fan_in_fan_out true; eval --adapter and `iqtrain merge` give the training-time nll;
# resume from checkpoint-10 is bit-exact; the default target is c_attn; a target of the other family and a bf16
# gpt2 base are refused (64). Resuming and adapter folders on Llama: test_lora_io.sh.
#
#   usage: tests/cli/test_lora.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init lora "$@"
TOK=$ROOT/tests/fixtures/gpt2
export PYTHONPATH=$ROOT/tests/cli${PYTHONPATH:+:$PYTHONPATH}   # lora_folders (read_st, shapes, train_losses) for the checks below

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
import json, sys
from lora_folders import shapes as header, train_losses
bad = []
losses = train_losses("run/metrics.jsonl")
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

# --lora-dropout: the masks are a function of the seed, the step and the layer: the same metrics with
# --gradient-checkpointing (recomputation regenerates them), and other metrics than without dropout
for gc in "" --gradient-checkpointing; do
    run "$BIN" --model base/final --lora-rank 4 --lora-alpha 8 --lora-targets $ALL --max-steps 10 --batch-size 4 \
        --lr 1e-2 --warmup 2 --threads 2 --log-every 1 --eval-split 0.25 --eval-every 5 --lora-dropout 0.2 $gc \
        --out drop$gc data.jsonl
    want_rc 0
done
run "$BIN" --model base/final --lora-rank 4 --lora-alpha 8 --lora-targets $ALL --max-steps 10 --batch-size 4 \
    --lr 1e-2 --warmup 2 --threads 2 --log-every 1 --eval-split 0.25 --eval-every 5 --out nodrop data.jsonl
want_rc 0
$PY - drop drop--gradient-checkpointing nodrop <<'PY' || WHY+=("--lora-dropout (above)")
import json, sys
def rows(d):
    return [{k: v for k, v in json.loads(l).items() if k not in ("elapsed_s", "tokens_per_s")} for l in open(d + "/metrics.jsonl")]
a, b, c = (rows(d) for d in sys.argv[1:])
bad = []
if a != b or len(a) < 10:
    bad.append("dropout with and without --gradient-checkpointing differ")
ta = [r["loss"] for r in a if r["type"] == "train"]
tc = [r["loss"] for r in c if r["type"] == "train"]
if ta[0] != tc[0] or ta[-1] == tc[-1]:   # step 1: B = 0, the path is zero with or without dropout; later it acts
    bad.append("train losses with dropout %r vs without %r" % (ta, tc))
if json.load(open(sys.argv[1] + "/final/adapter_config.json")).get("lora_dropout") != 0.2:
    bad.append("adapter_config.json lora_dropout is not 0.2")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done_check "--lora-dropout: deterministic masks (the same with recomputation), dropout acts"

# --base-dtype bf16: the base's matrices in bf16 only; it trains (the loss falls), the same metrics run to run, and
# checkpoints hold the base as it is held (matrices BF16, the embedding and norms F32, the values of base/final's
# rounded); at --matmul-precision bf16 the products read the bf16 weights directly
for prec in fp32 bf16; do
    for k in 1 2; do
        run "$BIN" --model base/final --lora-rank 4 --lora-alpha 8 --lora-targets $ALL --max-steps 20 --batch-size 4 \
            --lr 1e-2 --warmup 2 --save-every 10 --threads 2 --base-dtype bf16 --matmul-precision $prec --out half-$prec-$k \
            data.jsonl
        want_rc 0
    done
    $PY - half-$prec-1 half-$prec-2 <<'PY' || WHY+=("--base-dtype bf16 --matmul-precision $prec (above)")
import json, sys
import numpy as np
from lora_folders import read_st
def rows(d):
    return [{k: v for k, v in json.loads(l).items() if k not in ("elapsed_s", "tokens_per_s")} for l in open(d + "/metrics.jsonl")]
def tensors(p):   # name -> (dtype, the values' fp32 bit patterns)
    return {k: (dt, a.astype(np.uint32) << 16 if dt == "BF16" else a.view(np.uint32)) for k, (dt, a) in read_st(p)[0].items()}
bad = []
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a != b or len(a) < 2:
    bad.append("metrics differ between two identical runs")
losses = [r["loss"] for r in a if r.get("split") == "train" and "loss" in r] or [r["loss"] for r in a if "loss" in r]
if not losses[-1] < 0.98 * losses[0]:
    bad.append("the loss did not fall: %r" % losses)
if json.load(open(sys.argv[1] + "/run.json"))["options"].get("base-dtype") != "bf16":
    bad.append("run.json does not record base-dtype bf16")
ck, base = tensors(sys.argv[1] + "/checkpoint-10/model.safetensors"), tensors("base/final/model.safetensors")
q, e = "model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight"
if ck[q][0] != "BF16" or ck[e][0] != "F32" or not np.array_equal(ck[e][1], base[e][1]):
    bad.append("checkpoint base dtypes %s %s" % (ck[q][0], ck[e][0]))
u = base[q][1].astype(np.uint64)
if not np.array_equal(ck[q][1], (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32)):
    bad.append("the checkpoint's bf16 q_proj is not base/final's rounded to bf16")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    done_check "--base-dtype bf16 (--matmul-precision $prec): trains, deterministic, checkpoints the bf16 base"
done

while IFS='|' read -r want args; do
    # shellcheck disable=SC2086
    run "$BIN" --model base/final --max-steps 1 --batch-size 2 --out refused $args data.jsonl
    want_rc 64
    want_err "$want"
    done_check "refused (64): $args"
done <<'T'
lora-dropout must be in|--lora-rank 4 --lora-dropout 1
unknown module 'qproj'|--lora-rank 4 --lora-targets q_proj,qproj
not yet supported|--lora-rank 4 --online-mix 0.5
not yet supported|--lora-rank 4 --eval-generation-every 1 --eval-split 0.25
needs --lora-rank > 0|--base-dtype bf16
T

# ---- GPT-2 (HF Conv1D layers): PEFT's names c_attn, c_proj (attn.c_proj and mlp.c_proj both), c_fc; the default c_attn
LF=$ROOT/tests/cli/lora_folders.py
head -4 data.jsonl >ev.jsonl
require "a tiny gpt2 base from scratch" "$BIN" --arch gpt2 --preset tiny --tokenizer "$TOK" --max-steps 5 \
    --batch-size 4 --threads 2 --out gbase data.jsonl
GL=(--model gbase/final --lora-rank 4 --lora-alpha 8 --lora-targets c_attn,c_proj,c_fc --batch-size 4 --lr 1e-2
    --warmup 2 --threads 2 --eval-data ev.jsonl --eval-every 5 --save-every 5 --max-steps 20)
run "$BIN" "${GL[@]}" --out g data.jsonl
want_rc 0
$PY - <<'PY' || WHY+=("the gpt2 LoRA run's outputs (above)")
import json, sys
from lora_folders import shapes as header, train_losses
bad = []
losses = train_losses("g/metrics.jsonl")
if not (len(losses) >= 2 and losses[-1] < 0.99 * losses[0]):   # a random tiny base, its head frozen: ~1% (measured 1.2%)
    bad.append("the loss did not fall: %r" % losses)
ac = json.load(open("g/final/adapter_config.json"))
if ac.get("fan_in_fan_out") is not True or sorted(ac.get("target_modules", [])) != ["c_attn", "c_fc", "c_proj"]:
    bad.append("adapter_config.json: fan_in_fan_out %r, target_modules %r" % (ac.get("fan_in_fan_out"), ac.get("target_modules")))
h = header("g/final/adapter_model.safetensors")
pre = "base_model.model.transformer.h.1."
want = {pre + "attn.c_attn.lora_B.weight": [192, 4], pre + "attn.c_proj.lora_A.weight": [4, 64],
        pre + "mlp.c_fc.lora_B.weight": [256, 4], pre + "mlp.c_proj.lora_A.weight": [4, 256]}
if len(h) != 2 * 2 * 4 or any(h.get(k) != v for k, v in want.items()):
    bad.append("final/adapter_model.safetensors: %d tensors %s" % (len(h), sorted(h)[:4]))
if open("g/checkpoint-20/model.safetensors", "rb").read() != open("gbase/final/model.safetensors", "rb").read():
    bad.append("the gpt2 base changed under the adapters")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done_check "gpt2: adapters on c_attn, c_proj (both modules), c_fc train a frozen base; PEFT layout, fan_in_fan_out true"
NLL=$("$PY" "$LF" nll g/metrics.jsonl 20)
EV=(--data ev.jsonl --lambda 0.1 --gamma 0.99 --threads 2 --json)
nll_of() { "$PY" "$LF" json_nll "$W/out"; }
run "$BIN" eval --model gbase/final --adapter g/final "${EV[@]}"
want_rc 0
got=$(nll_of)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("eval --adapter nll $got, the training-time eval logged $NLL")
run "$BIN" merge --model gbase/final --adapter g/final --out gmerged
want_rc 0
run "$BIN" eval --model gmerged "${EV[@]}"
want_rc 0
got=$(nll_of)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("the merged gpt2 folder's nll $got, the training-time eval logged $NLL")
run "$BIN" eval --model gbase/final "${EV[@]}"
"$PY" "$LF" close "$(nll_of)" "$NLL" 1e-3 && WHY+=("the gpt2 base alone has the adapter model's nll: the adapter is not applied")
done_check "gpt2: eval --adapter and the merged folder give the training-time nll (1e-5 relative)"
cp -r g G2 && rm -rf G2/final G2/checkpoint-15 G2/checkpoint-20
run "$BIN" "${GL[@]}" --out G2 --resume G2/checkpoint-10 data.jsonl
want_rc 0
$PY - g/metrics.jsonl G2/metrics.jsonl <<'PY' || WHY+=("gpt2 resume: metrics differ")
import json, sys
rows = [[{k: v for k, v in json.loads(l).items() if k not in ("elapsed_s", "tokens_per_s")} for l in open(p)] for p in sys.argv[1:]]
sys.exit(0 if rows[0] == rows[1] and len(rows[0]) >= 5 else 1)
PY
want_same_file g/final/adapter_model.safetensors G2/final/adapter_model.safetensors
done_check "gpt2: LoRA resume from checkpoint-10 gives the same metrics rows and final adapter"
run "$BIN" --model gbase/final --lora-rank 2 --max-steps 2 --batch-size 4 --threads 2 --out gdef data.jsonl
want_rc 0
"$PY" -c 'import json,sys; sys.exit(json.load(open("gdef/final/adapter_config.json"))["target_modules"] != ["c_attn"])' ||
    WHY+=("gpt2's default target is not c_attn")
done_check "gpt2: the default target is PEFT's, c_attn"
while IFS='|' read -r want args; do
    # shellcheck disable=SC2086
    run "$BIN" --model gbase/final --max-steps 1 --batch-size 2 --out refused $args data.jsonl
    want_rc 64
    want_err "$want"
    done_check "refused (64) on gpt2: $args"
done <<'T'
q_proj is not a module of the gpt2 family|--lora-rank 4 --lora-targets q_proj
gpt2 family has no bf16 base yet|--lora-rank 4 --base-dtype bf16
T
run "$BIN" --model base/final --lora-rank 4 --lora-targets c_attn --max-steps 1 --batch-size 2 --out refused data.jsonl
want_rc 64
want_err "c_attn is not a module of the llama family"
done_check "refused (64) on llama: --lora-targets c_attn"
finish
