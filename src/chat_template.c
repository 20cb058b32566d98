/* chat_template.c — the public face of the chat-template interpreter (include/iqtrain/chat_template.h):
 * parsing into an AST, the variables transformers passes, rendering with bounds, and the assistant spans
 * from the output's provenance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "iqtrain/chat_template.h"
#include "jinja.h"

#define PARSE_MEMORY_LIMIT ((size_t)256 << 20)
#define JSON_MAX_DEPTH 256

struct iq_chat_template {
    jarena arena;
    jnode *root;
    char *name;
};

/* ---------------------------------------------------------------- parse */
iq_status iq_chat_template_parse(const char *src, size_t len, const char *name, iq_chat_template **out) {
    *out = NULL;
    iq_chat_template *t = iq_xcalloc(1, sizeof *t);
    jerr *e = iq_xcalloc(1, sizeof *e);
    t->name = iq_xstrdup(name ? name : "chat template");
    t->arena.limit = PARSE_MEMORY_LIMIT;
    e->name = t->name;
    if (setjmp(e->jmp)) {
        iq_status st = iq_fail(IQ_EDATA, "%s", e->msg);
        free(e);
        iq_chat_template_free(t);
        return st;
    }
    jtok *toks;
    size_t ntoks;
    jlex(&t->arena, e, src, len, &toks, &ntoks);
    t->root = jparse(&t->arena, e, toks, ntoks);
    free(e);
    *out = t;
    return IQ_OK;
}

void iq_chat_template_free(iq_chat_template *t) {
    if (!t) return;
    ja_free(&t->arena);
    free(t->name);
    free(t);
}

/* ---------------------------------------------------------------- variables */
/* JSON -> value; the string at `track` (if any) gets the provenance of message `msg`'s content */
static jv from_json(jctx *c, const cJSON *j, int depth, const cJSON *track, uint32_t msg) {
    if (depth > JSON_MAX_DEPTH) jx_fail(c->err, 0, "messages nested too deeply (over %d levels)", JSON_MAX_DEPTH);
    if (cJSON_IsNull(j)) return jv_none();
    if (cJSON_IsBool(j)) return jv_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == floor(d)) return jv_int((int64_t)d);
        return jv_float(d);
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        jstr *str = js_new(c, s, strlen(s));
        if (j == track) {
            str->seg = jc_alloc(c, sizeof(jseg));
            str->seg[0] = (jseg){.msg = msg, .src = 0, .dst = 0, .len = str->len};
            str->nseg = 1;
        }
        return jv_strv(str);
    }
    if (cJSON_IsArray(j)) {
        jlist *l = jl_new(c, (size_t)cJSON_GetArraySize(j));
        size_t i = 0;
        for (const cJSON *x = j->child; x && i < l->n; x = x->next) l->v[i++] = from_json(c, x, depth + 1, track, msg);
        return jv_listv(l);
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jd_new(c, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *x = j->child; x; x = x->next)
            jd_set(c, d, js_new(c, x->string ? x->string : "", x->string ? strlen(x->string) : 0),
                   from_json(c, x, depth + 1, track, msg));
        return jv_dictv(d);
    }
    jx_fail(c->err, 0, "unsupported JSON value in messages");
}

static bool is_assistant(const cJSON *m) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(role) && strcmp(role->valuestring, "assistant") == 0;
}

/* the content string of an assistant message, or NULL */
static const cJSON *assistant_content(const cJSON *m) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    return is_assistant(m) && cJSON_IsString(content) ? content : NULL;
}

static jv messages_value(jctx *c, const cJSON *messages) {
    jlist *l = jl_new(c, (size_t)cJSON_GetArraySize(messages));
    uint32_t i = 0;
    for (const cJSON *m = messages->child; m && i < l->n; m = m->next, i++) {
        l->v[i] = from_json(c, m, 1, assistant_content(m), i);
    }
    return jv_listv(l);
}

static void set_globals(jctx *c, const cJSON *messages, const iq_chat_vars *v) {
    static const struct {
        const char *name;
        int fn;
    } funcs[] = {{"namespace", JF_NAMESPACE}, {"raise_exception", JF_RAISE}, {"range", JF_RANGE},
                 {"strftime_now", JF_STRFTIME}, {"dict", JF_DICT}};
    jframe *g = c->globals;
    for (size_t k = 0; k < sizeof funcs / sizeof *funcs; k++) {
        jv f = {.t = JV_FUNC, .fn = (uint8_t)funcs[k].fn};
        jframe_set(c, g, funcs[k].name, f);
    }
    jframe_set(c, g, "messages", messages_value(c, messages));
    jframe_set(c, g, "add_generation_prompt", jv_bool(v->add_generation_prompt));
    jframe_set(c, g, "tools", jv_none());
    jframe_set(c, g, "documents", jv_none());
    if (v->bos_token) jframe_set(c, g, "bos_token", jv_str(c, v->bos_token));
    if (v->eos_token) jframe_set(c, g, "eos_token", jv_str(c, v->eos_token));
    if (cJSON_IsObject(v->extra))
        for (const cJSON *x = v->extra->child; x; x = x->next)
            if (x->string) jframe_set(c, g, x->string, from_json(c, x, 1, NULL, 0));
}

/* ---------------------------------------------------------------- spans */
static int seg_order(const void *x, const void *y) {
    const jseg *a = x, *b = y;
    if (a->msg != b->msg) return a->msg < b->msg ? -1 : 1;
    if (a->src != b->src) return a->src < b->src ? -1 : 1;
    return (a->dst > b->dst) - (a->dst < b->dst);
}

