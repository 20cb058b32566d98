/* eval.h — batches of rows and the loss over a whole dataset (the `eval` command and train's eval rows). */
#ifndef IQTRAIN_EVAL_H
#define IQTRAIN_EVAL_H

#include <cJSON.h>
#include <stdbool.h>

#include "iqtrain/data.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/model.h"

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

/* Sorts row indices by length (ties by index): deterministic. */
void iq_sort_rows_by_length(const iq_dataset *d, uint32_t *rows, size_t n);
/* Loss statistics over the rows rows[0..n_rows) of d (grouped by length, batch_size rows at a time). */
void iq_eval_rows(iq_model *m, iq_head *h, const iq_dataset *d, const uint32_t *rows, size_t n_rows,
                  const iq_loss_opts *o, int batch_size, iq_loss_stats *st);
/* Loss statistics over every row of d (rows grouped by length, batch_size rows at a time). */
void iq_eval_dataset(iq_model *m, iq_head *h, const iq_dataset *d, const iq_loss_opts *o, int batch_size,
                     iq_loss_stats *st);

typedef struct {
    const char *model_dir;
    const char *const *data;
    int n_data;
    bool has_lambda, has_gamma;
    float lambda, gamma;
    iq_td_grad td_grad;
    iq_truncation truncation;
    int batch_size;
    int max_seq_len; /* 0 = the model's ctx */
    bool skip_bad_rows;
} iq_eval_opts;

/* The `eval` command: loads the model folder and the data, and returns
 * {"nll", "td", "loss", "tokens", "token_accuracy", "ppl", "lambda", "gamma", ...} (DESIGN §6).
 * lambda and gamma come from the options, else the model's "iqtrain" section, else 0.1 / 0.99. */
iq_status iq_eval_command(const iq_eval_opts *o, cJSON **result);

/* Fills the eval fields of a JSON object from loss statistics. */
void iq_eval_stats_json(cJSON *j, const iq_loss_stats *st, float lambda);

#endif
