#!/usr/bin/python3
"""Probe what a paper-experiment model knows without a BOS: greedy answers to bare equations and copy questions.

  /usr/bin/python3 scripts/paper_probe.py MODEL_DIR [--iqtrain BIN]

Prompts are {"prompt","completion"} rows, so iqtrain encodes them without the EOS-as-BOS that {"text"} rows
get (data/results/paper/PLAN.md, gate 1): 20 equations per operation (+, -, *) and size (1 digit, 10-50,
51-99, 3 digits; products of 3 digits by 1 digit), each after "3 + 4 = 7\\n", and 40 questions "What is a plus
b?" answered "a + b = c" (the operands copied). Prints the number right per group (the answer line compared
whole). Deterministic (seed 1).
"""

import json
import os
import random
import subprocess
import sys
import tempfile
from collections import defaultdict


def prompts():
    rng = random.Random(1)
    rows = []
    for lo, hi, tag in ((1, 9, "1 digit"), (10, 50, "10-50"), (51, 99, "51-99"), (100, 999, "3 digits")):
        for op in "+-*":
            for _ in range(20):
                a = rng.randint(lo, hi)
                b = rng.randint(1, 9) if op == "*" and tag == "3 digits" else rng.randint(lo, hi)
                if op == "-" and b > a:
                    a, b = b, a
                c = {"+": a + b, "-": a - b, "*": a * b}[op]
                rows.append(({"prompt": "3 + 4 = 7\n%d %s %d =" % (a, op, b), "completion": " %d" % c}, tag + " " + op))
    for _ in range(40):
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        rows.append(({"prompt": "Question: What is %d plus %d?\nAnswer:" % (a, b),
                      "completion": " %d + %d = %d" % (a, b, a + b)}, "copy question"))
    return rows


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    model = sys.argv[1]
    binary = sys.argv[sys.argv.index("--iqtrain") + 1] if "--iqtrain" in sys.argv else "build/release/iqtrain"
    rows = prompts()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "probe.jsonl")
        with open(data, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r, _ in rows)
        subprocess.run([binary, "generate", "--model", model, "--data", data, "--temperature", "0",
                        "--max-new-tokens", "12", "--threads", "1", "--out", os.path.join(tmp, "g")],
                       check=True, stderr=subprocess.DEVNULL)
        with open(os.path.join(tmp, "g", "samples.jsonl")) as fh:
            samples = [json.loads(line) for line in fh]
    right = defaultdict(lambda: [0, 0])
    for (r, tag), s in zip(rows, samples):
        right[tag][0] += s["completion"].split("\n")[0].strip() == r["completion"].strip()
        right[tag][1] += 1
    for tag, (k, n) in right.items():
        print("%-16s %3d / %d" % (tag, k, n))


if __name__ == "__main__":
    main()