static int span_order(const void *x, const void *y) {
    const iq_chat_span *a = x, *b = y;
    return (a->start > b->start) - (a->start < b->start);
}

/* The span of message `msg` from its segments g[0..n) (sorted by source offset): the hull of the non-empty
 * pieces; when every piece is empty, the last place one was emitted. */
static iq_chat_span one_span(jctx *c, uint32_t msg, const jseg *g, size_t n) {
    if (n == 0) jx_fail(c->err, 0, "message %u (assistant): its content does not appear in the rendered text", msg);
    iq_chat_span sp = {.message = msg, .start = SIZE_MAX, .end = 0};
    size_t last_mark = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && g[i].len > 0 && g[i - 1].src + g[i - 1].len > g[i].src)
            jx_fail(c->err, 0, "message %u (assistant): bytes of its content are emitted more than once", msg);
        if (i > 0 && g[i].len == 0 && g[i - 1].len == 0 && g[i - 1].src == g[i].src)
            jx_fail(c->err, 0, "message %u (assistant): its content (empty) is emitted more than once", msg);
        if (g[i].len == 0) {
            if (g[i].dst > last_mark) last_mark = g[i].dst;
            continue;
        }
        if (g[i].dst < sp.start) sp.start = g[i].dst;
        if (g[i].dst + g[i].len > sp.end) sp.end = g[i].dst + g[i].len;
    }
    if (sp.start == SIZE_MAX) sp.start = sp.end = last_mark;
    return sp;
}

static void find_spans(jctx *c, const cJSON *messages, iq_chat_render *out) {
    jseg *g = jc_alloc(c, (c->noseg ? c->noseg : 1) * sizeof(jseg));
    if (c->noseg) memcpy(g, c->oseg, c->noseg * sizeof(jseg));
    qsort(g, c->noseg, sizeof(jseg), seg_order);
    size_t n_assist = 0, k = 0;
    uint32_t i = 0;
    for (const cJSON *m = messages->child; m; m = m->next) n_assist += is_assistant(m);
    iq_chat_span *sp = jc_alloc(c, (n_assist ? n_assist : 1) * sizeof *sp);
    size_t ns = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        if (!is_assistant(m)) continue;
        if (!assistant_content(m)) jx_fail(c->err, 0, "message %u (assistant): its content is not a string", i);
        while (k < c->noseg && g[k].msg < i) k++;
        size_t k0 = k;
        while (k < c->noseg && g[k].msg == i) k++;
        sp[ns++] = one_span(c, i, g + k0, k - k0);
    }
    iq_chat_span *sorted = jc_alloc(c, (ns ? ns : 1) * sizeof *sp);
    if (ns) memcpy(sorted, sp, ns * sizeof *sp);
    qsort(sorted, ns, sizeof *sp, span_order);
    for (size_t j = 1; j < ns; j++)
        if (sorted[j].start < sorted[j - 1].end)
            jx_fail(c->err, 0, "messages %zu and %zu (assistant): their contents overlap in the rendered text",
                    sorted[j - 1].message, sorted[j].message);
    out->spans = iq_xmalloc((ns ? ns : 1) * sizeof *sp);
    if (ns) memcpy(out->spans, sp, ns * sizeof *sp);
    out->n_spans = ns;
}

/* ---------------------------------------------------------------- render */
static iq_chat_limits limits_with_defaults(iq_chat_limits l) {
    if (!l.max_output) l.max_output = (size_t)64 << 20;
    if (!l.max_memory) l.max_memory = (size_t)512 << 20;
    if (!l.max_iterations) l.max_iterations = 10000000;
    if (!l.max_work) l.max_work = 4000000000ull;
    return l;
}

static void render_cleanup(jctx *c) {
    ja_free(&c->arena);
    iq_buf_free(&c->out);
    free(c->oseg);
    free(c->err);
    free(c);
}

iq_status iq_chat_template_render(const iq_chat_template *t, const cJSON *messages, const iq_chat_vars *vars,
                                  iq_chat_render *out) {
    memset(out, 0, sizeof *out);
    if (!cJSON_IsArray(messages)) return iq_fail(IQ_EDATA, "%s: messages is not a JSON array", t->name);
    if (vars->extra && !cJSON_IsObject(vars->extra))
        return iq_fail(IQ_EDATA, "%s: the extra template variables are not a JSON object", t->name);
    jctx *c = iq_xcalloc(1, sizeof *c);
    c->err = iq_xcalloc(1, sizeof *c->err);
    c->err->name = t->name;
    c->lim = limits_with_defaults(vars->limits);
    c->arena.limit = c->lim.max_memory;
    c->now = vars->now;
    if (setjmp(c->err->jmp)) {
        iq_status st = iq_fail(IQ_EDATA, "%s", c->err->msg);
        free(out->spans);
        memset(out, 0, sizeof *out);
        render_cleanup(c);
        return st;
    }
    c->globals = jframe_new_globals(c);
    set_globals(c, messages, vars);
    jeval_template(c, t->root);
    if (!vars->no_spans) find_spans(c, messages, out);
    iq_buf_cstr(&c->out);
    out->len = c->out.len;
    out->text = c->out.data ? c->out.data : iq_xstrdup("");
    c->out = (iq_buf){0};
    render_cleanup(c);
    return IQ_OK;
}

void iq_chat_render_free(iq_chat_render *r) {
    if (!r) return;
    free(r->text);
    free(r->spans);
    memset(r, 0, sizeof *r);
}
