/* jinja_value.c — the chat-template interpreter's values: arena, strings with provenance, Python's str(),
 * repr() and transformers' tojson, UTF-8 helpers. See jinja.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

/* ---------------------------------------------------------------- errors and arena */
_Noreturn void jx_fail(jerr *e, int line, const char *fmt, ...) {
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (line > 0) snprintf(e->msg, sizeof e->msg, "%s:%d: %s", e->name, line, m);
    else snprintf(e->msg, sizeof e->msg, "%s: %s", e->name, m);
    longjmp(e->jmp, 1);
}

struct jblock {
    jblock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *ja_alloc(jarena *a, jerr *e, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (n > a->limit || a->total > a->limit - n - sizeof(jblock))
            jx_fail(e, 0, "memory limit of %zu bytes exceeded", a->limit);
        jblock *b = malloc(sizeof(jblock) + cap);
        if (!b) jx_fail(e, 0, "out of memory (%zu bytes)", cap);
        a->total += sizeof(jblock) + cap;
        b->used = 0;
        b->cap = cap;
        /* a big block goes behind the current one so that the current one's free space stays usable */
        if (a->head && cap == n) {
            b->next = a->head->next;
            a->head->next = b;
            b->used = n;
            return b->data;
        }
        b->next = a->head;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

void ja_free(jarena *a) {
    for (jblock *b = a->head, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}

void *jc_alloc(jctx *c, size_t n) { return ja_alloc(&c->arena, c->err, n); }

void jc_work(jctx *c, int line, uint64_t n) {
    c->work += n;
    if (c->work > c->lim.max_work)
        jx_fail(c->err, line, "work limit exceeded (%llu bytes of string operations)", (unsigned long long)c->lim.max_work);
}

/* ---------------------------------------------------------------- UTF-8 */
size_t u8_next(const char *p, size_t n, size_t i, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)p;
    unsigned b = s[i];
    size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (k == 0 || i + k > n) { /* an invalid byte counts as one character */
        *cp = b;
        return i + 1;
    }
    uint32_t v = k == 1 ? b : k == 2 ? (b & 0x1f) : k == 3 ? (b & 0x0f) : (b & 0x07);
    for (size_t j = 1; j < k; j++) {
        if ((s[i + j] & 0xc0) != 0x80) {
            *cp = b;
            return i + 1;
        }
        v = (v << 6) | (s[i + j] & 0x3f);
    }
    *cp = v;
    return i + k;
}

size_t u8_count(const char *p, size_t n) {
    size_t k = 0;
    uint32_t cp;
    for (size_t i = 0; i < n; k++) i = u8_next(p, n, i, &cp);
    return k;
}

size_t u8_offset(const char *p, size_t n, size_t k) {
    size_t i = 0;
    uint32_t cp;
    while (k > 0 && i < n) {
        i = u8_next(p, n, i, &cp);
        k--;
    }
    return i;
}

/* Python's str.isspace (Unicode White_Space plus the separators U+001C..U+001F). */
bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* ---------------------------------------------------------------- strings */
jstr *js_lit(jctx *c, const char *p, size_t len) {
    jstr *s = jc_alloc(c, sizeof *s);
    *s = (jstr){.p = p, .len = len};
    return s;
}

jstr *js_new(jctx *c, const char *p, size_t len) {
    char *q = jc_alloc(c, len + 1);
    if (len) memcpy(q, p, len);
    q[len] = 0;
    return js_lit(c, q, len);
}

jv jv_str(jctx *c, const char *s) { return jv_strv(js_new(c, s, strlen(s))); }

jstr *js_sub(jctx *c, const jstr *s, size_t a, size_t b) {
    jstr *r = js_lit(c, s->p + a, b - a);
    if (s->nseg == 0) return r;
    r->seg = jc_alloc(c, s->nseg * sizeof(jseg));
    for (size_t i = 0; i < s->nseg; i++) {
        const jseg *g = &s->seg[i];
        size_t lo = g->dst > a ? g->dst : a, hi = g->dst + g->len < b ? g->dst + g->len : b;
        if (lo > hi) continue;
        /* an empty overlap is kept only as the mark of an empty result or of an empty piece */
        if (lo == hi && a != b && g->len != 0) continue;
        r->seg[r->nseg++] = (jseg){.msg = g->msg, .src = g->src + (lo - g->dst), .dst = lo - a, .len = hi - lo};
    }
    return r;
}

/* appends the segments of s, shifted by `at`, merging with a contiguous predecessor */
static void seg_append(jseg *dst, size_t *n, const jstr *s, size_t at) {
    for (size_t i = 0; i < s->nseg; i++) {
        jseg g = s->seg[i];
        g.dst += at;
        if (*n > 0) {
            jseg *p = &dst[*n - 1];
            if (p->msg == g.msg && p->dst + p->len == g.dst && p->src + p->len == g.src) {
                p->len += g.len;
                continue;
            }
        }
        dst[(*n)++] = g;
    }
}

jstr *js_cat(jctx *c, int line, const jstr *a, const jstr *b) {
    if (a->len > c->lim.max_memory || b->len > c->lim.max_memory - a->len)
        jx_fail(c->err, line, "memory limit of %zu bytes exceeded", c->lim.max_memory);
    jc_work(c, line, a->len + b->len);
    char *q = jc_alloc(c, a->len + b->len + 1);
    if (a->len) memcpy(q, a->p, a->len);
    if (b->len) memcpy(q + a->len, b->p, b->len);
    q[a->len + b->len] = 0;
    jstr *r = js_lit(c, q, a->len + b->len);
    if (a->nseg + b->nseg) {
        r->seg = jc_alloc(c, (a->nseg + b->nseg) * sizeof(jseg));
        seg_append(r->seg, &r->nseg, a, 0);
        seg_append(r->seg, &r->nseg, b, a->len);
    }
    return r;
}

/* ---------------------------------------------------------------- string builder (arena) */
void jsb_put(jsb *b, const void *p, size_t n) {
    if (n == 0) return;
    if (b->cap - b->len <= n) {
        jctx *c = b->c;
        if (n > c->lim.max_memory || b->len > c->lim.max_memory - n)
            jx_fail(c->err, 0, "memory limit of %zu bytes exceeded", c->lim.max_memory);
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len <= n) cap *= 2;
        char *q = jc_alloc(c, cap);
        if (b->len) memcpy(q, b->p, b->len);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

void jsb_putc(jsb *b, char ch) { jsb_put(b, &ch, 1); }

void jsb_printf(jsb *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) jsb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

jstr *jsb_str(jsb *b) { return js_lit(b->c, b->p ? b->p : "", b->len); }

/* ---------------------------------------------------------------- containers */
jlist *jl_new(jctx *c, size_t n) {
    if (n > c->lim.max_memory / sizeof(jv)) jx_fail(c->err, 0, "memory limit of %zu bytes exceeded", c->lim.max_memory);
    jlist *l = jc_alloc(c, sizeof *l);
    l->n = n;
    l->v = jc_alloc(c, (n ? n : 1) * sizeof(jv));
    return l;
}

jdict *jd_new(jctx *c, size_t cap) {
    jdict *d = jc_alloc(c, sizeof *d);
    *d = (jdict){.cap = cap ? cap : 4};
    d->k = jc_alloc(c, d->cap * sizeof(jstr *));
    d->v = jc_alloc(c, d->cap * sizeof(jv));
    return d;
}

static ptrdiff_t jd_find(const jdict *d, const char *k, size_t klen) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->len == klen && memcmp(d->k[i]->p, k, klen) == 0) return (ptrdiff_t)i;
    return -1;
}

void jd_set(jctx *c, jdict *d, jstr *k, jv v) {
    ptrdiff_t i = jd_find(d, k->p, k->len);
    if (i >= 0) {
        d->v[i] = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        jstr **nk = jc_alloc(c, cap * sizeof(jstr *));
        jv *nv = jc_alloc(c, cap * sizeof(jv));
        memcpy(nk, d->k, d->n * sizeof(jstr *));
        memcpy(nv, d->v, d->n * sizeof(jv));
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    jc_work(c, 0, d->n);
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

bool jd_get(const jdict *d, const char *k, size_t klen, jv *out) {
    ptrdiff_t i = jd_find(d, k, klen);
    if (i < 0) return false;
    *out = d->v[i];
    return true;
}

/* ---------------------------------------------------------------- Python semantics */
const char *jv_type_name(jv v) {
    static const char *names[] = {"Undefined", "NoneType", "bool", "int", "float", "str", "list", "dict", "function"};
    if (v.t == JV_DICT && v.u.d->is_namespace) return "Namespace";
    return names[v.t];
}

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->is_namespace || v.u.d->n > 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double num_f(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }

bool jv_equal(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return (a.t == JV_INT ? a.u.i : a.u.b) == (b.t == JV_INT ? b.u.i : b.u.b);
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.u.s->len == b.u.s->len && memcmp(a.u.s->p, b.u.s->p, a.u.s->len) == 0;
    case JV_LIST:
        if (a.fn != b.fn || a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.u.d == b.u.d) return true;
        if (a.u.d->is_namespace || b.u.d->is_namespace || a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv o;
            if (!jd_get(b.u.d, a.u.d->k[i]->p, a.u.d->k[i]->len, &o) || !jv_equal(a.u.d->v[i], o)) return false;
        }
        return true;
    case JV_FUNC: return a.fn == b.fn;
    default: return false;
    }
}

/* Python's repr(float): the shortest digits that read back, exponent form outside [1e-4, 1e16). */
static void float_repr(jsb *b, double f) {
    if (isnan(f)) { jsb_printf(b, "nan"); return; }
    if (isinf(f)) { jsb_printf(b, f < 0 ? "-inf" : "inf"); return; }
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    char *x = strchr(e, 'e');
    int exp = atoi(x + 1);
    *x = 0;
    char digits[24];
    size_t nd = 0;
    for (char *p = e; *p; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    if (f < 0 || (f == 0 && signbit(f))) jsb_putc(b, '-');
    if (exp < -4 || exp >= 16) {
        jsb_putc(b, digits[0]);
        if (nd > 1) {
            jsb_putc(b, '.');
            jsb_put(b, digits + 1, nd - 1);
        }
        jsb_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        jsb_printf(b, "0.");
        for (int i = 0; i < -exp - 1; i++) jsb_putc(b, '0');
        jsb_put(b, digits, nd);
    } else {
        for (int i = 0; i <= exp; i++) jsb_putc(b, (size_t)i < nd ? digits[i] : '0');
        jsb_putc(b, '.');
        if ((size_t)exp + 1 < nd) jsb_put(b, digits + exp + 1, nd - (size_t)exp - 1);
        else jsb_putc(b, '0');
    }
}

/* Python's str.isprintable for one code point, without a table of unassigned code points: controls,
 * separators other than ' ' (Zs, Zl, Zp), the common format characters (Cf), surrogates and private use are not
 * printable. */
static bool py_isprintable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return false;
    if (c != ' ' && py_isspace(c)) return false;
    if (c == 0xad || (c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x180e ||
        (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f) || c == 0xfeff ||
        (c >= 0xfff9 && c <= 0xfffb))
        return false;
    return !((c >= 0xd800 && c <= 0xf8ff) || c >= 0xf0000);
}

/* Python's repr of a string: quotes, backslash escapes, \xhh / \uhhhh / \Uhhhhhhhh for the unprintable */
static void repr_str(jsb *b, const jstr *s) {
    bool sq = memchr(s->p, '\'', s->len) != NULL, dq = memchr(s->p, '"', s->len) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jsb_putc(b, q);
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        size_t j = u8_next(s->p, s->len, i, &cp);
        if (cp == '\\' || cp == (uint32_t)q) jsb_printf(b, "\\%c", (char)cp);
        else if (cp == '\n') jsb_printf(b, "\\n");
        else if (cp == '\r') jsb_printf(b, "\\r");
        else if (cp == '\t') jsb_printf(b, "\\t");
        else if (py_isprintable(cp)) jsb_put(b, s->p + i, j - i);
        else if (cp < 0x100) jsb_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp < 0x10000) jsb_printf(b, "\\u%04x", (unsigned)cp);
        else jsb_printf(b, "\\U%08x", (unsigned)cp);
        i = j;
    }
    jsb_putc(b, q);
}

static void check_depth(jctx *c, int line, int depth) {
    if (depth > 256) jx_fail(c->err, line, "value nested too deeply (over 256 levels) to print");
}

void jv_repr(jctx *c, int line, jsb *b, jv v, int depth) {
    check_depth(c, line, depth);
    if (b->len > c->lim.max_output) jx_fail(c->err, line, "output limit of %zu bytes exceeded", c->lim.max_output);
    switch (v.t) {
    case JV_UNDEF: jsb_printf(b, "Undefined"); return;
    case JV_STR: repr_str(b, v.u.s); return;
    case JV_LIST:
        jsb_putc(b, v.fn ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jsb_printf(b, ", ");
            jv_repr(c, line, b, v.u.l->v[i], depth + 1);
        }
        if (v.fn && v.u.l->n == 1) jsb_putc(b, ',');
        jsb_putc(b, v.fn ? ')' : ']');
        return;
    case JV_DICT:
        if (v.u.d->is_namespace) jsb_printf(b, "<Namespace ");
        jsb_putc(b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jsb_printf(b, ", ");
            repr_str(b, v.u.d->k[i]);
            jsb_printf(b, ": ");
            jv_repr(c, line, b, v.u.d->v[i], depth + 1);
        }
        jsb_putc(b, '}');
        if (v.u.d->is_namespace) jsb_putc(b, '>');
        return;
    default: jv_to_str(c, line, b, v);
    }
}

void jv_to_str(jctx *c, int line, jsb *b, jv v) {
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: jsb_printf(b, "None"); return;
    case JV_BOOL: jsb_printf(b, v.u.b ? "True" : "False"); return;
    case JV_INT: jsb_printf(b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT: float_repr(b, v.u.f); return;
    case JV_STR: jsb_put(b, v.u.s->p, v.u.s->len); return;
    case JV_FUNC: jsb_printf(b, "<built-in function>"); return;
    default: jv_repr(c, line, b, v, 0);
    }
}

jstr *jv_as_str(jctx *c, int line, jv v) {
    if (v.t == JV_STR) return v.u.s;
    jsb b = {.c = c};
    jv_to_str(c, line, &b, v);
    return jsb_str(&b);
}

/* Python json.dumps(ensure_ascii=False) string escaping */
static void json_str(jsb *b, const char *p, size_t n) {
    jsb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        switch (ch) {
        case '"': jsb_printf(b, "\\\""); break;
        case '\\': jsb_printf(b, "\\\\"); break;
        case '\n': jsb_printf(b, "\\n"); break;
        case '\r': jsb_printf(b, "\\r"); break;
        case '\t': jsb_printf(b, "\\t"); break;
        case '\b': jsb_printf(b, "\\b"); break;
        case '\f': jsb_printf(b, "\\f"); break;
        default:
            if (ch < 0x20) jsb_printf(b, "\\u%04x", ch);
            else jsb_putc(b, (char)ch);
        }
    }
    jsb_putc(b, '"');
}

