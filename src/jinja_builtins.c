/* jinja_builtins.c — the filters, tests, methods and globals of the chat-template interpreter.
 *
 * Filters: abs, capitalize, count, d, default, e, escape, first, float, indent, int, items, join, last,
 *   length, list, lower, map, max, min, reject, rejectattr, replace, reverse, round, safe, select, selectattr,
 *   string, sum, title, tojson, trim, upper (transformers' tojson: json.dumps(ensure_ascii=False) with
 *   indent and sort_keys; trim is Python's str.strip).
 * Tests: boolean, callable, defined, divisibleby, eq, equalto, even, false, float, ge, gt, greaterthan, in,
 *   integer, iterable, le, lessthan, lower, lt, mapping, ne, none, number, odd, sameas, sequence, string,
 *   true, undefined, upper.
 * String methods: startswith, endswith (a string or a tuple of them), strip, lstrip, rstrip ([chars]),
 *   split ([sep[, maxsplit]]), replace (old, new[, count]), upper, lower, title, capitalize, find, count,
 *   join, isdigit, isspace. Dict methods: items, keys, values, get.
 * Globals: namespace(...), raise_exception(msg), range(...), strftime_now(fmt), dict(...).
 * Case mapping (upper, lower, title, capitalize) is ASCII only: other letters are left as they are. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"

typedef struct {
    const jv *v;
    size_t n;
    const char *const *kwn;
    const jv *kwv;
    size_t nkw;
} jargs;

/* argument `pos` (positional) or `name` (keyword); false when absent */
static bool arg(const jargs *a, size_t pos, const char *name, jv *out) {
    if (pos < a->n) {
        *out = a->v[pos];
        return true;
    }
    for (size_t i = 0; name && i < a->nkw; i++)
        if (!strcmp(a->kwn[i], name)) {
            *out = a->kwv[i];
            return true;
        }
    return false;
}

/* refuses more than max_pos positional arguments and keywords not in `kws` (comma-separated) */
static void check_args(jctx *c, const jnode *site, const char *what, const jargs *a, size_t max_pos, const char *kws) {
    if (a->n > max_pos) jx_fail(c->err, site->line, "%s takes at most %zu positional arguments (%zu given)", what, max_pos, a->n);
    for (size_t i = 0; i < a->nkw; i++) {
        const char *k = a->kwn[i], *p = kws;
        size_t kl = strlen(k);
        bool ok = false;
        while (p && *p && !ok) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            ok = l == kl && !strncmp(p, k, l);
            p = e ? e + 1 : NULL;
        }
        if (!ok) jx_fail(c->err, site->line, "%s got an unexpected keyword argument '%s'", what, k);
    }
}

static int64_t need_int(jctx *c, const jnode *site, const char *what, jv v) {
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    jx_fail(c->err, site->line, "%s expects an integer, got '%s'", what, jv_type_name(v));
}

/* a NUL-terminated copy (substrings share their parent's bytes and are not terminated) */
static const char *cstr(jctx *c, const jstr *s) { return js_new(c, s->p, s->len)->p; }

static const jstr *need_str(jctx *c, const jnode *site, const char *what, jv v) {
    if (v.t != JV_STR) jx_fail(c->err, site->line, "%s expects a string, got '%s'", what, jv_type_name(v));
    return v.u.s;
}

/* ---------------------------------------------------------------- string helpers */
/* whether code point cp is in `chars` (NULL: Python whitespace) */
static bool in_set(const jstr *chars, uint32_t cp) {
    if (!chars) return py_isspace(cp);
    uint32_t x;
    for (size_t i = 0; i < chars->len;) {
        i = u8_next(chars->p, chars->len, i, &x);
        if (x == cp) return true;
    }
    return false;
}

static jstr *strip(jctx *c, int line, const jstr *s, const jstr *chars, bool left, bool right) {
    jc_work(c, line, s->len * (chars ? chars->len + 1 : 1));
    size_t a = 0, b = s->len, i = 0;
    uint32_t cp;
    if (left)
        while (a < s->len) {
            size_t j = u8_next(s->p, s->len, a, &cp);
            if (!in_set(chars, cp)) break;
            a = j;
        }
    if (right) {
        size_t last = a; /* end of the last character not in the set */
        for (i = a; i < s->len;) {
            size_t j = u8_next(s->p, s->len, i, &cp);
            if (!in_set(chars, cp)) last = j;
            i = j;
        }
        b = last;
    }
    return js_sub(c, s, a, b);
}

static jstr *join(jctx *c, int line, const jlist *l, const jstr *sep) {
    size_t len = 0, nseg = 0;
    jstr **parts = jc_alloc(c, (l->n ? l->n : 1) * sizeof(jstr *));
    for (size_t i = 0; i < l->n; i++) {
        parts[i] = jv_as_str(c, line, l->v[i]);
        len += parts[i]->len + (i ? sep->len : 0);
        nseg += parts[i]->nseg + (i ? sep->nseg : 0);
        if (len > c->lim.max_memory) jx_fail(c->err, line, "memory limit of %zu bytes exceeded", c->lim.max_memory);
    }
    jc_work(c, line, len);
    jstr *r = js_lit(c, jc_alloc(c, len + 1), len);
    char *q = (char *)r->p;
    r->seg = nseg ? jc_alloc(c, nseg * sizeof(jseg)) : NULL;
    size_t at = 0;
    for (size_t i = 0; i < l->n; i++)
        for (int k = i ? 0 : 1; k < 2; k++) {
            const jstr *p = k == 0 ? sep : parts[i];
            memcpy(q + at, p->p, p->len);
            for (size_t g = 0; g < p->nseg; g++) {
                jseg s = p->seg[g];
                s.dst += at;
                jseg *prev = r->nseg ? &r->seg[r->nseg - 1] : NULL;
                if (prev && prev->msg == s.msg && prev->dst + prev->len == s.dst && prev->src + prev->len == s.src)
                    prev->len += s.len;
                else r->seg[r->nseg++] = s;
            }
            at += p->len;
        }
    q[len] = 0;
    return r;
}

