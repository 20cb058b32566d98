#!/usr/bin/python3
"""Write tests/tokenizer/corpus_hf.hex: the corpus for the tokenizer.json tokenizers (Llama 3, Qwen).

Same format as corpus.hex (one case per line, the lowercase hex of its bytes). It holds every
valid-UTF-8 case of corpus.hex, then cases for what the Llama 3 / Qwen2 regexes and the NFC
normalizer treat differently from GPT-2's: contractions in every letter case, digit runs of 1-7
digits, runs of newlines and other whitespace, whitespace before punctuation, CJK, Hangul jamo,
combining marks that NFC composes or reorders, emoji, added-token text, random mixes of all of these,
and strings of random assigned code points. Standard library only, fixed seed: the output is identical on every run.

Usage: /usr/bin/python3 tests/tokenizer/gen_hf_corpus.py [--out tests/tokenizer/corpus_hf.hex]
"""
import argparse
import itertools
import os
import random
import sys

SEED = 20261201

CONTRACTIONS = ["s", "t", "re", "ve", "m", "ll", "d"]
WORDS = ["I", "you", "it", "we", "they", "don", "can", "shouldn", "he", "she", "that", "what", "O",
         "rock", "n", "y", "Jack", "CAT", "l"]
DIGITS = "0123456789"
OTHER_NUMBERS = ["\u00bd", "\u00b2", "\u0663\u0664\u0665", "\uff11\uff12\uff13", "\u2167", "\u0968\u0969",
                 "\u2460", "\U0001d7ce"]
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\n\n\n", " \n", "\n ", " \n ", "\t\n", "\u00a0",
              "\u3000", "\u2009", "\u200b", "\u2028", "\x0b", "\x0c"]
PUNCT = [".", ",", "!", "?", "...", "?!", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "-", "--", "_", "*",
         "#", "@", "$", "%", "&", "|", "/", "\\", ":", ";", "<", ">", "=", "+", "~", "^", "\u2014", "\u00ab",
         "\u00bb", "\u3002", "\uff0c", "\u2019", "\u201c", "\u201d", "\u00bf", "\u00a1"]
CJK = ["\u4f60\u597d", "\u4e16\u754c", "\u6c49\u5b57\u5904\u7406", "\u65e5\u672c\u8a9e", "\u3053\u3093\u306b\u3061\u306f",
       "\u30ab\u30bf\u30ab\u30ca", "\ud55c\uad6d\uc5b4", "\u4e2d\u6587\u6807\u70b9\uff1a\u201c\u5f15\u53f7\u201d",
       "\u9f8d", "\U00020000\U0002a6d6", "\u3400\u4dbf"]
# combining sequences: NFC composes, reorders, or keeps them; singletons NFC replaces
COMBINING = ["e\u0301", "a\u0308\u0301", "A\u030a", "o\u0323\u0302", "o\u0302\u0323", "s\u0323\u0307",
             "s\u0307\u0323", "u\u0308\u0304", "\u212b", "\u2126", "\u212a", "\u0344", "\u0958", "\u0915\u093c",
             "\u1100\u1161", "\u1100\u1161\u11a8", "\uac00\u11a8", "\u1112\u1161\u11ab", "n\u0303o",
             "\u05e9\u05c1\u05bc", "\u05e9\u05bc\u05c1", "\u0627\u0653", "\u0622", "\u0928\u093c",
             "c\u0327\u0301", "\u1e09", "\u00c7\u0301", "i\u0307\u0301", "\u0065\u0300\u0316",
             "\u0061\u0316\u0300", "\u00e0\u0316", "\u0f71\u0f72", "\u0f73", "\u1026\u102e",
             "\u3099", "\u304b\u3099", "\u304c", "\u30cf\u309a", "x\u0301\u0301", "\u0301start",
             "\u1e9b\u0323", "\u0041\u0301\u0328", "\u0391\u0313\u0342\u0345", "\u1f87", "\u2000", "\u2001",
             "\uf900", "\ufb1d", "\u0cc6\u0cc2\u0cd5", "\u0b47\u0b3e", "\u09c7\u09be", "\u0dd9\u0dcf\u0dca"]
EMOJI = ["\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1fa\U0001f1f8",
         "1\ufe0f\u20e3", "\u2764\ufe0f", "\U0001f9d1\U0001f3ff\u200d\U0001f4bb", "\u263a", "\U0001f40d"]
ADDED = ["<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
         "<|end_header_id|>", "<|reserved_special_token_5|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
         "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|file_sep|>", "<|vision_pad|>", "<|im_end", "<think",
         "<<think>>", "<|<|im_end|>|>", "<tool_response>"]
LETTERS = ["hello", "World", "ABC", "xyz", "\u00e9t\u00e9", "na\u00efve", "Stra\u00dfe", "\u0441\u043b\u043e\u0432\u043e",
           "\u03bb\u03cc\u03b3\u03bf\u03c2", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",
           "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", "\u017ftop", "\u0130I\u0131i"]


