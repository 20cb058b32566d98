#!/usr/bin/env bash
# scripts/sweep.sh and scripts/plot.sh on a tiny grid: every combination trains and evaluates, a second call
# skips finished runs and gives the same results.csv, an interrupted run is resumed, and the plots are made.
# usage: test_sweep.sh IQTRAIN REPO_ROOT   (harness: tests/lib/harness.sh)
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init sweep "$@"
cd "$ROOT" || exit 2
zcat data/arith/train.jsonl.gz | head -200 > "$W/train.jsonl"
zcat data/arith/eval.jsonl.gz | head -4 > "$W/eval.jsonl"
"$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$W/train.jsonl" > "$W/tok.log" 2>&1
rc=$?
require "setup: train-tokenizer exits 0 (got $rc) and writes tok/tokenizer.json" test $rc -eq 0 -a -f "$W/tok/tokenizer.json"
sweep() {
  IQTRAIN=$BIN bash scripts/sweep.sh --out "$W/sw" --grid lambda=0,0.1 --grid seed=1,2 \
    --eval "--num-samples 2 --temperatures 0.5,1.0 --beam 2 --max-new-tokens 8" -- \
    --preset tiny --tokenizer "$W/tok" --max-steps 4 --batch-size 4 --log-every 2 --threads 2 \
    --eval-data "$W/eval.jsonl" "$W/train.jsonl"
}
sweep > "$W/log1" 2>&1
rc=$?
check "sweep exits 0" test $rc -eq 0
check "four runs trained and evaluated" test "$(ls -d "$W"/sw/lambda=*/eval 2>/dev/null | wc -l)" -eq 4
# header + 4 runs x 4 settings (greedy, beam, two temperatures)
check "results.csv has one row per run and setting" test "$(wc -l < "$W/sw/results.csv")" -eq 17
check "results.csv has accuracy and self_bleu columns" grep -q "accuracy.*self_bleu" "$W/sw/results.csv"
cp "$W/sw/results.csv" "$W/results1.csv"
# an interrupted run: drop one run's eval and final/, keep its checkpoints -> resumed, not retrained from 0
rm -rf "$W/sw/lambda=0.1,seed=2/eval" "$W/sw/lambda=0.1,seed=2/final"
sweep > "$W/log2" 2>&1
check "second call exits 0" test $? -eq 0
check "finished runs are skipped" test "$(grep -c 'done, skipped' "$W/log2")" -eq 3
check "the unfinished run is trained again" grep -q "lambda=0.1,seed=2: training" "$W/log2"
check "results.csv is the same after the rerun" cmp -s "$W/results1.csv" "$W/sw/results.csv"
IQTRAIN=$BIN bash scripts/sweep.sh --slim --out "$W/slim" --grid lambda=0.1 --grid seed=1 \
  --eval "--num-samples 2 --temperatures 1.0 --max-new-tokens 4" -- --preset tiny --tokenizer "$W/tok" --max-steps 2 \
  --save-every 1 --batch-size 4 --threads 2 --eval-data "$W/eval.jsonl" "$W/train.jsonl" > "$W/log4" 2>&1
check "--slim sweep exits 0" test $? -eq 0
check "--slim keeps eval.json and gzipped samples" test -s "$W/slim/lambda=0.1,seed=1/eval/eval.json" -a \
  -s "$W/slim/lambda=0.1,seed=1/eval/samples.jsonl.gz"
check "--slim drops checkpoints and final/" test ! -e "$W/slim/lambda=0.1,seed=1/final" -a \
  ! -e "$W/slim/lambda=0.1,seed=1/checkpoint-2"
bash scripts/plot.sh "$W/sw" > "$W/log3" 2>&1
check "plot exits 0" test $? -eq 0
for p in accuracy_vs_selfbleu greedy_vs_beam training_curves; do
  check "$p.png written" test -s "$W/sw/$p.png"
done
check "table.md has a row per lambda and setting" test "$(grep -c '^| 0' "$W/sw/table.md")" -ge 8
finish
