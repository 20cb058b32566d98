/* test_tokenizer_corpus — iqtrain's ids equal the reference ids on every case of a hex corpus.
 * usage: test_tokenizer_corpus TOKENIZER CORPUS.hex EXPECTED.ids
 *        test_tokenizer_corpus --hf TOKENIZER CORPUS.hex EXPECTED.ids [--nfc EXPECTED.nfc] [--tolerate U+XXXX,...]
 *                              [--bench TEXTFILE]
 * Each corpus line is one case's bytes in hex; each EXPECTED line the ids separated by spaces.
 * Default (GPT-2, the Python oracle): iq_tok_encode equals the ids on every case; decode(encode(x)) == x;
 * a parallel encode of all cases joined equals the serial one.
 * --hf (tokenizer.json against the JavaScript port of transformers, encode(x, add_special_tokens=False)):
 * an EXPECTED line "SKIP" (invalid UTF-8) is not compared; iq_tok_encode_special equals the ids on every
 * case, and iq_tok_encode too on every case holding no added token's text (on the others they differ,
 * and must); decode of both is x, NFC-normalized when the tokenizer normalizes; with --nfc, iq_nfc(x)
 * equals the oracle's NFC. A mismatch on a case holding one of the --tolerate code points is counted and
 * listed but does not fail (differences of the JavaScript port from transformers, explained in
 * tests/tokenizer/README.md). --bench prints iq_tok_encode_special's MB/s on a text file (single thread).
 *        test_tokenizer_corpus --nfc-apply IN.hex OUT.hex   writes iq_nfc of each line (check_nfc.py) */
#include <stdlib.h>

#include "check.h"
#include "iqtrain/bench.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

static void unhex(const char *p, const char *e, iq_buf *out) {
    out->len = 0;
    for (const char *q = p; q + 1 < e; q += 2) {
        char b = (char)(hexval(q[0]) * 16 + hexval(q[1]));
        iq_buf_append(out, &b, 1);
    }
}

static void ids_text(const iq_ids *ids, iq_buf *out) {
    out->len = 0;
    for (size_t i = 0; i < ids->len; i++) iq_buf_printf(out, "%s%d", i ? " " : "", ids->v[i]);
    iq_buf_cstr(out);
}

static bool line_eq(const iq_buf *got, const char *e, size_t n) { return got->len == n && (n == 0 || memcmp(got->data, e, n) == 0); }

typedef struct {
    const char *p, *end;
} lines;

static bool next_line(lines *l, const char **s, size_t *n) {
    if (l->p >= l->end) return false;
    const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
    if (!nl) nl = l->end;
    *s = l->p;
    *n = (size_t)(nl - l->p);
    l->p = nl + 1;
    return true;
}

static int gpt2_mode(const iq_tokenizer *t, const char *hex, size_t hl, const char *exp, size_t el) {
    iq_buf text = {0}, dec = {0}, all = {0}, got = {0};
    iq_ids ids = {0};
    lines lh = {hex, hex + hl}, le = {exp, exp + el};
    const char *hp, *ep;
    size_t hn, en, cases = 0, mismatches = 0;
    while (next_line(&lh, &hp, &hn) && next_line(&le, &ep, &en)) {
        unhex(hp, hp + hn, &text);
        ids.len = 0;
        iq_tok_encode(t, text.data, text.len, &ids);
        ids_text(&ids, &got);
        bool same = line_eq(&got, ep, en);
        if (!same && ++mismatches <= 5)
            fprintf(stderr, "case %zu (line %zu): hex %.*s\n  expected: %.*s\n  got:      %s\n", cases, cases + 1,
                    (int)(hn > 200 ? 200 : hn), hp, (int)(en > 400 ? 400 : en), ep, got.len ? got.data : "");
        CHECK(same);
        dec.len = 0;
        CHECK(iq_tok_decode(t, ids.v, ids.len, &dec) == IQ_OK);
        CHECK(dec.len == text.len && (text.len == 0 || memcmp(dec.data, text.data, text.len) == 0));
        if (text.len) iq_buf_append(&all, text.data, text.len);
        iq_buf_append(&all, "\nx", 2);
        cases++;
    }
    CHECK_MSG(cases >= 5000, "only %zu cases", cases);
    fprintf(stderr, "%zu cases, %zu mismatches\n", cases, mismatches);
    /* the parallel encoder cuts only at certain piece boundaries */
    iq_ids serial = {0}, par = {0};
    iq_tok_encode(t, all.data, all.len, &serial);
    iq_tok_encode_parallel(t, all.data, all.len, 4, &par);
    CHECK(serial.len == par.len && memcmp(serial.v, par.v, serial.len * sizeof *serial.v) == 0);
    iq_ids_free(&serial);
    iq_ids_free(&par);
    iq_ids_free(&ids);
    iq_buf_free(&text);
    iq_buf_free(&dec);
    iq_buf_free(&all);
    iq_buf_free(&got);
    return 0;
}

