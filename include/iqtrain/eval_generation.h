/* eval_generation.h — generation metrics for `iqtrain eval` (DESIGN §6: eval.json, samples.jsonl). */
#ifndef IQTRAIN_EVAL_GENERATION_H
#define IQTRAIN_EVAL_GENERATION_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

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
    float gamma;              /* < 0: the model's */
    const char *out;          /* DIR for samples.jsonl (NULL: none) */
    bool skip_bad_rows;
    int limit;                /* evaluate the first N rows only (0 = all) */
} iq_gen_eval_opts;

/* Generates for every row (greedy; beam N; K samples per temperature), checks answers with the GSM8k rule
 * against the row's reference completion, and returns {"settings": [...], "self_bleu": {T: x}, ...}:
 * per setting accuracy (mean over samples), pass@K for sampling, mean reward and logprob of correct and
 * wrong samples and their Spearman correlations with correctness (null when undefined). */
iq_status iq_eval_generation(const iq_gen_eval_opts *o, cJSON **result);

#endif
