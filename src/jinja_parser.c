/* jinja_parser.c — tokens -> AST, following Jinja2's grammar and operator precedence (lowest first):
 *   a if c else b  <  or  <  and  <  not  <  comparisons (==, !=, <, <=, >, >=, in, not in; chained)
 *   <  + -  <  ~  <  * / // %  <  **  <  unary - +  <  postfix (.attr, [index], [a:b:c], (call))
 *   and then filters and tests (x|f(args), x is [not] t args), which bind to the unary expression
 *   (so `'a' + x | trim` trims x only, and `-x|abs` is abs(-x)).
 * Statements: if/elif/else, for (targets, `if` clause, else), set (name, ns.attr, block), break, continue,
 * generation (transformers' tag, rendered transparently). Filters and tests are resolved here; an unknown
 * one is refused by name here, or when it is evaluated where Jinja2 defers that check (check_names).
 * Nesting is bounded (JP_MAX_DEPTH). */
#include <string.h>

#include "jinja.h"

#define JP_MAX_DEPTH 200
#define JP_MAX_EXPR_HEIGHT 400

typedef struct {
    jarena *a;
    jerr *e;
    const jtok *t;
    size_t n, i;
    int depth, loops;
} parser;

static jnode *parse_expr(parser *P, bool with_cond);
static jnode *parse_tuple(parser *P, bool with_cond);
static jnode *parse_body(parser *P, const char *const *ends, const char **which);
static jnode *parse_primary(parser *P);

static const jtok *cur(parser *P) { return &P->t[P->i]; }
static const jtok *peek(parser *P, size_t k) { return &P->t[P->i + k < P->n ? P->i + k : P->n - 1]; }
static bool is_op(const jtok *t, const char *op) { return t->t == JT_OP && strcmp(t->op, op) == 0; }
static bool is_name(const jtok *t, const char *s) { return t->t == JT_NAME && strcmp(t->s, s) == 0; }

static const char *tok_desc(const jtok *t) {
    switch (t->t) {
    case JT_TEXT: return "template text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_NAME: return t->s;
    case JT_STRING: return "a string";
    case JT_INT: case JT_FLOAT: return "a number";
    case JT_OP: return t->op;
    default: return "the end of the template";
    }
}

static void expect_op(parser *P, const char *op) {
    if (!is_op(cur(P), op)) jx_fail(P->e, cur(P)->line, "expected '%s', found %s", op, tok_desc(cur(P)));
    P->i++;
}

static void expect_type(parser *P, jtoktype t, const char *what) {
    if (cur(P)->t != t) jx_fail(P->e, cur(P)->line, "expected %s, found %s", what, tok_desc(cur(P)));
    P->i++;
}

static jnode *node(parser *P, jkind kind, int line) {
    jnode *nd = ja_alloc(P->a, P->e, sizeof *nd);
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->line = line;
    return nd;
}

/* a growable node list in the arena */
typedef struct {
    jnode **v;
    size_t n, cap;
} nlist;

