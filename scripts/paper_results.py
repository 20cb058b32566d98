#!/usr/bin/python3
"""results.csv of the paper-regime experiment (scripts/paper_experiment.sh).

  /usr/bin/python3 scripts/paper_results.py DIR              writes DIR/results.csv
  /usr/bin/python3 scripts/paper_results.py DIR --best-lambda prints the best lambda > 0

DIR holds n<SIZE>/<run>/ folders (run names like "seed=1,lambda=0.01,gamma=1"), each with
epochs/epoch-E/eval.json (each epoch's checkpoint) and eval/eval.json (the final model). One row per run,
epoch and decoding setting; checkpoint is "epoch" or "final" (the final model's richer evaluation: beam
and five temperatures; its epoch is the last one). Options a run's name does not set take the
trainer's defaults for these arms: label_smoothing 0, entropy_coef 0.
"""

import csv
import glob
import json
import math
import os
import re
import sys

COLUMNS = ["lambda", "gamma", "label_smoothing", "entropy_coef", "train_size", "seed", "epoch",
           "checkpoint", "decoding", "temperature", "beam", "samples_per_prompt", "accuracy", "pass_at_k",
           "self_bleu", "eval_nll", "eval_td", "eval_token_accuracy", "reward_correct", "reward_wrong",
           "spearman_reward", "spearman_logprob", "run"]
DEFAULTS = {"label-smoothing": "0", "entropy-coef": "0"}


def rows_of(eval_json, base):
    r = json.load(open(eval_json))
    base = dict(base, eval_nll=r.get("nll"), eval_td=r.get("td"), eval_token_accuracy=r.get("token_accuracy"))
    for s in r.get("settings", []):
        yield dict(base, decoding=s["decoding"], temperature=s.get("temperature"), beam=s.get("beam", ""),
                   samples_per_prompt=s.get("samples_per_prompt"), accuracy=s.get("accuracy"),
                   pass_at_k=s.get("pass_at_k", ""), self_bleu=s.get("self_bleu", ""),
                   reward_correct=s.get("reward_correct"), reward_wrong=s.get("reward_wrong"),
                   spearman_reward=s.get("spearman_reward_correct"),
                   spearman_logprob=s.get("spearman_logprob_correct"))


def collect(out):
    rows = []
    for run in sorted(glob.glob(os.path.join(out, "n*", "*", ""))):
        run = run.rstrip("/")
        size = os.path.basename(os.path.dirname(run))[1:]
        name = os.path.basename(run)
        if not size.isdigit() or "=" not in name:
            continue
        p = dict(DEFAULTS, **dict(kv.split("=", 1) for kv in name.split(",")))
        base = {"lambda": p.get("lambda"), "gamma": p.get("gamma"), "label_smoothing": p["label-smoothing"],
                "entropy_coef": p["entropy-coef"], "train_size": size, "seed": p.get("seed"),
                "run": "n%s/%s" % (size, name)}
        last = 0
        for ev in glob.glob(os.path.join(run, "epochs", "epoch-*", "eval.json")):
            e = int(re.search(r"epoch-(\d+)", ev).group(1))
            last = max(last, e)
            rows += rows_of(ev, dict(base, epoch=e, checkpoint="epoch"))
        fin = os.path.join(run, "eval", "eval.json")
        if os.path.exists(fin):
            rows += rows_of(fin, dict(base, epoch=last or "", checkpoint="final"))
    key = lambda r: (int(r["train_size"]), r["run"], r["checkpoint"] == "final", int(r["epoch"] or 0),
                     r["decoding"], float(r["temperature"] or 0))
    return sorted(rows, key=key)


def best_lambda(rows):
    """The lambda > 0 (gamma 1, no other regulariser) with the highest mean over seeds of the peak greedy
    accuracy across epochs, on the smallest train size."""
    core = [r for r in rows if r["checkpoint"] == "epoch" and r["decoding"] == "greedy" and r["gamma"] == "1"
            and r["label_smoothing"] == "0" and r["entropy_coef"] == "0" and float(r["lambda"]) > 0]
    if not core:
        sys.exit("paper_results: no finished lambda > 0 runs to choose the best lambda from")
    small = min(int(r["train_size"]) for r in core)
    peak = {}
    for r in core:
        if int(r["train_size"]) == small:
            k = (r["lambda"], r["seed"])
            peak[k] = max(peak.get(k, 0.0), float(r["accuracy"]))
    by_lam = {}
    for (lam, _), v in peak.items():
        by_lam.setdefault(lam, []).append(v)
    return max(sorted(by_lam, key=float), key=lambda lam: sum(by_lam[lam]) / len(by_lam[lam]))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    rows = collect(out)
    if sys.argv[2:] == ["--best-lambda"]:
        print(best_lambda(rows))
        return
    path = os.path.join(out, "results.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None or (isinstance(r.get(k), float) and math.isnan(r[k]))
                            else r.get(k)) for k in COLUMNS})
    print("paper_results: %d rows in %s" % (len(rows), path), file=sys.stderr)


if __name__ == "__main__":
    main()