static void json_newline(jsb *b, int indent, int level) {
    jsb_putc(b, '\n');
    for (int i = 0; i < indent * level; i++) jsb_putc(b, ' ');
}

static int key_cmp(const void *x, const void *y) {
    const jstr *a = *(jstr *const *)x, *b = *(jstr *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->p, b->p, n);
    return r ? r : (a->len > b->len) - (a->len < b->len);
}

static void json_dict(jctx *c, int line, jsb *b, const jdict *d, int indent, bool sort_keys, int depth, int level) {
    if (d->n == 0) { jsb_printf(b, "{}"); return; }
    jstr **keys = jc_alloc(c, d->n * sizeof(jstr *));
    memcpy(keys, d->k, d->n * sizeof(jstr *));
    if (sort_keys) qsort(keys, d->n, sizeof(jstr *), key_cmp);
    jsb_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) jsb_putc(b, ',');
        if (indent >= 0) json_newline(b, indent, level + 1);
        else if (i) jsb_putc(b, ' ');
        json_str(b, keys[i]->p, keys[i]->len);
        jsb_printf(b, ": ");
        jv val;
        jd_get(d, keys[i]->p, keys[i]->len, &val);
        jv_tojson(c, line, b, val, indent, sort_keys, depth + 1, level + 1);
    }
    if (indent >= 0) json_newline(b, indent, level);
    jsb_putc(b, '}');
}