static void nl_push(parser *P, nlist *l, jnode *x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jnode **v = ja_alloc(P->a, P->e, cap * sizeof *v);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

/* x's height from its children's; a flat chain (a + b + c ..., a.b.c ..., x|f|g ...) nests to the left */
static jnode *grown(parser *P, jnode *x) {
    jnode *kids[4] = {x->a, x->b, x->c, x->d};
    int h = 0;
    for (int k = 0; k < 4; k++)
        if (kids[k] && kids[k]->depth > h) h = kids[k]->depth;
    for (size_t k = 0; k < x->n; k++)
        if (x->items[k]->depth > h) h = x->items[k]->depth;
    for (size_t k = 0; k < x->nkw; k++)
        if (x->kwv[k]->depth > h) h = x->kwv[k]->depth;
    x->depth = h + 1;
    if (x->depth > JP_MAX_EXPR_HEIGHT)
        jx_fail(P->e, x->line, "expression nested too deeply (over %d levels)", JP_MAX_EXPR_HEIGHT);
    return x;
}

static void enter(parser *P) {
    if (++P->depth > JP_MAX_DEPTH) jx_fail(P->e, cur(P)->line, "template nested too deeply (over %d levels)", JP_MAX_DEPTH);
}

/* ---------------------------------------------------------------- expressions */
/* (args) after '(' has been consumed: positional and keyword arguments */
static void parse_args(parser *P, jnode *call) {
    nlist pos = {0}, kwv = {0};
    const char **kwn = NULL;
    size_t kwcap = 0;
    while (!is_op(cur(P), ")")) {
        if (pos.n + kwv.n > 0) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            jx_fail(P->e, cur(P)->line, "unsupported construct: *args / **kwargs in a call");
        if (cur(P)->t == JT_NAME && is_op(peek(P, 1), "=")) {
            if (kwv.n == kwcap) {
                kwcap = kwcap ? kwcap * 2 : 4;
                const char **k2 = ja_alloc(P->a, P->e, kwcap * sizeof *k2);
                if (kwv.n) memcpy(k2, kwn, kwv.n * sizeof *k2);
                kwn = k2;
            }
            kwn[kwv.n] = cur(P)->s;
            P->i += 2;
            nl_push(P, &kwv, parse_expr(P, true));
        } else {
            if (kwv.n) jx_fail(P->e, cur(P)->line, "positional argument after a keyword argument");
            nl_push(P, &pos, parse_expr(P, true));
        }
    }
    P->i++;
    call->items = pos.v;
    call->n = pos.n;
    call->kwn = kwn;
    call->kwv = kwv.v;
    call->nkw = kwv.n;
}

static jnode *parse_subscript(parser *P, jnode *obj, int line) {
    jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    for (;;) {
        if (is_op(cur(P), ":")) {
            slice = true;
            if (++k > 2) jx_fail(P->e, line, "too many ':' in a slice");
            P->i++;
            continue;
        }
        if (is_op(cur(P), "]")) break;
        if (parts[k]) jx_fail(P->e, line, "expected ']' or ':', found %s", tok_desc(cur(P)));
        parts[k] = parse_expr(P, true);
        if (is_op(cur(P), ",")) jx_fail(P->e, line, "unsupported construct: tuple subscript");
    }
    P->i++;
    if (!slice && !parts[0]) jx_fail(P->e, line, "empty subscript");
    jnode *nd = node(P, slice ? N_SLICE : N_GETITEM, line);
    nd->a = obj;
    nd->b = parts[0];
    nd->c = parts[1];
    nd->d = parts[2];
    return nd;
}

static jnode *parse_postfix(parser *P, jnode *x) {
    for (;;) {
        const jtok *t = cur(P);
        if (is_op(t, ".")) {
            P->i++;
            const jtok *nm = cur(P);
            if (nm->t == JT_NAME) {
                jnode *g = node(P, N_GETATTR, t->line);
                g->a = x;
                g->name = nm->s;
                x = grown(P, g);
            } else if (nm->t == JT_INT) {
                jnode *g = node(P, N_GETITEM, t->line), *k = node(P, N_LIT, t->line);
                k->lit = jv_int(nm->i);
                g->a = x;
                g->b = k;
                x = grown(P, g);
            } else jx_fail(P->e, t->line, "expected an attribute name after '.', found %s", tok_desc(nm));
            P->i++;
        } else if (is_op(t, "[")) {
            P->i++;
            x = grown(P, parse_subscript(P, x, t->line));
        } else if (is_op(t, "(")) {
            P->i++;
            jnode *c = node(P, N_CALL, t->line);
            c->a = x;
            parse_args(P, c);
            x = grown(P, c);
        } else return x;
    }
}

/* a filter or test name: Jinja2 allows dots in it (`x|string.upper` names the filter "string.upper") */
static const char *dotted_name(parser *P) {
    const jtok *first = cur(P);
    size_t len = first->len, k = P->i + 1;
    while (is_op(&P->t[k], ".") && P->t[k + 1].t == JT_NAME) {
        len += 1 + P->t[k + 1].len;
        k += 2;
    }
    if (k == P->i + 1) {
        P->i++;
        return first->s;
    }
    char *name = ja_alloc(P->a, P->e, len + 1);
    size_t m = 0;
    for (size_t j = P->i; j < k; j++) {
        const char *piece = P->t[j].t == JT_NAME ? P->t[j].s : ".";
        size_t pl = strlen(piece);
        memcpy(name + m, piece, pl);
        m += pl;
    }
    name[m] = 0;
    P->i = k;
    return name;
}

static jnode *parse_filters_tests(parser *P, jnode *x) {
    for (;;) {
        const jtok *t = cur(P);
        if (is_op(t, "|")) {
            P->i++;
            const jtok *nm = cur(P);
            if (nm->t != JT_NAME) jx_fail(P->e, t->line, "expected a filter name after '|', found %s", tok_desc(nm));
            jnode *f = node(P, N_FILTER, t->line);
            f->name = dotted_name(P);
            f->fn = jb_filter_index(f->name); /* -1: refused when evaluated, as Jinja2 does inside if blocks */
            f->a = x;
            if (is_op(cur(P), "(")) {
                P->i++;
                parse_args(P, f);
            }
            x = grown(P, f);
        } else if (is_name(t, "is")) {
            P->i++;
            jnode *f = node(P, N_TEST, t->line);
            if (is_name(cur(P), "not")) {
                f->op = 1;
                P->i++;
            }
            const jtok *nm = cur(P);
            if (nm->t != JT_NAME) jx_fail(P->e, t->line, "expected a test name after 'is', found %s", tok_desc(nm));
            f->name = dotted_name(P);
            f->fn = jb_test_index(f->name);
            f->a = x;
            const jtok *nx = cur(P);
            if (is_op(nx, "(")) {
                P->i++;
                parse_args(P, f);
            } else if ((nx->t == JT_NAME || nx->t == JT_STRING || nx->t == JT_INT || nx->t == JT_FLOAT || is_op(nx, "[") ||
                        is_op(nx, "{")) && !is_name(nx, "else") && !is_name(nx, "or") && !is_name(nx, "and")) {
                if (is_name(nx, "is")) jx_fail(P->e, nx->line, "cannot chain tests with 'is'");
                f->items = ja_alloc(P->a, P->e, sizeof(jnode *));
                enter(P);
                f->items[0] = parse_postfix(P, parse_primary(P));
                P->depth--;
                f->n = 1;
            }
            x = grown(P, f);
        } else if (is_op(t, "(")) {
            P->i++;
            jnode *c = node(P, N_CALL, t->line);
            c->a = x;
            parse_args(P, c);
            x = grown(P, c);
        } else return x;
    }
}

static jnode *parse_list_or_dict(parser *P, bool dict, int line) {
    jnode *x = node(P, dict ? N_DICT : N_LIST, line);
    nlist l = {0};
    const char *close = dict ? "}" : "]";
    while (!is_op(cur(P), close)) {
        if (l.n) expect_op(P, ",");
        if (is_op(cur(P), close)) break;
        nl_push(P, &l, parse_expr(P, true));
        if (dict) {
            expect_op(P, ":");
            nl_push(P, &l, parse_expr(P, true));
        }
    }
    P->i++;
    x->items = l.v;
    x->n = l.n;
    return grown(P, x);
}

static jnode *parse_primary(parser *P) {
    const jtok *t = cur(P);
    jnode *x;
    if (t->t == JT_NAME) {
        x = node(P, N_LIT, t->line);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) x->lit = jv_bool(true);
        else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) x->lit = jv_bool(false);
        else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) x->lit = jv_none();
        else {
            x->kind = N_NAME;
            x->name = t->s;
        }
        P->i++;
    } else if (t->t == JT_STRING) { /* adjacent literals concatenate */
        size_t len = 0, k = P->i;
        for (; P->t[k].t == JT_STRING; k++) len += P->t[k].len;
        char *q = ja_alloc(P->a, P->e, len + 1);
        size_t m = 0;
        for (; P->i < k; P->i++) {
            memcpy(q + m, P->t[P->i].s, P->t[P->i].len);
            m += P->t[P->i].len;
        }
        q[m] = 0;
        x = node(P, N_LIT, t->line);
        x->str = ja_alloc(P->a, P->e, sizeof(jstr));
        *x->str = (jstr){.p = q, .len = m};
        x->lit = jv_strv(x->str);
    } else if (t->t == JT_INT || t->t == JT_FLOAT) {
        x = node(P, N_LIT, t->line);
        x->lit = t->t == JT_INT ? jv_int(t->i) : jv_float(t->f);
        P->i++;
    } else if (is_op(t, "(")) {
        P->i++;
        if (is_op(cur(P), ")")) { /* the empty tuple */
            P->i++;
            return node(P, N_TUPLE, t->line);
        }
        x = parse_tuple(P, true);
        expect_op(P, ")");
    } else if (is_op(t, "[") || is_op(t, "{")) {
        P->i++;
        x = parse_list_or_dict(P, is_op(t, "{"), t->line);
    } else jx_fail(P->e, t->line, "unexpected %s in an expression", tok_desc(t));
    return x;
}

