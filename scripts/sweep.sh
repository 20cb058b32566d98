#!/usr/bin/env bash
# Grid sweeps over iqtrain options, resumable: finished runs are skipped, interrupted ones resumed.
#
#   scripts/sweep.sh [--out DIR] [--grid NAME=v1,v2,...]... [--eval "EVAL OPTIONS"] -- TRAIN OPTIONS... DATA...
#
# Default grid: lambda=0,0.01,0.1,1 and seed=1,2,3 (any option can be swept: --grid lr=1e-3,3e-4). Every
# combination trains into DIR/<name>=<value>,... with the same data and options (`iqtrain --resume auto`),
# then evaluates its final/ model (`iqtrain eval --model ... --out RUN/eval`, with --eval's options: by default
# greedy, beam 4 and 4 samples at temperatures 0.1,0.3,0.5,0.7,1.0 on the --eval-data of the train options).
# DIR/results.csv gets one row per run and decoding setting (rebuilt from every finished run's eval.json).
# --slim: after a run is evaluated, delete its checkpoints and final/ and gzip its samples.jsonl, keeping
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
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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
  if [ -f "$run/eval/eval.json" ]; then
    echo "sweep [$n/${#combos[@]}] $c: done, skipped" >&2
    continue
  fi
  if [ ! -f "$run/final/model.safetensors" ]; then
    echo "sweep [$n/${#combos[@]}] $c: training" >&2
    "$BIN" "${TRAIN[@]}" "${args[@]}" --resume auto --out "$run"
  fi
  echo "sweep [$n/${#combos[@]}] $c: evaluating" >&2
  # shellcheck disable=SC2086
  "$BIN" eval --model "$run/final" --data "$EVAL_DATA" $EVAL_OPTS --out "$run/eval.tmp" --json > /dev/null
  rm -rf "$run/eval" && mv "$run/eval.tmp" "$run/eval"
  if [ "$SLIM" = 1 ]; then
    rm -rf "$run"/checkpoint-* "$run/final"
    gzip -9n "$run/eval/samples.jsonl"
  fi
done

# results.csv from every finished run
/usr/bin/python3 - "$OUT" <<'PY'
import csv, glob, json, os, sys
out = sys.argv[1]
rows = []
for ev in sorted(glob.glob(os.path.join(out, "*", "eval", "eval.json"))):
    run = os.path.basename(os.path.dirname(os.path.dirname(ev)))
    params = dict(kv.split("=", 1) for kv in run.split(","))
    r = json.load(open(ev))
    base = {**params, "run": run, "nll": r.get("nll"), "td": r.get("td"), "ppl": r.get("ppl"),
            "token_accuracy": r.get("token_accuracy")}
    for s in r.get("settings", []):
        rows.append({**base, "decoding": s["decoding"], "temperature": s.get("temperature"), "beam": s.get("beam", ""),
                     "k": s.get("samples_per_prompt"), "accuracy": s.get("accuracy"), "pass_at_k": s.get("pass_at_k", ""),
                     "self_bleu": s.get("self_bleu", ""), "reward_correct": s.get("reward_correct"),
                     "reward_wrong": s.get("reward_wrong"), "logprob_correct": s.get("logprob_correct"),
                     "logprob_wrong": s.get("logprob_wrong"), "spearman_reward": s.get("spearman_reward_correct"),
                     "spearman_logprob": s.get("spearman_logprob_correct")})
if rows:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
print(f"sweep: {len(rows)} rows in {os.path.join(out, 'results.csv')}", file=sys.stderr)
PY
