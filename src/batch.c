/* batch.c — padded micro-batches, the sort by length, the eval split and the data order (batch.h). */
#include "iqtrain/batch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/rng.h"

void iq_batch_init(iq_batch *b, int max_batch, int max_seq) {
    memset(b, 0, sizeof *b);
    b->max_batch = max_batch;
    b->max_seq = max_seq;
    b->ids = iq_xcalloc((size_t)max_batch * max_seq, sizeof *b->ids);
    b->flags = iq_xcalloc((size_t)max_batch * max_seq, 1);
    b->lens = iq_xcalloc((size_t)max_batch, sizeof *b->lens);
}

void iq_batch_free(iq_batch *b) {
    free(b->ids);
    free(b->flags);
    free(b->lens);
    memset(b, 0, sizeof *b);
}

long iq_batch_fill(iq_batch *b, const iq_dataset *d, const uint32_t *rows, int n) {
    int T = 1;
    for (int i = 0; i < n; i++) {
        int l = (int)iq_data_row_len(d, rows[i]);
        if (l > T) T = l;
    }
    b->B = n;
    b->T = T;
    long sup = 0;
    for (int i = 0; i < n; i++) {
        size_t off = d->row_off[rows[i]];
        int l = (int)iq_data_row_len(d, rows[i]);
        int32_t *ids = b->ids + (size_t)i * T;
        uint8_t *fl = b->flags + (size_t)i * T;
        memcpy(ids, d->ids + off, (size_t)l * sizeof *ids);
        memcpy(fl, d->tok_flags + off, (size_t)l);
        memset(ids + l, 0, (size_t)(T - l) * sizeof *ids);
        memset(fl + l, 0, (size_t)(T - l));
        b->lens[i] = l;
        for (int j = 0; j < l; j++) sup += (fl[j] & IQ_TOK_SUPERVISED) != 0;
    }
    return sup;
}

// ----------------------------------------------------------------------------------------------------
// sort by length: an in-place heapsort on the total order (length, index), so the result is the one order

static bool row_less(const iq_dataset *d, uint32_t a, uint32_t b) {
    size_t la = iq_data_row_len(d, a), lb = iq_data_row_len(d, b);
    return la != lb ? la < lb : a < b;
}

static void sift_down(const iq_dataset *d, uint32_t *r, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && row_less(d, r[c], r[c + 1])) c++;
        if (!row_less(d, r[i], r[c])) return;
        uint32_t t = r[i];
        r[i] = r[c];
        r[c] = t;
        i = c;
    }
}

void iq_sort_rows_by_length(const iq_dataset *d, uint32_t *rows, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift_down(d, rows, i, n);
    for (size_t end = n; end > 1; end--) {
        uint32_t t = rows[0];
        rows[0] = rows[end - 1];
        rows[end - 1] = t;
        sift_down(d, rows, 0, end - 1);
    }
}

// ----------------------------------------------------------------------------------------------------
// the eval split

void iq_split_rows(const iq_dataset *d, double fraction, uint64_t seed, uint32_t **train, size_t *n_train,
                   uint32_t **eval, size_t *n_eval) {
    size_t n = d->n_rows;
    *train = iq_xmalloc((n ? n : 1) * sizeof **train);
    *eval = iq_xmalloc((n ? n : 1) * sizeof **eval);
    *n_train = *n_eval = 0;
    uint8_t *is_eval = iq_xcalloc(n ? n : 1, 1);
    if (fraction > 0 && fraction < 1) {
        /* held out deterministically from (seed): the first round(F n) rows of a fixed permutation */
        uint32_t *p = iq_xmalloc((n ? n : 1) * sizeof *p);
        for (size_t i = 0; i < n; i++) p[i] = (uint32_t)i;
        iq_rng rng;
        iq_rng_seed(&rng, seed, 0xE7A15EEDull);
        iq_rng_shuffle_u32(&rng, p, n);
        size_t k = (size_t)llround(fraction * (double)n);
        if (k >= n) k = n ? n - 1 : 0;
        for (size_t i = 0; i < k; i++) is_eval[p[i]] = 1;
        free(p);
    }
    for (size_t i = 0; i < n; i++) {
        if (is_eval[i]) (*eval)[(*n_eval)++] = (uint32_t)i;
        else (*train)[(*n_train)++] = (uint32_t)i;
    }
    free(is_eval);
}

// ----------------------------------------------------------------------------------------------------
// the data order

void iq_order_init(iq_order *o, const iq_dataset *d, const uint32_t *rows, size_t n_rows, uint64_t seed, int batch_size,
                   int grad_accum) {
    memset(o, 0, sizeof *o);
    o->d = d;
    o->rows = rows;
    o->n_rows = n_rows;
    o->seed = seed;
    o->micro = batch_size;
    o->rows_per_step = (long)batch_size * grad_accum;
    o->perm = iq_xmalloc((n_rows ? n_rows : 1) * sizeof *o->perm);
    o->step_rows = iq_xmalloc((size_t)o->rows_per_step * sizeof *o->step_rows);
    o->perm_epoch = -1;
}

void iq_order_free(iq_order *o) {
    free(o->perm);
    free(o->step_rows);
    memset(o, 0, sizeof *o);
}

long iq_order_steps_per_epoch(const iq_order *o) {
    return (long)((o->n_rows + (size_t)o->rows_per_step - 1) / (size_t)o->rows_per_step);
}

long iq_order_select(iq_order *o, long step, long *tokens) {
    long spe = iq_order_steps_per_epoch(o), epoch = step / spe, k = step % spe;
    if (epoch != o->perm_epoch) {
        memcpy(o->perm, o->rows, o->n_rows * sizeof *o->perm);
        iq_rng rng;
        iq_rng_seed(&rng, o->seed, 0x5EED0000ull + (uint64_t)epoch);
        iq_rng_shuffle_u32(&rng, o->perm, o->n_rows);
        o->perm_epoch = epoch;
    }
    size_t a = (size_t)k * (size_t)o->rows_per_step;
    size_t e = a + (size_t)o->rows_per_step < o->n_rows ? a + (size_t)o->rows_per_step : o->n_rows;
    o->n_step = e - a;
    memcpy(o->step_rows, o->perm + a, o->n_step * sizeof *o->step_rows);
    iq_sort_rows_by_length(o->d, o->step_rows, o->n_step);
    long N = 0;
    for (size_t i = 0; i < o->n_step; i++) {
        size_t off = o->d->row_off[o->step_rows[i]], l = iq_data_row_len(o->d, o->step_rows[i]);
        *tokens += (long)l;
        for (size_t j = 0; j < l; j++) N += (o->d->tok_flags[off + j] & IQ_TOK_SUPERVISED) != 0;
    }
    return N;
}

bool iq_order_micro(const iq_order *o, int mb, int rank, int world, size_t *r0, size_t *r1) {
    size_t start = (size_t)mb * (size_t)o->micro;
    if (start >= o->n_step) return false;
    size_t nb = o->n_step - start < (size_t)o->micro ? o->n_step - start : (size_t)o->micro;
    *r0 = start + nb * (size_t)rank / (size_t)world;
    *r1 = start + nb * (size_t)(rank + 1) / (size_t)world;
    return true;
}