static jnode *parse_unary(parser *P, bool with_filter) {
    enter(P);
    const jtok *t = cur(P);
    jnode *x;
    if (is_op(t, "-") || is_op(t, "+")) {
        P->i++;
        x = node(P, is_op(t, "-") ? N_NEG : N_POS, t->line);
        x->a = parse_unary(P, false);
        grown(P, x);
    } else x = parse_primary(P);
    x = parse_postfix(P, x);
    if (with_filter) x = parse_filters_tests(P, x);
    P->depth--;
    return x;
}

static jnode *binop(parser *P, int op, jnode *a, jnode *b, int line) {
    jnode *x = node(P, N_BINOP, line);
    x->op = (uint8_t)op;
    x->a = a;
    x->b = b;
    return grown(P, x);
}

static jnode *parse_pow(parser *P) {
    jnode *x = parse_unary(P, true);
    while (is_op(cur(P), "**")) {
        int line = cur(P)->line;
        P->i++;
        x = binop(P, 'p', x, parse_unary(P, true), line);
    }
    return x;
}

static jnode *parse_math2(parser *P) {
    jnode *x = parse_pow(P);
    for (;;) {
        const jtok *t = cur(P);
        int op = is_op(t, "*") ? '*' : is_op(t, "/") ? '/' : is_op(t, "//") ? 'f' : is_op(t, "%") ? '%' : 0;
        if (!op) return x;
        P->i++;
        x = binop(P, op, x, parse_pow(P), t->line);
    }
}

