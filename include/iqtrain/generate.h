/* generate.h — sampling and beam search over the KV cache, reward extraction of sequences, and the drivers
 * of `iqtrain generate` and `iqtrain score` (DESIGN §6: samples.jsonl rows). */
#ifndef IQTRAIN_GENERATE_H
#define IQTRAIN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "iqtrain/iqlearn.h"
#include "iqtrain/infer.h"
#include "iqtrain/model.h"
#include "iqtrain/sample.h"
#include "iqtrain/util.h"

typedef struct {
    int num_samples;    /* K >= 1 (sampling); ignored with beam */
    iq_sampler sampler; /* temperature 0 = greedy */
    int beam;           /* 0 = no beam search; N >= 1 beams (beam 1 equals greedy) */
    int max_new_tokens;
    uint64_t seed;
} iq_gen_opts;

typedef struct {
    iq_ids ids; /* generated ids, the final EOS included when the sequence ended with one */
    bool eos;   /* ended with EOS (else: max_new_tokens or the context end) */
} iq_gen_out;

/* Slots iq_generate needs in the cache. */
int iq_gen_slots(const iq_gen_opts *o);
/* Generates for one prompt: K samples (or the best beam into out[0]). `row` seeds the samples' generators.
 * The prompt must leave room: plen < iq_infer_max_len(inf). */
void iq_generate(iq_infer *inf, const int32_t *prompt, int plen, int32_t eos, const iq_gen_opts *o, uint64_t row,
                 iq_gen_out *out);

/* Scores prompt ++ completion with the IQLearn head: the completion's tokens are the actions (the last one
 * terminal when eos), and per completion token r_t and log pi go to rewards / logprobs (ncomp each).
 * The model's arenas must hold one row of plen + ncomp tokens. Sums go to *reward and *logprob. */
void iq_score_sequence(iq_model *m, iq_head *h, const int32_t *prompt, int plen, const int32_t *comp, int ncomp,
                       bool eos, float gamma, float *rewards, float *logprobs, double *reward, double *logprob);

typedef struct {
    const char *model_dir;
    const char *prompt;       /* --prompt TEXT, or NULL */
    const char *const *data;  /* --data files */
    int n_data;
    iq_gen_opts gen;
    const char *out;          /* NULL: completions to stdout */
    float gamma;              /* < 0: the model's "iqtrain" section, else 0.99 */
    bool skip_bad_rows;
} iq_generate_cmd;

/* `iqtrain generate`. 0 or an exit code with a message. */
iq_status iq_generate_command(const iq_generate_cmd *c);

typedef struct {
    const char *model_dir;
    const char *const *data;
    int n_data;
    const char *out; /* NULL: rows to stdout */
    float gamma;     /* < 0: from the model */
    bool skip_bad_rows;
} iq_score_cmd;

/* `iqtrain score`: one row per input row with prompt, completion, logprob, reward, rewards. */
iq_status iq_score_command(const iq_score_cmd *c);


/* ---------------------------------------------------------------- generation metrics (eval) */
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
