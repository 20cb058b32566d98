#!/usr/bin/env bash
# run_oracle.sh CHAT_RENDER ROOT OUTDIR — the chat-template oracle comparison: generate the corpus, render it
# with @huggingface/jinja (with Python's strip(chars), and as published) and with the C interpreter, compare
# (tests/chat/compare.mjs). CHAT_CASES sets the conversations per template (default 1000). Exits 77 when node
# or the npm package is missing (the test shows as skipped), 1 on any unexplained mismatch.
set -euo pipefail
BIN=$1 ROOT=$2 OUT=$3
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
[ -f "$ROOT/tests/js/node_modules/@huggingface/jinja/dist/index.js" ] || { echo "@huggingface/jinja missing (scripts/setup.sh): skipped"; exit 77; }
mkdir -p "$OUT"
node "$ROOT/tests/chat/make_corpus.mjs" "${CHAT_CASES:-1000}" > "$OUT/corpus.jsonl"
node "$ROOT/tests/chat/oracle.mjs" "$ROOT" "$OUT/corpus.jsonl" --python-strip "$OUT" > "$OUT/oracle.jsonl"
node "$ROOT/tests/chat/oracle.mjs" "$ROOT" "$OUT/corpus.jsonl" > "$OUT/oracle_raw.jsonl"
"$BIN" "$ROOT/tests/fixtures/chat_templates" "$OUT/corpus.jsonl" > "$OUT/c.jsonl"
node "$ROOT/tests/chat/compare.mjs" "$OUT/corpus.jsonl" "$OUT/oracle.jsonl" "$OUT/c.jsonl" "$OUT/oracle_raw.jsonl"
