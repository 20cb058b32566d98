#!/usr/bin/env python3
"""random_vs_jinja2.py — differential test of the C interpreter's expression and statement semantics against
Python's Jinja2 (in transformers' environment, oracle_jinja2.py) on randomly generated small templates.

usage: /usr/bin/python3 random_vs_jinja2.py CHAT_RENDER OUTDIR [N [SEED]]
   (exit 77 without python3-jinja2, 1 on any mismatch)

A fixed-seed generator writes N templates (default 3000) mixing literals of every type, the variables s, n, f,
l, d, z (none), u (undefined) and messages, the operators (+ - * / // % ** ~, comparisons, in, and/or/not,
a if c else b), attribute/item access and slices, the filters, tests and string/dict methods of
src/jinja_builtins.c, for/if/set/namespace statements, and layouts of text, tags and comments with random
whitespace control ({%- -%} {%+ +%} {{- -}}, CRLF, trailing newlines) around nested blocks. Each is rendered by both; a case matches when the
texts are identical or both fail (division by zero, a type error, an undefined value...). Known differences
are kept out by construction and named here: numbers stay small (the C side has 64-bit integers, Python
unbounded ones), and upper/lower/title/capitalize only see ASCII strings (the C side maps ASCII letters only).
"""
import json
import warnings
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import oracle_jinja2  # noqa: E402  (exits 77 when jinja2 is missing)

ASCII_STR = ["''", "'a'", "'Hello World'", "' pad '", "'a,b,,c'", "'x-y-x'", "'\\n x \\n'", "'MiXeD cAsE'",
             "'<think>r</think>a'", "'it''s'"]
STR = ASCII_STR + ["'héllo wörld'", "'日本語'", "s", "messages[0].content", "messages[1]['content']", "'\\u3000a\\u0085'"]
INT = ["0", "1", "2", "3", "-4", "7", "n", "messages|length"]
FLOAT = ["0.5", "2.25", "-1.5", "1e3", "f", "0.1"]
LIST = ["[1, 2, 3]", "['b', 'a', 'c']", "l", "[]", "[1, 'x', none, true]", "[[1, 2], [3]]"]
DICT = ["{'a': 1, 'b': 'x'}", "d", "{}"]
MISC = ["none", "true", "false", "z", "u", "(1, 2)"]


