#!/usr/bin/python3
"""table.md and plots of the paper-regime experiment (issue #16) from its results.csv.

  /usr/bin/python3 scripts/paper_report.py DIR          (DIR = data/results/paper; needs gnuplot for the PNGs)

Reads DIR/results.csv (scripts/paper_results.py) and writes:
  DIR/table.md                   per train size and arm, mean ± SEM over seeds: peak and final greedy accuracy
                                 over the epoch checkpoints, min and final held-out nll, sample accuracy and
                                 Self-BLEU, beam - greedy, the reward-correctness correlation, sample accuracy
                                 at equal Self-BLEU; and each arm's difference from MLE paired by seed
  DIR/epochs_n<SIZE>.png         greedy accuracy and held-out nll per arm over epochs (the Fig. 7 analogue)
  DIR/accuracy_vs_selfbleu.png   the final models' sample accuracy against Self-BLEU across temperatures (Fig. 2)
An arm is a run's settings without its seed (lambda, gamma, label smoothing, entropy coefficient); MLE is the
arm with all of them 0 (gamma 1). SEM = sample standard deviation / sqrt(n) over seeds ("±-" with one seed).
"""

import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

ARM_KEYS = ("lambda", "gamma", "label_smoothing", "entropy_coef")


def f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def arm_of(r):
    return tuple(r[k] for k in ARM_KEYS)


def is_mle(arm):
    lam, gamma, ls, ent = arm
    return f(lam) == 0 and f(ls) == 0 and f(ent) == 0


def arm_name(arm):
    lam, gamma, ls, ent = arm
    if f(ls) > 0:
        return "label smoothing %s" % ls
    if f(ent) > 0:
        return "entropy bonus %s" % ent
    if f(lam) == 0:
        return "MLE (λ 0)"
    return "λ %s" % lam + ("" if f(gamma) == 1 else " γ %s" % gamma)


def arm_order(arm):
    lam, gamma, ls, ent = arm
    return (f(ls) > 0, f(ent) > 0, f(gamma) != 1, f(lam))


def mean_sem(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var / len(xs))


def cell(xs, scale, digits):
    """fmt of the mean ± SEM of xs, with "(k of n)" when only k of the n values exist (nan: the rest)."""
    k = sum(1 for x in xs if not math.isnan(x))
    return fmt(mean_sem(xs), scale, digits) + ("" if k in (0, len(xs)) else " (%d of %d)" % (k, len(xs)))


def fmt(ms, scale=1.0, digits=1):
    m, s = ms
    if math.isnan(m):
        return "-"
    s = "-" if math.isnan(s) else "%.*f" % (digits, s * scale)
    return "%.*f ± %s" % (digits, m * scale, s)


# Self-BLEU levels at which arms are compared at equal diversity (the paper's Fig. 2 read at fixed x)
BLEU_LEVELS = (0.8, 0.7, 0.6)


def at_self_bleu(fig2, level):
    """A final model's sample accuracy at Self-BLEU `level`, linear between the two temperatures of its sweep whose
    Self-BLEU brackets it (Self-BLEU falls as T rises); nan when no pair does."""
    pts = [(t, a, b) for t, a, b in fig2 if not (math.isnan(a) or math.isnan(b))]
    for (_, a0, b0), (_, a1, b1) in zip(pts, pts[1:]):
        if min(b0, b1) <= level <= max(b0, b1) and b0 != b1:
            return a0 + (level - b0) / (b1 - b0) * (a1 - a0)
    return float("nan")


