#!/usr/bin/python3
"""Write tests/tokenizer/corpus.hex: the tokenizer test corpus.

One test case per line, each the lowercase HEX encoding of the case's raw bytes (so a
case may hold newlines, NUL or invalid UTF-8); the empty case is an empty line and
occurs exactly once. Standard library only, fixed seed: the output is identical on
every run and machine.

Usage: /usr/bin/python3 tests/tokenizer/gen_corpus.py [--out tests/tokenizer/corpus.hex]
Prints the number of cases per category, plus how many hold invalid UTF-8 and how
many hold one of the disputed whitespace code points U+0085 / U+FEFF / U+180E.
"""
import argparse
import os
import random
import sys

SEED = 20240611

# --------------------------------------------------------------------------- vocab

WORDS = """the of and to a in is it you that he was for on are with as I his they be at one
have this from or had by hot word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write would
like so these her long make thing see him two has look more day could go come did number
sound no most people my over know water than call first who may down side been now find
any new work part take get place made live where after back little only round man year came
show every good me give our under name very through just form sentence great think say help
low line differ turn cause much mean before move right boy old too same tell does set three
want air well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house picture try
us again animal point mother world near build self earth father head stand own page should
country found answer school grow study still learn plant cover food sun four between state
keep eye never last let thought city tree cross farm hard start might story saw far sea draw
left late run don't while press close night real life few north open seem together next white
children begin got walk example ease paper group always music those both mark often letter
until mile river car feet care second book carry took science eat room friend began idea fish
mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual
young ready above ever red list though feel talk bird soon body dog family direct pose leave
song measure door product black short numeral class wind question happen complete ship area
half rock order fire south problem piece told knew pass since top whole king space heard best
hour better true during hundred five remember step early hold west ground interest reach fast
verb sing listen six table travel less morning ten simple several vowel toward war lay against
pattern slow center love person money serve appear road map rain rule govern pull cold notice
voice unit power town fine certain fly fall lead cry dark machine note wait plan figure star
box noun field rest correct able pound done beauty drive stood contain front teach week final
gave green oh quick develop ocean warm free minute strong special mind behind clear tail
produce fact street inch multiply nothing course stay wheel full force blue object decide
surface deep moon island foot system busy test record boat common gold possible plane stead
dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring
yes distant fill east paint language among internationalization antidisestablishmentarianism
tokenizer transformer gradient optimizer embedding attention softmax iqtrain GPT-2 OpenAI
""".split()

NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "Mallory", "Trent", "Zoë", "José", "François",
         "Łukasz", "Søren", "Björk", "Nguyễn", "O'Brien", "McDonald", "van der Berg", "MacArthur",
         "Jean-Luc", "Anne-Marie", "Dr. Smith", "Mr. T", "Ms. Jones"]

PUNCT_END = [".", ".", ".", "!", "?", "...", "?!", ";", ":", "…", ".\"", "!'", ")", "."]

IDENTS = ["x", "y", "i", "j", "n", "buf", "len", "count", "total", "result", "data", "ptr",
          "node", "head", "tail", "self", "value", "key", "items", "matrix", "grad", "loss",
          "learning_rate", "batch_size", "num_layers", "hidden_dim", "tokenize", "encode",
          "decode", "main", "argc", "argv", "printf", "malloc", "free", "memcpy", "strlen",
          "np", "torch", "json", "os", "sys", "__init__", "__name__", "_private", "camelCase",
          "PascalCase", "SCREAMING_CASE", "kebab-case", "utf8_decode", "iq_bpe_merge"]

