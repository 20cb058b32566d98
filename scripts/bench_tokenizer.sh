#!/usr/bin/env bash
# Tokenizer throughput: iqtrain (1 thread and all threads) against js-tiktoken (gpt2, single-threaded,
# Node.js) on the same text in the same run. Usage: scripts/bench_tokenizer.sh [TEXT_FILE] [--json]
# Default text: data/arith/train.jsonl.gz decompressed (5.3 MB of JSONL).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${IQTRAIN:-build/release/iqtrain}
TEXT=""
JSON=0
for a in "$@"; do
  case "$a" in
    --json) JSON=1 ;;
    *) TEXT=$a ;;
  esac
done
[ -x "$BIN" ] || { echo "bench_tokenizer: $BIN not built (run scripts/test.sh or scripts/demo.sh first)" >&2; exit 66; }
[ -d tests/js/node_modules/js-tiktoken ] || bash scripts/setup.sh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$TEXT" ]; then
  zcat data/arith/train.jsonl.gz > "$TMP/text.txt"
  TEXT="$TMP/text.txt"
fi
NT=$(nproc)
ours1=$("$BIN" bench --what tokenizer --tokenizer tests/fixtures/gpt2 --input "$TEXT" --threads 1 --repeat 5 --json)
oursN=$("$BIN" bench --what tokenizer --tokenizer tests/fixtures/gpt2 --input "$TEXT" --threads "$NT" --repeat 5 --json)
js=$(node tests/js/tiktoken_bench.mjs "$TEXT" --repeat 3)
/usr/bin/python3 - "$ours1" "$oursN" "$js" "$TEXT" "$JSON" <<'PY'
import json, sys, platform
o1, on, js = (json.loads(x) for x in sys.argv[1:4])
text, as_json = sys.argv[4], sys.argv[5] == "1"
assert o1["tokens"] == js["tokens"] == on["tokens"], f"token counts differ: {o1['tokens']} {on['tokens']} {js['tokens']}"
res = {"text": text, "bytes": o1["bytes"], "tokens": o1["tokens"],
       "iqtrain_1thread_mb_s": o1["mb_per_s"], f"iqtrain_{on['threads']}threads_mb_s": on["mb_per_s"],
       "js_tiktoken_mb_s": js["mb_per_s"], "ratio_1thread": o1["mb_per_s"] / js["mb_per_s"],
       "machine": platform.processor() or platform.machine()}
if as_json:
    print(json.dumps(res))
else:
    print(f"text: {text} ({o1['bytes']} bytes, {o1['tokens']} tokens, same count from all three)")
    print(f"{'tokenizer':<28}{'MB/s':>10}{'vs js-tiktoken':>16}")
    print(f"{'js-tiktoken 1.0.21 (gpt2)':<28}{js['mb_per_s']:>10.2f}{1.0:>15.1f}x")
    print(f"{'iqtrain, 1 thread':<28}{o1['mb_per_s']:>10.2f}{o1['mb_per_s']/js['mb_per_s']:>15.1f}x")
    print(f"{'iqtrain, %d threads' % on['threads']:<28}{on['mb_per_s']:>10.2f}{on['mb_per_s']/js['mb_per_s']:>15.1f}x")
PY
