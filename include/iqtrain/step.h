/* step.h — the training step and the evaluation step, the one copy of each that train, bench, the dry run,
 * eval and the reference tests run.
 *
 * A training step: zero the gradients; for each of this rank's micro-batches: forward, the fused IQLearn head
 * and loss (iqlearn.h) with N = the supervised tokens of the whole optimizer step, backward; sum gradients and
 * loss statistics over MPI ranks (with online IQLearn, its policy pass comes after this rank's micro-batches); the gradient norm; refuse a non-finite loss or norm (75, the weights
 * untouched); AdamW with the clip coefficient folded in. */
#ifndef IQTRAIN_STEP_H
#define IQTRAIN_STEP_H

#include <stdbool.h>

#include "iqtrain/batch.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/model.h"
#include "iqtrain/online.h"
#include "iqtrain/optim.h"

/* Loss statistics of one micro-batch at the current weights, added to *st; no gradients. inv_n = 1/N.
 * logits_out (B*T, V), when not NULL, receives the logits of every valid position (tests). */
void iq_eval_batch(iq_model *m, iq_head *h, const iq_batch *b, const iq_loss_opts *lo, float inv_n, iq_loss_stats *st,
                   float *logits_out);

/* Loss statistics over rows rows[0..n) of d, sorted by length and batch_size rows at a time; *st is reset. */
void iq_eval_rows(iq_model *m, iq_head *h, const iq_dataset *d, const uint32_t *rows, size_t n, const iq_loss_opts *lo,
                  int batch_size, iq_loss_stats *st);

/* This rank's micro-batches of one optimizer step. */
typedef struct {
    /* fills *b with the next micro-batch of this rank; false when the step has no more. A micro-batch with no
     * row for this rank is skipped by the source. */
    bool (*next)(void *ctx, iq_batch *b);
    void *ctx;
    long n_sup; /* N: supervised tokens of the whole optimizer step, over all ranks */
} iq_step_source;

/* A source whose one micro-batch is the batch buffer as the caller filled it: ctx is a bool, false before the
 * step (bench, tests). */
bool iq_step_one_batch(void *ctx, iq_batch *b);

typedef struct {
    iq_loss_opts loss;   /* lambda: this step's value of the schedule */
    iq_adamw_opts adamw;
    float lr;            /* this step's learning rate */
    float grad_clip;     /* <= 0: no clipping */
    float *logits_out;   /* tests: logits of the first micro-batch (B*T, V), or NULL */
    iq_online *online;   /* online IQLearn (online.h): its value term over the current samples; NULL: offline */
} iq_step_opts;

typedef struct {
    iq_loss_stats stats; /* summed over micro-batches and ranks */
    double loss, nll, td;
    double grad_norm;    /* before clipping */
    double online_value_gap, online_sample_len; /* with o->online (online.h); loss includes alpha x the gap */
} iq_step_result;

/* One optimizer step (see above). 0, or 75 (diverged: loss or gradient norm not finite; no update, message
 * naming nothing: the caller knows the step). batch is the micro-batch buffer the source fills. */
iq_status iq_train_step(iq_model *m, iq_head *h, iq_adamw *opt, iq_batch *batch, const iq_step_source *src,
                        const iq_step_opts *o, iq_step_result *r);

#endif
