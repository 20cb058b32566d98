#!/usr/bin/env bash
# Grid sweeps over iqtrain options, resumable: finished runs are skipped, interrupted ones resumed.
#
#   scripts/sweep.sh [--out DIR] [--grid NAME=v1,v2,...]... [--eval "EVAL OPTIONS"] -- TRAIN OPTIONS... DATA...
#
# Default grid: lambda=0,0.01,0.1,1 and seed=1,2,3 (any option can be swept: --grid lr=1e-3,3e-4). Every
# combination trains into DIR/<name>=<value>,... with the same data and options (`iqtrain --resume auto`),
# then evaluates its final/ model (`iqtrain eval --model ... --out RUN/eval`, with --eval's options: by default
# greedy, beam 4 and 4 samples at temperatures 0.1,0.3,0.5,0.7,1.0 on the --eval-data of the train options).
# --eval none: no evaluation after training (e.g. when the train options evaluate generations during training).
# Per epoch: with `--eval-generation-every epoch` (and its --eval-* settings) in the train options, each run
# also writes "generation" rows to its metrics.jsonl at every epoch's end, so peak and final accuracy can both
# be read.
# DIR/results.csv, rebuilt from every run in DIR (several sweeps into one DIR add arms): one row per run, source
# and decoding setting. source "eval" = the evaluation of final/ after training (eval/eval.json); source
# "train" = one row per generation eval during training (step, epoch). Columns: run, arm (the run's name
# without seed=...), the grid's options (with _ for -), lambda, gamma, label_smoothing, entropy_coef, seed
# (from run.json when not in the grid), data (the training files' names), source, step, epoch, decoding,
# temperature, beam, k, accuracy, pass_at_k, self_bleu, eval_nll (and nll, td, ppl, token_accuracy of the
# eval rows at that step), the reward and log-prob means of correct and wrong samples and their Spearman
# correlations with correctness.
# --slim: after a run is done, delete its checkpoints and final/ and gzip its samples.jsonl, keeping
# run.json, metrics.jsonl and eval/ (small enough to commit, e.g. under data/results/).
# Environment: IQTRAIN (binary, default build/release/iqtrain).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${IQTRAIN:-build/release/iqtrain}
OUT=runs/sweep
GRIDS=()
EVAL_OPTS="--beam 4 --num-samples 4 --temperatures 0.1,0.3,0.5,0.7,1.0 --max-new-tokens 96"
SLIM=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --grid) GRIDS+=("$2"); shift 2 ;;
    --eval) EVAL_OPTS=$2; shift 2 ;;
    --slim) SLIM=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "sweep: unknown argument $1 (train options go after --)" >&2; exit 64 ;;
  esac
