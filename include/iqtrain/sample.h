/* sample.h — decoding rules: greedy, temperature with top-k / top-p, and one random draw per token from a
 * per-(seed, row, sample) generator, so a sample's draws never depend on how samples are batched. */
#ifndef IQTRAIN_SAMPLE_H
#define IQTRAIN_SAMPLE_H

#include <stdint.h>

#include "iqtrain/rng.h"

typedef struct {
    float temperature; /* <= 0: greedy */
    int top_k;         /* 0 = off */
    float top_p;       /* >= 1 = off */
} iq_sampler;

/* The generator of sample `sample` of prompt `row`. */
void iq_sample_rng(iq_rng *r, uint64_t seed, uint64_t row, uint64_t sample);
/* Picks the next token: argmax (ties to the smaller id) when greedy; otherwise softmax(logits / T) over the
 * top-k tokens, cut to the smallest set whose probability reaches top-p, drawn with one uniform number.
 * scratch: 2 V floats. */
int32_t iq_sample_next(const float *logits, int V, const iq_sampler *s, iq_rng *rng, float *scratch);
/* log softmax(logits)[tok], in fp32 with max subtraction. */
float iq_log_softmax_at(const float *logits, int V, int32_t tok);

#endif