// ----------------------------------------------------------------------------------------------------
// --hf

typedef struct {
    const iq_tokenizer *t;
    iq_buf *added; /* the texts of all added tokens */
    int n_added;
    uint32_t tolerate[16];
    int n_tolerate;
    size_t cases, skipped, with_added, mismatches, tolerated, nfc_cases, nfc_mismatches, nfc_tolerated;
} hf_run;

static bool holds_added(const hf_run *r, const iq_buf *x) {
    for (int k = 0; k < r->n_added; k++)
        if (x->len && memmem(x->data, x->len, r->added[k].data, r->added[k].len)) return true;
    return false;
}

static bool holds_tolerated(const hf_run *r, const iq_buf *x) {
    const uint8_t *s = (const uint8_t *)x->data;
    for (size_t i = 0; i < x->len;) {
        uint32_t cp;
        i += iq_utf8_decode(s + i, x->len - i, &cp);
        for (int k = 0; k < r->n_tolerate; k++)
            if (cp == r->tolerate[k]) return true;
    }
    return false;
}

/* A mismatch: tolerated (listed) when the case holds a tolerated code point, else a failure. */
static void mismatch(hf_run *r, const iq_buf *x, const char *what, size_t line, const char *exp, size_t en,
                     const char *got, size_t *fails, size_t *tols) {
    bool tol = holds_tolerated(r, x);
    if (tol) ++*tols;
    else ++*fails;
    if ((tol ? *tols : *fails) <= 8)
        fprintf(stderr, "%s %s mismatch at line %zu (%.*s...):\n  expected: %.*s\n  got:      %s\n",
                tol ? "tolerated" : "FAILING", what, line, (int)(x->len > 60 ? 60 : x->len), x->data,
                (int)(en > 300 ? 300 : en), exp, got);
}

static void hf_case(hf_run *r, const iq_buf *x, const char *ep, size_t en, size_t line) {
    iq_ids a = {0}, b = {0};
    iq_buf got = {0}, dec = {0}, want = {0};
    iq_tok_encode_special(r->t, x->data, x->len, &a);
    iq_tok_encode(r->t, x->data, x->len, &b);
    ids_text(&a, &got);
    if (!line_eq(&got, ep, en)) mismatch(r, x, "encode_special", line, ep, en, got.data, &r->mismatches, &r->tolerated);
    bool has = holds_added(r, x), same = a.len == b.len && memcmp(a.v, b.v, a.len * sizeof *a.v) == 0;
    r->with_added += has;
    /* without added-token text the two encodings agree; with it they differ exactly when a special one
     * occurs, so only check the direction that must hold */
    if (!has) CHECK_MSG(same, "line %zu: encode and encode_special differ on text without added tokens", line);
    if (r->t && iq_tok_nfc(r->t) && !iq_nfc_quick_check((const uint8_t *)x->data, x->len)) iq_nfc((const uint8_t *)x->data, x->len, &want);
    else iq_buf_append(&want, x->data, x->len);
    for (int k = 0; k < 2; k++) {
        const iq_ids *ids = k ? &b : &a;
        dec.len = 0;
        CHECK(iq_tok_decode(r->t, ids->v, ids->len, &dec) == IQ_OK);
        CHECK_MSG(dec.len == want.len && (want.len == 0 || memcmp(dec.data, want.data, want.len) == 0),
                  "line %zu: decode(encode%s(x)) != %sx", line, k ? "" : "_special", iq_tok_nfc(r->t) ? "NFC " : "");
    }
    iq_ids_free(&a);
    iq_ids_free(&b);
    iq_buf_free(&got);
    iq_buf_free(&dec);
    iq_buf_free(&want);
}