done
TRAIN=("$@")
[ ${#TRAIN[@]} -gt 0 ] || { echo "sweep: give the train options and data after --" >&2; exit 64; }
[ ${#GRIDS[@]} -gt 0 ] || GRIDS=("lambda=0,0.01,0.1,1" "seed=1,2,3")
[ -x "$BIN" ] || { echo "sweep: $BIN is not built (scripts/demo.sh or scripts/test.sh builds it)" >&2; exit 66; }

# the eval data: the train options' --eval-data (sweeps compare on held-out rows)
EVAL_DATA=""
for ((i = 0; i < ${#TRAIN[@]}; i++)); do
  case "${TRAIN[$i]}" in
    --eval-data) EVAL_DATA=${TRAIN[$((i + 1))]} ;;
    --eval-data=*) EVAL_DATA=${TRAIN[$i]#--eval-data=} ;;
  esac
done
[ -n "$EVAL_DATA" ] || { echo "sweep: the train options need --eval-data FILE (the rows to evaluate on)" >&2; exit 64; }

# all combinations of the grid, as "name=value,name=value"
combos=("")
for g in "${GRIDS[@]}"; do
  name=${g%%=*}
  IFS=',' read -r -a vals <<< "${g#*=}"
  next=()
  for c in "${combos[@]}"; do
    for v in "${vals[@]}"; do next+=("${c:+$c,}$name=$v"); done
  done
  combos=("${next[@]}")
done

mkdir -p "$OUT"
n=0
for c in "${combos[@]}"; do
  n=$((n + 1))
  run="$OUT/$c"
  args=()
  IFS=',' read -r -a kv <<< "$c"
  for x in "${kv[@]}"; do args+=("--${x%%=*}" "${x#*=}"); done
  trained=0
  grep -q '"type":"final"' "$run/metrics.jsonl" 2>/dev/null && trained=1
  if { [ "$EVAL_OPTS" = none ] && [ $trained = 1 ]; } || [ -f "$run/eval/eval.json" ]; then
    echo "sweep [$n/${#combos[@]}] $c: done, skipped" >&2
    continue
  fi
  if [ $trained = 0 ] || [ ! -f "$run/final/model.safetensors" ]; then
    echo "sweep [$n/${#combos[@]}] $c: training" >&2
    "$BIN" "${TRAIN[@]}" "${args[@]}" --resume auto --out "$run"
  fi
  if [ "$EVAL_OPTS" != none ]; then
    echo "sweep [$n/${#combos[@]}] $c: evaluating" >&2
    # shellcheck disable=SC2086
    "$BIN" eval --model "$run/final" --data "$EVAL_DATA" $EVAL_OPTS --out "$run/eval.tmp" --json > /dev/null
    rm -rf "$run/eval" && mv "$run/eval.tmp" "$run/eval"
  fi
  if [ "$SLIM" = 1 ]; then
    rm -rf "$run"/checkpoint-* "$run/final"
    [ ! -f "$run/eval/samples.jsonl" ] || gzip -9n "$run/eval/samples.jsonl"
  fi
done

# results.csv from every run
/usr/bin/python3 - "$OUT" <<'PY'
import csv, glob, json, os, sys
out = sys.argv[1]
SETTING = {"decoding": "decoding", "temperature": "temperature", "beam": "beam", "k": "samples_per_prompt",
           "accuracy": "accuracy", "pass_at_k": "pass_at_k", "self_bleu": "self_bleu",
           "reward_correct": "reward_correct", "reward_wrong": "reward_wrong", "logprob_correct": "logprob_correct",
           "logprob_wrong": "logprob_wrong", "spearman_reward": "spearman_reward_correct",
           "spearman_logprob": "spearman_logprob_correct"}
OPTION_COLUMNS = ("lambda", "gamma", "label-smoothing", "entropy-coef", "seed")

def num(v):
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else v

def setting_row(s):
    return {c: s.get(k, "") for c, k in SETTING.items()}

def metrics(run_dir):
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return []

rows = []
for rj in sorted(glob.glob(os.path.join(out, "*", "run.json"))):
    run_dir = os.path.dirname(rj)
    run = os.path.basename(run_dir)
    kv = [x.split("=", 1) for x in run.split(",") if "=" in x]
    params = {k.replace("-", "_"): v for k, v in kv}
    info = json.load(open(rj))
    opts = info.get("options", {})
    for k in OPTION_COLUMNS:
        params.setdefault(k.replace("-", "_"), num(opts.get(k, "")))
    base = {"run": run, "arm": ",".join(f"{k}={v}" for k, v in kv if k != "seed") or "default", **params,
            "data": "+".join(os.path.basename(d) for d in info.get("data", []))}
    m = metrics(run_dir)
    evals = {r["step"]: r for r in m if r.get("type") == "eval"}
    final = [r for r in m if r.get("type") == "final"]
    for g in (r for r in m if r.get("type") == "generation"):
        e = evals.get(g["step"], {})
        rows.append({**base, "source": "train", "step": g["step"], "epoch": g["epoch"], "eval_nll": e.get("nll"),
                     "nll": e.get("nll"), "td": e.get("td"), "ppl": e.get("ppl"),
                     "token_accuracy": e.get("token_accuracy"), **setting_row(g)})
    ev = os.path.join(run_dir, "eval", "eval.json")
    if os.path.isfile(ev):
        r = json.load(open(ev))
        step, epoch = (final[-1]["step"], final[-1]["epoch"]) if final else ("", "")
        for s in r.get("settings", []):
            rows.append({**base, "source": "eval", "step": step, "epoch": epoch, "eval_nll": r.get("nll"),
                         "nll": r.get("nll"), "td": r.get("td"), "ppl": r.get("ppl"),
                         "token_accuracy": r.get("token_accuracy"), **setting_row(s)})
if rows:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
print(f"sweep: {len(rows)} rows in {os.path.join(out, 'results.csv')}", file=sys.stderr)
PY
