/* jinja_ops.c — Python's semantics for the chat-template interpreter's operators: arithmetic (64-bit ints
 * with overflow refused, floats), comparisons, `in`, attribute and item access (Jinja2's getattr/getitem:
 * a missing key or index is undefined), slices (by code point for strings) and iteration. Undefined
 * values behave as Jinja2's default Undefined: printable as '', iterable as empty, false, equal only to
 * undefined, and an error in arithmetic or when an attribute of them is read. */
#include <math.h>
#include <string.h>

#include "jinja.h"

static _Noreturn void undefined_error(jctx *c, int line, jv v) {
    if (v.u.undef_name) jx_fail(c->err, line, "'%s' is undefined", v.u.undef_name);
    jx_fail(c->err, line, "use of an undefined value");
}

static bool is_intlike(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static int64_t as_int(jv v) { return v.t == JV_INT ? v.u.i : (int64_t)v.u.b; }
static bool is_num(jv v) { return is_intlike(v) || v.t == JV_FLOAT; }
static double as_f(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)as_int(v); }

static _Noreturn void type_error(jctx *c, int line, const char *op, jv a, jv b) {
    if (a.t == JV_UNDEF) undefined_error(c, line, a);
    if (b.t == JV_UNDEF) undefined_error(c, line, b);
    jx_fail(c->err, line, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

static jlist *list_concat(jctx *c, const jlist *a, const jlist *b) {
    jlist *r = jl_new(c, a->n + b->n);
    memcpy(r->v, a->v, a->n * sizeof(jv));
    memcpy(r->v + a->n, b->v, b->n * sizeof(jv));
    return r;
}

/* s * k and l * k */
static jv repeat(jctx *c, int line, jv x, int64_t k) {
    if (k < 0) k = 0;
    size_t unit = x.t == JV_STR ? x.u.s->len : x.u.l->n * sizeof(jv);
    if (unit && (uint64_t)k > c->lim.max_memory / unit)
        jx_fail(c->err, line, "memory limit of %zu bytes exceeded", c->lim.max_memory);
    jc_work(c, line, unit * (uint64_t)k);
    if (x.t == JV_STR) {
        jsb b = {.c = c};
        for (int64_t i = 0; i < k; i++) jsb_put(&b, x.u.s->p, x.u.s->len);
        return jv_strv(jsb_str(&b));
    }
    jlist *r = jl_new(c, x.u.l->n * (size_t)k);
    for (int64_t i = 0; i < k; i++) memcpy(r->v + (size_t)i * x.u.l->n, x.u.l->v, x.u.l->n * sizeof(jv));
    return jv_listv(r);
}

static jv int_pow(jctx *c, int line, int64_t a, int64_t e) {
    if (e < 0) return jv_float(pow((double)a, (double)e));
    int64_t r = 1;
    for (int64_t i = 0; i < e; i++) {
        if (r == 0 || (a >= -1 && a <= 1 && i > 1)) return jv_int(a == -1 ? (e % 2 ? -1 : 1) : r);
        if (__builtin_mul_overflow(r, a, &r)) jx_fail(c->err, line, "integer overflow in **");
    }
    return jv_int(r);
}

static jv arith_int(jctx *c, int line, int op, int64_t a, int64_t b) {
    int64_t r;
    switch (op) {
    case '+': if (__builtin_add_overflow(a, b, &r)) break; return jv_int(r);
    case '-': if (__builtin_sub_overflow(a, b, &r)) break; return jv_int(r);
    case '*': if (__builtin_mul_overflow(a, b, &r)) break; return jv_int(r);
    case '/':
        if (b == 0) jx_fail(c->err, line, "division by zero");
        return jv_float((double)a / (double)b);
    case 'f': case '%': {
        if (b == 0) jx_fail(c->err, line, "integer division or modulo by zero");
        if (a == INT64_MIN && b == -1) break;
        int64_t q = a / b, m = a % b;
        if (m != 0 && ((m < 0) != (b < 0))) {
            q--;
            m += b;
        }
        return jv_int(op == 'f' ? q : m);
    }
    case 'p': return int_pow(c, line, a, b);
    }
    jx_fail(c->err, line, "integer overflow");
}

static jv arith_float(jctx *c, int line, int op, double a, double b) {
    switch (op) {
    case '+': return jv_float(a + b);
    case '-': return jv_float(a - b);
    case '*': return jv_float(a * b);
    case '/':
        if (b == 0) jx_fail(c->err, line, "float division by zero");
        return jv_float(a / b);
    case 'f': case '%': { /* Python's float divmod */
        if (b == 0) jx_fail(c->err, line, op == 'f' ? "float floor division by zero" : "float modulo");
        double m = fmod(a, b), div = (a - m) / b;
        if (m != 0 && ((b < 0) != (m < 0))) {
            m += b;
            div -= 1.0;
        }
        if (op == '%') return jv_float(m != 0 ? m : copysign(0.0, b));
        if (div == 0) return jv_float(copysign(0.0, a / b));
        double fl = floor(div);
        return jv_float(div - fl > 0.5 ? fl + 1.0 : fl);
    }
    default: return jv_float(pow(a, b));
    }
}

static const char *op_name(int op) {
    switch (op) {
    case 'f': return "//";
    case 'p': return "**";
    case '+': return "+";
    case '-': return "-";
    case '*': return "*";
    case '/': return "/";
    default: return "%";
    }
}

jv jx_binop(jctx *c, int line, int op, jv a, jv b) {
    if (is_intlike(a) && is_intlike(b)) return arith_int(c, line, op, as_int(a), as_int(b));
    if (is_num(a) && is_num(b)) return arith_float(c, line, op, as_f(a), as_f(b));
    if (op == '+' && a.t == JV_STR && b.t == JV_STR) return jv_strv(js_cat(c, line, a.u.s, b.u.s));
    if (op == '+' && a.t == JV_LIST && b.t == JV_LIST && a.fn == b.fn) { /* list + list, tuple + tuple */
        jv r = jv_listv(list_concat(c, a.u.l, b.u.l));
        r.fn = a.fn;
        return r;
    }
    if (op == '*' && (a.t == JV_STR || a.t == JV_LIST) && is_intlike(b)) return repeat(c, line, a, as_int(b));
    if (op == '*' && (b.t == JV_STR || b.t == JV_LIST) && is_intlike(a)) return repeat(c, line, b, as_int(a));
    if (op == '%' && a.t == JV_STR) jx_fail(c->err, line, "unsupported construct: string formatting with '%%'");
    type_error(c, line, op_name(op), a, b);
}

int jx_compare_lt(jctx *c, int line, jv a, jv b) {
    if (is_intlike(a) && is_intlike(b)) return as_int(a) < as_int(b);
    if (is_num(a) && is_num(b)) return as_f(a) < as_f(b);
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        jc_work(c, line, n);
        int r = memcmp(a.u.s->p, b.u.s->p, n);
        return r < 0 || (r == 0 && a.u.s->len < b.u.s->len);
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.fn == b.fn) { /* a tuple and a list do not compare */
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return jx_compare_lt(c, line, a.u.l->v[i], b.u.l->v[i]);
        }
        return a.u.l->n < b.u.l->n;
    }
    if (a.t == JV_UNDEF) undefined_error(c, line, a);
    if (b.t == JV_UNDEF) undefined_error(c, line, b);
    jx_fail(c->err, line, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

bool jx_contains(jctx *c, int line, jv container, jv item) {
    switch (container.t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (item.t != JV_STR) jx_fail(c->err, line, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        jc_work(c, line, container.u.s->len);
        if (item.u.s->len == 0) return true;
        return memmem(container.u.s->p, container.u.s->len, item.u.s->p, item.u.s->len) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < container.u.l->n; i++)
            if (jv_equal(container.u.l->v[i], item)) return true;
        return false;
    case JV_DICT: {
        jv tmp;
        return item.t == JV_STR && jd_get(container.u.d, item.u.s->p, item.u.s->len, &tmp);
    }
    default: jx_fail(c->err, line, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

jv jx_getattr(jctx *c, int line, jv obj, const char *name) {
    if (obj.t == JV_UNDEF) {
        if (obj.u.undef_name) jx_fail(c->err, line, "'%s' is undefined (reading its attribute '%s')", obj.u.undef_name, name);
        jx_fail(c->err, line, "undefined value has no attribute '%s'", name);
    }
    jv v;
    if (obj.t != JV_DICT) return jv_undef(name);
    jc_work(c, line, obj.u.d->n); /* a linear search */
    return jd_get(obj.u.d, name, strlen(name), &v) ? v : jv_undef(name);
}

/* the character (code point) at index k of s, negative from the end; undefined when out of range */
static jv str_index(jctx *c, int line, const jstr *s, int64_t k) {
    jc_work(c, line, s->len);
    int64_t n = (int64_t)u8_count(s->p, s->len);
    if (k < 0) k += n;
    if (k < 0 || k >= n) return jv_undef(NULL);
    size_t a = u8_offset(s->p, s->len, (size_t)k);
    uint32_t cp;
    return jv_strv(js_sub(c, s, a, u8_next(s->p, s->len, a, &cp)));
}

jv jx_getitem(jctx *c, int line, jv obj, jv key) {
    if (obj.t == JV_UNDEF) {
        if (obj.u.undef_name) jx_fail(c->err, line, "'%s' is undefined (reading an item of it)", obj.u.undef_name);
        jx_fail(c->err, line, "undefined value has no items");
    }
    if (obj.t == JV_DICT && key.t == JV_STR) {
        jv v;
        jc_work(c, line, obj.u.d->n);
        if (jd_get(obj.u.d, key.u.s->p, key.u.s->len, &v)) return v;
        return jv_undef(NULL);
    }
    if (obj.t == JV_LIST && is_intlike(key)) {
        int64_t k = as_int(key), n = (int64_t)obj.u.l->n;
        if (k < 0) k += n;
        return k >= 0 && k < n ? obj.u.l->v[k] : jv_undef(NULL);
    }
    if (obj.t == JV_STR && is_intlike(key)) return str_index(c, line, obj.u.s, as_int(key));
    return jv_undef(NULL);
}

/* Python's slice.indices */
static void slice_bounds(jctx *c, int line, int64_t n, jv start, jv stop, jv step, int64_t *a, int64_t *b, int64_t *st) {
    *st = 1;
    if (step.t != JV_NONE && step.t != JV_UNDEF) {
        if (!is_intlike(step)) jx_fail(c->err, line, "slice step must be an integer");
        *st = as_int(step);
        if (*st == 0) jx_fail(c->err, line, "slice step cannot be zero");
    }
    int64_t lo = *st > 0 ? 0 : -1, hi = *st > 0 ? n : n - 1;
    jv ends[2] = {start, stop};
    int64_t *out[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        jv e = ends[k];
        if (e.t == JV_NONE || e.t == JV_UNDEF) {
            *out[k] = (k == 0) == (*st > 0) ? lo : hi;
            continue;
        }
        if (!is_intlike(e)) jx_fail(c->err, line, "slice indices must be integers or None");
        int64_t v = as_int(e);
        if (v < 0) v = v + n < lo ? lo : v + n;
        else if (v > hi) v = hi;
        *out[k] = v;
    }
}

jv jx_slice(jctx *c, int line, jv obj, jv start, jv stop, jv step) {
    if (obj.t == JV_UNDEF) undefined_error(c, line, obj);
    if (obj.t != JV_STR && obj.t != JV_LIST) jx_fail(c->err, line, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t n = obj.t == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)u8_count(obj.u.s->p, obj.u.s->len);
    if (obj.t == JV_STR) jc_work(c, line, obj.u.s->len);
    int64_t a, b, st;
    slice_bounds(c, line, n, start, stop, step, &a, &b, &st);
    int64_t cnt = st > 0 ? (b > a ? (b - a + st - 1) / st : 0) : (a > b ? (a - b - st - 1) / -st : 0);
    if (obj.t == JV_LIST) {
        jlist *r = jl_new(c, (size_t)cnt);
        for (int64_t i = 0; i < cnt; i++) r->v[i] = obj.u.l->v[a + i * st];
        return jv_listv(r);
    }
    const jstr *s = obj.u.s;
    if (st == 1) return jv_strv(js_sub(c, s, u8_offset(s->p, s->len, (size_t)a), u8_offset(s->p, s->len, (size_t)(a + cnt))));
    size_t *offs = jc_alloc(c, ((size_t)n + 1) * sizeof(size_t)); /* code point k starts at offs[k] */
    uint32_t cp;
    for (size_t i = 0, k = 0; k <= (size_t)n; k++) {
        offs[k] = i;
        if (i < s->len) i = u8_next(s->p, s->len, i, &cp);
    }
    jsb out = {.c = c};
    for (int64_t i = 0; i < cnt; i++) {
        int64_t k = a + i * st;
        jsb_put(&out, s->p + offs[k], offs[k + 1] - offs[k]);
    }
    return jv_strv(jsb_str(&out));
}

jlist *jx_iter(jctx *c, int line, jv v) {
    switch (v.t) {
    case JV_UNDEF: return jl_new(c, 0);
    case JV_LIST: return v.u.l;
    case JV_DICT: {
        if (v.u.d->is_namespace) break;
        jlist *l = jl_new(c, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) l->v[i] = jv_strv(v.u.d->k[i]);
        return l;
    }
    case JV_STR: {
        const jstr *s = v.u.s;
        jc_work(c, line, s->len);
        jlist *l = jl_new(c, u8_count(s->p, s->len));
        uint32_t cp;
        for (size_t i = 0, k = 0; i < s->len; k++) {
            size_t j = u8_next(s->p, s->len, i, &cp);
            l->v[k] = jv_strv(js_sub(c, s, i, j));
            i = j;
        }
        return l;
    }
    default: break;
    }
    jx_fail(c->err, line, "'%s' object is not iterable", jv_type_name(v));
}
