/* bench.c — tokenizer throughput. */
#include "iqtrain/bench.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/unicode.h"

/* Chunk boundaries: after a '\n' between a visible ASCII character and a non-space code point. The
 * '\n' is then a whole piece both in the full text (\s+ before a non-space) and at the end of a chunk
 * (\s+(?!\S) at the end), and the next piece starts after it either way. */
static size_t safe_cut(const char *s, size_t len, size_t from) {
    if (from == 0) from = 1;
    for (size_t i = from; i + 1 < len; i++) {
        if (s[i] != '\n' || s[i - 1] <= ' ' || s[i - 1] > '~') continue;
        uint32_t cp;
        iq_utf8_decode((const uint8_t *)s + i + 1, len - i - 1, &cp);
        if (iq_uc_class(cp) != IQ_UC_SPACE) return i + 1;
    }
    return len;
}

void iq_tok_encode_parallel(const iq_tokenizer *t, const char *text, size_t len, int threads, iq_ids *out) {
    if (threads <= 1 || len < (1 << 16)) {
        iq_tok_encode(t, text, len, out);
        return;
    }
    size_t n_chunks = (size_t)threads * 8, target = len / n_chunks + 1;
    size_t *cut = iq_xmalloc((n_chunks + 2) * sizeof *cut);
    size_t nc = 0;
    cut[nc++] = 0;
    while (cut[nc - 1] < len && nc <= n_chunks) {
        size_t c = safe_cut(text, len, cut[nc - 1] + target);
        cut[nc++] = c;
    }
    if (cut[nc - 1] < len) cut[nc++] = len;
    size_t parts = nc - 1;
    iq_ids *res = iq_xcalloc(parts, sizeof *res);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t k = 0; k < parts; k++) iq_tok_encode(t, text + cut[k], cut[k + 1] - cut[k], &res[k]);
    for (size_t k = 0; k < parts; k++) {
        iq_ids_reserve(out, res[k].len);
        memcpy(out->v + out->len, res[k].v, res[k].len * sizeof *res[k].v);
        out->len += res[k].len;
        iq_ids_free(&res[k]);
    }
    free(res);
    free(cut);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

iq_status iq_bench_tokenizer(const iq_tokenizer *t, const char *text, size_t len, int threads, int repeats,
                             iq_bench_tok_result *out) {
    if (repeats < 1) repeats = 1;
    if (threads < 1) threads = 1;
    double *times = iq_xmalloc((size_t)repeats * sizeof *times);
    iq_ids ids = {0};
    iq_tok_encode_parallel(t, text, len, threads, &ids); /* warm-up */
    size_t tokens = ids.len;
    for (int r = 0; r < repeats; r++) {
        ids.len = 0;
        double t0 = iq_now();
        iq_tok_encode_parallel(t, text, len, threads, &ids);
        times[r] = iq_now() - t0;
        if (ids.len != tokens) {
            free(times);
            iq_ids_free(&ids);
            return iq_fail(IQ_EINTERNAL, "tokenizer benchmark: repeat %d gave %zu tokens, not %zu", r, ids.len, tokens);
        }
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    out->bytes = len;
    out->tokens = tokens;
    out->threads = threads;
    out->repeats = repeats;
    out->seconds = times[repeats / 2];
    out->min_seconds = times[0];
    out->mb_per_s = out->seconds > 0 ? (double)len / out->seconds / 1e6 : 0;
    free(times);
    iq_ids_free(&ids);
    return IQ_OK;
}

char *iq_bench_make_text(size_t len, size_t *out_len) {
    static const char *words[] = {"the", "model", "learns", "from", "expert", "demonstrations", "and", "its",
                                  "reward", "is", "implicit", "in", "a", "soft", "value", "function", "we",
                                  "don't", "it's", "they're", "Question:", "Answer:", "total", "apples", "of",
                                  "café", "naïve", "über", "日本語", "données", "функция", "πρόβλημα"};
    const size_t nw = sizeof words / sizeof *words;
    iq_buf b = {0};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    while (b.len < len) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned r = (unsigned)(x >> 33);
        if (r % 11 == 0) iq_buf_printf(&b, " %u", r % 100000);
        else if (r % 17 == 0) iq_buf_append(&b, ".\n", 2);
        else if (r % 23 == 0) iq_buf_append(&b, ", ", 2);
        else {
            if (b.len && b.data[b.len - 1] != '\n') iq_buf_putc(&b, ' ');
            const char *w = words[r % nw];
            iq_buf_append(&b, w, strlen(w));
        }
    }
    *out_len = b.len;
    iq_buf_cstr(&b);
    return b.data;
}
