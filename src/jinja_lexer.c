/* jinja_lexer.c — template source -> tokens, with Jinja2's whitespace rules under transformers'
 * environment (trim_blocks, lstrip_blocks, keep_trailing_newline off):
 *   - newlines (\r\n, \r, \n) are normalized to \n and one trailing newline of the template is dropped;
 *   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag, `-%}`, `-}}`, `-#}` all whitespace after;
 *   - lstrip_blocks: spaces and tabs between the start of a line and a `{%` or `{#` are removed (not
 *     before `{{`, not with `{%+`);
 *   - trim_blocks: the first newline after a `%}` or `#}` is removed (not after `+%}`).
 * Inside a tag, an end marker counts only outside brackets (`{{ {'a': {'b': 1}} }}` is one expression).
 * String literals take Python's escapes (\n, \t, \xNN, \uNNNN, \UNNNNNNNN, octal; \N{...} is refused). */
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

typedef struct {
    jarena *a;
    jerr *e;
    const char *s;
    size_t n, i;
    int line;
    jtok *t;
    size_t nt, cap;
    int depth; /* open brackets inside the current tag */
} lexer;

static jtok *push(lexer *L, jtoktype type) {
    if (L->nt == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *t = ja_alloc(L->a, L->e, cap * sizeof(jtok));
        if (L->nt) memcpy(t, L->t, L->nt * sizeof(jtok));
        L->t = t;
        L->cap = cap;
    }
    jtok *t = &L->t[L->nt++];
    memset(t, 0, sizeof *t);
    t->t = (uint8_t)type;
    t->line = L->line;
    return t;
}

static char *dup_text(lexer *L, const char *p, size_t n) {
    char *q = ja_alloc(L->a, L->e, n + 1);
    if (n) memcpy(q, p, n);
    q[n] = 0;
    return q;
}

static void count_lines(lexer *L, size_t from, size_t to) {
    for (size_t k = from; k < to; k++) L->line += L->s[k] == '\n';
}

