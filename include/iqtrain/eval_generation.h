/* eval_generation.h — generation metrics for `iqtrain eval` (DESIGN §6: eval.json, samples.jsonl) and for the
 * evaluation during training (train --eval-generation-every). */
#ifndef IQTRAIN_EVAL_GENERATION_H
#define IQTRAIN_EVAL_GENERATION_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/data.h"
#include "iqtrain/model.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

typedef struct {
    const char *model_dir;
    const char *const *data;
    int n_data;
    int num_samples;          /* K per temperature */
    const float *temperatures; /* sampling settings (> 0) */
    int n_temperatures;
    int beam;                 /* >= 2: also beam search */
    int max_new_tokens;
    uint64_t seed;
    float gamma;              /* < 0: the model's (iq_eval_generation_model: 0.99) */
    const char *out;          /* DIR for samples.jsonl (NULL: none) */
    bool skip_bad_rows;
    int limit;                /* evaluate the first N rows only (0 = all) */
} iq_gen_eval_opts;

/* Generates for every row (greedy; beam N; K samples per temperature), checks answers with the GSM8k rule
 * against the row's reference completion, and returns {"settings": [...], "self_bleu": {T: x}, ...}:
 * per setting accuracy (mean over samples), pass@K for sampling, mean reward and logprob of correct and
 * wrong samples and their Spearman correlations with correctness (null when undefined). */
iq_status iq_eval_generation(const iq_gen_eval_opts *o, cJSON **result);

/* The same evaluation of a model in memory (e.g. the one being trained, whose weights it reads through an
 * inference view: iq_model_create_view) on rows rows[0..n) of d, evaluated as rows 0..n-1 (the samples' seeds),
 * o->limit capping n; o->model_dir, o->data and o->skip_bad_rows are not used. The cache holds d's longest
 * row plus o->max_new_tokens, as iq_eval_generation sizes it, so that a model evaluated here and the same
 * weights evaluated from a folder on the same rows give the same result. */
iq_status iq_eval_generation_model(iq_model *m, const iq_tokenizer *tok, const iq_dataset *d, const uint32_t *rows,
                                   size_t n, const iq_gen_eval_opts *o, cJSON **result);

#endif
