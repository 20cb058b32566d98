#!/usr/bin/env bash
# Plots of a sweep (scripts/sweep.sh) with gnuplot, as PNG files in the sweep folder (or --png-dir):
#   accuracy_vs_selfbleu.png   sampling accuracy against Self-BLEU per lambda across temperatures (mean ± SEM
#                              over seeds, both axes)
#   greedy_vs_beam.png         greedy and beam accuracy per lambda (mean ± SEM)
#   training_curves.png        train nll, td and mean |r| per lambda over steps (mean over seeds)
#   epochs.png                 (runs with generation evals during training) greedy accuracy and eval nll per
#                              arm over epochs (mean ± SEM over seeds)
# and table.md, the numbers behind them (with per-epoch runs: peak and final accuracy and nll per arm).
# "Per lambda" groups by the arm (the run's name without seed=...) when arms differ in more than lambda (e.g.
# label smoothing); the paired differences are then taken from the arm with lambda, label smoothing and
# entropy bonus 0. The final results of a run are its source "eval" rows (iqtrain eval of final/), or without
# them its generation rows of the last step. Usage: scripts/plot.sh SWEEP_DIR [--png-dir DIR]
set -euo pipefail
SWEEP=${1:?usage: scripts/plot.sh SWEEP_DIR [--png-dir DIR]}
PNG=$SWEEP
[ "${2:-}" = "--png-dir" ] && PNG=${3:?--png-dir needs a folder}
command -v gnuplot >/dev/null || { echo "plot: gnuplot is missing (scripts/setup.sh installs gnuplot-nox)" >&2; exit 66; }
[ -f "$SWEEP/results.csv" ] || { echo "plot: $SWEEP/results.csv not found (run scripts/sweep.sh first)" >&2; exit 66; }
mkdir -p "$PNG"
DAT=$(mktemp -d)
trap 'rm -rf "$DAT"' EXIT

/usr/bin/python3 - "$SWEEP" "$DAT" "$PNG/table.md" <<'PY'
import csv, glob, json, math, os, sys
from collections import defaultdict
sweep, dat, table = sys.argv[1:4]

def f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None

def mean_sem(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var / len(xs))

all_rows = list(csv.DictReader(open(os.path.join(sweep, "results.csv"))))
for r in all_rows:
    r.setdefault("source", "eval")
    r.setdefault("arm", r.get("lambda", ""))
# each run's final results: its evaluation after training, else its generation rows of the last step
rows = []
for run in dict.fromkeys(r.get("run", "") for r in all_rows):
    mine = [r for r in all_rows if r.get("run", "") == run]
    ev = [r for r in mine if r["source"] == "eval"]
    if not ev:
        last = max((f(r.get("step")) or 0 for r in mine), default=0)
        ev = [r for r in mine if (f(r.get("step")) or 0) == last]
    rows += ev
# the grouping: lambda when it tells the arms apart, else the arm
by_lam = defaultdict(set)
for r in all_rows:
    by_lam[r.get("lambda", "")].add(r["arm"])
GROUP = "lambda" if all(len(a) == 1 for a in by_lam.values()) else "arm"
for r in all_rows:
    r["group"] = r.get("lambda", "") if GROUP == "lambda" else r["arm"]
lams = sorted({r["group"] for r in rows}, key=lambda x: (f(x) if f(x) is not None else -1, x))
# sampling: accuracy vs self-bleu per lambda and temperature
groups = defaultdict(list)
for r in rows:
    groups[(r["group"], r["decoding"], r.get("temperature", ""))].append(r)
lines = [f"| {GROUP} | decoding | temperature | seeds | accuracy | self-BLEU | pass@k | nll | td |",
         "|---|---|---|---|---|---|---|---|---|"]
for li, lam in enumerate(lams):
    with open(os.path.join(dat, f"sample_{li}.dat"), "w") as out:
        keys = sorted((k for k in groups if k[0] == lam and k[1] == "sample"), key=lambda k: f(k[2]))
        for k in keys:
            g = groups[k]
            acc, acc_e = mean_sem([f(x["accuracy"]) for x in g])
            sb, sb_e = mean_sem([f(x["self_bleu"]) for x in g])
            if acc is not None and sb is not None:
                out.write(f"{sb} {acc} {sb_e} {acc_e} {k[2]}\n")
    for k in sorted((k for k in groups if k[0] == lam), key=lambda k: (k[1], f(k[2]) or 0)):
        g = groups[k]
        acc, acc_e = mean_sem([f(x["accuracy"]) for x in g])
        sb, sb_e = mean_sem([f(x["self_bleu"]) for x in g])
        pk, _ = mean_sem([f(x["pass_at_k"]) for x in g])
        nll, _ = mean_sem([f(x["nll"]) for x in g])
        td, _ = mean_sem([f(x["td"]) for x in g])
        fmt = lambda m, e=None: "" if m is None else (f"{m:.4f}" if e is None else f"{m:.4f} ± {e:.4f}")
        lines.append(f"| {lam} | {k[1]} | {k[2]} | {len(g)} | {fmt(acc, acc_e)} | {fmt(sb, sb_e)} | {fmt(pk)} | "
                     f"{fmt(nll)} | {fmt(td)} |")
