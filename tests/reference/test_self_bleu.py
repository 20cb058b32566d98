#!/usr/bin/python3
"""Self-BLEU-4 of iqtrain (src/metrics.c) equals NLTK's to 1e-6.

    /usr/bin/python3 tests/reference/test_self_bleu.py --bin build/tests/test_metrics

Self-BLEU of a group of k >= 2 samples = mean over i of
nltk.translate.bleu_score.sentence_bleu([other samples' str.split()], sample_i.split(),
smoothing_function=SmoothingFunction().method1); single-sample groups are excluded (null).
Groups: fixed edge cases (identical samples, empty samples, short samples, Unicode whitespace) and
random sample sets drawn with a fixed seed from a small vocabulary (so that n-grams repeat).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu


def self_bleu(samples):
    if len(samples) < 2:
        return None
    sm = SmoothingFunction().method1
    words = [s.split() for s in samples]
    total = 0.0
    for i, hyp in enumerate(words):
        refs = [w for j, w in enumerate(words) if j != i]
        total += sentence_bleu(refs, hyp, smoothing_function=sm)
    return total / len(samples)


def groups():
    g = [
        ["the cat sat on the mat", "the cat sat on the mat"],
        ["a b c d e", "a b c d e", "a b c d e"],
        ["", "", ""],
        ["", "one two three four five"],
        ["only one sample"],
        ["x", "x"],
        ["x y", "x y z", "y x"],
        ["3 + 4 = 7.\n#### 7", "4 + 3 = 7.\n#### 7", "First, 3 + 4 = 7.\n#### 7", "#### 7"],
        ["word\u00a0other\u3000third", "word other third", "word\u2003other\tthird\n"],
        ["caf\u00e9 na\u00efve \U0001F600", "caf\u00e9 \U0001F600 na\u00efve"],
        ["a a a a a a a a", "a a a", "a a a a a a a a a a a a"],
    ]
    rng = random.Random(1234)
    vocab = ["the", "a", "apples", "has", "+", "=", "7", "12", "####", "he", "buys", "more", "\n", "Tom", "."]
    for _ in range(200):
        k = rng.randint(1, 6)
        grp = []
        for _ in range(k):
            n = rng.randint(0, 25)
            grp.append(" ".join(rng.choice(vocab) for _ in range(n)))
        g.append(grp)
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    gs = groups()
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.json"), os.path.join(d, "out.json")
        with open(inp, "w", encoding="utf-8") as f:
            json.dump(gs, f, ensure_ascii=False)
        subprocess.run([a.bin, inp, out], check=True)
        with open(out, encoding="utf-8") as f:
            got = json.load(f)
    passed = failed = 0
    worst = 0.0
    for grp, g in zip(gs, got):
        ref = self_bleu(grp)
        if ref is None or g is None:
            ok = ref is None and g is None
        else:
            err = abs(ref - g)
            worst = max(worst, err)
            ok = err <= 1e-6
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"MISMATCH {grp!r}: nltk {ref} iqtrain {g}", file=sys.stderr)
    if len(got) != len(gs):
        failed += 1
        print(f"expected {len(gs)} results, got {len(got)}", file=sys.stderr)
    print(f"self-bleu: {len(gs)} groups, worst |diff| {worst:.2e}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