static jlist *split(jctx *c, int line, const jstr *s, const jstr *sep, int64_t maxsplit) {
    if (sep && sep->len == 0) jx_fail(c->err, line, "split: empty separator");
    jc_work(c, line, s->len);
    size_t cap = 8, n = 0;
    jv *v = jc_alloc(c, cap * sizeof(jv));
    size_t i = 0;
    uint32_t cp;
    for (;;) {
        if (n + 1 >= cap) {
            jv *nv = jc_alloc(c, cap * 2 * sizeof(jv));
            memcpy(nv, v, n * sizeof(jv));
            v = nv;
            cap *= 2;
        }
        if (!sep) { /* runs of whitespace separate; leading and trailing whitespace is dropped */
            while (i < s->len) {
                size_t j = u8_next(s->p, s->len, i, &cp);
                if (!py_isspace(cp)) break;
                i = j;
            }
            if (i >= s->len) break;
            if (maxsplit >= 0 && (int64_t)n >= maxsplit) {
                v[n++] = jv_strv(js_sub(c, s, i, s->len));
                break;
            }
            size_t j = i;
            while (j < s->len) {
                size_t k = u8_next(s->p, s->len, j, &cp);
                if (py_isspace(cp)) break;
                j = k;
            }
            v[n++] = jv_strv(js_sub(c, s, i, j));
            i = j;
            continue;
        }
        const char *hit = maxsplit >= 0 && (int64_t)n >= maxsplit ? NULL : memmem(s->p + i, s->len - i, sep->p, sep->len);
        size_t end = hit ? (size_t)(hit - s->p) : s->len;
        v[n++] = jv_strv(js_sub(c, s, i, end));
        if (!hit) break;
        i = end + sep->len;
    }
    jlist *l = jc_alloc(c, sizeof *l);
    l->v = v;
    l->n = n;
    return l;
}

static jstr *replace(jctx *c, int line, const jstr *s, const jstr *old, const jstr *new_, int64_t count) {
    jsb b = {.c = c};
    jc_work(c, line, s->len);
    size_t i = 0;
    int64_t done = 0;
    if (old->len == 0) { /* Python inserts `new` before every character and at the end */
        uint32_t cp;
        while (count < 0 || done < count) {
            jsb_put(&b, new_->p, new_->len);
            done++;
            if (i >= s->len) break;
            size_t j = u8_next(s->p, s->len, i, &cp);
            jsb_put(&b, s->p + i, j - i);
            i = j;
        }
        jsb_put(&b, s->p + i, s->len - i);
        return jsb_str(&b);
    }
    while (count < 0 || done < count) {
        const char *hit = memmem(s->p + i, s->len - i, old->p, old->len);
        if (!hit) break;
        jsb_put(&b, s->p + i, (size_t)(hit - (s->p + i)));
        jsb_put(&b, new_->p, new_->len);
        i = (size_t)(hit - s->p) + old->len;
        done++;
    }
    jsb_put(&b, s->p + i, s->len - i);
    return jsb_str(&b);
}

/* mode: 'u' upper, 'l' lower, 't' title, 'c' capitalize (ASCII letters only) */
static jstr *recase(jctx *c, int line, const jstr *s, char mode) {
    jc_work(c, line, s->len);
    char *q = jc_alloc(c, s->len + 1);
    bool prev_letter = false;
    for (size_t i = 0; i < s->len; i++) {
        char ch = s->p[i];
        bool up = mode == 'u' || (mode == 't' && !prev_letter) || (mode == 'c' && i == 0);
        if (up && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        else if (!up && mode != 'u' && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        q[i] = ch;
        prev_letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (unsigned char)ch >= 0x80;
    }
    q[s->len] = 0;
    return js_lit(c, q, s->len);
}

static bool has_affix(const jstr *s, const jstr *x, bool prefix) {
    if (x->len > s->len) return false;
    return memcmp(prefix ? s->p : s->p + s->len - x->len, x->p, x->len) == 0;
}

/* ---------------------------------------------------------------- filters */
typedef jv (*filter_fn)(jctx *c, const jnode *site, jv x, const jargs *a);

static jv f_trim(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv chars;
    bool has = arg(a, 0, "chars", &chars) && chars.t != JV_NONE;
    return jv_strv(strip(c, site->line, jv_as_str(c, site->line, x), has ? need_str(c, site, "trim", chars) : NULL, true, true));
}

static jv f_length(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)a;
    switch (x.t) {
    case JV_UNDEF: return jv_int(0);
    case JV_STR: jc_work(c, site->line, x.u.s->len); return jv_int((int64_t)u8_count(x.u.s->p, x.u.s->len));
    case JV_LIST: return jv_int((int64_t)x.u.l->n);
    case JV_DICT: return jv_int((int64_t)x.u.d->n);
    default: jx_fail(c->err, site->line, "object of type '%s' has no len()", jv_type_name(x));
    }
}

static jv f_tojson(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv ind, sk;
    int indent = -1;
    if (arg(a, 0, "indent", &ind) && ind.t != JV_NONE) {
        int64_t k = need_int(c, site, "tojson indent", ind);
        indent = k < 0 ? 0 : k > 64 ? 64 : (int)k;
    }
    bool sort_keys = arg(a, 99, "sort_keys", &sk) && jv_truthy(sk);
    jsb b = {.c = c};
    jv_tojson(c, site->line, &b, x, indent, sort_keys, 0, 0);
    return jv_strv(jsb_str(&b));
}

static jv f_string(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return jv_strv(jv_as_str(c, site->line, x)); }
static jv f_safe(jctx *c, const jnode *site, jv x, const jargs *a) { (void)c; (void)site; (void)a; return x; }

static jv f_case(jctx *c, const jnode *site, jv x, char mode) { return jv_strv(recase(c, site->line, jv_as_str(c, site->line, x), mode)); }
static jv f_upper(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return f_case(c, site, x, 'u'); }
static jv f_lower(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return f_case(c, site, x, 'l'); }
/* Jinja2's title filter (not str.title): words begin after runs of '-', whitespace, '(', '{', '[', '<'; each
 * word's first character is upper-cased and the rest lower-cased */
static jv f_title(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)a;
    const jstr *s = jv_as_str(c, site->line, x);
    jstr *low = recase(c, site->line, s, 'l');
    char *q = (char *)low->p;
    bool at_start = true;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        size_t j = u8_next(s->p, s->len, i, &cp);
        bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_isspace(cp);
        if (!sep && at_start && s->p[i] >= 'a' && s->p[i] <= 'z') q[i] = (char)(s->p[i] - 32);
        else if (!sep && at_start) q[i] = s->p[i];
        at_start = sep;
        i = j;
    }
    return jv_strv(low);
}
static jv f_capitalize(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return f_case(c, site, x, 'c'); }

