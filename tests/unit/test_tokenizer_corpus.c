/* test_tokenizer_corpus — iqtrain's ids equal the reference ids on every case of a hex corpus.
 * usage: test_tokenizer_corpus TOKENIZER CORPUS.hex EXPECTED.ids
 * Each corpus line is one case's bytes in hex; each EXPECTED line the ids separated by spaces. Also checks
 * decode(encode(x)) == x for every case and that a parallel encode of all cases joined equals the serial one. */
#include <stdlib.h>

#include "check.h"
#include "iqtrain/bench.h"
#include "iqtrain/tokenizer.h"

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s TOKENIZER CORPUS.hex EXPECTED.ids\n", argv[0]);
        return 2;
    }
    iq_tokenizer *t;
    if (iq_tok_load(argv[1], &t)) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    char *hex, *exp;
    size_t hl, el;
    if (iq_read_file(argv[2], &hex, &hl) || iq_read_file(argv[3], &exp, &el)) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    iq_buf text = {0}, dec = {0}, all = {0};
    iq_ids ids = {0};
    char *hp = hex, *ep = exp;
    size_t cases = 0, mismatches = 0;
    while (hp < hex + hl && ep < exp + el) {
        char *hn = strchr(hp, '\n'), *en = strchr(ep, '\n');
        if (!hn) hn = hex + hl;
        if (!en) en = exp + el;
        text.len = 0;
        for (char *q = hp; q + 1 < hn; q += 2) {
            char b = (char)(hexval(q[0]) * 16 + hexval(q[1]));
            iq_buf_append(&text, &b, 1);
        }
        ids.len = 0;
        iq_tok_encode(t, text.data, text.len, &ids);
        iq_buf got = {0};
        for (size_t i = 0; i < ids.len; i++) iq_buf_printf(&got, "%s%d", i ? " " : "", ids.v[i]);
        size_t explen = (size_t)(en - ep);
        bool same = got.len == explen && (explen == 0 || memcmp(got.data, ep, explen) == 0);
        if (!same) {
            mismatches++;
            if (mismatches <= 5)
                fprintf(stderr, "case %zu (line %zu): hex %.*s\n  expected: %.*s\n  got:      %s\n", cases, cases + 1,
                        (int)(hn - hp > 200 ? 200 : hn - hp), hp, (int)(explen > 400 ? 400 : explen), ep,
                        got.len ? got.data : "");
        }
        CHECK(same);
        dec.len = 0;
        CHECK(iq_tok_decode(t, ids.v, ids.len, &dec) == IQ_OK);
        CHECK(dec.len == text.len && (text.len == 0 || memcmp(dec.data, text.data, text.len) == 0));
        iq_buf_free(&got);
        if (text.len) iq_buf_append(&all, text.data, text.len);
        iq_buf_append(&all, "\nx", 2);
        cases++;
        hp = hn + 1;
        ep = en + 1;
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
    free(hex);
    free(exp);
    iq_tok_free(t);
    CHECK_DONE();
}
