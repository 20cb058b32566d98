#!/usr/bin/env bash
# scripts/sweep.sh and scripts/plot.sh on a tiny grid: every combination trains and evaluates, a second call
# skips finished runs and gives the same results.csv, an interrupted run is resumed, and the plots are made.
# usage: test_sweep.sh IQTRAIN REPO_ROOT
set -u
BIN=$1
ROOT=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() { # check NAME CONDITION...
  local name=$1
  shift
  if "$@"; then pass=$((pass + 1)); echo "ok    $name"; else fail=$((fail + 1)); echo "FAIL  $name"; fi
}
cd "$ROOT"
zcat data/arith/train.jsonl.gz | head -200 > "$T/train.jsonl"
zcat data/arith/eval.jsonl.gz | head -4 > "$T/eval.jsonl"
"$BIN" train-tokenizer --vocab-size 300 --out "$T/tok" "$T/train.jsonl" 2>/dev/null
sweep() {
  IQTRAIN=$BIN bash scripts/sweep.sh --out "$T/sw" --grid lambda=0,0.1 --grid seed=1,2 \
    --eval "--num-samples 2 --temperatures 0.5,1.0 --beam 2 --max-new-tokens 8" -- \
    --preset tiny --tokenizer "$T/tok" --max-steps 4 --batch-size 4 --log-every 2 --threads 2 \
    --eval-data "$T/eval.jsonl" "$T/train.jsonl"
}
sweep > "$T/log1" 2>&1
rc=$?
check "sweep exits 0" test $rc -eq 0
check "four runs trained and evaluated" test "$(ls -d "$T"/sw/lambda=*/eval 2>/dev/null | wc -l)" -eq 4
# header + 4 runs x 4 settings (greedy, beam, two temperatures)
check "results.csv has one row per run and setting" test "$(wc -l < "$T/sw/results.csv")" -eq 17
check "results.csv has accuracy and self_bleu columns" grep -q "accuracy.*self_bleu" "$T/sw/results.csv"
cp "$T/sw/results.csv" "$T/results1.csv"
# an interrupted run: drop one run's eval and final/, keep its checkpoints -> resumed, not retrained from 0
rm -rf "$T/sw/lambda=0.1,seed=2/eval" "$T/sw/lambda=0.1,seed=2/final"
sweep > "$T/log2" 2>&1
check "second call exits 0" test $? -eq 0
check "finished runs are skipped" test "$(grep -c 'done, skipped' "$T/log2")" -eq 3
check "the unfinished run is trained again" grep -q "lambda=0.1,seed=2: training" "$T/log2"
check "results.csv is the same after the rerun" cmp -s "$T/results1.csv" "$T/sw/results.csv"
IQTRAIN=$BIN bash scripts/sweep.sh --slim --out "$T/slim" --grid lambda=0.1 --grid seed=1 \
  --eval "--num-samples 2 --temperatures 1.0 --max-new-tokens 4" -- --preset tiny --tokenizer "$T/tok" --max-steps 2 \
  --save-every 1 --batch-size 4 --threads 2 --eval-data "$T/eval.jsonl" "$T/train.jsonl" > "$T/log4" 2>&1
check "--slim keeps eval.json and gzipped samples" test -s "$T/slim/lambda=0.1,seed=1/eval/eval.json" -a \
  -s "$T/slim/lambda=0.1,seed=1/eval/samples.jsonl.gz"
check "--slim drops checkpoints and final/" test ! -e "$T/slim/lambda=0.1,seed=1/final" -a \
  ! -e "$T/slim/lambda=0.1,seed=1/checkpoint-2"
bash scripts/plot.sh "$T/sw" > "$T/log3" 2>&1
check "plot exits 0" test $? -eq 0
for p in accuracy_vs_selfbleu greedy_vs_beam training_curves; do
  check "$p.png written" test -s "$T/sw/$p.png"
done
check "table.md has a row per lambda and setting" test "$(grep -c '^| 0' "$T/sw/table.md")" -ge 8
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
