/* generate.c — decoding with the KV cache: sampling and beam search, and the reward extraction of sequences
 * (the commands that use them: generate_cmd.c, eval_generation.c).
 *
 * Sections: sampling · beam search · scoring. */
#include "iqtrain/generate.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/data.h"


int iq_gen_slots(const iq_gen_opts *o) {
    if (o->beam > 0) return 2 * o->beam;
    return o->num_samples > 0 ? o->num_samples : 1;
}

// ----------------------------------------------------------------------------------------------------
// sampling: prefill once, copy the prompt's cache to every sample, decode the samples as one batch

static void sample_many(iq_infer *inf, const int32_t *prompt, int plen, const iq_stop_ids *stop, const iq_gen_opts *o, uint64_t row,
                        iq_gen_out *out, int V) {
    int K = o->num_samples > 0 ? o->num_samples : 1, max_len = iq_infer_max_len(inf);
    float *logits = iq_xmalloc((size_t)K * V * sizeof *logits), *scratch = iq_xmalloc(2 * (size_t)V * sizeof *scratch);
    iq_rng *rng = iq_xmalloc((size_t)K * sizeof *rng);
    int *active = iq_xmalloc((size_t)K * sizeof *active), *slots = iq_xmalloc((size_t)K * sizeof *slots);
    int32_t *toks = iq_xmalloc((size_t)K * sizeof *toks);
    iq_infer_reset(inf, 0);
    int zero = 0;
    iq_infer_step(inf, &zero, prompt, 1, plen, logits);
    for (int k = 0; k < K; k++) {
        if (k > 0) {
            iq_infer_copy(inf, k, 0);
            memcpy(logits + (size_t)k * V, logits, (size_t)V * sizeof *logits);
        }
        iq_sample_rng(&rng[k], o->seed, row, (uint64_t)k);
        out[k].ids.len = 0;
        out[k].eos = false;
        active[k] = 1;
    }
    for (int t = 0; t < o->max_new_tokens; t++) {
        int n = 0;
        for (int k = 0; k < K; k++) {
            if (!active[k]) continue;
            int32_t tok = iq_sample_next(logits + (size_t)k * V, V, &o->sampler, &rng[k], scratch);
            iq_ids_push(&out[k].ids, tok);
            if (iq_stop_has(stop, tok)) {
                out[k].eos = true;
                active[k] = 0;
            } else if (iq_infer_len(inf, k) + 1 > max_len || t + 1 == o->max_new_tokens) {
                active[k] = 0; /* the context is full (or the budget spent): stop without feeding it */
            } else {
                slots[n] = k;
                toks[n] = tok;
                n++;
            }
        }
        if (n == 0) break;
        /* feed the sampled tokens; logits come back in slot order, scatter them per sample */
        float *tmp = iq_xmalloc((size_t)n * V * sizeof *tmp);
        iq_infer_step(inf, slots, toks, n, 1, tmp);
        for (int i = 0; i < n; i++) memcpy(logits + (size_t)slots[i] * V, tmp + (size_t)i * V, (size_t)V * sizeof *tmp);
        free(tmp);
        for (int i = 0; i < n; i++)
            if (iq_infer_len(inf, slots[i]) >= max_len) active[slots[i]] = 0;
    }
    free(logits);
    free(scratch);
    free(rng);
    free(active);
    free(slots);
    free(toks);
}

// ----------------------------------------------------------------------------------------------------
// beam search with length normalisation (score / length); beam 1 is greedy

typedef struct {
    int slot;
    double score;
    iq_ids ids;
} beam_t;

typedef struct {
    int parent;
    int32_t tok;
    double score;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return x->tok < y->tok ? -1 : x->tok > y->tok;
}

