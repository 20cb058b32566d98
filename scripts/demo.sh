#!/usr/bin/env bash
# The README's demo: on a fresh Debian machine, installs what is missing, builds, and runs the main job
# on the bundled data: a tokenizer learned from data/arith, a look at what the trainer sees, then an
# IQLearn run (lambda 0.1) and an MLE run (lambda 0) side by side on the same data order, and their eval
# results. STEPS (default 300) sets the training budget of each run.
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

STEPS=${STEPS:-300}
for lam in 0.1 0; do
  echo
  echo "== 6. training, lambda $lam (preset small, $STEPS steps of 16 rows)"
  rm -rf "$OUT/lambda-$lam"
  "$BIN" --lambda "$lam" --tokenizer "$OUT/tokenizer" --preset small --max-steps "$STEPS" --warmup 30 --lr 1e-3 \
    --min-lr 1e-4 --batch-size 16 --log-every 25 --eval-every "$STEPS" --save-every 100 \
    --eval-data data/arith/eval.jsonl.gz --out "$OUT/lambda-$lam" data/arith/train.jsonl.gz
done

echo
echo "== 7. evaluation on data/arith/eval (500 held-out problems; both scored with lambda 0.1, gamma 0.99)"
printf '%-12s %10s %10s %10s %10s %16s\n' model nll td loss ppl token_accuracy
for lam in 0.1 0; do
  "$BIN" eval --model "$OUT/lambda-$lam/final" --data data/arith/eval.jsonl.gz --lambda 0.1 --gamma 0.99 --json |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("%-12s %10.4f %10.4f %10.4f %10.3f %16.4f" % (sys.argv[1], r["nll"], r["td"], r["loss"], r["ppl"], r["token_accuracy"]))' "lambda=$lam"
done
echo
echo "== 8. generation on the first 100 eval problems: greedy, and 4 samples at temperature 0.7"
printf '%-12s %16s %16s %10s %16s\n' model greedy_accuracy sample_accuracy pass@4 self_bleu_4
for lam in 0.1 0; do
  "$BIN" eval --model "$OUT/lambda-$lam/final" --data data/arith/eval.jsonl.gz --num-samples 4 --temperatures 0.7 \
    --limit 100 --max-new-tokens 64 --out "$OUT/lambda-$lam/eval" --json 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
g = [s for s in r["settings"] if s["decoding"] == "greedy"][0]
s = [s for s in r["settings"] if s["decoding"] == "sample"][0]
print("%-12s %16.3f %16.3f %10.3f %16.3f" % (sys.argv[1], g["accuracy"], s["accuracy"], s["pass_at_k"], s["self_bleu"]))' "lambda=$lam"
done
echo
echo "demo: done (runs, samples.jsonl and eval.json in $OUT). Budget: STEPS=$STEPS per run; more steps, more accuracy."
