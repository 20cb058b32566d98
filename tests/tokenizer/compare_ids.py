#!/usr/bin/python3
"""Compare two token-id files line by line (one case per line, ids separated by spaces).

Usage: compare_ids.py ORACLE.ids OTHER.ids [--corpus corpus.hex] [--allow-skip] [--exotic-ok]
       [--show N]

  --corpus      the hex corpus both files were made from: mismatches then show the case
                text, and --exotic-ok can tell which cases hold U+0085 / U+FEFF / U+180E
                (defaults to corpus.hex beside this script, if it exists)
  --allow-skip  a line "SKIP" in OTHER is not compared (counted as skipped)
  --exotic-ok   a mismatch on a case holding U+0085, U+FEFF or U+180E is counted and
                reported but tolerated (JavaScript's \\s differs from Python regex's there)
  --show N      print the first N failing mismatches in full (default 5)

Exits 0 when every compared line is equal (or a tolerated exotic mismatch) and at least one line
was compared, 1 otherwise: empty files, or files of nothing but SKIP lines, prove nothing.
Prints: compared, equal, skipped, tolerated exotic mismatches, mismatches.
"""
import argparse
import os
import sys

EXOTIC = ("\u0085", "\ufeff", "\u180e")


def read_lines(path):
    with open(path, "r", encoding="ascii") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_ids(line):
    return [int(x) for x in line.split(" ")] if line else []


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("oracle")
    ap.add_argument("other")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--allow-skip", action="store_true")
    ap.add_argument("--exotic-ok", action="store_true")
    ap.add_argument("--show", type=int, default=5)
    args = ap.parse_args()

    corpus_path = args.corpus
    if corpus_path is None and os.path.exists(os.path.join(here, "corpus.hex")):
        corpus_path = os.path.join(here, "corpus.hex")
    cases = None
    if corpus_path:
        cases = [bytes.fromhex(h) for h in read_lines(corpus_path)]
    if args.exotic_ok and cases is None:
        ap.error("--exotic-ok needs --corpus")

    a = read_lines(args.oracle)
    b = read_lines(args.other)
    status = 0
    if len(a) != len(b):
        print("compare_ids: line counts differ: %s has %d, %s has %d"
              % (args.oracle, len(a), args.other, len(b)))
        status = 1
    if cases is not None and len(cases) != len(a):
        print("compare_ids: corpus has %d cases but %s has %d lines" % (len(cases), args.oracle, len(a)))
        status = 1

    compared = equal = skipped = exotic_tol = bad = 0
    shown = 0
    exotic_lines = []
    for i in range(min(len(a), len(b))):
        if b[i] == "SKIP" and args.allow_skip:
            skipped += 1
            continue
        compared += 1
        if a[i] == b[i]:
            equal += 1
            continue
        text = None
        if cases is not None and i < len(cases):
            text = cases[i].decode("utf-8", "surrogateescape")
        if args.exotic_ok and text is not None and any(c in text for c in EXOTIC):
            exotic_tol += 1
            exotic_lines.append(i + 1)
            continue
        bad += 1
        if shown < args.show:
            shown += 1
            print("MISMATCH at line %d:" % (i + 1))
            if text is not None:
                r = repr(text)
                print("  case:   %s" % (r if len(r) <= 400 else r[:400] + "...(%d chars)" % len(text)))
            for name, line in (("oracle", a[i]), ("other", b[i])):
                if line == "SKIP":
                    print("  %-7s SKIP" % (name + ":"))
                    continue
                try:
                    ids = parse_ids(line)
                except ValueError:
                    print("  %-7s (unparsable) %r" % (name + ":", line[:200]))
                    continue
                s = " ".join(map(str, ids[:80])) + (" ... (%d ids)" % len(ids) if len(ids) > 80 else "")
                print("  %-7s [%s]" % (name + ":", s))
    if bad:
        status = 1
    if compared == 0:
        print("compare_ids: no line was compared (%s has %d lines, %s has %d, %d skipped)"
              % (args.oracle, len(a), args.other, len(b), skipped))
        status = 1
    if exotic_lines:
        print("compare_ids: tolerated exotic-whitespace mismatches at lines: %s%s"
              % (" ".join(map(str, exotic_lines[:30])), " ..." if len(exotic_lines) > 30 else ""))
    print("compare_ids: compared %d, equal %d, skipped %d, tolerated exotic mismatches %d, mismatches %d -> %s"
          % (compared, equal, skipped, exotic_tol, bad, "OK" if status == 0 else "FAIL"))
    return status


if __name__ == "__main__":
    sys.exit(main())
