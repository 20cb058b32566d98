#!/usr/bin/python3
"""Generate src/unicode_tables.inc: the character classes that GPT-2's pre-tokenizer
regex uses, taken from the installed Python `regex` module itself, so that the C
tokenizer's tables agree exactly with the reference (tests/reference/gpt2_oracle.py);
and the NFC tables (canonical combining classes, canonical decompositions, primary
composites, code points that are not NFC-inert) from Python's `unicodedata`, whose
Unicode version is recorded in the output (the Qwen tokenizers' NFC normalizer).

For every code point 0..0x10FFFF (surrogates included: the oracle's text can hold
lone surrogates from surrogateescape) the class is
    1  if it matches \\p{L}
    2  if it matches \\p{N}
    3  if it matches \\s
    0  otherwise
The three sets are asserted disjoint. The output lists merged, sorted, inclusive
ranges of the non-zero classes.

Usage: /usr/bin/python3 scripts/gen_unicode_tables.py [--out src/unicode_tables.inc]
Run with Debian's /usr/bin/python3 (python3-regex); the `regex` version is recorded
in the generated header.
"""
import argparse
import os
import sys
import unicodedata

import regex

MAX_CP = 0x10FFFF

# Letters (category L*) first assigned in a given Unicode version: the newest one the
# regex module knows as \p{L} tells which Unicode version its own tables follow
# (it ships its own database, independent of Python's unicodedata).
UNICODE_PROBES = [
    ("16.0.0", 0x1C89),   # CYRILLIC CAPITAL LETTER TJE
    ("15.1.0", 0x2EBF0),  # CJK UNIFIED IDEOGRAPH-2EBF0 (Extension I)
    ("15.0.0", 0x1E030),  # MODIFIER LETTER CYRILLIC SMALL A
    ("14.0.0", 0x0870),   # ARABIC LETTER ALEF WITH ATTACHED FATHA
    ("13.0.0", 0x08BE),   # ARABIC LETTER PEH WITH SMALL V
    ("12.0.0", 0x0E86),   # LAO LETTER PALI GHA
]

DISPUTED = [
    (0x0085, "NEXT LINE (NEL)"),
    (0x180E, "MONGOLIAN VOWEL SEPARATOR"),
    (0xFEFF, "ZERO WIDTH NO-BREAK SPACE (BOM)"),
    (0x00A0, "NO-BREAK SPACE"),
    (0x2028, "LINE SEPARATOR"),
    (0x3000, "IDEOGRAPHIC SPACE"),
    (0x200B, "ZERO WIDTH SPACE"),
]


def regex_unicode_version():
    for ver, cp in UNICODE_PROBES:
        if regex.match(r"\p{L}", chr(cp)):
            return ver
    return "<12.0.0"


def classify():
    """Return a bytearray cls[cp] for all code points."""
    allchars = "".join(map(chr, range(MAX_CP + 1)))
    cls = bytearray(MAX_CP + 1)
    members = {}
    for c, pat in ((1, r"\p{L}+"), (2, r"\p{N}+"), (3, r"\s+")):
        s = set()
        for m in regex.finditer(pat, allchars):
            for cp in range(m.start(), m.end()):
                s.add(cp)
        members[c] = s
    for a in (1, 2, 3):
        for b in (1, 2, 3):
            if a < b:
                inter = members[a] & members[b]
                assert not inter, "classes %d and %d overlap at %s" % (
                    a, b, ", ".join("U+%04X" % x for x in sorted(inter)[:10]))
    for c, s in members.items():
        for cp in s:
            cls[cp] = c
    # Spot check against single-character matching.
    pats = {1: regex.compile(r"\p{L}"), 2: regex.compile(r"\p{N}"), 3: regex.compile(r"\s")}
    for cp in list(range(0, 0x3000)) + list(range(0xD7F0, 0xE010)) + list(range(0xFE00, 0x10100)) \
            + list(range(0x1E000, 0x1F000, 7)) + [MAX_CP]:
        want = 0
        for c in (1, 2, 3):
            if pats[c].fullmatch(chr(cp)):
                want = c
        assert cls[cp] == want, "U+%04X: %d vs %d" % (cp, cls[cp], want)
    return cls


def ranges(cls):
    out = []
    lo = None
    for cp in range(MAX_CP + 2):
        c = cls[cp] if cp <= MAX_CP else 0
        if lo is not None and (c != cur):
            out.append((lo, cp - 1, cur))
            lo = None
        if lo is None and c != 0:
            lo, cur = cp, c
    return out


HANGUL_S, HANGUL_N = 0xAC00, 11172


