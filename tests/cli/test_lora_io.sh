#!/usr/bin/env bash
# tests/cli/test_lora_io.sh — LoRA adapter folders in and out (issue #19) on a tiny Llama:
#   1. --adapter DIR for eval and score (merged into the base in memory) gives the training-time (unmerged) model's
#      eval nll within 1e-5 relative; `iqtrain merge` writes a model folder with the same nll and scores; the
#      adapter changes the numbers (the base alone differs); merge refuses an existing --out (73); export writes
#      a GGUF of the merged folder, whose greedy continuations in llama.cpp (tests/gguf's node-llama-cpp, when
#      installed) equal generate --adapter's;
#   2. equivalent folders load with the same nll: target_modules as PEFT's regex string or "all-linear", BF16
#      tensors, another tensor order and PEFT's bookkeeping keys;
#   3. bad adapter folders are refused naming the problem, exit 65 (rank mismatch, unknown target module, wrong
#      shapes, a missing or extra tensor, a layer beyond the model, unsupported PEFT options, a corrupt file);
#      no adapter_config.json: 66;
#   4. resuming a LoRA run (checkpoint-10 of 20, also with a bf16 base and dropout, and --resume auto after
#      kill -9) is bit-exact: metrics rows (without elapsed_s, tokens_per_s) and final/adapter_model.safetensors; a corrupt adapter/ in a checkpoint is
#      refused by its CRC-32;
#   5. train --model BASE --adapter DIR starts from the adapter (its r, alpha, targets; with --lr 0 it stays
#      byte-identical and its eval nll is the merged model's); conflicting --lora-* options: 64;
#   6. --train-head on an untied base: the head trains, saved as PEFT's modules_to_save ["lm_head"]
#      (base_model.model.lm_head.weight) with its AdamW moments; eval --adapter and merge give the training-time nll;
#      resume is bit-exact; a tied head, --train-head without adapters, and one the folder lacks: 64.
#
#   usage: tests/cli/test_lora_io.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init lora_io "$@"
TOK=$ROOT/tests/fixtures/gpt2
LF=$ROOT/tests/cli/lora_folders.py

for i in 0 1 2 3 4 5 6 7; do
    printf '{"prompt": "Question %d: what is %d + %d?", "completion": " It is %d."}\n' $i $i $((2 * i)) $((3 * i))
done >data.jsonl
head -4 data.jsonl >ev.jsonl

require "a tiny llama base from scratch" "$BIN" --arch llama --preset tiny --tokenizer "$TOK" --max-steps 5 \
    --batch-size 4 --threads 1 --out base data.jsonl
ALL=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
LORA=(--model base/final --lora-rank 4 --lora-alpha 8 --lora-targets $ALL --batch-size 4 --lr 1e-2 --warmup 2
      --threads 1 --eval-data ev.jsonl --eval-every 5 --save-every 5 --max-steps 20)
require "a LoRA run of 20 steps" "$BIN" "${LORA[@]}" --out run data.jsonl
NLL=$("$PY" "$LF" nll run/metrics.jsonl 20)
EV=(--data ev.jsonl --lambda 0.1 --gamma 0.99 --threads 1 --json)
nll_of() { "$PY" "$LF" json_nll "$W/out"; }

# ---- 1. --adapter, merge, export
run "$BIN" eval --model base/final --adapter run/final "${EV[@]}"
want_rc 0
got=$(nll_of)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("eval --adapter nll $got, the training-time eval logged $NLL")
done_check "eval --adapter: the unmerged training-time model's eval nll within 1e-5 relative"
run "$BIN" eval --model base/final "${EV[@]}"
base_nll=$(nll_of)
"$PY" "$LF" close "$base_nll" "$NLL" 1e-3 && WHY+=("the base alone has the adapter model's nll ($base_nll): the adapter is not applied")
done_check "the adapter matters: the base alone has another nll"
run "$BIN" merge --model base/final --adapter run/final --out merged
want_rc 0
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do want_file merged/$f; done
run "$BIN" eval --model merged "${EV[@]}"
want_rc 0
got=$(nll_of)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("merged folder's nll $got, the training-time eval logged $NLL")
done_check "merge: an ordinary model folder with the adapter model's nll (1e-5 relative)"
run "$BIN" score --model merged --data ev.jsonl --threads 1 --out s-merged
run "$BIN" score --model base/final --adapter run/final --data ev.jsonl --threads 1 --out s-adapter
want_rc 0
"$PY" "$LF" scores s-merged/scores.jsonl s-adapter/scores.jsonl 1e-5 || WHY+=("scores differ")
run "$BIN" generate --model base/final --adapter run/final --prompt "Question 3: what is" --temperature 0 \
    --max-new-tokens 8 --threads 1