with open(os.path.join(dat, "greedy_beam.dat"), "w") as out:
    for i, lam in enumerate(lams):
        gm, ge = mean_sem([f(x["accuracy"]) for x in groups.get((lam, "greedy", "0"), [])])
        bm, be = mean_sem([f(x["accuracy"]) for k, v in groups.items() if k[0] == lam and k[1] == "beam" for x in v])
        out.write(f"{i} \"{lam}\" {gm if gm is not None else 'NaN'} {ge or 0} {bm if bm is not None else 'NaN'} {be or 0}\n")
# training curves from metrics.jsonl, averaged over the runs of each lambda
curves = defaultdict(lambda: defaultdict(list))
for m in glob.glob(os.path.join(sweep, "*", "metrics.jsonl")):
    run = os.path.basename(os.path.dirname(m))
    lam = next((r["group"] for r in all_rows if r.get("run") == run), None)
    if lam is None:
        continue
    for line in open(m):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("type") == "train":
            curves[lam][j["step"]].append((j["nll"], j["td"], j["reward_abs_mean"]))
for li, lam in enumerate(lams):
    with open(os.path.join(dat, f"curve_{li}.dat"), "w") as out:
        for step in sorted(curves[lam]):
            v = curves[lam][step]
            out.write(f"{step} " + " ".join(str(sum(x[i] for x in v) / len(v)) for i in range(3)) + "\n")
open(os.path.join(dat, "groups"), "w").write("\n".join(f"{GROUP} {g}" for g in lams) + "\n")

# paired by seed: each lambda's run minus the lambda = 0 run with the same seed (same data order and init)
def setting(r):
    return (r["decoding"], r.get("temperature", ""))
by_run = defaultdict(dict)
for r in rows:
    by_run[(r["group"], r.get("seed", ""))][setting(r)] = r
settings = sorted({setting(r) for r in rows}, key=lambda k: ({"greedy": 0, "beam": 1}.get(k[0], 2), f(k[1]) or 0))
mle = {r["group"] for r in rows if all(f(r.get(k)) == 0 for k in ("lambda", "label_smoothing", "entropy_coef")
                                       if r.get(k, "") != "")}
base = next(iter(mle)) if len(mle) == 1 else None
if base is not None and len(lams) > 1:
    lines += ["", f"Difference from {GROUP} {base}, paired by seed (mean ± SEM over seeds): accuracy, then Self-BLEU",
              "", f"| {GROUP} | " + " | ".join(f"{d} {t}".strip() for d, t in settings) + " |",
              "|---|" + "---|" * len(settings)]
    for lam in lams:
        if lam == base:
            continue
        for metric in ("accuracy", "self_bleu"):
            cells = []
            for st in settings:
                diffs = []
                for (l2, seed), runs in by_run.items():
                    if l2 != lam or (base, seed) not in by_run:
                        continue
                    a_, b_ = runs.get(st), by_run[(base, seed)].get(st)
                    if a_ and b_ and f(a_[metric]) is not None and f(b_[metric]) is not None:
                        diffs.append(f(a_[metric]) - f(b_[metric]))
                m, e = mean_sem(diffs)
                cells.append("" if m is None else f"{m:+.4f} ± {e:.4f}")
            lines.append(f"| {lam} ({'acc' if metric == 'accuracy' else 'self-BLEU'}) | " + " | ".join(cells) + " |")

# the reward as a quality signal: Spearman correlation of each sample's sum of r_t (and of its log-prob)
# with its correctness, per lambda and decoding setting (mean ± SEM over seeds; empty when undefined)
lines += ["", "Spearman correlation with correctness: reward sum (left) and sequence log-prob (right), mean ± SEM over seeds", "",
          f"| {GROUP} | " + " | ".join(f"{d} {t}".strip() for d, t in settings) + " |", "|---|" + "---|" * len(settings)]
for lam in lams:
    cells = []
    for st in settings:
        g = [r for (l2, _), runs in by_run.items() if l2 == lam for k, r in runs.items() if k == st]
        rm, re_ = mean_sem([f(x.get("spearman_reward")) for x in g])
        lm, le = mean_sem([f(x.get("spearman_logprob")) for x in g])
        cells.append("" if rm is None else f"{rm:+.3f} ± {re_:.3f} / {lm:+.3f} ± {le:.3f}")
    lines.append(f"| {lam} | " + " | ".join(cells) + " |")

# per epoch (generation evals during training): greedy accuracy and eval nll per arm over epochs, and each
# arm's peak and final (each seed's best and last epoch; mean ± SEM over seeds)
per_epoch = defaultdict(lambda: defaultdict(dict))  # arm -> seed -> epoch -> (greedy accuracy, eval nll)
for r in all_rows:
    if r["source"] == "train" and r["decoding"] == "greedy" and f(r.get("epoch")) is not None:
        per_epoch[r["arm"]][r.get("seed", "")][f(r["epoch"])] = (f(r["accuracy"]), f(r.get("eval_nll")))
