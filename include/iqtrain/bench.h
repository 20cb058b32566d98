/* bench.h — benchmarks behind `iqtrain bench` (tokenizer now; training and generation join later). */
#ifndef IQTRAIN_BENCH_H
#define IQTRAIN_BENCH_H

#include <stddef.h>

#include "iqtrain/tokenizer.h"

typedef struct {
    size_t bytes;       /* input size */
    size_t tokens;      /* ids produced */
    int threads;
    int repeats;
    double seconds;     /* median over repeats */
    double mb_per_s;    /* bytes / seconds / 1e6 */
    double min_seconds; /* best repeat */
} iq_bench_tok_result;

/* Encodes `text` `repeats` times (after one warm-up) with `threads` threads and reports the median.
 * With threads > 1 the text is cut into chunks only where a pre-token boundary is certain (after a
 * '\n' followed by a non-space), so the ids equal a single-threaded encode. */
iq_status iq_bench_tokenizer(const iq_tokenizer *t, const char *text, size_t len, int threads, int repeats,
                             iq_bench_tok_result *out);

/* Deterministic English-like text of about `len` bytes (words, numbers, punctuation, newlines). */
char *iq_bench_make_text(size_t len, size_t *out_len);

/* Parallel encode used by the benchmark: same ids as iq_tok_encode. */
void iq_tok_encode_parallel(const iq_tokenizer *t, const char *text, size_t len, int threads, iq_ids *out);

#endif