static jv f_replace(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv old, nw, cnt;
    if (!arg(a, 0, "old", &old) || !arg(a, 1, "new", &nw)) jx_fail(c->err, site->line, "replace needs old and new");
    int64_t count = arg(a, 2, "count", &cnt) && cnt.t != JV_NONE ? need_int(c, site, "replace count", cnt) : -1;
    return jv_strv(replace(c, site->line, jv_as_str(c, site->line, x), jv_as_str(c, site->line, old),
                           jv_as_str(c, site->line, nw), count));
}

static jv f_first_last(jctx *c, const jnode *site, jv x, bool last) {
    jlist *l = jx_iter(c, site->line, x);
    return l->n ? l->v[last ? l->n - 1 : 0] : jv_undef(NULL);
}
static jv f_first(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return f_first_last(c, site, x, false); }
static jv f_last(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return f_first_last(c, site, x, true); }

static jv f_default(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)c;
    (void)site;
    jv d = jv_str(c, ""), boolean;
    arg(a, 0, "default_value", &d);
    bool b = arg(a, 1, "boolean", &boolean) && jv_truthy(boolean);
    if (x.t == JV_UNDEF || (b && !jv_truthy(x))) return d;
    return x;
}

static jv attr_of(jctx *c, const jnode *site, jv item, jv attr) {
    const jstr *name = need_str(c, site, "attribute", attr);
    jv v = item;
    size_t i = 0; /* dotted paths: "a.b" */
    while (i <= name->len) {
        const char *dot = memchr(name->p + i, '.', name->len - i);
        size_t e = dot ? (size_t)(dot - name->p) : name->len;
        jv key = jv_strv(js_new(c, name->p + i, e - i));
        v = jx_getitem(c, site->line, v, key);
        i = e + 1;
        if (!dot) break;
    }
    return v;
}

static jv f_join(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv sep = jv_str(c, ""), attr;
    arg(a, 0, "d", &sep);
    jlist *l = jx_iter(c, site->line, x);
    if (arg(a, 1, "attribute", &attr)) {
        jlist *m = jl_new(c, l->n);
        for (size_t i = 0; i < l->n; i++) m->v[i] = attr_of(c, site, l->v[i], attr);
        l = m;
    }
    return jv_strv(join(c, site->line, l, jv_as_str(c, site->line, sep)));
}

static jv f_items(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)a;
    if (x.t == JV_UNDEF) return jv_listv(jl_new(c, 0));
    if (x.t != JV_DICT) jx_fail(c->err, site->line, "items expects a mapping, got '%s'", jv_type_name(x));
    jlist *l = jl_new(c, x.u.d->n);
    for (size_t i = 0; i < x.u.d->n; i++) {
        jlist *p = jl_new(c, 2);
        p->v[0] = jv_strv(x.u.d->k[i]);
        p->v[1] = x.u.d->v[i];
        l->v[i] = jv_listv(p);
        l->v[i].fn = 1; /* (key, value) tuples */
    }
    return jv_listv(l);
}

static jv f_list(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return jv_listv(jx_iter(c, site->line, x)); }

static jv f_reverse(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)a;
    if (x.t == JV_STR) {
        jv neg = jv_int(-1), none = jv_none();
        return jx_slice(c, site->line, x, none, none, neg);
    }
    jlist *l = jx_iter(c, site->line, x), *r = jl_new(c, l->n);
    for (size_t i = 0; i < l->n; i++) r->v[i] = l->v[l->n - 1 - i];
    return jv_listv(r);
}

static jv f_int(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)site;
    jv d = jv_int(0);
    arg(a, 0, "default", &d);
    if (x.t == JV_INT) return x;
    if (x.t == JV_BOOL) return jv_int(x.u.b);
    if (x.t == JV_FLOAT) return isfinite(x.u.f) && fabs(x.u.f) < 9.2e18 ? jv_int((int64_t)x.u.f) : d;
    if (x.t == JV_STR) {
        char *e;
        const char *s = cstr(c, x.u.s);
        long long v = strtoll(s, &e, 10);
        if (e != s && *e == 0) return jv_int(v);
        double f = strtod(s, &e);
        if (e != s && *e == 0 && isfinite(f) && fabs(f) < 9.2e18) return jv_int((int64_t)f);
    }
    return d;
}

