/* jinja_eval.c — renders the AST: statements write to the output (with provenance, see chat_template.h),
 * expressions evaluate to values. Scoping as Jinja2: each for-loop iteration has its own frame (a `set`
 * inside a loop does not leak out; namespaces exist for that), if blocks do not. `loop` is the innermost
 * loop's state. and/or return an operand, as in Python. */
#include <string.h>

#include "jinja.h"

typedef struct {
    const jlist *items;
    size_t i;
} jloop;

struct jframe {
    jframe *parent;
    const char **names;
    jv *vals;
    size_t n, cap;
    const jloop *loop;
};

static jv eval(jctx *c, jframe *f, const jnode *x);
static void exec_node(jctx *c, jframe *f, const jnode *x);

/* ---------------------------------------------------------------- frames */
static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jc_alloc(c, sizeof *f);
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jctx *c, jframe *f, const char *name, jv v) {
    jc_work(c, 0, f->n); /* linear searches: a template with very many variables costs work */
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        const char **nn = jc_alloc(c, cap * sizeof *nn);
        jv *nv = jc_alloc(c, cap * sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->vals = nv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}

static bool frame_get(jctx *c, const jframe *f, const char *name, jv *out) {
    for (; f; f = f->parent) {
        jc_work(c, 0, f->n + 1);
        for (size_t i = 0; i < f->n; i++)
            if (!strcmp(f->names[i], name)) {
                *out = f->vals[i];
                return true;
            }
    }
    return false;
}

static const jloop *innermost_loop(const jframe *f) {
    for (; f; f = f->parent)
        if (f->loop) return f->loop;
    return NULL;
}

/* ---------------------------------------------------------------- loop variable */
static bool loop_attr(const jloop *lp, const char *name, jv *out) {
    int64_t i = (int64_t)lp->i, n = (int64_t)lp->items->n;
    if (!strcmp(name, "index0")) *out = jv_int(i);
    else if (!strcmp(name, "index")) *out = jv_int(i + 1);
    else if (!strcmp(name, "revindex")) *out = jv_int(n - i);
    else if (!strcmp(name, "revindex0")) *out = jv_int(n - i - 1);
    else if (!strcmp(name, "first")) *out = jv_bool(i == 0);
    else if (!strcmp(name, "last")) *out = jv_bool(i == n - 1);
    else if (!strcmp(name, "length")) *out = jv_int(n);
    else if (!strcmp(name, "depth")) *out = jv_int(1);
    else if (!strcmp(name, "depth0")) *out = jv_int(0);
    else if (!strcmp(name, "previtem")) *out = i > 0 ? lp->items->v[i - 1] : jv_undef("previtem");
    else if (!strcmp(name, "nextitem")) *out = i + 1 < n ? lp->items->v[i + 1] : jv_undef("nextitem");
    else return false;
    return true;
}

static jv loop_dict(jctx *c, const jloop *lp) {
    static const char *keys[] = {"index0", "index", "revindex", "revindex0", "first", "last", "length",
                                 "depth", "depth0", "previtem", "nextitem"};
    jdict *d = jd_new(c, 11);
    for (size_t k = 0; k < 11; k++) {
        jv v;
        loop_attr(lp, keys[k], &v);
        if (v.t != JV_UNDEF) jd_set(c, d, js_lit(c, keys[k], strlen(keys[k])), v);
    }
    return jv_dictv(d);
}

/* ---------------------------------------------------------------- output */
static void emit(jctx *c, int line, const jstr *s) {
    if (s->len > c->lim.max_output - c->out.len)
        jx_fail(c->err, line, "output limit of %zu bytes exceeded", c->lim.max_output);
    size_t at = c->out.len;
    iq_buf_append(&c->out, s->p, s->len);
    for (size_t i = 0; i < s->nseg; i++) {
        jseg g = s->seg[i];
        g.dst += at;
        if (c->noseg > c->seg_floor) {
            jseg *p = &c->oseg[c->noseg - 1];
            if (p->msg == g.msg && p->dst + p->len == g.dst && p->src + p->len == g.src) {
                p->len += g.len;
                continue;
            }
        }
        if (c->noseg == c->capseg) {
            c->capseg = c->capseg ? c->capseg * 2 : 64;
            c->oseg = iq_xrealloc(c->oseg, c->capseg * sizeof(jseg));
        }
        c->oseg[c->noseg++] = g;
    }
}

/* ---------------------------------------------------------------- expressions */
static void eval_args(jctx *c, jframe *f, const jnode *x, jv **args, jv **kwv) {
    *args = jc_alloc(c, (x->n ? x->n : 1) * sizeof(jv));
    *kwv = jc_alloc(c, (x->nkw ? x->nkw : 1) * sizeof(jv));
    for (size_t i = 0; i < x->n; i++) (*args)[i] = eval(c, f, x->items[i]);
    for (size_t i = 0; i < x->nkw; i++) (*kwv)[i] = eval(c, f, x->kwv[i]);
}

static jv eval_call(jctx *c, jframe *f, const jnode *x) {
    jv *args, *kwv;
    const jnode *callee = x->a;
    if (callee->kind == N_GETATTR) {
        jv obj;
        if (callee->a->kind == N_NAME && !strcmp(callee->a->name, "loop") && !strcmp(callee->name, "cycle") &&
            innermost_loop(f) && !frame_get(c, f, "loop", &obj)) {
            eval_args(c, f, x, &args, &kwv);
            if (x->n == 0) jx_fail(c->err, x->line, "loop.cycle() needs at least one argument");
            return args[innermost_loop(f)->i % x->n];
        }
        obj = eval(c, f, callee->a);
        eval_args(c, f, x, &args, &kwv);
        jv out;
        if (jb_method(c, x, obj, callee->name, args, x->n, x->kwn, kwv, x->nkw, &out)) return out;
        jv fn = jx_getattr(c, x->line, obj, callee->name);
        if (fn.t == JV_FUNC) return jb_call_global(c, x, fn.fn, args, x->n, x->kwn, kwv, x->nkw);
        jx_fail(c->err, x->line, "unsupported method '%s' of a %s value", callee->name, jv_type_name(obj));
    }
    jv fn = eval(c, f, callee);
    eval_args(c, f, x, &args, &kwv);
    if (fn.t == JV_FUNC) return jb_call_global(c, x, fn.fn, args, x->n, x->kwn, kwv, x->nkw);
    if (fn.t == JV_UNDEF && callee->kind == N_NAME) jx_fail(c->err, x->line, "unsupported function '%s'", callee->name);
    jx_fail(c->err, x->line, "'%s' object is not callable", jv_type_name(fn));
}

static bool compare(jctx *c, int line, int op, jv a, jv b) {
    switch (op) {
    case 'e': return jv_equal(a, b);
    case 'n': return !jv_equal(a, b);
    case '<': return jx_compare_lt(c, line, a, b);
    case '>': return jx_compare_lt(c, line, b, a);
    case 'l': return !jx_compare_lt(c, line, b, a);
    case 'g': return !jx_compare_lt(c, line, a, b);
    case 'i': return jx_contains(c, line, b, a);
    default: return !jx_contains(c, line, b, a);
    }
}

static jv eval_seq(jctx *c, jframe *f, const jnode *x) {
    jlist *l = jl_new(c, x->n);
    for (size_t i = 0; i < x->n; i++) l->v[i] = eval(c, f, x->items[i]);
    jv v = jv_listv(l);
    v.fn = x->kind == N_TUPLE;
    return v;
}

static jv eval_dict(jctx *c, jframe *f, const jnode *x) {
    jdict *d = jd_new(c, x->n / 2);
    for (size_t i = 0; i + 1 < x->n; i += 2) {
        jv k = eval(c, f, x->items[i]);
        if (k.t != JV_STR) jx_fail(c->err, x->line, "unsupported construct: dict key of type '%s'", jv_type_name(k));
        jd_set(c, d, k.u.s, eval(c, f, x->items[i + 1]));
    }
    return jv_dictv(d);
}

static jv eval_name(jctx *c, jframe *f, const jnode *x) {
    jv v;
    if (frame_get(c, f, x->name, &v)) return v;
    if (!strcmp(x->name, "loop") && innermost_loop(f)) return loop_dict(c, innermost_loop(f));
    return jv_undef(x->name);
}

static jv eval_getattr(jctx *c, jframe *f, const jnode *x) {
    jv tmp;
    if (x->a->kind == N_NAME && !strcmp(x->a->name, "loop") && !frame_get(c, f, "loop", &tmp)) {
        const jloop *lp = innermost_loop(f);
        if (lp) return loop_attr(lp, x->name, &tmp) ? tmp : jv_undef(x->name);
    }
    return jx_getattr(c, x->line, eval(c, f, x->a), x->name);
}

static jv eval_filter_or_test(jctx *c, jframe *f, const jnode *x) {
    jv v = eval(c, f, x->a), *args, *kwv;
    eval_args(c, f, x, &args, &kwv);
    if (x->kind == N_FILTER) return jb_filter(c, x, v, args, x->n, x->kwn, kwv, x->nkw);
    return jv_bool(jb_test(c, x, v, args, x->n) != (x->op == 1));
}

static jv eval_unary(jctx *c, jframe *f, const jnode *x) {
    jv v = eval(c, f, x->a);
    if (v.t == JV_INT && x->kind == N_NEG) {
        if (v.u.i == INT64_MIN) jx_fail(c->err, x->line, "integer overflow");
        return jv_int(-v.u.i);
    }
    if (v.t == JV_BOOL) return jv_int(x->kind == N_NEG ? -(int64_t)v.u.b : v.u.b);
    if (v.t == JV_INT) return v;
    if (v.t == JV_FLOAT) return jv_float(x->kind == N_NEG ? -v.u.f : v.u.f);
    if (v.t == JV_UNDEF && v.u.undef_name) jx_fail(c->err, x->line, "'%s' is undefined", v.u.undef_name);
    jx_fail(c->err, x->line, "bad operand type for unary %c: '%s'", x->kind == N_NEG ? '-' : '+', jv_type_name(v));
}

static jv eval(jctx *c, jframe *f, const jnode *x) {
    switch (x->kind) {
    case N_LIT: return x->lit;
    case N_NAME: return eval_name(c, f, x);
    case N_LIST: case N_TUPLE: return eval_seq(c, f, x);
    case N_DICT: return eval_dict(c, f, x);
    case N_GETATTR: return eval_getattr(c, f, x);
    case N_GETITEM: {
        jv obj = eval(c, f, x->a);
        return jx_getitem(c, x->line, obj, eval(c, f, x->b));
    }
    case N_SLICE: {
        jv obj = eval(c, f, x->a), none = jv_none();
        jv a = x->b ? eval(c, f, x->b) : none, b = x->c ? eval(c, f, x->c) : none, s = x->d ? eval(c, f, x->d) : none;
        return jx_slice(c, x->line, obj, a, b, s);
    }
    case N_CALL: return eval_call(c, f, x);
    case N_FILTER: case N_TEST: return eval_filter_or_test(c, f, x);
    case N_NEG: case N_POS: return eval_unary(c, f, x);
    case N_NOT: return jv_bool(!jv_truthy(eval(c, f, x->a)));
    case N_AND: {
        jv a = eval(c, f, x->a);
        return jv_truthy(a) ? eval(c, f, x->b) : a;
    }
    case N_OR: {
        jv a = eval(c, f, x->a);
        return jv_truthy(a) ? a : eval(c, f, x->b);
    }
    case N_BINOP: {
        jv a = eval(c, f, x->a), b = eval(c, f, x->b);
        if (x->op == '~') return jv_strv(js_cat(c, x->line, jv_as_str(c, x->line, a), jv_as_str(c, x->line, b)));
        return jx_binop(c, x->line, x->op, a, b);
    }
    case N_COMPARE: {
        jv left = eval(c, f, x->a);
        for (size_t i = 0; i < x->n; i++) {
            jv right = eval(c, f, x->items[i]);
            if (!compare(c, x->line, x->ops[i], left, right)) return jv_bool(false);
            left = right;
        }
        return jv_bool(true);
    }
    case N_COND:
        if (jv_truthy(eval(c, f, x->a))) return eval(c, f, x->b);
        return x->c ? eval(c, f, x->c) : jv_undef(NULL);
    default: jx_fail(c->err, x->line, "internal error: node %d is not an expression", x->kind);
    }
}

/* ---------------------------------------------------------------- statements */
static void bind_targets(jctx *c, jframe *f, const jnode *x, jv item) {
    if (x->nnames == 1) {
        frame_set(c, f, x->names[0], item);
        return;
    }
    jlist *l = item.t == JV_LIST ? item.u.l : NULL;
    if (item.t == JV_STR || item.t == JV_DICT) l = jx_iter(c, x->line, item);
    if (!l || l->n != x->nnames)
        jx_fail(c->err, x->line, "cannot unpack a %s value into %zu loop variables", jv_type_name(item), x->nnames);
    for (size_t k = 0; k < x->nnames; k++) frame_set(c, f, x->names[k], l->v[k]);
}

static void count_iteration(jctx *c, int line) {
    if (++c->iterations > c->lim.max_iterations)
        jx_fail(c->err, line, "loop iteration limit of %llu exceeded", (unsigned long long)c->lim.max_iterations);
}

static void exec_for(jctx *c, jframe *f, const jnode *x) {
    jlist *items = jx_iter(c, x->line, eval(c, f, x->a));
    if (x->d) { /* the `if` clause filters before loop.length and loop.index are counted */
        jlist *kept = jl_new(c, items->n);
        kept->n = 0;
        for (size_t i = 0; i < items->n; i++) {
            count_iteration(c, x->line);
            jframe *g = frame_new(c, f);
            bind_targets(c, g, x, items->v[i]);
            if (jv_truthy(eval(c, g, x->d))) kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    jloop lp = {.items = items};
    for (size_t i = 0; i < items->n; i++) {
        count_iteration(c, x->line);
        jframe *g = frame_new(c, f);
        lp.i = i;
        g->loop = &lp;
        bind_targets(c, g, x, items->v[i]);
        exec_node(c, g, x->b);
        if (c->ctl == JCTL_BREAK) {
            c->ctl = 0;
            break;
        }
        c->ctl = 0;
    }
    if (items->n == 0 && x->c) exec_node(c, frame_new(c, f), x->c);
}

static void exec_set_attr(jctx *c, jframe *f, const jnode *x) {
    jv ns;
    if (!frame_get(c, f, x->name, &ns) || ns.t != JV_DICT || !ns.u.d->is_namespace)
        jx_fail(c->err, x->line, "cannot assign attribute '%s' on '%s': not a namespace", x->names[0], x->name);
    jv v = eval(c, f, x->a);
    jd_set(c, ns.u.d, js_lit(c, x->names[0], strlen(x->names[0])), v);
}

/* {% set x %}...{% endset %}: the body's output, with its provenance, becomes the value */
static void exec_set_block(jctx *c, jframe *f, const jnode *x) {
    size_t at = c->out.len, seg0 = c->noseg, floor0 = c->seg_floor;
    c->seg_floor = seg0; /* no merging with what was emitted before the block */
    exec_node(c, f, x->b);
    c->seg_floor = floor0;
    jstr *s = js_new(c, c->out.data ? c->out.data + at : "", c->out.len - at);
    if (c->noseg > seg0) {
        s->nseg = c->noseg - seg0;
        s->seg = jc_alloc(c, s->nseg * sizeof(jseg));
        for (size_t i = 0; i < s->nseg; i++) {
            s->seg[i] = c->oseg[seg0 + i];
            s->seg[i].dst -= at;
        }
    }
    c->out.len = at;
    c->noseg = seg0;
    frame_set(c, f, x->name, jv_strv(s));
}

static void exec_node(jctx *c, jframe *f, const jnode *x) {
    switch (x->kind) {
    case N_BLOCK:
        for (size_t i = 0; i < x->n && !c->ctl; i++) exec_node(c, f, x->items[i]);
        return;
    case N_TEXT: emit(c, x->line, x->str); return;
    case N_OUTPUT: emit(c, x->line, jv_as_str(c, x->line, eval(c, f, x->a))); return;
    case N_IF:
        if (jv_truthy(eval(c, f, x->a))) exec_node(c, f, x->b);
        else if (x->c) exec_node(c, f, x->c);
        return;
    case N_FOR: exec_for(c, f, x); return;
    case N_SET: frame_set(c, f, x->name, eval(c, f, x->a)); return;
    case N_SET_ATTR: exec_set_attr(c, f, x); return;
    case N_SET_BLOCK: exec_set_block(c, f, x); return;
    case N_BREAK: c->ctl = JCTL_BREAK; return;
    case N_CONTINUE: c->ctl = JCTL_CONTINUE; return;
    default: jx_fail(c->err, x->line, "internal error: node %d is not a statement", x->kind);
    }
}

/* ---------------------------------------------------------------- entry */
void jeval_template(jctx *c, const jnode *root) {
    jframe *top = frame_new(c, c->globals);
    exec_node(c, top, root);
}

jframe *jframe_new_globals(jctx *c) { return frame_new(c, NULL); }
void jframe_set(jctx *c, jframe *f, const char *name, jv v) { frame_set(c, f, name, v); }
