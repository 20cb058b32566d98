/* generate.h — decoding over the KV cache: sampling and beam search, and the reward extraction of sequences
 * (DESIGN §1, §6). */
#ifndef IQTRAIN_GENERATE_H
#define IQTRAIN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "iqtrain/iqlearn.h"
#include "iqtrain/infer.h"
#include "iqtrain/model.h"
#include "iqtrain/sample.h"
#include "iqtrain/tokenizer.h"
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

/* The ids that end a completion: the tokenizer's EOS, and the chat template's end-of-turn token when it has
 * one (-1 otherwise). */
typedef struct {
    int32_t ids[2];
} iq_stop_ids;
static inline iq_stop_ids iq_stop_ids_of(const iq_tokenizer *t) { return (iq_stop_ids){{iq_tok_eos(t), iq_tok_end_of_turn(t)}}; }
static inline bool iq_stop_has(const iq_stop_ids *s, int32_t tok) { return tok >= 0 && (tok == s->ids[0] || tok == s->ids[1]); }

/* Slots iq_generate needs in the cache. */
int iq_gen_slots(const iq_gen_opts *o);
/* Generates for one prompt: K samples (or the best beam into out[0]). `row` seeds the samples' generators.
 * The prompt must leave room: plen < iq_infer_max_len(inf). */
void iq_generate(iq_infer *inf, const int32_t *prompt, int plen, const iq_stop_ids *stop, const iq_gen_opts *o,
                 uint64_t row, iq_gen_out *out);

/* Scores prompt ++ completion with the IQLearn head: the completion's tokens are the actions (the last one
 * terminal when eos), and per completion token r_t and log pi go to rewards / logprobs (ncomp each).
 * The model's arenas must hold one row of plen + ncomp tokens. Sums go to *reward and *logprob. */
void iq_score_sequence(iq_model *m, iq_head *h, const int32_t *prompt, int plen, const int32_t *comp, int ncomp,
                       bool eos, float gamma, float *rewards, float *logprobs, double *reward, double *logprob);

#endif