static jv f_float(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)site;
    jv d = jv_float(0.0);
    arg(a, 0, "default", &d);
    if (x.t == JV_FLOAT) return x;
    if (x.t == JV_INT || x.t == JV_BOOL) return jv_float(x.t == JV_INT ? (double)x.u.i : x.u.b);
    if (x.t == JV_STR) {
        char *e;
        const char *s = cstr(c, x.u.s);
        double f = strtod(s, &e);
        if (e != s && *e == 0) return jv_float(f);
    }
    return d;
}

static jv f_abs(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)a;
    if (x.t == JV_FLOAT) return jv_float(fabs(x.u.f));
    int64_t v = need_int(c, site, "abs", x);
    if (v == INT64_MIN) jx_fail(c->err, site->line, "integer overflow");
    return jv_int(v < 0 ? -v : v);
}

/* Python's round(x, n): correctly rounded, ties to even (printf's %.*f rounds the exact binary value) */
static double py_round(double v, int64_t n) {
    if (!isfinite(v)) return v;
    if (n < 0) {
        double s = pow(10.0, (double)-n);
        return isfinite(s) ? rint(v / s) * s : 0.0 * v;
    }
    if (n > 300) return v;
    char buf[400];
    snprintf(buf, sizeof buf, "%.*f", (int)n, v);
    return strtod(buf, NULL);
}

/* Jinja2's round: 'common' is Python's round (an int stays an int), 'floor' and 'ceil' scale */
static jv f_round(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv p = jv_int(0), m;
    arg(a, 0, "precision", &p);
    const char *method = arg(a, 1, "method", &m) ? cstr(c, need_str(c, site, "round method", m)) : "common";
    int64_t n = need_int(c, site, "round precision", p);
    bool common = !strcmp(method, "common");
    if (!common && strcmp(method, "floor") && strcmp(method, "ceil"))
        jx_fail(c->err, site->line, "round: method must be common, floor or ceil");
    if (x.t != JV_FLOAT) {
        int64_t v = need_int(c, site, "round", x);
        if (common && n >= 0) return jv_int(v);
        if (common) return jv_int((int64_t)py_round((double)v, n));
        x = jv_float((double)v);
    }
    if (common) return jv_float(py_round(x.u.f, n));
    double s = pow(10.0, (double)n);
    return jv_float(method[0] == 'f' ? floor(x.u.f * s) / s : ceil(x.u.f * s) / s);
}

static jv f_indent(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv w = jv_int(4), first, blank;
    arg(a, 0, "width", &w);
    bool do_first = arg(a, 1, "first", &first) && jv_truthy(first), do_blank = arg(a, 2, "blank", &blank) && jv_truthy(blank);
    jstr *pad = w.t == JV_STR ? w.u.s : NULL;
    if (!pad) {
        int64_t k = need_int(c, site, "indent width", w);
        if (k < 0) k = 0;
        if (k > 1024) jx_fail(c->err, site->line, "indent width %lld too large", (long long)k);
        char *q = jc_alloc(c, (size_t)k + 1);
        memset(q, ' ', (size_t)k);
        pad = js_lit(c, q, (size_t)k);
    }
    const jstr *s = jv_as_str(c, site->line, x);
    jc_work(c, site->line, s->len);
    jsb b = {.c = c};
    size_t i = 0;
    for (bool firstline = true; i <= s->len; firstline = false) {
        const char *nl = memchr(s->p + i, '\n', s->len - i);
        size_t e = nl ? (size_t)(nl - s->p) : s->len;
        if ((firstline ? do_first : true) && (do_blank || e > i)) jsb_put(&b, pad->p, pad->len);
        jsb_put(&b, s->p + i, e - i + (nl ? 1 : 0));
        i = e + 1;
        if (!nl) break;
    }
    return jv_strv(jsb_str(&b));
}

static jv f_escape(jctx *c, const jnode *site, jv x, const jargs *a) {
    (void)a;
    const jstr *s = jv_as_str(c, site->line, x);
    jsb b = {.c = c};
    for (size_t i = 0; i < s->len; i++) {
        switch (s->p[i]) {
        case '&': jsb_put(&b, "&amp;", 5); break;
        case '<': jsb_put(&b, "&lt;", 4); break;
        case '>': jsb_put(&b, "&gt;", 4); break;
        case '"': jsb_put(&b, "&#34;", 5); break;
        case '\'': jsb_put(&b, "&#39;", 5); break;
        default: jsb_putc(&b, s->p[i]);
        }
    }
    return jv_strv(jsb_str(&b));
}

static jv f_sum(jctx *c, const jnode *site, jv x, const jargs *a) {
    jv acc = jv_int(0), attr;
    arg(a, 1, "start", &acc);
    bool has_attr = arg(a, 0, "attribute", &attr);
    jlist *l = jx_iter(c, site->line, x);
    for (size_t i = 0; i < l->n; i++) acc = jx_binop(c, site->line, '+', acc, has_attr ? attr_of(c, site, l->v[i], attr) : l->v[i]);
    return acc;
}

static jv minmax(jctx *c, const jnode *site, jv x, bool want_max) {
    jlist *l = jx_iter(c, site->line, x);
    if (l->n == 0) return jv_undef(NULL);
    jv best = l->v[0];
    for (size_t i = 1; i < l->n; i++) {
        bool lt = jx_compare_lt(c, site->line, l->v[i], best);
        if (want_max ? jx_compare_lt(c, site->line, best, l->v[i]) : lt) best = l->v[i];
    }
    return best;
}
static jv f_min(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return minmax(c, site, x, false); }
static jv f_max(jctx *c, const jnode *site, jv x, const jargs *a) { (void)a; return minmax(c, site, x, true); }

static bool run_test(jctx *c, const jnode *site, int idx, jv x, const jv *args, size_t n);
static jv run_filter(jctx *c, const jnode *site, int idx, jv x, const jargs *a);

