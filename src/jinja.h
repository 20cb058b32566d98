/* jinja.h — internals of the chat-template interpreter (include/iqtrain/chat_template.h is the contract).
 *
 * Layout: jinja_value.c (arena, values, strings with provenance, str/repr/tojson), jinja_lexer.c (source ->
 * tokens with Jinja2's whitespace control), jinja_parser.c (tokens -> AST), jinja_eval.c (statements and
 * expressions), jinja_builtins.c (filters, tests, methods, globals), chat_template.c (the public API).
 *
 * Errors inside the interpreter do not return: jx_fail() records the message and longjmp()s to the one
 * setjmp in the public entry points (parse, render), which free the arenas and return IQ_EDATA. Every
 * allocation of a parse or a render comes from an arena that is freed as a whole, so a longjmp leaks
 * nothing. */
#ifndef IQTRAIN_JINJA_H
#define IQTRAIN_JINJA_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/chat_template.h"
#include "iqtrain/util.h"

/* ---------------------------------------------------------------- arena */
typedef struct jblock jblock;
typedef struct {
    jblock *head;
    size_t total, limit; /* bytes obtained from malloc so far, and the bound on them */
} jarena;

/* ---------------------------------------------------------------- error context */
typedef struct {
    jmp_buf jmp;
    const char *name; /* template name for messages */
    char msg[512];
} jerr;

_Noreturn void jx_fail(jerr *e, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *ja_alloc(jarena *a, jerr *e, size_t n);
void ja_free(jarena *a);

/* ---------------------------------------------------------------- values */
typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC } jtype;

/* A byte range [dst, dst+len) of a string that is a verbatim copy of bytes [src, src+len) of the content of
 * message `msg` (provenance, see chat_template.h). len may be 0: a mark of where an empty piece went. */
typedef struct {
    uint32_t msg;
    size_t src, dst, len;
} jseg;

typedef struct {
    const char *p;
    size_t len;
    jseg *seg; /* sorted by dst, disjoint */
    size_t nseg;
} jstr;

typedef struct jlist jlist;
typedef struct jdict jdict;

typedef struct {
    uint8_t t;    /* jtype */
    uint8_t fn;   /* JV_FUNC: which global; JV_LIST: 1 for a tuple (printed with parentheses) */
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        jlist *l;
        jdict *d;
        const char *undef_name; /* JV_UNDEF: the name that was looked up (NULL if none) */
    } u;
} jv;

struct jlist {
    jv *v;
    size_t n;
};

struct jdict {
    jstr **k;
    jv *v;
    size_t n, cap;
    bool is_namespace; /* attributes may be assigned ({% set ns.x = ... %}) */
};

/* ---------------------------------------------------------------- render context */
typedef struct jnode jnode;
typedef struct jframe jframe;

typedef struct {
    jerr *err;
    jarena arena;
    iq_chat_limits lim;
    uint64_t iterations, work;
    int64_t now;
    int ctl;          /* 0, JCTL_BREAK, JCTL_CONTINUE */
    iq_buf out;
    jseg *oseg;       /* provenance of the output */
    size_t noseg, capseg;
    size_t seg_floor; /* output segments below this index are never merged with new ones */
    jframe *globals;
} jctx;

enum { JCTL_BREAK = 1, JCTL_CONTINUE = 2 };

static inline jv jv_undef(const char *name) { jv v = {.t = JV_UNDEF}; v.u.undef_name = name; return v; }
static inline jv jv_none(void) { jv v = {.t = JV_NONE}; return v; }
static inline jv jv_bool(bool b) { jv v = {.t = JV_BOOL}; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.u.f = f; return v; }
static inline jv jv_strv(jstr *s) { jv v = {.t = JV_STR}; v.u.s = s; return v; }
static inline jv jv_listv(jlist *l) { jv v = {.t = JV_LIST}; v.u.l = l; return v; }
static inline jv jv_dictv(jdict *d) { jv v = {.t = JV_DICT}; v.u.d = d; return v; }

void *jc_alloc(jctx *c, size_t n);
/* counts n bytes of string work against the bound */
void jc_work(jctx *c, int line, uint64_t n);

jstr *js_new(jctx *c, const char *p, size_t len); /* copies */
jstr *js_lit(jctx *c, const char *p, size_t len); /* shares p (which outlives the render) */
jstr *js_sub(jctx *c, const jstr *s, size_t a, size_t b);    /* bytes [a, b), provenance kept */
jstr *js_cat(jctx *c, int line, const jstr *a, const jstr *b); /* provenance of both */
jv jv_str(jctx *c, const char *s);                             /* NUL-terminated, copied */
jlist *jl_new(jctx *c, size_t n);
jdict *jd_new(jctx *c, size_t cap);
void jd_set(jctx *c, jdict *d, jstr *k, jv v);
bool jd_get(const jdict *d, const char *k, size_t klen, jv *out);