static jnode *parse_concat(parser *P) {
    jnode *x = parse_math2(P);
    while (is_op(cur(P), "~")) {
        int line = cur(P)->line;
        P->i++;
        x = binop(P, '~', x, parse_math2(P), line);
    }
    return x;
}

static jnode *parse_math1(parser *P) {
    jnode *x = parse_concat(P);
    for (;;) {
        const jtok *t = cur(P);
        int op = is_op(t, "+") ? '+' : is_op(t, "-") ? '-' : 0;
        if (!op) return x;
        P->i++;
        x = binop(P, op, x, parse_concat(P), t->line);
    }
}

static int compare_op(parser *P) {
    const jtok *t = cur(P);
    static const char *ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const char codes[] = "en<l>g";
    for (int k = 0; k < 6; k++)
        if (is_op(t, ops[k])) {
            P->i++;
            return codes[k];
        }
    if (is_name(t, "in")) {
        P->i++;
        return 'i';
    }
    if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
        P->i += 2;
        return 'x';
    }
    return 0;
}

static jnode *parse_compare(parser *P) {
    int line = cur(P)->line;
    jnode *x = parse_math1(P);
    int op = compare_op(P);
    if (!op) return x;
    jnode *c = node(P, N_COMPARE, line);
    c->a = x;
    nlist l = {0};
    uint8_t ops[64];
    for (; op; op = compare_op(P)) {
        if (l.n == sizeof ops) jx_fail(P->e, line, "too many chained comparisons");
        ops[l.n] = (uint8_t)op;
        nl_push(P, &l, parse_math1(P));
    }
    c->items = l.v;
    c->n = l.n;
    c->ops = ja_alloc(P->a, P->e, l.n);
    memcpy(c->ops, ops, l.n);
    return grown(P, c);
}