SCRIPTS = {
    "greek": ["Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
              "Καλημέρα κόσμε! Τι κάνεις σήμερα;", "ΑΘΗΝΑ ΘΕΣΣΑΛΟΝΊΚΗ ἀρχή ὁ λόγος ᾠδή",
              "Σίσυφος ς σ Σ — τελικό σίγμα", "αβγδεζηθικλμνξοπρστυφχψω"],
    "cyrillic": ["Съешь же ещё этих мягких французских булок, да выпей чаю.",
                 "Привет, мир! Как дела?", "МОСКВА Україна Ґґ Її Єє Ўў Ђђ Љљ",
                 "Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства."],
    "arabic": ["مرحبا بالعالم", "اللغة العربية جميلة جداً.", "كتب الطالبُ الدرسَ في ٣ ساعات",
               "السَّلَامُ عَلَيْكُمْ", "ﷺ ﻻ ﷲ"],
    "hebrew": ["שלום עולם", "עִבְרִית היא שפה שמית.", "ירושלים 2024 — בירת ישראל",
               "אָלֶף־בֵּית"],
    "devanagari": ["नमस्ते दुनिया", "हिन्दी भाषा बहुत सुंदर है।", "क्षत्रिय ज्ञान श्री",
                   "संस्कृतम् १२३४ ॐ"],
    "thai": ["สวัสดีชาวโลก", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", "กรุงเทพมหานคร ๒๕๖๗",
             "น้ำ ไม้ ก็ ฯลฯ ๆ"],
    "hangul": ["안녕하세요 세계", "한국어는 아름다운 언어입니다.", "ㄱㄴㄷㄹ ㅏㅑㅓㅕ 한글",
               "서울특별시 2024년"],
    "chinese": ["你好，世界！", "我能吞下玻璃而不伤身体。", "中华人民共和国成立于1949年。",
                "汉字：简体字和繁體字", "𠀀𠀁𪚥 龘 靐"],
    "japanese": ["こんにちは世界", "日本語の文章にはひらがな、カタカナ、漢字が混ざります。",
                 "カタカナ ｶﾀｶﾅ ーー ヴ ゐゑ", "東京都渋谷区１丁目２番３号", "わたしはガラスをたべられます。"],
    "other": ["Ողջույն աշխարհ", "გამარჯობა მსოფლიო", "வணக்கம் உலகம்", "ওহে বিশ্ব",
              "ሰላም ልዑል", "བཀྲ་ཤིས་བདེ་ལེགས།", "Сәлем әлем", "Xin chào thế giới",
              "Ελληνικά + English + Русский", "ᚠᚢᚦᚨᚱᚲ", "ꦲꦏ꧀ꦱꦫ", "𐌰𐌱𐌲 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐀𝐁𝐂 𝟎𝟏𝟐"],
}

# Ranges of (mostly) assigned letters for random strings per script.
SCRIPT_RANGES = [(0x0391, 0x03C9), (0x0410, 0x044F), (0x0621, 0x064A), (0x05D0, 0x05EA),
                 (0x0905, 0x0939), (0x0E01, 0x0E2E), (0xAC00, 0xD7A3), (0x4E00, 0x9FFF),
                 (0x3041, 0x3096), (0x30A1, 0x30FA), (0x00C0, 0x00FF), (0x0100, 0x017F),
                 (0x0531, 0x0556), (0x10D0, 0x10FA), (0x1200, 0x1248), (0x20000, 0x2A6DF),
                 (0x1E030, 0x1E06D), (0x31350, 0x323AF)]

EMOJI = ["😀", "😂", "🤣", "🥲", "🫠", "🙂", "🚀", "🔥", "💯", "✨", "🎉", "🐍", "🦀", "🧠",
         "👍", "👍🏻", "👍🏽", "👍🏿", "👋🏼", "🧑🏾‍💻", "👩‍🔬", "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨",
         "🏳️‍🌈", "🏴‍☠️", "🇺🇸", "🇯🇵", "🇩🇪", "🇫🇷", "🇪🇺", "🇺🇳", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
         "1️⃣", "2️⃣", "#️⃣", "*️⃣", "0⃣", "🔟", "❤️", "❤", "♥️", "☺️", "☺︎", "✔️", "✔︎", "⚠️",
         "©️", "®", "™️", "↔️", "🅰️", "🆗", "👁️‍🗨️", "🐻‍❄️", "🫱🏼‍🫲🏾", "😶‍🌫️", "🧔‍♀️",
         "🤷‍♂️", "🙋🏽‍♀️", "👯‍♀️", "🇦", "🇦🇧🇨", "\U0001F3FB", "\u200d", "\ufe0f", "🀄", "🃏"]

UNICODE_SPACES = ["\u00a0", "\u1680"] + [chr(c) for c in range(0x2000, 0x200B)] + \
                 ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
DISPUTED_SPACES = ["\u0085", "\u180e", "\ufeff", "\u200b"]
EXOTIC = ["\u0085", "\u180e", "\ufeff"]   # the ones the quota is counted on

