/* chat_template.h — render a conversation with a tokenizer_config.json `chat_template` (DESIGN §10).
 *
 * A small Jinja interpreter that renders `messages` exactly as transformers'
 * `apply_chat_template(messages, tokenize=False)` does, for the templates of Llama 3, 3.1 and 3.2, Qwen2.5,
 * Qwen3 and SmolLM2 (tests/fixtures/chat_templates/), with Jinja2's semantics under transformers'
 * environment: trim_blocks and lstrip_blocks on, a single trailing newline of the template dropped,
 * `{%-` / `-%}` whitespace control, loop controls (break, continue) enabled. Tested byte for byte against
 * Python's Jinja2 in that environment and against @huggingface/jinja (tests/chat/).
 *
 * Supported: text, `{{ }}`, `{% %}`, `{# #}`; if/elif/else, for (loop.index0/index/revindex/revindex0/
 * first/last/length/previtem/nextitem/cycle, over lists, strings, dicts and dict.items(), `for a, b in ...`,
 * an `if` clause, an `else` block; each iteration has its own scope, as in Jinja2), set (names, `ns.attr`,
 * block form `{% set x %}...{% endset %}`), namespace(), break, continue, transformers' `{% generation %}`
 * (transparent); expressions (literals, lists, dicts, tuples, attribute/item access, slices, `~`,
 * + - * / // % **, comparisons (chained), and/or/not, in/not in, `a if c else b`); the filters, tests,
 * string/dict methods and globals listed in src/jinja_builtins.c (raise_exception, namespace, range, dict,
 * strftime_now). Anything else — macros, include/import/extends, call and filter blocks, raw, with, do,
 * recursive loops, *args, string formatting with %, an unknown filter, test, method or function — is refused:
 * IQ_EDATA with a message naming the construct and the template line ("PATH:12: unsupported statement
 * 'macro'"). An unknown filter or test is refused at parse time, except where Jinja2 itself only refuses it
 * when evaluated (an if statement's test and branches, a conditional expression).
 * Known differences from Python, outside what the templates above use: integers are 64-bit (overflow is
 * refused, Python's are unbounded); upper/lower/title/capitalize map ASCII letters only; repr() of strings
 * (lists printed with {{ }}) treats unassigned code points as printable.
 *
 * Variables passed to the template, as transformers does: `messages` (the array, converted from JSON:
 * objects keep their key order, integral numbers are ints), `add_generation_prompt`, `bos_token` and
 * `eos_token` when given (transformers passes the tokenizer's special tokens; one that is not set is
 * undefined), `tools` = none and `documents` = none, plus every member of `extra` (e.g.
 * {"enable_thinking": false}, or "tools": [...] to replace the none). `strftime_now(fmt)` formats `now`
 * (UTC; transformers reads the clock) so that renders are reproducible: pass a fixed time, e.g. the run's
 * start. `date_string` is not passed (the Llama templates that read it define a default).
 *
 * The template is untrusted input (a downloaded folder): parsing bounds nesting depth, rendering bounds
 * loop iterations, output bytes, memory and work (bytes scanned by string operations); exceeding a bound
 * is IQ_EDATA naming it. Nothing reads files, the environment or the clock.
 *
 * Assistant spans. For each message whose role is "assistant", the renderer reports the byte span of the
 * output that its `content` string became, so that the data layer can supervise exactly those tokens and
 * the end-of-turn token after them. Spans are found by provenance tracking: every string value carries the
 * list of its byte ranges that are verbatim copies of an assistant message's content (message index and
 * offset in that content). Concatenation (`+`, `~`, join) shifts and merges the ranges; substring
 * operations (trim/strip/lstrip/rstrip, split, slicing with step 1, indexing, first/last) keep the part
 * they keep; every other operation (replace, upper, tojson, formatting...) yields a new string without
 * provenance. Whatever reaches the output is recorded at its output offset. The span of message i runs
 * from the first to the last output byte copied from its content (empty pieces, such as an empty reasoning
 * split off the content, leave marks but do not count); when nothing non-empty of it is emitted (an empty
 * content, or one trimmed to nothing), the span is empty, at the last place an empty piece of it went.
 * When a template splits a content into pieces (Qwen3's reasoning and answer of the last turn), the span
 * covers the first to the last piece, template text between them included. Rendering is refused
 * (IQ_EDATA) when an assistant content is never emitted (e.g. Llama 3.2 prints tool calls instead of the
 * content), when a byte of it is emitted twice, when the spans of two assistant messages overlap, or when
 * an assistant message's content is not a string or absent (tool calls only); `no_spans` skips all this.
 */
#ifndef IQTRAIN_CHAT_TEMPLATE_H
#define IQTRAIN_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

struct cJSON;

/* A parsed template (immutable; may be rendered many times, also from several threads). */
typedef struct iq_chat_template iq_chat_template;

/* Bounds on one render; a 0 field takes the default in brackets. */
typedef struct {
    size_t max_output;      /* output bytes [64 MiB] */
    size_t max_memory;      /* bytes allocated for values during the render [512 MiB] */
    uint64_t max_iterations; /* loop iterations over the whole render [10 000 000] */
    uint64_t max_work;      /* bytes scanned or copied by string operations [4e9] */
} iq_chat_limits;

typedef struct {
    const char *bos_token;       /* NULL: undefined in the template */
    const char *eos_token;       /* NULL: undefined in the template */
    bool add_generation_prompt;
    const struct cJSON *extra;   /* NULL or an object: further variables (enable_thinking, tools, ...) */
    int64_t now;                 /* seconds since the epoch, for strftime_now (UTC) */
    bool no_spans;               /* render only: no assistant spans (and no refusal for want of them) */
    iq_chat_limits limits;
} iq_chat_vars;

/* The output span of one assistant message's content: bytes [start, end) of the rendered text. */
typedef struct {
    size_t message; /* index in the messages array */
    size_t start, end;
} iq_chat_span;

typedef struct {
    char *text;           /* NUL-terminated (the text itself may contain NUL bytes) */
    size_t len;
    iq_chat_span *spans;  /* one per assistant message, in message order */
    size_t n_spans;
} iq_chat_render;

/* Parses a template. `name` prefixes error messages (e.g. the file path). IQ_EDATA on a syntax error or an
 * unsupported construct, naming the line. Free with iq_chat_template_free. */
iq_status iq_chat_template_parse(const char *src, size_t len, const char *name, iq_chat_template **out);
void iq_chat_template_free(iq_chat_template *t);

/* Renders `messages` (a JSON array of objects). IQ_EDATA when the template raises (raise_exception), fails
 * at run time (a type error, an undefined attribute of an undefined value...), exceeds a bound, or the
 * assistant spans cannot be found (see above). On success fill *out; free it with iq_chat_render_free. */
iq_status iq_chat_template_render(const iq_chat_template *t, const struct cJSON *messages, const iq_chat_vars *vars,
                                  iq_chat_render *out);
void iq_chat_render_free(iq_chat_render *r);

#endif