static jnode *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        enter(P);
        jnode *x = node(P, N_NOT, cur(P)->line);
        P->i++;
        x->a = parse_not(P);
        P->depth--;
        return grown(P, x);
    }
    return parse_compare(P);
}

static jnode *parse_and(parser *P) {
    jnode *x = parse_not(P);
    while (is_name(cur(P), "and")) {
        jnode *y = node(P, N_AND, cur(P)->line);
        P->i++;
        y->a = x;
        y->b = parse_not(P);
        x = grown(P, y);
    }
    return x;
}

static jnode *parse_or(parser *P) {
    jnode *x = parse_and(P);
    while (is_name(cur(P), "or")) {
        jnode *y = node(P, N_OR, cur(P)->line);
        P->i++;
        y->a = x;
        y->b = parse_and(P);
        x = grown(P, y);
    }
    return x;
}

static jnode *parse_expr(parser *P, bool with_cond) {
    enter(P);
    jnode *x = parse_or(P);
    while (with_cond && is_name(cur(P), "if")) {
        jnode *c = node(P, N_COND, cur(P)->line);
        P->i++;
        c->a = parse_or(P);
        c->b = x;
        if (is_name(cur(P), "else")) {
            P->i++;
            c->c = parse_expr(P, true);
        }
        x = grown(P, c);
    }
    P->depth--;
    return x;
}

/* expr or expr, expr, ... (a tuple) */
static jnode *parse_tuple(parser *P, bool with_cond) {
    int line = cur(P)->line;
    jnode *x = parse_expr(P, with_cond);
    if (!is_op(cur(P), ",")) return x;
    nlist l = {0};
    nl_push(P, &l, x);
    while (is_op(cur(P), ",")) {
        P->i++;
        const jtok *t = cur(P);
        if (t->t == JT_BLOCK_END || t->t == JT_VAR_END || is_op(t, ")") || is_name(t, "if")) break;
        nl_push(P, &l, parse_expr(P, with_cond));
    }
    jnode *tu = node(P, N_TUPLE, line);
    tu->items = l.v;
    tu->n = l.n;
    return grown(P, tu);
}

/* ---------------------------------------------------------------- statements */
static void end_block(parser *P) { expect_type(P, JT_BLOCK_END, "'%}'"); }

static jnode *parse_if(parser *P, int line) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    jnode *x = node(P, N_IF, line);
    x->a = parse_tuple(P, true);
    end_block(P);
    const char *which;
    x->b = parse_body(P, ends, &which);
    if (!strcmp(which, "elif")) {
        x->c = parse_if(P, cur(P)->line);
        return x;
    }
    if (!strcmp(which, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        end_block(P);
        x->c = parse_body(P, ends2, &which);
    }
    end_block(P);
    return x;
}

