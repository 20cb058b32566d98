#!/usr/bin/env bash
# scripts/gen_paper_data.py (issue #16's data) and scripts/paper_results.py: the generator rewrites the
# committed data/paper byte for byte (stage0.jsonl.gz, not committed, matches the README's sha256); stage 0
# holds no worked solution; the stage-1 subsets are nested prefixes of the pool, eval prompts are disjoint
# from it, every completion's equations are right and end in "#### N"; results.csv gets one row per run,
# epoch and setting, and --best-lambda picks the lambda with the best mean peak greedy accuracy.
# usage: test_paper_data.sh IQTRAIN REPO_ROOT   (harness: tests/lib/harness.sh)
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init paper_data "$@"
cd "$ROOT" || exit 2

"$PY" scripts/gen_paper_data.py --out "$W/gen" > "$W/gen.log" 2>&1
rc=$?
require "gen_paper_data.py exits 0 (got $rc)" test $rc -eq 0
n=0
for f in data/paper/*; do
  check "regenerated $(basename "$f") is byte-identical to the committed one" cmp -s "$f" "$W/gen/$(basename "$f")"
  n=$((n + 1))
done
check "data/paper holds the README and the stage-1 files ($n files)" test "$n" -ge 9
want=$(sed -n 's/^| stage0\.jsonl\.gz |.*| `\([0-9a-f]\{64\}\)` |$/\1/p' "$W/gen/README.md")
check "stage0.jsonl.gz matches the README's sha256" test "$(sha256sum < "$W/gen/stage0.jsonl.gz" | cut -d' ' -f1)" = "$want"

"$PY" - "$W/gen" > "$W/py.out" 2>&1 <<'PY'
import gzip, json, re, sys
d = sys.argv[1]
rows = lambda n: [json.loads(l) for l in gzip.open("%s/%s.jsonl.gz" % (d, n), "rt", encoding="utf-8")]
s0 = rows("stage0") + rows("stage0_eval")
assert all(set(r) == {"text"} for r in s0)
assert not any("####" in r["text"] for r in s0), "stage 0 has a #### line"
ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
EQ = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)")
for r in s0:
    for a, op, b, c in EQ.findall(r["text"]):
        assert ops[op](int(a), int(b)) == int(c), r
pool, ev = rows("stage1_pool"), rows("stage1_eval")
assert len(pool) == 4096 and len(ev) == 500
for n in (128, 256, 512, 1024, 2048):
    assert rows("stage1_train_%d" % n) == pool[:n], n
assert not {r["prompt"] for r in pool} & {r["prompt"] for r in ev}
assert len({r["prompt"] for r in pool + ev}) == 4596
s0_text = "\n".join(r["text"] for r in s0)
# stage 0c trains on data/arith's worked solutions: the held-out families are not there either
s0_text += "\n".join(r["prompt"] + r["completion"] for r in
                     (json.loads(l) for l in gzip.open("data/arith/train.jsonl.gz", "rt", encoding="utf-8")))
s1_text = "\n".join(r["prompt"] for r in pool + ev)
# one phrase of each held-out family's wording: in stage 1, never in stage 0
for marker in ("nobody gets off", "in each row.", "of them break", "in the summer", "left over?",
               "back toward home", "before the show", "'s farm has"):
    assert marker in s1_text and marker not in s0_text, marker
for r in pool + ev:
    m = re.search(r"\n#### (\d+)$", r["completion"])
    assert r["prompt"].startswith("Question: ") and r["prompt"].endswith("\nAnswer:") and m, r
    eqs = EQ.findall(r["completion"])
    assert eqs and int(eqs[-1][3]) == int(m.group(1)), r
    assert all(ops[op](int(a), int(b)) == int(c) for a, op, b, c in eqs), r
s0b = rows("stage0b") + rows("stage0b_eval")
assert [r["prompt"] + r["completion"] for r in s0b] == [r["text"] for r in s0], "stage0b is not stage 0 split"
assert all(r["prompt"] and "\n" not in r["prompt"] and r["completion"].startswith("\n") for r in s0b)
print("ok")
PY
check "stage 0 without ####, stage 0b = stage 0 split after the first line, stage-1 subsets nested, eval disjoint, every equation right ($(tail -c 200 "$W/py.out"))" \
  grep -qx ok "$W/py.out"

# paper_results.py on a made-up results folder: two runs of size 256 with two epochs and a final eval
mk() { # $1 = run folder, $2 = file, $3 = greedy accuracy
  mkdir -p "$1"
  printf '{"nll": 1.5, "td": 2.0, "token_accuracy": 0.7, "settings": [{"decoding": "greedy", "temperature": 0, "samples_per_prompt": 1, "accuracy": %s}, {"decoding": "sample", "temperature": 0.7, "samples_per_prompt": 4, "accuracy": 0.1, "self_bleu": 0.3}]}\n' "$3" > "$1/$2"
}
R=$W/res/n256
mk "$R/seed=1,lambda=0.01,gamma=1/epochs/epoch-1" eval.json 0.30
mk "$R/seed=1,lambda=0.01,gamma=1/epochs/epoch-2" eval.json 0.20
mk "$R/seed=1,lambda=0.01,gamma=1/eval" eval.json 0.20
mk "$R/seed=1,lambda=0.1,gamma=1/epochs/epoch-1" eval.json 0.10
mk "$R/seed=1,lambda=0.1,gamma=1/epochs/epoch-2" eval.json 0.25
mk "$R/seed=1,lambda=0,gamma=1,label-smoothing=0.1/epochs/epoch-1" eval.json 0.90
"$PY" scripts/paper_results.py "$W/res" > "$W/res.log" 2>&1
rc=$?
check "paper_results.py exits 0 (got $rc)" test $rc -eq 0
check "results.csv: header + 2 settings x 6 evals" test "$(wc -l < "$W/res/results.csv")" -eq 13
check "results.csv has the issue's columns" \
  grep -q "^lambda,gamma,label_smoothing,entropy_coef,train_size,seed,epoch,.*decoding,temperature,.*accuracy,.*self_bleu,eval_nll" "$W/res/results.csv"
check "a run without label-smoothing in its name gets 0, the final eval the last epoch" \
  grep -q "^0.01,1,0,0,256,1,2,final,greedy,0,,1,0.2," "$W/res/results.csv"
check "the label-smoothing run is labelled" grep -q "^0,1,0.1,0,256,1,1,epoch,greedy" "$W/res/results.csv"
best=$("$PY" scripts/paper_results.py "$W/res" --best-lambda 2> /dev/null)
check "--best-lambda: 0.01 (peak 0.30 beats 0.25; lambda 0 runs are not candidates), got '$best'" test "$best" = 0.01

# paper_report.py on the same folder: table.md with each arm, the paired difference against MLE (here none:
# no lambda 0 run without label smoothing), SEM shown as "-" for one seed
mk "$R/seed=1,lambda=0,gamma=1/epochs/epoch-1" eval.json 0.05
mk "$R/seed=1,lambda=0,gamma=1/epochs/epoch-2" eval.json 0.15
# MLE's final model swept over two temperatures: Self-BLEU 0.9 at 40 %, 0.5 at 20 % (0.8 -> 35 %, 0.7 -> 30 %, 0.6 -> 25 %)
mkdir -p "$R/seed=1,lambda=0,gamma=1/eval"
printf '{"nll": 1.5, "td": 2.0, "token_accuracy": 0.7, "settings": [%s, %s, %s]}\n' \
  '{"decoding": "greedy", "temperature": 0, "samples_per_prompt": 1, "accuracy": 0.15}' \
  '{"decoding": "sample", "temperature": 0.5, "samples_per_prompt": 4, "accuracy": 0.4, "self_bleu": 0.9}' \
  '{"decoding": "sample", "temperature": 1.0, "samples_per_prompt": 4, "accuracy": 0.2, "self_bleu": 0.5}' \
  > "$R/seed=1,lambda=0,gamma=1/eval/eval.json"
"$PY" scripts/paper_results.py "$W/res" > "$W/res.log" 2>&1
"$PY" scripts/paper_report.py "$W/res" > "$W/rep.log" 2>&1
rc=$?
check "paper_report.py exits 0 (got $rc: $(tail -c 300 "$W/rep.log"))" test $rc -eq 0
check "table.md: MLE's peak 15.0 at epoch 2, final 15.0" grep -q "^| MLE (λ 0) | 1 | 15.0 ± - | 2.0 ± - | 15.0 ± - |" "$W/res/table.md"
check "table.md: λ 0.01 paired with MLE, Δ peak +15.0, Δ final +5.0" grep -q "^| λ 0.01 | 1 | 15.0 ± - | 5.0 ± - |" "$W/res/table.md"
check "table.md: the label-smoothing arm is named" grep -q "^| label smoothing 0.1 | 1 | 90.0" "$W/res/table.md"
check "table.md: MLE's accuracy at Self-BLEU 0.8 / 0.7 / 0.6 interpolated between its temperatures: 35 / 30 / 25 %" \
  grep -q "^| MLE (λ 0) | 1 | .* | 35.0 ± - | 30.0 ± - | 25.0 ± - |$" "$W/res/table.md"
check "table.md: λ 0.01's one sample point brackets no level: '-'" grep -q "^| λ 0.01 | 1 | .* | - | - | - |$" "$W/res/table.md"
if command -v gnuplot > /dev/null; then
  check "epochs_n256.png written" test -s "$W/res/epochs_n256.png"
fi
finish
