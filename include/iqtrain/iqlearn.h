/* iqlearn.h — the IQLearn loss as TD-regularized MLE (DESIGN §1), fused with the LM head.
 *
 * The LM head is the Q head: z_t = Q(s_t, .), V(s) = logsumexp(z), log pi(a|s_t) = z_t[a] - V(s_t).
 * For every supervised token t (logits row j predicts token j+1):
 *     r_t  = z_t[a_t] - gamma (1 - d_t) V(s_{t+1})
 *     loss = (1/N) sum -log pi(a_t|s_t) + lambda (1/N) sum_{t with a TD term} r_t^2
 * d_t = 1 only at a real EOS (terminal flag). The last token of a truncated row (supervised, not terminal)
 * bootstraps V(s_{t+1}) from the logits row at that token (truncation bootstrap) or has no TD term (drop).
 * Gradient on logits row t (td-grad full), pi_t = softmax(z_t):
 *     dL/dz_t = (1/N)[pi_t - e_{a_t} + 2 lambda r_t e_{a_t}] - (1/N) 2 lambda gamma (1 - d_{t-1}) r_{t-1} pi_t
 * The second term needs r of the previous step; semi drops it (V(s_{t+1}) treated as a constant).
 * Online IQLearn (online.h) adds c (1/N) sum_{t with a TD term} v_t, v_t = V(s_t) - gamma (1 - d_t) V(s_{t+1}):
 *     dL/dz_t += (c/N) pi_t,  and the row of s_{t+1} (d_t = 0) gets -(c/N) gamma pi_{t+1}.
 *
 * Controls (DESIGN §10), on the supervised tokens with the same 1/N: label smoothing eps replaces the nll term
 * by torch's cross_entropy(label_smoothing=eps), (1 - eps)(-log pi(a_t)) + eps mean_v(-log pi(v)), and the
 * entropy bonus subtracts beta H(pi_t), H = -sum_v pi log pi. Their gradient on row t adds
 *     (1/N)[eps e_{a_t} - eps/V + beta pi_t (z_t - E_pi[z_t])]
 * and both are computed in the same pass over the row as V(s_t); eps = beta = 0 is exactly the loss above.
 *
 * Only the logits rows that carry a term are computed: rows that predict a supervised token, and rows that
 * are some step's V(s_{t+1}). They are gathered, processed in chunks of rows x V (never B*T*V at once),
 * and the forward and backward of each chunk run together. */
#ifndef IQTRAIN_IQLEARN_H
#define IQTRAIN_IQLEARN_H

#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/util.h"

typedef enum { IQ_TD_FULL = 0, IQ_TD_SEMI = 1 } iq_td_grad;
typedef enum { IQ_TRUNC_BOOTSTRAP = 0, IQ_TRUNC_DROP = 1 } iq_truncation;

typedef struct {
    float lambda;
    float gamma;
    iq_td_grad td_grad;
    iq_truncation truncation;
    float label_smoothing; /* eps in [0, 1) */
    float entropy_coef;    /* beta >= 0 */
} iq_loss_opts;

/* Sums over the tokens of one or more micro-batches (add with iq_loss_stats_add). */
typedef struct {
    double nll_sum;   /* sum of -log pi over supervised tokens */
    double td_sum;    /* sum of r^2 over tokens with a TD term */
    int64_t n_sup;    /* supervised tokens */
    int64_t n_td;     /* tokens with a TD term */
    int64_t n_correct; /* supervised tokens whose argmax logit is the target */
    double r_sum;     /* sum of r */
    double r_abs_sum; /* sum of |r| */
    double r_abs_max; /* max |r| */
    double v_sum;     /* sum of V(s_t) - gamma (1 - d_t) V(s_{t+1}) over tokens with a TD term (online IQLearn) */
    double ctl_sum;   /* sum of the controls' terms: eps (-mean_v log pi(v) + log pi(a)) - beta H(pi) */
} iq_loss_stats;

void iq_loss_stats_add(iq_loss_stats *acc, const iq_loss_stats *x);
/* nll = nll_sum / N, td = td_sum / N, loss = nll + lambda td (+ ctl_sum / N: the objective with label
 * smoothing and the entropy bonus), with N = n_sup. */
double iq_loss_value(const iq_loss_stats *s, float lambda, double *nll, double *td);

typedef struct iq_head iq_head;

/* Workspace for up to max_rows (B*T) positions, width C, vocabulary V; chunk_rows = 0 picks a chunk so that
 * a chunk's logits take about 64 MB, and at least 128 rows. */
iq_head *iq_head_create(int max_rows, int C, int V, int chunk_rows);
void iq_head_free(iq_head *h);
/* Online IQLearn (online.h), for the passes that follow: the loss adds coef (1/N) sum_{t with a TD term} v_t,
 * v_t = V(s_t) - gamma (1 - d_t) V(s_{t+1}), with the gradient through both V (whatever td_grad says); with
 * value_only that term alone (the pass over policy samples: no nll, no td, no label smoothing or entropy
 * bonus). coef 0, value_only false: off (as created). The statistics' v_sum is summed in every pass. */
void iq_head_set_value_term(iq_head *h, float coef, bool value_only);
/* Bytes the workspace holds; rows per chunk of logits. */
size_t iq_head_bytes(const iq_head *h);
int iq_head_chunk(const iq_head *h);

/* Loss (and, with dlnf, gradients) of one micro-batch.
 *   lnf   (B*T, C)   final hidden states;  wte (V, C) the tied embedding
 *   ids, flags (B, T): tokens and IQ_TOK_SUPERVISED / IQ_TOK_TERMINAL per token; lens (B): valid lengths
 *   inv_n = 1/N, N = supervised tokens of the whole optimizer step
 * Adds to *st. With dlnf != NULL: writes dlnf (B*T, C) completely (zeros at rows without a term) and adds
 * the head's gradient to dwte (V, C) unless dwte is NULL (a frozen head). Optional outputs for tests and reward extraction:
 *   r_out (B*T): r of the supervised token at each position (0 elsewhere, and for a dropped TD term);
 *   logits_out (B*T, V): the logits of every valid position (then every valid row is computed). */
void iq_head_loss(iq_head *h, const float *lnf, const float *wte, const int32_t *ids, const uint8_t *flags,
                  const int *lens, int B, int T, const iq_loss_opts *o, float inv_n, float *dlnf, float *dwte,
                  iq_loss_stats *st, float *r_out, float *logits_out);

/* Scoring (no gradients): r_out and lp_out (B*T) receive r_t and log pi(a_t|s_t) at the position of each
 * supervised token (0 elsewhere). Rewards of a sequence are sums of r_out over its tokens (DESIGN §1). */
void iq_head_score(iq_head *h, const float *lnf, const float *wte, const int32_t *ids, const uint8_t *flags,
                   const int *lens, int B, int T, const iq_loss_opts *o, iq_loss_stats *st, float *r_out, float *lp_out);

typedef enum { IQ_LSCHED_CONSTANT = 0, IQ_LSCHED_LINEAR = 1, IQ_LSCHED_COSINE = 2 } iq_lambda_schedule;
/* lambda at optimizer step `step` (0-based): ramps from start to lambda over warmup steps. */
float iq_lambda_at(iq_lambda_schedule s, float start, float lambda, long warmup, long step);

#endif