static jnode *parse_for(parser *P, int line) {
    static const char *const ends[] = {"else", "endfor", NULL};
    jnode *x = node(P, N_FOR, line);
    bool paren = is_op(cur(P), "(");
    if (paren) P->i++;
    const char *names[16];
    size_t nn = 0;
    do {
        if (nn) P->i++;
        if (cur(P)->t != JT_NAME) jx_fail(P->e, cur(P)->line, "expected a loop variable, found %s", tok_desc(cur(P)));
        if (nn == 16) jx_fail(P->e, line, "too many loop variables");
        names[nn++] = cur(P)->s;
        P->i++;
    } while (is_op(cur(P), ","));
    if (paren) expect_op(P, ")");
    if (!is_name(cur(P), "in")) jx_fail(P->e, cur(P)->line, "expected 'in' in a for loop, found %s", tok_desc(cur(P)));
    P->i++;
    x->names = ja_alloc(P->a, P->e, nn * sizeof(char *));
    memcpy(x->names, names, nn * sizeof(char *));
    x->nnames = nn;
    x->a = parse_tuple(P, false);
    if (is_name(cur(P), "if")) {
        P->i++;
        x->d = parse_expr(P, true);
    }
    if (is_name(cur(P), "recursive")) jx_fail(P->e, cur(P)->line, "unsupported construct: recursive for loop");
    end_block(P);
    const char *which;
    P->loops++;
    x->b = parse_body(P, ends, &which);
    P->loops--;
    if (!strcmp(which, "else")) {
        static const char *const ends2[] = {"endfor", NULL};
        end_block(P);
        x->c = parse_body(P, ends2, &which);
    }
    end_block(P);
    return x;
}

static jnode *parse_set(parser *P, int line) {
    const jtok *t = cur(P);
    if (t->t != JT_NAME) jx_fail(P->e, line, "expected a variable name after 'set', found %s", tok_desc(t));
    jnode *x = node(P, N_SET, line);
    x->name = t->s;
    P->i++;
    if (is_op(cur(P), ".")) {
        P->i++;
        if (cur(P)->t != JT_NAME) jx_fail(P->e, line, "expected an attribute name, found %s", tok_desc(cur(P)));
        x->kind = N_SET_ATTR;
        x->names = ja_alloc(P->a, P->e, sizeof(char *));
        x->names[0] = cur(P)->s;
        x->nnames = 1;
        P->i++;
    }
    if (is_op(cur(P), ",")) jx_fail(P->e, line, "unsupported construct: set with several targets");
    if (is_op(cur(P), "=")) {
        P->i++;
        x->a = parse_tuple(P, true);
        end_block(P);
        return x;
    }
    if (x->kind == N_SET_ATTR) jx_fail(P->e, line, "expected '=' after the set target");
    if (is_op(cur(P), "|")) jx_fail(P->e, line, "unsupported construct: filtered set block");
    static const char *const ends[] = {"endset", NULL};
    const char *which;
    end_block(P);
    x->kind = N_SET_BLOCK;
    x->b = parse_body(P, ends, &which);
    end_block(P);
    return x;
}

