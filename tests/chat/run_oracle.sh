#!/usr/bin/env bash
# run_oracle.sh CHAT_RENDER ROOT OUTDIR — the chat-template oracle comparison: generate the corpus
# (make_corpus.mjs), render it with Python's Jinja2 in transformers' environment (oracle_jinja2.py, the
# normative oracle; Debian's python3-jinja2), with @huggingface/jinja (oracle.mjs: with Python's strip and
# trim, and as published) and with the C interpreter (chat_render), and compare (compare.mjs).
# CHAT_CASES sets the conversations per template (default 1000, plus a fifth as many tool conversations).
# Exits 77 when node or @huggingface/jinja is missing (skipped), 1 on any mismatch. Without python3-jinja2
# the normative oracle is left out, with a note, and the comparison runs against @huggingface/jinja alone.
set -euo pipefail
BIN=$1 ROOT=$2 OUT=$3
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
[ -f "$ROOT/tests/js/node_modules/@huggingface/jinja/dist/index.js" ] || { echo "@huggingface/jinja missing (scripts/setup.sh): skipped"; exit 77; }
mkdir -p "$OUT"
FIX=$ROOT/tests/fixtures/chat_templates
node "$ROOT/tests/chat/make_corpus.mjs" "${CHAT_CASES:-1000}" > "$OUT/corpus.jsonl"
node "$ROOT/tests/chat/oracle.mjs" "$ROOT" "$OUT/corpus.jsonl" --python-strip "$OUT" > "$OUT/hf.jsonl"
node "$ROOT/tests/chat/oracle.mjs" "$ROOT" "$OUT/corpus.jsonl" > "$OUT/hf_raw.jsonl"
"$BIN" "$FIX" "$OUT/corpus.jsonl" > "$OUT/c.jsonl"
ORACLES=(--hf "$OUT/hf.jsonl" --hf-raw "$OUT/hf_raw.jsonl")
rc=0
/usr/bin/python3 "$ROOT/tests/chat/oracle_jinja2.py" "$FIX" "$OUT/corpus.jsonl" > "$OUT/jinja2.jsonl" || rc=$?
if [ "$rc" -eq 0 ]; then ORACLES=(--jinja2 "$OUT/jinja2.jsonl" "${ORACLES[@]}")
elif [ "$rc" -eq 77 ]; then echo "NOTE: python3-jinja2 missing: the normative oracle (Python's Jinja2) was not run"
else echo "oracle_jinja2.py failed (exit $rc)"; exit 1; fi
node "$ROOT/tests/chat/compare.mjs" "$OUT/corpus.jsonl" "$OUT/c.jsonl" "${ORACLES[@]}"
