#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_chat_template into tests/fuzz/corpus/chat_template/: the five fixture
templates (tests/fixtures/chat_templates/), each alone and followed by a NUL and a conversation, and small
templates exercising the other constructs. Deterministic; re-run after changing it:
    python3 tests/chat/make_fuzz_seeds.py"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "chat_templates")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus", "chat_template")

CONV = json.dumps([{"role": "user", "content": "<tool_response>\nx\n</tool_response>"},
                   {"role": "assistant", "content": "a", "reasoning_content": "r"},
                   {"role": "tool", "content": "t"},
                   {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": {"k": [1, 2.5]}}}]}])
SMALL = {
    "ws": "a {{- ' b' -}} \n {%- if true +%}\n  x\n{%+ endif %} {# c #}\n",
    "loops": "{% for k, v in {'a': 1}.items() if v %}{{ loop.index0 }}{{ loop.revindex }}{% else %}e{% endfor %}"
             "{% for x in range(3) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "ns": "{% set ns = namespace(a=1) %}{% for m in messages %}{% set ns.a = ns.a * 2 %}{% endfor %}{{ ns.a }}"
          "{% set s %}{{ messages[-1].content }}{% endset %}{{ s|trim|length }}",
    "expr": "{{ (1 + 2) * 3 // 2 % 5 ** 2 ~ 'x' }}{{ [1, 2][::-1] }}{{ 'abc'[1:] }}{{ 1 < 2 <= 3 }}{{ 'a' in 'ab' }}"
            "{{ x if x is defined else none is none }}{{ -1.5e3|abs|int }}{{ {'k': [1, {'j': none}]}|tojson(indent=2) }}",
    "methods": "{{ ' a,b '.strip().split(',')|join('|') }}{{ 'x'.upper().lower().startswith('x') }}"
               "{{ 'a\\nb'.lstrip('a').rstrip('b').replace('\\n', '-') }}{{ {'a': 1}.get('b', 2) }}{{ 'a'|default('b', true) }}"
               "{{ [{'r': 1}]|selectattr('r', 'equalto', 1)|map(attribute='r')|list }}{{ strftime_now('%Y') }}",
    "raise": "{% if messages|length > 100 %}{{ raise_exception('too many') }}{% endif %}{{ messages[0]['content'] }}",
    "spans": "{% for m in messages %}{% if m.role == 'assistant' %}<a>{{ m.content.split('</think>')[-1]|trim }}</a>"
             "{% else %}{{ m.content }}{% endif %}{% endfor %}",
}


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data.encode("utf-8"))


os.makedirs(OUT, exist_ok=True)
for fn in sorted(os.listdir(FIX)):
    tmpl = json.load(open(os.path.join(FIX, fn), encoding="utf-8"))["chat_template"]
    put("fixture-" + fn[:-5], tmpl)
    put("fixture-" + fn[:-5] + "-conv", tmpl + "\0" + CONV)
for name, tmpl in SMALL.items():
    put("construct-" + name, tmpl)
