#!/usr/bin/env bash
# scripts/sweep.sh and scripts/plot.sh on a tiny grid: every combination trains and evaluates, a second call
# skips finished runs and gives the same results.csv, an interrupted run is resumed, and the plots are made;
# a per-epoch sweep (generations evaluated during training, two sweeps adding arms to one folder) gives one
# results.csv row per run, epoch and setting, and the per-epoch plot and table.
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

# per epoch: generations evaluated during training (no evaluation after it), two sweeps into one folder give
# three arms (lambda 0 and 0.1, and label smoothing 0.1 at lambda 0), 2 seeds, 2 epochs of 3 steps
sed -n '1,12p' "$W/train.jsonl" > "$W/small.jsonl"
epochs() {
  IQTRAIN=$BIN bash scripts/sweep.sh --out "$W/ep" --eval none "$@" -- --preset tiny --tokenizer "$W/tok" \
    --epochs 2 --batch-size 4 --threads 2 --eval-data "$W/eval.jsonl" --eval-generation-every epoch \
    --eval-limit 2 --eval-max-new-tokens 6 --eval-num-samples 2 --eval-temperatures 0.7,1.0 "$W/small.jsonl"
}
epochs --grid lambda=0,0.1 --grid seed=1,2 > "$W/log5" 2>&1
check "per-epoch sweep (--eval none) exits 0" test $? -eq 0
epochs --grid label-smoothing=0.1 --grid lambda=0 --grid seed=1,2 > "$W/log6" 2>&1
check "a second sweep into the same folder exits 0" test $? -eq 0
check "no evaluation after training with --eval none" test ! -e "$W/ep/lambda=0,seed=1/eval"
"$PY" - "$W/ep/results.csv" > "$W/ep.check" 2>&1 <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
need = {"run", "arm", "lambda", "gamma", "label_smoothing", "entropy_coef", "seed", "source", "step", "epoch",
        "decoding", "temperature", "accuracy", "self_bleu", "eval_nll"}
assert need <= set(rows[0]), sorted(need - set(rows[0]))
# 6 runs x 2 epochs x 3 settings (greedy, two temperatures), all from training
assert len(rows) == 36 and {r["source"] for r in rows} == {"train"}, (len(rows), {r["source"] for r in rows})
assert sorted({r["epoch"] for r in rows}) == ["1", "2"], {r["epoch"] for r in rows}
arms = {"lambda=0", "lambda=0.1", "label-smoothing=0.1,lambda=0"}
assert {r["arm"] for r in rows} == arms, {r["arm"] for r in rows}
ls = [r for r in rows if r["arm"] == "label-smoothing=0.1,lambda=0"]
assert {(r["lambda"], r["label_smoothing"], r["entropy_coef"]) for r in ls} == {("0", "0.1", "0")}, ls[0]
assert all(r["eval_nll"] not in ("", None) for r in rows), "eval_nll missing"
print("ok")
PY
check "results.csv: one row per run, epoch and setting, with arm, the loss options, epoch and eval_nll" grep -qx ok "$W/ep.check"
bash scripts/plot.sh "$W/ep" > "$W/log7" 2>&1
check "plot of the per-epoch sweep exits 0" test $? -eq 0
check "epochs.png written" test -s "$W/ep/epochs.png"
check "table.md has peak and final accuracy per arm" test "$(grep -c '^| \(lambda\|label-smoothing\)=.* | 2 | 2 |' "$W/ep/table.md")" -eq 3
finish