/* start of the last code point before `end` */
static size_t u8_prev(const char *s, size_t start, size_t end) {
    size_t k = end - 1;
    while (k > start && end - k < 4 && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
    return k;
}

static size_t rstrip_ws(const char *s, size_t start, size_t end) {
    while (end > start) {
        size_t k = u8_prev(s, start, end);
        uint32_t cp;
        if (u8_next(s, end, k, &cp) != end || !py_isspace(cp)) break;
        end = k;
    }
    return end;
}

static size_t lstrip_ws(const char *s, size_t i, size_t n) {
    while (i < n) {
        uint32_t cp;
        size_t j = u8_next(s, n, i, &cp);
        if (!py_isspace(cp)) break;
        i = j;
    }
    return i;
}

/* text before a tag at `tag` (data = s[i, tag)), with the whitespace rules applied; returns its end */
static size_t data_end(lexer *L, size_t tag) {
    char kind = L->s[tag + 1], mod = tag + 2 < L->n ? L->s[tag + 2] : 0;
    if (mod == '-') return rstrip_ws(L->s, L->i, tag);
    if ((kind == '%' || kind == '#') && mod != '+') {
        size_t lpos = tag;
        while (lpos > L->i && L->s[lpos - 1] != '\n') lpos--;
        bool line_start = lpos > L->i || L->i == 0 || L->s[L->i - 1] == '\n';
        if (line_start && lpos < tag && rstrip_ws(L->s, lpos, tag) == lpos) return lpos;
    }
    return tag;
}

static size_t find_tag(const lexer *L) {
    for (size_t k = L->i; k + 1 < L->n; k++)
        if (L->s[k] == '{' && (L->s[k + 1] == '{' || L->s[k + 1] == '%' || L->s[k + 1] == '#')) return k;
    return L->n;
}

/* after a tag's end marker at L->i: `-` strips whitespace, a block's end drops one newline */
static void after_tag(lexer *L, char mod, bool block) {
    if (mod == '-') {
        size_t j = lstrip_ws(L->s, L->i, L->n);
        count_lines(L, L->i, j);
        L->i = j;
    } else if (block && mod != '+' && L->i < L->n && L->s[L->i] == '\n') {
        L->line++;
        L->i++;
    }
}

static void lex_comment(lexer *L) {
    int line = L->line;
    const char *end = NULL;
    for (size_t k = L->i + 2; k + 1 < L->n; k++)
        if (L->s[k] == '#' && L->s[k + 1] == '}') {
            end = L->s + k;
            break;
        }
    if (!end) jx_fail(L->e, line, "unclosed comment");
    size_t k = (size_t)(end - L->s);
    char mod = k > L->i + 2 && (L->s[k - 1] == '-' || L->s[k - 1] == '+') ? L->s[k - 1] : 0;
    count_lines(L, L->i, k + 2);
    L->i = k + 2;
    after_tag(L, mod, true);
}

static void put_utf8(char *q, size_t *m, uint32_t cp) {
    if (cp < 0x80) q[(*m)++] = (char)cp;
    else if (cp < 0x800) {
        q[(*m)++] = (char)(0xc0 | (cp >> 6));
        q[(*m)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        q[(*m)++] = (char)(0xe0 | (cp >> 12));
        q[(*m)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        q[(*m)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        q[(*m)++] = (char)(0xf0 | (cp >> 18));
        q[(*m)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        q[(*m)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        q[(*m)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* one escape after the backslash at p[k]; returns the index after it */
static size_t unescape_one(lexer *L, const char *p, size_t k, size_t end, char *q, size_t *m) {
    char ch = p[k + 1];
    static const char simple_in[] = "\\'\"abfnrtv", simple_out[] = "\\'\"\a\b\f\n\r\t\v";
    const char *sp = strchr(simple_in, ch);
    if (ch && sp) {
        q[(*m)++] = simple_out[sp - simple_in];
        return k + 2;
    }
    if (ch == '\n') return k + 2;
    if (ch >= '0' && ch <= '7') {
        uint32_t v = 0;
        size_t j = k + 1;
        for (int d = 0; d < 3 && j < end && p[j] >= '0' && p[j] <= '7'; d++, j++) v = v * 8 + (uint32_t)(p[j] - '0');
        put_utf8(q, m, v);
        return j;
    }
    int nd = ch == 'x' ? 2 : ch == 'u' ? 4 : ch == 'U' ? 8 : 0;
    if (nd) {
        uint32_t v = 0;
        for (int d = 0; d < nd; d++) {
            int h = k + 2 + (size_t)d < end ? hexval(p[k + 2 + d]) : -1;
            if (h < 0) jx_fail(L->e, L->line, "truncated \\%c escape in a string literal", ch);
            v = v * 16 + (uint32_t)h;
        }
        if (v > 0x10ffff) jx_fail(L->e, L->line, "escape \\U%08x is not a Unicode code point", v);
        put_utf8(q, m, v);
        return k + 2 + (size_t)nd;
    }
    if (ch == 'N') jx_fail(L->e, L->line, "unsupported escape \\N{...} in a string literal");
    q[(*m)++] = '\\'; /* an unknown escape keeps its backslash, as in Python */
    return k + 1;
}

static void lex_string(lexer *L) {
    char quote = L->s[L->i];
    size_t k = L->i + 1;
    while (k < L->n && L->s[k] != quote) k += L->s[k] == '\\' && k + 1 < L->n ? 2 : 1;
    if (k >= L->n) jx_fail(L->e, L->line, "unterminated string literal");
    jtok *t = push(L, JT_STRING);
    char *q = ja_alloc(L->a, L->e, k - L->i + 1);
    size_t m = 0;
    for (size_t j = L->i + 1; j < k;) {
        if (L->s[j] == '\\') j = unescape_one(L, L->s, j, k, q, &m);
        else q[m++] = L->s[j++];
    }
    q[m] = 0;
    t->s = q;
    t->len = m;
    count_lines(L, L->i, k + 1);
    L->i = k + 1;
}

static void lex_number(lexer *L) {
    const char *s = L->s;
    size_t k = L->i;
    bool is_float = false;
    char buf[64];
    size_t m = 0;
    while (k < L->n && ((s[k] >= '0' && s[k] <= '9') || s[k] == '_')) {
        if (s[k] != '_' && m < sizeof buf - 1) buf[m++] = s[k];
        k++;
    }
    if (k + 1 < L->n && s[k] == '.' && s[k + 1] >= '0' && s[k + 1] <= '9') {
        is_float = true;
        buf[m < sizeof buf - 1 ? m++ : m] = '.';
        for (k++; k < L->n && ((s[k] >= '0' && s[k] <= '9') || s[k] == '_'); k++)
            if (s[k] != '_' && m < sizeof buf - 1) buf[m++] = s[k];
    }
    if (k < L->n && (s[k] == 'e' || s[k] == 'E')) {
        size_t j = k + 1;
        if (j < L->n && (s[j] == '+' || s[j] == '-')) j++;
        if (j < L->n && s[j] >= '0' && s[j] <= '9') {
            is_float = true;
            for (; k < j && m < sizeof buf - 1; k++) buf[m++] = s[k];
            for (; k < L->n && s[k] >= '0' && s[k] <= '9'; k++)
                if (m < sizeof buf - 1) buf[m++] = s[k];
        }
    }
    buf[m] = 0;
    jtok *t = push(L, is_float ? JT_FLOAT : JT_INT);
    if (is_float) t->f = strtod(buf, NULL);
    else {
        char *endp;
        unsigned long long v = strtoull(buf, &endp, 10);
        if (m > 18 && (m > 19 || v > (unsigned long long)INT64_MAX))
            jx_fail(L->e, L->line, "integer literal %s is too large (64-bit integers only)", buf);
        t->i = (int64_t)v;
    }
    L->i = k;
}

static bool lex_operator(lexer *L) {
    static const char *ops2[] = {"//", "**", "==", "!=", "<=", ">="};
    const char *s = L->s + L->i;
    for (size_t k = 0; k < sizeof ops2 / sizeof *ops2; k++)
        if (L->i + 1 < L->n && s[0] == ops2[k][0] && s[1] == ops2[k][1]) {
            jtok *t = push(L, JT_OP);
            memcpy(t->op, ops2[k], 2);
            L->i += 2;
            return true;
        }
    if (!strchr("+-*/%~<>=()[]{},.:|", s[0]) || s[0] == 0) return false;
    if (s[0] == '(' || s[0] == '[' || s[0] == '{') L->depth++;
    if ((s[0] == ')' || s[0] == ']' || s[0] == '}') && L->depth > 0) L->depth--;
    jtok *t = push(L, JT_OP);
    t->op[0] = s[0];
    L->i++;
    return true;
}

/* the end marker of the current tag at L->i (depth 0 only): returns its modifier ('-', '+' or 1) or 0 */
static char at_tag_end(const lexer *L, bool block) {
    const char *s = L->s + L->i;
    size_t left = L->n - L->i;
    char close = block ? '%' : '}';
    if (L->depth > 0) return 0;
    if (left >= 2 && s[0] == close && s[1] == '}') return 1;
    if (left >= 3 && (s[0] == '-' || (block && s[0] == '+')) && s[1] == close && s[2] == '}') return s[0];
    return 0;
}

static void lex_tag(lexer *L, bool block) {
    int line = L->line;
    push(L, block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN);
    L->i += 2;
    if (L->i < L->n && (L->s[L->i] == '-' || L->s[L->i] == '+')) L->i++;
    L->depth = 0;
    for (;;) {
        size_t ws = L->i;
        L->i = lstrip_ws(L->s, L->i, L->n);
        count_lines(L, ws, L->i);
        if (L->i >= L->n) jx_fail(L->e, line, "unclosed %s tag", block ? "{%" : "{{");
        char mod = at_tag_end(L, block);
        if (mod) {
            push(L, block ? JT_BLOCK_END : JT_VAR_END);
            L->i += mod == 1 ? 2 : 3;
            after_tag(L, mod, block);
            return;
        }
        char ch = L->s[L->i];
        if (ch == '\'' || ch == '"') lex_string(L);
        else if (ch >= '0' && ch <= '9') lex_number(L);
        else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_') {
            size_t k = L->i;
            while (k < L->n && ((L->s[k] >= 'a' && L->s[k] <= 'z') || (L->s[k] >= 'A' && L->s[k] <= 'Z') ||
                                (L->s[k] >= '0' && L->s[k] <= '9') || L->s[k] == '_'))
                k++;
            jtok *t = push(L, JT_NAME);
            t->s = dup_text(L, L->s + L->i, k - L->i);
            t->len = k - L->i;
            L->i = k;
        } else if (!lex_operator(L)) {
            jx_fail(L->e, L->line, "unexpected character '%c' (0x%02x) in a tag", ch >= 0x20 && ch < 0x7f ? ch : '?',
                    (unsigned char)ch);
        }
    }
}

/* newline normalization and the dropped trailing newline */
static void normalize(lexer *L, const char *src, size_t len) {
    char *q = ja_alloc(L->a, L->e, len + 1);
    size_t m = 0;
    for (size_t k = 0; k < len; k++) {
        if (src[k] == '\r') {
            q[m++] = '\n';
            if (k + 1 < len && src[k + 1] == '\n') k++;
        } else q[m++] = src[k];
    }
    if (m > 0 && q[m - 1] == '\n') m--;
    q[m] = 0;
    L->s = q;
    L->n = m;
}

void jlex(jarena *a, jerr *e, const char *src, size_t len, jtok **toks, size_t *ntoks) {
    lexer L = {.a = a, .e = e, .line = 1};
    normalize(&L, src, len);
    while (L.i < L.n) {
        size_t tag = find_tag(&L);
        size_t end = tag < L.n ? data_end(&L, tag) : L.n;
        if (end > L.i) {
            jtok *t = push(&L, JT_TEXT);
            t->s = dup_text(&L, L.s + L.i, end - L.i);
            t->len = end - L.i;
        }
        count_lines(&L, L.i, tag);
        L.i = tag;
        if (tag >= L.n) break;
        if (L.s[tag + 1] == '#') lex_comment(&L);
        else lex_tag(&L, L.s[tag + 1] == '%');
    }
    push(&L, JT_EOF);
    *toks = L.t;
    *ntoks = L.nt;
}
