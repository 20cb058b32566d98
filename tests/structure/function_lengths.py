#!/usr/bin/env python3
"""Lengths of the C functions under a folder: a function starts at a line at column 0 that opens a
definition ("name(...) {", also when its parameters span lines) and ends at the next "}" at column 0.
usage: function_lengths.py DIR [--max N] -> prints the longest; exit 1 when one exceeds N."""
import glob, re, sys

def functions(path):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    start = name = None
    for i, l in enumerate(lines):
        if start is None:
            m = re.match(r"^(?!typedef|struct|enum|union|#|//|/\*| )[A-Za-z_][^;=]*?\b([A-Za-z_]\w*)\s*\(", l)
            if m:
                # the definition opens its body on this line or on a later one, before any ';'
                j = i
                while j < len(lines) and "{" not in lines[j] and ";" not in lines[j]:
                    j += 1
                if j < len(lines) and "{" in lines[j] and lines[j].rstrip().endswith("{"):
                    start, name = i, m.group(1)
        elif l.startswith("}"):
            yield i - start + 1, name
            start = None

def main():
    root = sys.argv[1]
    limit = int(sys.argv[sys.argv.index("--max") + 1]) if "--max" in sys.argv else 150
    rows = []
    for f in sorted(glob.glob(root + "/**/*.c", recursive=True)):
        rows += [(n, f, name) for n, name in functions(f)]
    rows.sort(reverse=True)
    if len(rows) < 50:
        print("only %d functions found: the parser is broken" % len(rows))
        return 1
    for n, f, name in rows[:10]:
        print("%5d  %s  %s" % (n, f, name))
    over = [r for r in rows if r[0] > limit]
    for n, f, name in over:
        print("too long: %s in %s has %d lines (at most %d)" % (name, f, n, limit))
    print("%d functions, the longest %d lines" % (len(rows), rows[0][0]))
    return 1 if over else 0

sys.exit(main())