ASCII_CONTROLS = [chr(c) for c in list(range(0, 9)) + [0x0e, 0x0f] + list(range(0x10, 0x20)) + [0x7f]]
C1_CONTROLS = [chr(c) for c in range(0x80, 0xA0) if c != 0x85]

CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]

INVALID_SEQS = [
    b"\x80", b"\x8f", b"\xbf", b"\x80\x80", b"\xbf\xbf\xbf",            # lone continuation bytes
    b"\xc3", b"\xe2\x82", b"\xe2", b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf0",  # truncated sequences
    b"\xc0\xaf", b"\xc1\xbf", b"\xc0\x80", b"\xe0\x80\xaf", b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf",                               # overlongs
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80",         # encoded surrogates
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf7\xbf\xbf\xbf",         # > U+10FFFF
    b"\xf5", b"\xf8", b"\xfb", b"\xfc", b"\xfd", b"\xfe", b"\xff", b"\xfe\xff", b"\xff\xfe",
    b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",                  # 5- and 6-byte forms
    b"\x92", b"\x93\x94", b"\xe9", b"\xe4\xf6\xfc",                        # cp1252 / latin-1 bytes
    b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x28\x8c\xbc",
    b"\xf0\x90\x28\xbc", b"\xf0\x28\x8c\x28",
]


# --------------------------------------------------------------------------- helpers