def per_run(rows):
    """run -> summary of its epoch checkpoints and its final model's evaluation."""
    runs = defaultdict(lambda: {"epochs": {}, "final": {}, "samples": {}})
    for r in rows:
        d = runs[r["run"]]
        d["arm"], d["size"], d["seed"] = arm_of(r), int(r["train_size"]), r["seed"]
        if r["checkpoint"] == "epoch":
            e = int(r["epoch"])
            if r["decoding"] == "greedy":
                d["epochs"][e] = (f(r["accuracy"]), f(r["eval_nll"]))
            elif r["decoding"] == "sample":
                d["samples"][(e, f(r["temperature"]))] = (f(r["accuracy"]), f(r["self_bleu"]))
        else:
            d["final"][(r["decoding"], f(r["temperature"]))] = r
    out = {}
    for name, d in runs.items():
        if not d["epochs"]:
            continue
        eps = sorted(d["epochs"])
        acc = [d["epochs"][e][0] for e in eps]
        nll = [d["epochs"][e][1] for e in eps]
        last, quarter = eps[-1], max(1, len(nll) // 4)
        s = {"arm": d["arm"], "size": d["size"], "seed": d["seed"], "epochs": d["epochs"], "last": last,
             "peak_acc": max(acc), "peak_epoch": eps[acc.index(max(acc))], "final_acc": acc[-1],
             "min_nll": min(nll), "min_epoch": eps[nll.index(min(nll))], "final_nll": nll[-1],
             # the last epoch alone moves by ±0.03 from one epoch to the next: the mean of the last quarter too
             "late_nll": sum(nll[-quarter:]) / quarter}
        for t in (0.7, 1.0):
            s["acc_t%g" % t], s["bleu_t%g" % t] = d["samples"].get((last, t), (float("nan"), float("nan")))
        fin = d["final"]
        g, b = fin.get(("greedy", 0.0)), fin.get(("beam", 0.0))
        s["beam_minus_greedy"] = f(b["accuracy"]) - f(g["accuracy"]) if g and b else float("nan")
        t1 = fin.get(("sample", 1.0))
        s["rho_reward"] = f(t1["spearman_reward"]) if t1 else float("nan")
        s["rho_logprob"] = f(t1["spearman_logprob"]) if t1 else float("nan")
        s["fig2"] = sorted((t, f(r["accuracy"]), f(r["self_bleu"])) for (dec, t), r in fin.items() if dec == "sample")
        for level in BLEU_LEVELS:
            s["acc_at_bleu%g" % level] = at_self_bleu(s["fig2"], level)
        out[name] = s
    return out


def table(runs):
    sizes = sorted({s["size"] for s in runs.values()})
    lines = ["# Paper-regime experiment: results (mean ± SEM over seeds)", "",
             "Made by `scripts/paper_report.py` from results.csv. Accuracies in %, on the first 200 eval problems",
             "(epoch checkpoints: greedy each epoch; samples at T 0.7 and 1.0 at the last epoch) and on the first 100",
             "for the final model (beam 4, the reward correlation at T 1.0). nll: all 500 eval rows, per token;",
             "\"last quarter\": its mean over the last quarter of the epochs (4 of 16, 2 of 8).",
             "acc @ Self-BLEU x: the final model's sample accuracy at equal diversity, interpolated between the",
             "temperatures of its sweep (T 0.1 ... 1.0) whose Self-BLEU brackets x.", ""]
    metrics = [("peak greedy acc", "peak_acc", 100, 1), ("(epoch)", "peak_epoch", 1, 1),
               ("final greedy acc", "final_acc", 100, 1), ("min eval nll", "min_nll", 1, 3),
               ("(epoch)", "min_epoch", 1, 1), ("final eval nll", "final_nll", 1, 3),
               ("eval nll, last quarter", "late_nll", 1, 3),
               ("acc T0.7", "acc_t0.7", 100, 1), ("Self-BLEU T0.7", "bleu_t0.7", 1, 3),
               ("acc T1.0", "acc_t1", 100, 1), ("Self-BLEU T1.0", "bleu_t1", 1, 3),
               ("beam − greedy", "beam_minus_greedy", 100, 1), ("ρ(reward, correct)", "rho_reward", 1, 2),
               ("ρ(logprob, correct)", "rho_logprob", 1, 2)] + [
        ("acc @ Self-BLEU %g" % v, "acc_at_bleu%g" % v, 100, 1) for v in BLEU_LEVELS]
    paired = [("Δ peak acc", "peak_acc", 100, 1), ("Δ final acc", "final_acc", 100, 1),
              ("Δ min nll", "min_nll", 1, 3), ("Δ final nll", "final_nll", 1, 3),
              ("Δ nll, last quarter", "late_nll", 1, 3),
              ("Δ beam − greedy", "beam_minus_greedy", 100, 1), ("Δ ρ(reward, correct)", "rho_reward", 1, 2)] + [
        ("Δ acc @ Self-BLEU %g" % v, "acc_at_bleu%g" % v, 100, 1) for v in BLEU_LEVELS]
    for size in sizes:
        arms = arms_of(runs, size)
        order = sorted(arms, key=arm_order)
        lines += ["## %d training rows" % size, "",
                  "| arm | seeds | " + " | ".join(m[0] for m in metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for a in order:
            ss = arms[a]
            lines.append("| %s | %d | " % (arm_name(a), len(ss)) + " | ".join(
                cell([x[k] for x in ss], sc, dg) for _, k, sc, dg in metrics) + " |")
        mle = next((a for a in order if is_mle(a)), None)
        if mle is not None:
            base = {x["seed"]: x for x in arms[mle]}
            lines += ["", "Paired by seed, arm − MLE:", "",
                      "| arm | pairs | " + " | ".join(m[0] for m in paired) + " |",
                      "|---|---|" + "---|" * len(paired)]
            for a in order:
                if a == mle:
                    continue
                pairs = [(x, base[x["seed"]]) for x in arms[a] if x["seed"] in base]
                lines.append("| %s | %d | " % (arm_name(a), len(pairs)) + " | ".join(
                    cell([x[k] - y[k] for x, y in pairs], sc, dg) for _, k, sc, dg in paired) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plots(runs, out):
    if not shutil.which("gnuplot"):
        print("paper_report: gnuplot is missing: no PNGs (scripts/setup.sh installs gnuplot-nox)", file=sys.stderr)
        return
    # one colour and point type per arm, the same in every panel
    style = {a: i + 1 for i, a in enumerate(sorted({s["arm"] for s in runs.values()}, key=arm_order))}
    tmp = tempfile.mkdtemp()
    try:
        script = ["set grid"] + epochs_script(runs, style, tmp, out) + fig2_script(runs, style, tmp, out)
        subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    finally:
        shutil.rmtree(tmp)


def curve(path, title, arm_style, columns, bars):
    return "'%s' using %s with %s lc %d pt %d title '%s'" % (path, columns, bars, arm_style, arm_style, title)


def epochs_script(runs, style, tmp, out):
    """epochs_n<SIZE>.png: greedy accuracy and held-out nll per arm over epochs (mean ± SEM over seeds)."""
    script = ["set terminal pngcairo size 1400,600 noenhanced"]
    for size in sorted({s["size"] for s in runs.values()}):
        arms = arms_of(runs, size)
        acc_curves, nll_curves, lowest = [], [], float("inf")
        for a in sorted(arms, key=arm_order):
            path = os.path.join(tmp, "n%d_%d.dat" % (size, style[a]))
            with open(path, "w") as fh:
                for e in sorted({e for s in arms[a] for e in s["epochs"]}):
                    acc = mean_sem([s["epochs"][e][0] * 100 for s in arms[a] if e in s["epochs"]])
                    nll = mean_sem([s["epochs"][e][1] for s in arms[a] if e in s["epochs"]])
                    lowest = min(lowest, nll[0])
                    fh.write("%d %g %g %g %g\n" % (e, acc[0], _zero_nan(acc[1]), nll[0], _zero_nan(nll[1])))
            acc_curves.append(curve(path, arm_name(a), style[a], "1:2:3", "yerrorlines"))
            nll_curves.append(curve(path, arm_name(a), style[a], "1:4:5", "yerrorlines"))
        script += ["set output '%s/epochs_n%d.png'" % (out, size),
                   "set multiplot layout 1,2 title '%d training rows: per epoch (mean ± SEM over seeds)'" % size,
                   "set xlabel 'epoch'", "set ylabel 'greedy accuracy (%)'", "set key inside bottom right",
                   "plot " + ", ".join(acc_curves),
                   # the first epochs' nll (several times the rest) would flatten the overfitting out of view
                   "set ylabel 'held-out nll'", "set key inside top right",
                   "set yrange [%g:%g]" % (0.9 * lowest, 1.8 * lowest) if math.isfinite(lowest) else "set yrange [*:*]",
                   "plot " + ", ".join(nll_curves),
                   "set yrange [*:*]", "unset multiplot"]
    return script


def fig2_script(runs, style, tmp, out):
    """accuracy_vs_selfbleu.png: each final model's sample accuracy against Self-BLEU across temperatures, a panel
    per training size (the paper's Fig. 2)."""
    panels = []
    for size in sorted({s["size"] for s in runs.values()}):
        arms = arms_of(runs, size)
        curves = []
        for a in sorted(arms, key=arm_order):
            ss = arms[a]
            temps = sorted({t for s in ss for t, _, _ in s["fig2"]})
            if not temps:
                continue
            path = os.path.join(tmp, "fig2_%d_%d.dat" % (size, style[a]))
            with open(path, "w") as fh:
                for t in temps:
                    acc = mean_sem([a_ * 100 for s in ss for t_, a_, _ in s["fig2"] if t_ == t])
                    bleu = mean_sem([b_ for s in ss for t_, _, b_ in s["fig2"] if t_ == t])
                    fh.write("%g %g %g %g\n" % (bleu[0], acc[0], _zero_nan(bleu[1]), _zero_nan(acc[1])))
            curves.append(curve(path, arm_name(a), style[a], "1:2:3:4", "xyerrorlines"))
        if curves:
            panels += ["set title '%d training rows'" % size, "plot " + ", ".join(curves)]
    if not panels:
        return []
    return ["set terminal pngcairo size 1400,600 noenhanced", "set output '%s/accuracy_vs_selfbleu.png'" % out,
            "set multiplot layout 1,%d title 'Final models: sample accuracy against Self-BLEU over T 0.1 ... 1.0"
            " (mean ± SEM over seeds)'" % (len(panels) // 2),
            "set xlabel 'Self-BLEU (lower = more diverse)'", "set ylabel 'sample accuracy (%)'",
            "set key inside bottom right"] + panels + ["unset multiplot"]


def _zero_nan(x):
    return 0 if math.isnan(x) else x


def arms_of(runs, size):
    """arm -> the summaries of its runs (one per seed) at training size `size`."""
    d = defaultdict(list)
    for s in runs.values():
        if s["size"] == size:
            d[s["arm"]].append(s)
    return d


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    with open(os.path.join(out, "results.csv")) as fh:
        runs = per_run(list(csv.DictReader(fh)))
    if not runs:
        sys.exit("paper_report: no finished runs in %s/results.csv" % out)
    with open(os.path.join(out, "table.md"), "w") as fh:
        fh.write(table(runs))
    plots(runs, out)
    print("paper_report: %d runs -> %s/table.md and plots" % (len(runs), out), file=sys.stderr)


if __name__ == "__main__":
    main()