arms = sorted(per_epoch)
with open(os.path.join(dat, "arms"), "w") as out:
    out.write("".join(f"{a}\n" for a in arms))
for ai, arm in enumerate(arms):
    seeds = per_epoch[arm]
    with open(os.path.join(dat, f"epoch_{ai}.dat"), "w") as out:
        for ep in sorted({e for s in seeds.values() for e in s}):
            acc, acc_e = mean_sem([s[ep][0] for s in seeds.values() if ep in s])
            nll, nll_e = mean_sem([s[ep][1] for s in seeds.values() if ep in s])
            out.write(f"{ep} {acc if acc is not None else 'NaN'} {acc_e or 0} {nll if nll is not None else 'NaN'} {nll_e or 0}\n")
if arms:
    lines += ["", "Per epoch: greedy accuracy and eval nll, each seed's peak (best epoch) and final (last epoch), "
              "mean ± SEM over seeds", "",
              "| arm | seeds | epochs | peak accuracy | at epoch | final accuracy | min eval nll | at epoch | final eval nll |",
              "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda m, e: "" if m is None else f"{m:.4f} ± {e:.4f}"
    for arm in arms:
        seeds = per_epoch[arm].values()
        pk = [max(s.items(), key=lambda kv: (kv[1][0] if kv[1][0] is not None else -1, -kv[0])) for s in seeds]
        lo = [min(((e, v) for e, v in s.items() if v[1] is not None), key=lambda kv: kv[1][1], default=(None, (None, None)))
              for s in seeds]
        last = [s[max(s)] for s in seeds]
        epochs = max((len(s) for s in seeds), default=0)
        pa, pae = mean_sem([v[0] for _, v in pk])
        pe, _ = mean_sem([e for e, _ in pk])
        fa, fae = mean_sem([v[0] for v in last])
        ln, lne = mean_sem([v[1] for _, v in lo])
        le, _ = mean_sem([e for e, _ in lo])
        fn, fne = mean_sem([v[1] for v in last])
        lines.append(f"| {arm} | {len(pk)} | {epochs} | {fmt(pa, pae)} | {'' if pe is None else f'{pe:.1f}'} | "
                     f"{fmt(fa, fae)} | {fmt(ln, lne)} | {'' if le is None else f'{le:.1f}'} | {fmt(fn, fne)} |")
open(table, "w").write("\n".join(lines) + "\n")
PY

plot_list() { # $1 = file prefix, $2 = using, $3 = style, $4 = the list of titles (one a line)
  local s="" sep="" i=0 t
  while IFS= read -r t; do
    s="$s$sep'$DAT/$1_$i.dat' using $2 $3 title '$t'"
    sep=", "
    i=$((i + 1))
  done < "${4:-$DAT/groups}"
  echo "$s"
}
gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output '$PNG/accuracy_vs_selfbleu.png'
set title 'Sampling accuracy vs Self-BLEU-4 across temperatures (mean ± SEM over seeds)'
set xlabel 'Self-BLEU-4 (lower = more diverse)'
set ylabel 'exact-match accuracy'
set key outside right
set grid
plot $(plot_list sample "1:2:3:4" "with xyerrorlines")
set output '$PNG/greedy_vs_beam.png'
set title 'Greedy and beam-search accuracy per lambda (mean ± SEM over seeds)'
set xlabel '$(cut -d' ' -f1 "$DAT/groups" | head -1)'
set ylabel 'exact-match accuracy'
set style data errorbars
set xtics ()
set offsets 0.5, 0.5, 0, 0
plot '$DAT/greedy_beam.dat' using (\$1-0.1):3:4:xtic(2) with yerrorbars pt 7 title 'greedy', \
     '$DAT/greedy_beam.dat' using (\$1+0.1):5:6 with yerrorbars pt 5 title 'beam'
set terminal pngcairo size 1500,500 noenhanced
set output '$PNG/training_curves.png'
set key inside top right
set multiplot layout 1,3 title 'Training curves (mean over seeds)'
unset offsets
set xtics auto
set xlabel 'step'
set title 'train nll'
set ylabel ''
plot $(plot_list curve "1:2" "with lines")
set title 'train td'
plot $(plot_list curve "1:3" "with lines")
set title 'mean |r|'
plot $(plot_list curve "1:4" "with lines")
unset multiplot
GP
made="$PNG/accuracy_vs_selfbleu.png $PNG/greedy_vs_beam.png $PNG/training_curves.png"
if [ -s "$DAT/arms" ]; then
  gnuplot <<GP
set terminal pngcairo size 1200,500 noenhanced
set output '$PNG/epochs.png'
set key outside bottom center horizontal
set grid
set multiplot layout 1,2 title 'Per epoch, on the eval rows (mean ± SEM over seeds)'
set xlabel 'epoch'
set title 'greedy accuracy'
plot $(plot_list epoch "1:2:3" "with yerrorlines" "$DAT/arms")
set title 'eval nll'
plot $(plot_list epoch "1:4:5" "with yerrorlines" "$DAT/arms")
unset multiplot
GP
  made="$made $PNG/epochs.png"
fi
echo "plot: $made $PNG/table.md" >&2