/* select/reject(test, args...), selectattr/rejectattr(attr, test, args...) */
static jv select_impl(jctx *c, const jnode *site, jv x, const jargs *a, bool by_attr, bool keep) {
    jlist *l = jx_iter(c, site->line, x), *r = jl_new(c, l->n);
    r->n = 0;
    size_t k = by_attr ? 1 : 0;
    if (by_attr && a->n < 1) jx_fail(c->err, site->line, "selectattr/rejectattr need an attribute name");
    int idx = -1;
    if (a->n > k) {
        const jstr *tn = need_str(c, site, "select test", a->v[k]);
        idx = jb_test_index(cstr(c, tn));
        if (idx < 0) jx_fail(c->err, site->line, "unsupported test '%s'", cstr(c, tn));
    }
    for (size_t i = 0; i < l->n; i++) {
        jv v = by_attr ? attr_of(c, site, l->v[i], a->v[0]) : l->v[i];
        bool t = idx < 0 ? jv_truthy(v) : run_test(c, site, idx, v, a->v + k + 1, a->n - k - 1);
        if (t == keep) r->v[r->n++] = l->v[i];
    }
    return jv_listv(r);
}
static jv f_select(jctx *c, const jnode *s, jv x, const jargs *a) { return select_impl(c, s, x, a, false, true); }
static jv f_reject(jctx *c, const jnode *s, jv x, const jargs *a) { return select_impl(c, s, x, a, false, false); }
static jv f_selectattr(jctx *c, const jnode *s, jv x, const jargs *a) { return select_impl(c, s, x, a, true, true); }
static jv f_rejectattr(jctx *c, const jnode *s, jv x, const jargs *a) { return select_impl(c, s, x, a, true, false); }

static jv f_map(jctx *c, const jnode *site, jv x, const jargs *a) {
    jlist *l = jx_iter(c, site->line, x), *r = jl_new(c, l->n);
    jv attr, dflt;
    if (arg(a, 99, "attribute", &attr)) {
        bool has_d = arg(a, 99, "default", &dflt);
        for (size_t i = 0; i < l->n; i++) {
            r->v[i] = attr_of(c, site, l->v[i], attr);
            if (has_d && r->v[i].t == JV_UNDEF) r->v[i] = dflt;
        }
        return jv_listv(r);
    }
    if (a->n < 1) jx_fail(c->err, site->line, "map needs a filter name or attribute=");
    const jstr *fn = need_str(c, site, "map", a->v[0]);
    int idx = jb_filter_index(cstr(c, fn));
    if (idx < 0) jx_fail(c->err, site->line, "unsupported filter '%s'", cstr(c, fn));
    jargs rest = {.v = a->v + 1, .n = a->n - 1, .kwn = a->kwn, .kwv = a->kwv, .nkw = a->nkw};
    for (size_t i = 0; i < l->n; i++) r->v[i] = run_filter(c, site, idx, l->v[i], &rest);
    return jv_listv(r);
}

static const struct {
    const char *name;
    filter_fn fn;
    uint8_t max_pos;
    const char *kws;
} filters[] = {
    {"abs", f_abs, 0, ""}, {"capitalize", f_capitalize, 0, ""}, {"count", f_length, 0, ""},
    {"d", f_default, 2, "default_value,boolean"}, {"default", f_default, 2, "default_value,boolean"},
    {"e", f_escape, 0, ""}, {"escape", f_escape, 0, ""}, {"first", f_first, 0, ""},
    {"float", f_float, 1, "default"}, {"indent", f_indent, 3, "width,first,blank"}, {"int", f_int, 2, "default,base"},
    {"items", f_items, 0, ""}, {"join", f_join, 2, "d,attribute"}, {"last", f_last, 0, ""},
    {"length", f_length, 0, ""}, {"list", f_list, 0, ""}, {"lower", f_lower, 0, ""},
    {"map", f_map, 8, "attribute,default"}, {"max", f_max, 0, ""}, {"min", f_min, 0, ""},
    {"reject", f_reject, 8, ""}, {"rejectattr", f_rejectattr, 8, ""}, {"replace", f_replace, 3, "old,new,count"},
    {"reverse", f_reverse, 0, ""}, {"round", f_round, 2, "precision,method"}, {"safe", f_safe, 0, ""},
    {"select", f_select, 8, ""}, {"selectattr", f_selectattr, 8, ""}, {"string", f_string, 0, ""},
    {"sum", f_sum, 2, "attribute,start"}, {"title", f_title, 0, ""}, {"tojson", f_tojson, 1, "indent,sort_keys,ensure_ascii"},
    {"trim", f_trim, 1, "chars"}, {"upper", f_upper, 0, ""},
};

int jb_filter_index(const char *name) {
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++)
        if (!strcmp(filters[i].name, name)) return (int)i;
    return -1;
}

static jv run_filter(jctx *c, const jnode *site, int idx, jv x, const jargs *a) {
    char what[64];
    snprintf(what, sizeof what, "filter '%s'", filters[idx].name);
    check_args(c, site, what, a, filters[idx].max_pos, filters[idx].kws);
    return filters[idx].fn(c, site, x, a);
}

jv jb_filter(jctx *c, const jnode *site, jv x, const jv *args, size_t nargs, const char *const *kwn, const jv *kwv,
             size_t nkw) {
    jargs a = {.v = args, .n = nargs, .kwn = kwn, .kwv = kwv, .nkw = nkw};
    if (site->fn < 0) jx_fail(c->err, site->line, "unsupported filter '%s'", site->name);
    return run_filter(c, site, site->fn, x, &a);
}