class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def choice(self, xs):
        return xs[self.r.randrange(len(xs))]

    def word(self):
        w = self.choice(WORDS)
        k = self.r.random()
        if k < 0.12:
            w = w.capitalize()
        elif k < 0.16:
            w = w.upper()
        return w

    # ------------------------------------------------------------------ prose
    def prose(self):
        r = self.r
        out = []
        for s in range(r.randint(1, 4)):
            n = r.randint(2, 22)
            ws = [self.word() for _ in range(n)]
            ws[0] = ws[0].capitalize()
            if r.random() < 0.3:
                ws.insert(r.randrange(len(ws)), self.choice(NAMES))
            for i in range(1, len(ws)):
                if r.random() < 0.08:
                    ws[i - 1] += self.choice([",", ",", ";", " -", " —", ":"])
            sent = " ".join(ws) + self.choice(PUNCT_END)
            if r.random() < 0.1:
                sent = '"' + sent + '"'
            if r.random() < 0.08:
                sent = "(" + sent + ")"
            out.append(sent)
        sep = self.choice([" ", " ", " ", "  ", "\n", "\n\n"])
        return sep.join(out)

    # ------------------------------------------------------------------ code
    def code(self):
        r = self.r
        kind = r.randrange(7)
        a, b, c = self.choice(IDENTS), self.choice(IDENTS), self.choice(IDENTS)
        n = r.randint(0, 1000)
        if kind == 0:   # C
            ind = self.choice(["    ", "\t", "  "])
            return ("#include <stdio.h>\n\nstatic int %s(const char *%s, size_t %s) {\n"
                    "%sint %s = %d;\n%sfor (size_t i = 0; i < %s; i++) {\n%s%sif (%s[i] == '\\n') %s++;\n"
                    "%s}\n%sreturn %s; /* %s */\n}\n" % (a, b, c, ind, a, n, ind, c, ind, ind, b, a,
                                                         ind, ind, a, self.prose()[:40]))
        if kind == 1:   # Python
            ind = self.choice(["    ", "    ", "\t", "  "])
            return ("def %s(%s, %s=None):\n%s\"\"\"%s\"\"\"\n%sif %s is None:\n%s%s%s = []\n"
                    "%sfor k, v in %s.items():\n%s%s%s.append((k, v ** %d))\n\n%sreturn %s\n"
                    % (a, b, c, ind, self.prose()[:50], ind, c, ind, ind, c, ind, b, ind, ind, c,
                       n % 7, ind, c))
        if kind == 2:   # JSON
            ind = self.choice(["  ", "    ", "\t", ""])
            nl = "\n" if ind else ""
            items = []
            for _ in range(r.randint(1, 5)):
                v = self.choice(['"%s"' % self.word(), str(r.randint(-10**6, 10**6)),
                                 "%.4f" % r.uniform(-100, 100), "true", "false", "null", "[1, 2, 3]",
                                 '{"nested": {"k": "v\\u00e9\\n"}}', '"caf\u00e9 \\"quoted\\""'])
                items.append('%s"%s": %s' % (ind, self.choice(IDENTS), v))
            return "{" + nl + ("," + nl).join(items) + nl + "}"
        if kind == 3:   # shell / config
            return "$ export %s=%d && ./iqtrain --%s=%s 2>&1 | tee log.txt\n# %s\n" % (
                a.upper(), n, b.replace("_", "-"), c, self.prose()[:30])
        if kind == 4:   # one-liners
            return self.choice([
                "%s = %s[%d:%d] + %s" % (a, b, n % 10, n, c),
                "if (%s != NULL && %s->%s >= %d) { %s(); }" % (a, a, b, n, c),
                "x += 1;y -= 2;z *= 3", "a==b!=c<=d>=e->f::g", "std::vector<int> %s{%d};" % (a, n),
                "print(f\"{%s!r:>10}\")" % a, "    return %s  # noqa: E501" % b,
                "<div class=\"%s\">%s</div>" % (a, self.word()), "SELECT * FROM %s WHERE %s = %d;" % (a, b, n),
                "regex = r'\\s+(?!\\S)|\\p{L}+'", "0x%08X | 0b1011 & ~0o17" % n,
                "// TODO(%s): fix this!!!" % self.choice(NAMES), "/* */ /** @param %s */" % a,
                "```python\nprint('%s')\n```" % self.word()])
        if kind == 5:   # markdown / yaml
            return "# %s\n\n- %s\n- %s\n  - nested: %d\n\n> %s\n" % (
                self.word().capitalize(), self.prose()[:40], self.word(), n, self.prose()[:30])
        # kind 6: indented block with blank lines and trailing whitespace
        lines = []
        depth = 0
        for _ in range(r.randint(2, 8)):
            depth = max(0, depth + r.randint(-1, 1))
            tail = self.choice(["", "", " ", "  ", "\t"])
            lines.append("    " * depth + "%s = %s(%d)" % (self.choice(IDENTS), self.choice(IDENTS), r.randint(0, 99)) + tail)
            if r.random() < 0.2:
                lines.append(self.choice(["", "    ", "\t"]))
        return self.choice(["\n", "\r\n"]).join(lines)

    # ------------------------------------------------------------------ numbers
    def numbers(self):
        r = self.r
        k = r.randrange(16)
        if k == 0:
            return str(r.randint(0, 10 ** r.randint(1, 12)))
        if k == 1:
            return "%.*f" % (r.randint(1, 8), r.uniform(-1e6, 1e6))
        if k == 2:
            return "{:,}".format(r.randint(1000, 10 ** 12))
        if k == 3:
            return self.choice(["+1 (555) 123-4567", "555-0199", "+44 20 7946 0958", "(03) 1234 5678",
                                "+49-30-1234567", "1-800-FLOWERS", "+1.555.123.4567"]) + \
                self.choice(["", " ext. %d" % r.randint(1, 999)])
        if k == 4:
            return "".join(self.choice("0123456789") for _ in range(r.randint(20, 400)))
        if k == 5:   # other scripts' digits
            sets = ["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "๐๑๒๓๔๕๖๗๘๙",
                    "０１２３４５６７８９", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗", "၀၁၂၃၄၅၆၇၈၉", "០១២៣៤៥៦៧៨៩"]
            ds = self.choice(sets)
            return "".join(self.choice(ds) for _ in range(r.randint(1, 12))) + self.choice(["", " ", "%", " kg", "."])
        if k == 6:
            return self.choice(["x²", "E=mc²", "10³", "H₂O", "x⁻¹", "½ cup", "¾", "⅞", "Ⅻ", "Ⅻ o'clock",
                                "Chapter Ⅳ", "ⅷ", "①②③", "⑳", "〇一二三", "𐄇", "𒐀", "²³¹", "₀₁₂", "٪", "‰"])
        if k == 7:
            return "%d-%02d-%02dT%02d:%02d:%02dZ" % (r.randint(1900, 2100), r.randint(1, 12), r.randint(1, 28),
                                                   r.randint(0, 23), r.randint(0, 59), r.randint(0, 59))
        if k == 8:
            return self.choice(["$", "€", "£", "¥", "₹", "USD ", ""]) + "{:,.2f}".format(r.uniform(0, 1e7))
        if k == 9:
            return "%.3e" % r.uniform(-1e-30, 1e30)
        if k == 10:
            return "v%d.%d.%d" % (r.randint(0, 20), r.randint(0, 99), r.randint(0, 999)) + self.choice(["", "-rc1", "+build.5"])
        if k == 11:
            return "0x%X 0x%x 0b%s 0o%o" % (r.getrandbits(32), r.getrandbits(16), bin(r.getrandbits(8))[2:], r.getrandbits(9))
        if k == 12:
            return "%d%%" % r.randint(0, 100) + " of %d.%d" % (r.randint(0, 99), r.randint(0, 99))
        if k == 13:
            return "%d.%d.%d.%d:%d" % (r.randint(0, 255), r.randint(0, 255), r.randint(0, 255), r.randint(0, 255), r.randint(1, 65535))
        if k == 14:
            return " ".join(str(r.randint(-999, 999)) for _ in range(r.randint(2, 12)))
        return "%d+%d=%d" % ((a := r.randint(0, 99999)), (b := r.randint(0, 99999)), a + b)

    # ------------------------------------------------------------------ whitespace
    def whitespace(self):
        r = self.r
        k = r.randrange(10)
        if k == 0:
            return " " * r.randint(1, 40)
        if k == 1:
            return "".join(self.choice([" ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c"]) for _ in range(r.randint(1, 40)))
        if k == 2:
            return self.choice([" ", "\t", "\n"]) * r.randint(1, 40) + self.word()
        if k == 3:
            return self.word() + self.choice([" ", "\t", "\n", "\r\n"]) * r.randint(1, 40)
        if k == 4:
            return self.word() + " " * r.randint(1, 40) + self.word()
        if k == 5:
            return self.word() + "".join(self.choice([" ", "\t", "\n"]) for _ in range(r.randint(1, 20))) + self.choice([self.word(), "!", "1", "'s", "é"])
        if k == 6:
            return "\r\n".join(self.prose()[:30] for _ in range(r.randint(1, 4))) + self.choice(["", "\r\n", "\r\n\r\n"])
        if k == 7:
            return self.choice(["a  b", "a \n b", " \n", "\n ", "  \n  x", "x \t y", "\t\tx", "a\n\n\nb",
                                "  leading", "trailing  ", " ", "\n", "\t", "\r\n", "  ", "x ", " x", "x  ",
                                "  x", " \t\n x", "1  2", "!  ?", "a \u00e9", "\n\n\n\n", "   \n   \n"])
        if k == 8:
            return " " * r.randint(1, 40) + self.choice(["'s", "123", "!!", "\u00e9t\u00e9", "\u3042"])
        return "".join(self.choice([" ", "  ", "\n", "\t", " \n"]) + self.word() for _ in range(r.randint(1, 8))) + self.choice(["", " ", "\n"])

    # ------------------------------------------------------------------ contractions
    def contractions(self):
        r = self.r
        k = r.randrange(8)
        if k == 0:
            return self.choice(["don't", "can't", "won't", "it's", "I'm", "you're", "we've", "they'll",
                                "she'd", "John's", "y'all", "o'clock", "rock 'n' roll", "'twas", "ma'am",
                                "shouldn't've", "I'd've", "'tis", "ne'er-do-well"])
        if k == 1:
            return self.word() + self.choice(CONTRACTIONS).upper() + self.choice(["", " ", "."])
        if k == 2:   # mixed case variants
            c = self.choice(CONTRACTIONS)
            c = "".join(ch.upper() if r.random() < 0.5 else ch for ch in c)
            return self.choice(["I", "you", "HE", "It", "we", "x"]) + c + self.choice(["", " go", "!"])
        if k == 3:   # curly / other apostrophes
            ap = self.choice(["\u2019", "\u2018", "\u02bc", "`", "\u00b4", "\uff07"])
            return self.word() + ap + self.choice(["s", "t", "re", "ve", "m", "ll", "d", "S", "LL"]) + self.choice(["", " ok"])
        if k == 4:
            return self.choice(["'s", "'t", "'re", "'''s", "''s", "'", "''", "'''", "' s", "'S", "'Re", "'rE",
                                "'Ve", "'LL", "'lL", "'D", "'M", " 's", "  's", "\n's", "x's's's", "'s's",
                                "'ll've", "'d'd'd", "'1", "'é", "' ", " '", "\"'s\"", "\"quoted\"", "'single'",
                                "''''", "it''s", "'s.", "'sss", "'tis'", "'m'm", "'re're", "a'b'c'd"])
        if k == 5:   # quotes at start/end of words, sentences
            w = self.word()
            return self.choice(["'%s'", "\"%s\"", "'%s", "%s'", "\u2018%s\u2019", "\u201c%s\u201d",
                                "%s's'", "'%s's", "«%s»", "„%s“"]) % w
        if k == 6:
            return "%s said, \"%s's %s'll be %s'd.\"" % (self.choice(NAMES), self.word(), self.word(), self.word())
        return " ".join(self.word() + (self.choice(CONTRACTIONS) if r.random() < 0.5 else "") for _ in range(r.randint(2, 8)))

    # ------------------------------------------------------------------ accents
    def accents(self):
        r = self.r
        k = r.randrange(6)
        if k == 0:
            return self.choice(["café", "naïve", "résumé", "Ångström", "Straße", "façade", "jalapeño",
                                "crème brûlée", "Zürich", "São Paulo", "Dvořák", "Kraków", "Øresund",
                                "Œuvre", "Æsir", "Ĳssel", "ǅemal", "ﬁnance", "ﬂow", "Ǆ"])
        if k == 1:   # decomposed
            base = self.choice(["e", "a", "n", "u", "o", "E", "A", "c", "i", " ", "1", "'", "x"])
            marks = "".join(chr(self.choice([0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x030A, 0x0327,
                                            0x0323, 0x0331, 0x20DD, 0x0361, 0x036F]))
                            for _ in range(r.randint(1, 3)))
            return self.word() + base + marks + self.choice(["", "s", " ", "x"])
        if k == 2:
            return self.choice(["cafe\u0301", "nai\u0308ve", "re\u0301sume\u0301", "A\u030angstro\u0308m",
                                "man\u0303ana", "Tie\u0302\u0301ng Vie\u0323\u0302t", "\u0301start",
                                "\u0301", "e\u0301\u0301\u0301\u0301", "1\u20e3", "\u0915\u094d\u0937"])
        if k == 3:   # zalgo
            s = ""
            for ch in self.word():
                s += ch + "".join(chr(r.randint(0x0300, 0x036F)) for _ in range(r.randint(0, 6)))
            return s
        if k == 4:
            return "Tiếng Việt có dấu: " + self.choice(["Nguyễn Văn A", "Hà Nội", "Thành phố Hồ Chí Minh", "ở đâu?"])
        return "".join(chr(r.randint(0x00C0, 0x024F)) for _ in range(r.randint(1, 15)))

    # ------------------------------------------------------------------ scripts
    def scripts(self):
        r = self.r
        k = r.randrange(4)
        if k <= 1:
            return self.choice(SCRIPTS[self.choice(sorted(SCRIPTS))])
        if k == 2:
            lo, hi = self.choice(SCRIPT_RANGES)
            return "".join(chr(r.randint(lo, hi)) for _ in range(r.randint(1, 20))) + self.choice(["", " ", ".", "。", "،"])
        return self.choice(SCRIPTS[self.choice(sorted(SCRIPTS))]) + self.choice([" ", "", "\n"]) + self.prose()[:40]

    # ------------------------------------------------------------------ emoji
    def emoji(self):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            return self.choice(EMOJI)
        if k == 1:
            return "".join(self.choice(EMOJI) for _ in range(r.randint(2, 8)))
        if k == 2:
            return self.prose()[:50] + self.choice(["", " "]) + self.choice(EMOJI) + self.choice(["", " ", "!", " lol"])
        return self.word() + self.choice(EMOJI) + self.word() + " " + self.choice(EMOJI) + " " + str(r.randint(0, 99))

    # ------------------------------------------------------------------ unicode spaces
    def uspaces(self, disputed_only=False):
        r = self.r
        pool = (EXOTIC * 2 + ["\u200b"]) if disputed_only else (UNICODE_SPACES + DISPUTED_SPACES)
        sp = self.choice(pool)
        k = r.randrange(9)
        if k == 0:
            return sp
        if k == 1:
            return self.word() + sp + self.word()
        if k == 2:
            return self.word() + sp * r.randint(2, 6) + self.word()
        if k == 3:
            return self.word() + " " + sp + self.word()
        if k == 4:
            return self.word() + sp + " " + self.word()
        if k == 5:
            return sp + self.prose()[:40]
        if k == 6:
            return self.prose()[:40] + sp
        if k == 7:
            return "".join(self.choice([" ", sp, "\n", "\t", self.choice(pool)]) for _ in range(r.randint(2, 12))) + self.choice(["", self.word(), "1", "!"])
        return self.choice(["1", "!", "'s", "\u00e9", "x"]) + sp + self.choice(["2", "?", "'t", "\u00e8", "y", "\n"])

    # ------------------------------------------------------------------ controls
    def controls(self):
        r = self.r
        pool = ASCII_CONTROLS + C1_CONTROLS
        k = r.randrange(5)
        if k == 0:
            return self.choice(pool)
        if k == 1:
            return self.word() + self.choice(pool) + self.word()
        if k == 2:
            return "".join(self.choice(pool) for _ in range(r.randint(2, 10)))
        if k == 3:
            return "\x1b[1;31m" + self.word() + "\x1b[0m" + self.choice(["", "\n"])
        return self.choice(["\x00", "a\x00b", "\x00\x00\x00", " \x00 ", "\x1c\x1d\x1e\x1f", "x\x1fy",
                            "\x7f", "\x08\x08", "\a", "\x1c ", " \x1c", "1\x1e2", "\u200e\u200f", "\u202e",
                            "\u2066x\u2069", "\u00ad", "soft\u00adhyphen", "\u2060", "\ufffd", "\ufffe",
                            "\uffff", "\U0010ffff", "\U000e0001", "\ue000", "\U000f0000"])

    # ------------------------------------------------------------------ <|endoftext|>
    def endoftext(self):
        r = self.r
        base = self.choice(["<|endoftext|>", "<|endoftext|>", "<|endoftext|><|endoftext|>", "<|endoftext",
                            "|endoftext|>", "<|EndOfText|>", "<|ENDOFTEXT|>", "< |endoftext| >",
                            "<|endoftext|>\n\n", "\n<|endoftext|>", "<|im_start|>", "<|im_end|>",
                            "<|fim_prefix|>", "<|startoftext|>", "<||>", "<|", "|>", "endoftext",
                            "<|endo ftext|>", "<|endoftext|>'s", "<<|endoftext|>>", "'<|endoftext|>'"])
        k = r.randrange(4)
        if k == 0:
            return base
        if k == 1:
            return self.prose()[:40] + base + self.prose()[:40]
        if k == 2:
            return self.prose()[:40] + " " + base + " " + self.prose()[:40]
        return base + self.word()

    # ------------------------------------------------------------------ invalid UTF-8
    def invalid(self):
        r = self.r
        bad = self.choice(INVALID_SEQS)
        k = r.randrange(10)
        enc = lambda s: s.encode("utf-8")
        if k == 0:
            return bad
        if k == 1:   # next to letters
            return enc(self.word()) + bad + enc(self.word())
        if k == 2:   # next to spaces
            return self.choice([b" ", b"  ", b"\n", b"\t", b""]) + bad + self.choice([b" ", b"  ", b"\n", b""]) + enc(self.word())
        if k == 3:   # next to digits
            return enc(str(r.randint(0, 99999))) + bad + enc(str(r.randint(0, 999)))
        if k == 4:   # latin-1 encoded text
            return self.choice(["café", "naïve façade", "Grüße aus Köln", "señor", "£5 ±1 ×2 ÷3 ©"]).encode("latin-1")
        if k == 5:   # random bytes
            return bytes(r.getrandbits(8) for _ in range(r.randint(1, 40)))
        if k == 6:   # random high bytes mixed with ascii
            return bytes(self.choice([r.randint(0x80, 0xFF), r.randint(0x20, 0x7E), 0x20]) for _ in range(r.randint(2, 60)))
        if k == 7:   # inside a contraction / punctuation
            return enc(self.word()) + self.choice([b"'", b"\x92", b""]) + bad + self.choice([b"s", b"t", b"ll", b"'s", b"!"])
        if k == 8:   # several bad sequences in prose
            s = enc(self.prose()[:60])
            for _ in range(r.randint(1, 4)):
                p = r.randint(0, len(s))
                s = s[:p] + self.choice(INVALID_SEQS) + s[p:]
            return s
        # truncated multibyte char at start/end of valid text
        t = enc(self.choice(["é", "€", "😀", "中", "𝄞"]))
        return self.choice([t[:-1] + enc(self.word()), enc(self.word()) + t[:-1], t[1:] + enc(self.word()), t[:-1] * 3])

    # ------------------------------------------------------------------ mixtures
    def mixture(self):
        r = self.r
        gens = [self.prose, self.code, self.numbers, self.whitespace, self.contractions, self.accents,
                self.scripts, self.emoji, self.uspaces, self.controls, self.endoftext, self.invalid]
        parts = []
        for _ in range(r.randint(2, 6)):
            g = self.choice(gens)
            p = g()
            if isinstance(p, str):
                p = p.encode("utf-8")
            parts.append(p)
        out = b""
        for p in parts:
            out += p + self.choice([b"", b" ", b" ", b"\n", b"  ", b"\t"])
        if r.random() < 0.3:
            out = out.rstrip(b" \n\t")
        return out or b"x"


def build():
    g = Gen(SEED)
    r = g.r
    cases = {}   # bytes -> category; insertion-ordered, so deterministic
    counts = {}

    def add(cat, s):
        if isinstance(s, str):
            s = s.encode("utf-8", "surrogatepass")
        if s in cases:
            return False
        cases[s] = cat
        counts[cat] = counts.get(cat, 0) + 1
        return True

    def fill(cat, fn, n):
        tries = 0
        got = 0
        while got < n and tries < n * 50:
            tries += 1
            if add(cat, fn()):
                got += 1

    add("empty", b"")
    # Fixed edge cases first.
    for s in ["a", " ", "'s", "<|endoftext|>", "Hello, world!", "hello world", " hello", "Hello\n",
              "\u0085", "\ufeff", "\u180e", "\u200b", "\u00a0", "\ufeffHello", "a\u0085b", "a \u0085b",
              "x\ufeff y", "\u3000\u3000x", "\x00", "\r\n", "'''s", "I'M", "don\u2019t"]:
        add("edge", s)
    # Long tokens: exercise the long-word path (few cases only).
    longs = [
        "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000)),
        " " * 2000,
        "!" * 1000,
        "a" * 3000,
        " " + "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2500)),
        "9" * 1500,
        "\n" * 1200 + "x",
        "é" * 1200,
        "中文" * 700,
        "ab" * 1500,
    ]
    for s in longs:
        add("long", s)

    plan = [
        ("prose", g.prose, 650),
        ("code", g.code, 550),
        ("numbers", g.numbers, 550),
        ("whitespace", g.whitespace, 550),
        ("contractions", g.contractions, 550),
        ("accents", g.accents, 320),
        ("scripts", g.scripts, 600),
        ("emoji", g.emoji, 420),
        ("unicode_spaces", g.uspaces, 350),
        ("disputed_spaces", lambda: g.uspaces(disputed_only=True), 380),
        ("controls", g.controls, 250),
        ("endoftext", g.endoftext, 150),
        ("invalid_utf8", g.invalid, 420),
        ("mixture", g.mixture, 1300),
    ]
    for cat, fn, n in plan:
        fill(cat, fn, n)
    # Shuffle (deterministically) so that categories interleave, keeping the order fixed.
    items = list(cases.items())
    r.shuffle(items)
    return items, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "corpus.hex"))
    args = ap.parse_args()
    items, counts = build()
    n_invalid = n_exotic = 0
    for s, _ in items:
        try:
            t = s.decode("utf-8")
        except UnicodeDecodeError:
            n_invalid += 1
            t = s.decode("utf-8", "surrogateescape")
        if any(c in t for c in EXOTIC):
            n_exotic += 1
    assert sum(1 for s, _ in items if s == b"") == 1
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        for s, _ in items:
            f.write(s.hex() + "\n")
    total = len(items)
    print("wrote %s: %d cases, %d bytes of text" % (os.path.normpath(args.out), total, sum(len(s) for s, _ in items)))
    for cat in sorted(counts):
        print("  %-16s %5d" % (cat, counts[cat]))
    print("  invalid UTF-8:   %5d (%.1f%%)" % (n_invalid, 100.0 * n_invalid / total))
    print("  U+0085/FEFF/180E:%5d (%.1f%%)" % (n_exotic, 100.0 * n_exotic / total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