class Gen:
    def __init__(self, rnd):
        self.r = rnd

    def pick(self, xs):
        return self.r.choice(xs)

    def str_(self, k):
        r = self.r
        if k <= 0 or r.random() < 0.3:
            return self.pick(STR)
        c = r.randrange(14)
        if c == 0: return f"({self.str_(k - 1)} ~ {self.any_(k - 1)})"
        if c == 1: return f"({self.str_(k - 1)} + {self.str_(k - 1)})"
        if c == 2: return f"{self.str_(k - 1)}|trim"
        if c == 3: return f"{self.pick(ASCII_STR)}|{self.pick(['upper', 'lower', 'title', 'capitalize'])}"
        if c == 4: return f"{self.str_(k - 1)}.{self.pick(['strip', 'lstrip', 'rstrip'])}({self.pick(['', repr('x '), repr(chr(10)), repr('a<')])})"
        if c == 5: return f"{self.str_(k - 1)}.replace({self.pick(['a', 'x', '', ','])!r}, {self.pick(['b', '', '--'])!r})"
        if c == 6: return f"{self.str_(k - 1)}[{self.slice_()}]"
        if c == 7: return f"{self.any_(k - 1)}|default({self.str_(0)}{self.pick(['', ', true'])})"
        if c == 8: return f"{self.list_(k - 1)}|join({self.pick(['', ', ', '|'])!r})"
        if c == 9: return f"{self.str_(k - 1)}.split({self.pick(['', repr(','), repr('</think>'), repr('x'), 'none, 1'])})|join('/')"
        if c == 10: return f"{self.any_(k - 1)}|tojson"
        if c == 11: return f"{self.any_(k - 1)}|string"
        if c == 12: return f"{self.str_(k - 1)}[{self.int_(0)}]"
        return f"{self.str_(k - 1)} * {self.r.randrange(-1, 4)}"

    def int_(self, k):
        r = self.r
        if k <= 0 or r.random() < 0.3:
            return self.pick(INT)
        c = r.randrange(9)
        if c == 0: return f"({self.int_(k - 1)} {self.pick(['+', '-', '*', '//', '%'])} {self.int_(k - 1)})"
        if c == 1: return f"{self.str_(k - 1)}|length"
        if c == 2: return f"{self.list_(k - 1)}|length"
        if c == 3: return f"{self.str_(k - 1)}.{self.pick(['find', 'count'])}({self.pick(['a', 'x', '', 'l'])!r})"
        if c == 4: return f"{self.int_(k - 1)}|abs"
        if c == 5: return f"{self.float_(k - 1)}|int"
        if c == 6: return f"({self.pick(INT[:6])} ** {r.randrange(0, 4)})"
        if c == 7: return f"-{self.int_(k - 1)}"
        return f"{self.pick(['[1, 2, 3]', 'l', '[5]'])}|{self.pick(['first', 'last', 'sum', 'min', 'max'])}"

    def float_(self, k):
        r = self.r
        if k <= 0 or r.random() < 0.3:
            return self.pick(FLOAT)
        c = r.randrange(5)
        if c == 0: return f"({self.int_(k - 1)} / {self.int_(k - 1)})"
        if c == 1: return f"({self.float_(k - 1)} {self.pick(['+', '-', '*', '/', '//', '%'])} {self.float_(k - 1)})"
        if c == 2: return f"{self.float_(k - 1)}|round({self.r.randrange(0, 3)})"
        if c == 3: return f"{self.int_(k - 1)}|float"
        return f"{self.float_(k - 1)}|abs"

    def list_(self, k):
        r = self.r
        if k <= 0 or r.random() < 0.3:
            return self.pick(LIST)
        c = r.randrange(8)
        if c == 0: return f"({self.list_(k - 1)} + {self.list_(k - 1)})"
        if c == 1: return f"{self.list_(k - 1)}[{self.slice_()}]"
        if c == 2: return f"{self.str_(k - 1)}.split({self.pick(['', repr(','), repr(' ')])})"
        if c == 3: return f"{self.list_(k - 1)}|reverse|list"
        if c == 4: return f"{self.pick(DICT)}.{self.pick(['keys', 'values', 'items'])}()|list"
        if c == 5: return f"range({self.r.randrange(-1, 5)})|list"
        if c == 6: return f"[{self.any_(k - 1)}, {self.any_(k - 1)}]"
        return f"{self.pick(['[1, 2, 3, 4]', 'l'])}|{self.pick(['select', 'reject'])}({self.pick(['', repr('odd'), repr('even')])})|list"

    def bool_(self, k):
        r = self.r
        if k <= 0 or r.random() < 0.2:
            return self.pick(["true", "false", "n > 1", "s"])
        c = r.randrange(7)
        if c == 0: return f"({self.any_(k - 1)} {self.pick(['==', '!=', '<', '<=', '>', '>='])} {self.any_(k - 1)})"
        if c == 1: return f"({self.str_(k - 1)} {self.pick(['in', 'not in'])} {self.pick([self.str_(k - 1), self.list_(k - 1)])})"
        if c == 2: return f"not {self.bool_(k - 1)}"
        if c == 3: return f"({self.any_(k - 1)} {self.pick(['and', 'or'])} {self.any_(k - 1)})"
        if c == 4:
            t = self.pick(["defined", "undefined", "none", "string", "number", "mapping", "iterable", "sequence",
                           "odd", "even", "divisibleby 3", "integer", "float", "boolean", "true", "false", "lower", "upper"])
            return f"({self.any_(k - 1)} is {self.pick(['', 'not '])}{t})"
        if c == 5: return f"{self.str_(k - 1)}.{self.pick(['startswith', 'endswith'])}({self.pick(['a', 'H', '', ('x', 'a')])!r})"
        return f"({self.int_(k - 1)} < {self.int_(k - 1)} < {self.int_(k - 1)})"

    def any_(self, k):
        c = self.r.randrange(8)
        if c == 0: return self.str_(k)
        if c == 1: return self.int_(k)
        if c == 2: return self.float_(k)
        if c == 3: return self.list_(k)
        if c == 4: return self.bool_(k)
        if c == 5: return self.pick(DICT + MISC)
        if c == 6: return f"({self.any_(k - 1)} if {self.bool_(k - 1)} else {self.any_(k - 1)})"
        return f"{self.pick(DICT)}{self.pick(['.a', '.b', '.c', '[' + repr('a') + ']', '.get(' + repr('b') + ')'])}"

    def slice_(self):
        opt = lambda: self.pick(["", "0", "1", "-1", "2", "-3", "10", "n"])
        parts = [opt(), opt()] + ([self.pick(["", "1", "2", "-1", "-2"])] if self.r.random() < 0.5 else [])
        if self.r.random() < 0.2:
            return self.pick(["0", "1", "-1", "5"])
        return ":".join(parts)

    def text(self):
        return "".join(self.pick(["a", " ", "  ", "\t", "\n", "\n  ", " \n", "x y", "\r\n", "é"]) for _ in range(self.r.randrange(0, 4)))

    def tag(self, body, block=True):
        lm, rm = self.pick(["", "", "-", "+"] if block else ["", "-"]), self.pick(["", "", "-", "+"] if block else ["", "-"])
        return ("{%" + lm + " " + body + " " + rm + "%}") if block else ("{{" + lm + " " + body + " " + rm + "}}")

    def layout(self, depth):
        """text, output, comment, if/for/set blocks with random whitespace control around them"""
        out = []
        for _ in range(self.r.randrange(1, 5)):
            c = self.r.randrange(6 if depth < 2 else 3)
            out.append(self.text())
            if c == 0: out.append(self.tag(self.any_(1), block=False))
            elif c == 1: out.append(self.pick(["{# c #}", "{#- c -#}", "{#- c #}", "{# c -#}"]))
            elif c == 2: out.append(self.tag(f"set v{depth} = {self.any_(1)}") + self.text() + self.tag(f"v{depth}", block=False))
            elif c == 3: out.append(self.tag(f"if {self.bool_(1)}") + self.layout(depth + 1) + self.tag("else") + self.layout(depth + 1) + self.tag("endif"))
            elif c == 4:
                out.append(self.tag(f"for x in {self.list_(1)}") + self.layout(depth + 1) +
                           self.pick(["", self.tag("if loop.index > 1") + self.tag(self.pick(["break", "continue"])) + self.tag("endif")]) +
                           self.tag("x", block=False) + self.tag("endfor"))
            else: out.append(self.tag(f"set blk{depth}") + self.layout(depth + 1) + self.tag("endset") + "[" + self.tag(f"blk{depth}", block=False) + "]")
        out.append(self.text())
        return "".join(out)

    def template(self):
        r = self.r
        k = r.randrange(1, 4)
        if r.random() < 0.25:
            return self.layout(0) + self.pick(["", "\n", "\n\n"])
        c = r.randrange(7)
        e = self.any_(k)
        if c == 0:
            return f"{{{{ {e} }}}}"
        if c == 1:
            return (f"{{% for x in {self.list_(k - 1)} %}}{{{{ loop.index0 }}}}{{{{ loop.first }}}}{{{{ loop.revindex }}}}:"
                    f"{{{{ x }}}}{{% if loop.last %}}.{{% endif %}}{{% else %}}empty{{% endfor %}}")
        if c == 2:
            return f"{{% if {self.bool_(k)} %}}A{{% elif {self.bool_(k)} %}}B{{% else %}}C{{% endif %}}|{{{{ {e} }}}}"
        if c == 3:
            return (f"{{% set ns = namespace(acc={self.pick(['0', repr(''), '[]'])}) %}}"
                    f"{{% for x in {self.list_(k - 1)} %}}{{% set ns.acc = ns.acc + {self.pick(['x', '[x]', 'x|string', '1'])} %}}"
                    f"{{% endfor %}}{{{{ ns.acc }}}}")
        if c == 4:
            return f"{{% set v = {e} %}}{{{{ v }}}}|{{{{ v is string }}}}|{{{{ v|length if v is iterable else -1 }}}}"
        if c == 5:
            return f"{{% for k, v in {self.pick(DICT)}.items() %}}{{{{ k }}}}={{{{ v }}}};{{% endfor %}}{{{{ {e} }}}}"
        return f"  {{%- if {self.bool_(k)} -%}}\n  x {{{{- {e} -}}}} y\n{{% endif %}}\n{{# c #}}  z"