/* ---------------------------------------------------------------- tests */
enum {
    T_BOOLEAN, T_CALLABLE, T_DEFINED, T_DIVISIBLEBY, T_EQ, T_EQUALTO, T_EVEN, T_FALSE, T_FLOAT, T_GE, T_GT,
    T_GREATERTHAN, T_IN, T_INTEGER, T_ITERABLE, T_LE, T_LESSTHAN, T_LOWER, T_LT, T_MAPPING, T_NE, T_NONE,
    T_NUMBER, T_ODD, T_SAMEAS, T_SEQUENCE, T_STRING, T_TRUE, T_UNDEFINED, T_UPPER, T_COUNT
};
static const struct {
    const char *name;
    uint8_t arity;
} tests[T_COUNT] = {
    {"boolean", 0}, {"callable", 0}, {"defined", 0}, {"divisibleby", 1}, {"eq", 1}, {"equalto", 1}, {"even", 0},
    {"false", 0}, {"float", 0}, {"ge", 1}, {"gt", 1}, {"greaterthan", 1}, {"in", 1}, {"integer", 0}, {"iterable", 0},
    {"le", 1}, {"lessthan", 1}, {"lower", 0}, {"lt", 1}, {"mapping", 0}, {"ne", 1}, {"none", 0}, {"number", 0},
    {"odd", 0}, {"sameas", 1}, {"sequence", 0}, {"string", 0}, {"true", 0}, {"undefined", 0}, {"upper", 0},
};

int jb_test_index(const char *name) {
    for (int i = 0; i < T_COUNT; i++)
        if (!strcmp(tests[i].name, name)) return i;
    return -1;
}

static bool all_case(const jstr *s, bool upper) {
    bool any = false;
    for (size_t i = 0; i < s->len; i++) {
        char ch = s->p[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            any = true;
            if ((ch >= 'a' && ch <= 'z') == upper) return false;
        }
    }
    return any;
}

/* identity: the same container, or equal immutable values */
static bool same_as(jv x, jv y) {
    if (x.t != y.t) return false;
    if (x.t == JV_LIST) return x.u.l == y.u.l;
    if (x.t == JV_DICT) return x.u.d == y.u.d;
    return jv_equal(x, y);
}

static bool run_test(jctx *c, const jnode *site, int idx, jv x, const jv *args, size_t n) {
    if (n != tests[idx].arity)
        jx_fail(c->err, site->line, "test '%s' takes %d argument%s (%zu given)", tests[idx].name, tests[idx].arity,
                tests[idx].arity == 1 ? "" : "s", n);
    jv y = n ? args[0] : jv_none();
    bool plain_dict = x.t == JV_DICT && !x.u.d->is_namespace;
    switch (idx) {
    case T_BOOLEAN: return x.t == JV_BOOL;
    case T_CALLABLE: return x.t == JV_FUNC;
    case T_DEFINED: return x.t != JV_UNDEF;
    case T_DIVISIBLEBY: return jv_equal(jx_binop(c, site->line, '%', x, y), jv_int(0)); /* value % num == 0 */
    case T_EQ: case T_EQUALTO: return jv_equal(x, y);
    case T_EVEN: return jv_equal(jx_binop(c, site->line, '%', x, jv_int(2)), jv_int(0)); /* value % 2 == 0 */
    case T_FALSE: return x.t == JV_BOOL && !x.u.b;
    case T_FLOAT: return x.t == JV_FLOAT;
    case T_GE: return !jx_compare_lt(c, site->line, x, y);
    case T_GT: case T_GREATERTHAN: return jx_compare_lt(c, site->line, y, x);
    case T_IN: return jx_contains(c, site->line, y, x);
    case T_INTEGER: return x.t == JV_INT;
    case T_ITERABLE: return x.t == JV_STR || x.t == JV_LIST || plain_dict || x.t == JV_UNDEF;
    case T_LE: return !jx_compare_lt(c, site->line, y, x);
    case T_LT: case T_LESSTHAN: return jx_compare_lt(c, site->line, x, y);
    case T_LOWER: return all_case(jv_as_str(c, site->line, x), false); /* str(value).islower() */
    case T_MAPPING: return plain_dict;
    case T_NE: return !jv_equal(x, y);
    case T_NONE: return x.t == JV_NONE;
    case T_NUMBER: return x.t == JV_INT || x.t == JV_FLOAT || x.t == JV_BOOL;
    case T_ODD: return jv_equal(jx_binop(c, site->line, '%', x, jv_int(2)), jv_int(1));
    case T_SAMEAS: return same_as(x, y);
    case T_SEQUENCE: return x.t == JV_STR || x.t == JV_LIST || plain_dict || x.t == JV_UNDEF; /* has len and [] */
    case T_STRING: return x.t == JV_STR;
    case T_TRUE: return x.t == JV_BOOL && x.u.b;
    case T_UNDEFINED: return x.t == JV_UNDEF;
    case T_UPPER: return all_case(jv_as_str(c, site->line, x), true);
    default: return false;
    }
}

bool jb_test(jctx *c, const jnode *site, jv x, const jv *args, size_t nargs) {
    if (site->fn < 0) jx_fail(c->err, site->line, "unsupported test '%s'", site->name);
    if (site->nkw) jx_fail(c->err, site->line, "test '%s' takes no keyword arguments", site->name);
    return run_test(c, site, site->fn, x, args, nargs);
}

/* ---------------------------------------------------------------- methods */
static jv m_affix(jctx *c, const jnode *site, const jstr *s, const jargs *a, bool prefix) {
    const char *what = prefix ? "startswith" : "endswith";
    check_args(c, site, what, a, 1, "");
    if (a->n != 1) jx_fail(c->err, site->line, "%s takes exactly one argument", what);
    if (a->v[0].t == JV_LIST) {
        for (size_t i = 0; i < a->v[0].u.l->n; i++)
            if (has_affix(s, need_str(c, site, what, a->v[0].u.l->v[i]), prefix)) return jv_bool(true);
        return jv_bool(false);
    }
    return jv_bool(has_affix(s, need_str(c, site, what, a->v[0]), prefix));
}

