#!/usr/bin/python3
"""Check iqtrain's NFC (src/unicode.c, tables from Python's unicodedata) over every code point.

Inputs: every code point but the surrogates, alone; the canonical decomposition (NFD) of every code
point that has one; Hangul jamo sequences; 20000 random sequences of a starter and 1-5 combining
marks / composable characters (fixed seed). iqtrain's NFC of each (test_tokenizer_corpus --nfc-apply)
must equal Python's unicodedata.normalize("NFC") everywhere (the tables' source: 0 mismatches).
With --node, node's String.normalize("NFC") (ICU, a newer Unicode) is compared too: a difference
is tolerated only when the string holds a code point that Python's Unicode version does not assign
(so the difference is the Unicode version, which the report counts); any other difference fails.

Usage: check_nfc.py --bin test_tokenizer_corpus --tmp DIR [--node NODE --js tests/js/nfc_lines.mjs]
"""
import argparse
import os
import random
import subprocess
import sys
import unicodedata


def inputs():
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        out.append(chr(cp))
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        d = unicodedata.normalize("NFD", chr(cp))
        if d != chr(cp):
            out.append(d)
    marks = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and unicodedata.combining(chr(c))]
    seconds = sorted({unicodedata.normalize("NFD", chr(c))[-1] for c in range(0x110000)
                      if not 0xD800 <= c <= 0xDFFF and len(unicodedata.normalize("NFD", chr(c))) > 1})
    starters = sorted({unicodedata.normalize("NFD", chr(c))[0] for c in range(0x110000)
                       if not 0xD800 <= c <= 0xDFFF and len(unicodedata.normalize("NFD", chr(c))) > 1})
    rng = random.Random(20261201)
    jamo_l = [chr(c) for c in range(0x1100, 0x1113)]
    jamo_v = [chr(c) for c in range(0x1161, 0x1176)]
    jamo_t = [chr(c) for c in range(0x11A8, 0x11C3)]
    for _ in range(2000):
        s = rng.choice(jamo_l) + rng.choice(jamo_v) + (rng.choice(jamo_t) if rng.random() < 0.6 else "")
        out.append(s + rng.choice(["", "a", rng.choice(jamo_v), rng.choice(jamo_t)]))
    pool = marks + seconds
    for _ in range(20000):
        s = rng.choice(starters + ["a", "x", " ", "\u0915"])
        for _ in range(rng.randint(1, 5)):
            s += rng.choice(pool)
        out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--node")
    ap.add_argument("--js")
    args = ap.parse_args()
    os.makedirs(args.tmp, exist_ok=True)
    xs = inputs()
    src = os.path.join(args.tmp, "nfc_in.hex")
    with open(src, "w", encoding="ascii") as f:
        f.write("\n".join(x.encode("utf-8", "surrogatepass").hex() for x in xs) + "\n")
    c_out = os.path.join(args.tmp, "nfc_c.hex")
    subprocess.run([args.bin, "--nfc-apply", src, c_out], check=True)
    with open(c_out, encoding="ascii") as f:
        got = [bytes.fromhex(h).decode("utf-8") for h in f.read().split("\n")[:len(xs)]]
    assert len(got) == len(xs), "the C output has %d lines for %d inputs" % (len(got), len(xs))
    bad = [i for i, x in enumerate(xs) if unicodedata.normalize("NFC", x) != got[i]]
    for i in bad[:10]:
        print("MISMATCH with Python: %s -> C %s, Python %s" % (ascii(xs[i]), ascii(got[i]),
                                                             ascii(unicodedata.normalize("NFC", xs[i]))))
    print("check_nfc: %d strings; iqtrain vs Python unicodedata %s: %d mismatches"
          % (len(xs), unicodedata.unidata_version, len(bad)))
    status = 1 if bad else 0
    if args.node:
        # node's NFD of every code point reaches the decompositions of a newer Unicode too
        js_nfd = os.path.join(args.tmp, "nfd_js.hex")
        singles = [x for x in xs if len(x) == 1]
        with open(src, "w", encoding="ascii") as f:
            f.write("\n".join(x.encode("utf-8").hex() for x in singles) + "\n")
        subprocess.run([args.node, args.js, src, js_nfd, "NFD"], check=True)
        with open(js_nfd, encoding="ascii") as f:
            nfd = [bytes.fromhex(h).decode("utf-8") for h in f.read().split("\n")[:len(singles)]]
        extra = [d for d, x in zip(nfd, singles) if d != x and d != unicodedata.normalize("NFD", x)]
        xs += extra
        with open(src, "w", encoding="ascii") as f:
            f.write("\n".join(x.encode("utf-8", "surrogatepass").hex() for x in xs) + "\n")
        subprocess.run([args.bin, "--nfc-apply", src, c_out], check=True)
        with open(c_out, encoding="ascii") as f:
            got = [bytes.fromhex(h).decode("utf-8") for h in f.read().split("\n")[:len(xs)]]
        print("check_nfc: + %d decompositions node knows and Python does not" % len(extra))
        js_out = os.path.join(args.tmp, "nfc_js.hex")
        subprocess.run([args.node, args.js, src, js_out], check=True)
        with open(js_out, encoding="ascii") as f:
            js = [bytes.fromhex(h).decode("utf-8") for h in f.read().split("\n")[:len(xs)]]
        newer, other = [], []
        for i, x in enumerate(xs):
            if js[i] != got[i]:
                (newer if any(unicodedata.category(c) == "Cn" for c in x + js[i]) else other).append(i)
        for i in other[:10]:
            print("MISMATCH with node: %s -> C %s, node %s" % (ascii(xs[i]), ascii(got[i]), ascii(js[i])))
        cps = sorted({ord(c) for i in newer for c in xs[i] + js[i] if unicodedata.category(c) == "Cn"})
        print("check_nfc: iqtrain vs node: %d differences on code points newer than Unicode %s (tolerated: %s%s), "
              "%d other" % (len(newer), unicodedata.unidata_version, " ".join("U+%04X" % c for c in cps[:12]),
                            " ..." if len(cps) > 12 else "", len(other)))
        if other:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
