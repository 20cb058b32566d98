#!/usr/bin/env bash
# The README's demo: on a fresh Debian machine, installs what is missing, builds, and runs the main job
# on the bundled data. Today: trains a tokenizer on data/arith, validates and summarizes the
# demonstrations, and shows what the trainer will see of a few rows. (Training and evaluation join as
# they land: see the README's status section.)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
OUT=${OUT:-runs/demo}

bash scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$JOBS" >/dev/null
BIN=build/release/iqtrain
mkdir -p "$OUT"

echo "== 1. a byte-level BPE tokenizer learned from data/arith (GPT-2's pre-tokenizer)"
"$BIN" train-tokenizer --vocab-size 1024 --out "$OUT/tokenizer" data/arith/train.jsonl.gz

echo
echo "== 2. the demonstrations, validated exactly as training reads them"
for split in train eval; do
  printf '%-6s' "$split"
  "$BIN" tokenize --tokenizer "$OUT/tokenizer" --data "data/arith/$split.jsonl.gz" --json
done

echo
echo "== 3. what the trainer sees of two rows ([supervised], \$ terminal EOS)"
"$BIN" tokenize --tokenizer "$OUT/tokenizer" --data data/arith/eval.jsonl.gz --show-mask --limit 2

echo
echo "== 4. a multi-turn row (every assistant turn is its own episode)"
sed -n 3p data/samples/messages.jsonl > "$OUT/multi-turn.jsonl"
"$BIN" tokenize --tokenizer "$OUT/tokenizer" --data "$OUT/multi-turn.jsonl" --show-mask

echo
echo "== 5. tokenizer throughput (GPT-2's vocabulary, 1 thread)"
"$BIN" bench --what tokenizer --tokenizer tests/fixtures/gpt2 --threads 1 --repeat 3

echo
echo "demo: done. Training (IQLearn vs MLE side by side) joins this demo when the training core lands."