static jv m_count_find(jctx *c, const jnode *site, const jstr *s, const jargs *a, bool find) {
    check_args(c, site, find ? "find" : "count", a, 1, "");
    if (a->n != 1) jx_fail(c->err, site->line, "%s takes exactly one argument", find ? "find" : "count");
    const jstr *sub = need_str(c, site, find ? "find" : "count", a->v[0]);
    jc_work(c, site->line, s->len);
    if (find) {
        const char *hit = sub->len ? memmem(s->p, s->len, sub->p, sub->len) : s->p;
        return jv_int(hit ? (int64_t)u8_count(s->p, (size_t)(hit - s->p)) : -1);
    }
    if (sub->len == 0) return jv_int((int64_t)u8_count(s->p, s->len) + 1);
    int64_t n = 0;
    for (const char *p = s->p, *e = s->p + s->len; (p = memmem(p, (size_t)(e - p), sub->p, sub->len)); p += sub->len) n++;
    return jv_int(n);
}

static bool str_method(jctx *c, const jnode *site, const jstr *s, const char *name, const jargs *a, jv *out) {
    jv v;
    int line = site->line;
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) *out = m_affix(c, site, s, a, name[0] == 's');
    else if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        check_args(c, site, name, a, 1, "");
        const jstr *chars = arg(a, 0, NULL, &v) && v.t != JV_NONE ? need_str(c, site, name, v) : NULL;
        *out = jv_strv(strip(c, line, s, chars, name[0] != 'r', name[0] != 'l'));
    } else if (!strcmp(name, "split")) {
        check_args(c, site, name, a, 2, "sep,maxsplit");
        const jstr *sep = arg(a, 0, "sep", &v) && v.t != JV_NONE ? need_str(c, site, name, v) : NULL;
        int64_t maxsplit = arg(a, 1, "maxsplit", &v) ? need_int(c, site, "split maxsplit", v) : -1;
        *out = jv_listv(split(c, line, s, sep, maxsplit));
    } else if (!strcmp(name, "replace")) {
        check_args(c, site, name, a, 3, "");
        if (a->n < 2) jx_fail(c->err, line, "replace takes at least 2 arguments");
        int64_t count = a->n > 2 ? need_int(c, site, "replace count", a->v[2]) : -1;
        *out = jv_strv(replace(c, line, s, need_str(c, site, name, a->v[0]), need_str(c, site, name, a->v[1]), count));
    } else if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize")) {
        check_args(c, site, name, a, 0, "");
        *out = jv_strv(recase(c, line, s, name[0] == 'u' ? 'u' : name[0] == 'l' ? 'l' : name[0] == 't' ? 't' : 'c'));
    } else if (!strcmp(name, "find") || !strcmp(name, "count")) *out = m_count_find(c, site, s, a, name[0] == 'f');
    else if (!strcmp(name, "join")) {
        check_args(c, site, name, a, 1, "");
        if (a->n != 1) jx_fail(c->err, line, "join takes exactly one argument");
        jlist *l = jx_iter(c, line, a->v[0]);
        for (size_t i = 0; i < l->n; i++) need_str(c, site, "join", l->v[i]);
        *out = jv_strv(join(c, line, l, s));
    } else if (!strcmp(name, "isdigit") || !strcmp(name, "isspace")) {
        check_args(c, site, name, a, 0, "");
        bool ok = s->len > 0;
        uint32_t cp;
        for (size_t i = 0; i < s->len && ok;) {
            i = u8_next(s->p, s->len, i, &cp);
            ok = name[2] == 'd' ? (cp >= '0' && cp <= '9') : py_isspace(cp);
        }
        *out = jv_bool(ok);
    } else return false;
    return true;
}

static bool dict_method(jctx *c, const jnode *site, jv d, const char *name, const jargs *a, jv *out) {
    if (!strcmp(name, "items")) {
        check_args(c, site, name, a, 0, "");
        *out = f_items(c, site, d, a);
    } else if (!strcmp(name, "keys") || !strcmp(name, "values")) {
        check_args(c, site, name, a, 0, "");
        jlist *l = jl_new(c, d.u.d->n);
        for (size_t i = 0; i < d.u.d->n; i++) l->v[i] = name[0] == 'k' ? jv_strv(d.u.d->k[i]) : d.u.d->v[i];
        *out = jv_listv(l);
    } else if (!strcmp(name, "get")) {
        check_args(c, site, name, a, 2, "");
        if (a->n < 1) jx_fail(c->err, site->line, "get takes at least one argument");
        jv k = a->v[0];
        if (k.t != JV_STR || !jd_get(d.u.d, k.u.s->p, k.u.s->len, out)) *out = a->n > 1 ? a->v[1] : jv_none();
    } else return false;
    return true;
}

bool jb_method(jctx *c, const jnode *site, jv obj, const char *name, const jv *args, size_t nargs,
               const char *const *kwn, const jv *kwv, size_t nkw, jv *out) {
    jargs a = {.v = args, .n = nargs, .kwn = kwn, .kwv = kwv, .nkw = nkw};
    if (obj.t == JV_STR) {
        if (str_method(c, site, obj.u.s, name, &a, out)) return true;
        jx_fail(c->err, site->line, "unsupported string method '%s'", name);
    }
    if (obj.t == JV_DICT && !obj.u.d->is_namespace) {
        jv tmp;
        if (jd_get(obj.u.d, name, strlen(name), &tmp)) return false; /* a key of that name: called as a value */
        if (dict_method(c, site, obj, name, &a, out)) return true;
        jx_fail(c->err, site->line, "unsupported dict method '%s'", name);
    }
    if (obj.t == JV_UNDEF) jx_getattr(c, site->line, obj, name); /* fails naming the undefined value */
    if (obj.t == JV_LIST) jx_fail(c->err, site->line, "unsupported list method '%s'", name);
    return false;
}