void jv_tojson(jctx *c, int line, jsb *b, jv v, int indent, bool sort_keys, int depth, int level) {
    check_depth(c, line, depth);
    if (b->len > c->lim.max_output) jx_fail(c->err, line, "output limit of %zu bytes exceeded", c->lim.max_output);
    switch (v.t) {
    case JV_NONE: jsb_printf(b, "null"); return;
    case JV_BOOL: jsb_printf(b, v.u.b ? "true" : "false"); return;
    case JV_INT: jsb_printf(b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT:
        if (isnan(v.u.f)) jsb_printf(b, "NaN");
        else if (isinf(v.u.f)) jsb_printf(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else float_repr(b, v.u.f);
        return;
    case JV_STR: json_str(b, v.u.s->p, v.u.s->len); return;
    case JV_LIST:
        if (v.u.l->n == 0) { jsb_printf(b, "[]"); return; }
        jsb_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jsb_putc(b, ',');
            if (indent >= 0) json_newline(b, indent, level + 1);
            else if (i) jsb_putc(b, ' ');
            jv_tojson(c, line, b, v.u.l->v[i], indent, sort_keys, depth + 1, level + 1);
        }
        if (indent >= 0) json_newline(b, indent, level);
        jsb_putc(b, ']');
        return;
    case JV_DICT:
        if (v.u.d->is_namespace) jx_fail(c->err, line, "tojson: Object of type Namespace is not JSON serializable");
        json_dict(c, line, b, v.u.d, indent, sort_keys, depth, level);
        return;
    default: jx_fail(c->err, line, "tojson: Object of type %s is not JSON serializable", jv_type_name(v));
    }
}