static void hf_nfc_case(hf_run *r, const iq_buf *x, const char *np, size_t nn, size_t line) {
    iq_buf got = {0}, hex = {0};
    iq_nfc((const uint8_t *)x->data, x->len, &got);
    for (size_t i = 0; i < got.len; i++) iq_buf_printf(&hex, "%02x", (uint8_t)got.data[i]);
    iq_buf_cstr(&hex);
    r->nfc_cases++;
    if (!line_eq(&hex, np, nn)) mismatch(r, x, "NFC", line, np, nn, hex.data, &r->nfc_mismatches, &r->nfc_tolerated);
    /* the quick check never calls non-NFC text NFC */
    if (iq_nfc_quick_check((const uint8_t *)x->data, x->len)) CHECK(got.len == x->len && memcmp(got.data, x->data, x->len) == 0);
    iq_buf_free(&got);
    iq_buf_free(&hex);
}

static void collect_added(hf_run *r) {
    int32_t V = iq_tok_vocab_size(r->t);
    for (int32_t id = 0; id < V; id++) {
        size_t l;
        const uint8_t *b = iq_tok_token_bytes(r->t, id, &l);
        if (!b || l > 200) continue;
        char tmp[201];
        memcpy(tmp, b, l);
        tmp[l] = 0;
        if (strlen(tmp) != l || iq_tok_special_id(r->t, tmp) != id) continue;
        r->added = realloc(r->added, (size_t)(r->n_added + 1) * sizeof *r->added);
        r->added[r->n_added] = (iq_buf){0};
        iq_buf_append(&r->added[r->n_added++], b, l);
    }
}

static void hf_bench(const iq_tokenizer *t, const char *path) {
    char *text;
    size_t len;
    if (iq_read_file(path, &text, &len)) {
        fprintf(stderr, "%s\n", iq_last_error());
        CHECK(0);
        return;
    }
    iq_ids ids = {0};
    iq_tok_encode_special(t, text, len, &ids); /* warm-up; _special: the same ids as the JS oracle on any text */
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        ids.len = 0;
        double t0 = iq_now();
        iq_tok_encode_special(t, text, len, &ids);
        double dt = iq_now() - t0;
        if (dt < best) best = dt;
    }
    printf("iqtrain %s: %zu bytes, %zu tokens, best of 3: %.3f s, %.2f MB/s (1 thread)\n", iq_pretok_name(iq_tok_pretok(t)),
           len, ids.len, best, (double)len / best / 1e6);
    iq_ids_free(&ids);
    free(text);
}

static int hf_mode(hf_run *r, const char *hex, size_t hl, const char *exp, size_t el, const char *nfc, size_t nl) {
    collect_added(r);
    iq_buf x = {0}, all = {0};
    lines lh = {hex, hex + hl}, le = {exp, exp + el}, ln = {nfc, nfc + nl};
    const char *hp, *ep, *np = NULL;
    size_t hn, en, nn = 0;
    while (next_line(&lh, &hp, &hn) && next_line(&le, &ep, &en)) {
        bool have_nfc = nfc && next_line(&ln, &np, &nn);
        r->cases++;
        if (en == 4 && memcmp(ep, "SKIP", 4) == 0) {
            r->skipped++;
            continue;
        }
        unhex(hp, hp + hn, &x);
        hf_case(r, &x, ep, en, r->cases);
        if (have_nfc) hf_nfc_case(r, &x, np, nn, r->cases);
        if (x.len && !holds_added(r, &x)) iq_buf_append(&all, x.data, x.len);
        iq_buf_append(&all, "\nx", 2);
    }
    CHECK_MSG(r->cases >= 5000, "only %zu cases", r->cases);
    CHECK_MSG(r->mismatches == 0, "%zu failing id mismatches", r->mismatches);
    CHECK_MSG(r->nfc_mismatches == 0, "%zu failing NFC mismatches", r->nfc_mismatches);
    printf("%s: %zu cases, %zu skipped (invalid UTF-8), %zu holding added-token text; id mismatches: %zu failing, "
           "%zu tolerated; NFC: %zu cases, %zu failing, %zu tolerated\n", iq_pretok_name(iq_tok_pretok(r->t)), r->cases,
           r->skipped, r->with_added, r->mismatches, r->tolerated, r->nfc_cases, r->nfc_mismatches, r->nfc_tolerated);
    iq_ids serial = {0}, par = {0};
    iq_tok_encode(r->t, all.data, all.len, &serial);
    iq_tok_encode_parallel(r->t, all.data, all.len, 4, &par);
    CHECK(serial.len == par.len && memcmp(serial.v, par.v, serial.len * sizeof *serial.v) == 0);
    iq_ids_free(&serial);
    iq_ids_free(&par);
    iq_buf_free(&x);
    iq_buf_free(&all);
    for (int k = 0; k < r->n_added; k++) iq_buf_free(&r->added[k]);
    free(r->added);
    return 0;
}