want_rc 0
cp "$W/out" gen-adapter.txt
run "$BIN" generate --model merged --prompt "Question 3: what is" --temperature 0 --max-new-tokens 8 --threads 1
want_rc 0
cmp -s "$W/out" gen-adapter.txt || WHY+=("greedy generations differ: $(cat gen-adapter.txt) / $(cat "$W/out")")
done_check "score and generate --adapter equal the merged folder's"
run "$BIN" merge --model base/final --adapter run/final --out merged
want_rc 73
want_err "merged already exists"
done_check "merge refuses an existing --out (73)"
run "$BIN" merge --model base/final --adapter run/final --out merged-bf16 --dtype bf16
want_rc 0
run "$BIN" export --model merged --format gguf --out merged.gguf --json
want_rc 0
want_out '"architecture":"llama"'
want_file merged.gguf
done_check "merge --dtype bf16; export --format gguf of the merged folder"
G=$ROOT/tests/gguf
NODE=$(command -v node || command -v nodejs)
if [ -n "$NODE" ] && [ -d "$G/node_modules/node-llama-cpp" ] && [ -d "$G/node_modules/@node-llama-cpp/linux-x64" ] &&
    [ "$(uname -sm)" = "Linux x86_64" ]; then
    run "$BIN" generate --model base/final --adapter run/final --data ev.jsonl --temperature 0 --max-new-tokens 8 \
        --threads 1 --out gen-adapter
    want_rc 0
    printf '[{"kind":"gen","gguf":"%s","prompts":"%s","max_new":8,"out":"%s"}]\n' "$W/merged.gguf" "$W/ev.jsonl" \
        "$W/node.jsonl" >jobs.json
    export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true NODE_LLAMA_CPP_GPU=false
    run "$NODE" "$G/llama_cpp.mjs" jobs.json
    want_rc 0
    "$PY" "$G/compare.py" gen merged gen-adapter/samples.jsonl 1 f32 0.5 f32=node.jsonl ||
        WHY+=("llama.cpp's greedy continuations of the merged GGUF differ from generate --adapter")
    done_check "llama.cpp runs the merged model's GGUF: greedy continuations equal generate --adapter's"
else
    skip_check "llama.cpp on the merged GGUF" "node-llama-cpp is not installed in tests/gguf (scripts/setup.sh)"
fi

# ---- 2. equivalent folders
for kind in regex all_linear bf16 shuffled; do
    "$PY" "$LF" variant run/final v-$kind $kind || WHY+=("lora_folders.py variant $kind failed")
    run "$BIN" eval --model base/final --adapter v-$kind "${EV[@]}"
    want_rc 0
    got=$(nll_of)
    tol=1e-5
    [ $kind = bf16 ] && tol=1e-2
    "$PY" "$LF" close "$got" "$NLL" $tol || WHY+=("nll $got, want $NLL")
    done_check "an equivalent adapter folder loads ($kind)"
done

# ---- 3. bad folders
"$PY" "$LF" bad run/final bad >cases.txt || WHY+=("lora_folders.py bad failed")
while IFS='|' read -r name want; do
    run "$BIN" eval --model base/final --adapter bad/$name "${EV[@]}"
    want_rc 65
    want_err "$want"
    want_err "bad/$name"
    done_check "refused (65): $name: $want"
done <cases.txt
[ "$(wc -l <cases.txt)" -ge 15 ] || bad "lora_folders.py made $(wc -l <cases.txt) bad folders"
run "$BIN" eval --model base/final --adapter base/final "${EV[@]}"
want_rc 66
want_err "not a LoRA adapter folder"
done_check "a folder without adapter_config.json: 66"
run "$BIN" merge --model base/final --adapter bad/missing --out m-bad
want_rc 65
want_no m-bad
done_check "merge with a bad adapter: 65, no folder written"