def nfc_tables():
    """The NFC data as C source lines."""
    nd = unicodedata
    cps = [cp for cp in range(MAX_CP + 1) if not (0xD800 <= cp <= 0xDFFF)]
    ccc = {cp: nd.combining(chr(cp)) for cp in cps if nd.combining(chr(cp))}
    decomp, comp, second = {}, {}, set()
    for cp in cps:
        if HANGUL_S <= cp < HANGUL_S + HANGUL_N:
            continue  # algorithmic
        c = chr(cp)
        full = nd.normalize("NFD", c)
        if full != c:
            decomp[cp] = [ord(x) for x in full]
        d = nd.decomposition(c)
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            if len(parts) == 2 and nd.normalize("NFC", c) == c:
                comp[(parts[0], parts[1])] = cp
                second.add(parts[1])
    second.update(range(0x1161, 0x1176))  # Hangul V and T jamo compose with what precedes them
    second.update(range(0x11A8, 0x11C3))
    unsafe = set(ccc) | second | {cp for cp in decomp if nd.normalize("NFC", chr(cp)) != chr(cp)}
    # self-check: a string of inert code points is NFC
    for cp in cps:
        if cp not in unsafe:
            assert nd.normalize("NFC", chr(cp)) == chr(cp)

    def merged(pred_val):
        out, lo, cur = [], None, None
        for cp in range(MAX_CP + 2):
            v = pred_val(cp) if cp <= MAX_CP else 0
            if lo is not None and v != cur:
                out.append((lo, cp - 1, cur))
                lo = None
            if lo is None and v:
                lo, cur = cp, v
        return out

    L = []
    L.append("/* NFC tables from the unicodedata of Python %s (Unicode %s). Hangul syllables are algorithmic. */"
             % (sys.version.split()[0], nd.unidata_version))
    L.append("#define IQ_NFC_UNICODE \"%s\"" % nd.unidata_version)
    r = merged(lambda cp: ccc.get(cp, 0))
    L.append("#define IQ_NFC_NCCC %d" % len(r))
    L.append("static const struct { uint32_t lo, hi; uint8_t ccc; } iq_nfc_ccc_ranges[IQ_NFC_NCCC] = {")
    L += ["    {0x%04X, 0x%04X, %d}," % x for x in r]
    L.append("};")
    r = merged(lambda cp: 1 if cp in unsafe else 0)
    L.append("/* code points that are not NFC-inert: a combining class, NFC_Quick_Check No or Maybe */")
    L.append("#define IQ_NFC_NUNSAFE %d" % len(r))
    L.append("static const struct { uint32_t lo, hi; } iq_nfc_unsafe[IQ_NFC_NUNSAFE] = {")
    L += ["    {0x%04X, 0x%04X}," % (lo, hi) for lo, hi, _ in r]
    L.append("};")
    pool, rows = [], []
    for cp in sorted(decomp):
        rows.append((cp, len(pool), len(decomp[cp])))
        pool += decomp[cp]
    L.append("/* full canonical decompositions: code point, offset and length in iq_nfc_pool */")
    L.append("#define IQ_NFC_NDECOMP %d" % len(rows))
    L.append("static const struct { uint32_t cp; uint16_t off; uint8_t len; } iq_nfc_decomp[IQ_NFC_NDECOMP] = {")
    L += ["    {0x%04X, %d, %d}," % x for x in rows]
    L.append("};")
    L.append("static const uint32_t iq_nfc_pool[%d] = {" % len(pool))
    for i in range(0, len(pool), 12):
        L.append("    " + " ".join("0x%04X," % x for x in pool[i:i + 12]))
    L.append("};")
    L.append("/* primary composites: (first, second) -> composite, sorted by (first, second) */")
    L.append("#define IQ_NFC_NCOMP %d" % len(comp))
    L.append("static const struct { uint32_t a, b, c; } iq_nfc_comp[IQ_NFC_NCOMP] = {")
    L += ["    {0x%04X, 0x%04X, 0x%04X}," % (a, b, comp[(a, b)]) for a, b in sorted(comp)]
    L.append("};")
    return L, len(ccc), len(decomp), len(comp), len(unsafe)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "src", "unicode_tables.inc"))
    args = ap.parse_args()

    uver = regex_unicode_version()
    cls = classify()
    rs = ranges(cls)

    lines = []
    lines.append("/* Generated by scripts/gen_unicode_tables.py from Python regex %s (Unicode %s). Do not edit. */"
                 % (regex.__version__, uver))
    lines.append("/* Classes: 1 = \\p{L}, 2 = \\p{N}, 3 = \\s (as the regex module defines them); 0 = none (not listed).")
    lines.append("   Ranges are inclusive, sorted, non-overlapping, and adjacent ranges of one class are merged. */")
    lines.append("#define IQ_UC_NRANGES %d" % len(rs))
    lines.append("static const struct { uint32_t lo, hi; uint8_t cls; } iq_uc_ranges[IQ_UC_NRANGES] = {")
    for lo, hi, c in rs:
        lines.append("    {0x%04X, 0x%04X, %d}," % (lo, hi, c))
    lines.append("};")
    nfc_lines, n_ccc, n_dec, n_comp, n_unsafe = nfc_tables()
    lines += nfc_lines
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        f.write(text)

    counts = {c: sum(1 for x in cls if x == c) for c in (1, 2, 3)}
    print("regex %s (Unicode %s per probe; Python unicodedata %s)"
          % (regex.__version__, uver, unicodedata.unidata_version))
    print("wrote %s: %d ranges; code points: L=%d N=%d s=%d"
          % (os.path.normpath(args.out), len(rs), counts[1], counts[2], counts[3]))
    print("NFC (unicodedata %s): %d with a combining class, %d decompositions, %d composites, %d not inert"
          % (unicodedata.unidata_version, n_ccc, n_dec, n_comp, n_unsafe))
    print("\\s code points: " + " ".join("U+%04X" % cp for cp in range(MAX_CP + 1) if cls[cp] == 3))
    for cp, name in DISPUTED:
        print("U+%04X %-34s \\s=%-5s class=%d" % (cp, name, bool(regex.match(r"\s", chr(cp))), cls[cp]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