def main():
    binary, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1234
    os.makedirs(out, exist_ok=True)
    gen = Gen(random.Random(seed))
    messages = [{"role": "user", "content": " Hi there "}, {"role": "assistant", "content": "a,b,,c"}]
    extra = {"s": "Some Text", "n": 3, "f": 2.5, "l": [3, 1, 2], "d": {"a": 1, "b": "x"}, "z": None}
    env = oracle_jinja2.make_env([0])
    warnings.simplefilter("ignore", SyntaxWarning)  # Jinja2 compiles `1[0]` into Python that warns
    corpus, expected = [], []
    for i in range(n):
        t = gen.template()
        corpus.append({"id": i, "chat_template": t, "messages": messages, "extra": extra})
        try:
            expected.append({"text": env.from_string(t).render(messages=messages, tools=None, documents=None,
                                                               add_generation_prompt=False, bos_token="<s>",
                                                               eos_token="</s>", **extra)})
        except Exception as e:
            expected.append({"error": f"{type(e).__name__}: {e}"})
    path = os.path.join(out, "random_corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for c in corpus:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    res = subprocess.run([binary, HERE, path], capture_output=True, text=True, encoding="utf-8", check=True)
    got = [json.loads(l) for l in res.stdout.split("\n") if l]
    assert len(got) == n, f"{len(got)} results for {n} templates"
    same = both_err = bad = 0
    for c, e, g in zip(corpus, expected, got):
        if "error" in e and "error" in g:
            both_err += 1
        elif e.get("text") is not None and e.get("text") == g.get("text"):
            same += 1
        else:
            bad += 1
            if bad <= 10:
                print(f"MISMATCH {c['chat_template']!r}\n  jinja2 {e}\n  C      {g}")
    print(f"{n} random templates (seed {seed}): {same} identical, {both_err} fail in both, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