/* --nfc-apply IN OUT: iq_nfc of each hex line of IN, as hex lines (for tests/tokenizer/check_nfc.py). */
static int nfc_apply(const char *in, const char *out) {
    char *hex;
    size_t hl;
    if (iq_read_file(in, &hex, &hl)) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    iq_buf x = {0}, y = {0}, res = {0};
    lines lh = {hex, hex + hl};
    const char *hp;
    size_t hn;
    while (next_line(&lh, &hp, &hn)) {
        unhex(hp, hp + hn, &x);
        y.len = 0;
        iq_nfc((const uint8_t *)x.data, x.len, &y);
        for (size_t i = 0; i < y.len; i++) iq_buf_printf(&res, "%02x", (uint8_t)y.data[i]);
        iq_buf_putc(&res, '\n');
    }
    iq_status st = iq_write_file_atomic(out, res.data ? res.data : "", res.len);
    if (st) fprintf(stderr, "%s\n", iq_last_error());
    iq_buf_free(&x);
    iq_buf_free(&y);
    iq_buf_free(&res);
    free(hex);
    return st ? 2 : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--nfc-apply") == 0) return nfc_apply(argv[2], argv[3]);
    bool hf = argc > 1 && strcmp(argv[1], "--hf") == 0;
    int a0 = hf ? 2 : 1;
    if (argc < a0 + 3) {
        fprintf(stderr, "usage: %s [--hf] TOKENIZER CORPUS.hex EXPECTED.ids [--nfc FILE] [--tolerate U+X,...] [--bench FILE]\n", argv[0]);
        return 2;
    }
    hf_run r = {0};
    const char *nfc_path = NULL, *bench = NULL;
    for (int i = a0 + 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--nfc") == 0) nfc_path = argv[i + 1];
        else if (strcmp(argv[i], "--bench") == 0) bench = argv[i + 1];
        else if (strcmp(argv[i], "--tolerate") == 0)
            for (const char *p = argv[i + 1]; *p && r.n_tolerate < 16;) {
                if (p[0] == 'U' && p[1] == '+') p += 2;
                char *e;
                r.tolerate[r.n_tolerate++] = (uint32_t)strtoul(p, &e, 16);
                p = *e == ',' ? e + 1 : e;
                if (e == p && *p) break;
            }
    }
    iq_tokenizer *t;
    double t0 = iq_now();
    if (iq_tok_load(argv[a0], &t)) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    if (hf) printf("loaded %s in %.2f s\n", argv[a0], iq_now() - t0);
    char *hex, *exp, *nfc = NULL;
    size_t hl, el, nl = 0;
    if (iq_read_file(argv[a0 + 1], &hex, &hl) || iq_read_file(argv[a0 + 2], &exp, &el) ||
        (nfc_path && iq_read_file(nfc_path, &nfc, &nl))) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    r.t = t;
    if (hf) hf_mode(&r, hex, hl, exp, el, nfc, nl);
    else gpt2_mode(t, hex, hl, exp, el);
    if (bench) hf_bench(t, bench);
    free(hex);
    free(exp);
    free(nfc);
    iq_tok_free(t);
    CHECK_DONE();
}
