#!/usr/bin/env python3
"""check_unit_expectations.py — the expected outputs written in tests/unit/test_chat_template.c are Python
Jinja2's: renders every EXPECT_OUT(template, expected) of that file (C string literals, adjacent ones
joined) with Python's Jinja2 in transformers' environment (oracle_jinja2.py) and the variables the unit test
passes (messages = [], bos_token "<s>", eos_token "</s>", tools None, add_generation_prompt False).

usage: /usr/bin/python3 check_unit_expectations.py ROOT    (exit 77 without python3-jinja2, 1 on a difference)"""
import ast
import os
import re
import sys

ROOT = sys.argv[1]
sys.path.insert(0, os.path.join(ROOT, "tests", "chat"))
import oracle_jinja2  # noqa: E402  (exits 77 when jinja2 is missing)

LIT = r'(?:\s*"(?:[^"\\]|\\.)*")+'
PAT = re.compile(r"EXPECT_OUT\((" + LIT + r")\s*,\s*(" + LIT + r")\s*\);")


def c_string(s):
    return "".join(ast.literal_eval(m) for m in re.findall(r'"(?:[^"\\]|\\.)*"', s))


def main():
    with open(os.path.join(ROOT, "tests", "unit", "test_chat_template.c"), encoding="utf-8") as f:
        src = f.read()
    env = oracle_jinja2.make_env([0])
    n = bad = 0
    for m in PAT.finditer(src):
        tmpl, want = c_string(m.group(1)), c_string(m.group(2))
        n += 1
        try:
            got = env.from_string(tmpl).render(messages=[], tools=None, documents=None, add_generation_prompt=False,
                                               bos_token="<s>", eos_token="</s>")
        except Exception as e:  # an expectation that Jinja2 cannot even render is a difference too
            got = f"<{type(e).__name__}: {e}>"
        if got != want:
            bad += 1
            print(f"DIFF {tmpl!r}\n  jinja2   {got!r}\n  expected {want!r}")
    print(f"{n} expectations checked against Python's Jinja2 {oracle_jinja2.jinja2.__version__}, {bad} differ")
    if n < 50:
        print("too few EXPECT_OUT found: the pattern no longer matches the test file")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