static jnode *parse_statement(parser *P) {
    int line = cur(P)->line;
    P->i++; /* {% */
    const jtok *t = cur(P);
    if (t->t != JT_NAME) jx_fail(P->e, line, "expected a statement name after '{%%', found %s", tok_desc(t));
    P->i++;
    if (!strcmp(t->s, "if")) return parse_if(P, line);
    if (!strcmp(t->s, "for")) return parse_for(P, line);
    if (!strcmp(t->s, "set")) return parse_set(P, line);
    if (!strcmp(t->s, "break") || !strcmp(t->s, "continue")) {
        if (P->loops == 0) jx_fail(P->e, line, "'%s' outside of a for loop", t->s);
        end_block(P);
        return node(P, t->s[0] == 'b' ? N_BREAK : N_CONTINUE, line);
    }
    if (!strcmp(t->s, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        const char *which;
        end_block(P);
        jnode *body = parse_body(P, ends, &which);
        end_block(P);
        return body;
    }
    static const char *const known[] = {"macro", "call", "filter", "include", "import", "from", "extends", "block",
                                        "with", "autoescape", "raw", "do", "trans", NULL};
    for (int k = 0; known[k]; k++)
        if (!strcmp(t->s, known[k])) jx_fail(P->e, line, "unsupported statement '%s'", t->s);
    jx_fail(P->e, line, "unknown statement '%s'", t->s);
}

/* statements until `{% <one of ends> ...` (left at the name, *which set) or the end (ends == NULL) */
static jnode *parse_body(parser *P, const char *const *ends, const char **which) {
    enter(P);
    jnode *blk = node(P, N_BLOCK, cur(P)->line);
    nlist l = {0};
    for (;;) {
        const jtok *t = cur(P);
        if (t->t == JT_EOF) {
            if (ends) {
                size_t k = 0;
                while (ends[k + 1]) k++;
                jx_fail(P->e, t->line, "unexpected end of template: missing '{%% %s %%}'", ends[k]);
            }
            break;
        }
        if (t->t == JT_TEXT) {
            jnode *x = node(P, N_TEXT, t->line);
            x->str = ja_alloc(P->a, P->e, sizeof(jstr));
            *x->str = (jstr){.p = t->s, .len = t->len};
            nl_push(P, &l, x);
            P->i++;
        } else if (t->t == JT_VAR_BEGIN) {
            jnode *x = node(P, N_OUTPUT, t->line);
            P->i++;
            x->a = parse_tuple(P, true);
            expect_type(P, JT_VAR_END, "'}}'");
            nl_push(P, &l, x);
        } else if (t->t == JT_BLOCK_BEGIN) {
            const jtok *nm = peek(P, 1);
            bool is_end = false;
            for (size_t k = 0; ends && ends[k] && !is_end; k++) is_end = nm->t == JT_NAME && !strcmp(nm->s, ends[k]);
            if (is_end) {
                *which = nm->s;
                P->i += 2;
                break;
            }
            if (nm->t == JT_NAME && (!strncmp(nm->s, "end", 3) || !strcmp(nm->s, "elif") || !strcmp(nm->s, "else")))
                jx_fail(P->e, nm->line, "unexpected '%s'", nm->s);
            nl_push(P, &l, parse_statement(P));
        } else jx_fail(P->e, t->line, "unexpected %s", tok_desc(t));
    }
    blk->items = l.v;
    blk->n = l.n;
    P->depth--;
    return blk;
}

/* Refuses an unknown filter or test where Jinja2 does at compile time: everywhere except in an if statement's
 * test and branches and in a conditional expression (its "soft" frames; a for body or a set block nested in
 * them is hard again). In soft places it fails when evaluated, as in Jinja2. */
static void check_names(parser *P, const jnode *x, bool soft) {
    if (!x) return;
    if ((x->kind == N_FILTER || x->kind == N_TEST) && x->fn < 0 && !soft)
        jx_fail(P->e, x->line, "unsupported %s '%s'", x->kind == N_FILTER ? "filter" : "test", x->name);
    bool inner = x->kind == N_IF || x->kind == N_COND ? true : soft;
    if (x->kind == N_FOR) {
        check_names(P, x->a, soft);
        check_names(P, x->b, false);
        check_names(P, x->c, false);
        check_names(P, x->d, false);
        return;
    }
    check_names(P, x->a, inner);
    check_names(P, x->b, x->kind == N_SET_BLOCK ? false : inner);
    check_names(P, x->c, inner);
    check_names(P, x->d, inner);
    for (size_t k = 0; k < x->n; k++) check_names(P, x->items[k], inner);
    for (size_t k = 0; k < x->nkw; k++) check_names(P, x->kwv[k], inner);
}

jnode *jparse(jarena *a, jerr *e, const jtok *toks, size_t ntoks) {
    parser P = {.a = a, .e = e, .t = toks, .n = ntoks};
    const char *which = NULL;
    jnode *root = parse_body(&P, NULL, &which);
    check_names(&P, root, false);
    return root;
}