static void beam_search(iq_infer *inf, const int32_t *prompt, int plen, const iq_stop_ids *stop, const iq_gen_opts *o, iq_gen_out *out,
                        int V) {
    int N = o->beam, max_len = iq_infer_max_len(inf);
    float *logits = iq_xmalloc((size_t)N * V * sizeof *logits), *lsm = iq_xmalloc((size_t)V * sizeof *lsm);
    beam_t *cur = iq_xcalloc((size_t)N, sizeof *cur), *next = iq_xcalloc((size_t)N, sizeof *next);
    cand_t *cands = iq_xmalloc((size_t)N * N * sizeof *cands);
    int *slots = iq_xmalloc((size_t)N * sizeof *slots);
    int32_t *toks = iq_xmalloc((size_t)N * sizeof *toks);
    iq_ids best = {0};
    double best_norm = -INFINITY;
    bool best_eos = false;
    iq_infer_reset(inf, 0);
    int zero = 0;
    iq_infer_step(inf, &zero, prompt, 1, plen, logits);
    int nb = 1;
    cur[0].slot = 0;
    cur[0].score = 0.0;
    int base_next = N; /* ping-pong between slots [0, N) and [N, 2N) */
    for (int t = 0; t < o->max_new_tokens && nb > 0; t++) {
        int nc = 0;
        for (int b = 0; b < nb; b++) {
            const float *z = logits + (size_t)b * V;
            float mx = z[0];
            for (int v = 1; v < V; v++)
                if (z[v] > mx) mx = z[v];
            double s = 0.0;
            for (int v = 0; v < V; v++) s += exp((double)(z[v] - mx));
            float lse = mx + (float)log(s);
            for (int v = 0; v < V; v++) lsm[v] = z[v] - lse;
            /* this beam's N best tokens (ties to the smaller id) */
            for (int k = 0; k < N && k < V; k++) {
                int bi = -1;
                for (int v = 0; v < V; v++) {
                    bool taken = false;
                    for (int j = nc - k; j < nc; j++) taken |= cands[j].tok == v;
                    if (taken) continue;
                    if (bi < 0 || lsm[v] > lsm[bi]) bi = v;
                }
                cands[nc++] = (cand_t){b, bi, cur[b].score + lsm[bi]};
            }
        }
        qsort(cands, (size_t)nc, sizeof *cands, cmp_cand);
        int nn = 0;
        bool last = t + 1 == o->max_new_tokens;
        for (int i = 0; i < nc && nn < N; i++) {
            const cand_t *c = &cands[i];
            const beam_t *p = &cur[c->parent];
            /* prompt + ids + tok must fit max_len (the scoring pass holds max_len positions) */
            bool full = iq_infer_len(inf, p->slot) + 1 >= max_len;
            if (iq_stop_has(stop, c->tok) || last || full) {
                double norm = c->score / (double)(p->ids.len + 1);
                if (norm > best_norm) {
                    best_norm = norm;
                    best.len = 0;
                    for (size_t j = 0; j < p->ids.len; j++) iq_ids_push(&best, p->ids.v[j]);
                    iq_ids_push(&best, c->tok);
                    best_eos = iq_stop_has(stop, c->tok);
                }
                continue;
            }
            beam_t *q = &next[nn];
            q->slot = base_next + nn;
            q->score = c->score;
            q->ids.len = 0;
            for (size_t j = 0; j < p->ids.len; j++) iq_ids_push(&q->ids, p->ids.v[j]);
            iq_ids_push(&q->ids, c->tok);
            iq_infer_copy(inf, q->slot, p->slot);
            slots[nn] = q->slot;
            toks[nn] = c->tok;
            nn++;
        }
        if (nn == 0) break;
        iq_infer_step(inf, slots, toks, nn, 1, logits);
        beam_t *sw = cur;
        cur = next;
        next = sw;
        nb = nn;
        base_next = base_next == N ? 0 : N;
    }
    out[0].ids.len = 0;
    for (size_t j = 0; j < best.len; j++) iq_ids_push(&out[0].ids, best.v[j]);
    out[0].eos = best_eos;
    for (int b = 0; b < N; b++) {
        iq_ids_free(&cur[b].ids);
        iq_ids_free(&next[b].ids);
    }
    iq_ids_free(&best);
    free(logits);
    free(lsm);
    free(cur);
    free(next);
    free(cands);
    free(slots);
    free(toks);
}

void iq_generate(iq_infer *inf, const int32_t *prompt, int plen, const iq_stop_ids *stop, const iq_gen_opts *o, uint64_t row,
                 iq_gen_out *out) {
    int V = iq_infer_vocab(inf);
    if (o->beam > 0) beam_search(inf, prompt, plen, stop, o, out, V);
    else sample_many(inf, prompt, plen, stop, o, row, out, V);
}

// ----------------------------------------------------------------------------------------------------
// scoring: the full forward pass and the IQLearn head over prompt ++ completion

void iq_score_sequence(iq_model *m, iq_head *h, const int32_t *prompt, int plen, const int32_t *comp, int ncomp,
                       bool eos, float gamma, float *rewards, float *logprobs, double *reward, double *logprob) {
    int T = plen + ncomp;
    int32_t *ids = iq_xmalloc((size_t)T * sizeof *ids);
    uint8_t *flags = iq_xcalloc((size_t)T, 1);
    float *r = iq_xcalloc((size_t)T, sizeof *r), *lp = iq_xcalloc((size_t)T, sizeof *lp);
    memcpy(ids, prompt, (size_t)plen * sizeof *ids);
    memcpy(ids + plen, comp, (size_t)ncomp * sizeof *ids);
    for (int i = plen; i < T; i++) flags[i] = IQ_TOK_SUPERVISED;
    if (eos && ncomp > 0) flags[T - 1] |= IQ_TOK_TERMINAL;
    *reward = 0.0;
    *logprob = 0.0;
    if (ncomp > 0) {
        iq_model_forward(m, ids, 1, T);
        iq_loss_opts lo = {0.0f, gamma, IQ_TD_FULL, IQ_TRUNC_BOOTSTRAP, 0.0f, 0.0f};
        iq_loss_stats st = {0};
        iq_head_score(h, iq_model_lnf(m), iq_model_head(m), ids, flags, &T, 1, T, &lo, &st, r, lp);
        for (int i = 0; i < ncomp; i++) {
            rewards[i] = r[plen + i];
            logprobs[i] = lp[plen + i];
            *reward += r[plen + i];
            *logprob += lp[plen + i];
        }
    }
    free(ids);
    free(flags);
    free(r);
    free(lp);
}

