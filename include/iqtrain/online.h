/* online.h — online IQLearn (DESIGN §10, issue #17): the value term over the policy's own samples.
 *
 *     loss = nll + lambda td + alpha (mean_policy[v_t] - mean_expert[v_t]),   v_t = V(s_t) - gamma (1 - d_t) V(s_{t+1})
 *
 * with V = logsumexp of the LM head's logits (the Q head), gamma and d_t as DESIGN §1. mean_expert runs over
 * the step's supervised tokens (N, as nll and td: iqlearn.h's value_coef = -alpha in the expert passes);
 * mean_policy over the tokens of completions sampled from the current policy for the same prompts (N_pol
 * tokens over all MPI ranks; value_coef = +alpha, value_only). A step without a TD term (the last step of a
 * row cut by the length limit under --truncation drop) has no value term and still counts in the mean, as in
 * td. A sampled EOS is terminal (d = 1); a sample cut at the length limit (--online-max-new-tokens or the
 * model's positions) bootstraps as truncation does. Samples are constants: the gradient flows through V on
 * both sides (and through V(s_{t+1}) also with --td-grad semi), never through the sampling.
 *
 * Sampling runs the KV-cache decoder (infer.h) on the training model's own weights — no copy: the decode step
 * reads only the parameter arena, and the bf16 weight cache is renewed by every optimizer step — with one
 * generator per (seed, row, step of the refresh) (sample.h), so the samples depend on nothing but the weights,
 * the seed, the row and the step. The prompt of a row is its ids before its last supervised span (as `eval`
 * and `generate` take it); each row gets one sample. Every K-th step (--online-every) draws new samples for
 * that step's rows; the steps in between reuse them. Under MPI each rank samples for its own rows; the samples
 * of every rank are then gathered on every rank (the sample book), so that rank 0's checkpoint holds them all
 * (online_samples.safetensors) and a resume between refreshes is bit-exact.
 *
 * Memory is sized once: the KV cache (n_layer x max_batch x max_seq keys and values), one policy batch of
 * (max_batch, max_seq) per micro-batch of a step, decoding scratch and the book; the policy pass reuses the
 * training model's arenas and loss head. Nothing is allocated in a step. */
#ifndef IQTRAIN_ONLINE_H
#define IQTRAIN_ONLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/batch.h"
#include "iqtrain/generate.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/model.h"

typedef struct {
    float mix;          /* alpha > 0 (alpha = 0 is offline training: no iq_online at all) */
    int every;          /* K >= 1: new samples every K optimizer steps */
    float temperature;  /* sampling temperature; 0 = greedy */
    int max_new_tokens; /* N >= 1: sampled tokens per prompt at most */
    uint64_t seed;
} iq_online_opts;

typedef struct iq_online iq_online;

/* The sampler of training model m (its weights are read, never copied): max_batches policy batches of
 * (max_batch, max_seq) = the model's; any of `stop` ends a sample. */
iq_online *iq_online_create(iq_model *m, const iq_online_opts *o, int max_batches, iq_stop_ids stop);
void iq_online_free(iq_online *on);
float iq_online_mix(const iq_online *on);
/* Bytes of its KV cache, policy batches, scratch and book (the dry run's memory plan). */
size_t iq_online_bytes(const iq_online *on);

/* The positions a row of d needs for prompt + max_new_tokens samples, at most cap: the model's max_seq must
 * be at least this over the training rows (train.c sizes it once). */
int iq_online_seq_needed(const iq_dataset *d, const uint32_t *rows, size_t n, int max_new_tokens, int cap);

/* Whether step `step` draws new samples: no samples yet, or step % every == 0. */
bool iq_online_due(const iq_online *on, long step);

/* Draws the samples of step `step`: one per row of each of this rank's micro-batches of the selected step
 * (batch.h), one policy batch per micro-batch; then gathers the book (a collective under MPI). */
void iq_online_refresh(iq_online *on, const iq_order *ord, int rank, int world, long step);

/* The same pieces for callers that bring their own prompts (bench) or samples (the reference tests):
 * begin forgets the samples; sample_prompts draws one policy batch for n <= max_batch prompts (row_ids seed
 * their generators); add_batch takes a policy batch as given (flags IQ_TOK_SUPERVISED on sampled tokens,
 * IQ_TOK_TERMINAL on a sampled EOS); end gathers the book and counts the tokens (collective under MPI). */
void iq_online_begin(iq_online *on, long step);
void iq_online_sample_prompts(iq_online *on, const int32_t *const *prompts, const int *plens, const uint64_t *row_ids,
                              int n);
void iq_online_add_batch(iq_online *on, const iq_batch *b);
void iq_online_end(iq_online *on);

/* The step's policy pass (step.c, after the expert micro-batches): for each policy batch, forward, the head
 * with the value term alone (+alpha / N_pol), backward; gradients add to the model's. Adds the policy
 * batches' statistics to *pol (v_sum: this rank's sum of v_t). lo: the step's loss options (gamma, td_grad,
 * truncation). */
void iq_online_backward(iq_online *on, iq_model *m, iq_head *h, const iq_loss_opts *lo, iq_loss_stats *pol);

/* After the sums over ranks: online_value_gap = pol_v_sum / N_pol - expert->v_sum / N (the loss adds alpha
 * times it); *sample_len = mean sampled tokens per sample. */
double iq_online_value_gap(const iq_online *on, const iq_loss_stats *expert, double pol_v_sum, double *sample_len);

/* Timings of the last refresh and the last policy pass (bench). */
double iq_online_sample_ms(const iq_online *on);
double iq_online_backward_ms(const iq_online *on);

/* The step whose weights drew the current samples (-1: none). */
long iq_online_refresh_step(const iq_online *on);

/* The checkpoint's file of samples: every rank's policy batches (the book) and the refresh step. Save: rank 0,
 * no collective. Load: collective; rank 0 reads dir/ONLINE_SAMPLES_FILE (dir NULL on the other ranks), checks it
 * against this run (ranks, batch, positions, refresh_step from trainer_state.json) and every rank takes its own
 * samples back. 65 with the path and reason for a file that does not fit. */
#define IQ_ONLINE_SAMPLES_FILE "online_samples.safetensors"
iq_status iq_online_save(void *on, const char *path); /* iq_checkpoint_extra's write */
iq_status iq_online_load(iq_online *on, const char *dir, long refresh_step);

#endif
