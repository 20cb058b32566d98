/* eval.h — the `eval` command: the loss over a whole dataset (generation metrics: eval_generation.h). */
#ifndef IQTRAIN_EVAL_H
#define IQTRAIN_EVAL_H

#include <cJSON.h>
#include <stdbool.h>

#include "iqtrain/data.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/model.h"
#include "iqtrain/step.h"

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