/* ---------------------------------------------------------------- globals */
/* one strftime directive (the allowed ones; literal formats only) */
static size_t tm_field(char *buf, size_t n, char d, const struct tm *tm) {
    switch (d) {
    case 'a': return strftime(buf, n, "%a", tm);
    case 'A': return strftime(buf, n, "%A", tm);
    case 'b': return strftime(buf, n, "%b", tm);
    case 'B': return strftime(buf, n, "%B", tm);
    case 'd': return strftime(buf, n, "%d", tm);
    case 'e': return strftime(buf, n, "%e", tm);
    case 'F': return strftime(buf, n, "%F", tm);
    case 'H': return strftime(buf, n, "%H", tm);
    case 'I': return strftime(buf, n, "%I", tm);
    case 'j': return strftime(buf, n, "%j", tm);
    case 'm': return strftime(buf, n, "%m", tm);
    case 'M': return strftime(buf, n, "%M", tm);
    case 'p': return strftime(buf, n, "%p", tm);
    case 'S': return strftime(buf, n, "%S", tm);
    case 'T': return strftime(buf, n, "%T", tm);
    case 'y': return (size_t)snprintf(buf, n, "%02d", (tm->tm_year + 1900) % 100);
    case 'Y': return strftime(buf, n, "%Y", tm);
    case 'Z': return strftime(buf, n, "%Z", tm);
    case '%': buf[0] = '%'; return 1;
    default: return (size_t)-1;
    }
}

/* strftime_now(fmt): `now` (iq_chat_vars) in UTC, C locale names */
static jv g_strftime(jctx *c, const jnode *site, const jargs *a) {
    if (a->n != 1) jx_fail(c->err, site->line, "strftime_now takes one argument");
    const jstr *fmt = need_str(c, site, "strftime_now", a->v[0]);
    time_t t = (time_t)c->now;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) jx_fail(c->err, site->line, "strftime_now: time %lld out of range", (long long)c->now);
    jsb b = {.c = c};
    jc_work(c, site->line, fmt->len * 16);
    for (size_t i = 0; i < fmt->len; i++) {
        if (fmt->p[i] != '%') {
            jsb_putc(&b, fmt->p[i]);
            continue;
        }
        char buf[64];
        size_t n = i + 1 < fmt->len ? tm_field(buf, sizeof buf, fmt->p[++i], &tm) : (size_t)-1;
        if (n == (size_t)-1) jx_fail(c->err, site->line, "strftime_now: unsupported directive in '%s'", cstr(c, fmt));
        jsb_put(&b, buf, n);
    }
    return jv_strv(jsb_str(&b));
}

static jv g_range(jctx *c, const jnode *site, const jargs *a) {
    if (a->n < 1 || a->n > 3 || a->nkw) jx_fail(c->err, site->line, "range takes 1 to 3 positional arguments");
    int64_t start = 0, stop, step = 1;
    if (a->n == 1) stop = need_int(c, site, "range", a->v[0]);
    else {
        start = need_int(c, site, "range", a->v[0]);
        stop = need_int(c, site, "range", a->v[1]);
        if (a->n == 3) step = need_int(c, site, "range", a->v[2]);
    }
    if (step == 0) jx_fail(c->err, site->line, "range() arg 3 must not be zero");
    long double cnt = step > 0 ? (stop > start ? ((long double)stop - start + step - 1) / step : 0)
                               : (start > stop ? ((long double)start - stop - step - 1) / -step : 0);
    if (cnt > (long double)c->lim.max_iterations)
        jx_fail(c->err, site->line, "range of %.0Lf items exceeds the loop iteration limit", cnt);
    jlist *l = jl_new(c, (size_t)cnt);
    for (size_t i = 0; i < l->n; i++) l->v[i] = jv_int(start + (int64_t)i * step);
    return jv_listv(l);
}

/* namespace(...) and dict(...): from a dict positional argument and keyword arguments */
static jv g_dict(jctx *c, const jnode *site, const jargs *a, bool ns) {
    if (a->n > 1 || (a->n == 1 && a->v[0].t != JV_DICT))
        jx_fail(c->err, site->line, "%s takes keyword arguments (and at most one mapping)", ns ? "namespace" : "dict");
    jdict *d = jd_new(c, a->nkw + (a->n ? a->v[0].u.d->n : 0));
    for (size_t i = 0; a->n && i < a->v[0].u.d->n; i++) jd_set(c, d, a->v[0].u.d->k[i], a->v[0].u.d->v[i]);
    for (size_t i = 0; i < a->nkw; i++) jd_set(c, d, js_lit(c, a->kwn[i], strlen(a->kwn[i])), a->kwv[i]);
    d->is_namespace = ns;
    return jv_dictv(d);
}

jv jb_call_global(jctx *c, const jnode *site, int fn, const jv *args, size_t nargs, const char *const *kwn,
                  const jv *kwv, size_t nkw) {
    jargs a = {.v = args, .n = nargs, .kwn = kwn, .kwv = kwv, .nkw = nkw};
    switch (fn) {
    case JF_NAMESPACE: return g_dict(c, site, &a, true);
    case JF_DICT: return g_dict(c, site, &a, false);
    case JF_RANGE: return g_range(c, site, &a);
    case JF_STRFTIME: return g_strftime(c, site, &a);
    case JF_RAISE: {
        const jstr *m = nargs ? jv_as_str(c, site->line, args[0]) : js_lit(c, "", 0);
        jx_fail(c->err, site->line, "raise_exception: %.300s", cstr(c, m));
    }
    default: jx_fail(c->err, site->line, "internal error: unknown global %d", fn);
    }
}
