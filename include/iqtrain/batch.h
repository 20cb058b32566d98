/* batch.h — which rows train, in which order, in which micro-batches (DESIGN §5).
 *
 * Epoch e visits the training rows in a permutation drawn from (seed, e): the same for every lambda, so
 * lambda = 0 is a true baseline. Optimizer step k of an epoch takes the next batch_size x grad_accum rows of
 * that order, sorts them by length (ties by row index) and cuts them into micro-batches of batch_size rows;
 * under MPI each micro-batch is split across ranks in order. --eval-split holds rows out deterministically
 * from (seed). */
#ifndef IQTRAIN_BATCH_H
#define IQTRAIN_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "iqtrain/data.h"

/* A padded micro-batch (B, T): ids and flags of each row, zeros past its length. */
typedef struct {
    int B, T;
    int32_t *ids;    /* (max_batch * max_seq) */
    uint8_t *flags;  /* (max_batch * max_seq) */
    int *lens;       /* (max_batch) */
    int max_batch, max_seq;
} iq_batch;

void iq_batch_init(iq_batch *b, int max_batch, int max_seq);
void iq_batch_free(iq_batch *b);
/* Fills the batch with dataset rows rows[0..n) (n <= max_batch); T = their longest length. Returns the
 * number of supervised tokens. */
long iq_batch_fill(iq_batch *b, const iq_dataset *d, const uint32_t *rows, int n);

/* Sorts row indices by length, ties by index (a total order: deterministic, no state outside the call). */
void iq_sort_rows_by_length(const iq_dataset *d, uint32_t *rows, size_t n);

/* The train/eval split of d's rows: with 0 < fraction < 1, the first round(fraction n) rows of a permutation
 * drawn from seed are eval rows (at least one row stays for training); otherwise every row trains. The row
 * lists are malloc'd, in increasing order. */
void iq_split_rows(const iq_dataset *d, double fraction, uint64_t seed, uint32_t **train, size_t *n_train,
                   uint32_t **eval, size_t *n_eval);

/* The order of the training rows in one epoch and the rows of each optimizer step. */
typedef struct {
    const iq_dataset *d;
    const uint32_t *rows; /* the training rows */
    size_t n_rows;
    uint64_t seed;
    long rows_per_step;   /* batch_size x grad_accum */
    int micro;            /* batch_size: global rows per micro-batch */
    uint32_t *perm;       /* (n_rows) the current epoch's permutation */
    long perm_epoch;
    uint32_t *step_rows;  /* (rows_per_step) the current step's rows, sorted by length */
    size_t n_step;
} iq_order;

void iq_order_init(iq_order *o, const iq_dataset *d, const uint32_t *rows, size_t n_rows, uint64_t seed, int batch_size,
                   int grad_accum);
void iq_order_free(iq_order *o);
/* Optimizer steps per epoch. */
long iq_order_steps_per_epoch(const iq_order *o);
/* Selects the rows of global step `step` (epoch step / spe, step step % spe); returns the supervised tokens
 * of the whole step (N) and adds its tokens to *tokens. */
long iq_order_select(iq_order *o, long step, long *tokens);
/* Micro-batch mb of the selected step as rank `rank` of `world` holds it: the rows [r0, r1) of
 * step_rows; false past the last micro-batch. A rank's share may be empty (r0 == r1). */
bool iq_order_micro(const iq_order *o, int mb, int rank, int world, size_t *r0, size_t *r1);

#endif