def contraction_cases():
    out = []
    for c in CONTRACTIONS:
        for variant in sorted(set("".join(p) for p in itertools.product(*[(x, x.upper()) for x in c]))):
            for w in WORDS[:6]:
                out.append("%s'%s" % (w, variant))
                out.append("%s'%s here" % (w, variant))
            out.append("'%s" % variant)
            out.append(" '%s" % variant)
            out.append("'%sx" % variant)
            out.append("''%s" % variant)
            out.append("('%s)" % variant)
            out.append("\n'%s\n" % variant)
            out.append("%s\u2019%s" % (WORDS[0], variant))
    out += ["'", "''", "' s", "'x", "'r", "'v", "'l", "'lL", "'rE'vE", "rock'n'roll", "O'Neil's", "y'all'd've",
            "'1", "' ", "'\n", "it'sn't", "I'M", "'\u017f", "it'\u017f", "'\u017ftop"]
    return out


def digit_cases(rng):
    out = []
    for n in range(1, 8):
        d = "".join(rng.choice(DIGITS) for _ in range(n))
        out += [d, " " + d, "a" + d, d + "a", "x" + d + "y", "$" + d, d + ".", "(" + d + ")", "\n" + d, "  " + d,
                d + " " + d, d + "," + d, "-" + d, "v" + d + "." + d]
    out += ["1,234,567.89", "3.14159", "2024-12-01", "10:45:00", "+1 (555) 123-4567", "0x1F", "1e10", "1st 2nd 3rd",
            "100%", "\u00bd cup", "x\u00b2+y\u00b2", "\u0663\u0664\u0665\u0666", "\uff11\uff12\uff13\uff14", "\u2167\u2168",
            "\u2460\u2461", "12\u00bd", "9\U0001d7ce\U0001d7cf"]
    return out


def whitespace_cases():
    out = []
    for w in WHITESPACE:
        for a, b in [("a", "b"), ("a", ""), ("", "b"), ("!", "b"), ("a", "!"), ("1", "2"), ("", ""), (".", "."),
                     ("a", "\n"), ("\n", "a")]:
            out.append(a + w + b)
        for v in WHITESPACE[:8]:
            out.append("x" + w + v + "y")
            out.append(w + v)
    for p in PUNCT:
        out += [" " + p, "  " + p, "\t" + p, "\n" + p, "a " + p, "a  " + p + "b", p + "\n", p + "\n\n", p + "\r\n",
                p + p + "\n", " " + p + "\n a", p + "a", p + " a", "a" + p + "a", " " + p + p + "x"]
    return out


def random_case(rng, pools):
    parts = []
    for _ in range(rng.randint(1, 12)):
        pool = rng.choice(pools)
        parts.append(rng.choice(pool))
    return "".join(parts)


def random_unicode_cases(rng, n):
    """Strings of code points assigned in Python's Unicode version (any category but surrogates),
    mixed with ASCII letters, digits, spaces, newlines and apostrophes."""
    import unicodedata
    assigned = [c for c in range(0x110000) if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    glue = list("ab1 '\n") + ["'s", "  ", "\r\n"]
    out = []
    for _ in range(n):
        parts = [chr(rng.choice(assigned)) if rng.random() < 0.6 else rng.choice(glue)
                 for _ in range(rng.randint(1, 10))]
        out.append("".join(parts))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "corpus_hf.hex"))
    args = ap.parse_args()
    rng = random.Random(SEED)

    cases = []
    with open(os.path.join(here, "corpus.hex"), encoding="ascii") as f:
        for line in f.read().split("\n"):
            if not line and cases:
                continue
            try:
                bytes.fromhex(line).decode("utf-8")
                cases.append(bytes.fromhex(line).decode("utf-8"))
            except UnicodeDecodeError:
                pass
    n_base = len(cases)
    cats = {"contractions": contraction_cases(), "digits": digit_cases(rng), "whitespace": whitespace_cases(),
            "cjk": CJK + [a + " " + b for a in CJK for b in CJK[:3]],
            "combining": COMBINING + [w + c for w in ["", " ", "x", "1", "!"] for c in COMBINING] +
                         [c + c for c in COMBINING],
            "emoji": EMOJI + [" " + e for e in EMOJI] + ["hi" + e + "!" for e in EMOJI],
            "added": ADDED + [a + b for a in ADDED for b in ["", " x", "\n", "hello"]] + ["x" + a for a in ADDED]}
    pools = [LETTERS, PUNCT, WHITESPACE, CJK, COMBINING, EMOJI, OTHER_NUMBERS, [c for c in DIGITS],
             ["'s", "'T", "'re", "'LL", "'d", "'Ve"], [" " + w for w in LETTERS], ["\n", "\n\n", " \n"]]
    cats["random"] = [random_case(rng, pools) for _ in range(3000)]
    cats["random_added"] = [random_case(rng, pools + [ADDED]) for _ in range(300)]
    cats["random_unicode"] = random_unicode_cases(rng, 4000)
    for name, cs in cats.items():
        cases += cs
    seen, out = set(), []
    for c in cases:
        if c not in seen:
            seen.add(c)
            out.append(c)
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        for c in out:
            f.write(c.encode("utf-8").hex() + "\n")
    print("corpus_hf: %d cases (%d from corpus.hex; %s)" % (len(out), n_base, ", ".join(
        "%s %d" % (k, len(v)) for k, v in cats.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