# ---- 4. resume
same_rows() { "$PY" - "$1" "$2" <<'PY' || WHY+=("metrics differ: $1 $2")
import json, sys
rows = [[{k: v for k, v in json.loads(l).items() if k not in ("elapsed_s", "tokens_per_s")} for l in open(p)] for p in sys.argv[1:]]
sys.exit(0 if rows[0] == rows[1] and len(rows[0]) >= 5 else 1)
PY
}
cp -r run R && rm -rf R/final R/checkpoint-15 R/checkpoint-20
run "$BIN" "${LORA[@]}" --out R --resume R/checkpoint-10 data.jsonl
want_rc 0
want_err "resuming R/checkpoint-10 at step 10"
same_rows run/metrics.jsonl R/metrics.jsonl
want_same_file run/final/adapter_model.safetensors R/final/adapter_model.safetensors
done_check "LoRA resume from checkpoint-10: the same metrics rows and final adapter as 20 straight"
# the same with a bf16 base and dropout (the base is checkpointed as held; the masks are keyed by the AdamW step)
require "a LoRA run of 20 steps, bf16 base, dropout 0.2" "$BIN" "${LORA[@]}" --base-dtype bf16 --lora-dropout 0.2 --out H data.jsonl
cp -r H H2 && rm -rf H2/final H2/checkpoint-15 H2/checkpoint-20
run "$BIN" "${LORA[@]}" --base-dtype bf16 --lora-dropout 0.2 --out H2 --resume H2/checkpoint-10 data.jsonl
want_rc 0
same_rows H/metrics.jsonl H2/metrics.jsonl
want_same_file H/final/adapter_model.safetensors H2/final/adapter_model.safetensors
done_check "bf16 base + dropout: resume from checkpoint-10 gives the same metrics rows and final adapter"
"$PY" -c 'import json; f = json.load(open("run/checkpoint-10/trainer_state.json"))["files"]; assert "adapter/adapter_model.safetensors" in f' ||
    bad "trainer_state.json has no CRC-32 of adapter/adapter_model.safetensors"
cp -r run C && rm -rf C/final C/checkpoint-15 C/checkpoint-20
printf 'x' | dd of=C/checkpoint-10/adapter/adapter_model.safetensors bs=1 seek=200 conv=notrunc 2>/dev/null
run "$BIN" "${LORA[@]}" --out C --resume C/checkpoint-10 data.jsonl
want_rc 65
want_err "adapter/adapter_model.safetensors: CRC-32 mismatch"
done_check "a corrupt adapter/ in a checkpoint: 65 by its CRC-32"

KILL=(--max-steps 24 --save-every 1 --keep-last 2 --seed 7 --log-every 1)
run "$BIN" "${LORA[@]}" "${KILL[@]}" --out K0 data.jsonl
want_rc 0
K=$((7 % 5 + 8))
kill_after_rows "$K" K1 "$BIN" "${LORA[@]}" "${KILL[@]}" --out K1 data.jsonl
run "$BIN" "${LORA[@]}" "${KILL[@]}" --resume auto --out K1 data.jsonl
want_rc 0
want_err "resuming K1/checkpoint-"
same_rows K0/metrics.jsonl K1/metrics.jsonl
want_same_file K0/final/adapter_model.safetensors K1/final/adapter_model.safetensors
done_check "kill -9 after train row $K, then --resume auto: the uninterrupted LoRA run's rows and adapter"

# ---- 5. train --adapter
run "$BIN" --model base/final --adapter run/final --lr 0 --max-steps 2 --batch-size 4 --threads 1 --eval-data ev.jsonl \
    --out T0 data.jsonl
want_rc 0
want_same_file run/final/adapter_model.safetensors T0/final/adapter_model.safetensors
got=$("$PY" "$LF" nll T0/metrics.jsonl 2)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("nll $got of the adapter in training, $NLL logged by its run")
"$PY" - <<'PY' || WHY+=("T0/final/adapter_config.json does not carry the adapter's r, alpha, targets")
import json
a, b = (json.load(open(p + "/adapter_config.json")) for p in ("run/final", "T0/final"))
assert all(a[k] == b[k] for k in ("r", "lora_alpha")) and sorted(a["target_modules"]) == sorted(b["target_modules"])
PY
done_check "train --adapter --lr 0: the adapter unchanged, its eval nll the merged model's"
run "$BIN" --model base/final --adapter run/final --lora-rank 4 --lora-alpha 8 --max-steps 3 --batch-size 4 --threads 1 \
    --lr 1e-2 --out T1 data.jsonl
want_rc 0
cmp -s run/final/adapter_model.safetensors T1/final/adapter_model.safetensors && WHY+=("the adapter did not train")
done_check "train --adapter with agreeing --lora-rank/--lora-alpha trains the adapter"
while IFS='|' read -r want args; do
    # shellcheck disable=SC2086
    run "$BIN" --max-steps 1 --batch-size 2 --threads 1 --out refused $args data.jsonl
    want_rc 64
    want_err "$want"
    want_no refused/final
    done_check "refused (64): $args"
