#!/usr/bin/env python3
"""oracle_jinja2.py — renders the chat-template corpus with Python's Jinja2 in the environment transformers'
apply_chat_template uses (the normative oracle; @huggingface/jinja is the second one, oracle.mjs).

usage: /usr/bin/python3 oracle_jinja2.py FIXTURES_DIR CORPUS.jsonl > OUT.jsonl   (exit 77 without jinja2)

The environment, as transformers sets it up (chat_template_utils: _compile_jinja_template and
render_jinja_template; written here from that description, not copied): an ImmutableSandboxedEnvironment with
trim_blocks and lstrip_blocks, the loopcontrols extension and a `generation` block tag (rendered as its body),
the filter tojson = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...), and the
globals raise_exception (raises a TemplateError) and strftime_now (here formatting the case's `now` in UTC
instead of the clock, as the C renderer does). Render variables: messages, tools (None unless the case's
extra gives them), documents=None, add_generation_prompt, the template's bos_token / eos_token when set, then
the case's extra variables. Each output line is {"text": ...} or {"error": "<exception type>: message"}."""
import datetime
import json
import os
import sys

try:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("python3-jinja2 missing: skipped", file=sys.stderr)
    sys.exit(77)


class GenerationTag(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: transformers marks assistant tokens with it; the text is the body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def make_env(now_box):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(now_box[0], datetime.timezone.utc).strftime(fmt)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    fixtures, corpus = sys.argv[1], sys.argv[2]
    now_box = [0]
    env = make_env(now_box)
    templates = {}
    out = sys.stdout
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            c = json.loads(line)
            name = c["template"]
            if name not in templates:
                with open(os.path.join(fixtures, name + ".json"), encoding="utf-8") as g:
                    cfg = json.load(g)
                templates[name] = (env.from_string(cfg["chat_template"]), cfg)
            tmpl, cfg = templates[name]
            now_box[0] = c.get("now", 0)
            kw = {"messages": c["messages"], "tools": None, "documents": None,
                  "add_generation_prompt": c.get("add_generation_prompt", False)}
            for tok in ("bos_token", "eos_token"):
                if cfg.get(tok) is not None:
                    kw[tok] = cfg[tok]
            kw.update(c.get("extra") or {})
            try:
                res = {"text": tmpl.render(**kw)}
            except Exception as e:  # the template's own failures are results to compare
                res = {"error": f"{type(e).__name__}: {e}"}
            out.write(json.dumps(res, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