const char *jv_type_name(jv v);
bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
/* A string builder in the arena (a longjmp out of a render leaks nothing). */
typedef struct {
    jctx *c;
    char *p;
    size_t len, cap;
} jsb;
void jsb_put(jsb *b, const void *p, size_t n);
void jsb_putc(jsb *b, char ch);
void jsb_printf(jsb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* short outputs (< 64 bytes) */
jstr *jsb_str(jsb *b);                                                                /* shares b's bytes */

/* Python str(v) / repr(v) / transformers' tojson(v, indent; indent < 0: none) appended to b (depth-bounded). */
void jv_to_str(jctx *c, int line, jsb *b, jv v);
void jv_repr(jctx *c, int line, jsb *b, jv v, int depth);
void jv_tojson(jctx *c, int line, jsb *b, jv v, int indent, bool sort_keys, int depth, int level);
/* str(v) as a string value; a string stays itself (provenance kept). */
jstr *jv_as_str(jctx *c, int line, jv v);

/* UTF-8 and Python's str.isspace */
size_t u8_next(const char *p, size_t n, size_t i, uint32_t *cp);
size_t u8_count(const char *p, size_t n);
size_t u8_offset(const char *p, size_t n, size_t k); /* byte offset of code point k (n if past the end) */
bool py_isspace(uint32_t cp);

/* ---------------------------------------------------------------- lexer */
typedef enum {
    JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP, JT_EOF
} jtoktype;

typedef struct {
    uint8_t t;
    char op[3];     /* JT_OP: "+", "//", "==", ... */
    int line;
    const char *s;  /* JT_TEXT, JT_NAME, JT_STRING: text (arena, NUL-terminated) */
    size_t len;
    int64_t i;
    double f;
} jtok;

/* Tokenizes `src` with trim_blocks and lstrip_blocks; tokens in the arena. */
void jlex(jarena *a, jerr *e, const char *src, size_t len, jtok **toks, size_t *ntoks);

/* ---------------------------------------------------------------- AST */
typedef enum {
    /* statements */
    N_BLOCK, N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_ATTR, N_SET_BLOCK, N_BREAK, N_CONTINUE,
    /* expressions */
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_GETATTR, N_GETITEM, N_SLICE, N_CALL, N_FILTER, N_TEST,
    N_NEG, N_POS, N_NOT, N_AND, N_OR, N_BINOP, N_COMPARE, N_COND
} jkind;

struct jnode {
    uint8_t kind;
    uint8_t op;   /* N_BINOP: '+', '-', '*', '/', 'f' (//), '%', 'p' (**), '~'; N_TEST: 1 if negated */
    int line;
    int depth;    /* height of the expression tree below (bounded: evaluation recurses over it) */
    int fn;       /* N_FILTER / N_TEST: index in the builtin table */
    jnode *a, *b, *c, *d;
    jnode **items; /* block body, call/filter arguments, list/tuple elements, dict k,v pairs, compare operands */
    size_t n;
    const char **kwn; /* keyword argument names */
    jnode **kwv;
    size_t nkw;
    const char *name;  /* N_NAME, N_GETATTR, N_SET*, N_FOR targets (comma-separated in names) */
    const char **names; /* N_FOR: loop targets */
    size_t nnames;
    uint8_t *ops;      /* N_COMPARE: one per operand: 'e' ==, 'n' !=, '<', 'l' <=, '>', 'g' >=, 'i' in, 'x' not in */
    jstr *str;         /* N_TEXT, N_LIT string */
    jv lit;            /* N_LIT */
};

/* Parses tokens into a N_BLOCK (arena). Unsupported constructs fail naming them. */
jnode *jparse(jarena *a, jerr *e, const jtok *toks, size_t ntoks);

/* ---------------------------------------------------------------- builtins */
typedef jv (*jbuiltin_fn)(jctx *c, const jnode *site, jv x, const jv *args, size_t nargs, const char *const *kwn,
                          const jv *kwv, size_t nkw);
/* Index of a filter/test by name, or -1. */
int jb_filter_index(const char *name);
int jb_test_index(const char *name);
jv jb_filter(jctx *c, const jnode *site, jv x, const jv *args, size_t nargs, const char *const *kwn, const jv *kwv,
             size_t nkw);
bool jb_test(jctx *c, const jnode *site, jv x, const jv *args, size_t nargs);
/* obj.name(args): returns true and sets *out when obj has such a method */
bool jb_method(jctx *c, const jnode *site, jv obj, const char *name, const jv *args, size_t nargs,
               const char *const *kwn, const jv *kwv, size_t nkw, jv *out);
enum { JF_NAMESPACE = 1, JF_RAISE, JF_RANGE, JF_STRFTIME, JF_DICT };
jv jb_call_global(jctx *c, const jnode *site, int fn, const jv *args, size_t nargs, const char *const *kwn,
                  const jv *kwv, size_t nkw);
/* Python-style binary operators and comparisons shared by the evaluator and the filters. */
jv jx_binop(jctx *c, int line, int op, jv a, jv b);
int jx_compare_lt(jctx *c, int line, jv a, jv b); /* 1 if a < b, 0 if not */
bool jx_contains(jctx *c, int line, jv container, jv item);
jv jx_getattr(jctx *c, int line, jv obj, const char *name);
jv jx_getitem(jctx *c, int line, jv obj, jv key);
jv jx_slice(jctx *c, int line, jv obj, jv start, jv stop, jv step); /* Python's obj[start:stop:step] */
/* the items of an iterable (list, tuple, dict keys, string characters; undefined is empty) */
jlist *jx_iter(jctx *c, int line, jv v);

/* ---------------------------------------------------------------- evaluation */
void jeval_template(jctx *c, const jnode *root);
jframe *jframe_new_globals(jctx *c);
void jframe_set(jctx *c, jframe *f, const char *name, jv v); /* name must outlive the render */

#endif