done <<T
conflicts with run/final's r = 4|--model base/final --adapter run/final --lora-rank 8
conflicts with run/final's lora_alpha = 8|--model base/final --adapter run/final --lora-alpha 16
--lora-targets conflicts|--model base/final --adapter run/final --lora-targets q_proj
--adapter needs --model BASE|--arch llama --preset tiny --tokenizer $TOK --adapter run/final
T
run "$BIN" --model base/final --adapter bad/rank --max-steps 1 --batch-size 2 --threads 1 --out refused data.jsonl
want_rc 65
want_err "rank mismatch"
done_check "train --adapter with a bad folder: 65"

# ---- 6. --train-head on an untied base (base/final with its own lm_head: the embedding plus noise)
mkdir -p ubase && cp base/final/*.json ubase/
"$PY" - "$LF" <<'PY' || bad "could not make the untied base"
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("lf", sys.argv[1]); lf = importlib.util.module_from_spec(spec); spec.loader.exec_module(lf)
t, meta = lf.read_st("base/final/model.safetensors")
e = t["model.embed_tokens.weight"][1]
head = (e + 0.02 * np.random.default_rng(3).standard_normal(e.shape)).astype("<f4")
lf.write_st("ubase/model.safetensors", [(k, d, a) for k, (d, a) in t.items()] + [("lm_head.weight", "F32", head)], meta)
c = json.load(open("ubase/config.json")); c["tie_word_embeddings"] = False
json.dump(c, open("ubase/config.json", "w"), indent=2)
PY
HL=(--model ubase --lora-rank 4 --lora-alpha 8 --lora-targets q_proj,v_proj --train-head --batch-size 4 --lr 1e-2
    --warmup 2 --threads 1 --eval-data ev.jsonl --eval-every 5 --save-every 5 --max-steps 20)
run "$BIN" "${HL[@]}" --out TH data.jsonl
want_rc 0
"$PY" - "$LF" <<'PY' || WHY+=("--train-head's adapter folder (above)")
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("lf", sys.argv[1]); lf = importlib.util.module_from_spec(spec); spec.loader.exec_module(lf)
bad = []
ac = json.load(open("TH/final/adapter_config.json"))
if ac.get("modules_to_save") != ["lm_head"]:
    bad.append("modules_to_save %r" % ac.get("modules_to_save"))
t, _ = lf.read_st("TH/final/adapter_model.safetensors")
b, _ = lf.read_st("ubase/model.safetensors")
h = t.get("base_model.model.lm_head.weight")
if h is None or h[1].shape != b["lm_head.weight"][1].shape or np.array_equal(h[1], b["lm_head.weight"][1]):
    bad.append("base_model.model.lm_head.weight missing, misshapen or untrained")
if "exp_avg.lm_head.weight" not in lf.read_st("TH/checkpoint-10/optimizer.safetensors")[0]:
    bad.append("checkpoint-10/optimizer.safetensors has no moments of the head")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done_check "--train-head: the head trains; modules_to_save [\"lm_head\"], base_model.model.lm_head.weight, its AdamW moments"
NLL=$("$PY" "$LF" nll TH/metrics.jsonl 20)
run "$BIN" eval --model ubase --adapter TH/final "${EV[@]}"
want_rc 0
got=$(nll_of)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("eval --adapter nll $got, the training-time eval logged $NLL")
run "$BIN" merge --model ubase --adapter TH/final --out THm
want_rc 0
run "$BIN" eval --model THm "${EV[@]}"
want_rc 0
got=$(nll_of)
"$PY" "$LF" close "$got" "$NLL" 1e-5 || WHY+=("the merged folder's nll $got, the training-time eval logged $NLL")
done_check "--train-head: eval --adapter and merge give the training-time nll (1e-5 relative)"
cp -r TH TH2 && rm -rf TH2/final TH2/checkpoint-15 TH2/checkpoint-20
run "$BIN" "${HL[@]}" --out TH2 --resume TH2/checkpoint-10 data.jsonl
want_rc 0
same_rows TH/metrics.jsonl TH2/metrics.jsonl
want_same_file TH/final/adapter_model.safetensors TH2/final/adapter_model.safetensors
done_check "--train-head: resume from checkpoint-10 is bit-exact"
while IFS='|' read -r want args; do
    # shellcheck disable=SC2086
    run "$BIN" --max-steps 1 --batch-size 2 --threads 1 --out refused $args data.jsonl
    want_rc 64
    want_err "$want"
    done_check "refused (64): $args"
done <<T
LM head is tied to its input embedding|--model base/final --lora-rank 4 --train-head
--train-head needs --lora-rank|--model ubase --train-head
--train-head conflicts with run/final|--model base/final --adapter run/final --train-head
T
finish
