/* iqlearn.c — the fused LM head + IQLearn loss and its gradient (DESIGN §1). See iqlearn.h for the maths. */
#include "iqtrain/iqlearn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/data.h"
#include "iqtrain/kernels.h"
#include "iqtrain/matmul.h"
#include "vecmath.h"

void iq_loss_stats_add(iq_loss_stats *acc, const iq_loss_stats *x) {
    acc->nll_sum += x->nll_sum;
    acc->td_sum += x->td_sum;
    acc->n_sup += x->n_sup;
    acc->n_td += x->n_td;
    acc->n_correct += x->n_correct;
    acc->r_sum += x->r_sum;
    acc->r_abs_sum += x->r_abs_sum;
    acc->v_sum += x->v_sum;
    acc->ctl_sum += x->ctl_sum;
    if (x->r_abs_max > acc->r_abs_max) acc->r_abs_max = x->r_abs_max;
}

double iq_loss_value(const iq_loss_stats *s, float lambda, double *nll, double *td) {
    double n = s->n_sup > 0 ? (double)s->n_sup : 1.0;
    double a = s->nll_sum / n, b = s->td_sum / n;
    if (nll) *nll = a;
    if (td) *td = b;
    double loss = a + (double)lambda * b;
    return s->ctl_sum != 0.0 ? loss + s->ctl_sum / n : loss;
}

float iq_lambda_at(iq_lambda_schedule s, float start, float lambda, long warmup, long step) {
    if (s == IQ_LSCHED_CONSTANT || warmup <= 0 || step >= warmup) return lambda;
    double f = (double)step / (double)warmup;
    if (s == IQ_LSCHED_COSINE) f = 0.5 * (1.0 - cos(M_PI * f));
    return (float)((double)start + f * ((double)lambda - (double)start));
}

// ----------------------------------------------------------------------------------------------------
// workspace

enum {
    ROW_TARGET = 1,    /* the row predicts a supervised token */
    ROW_TERMINAL = 2,  /* ... which is a real EOS (d = 1) */
    ROW_TD = 4,        /* ... which has a TD term */
    ROW_VGRAD = 8,     /* the row is V(s_{t+1}) of the previous entry's step, which has a TD term, d = 0 */
    ROW_VNEXT = 16,    /* ... the same whatever td_grad says (the online value term's gradient) */
};

struct iq_head {
    int max_rows, C, V, chunk;
    int32_t *row_idx; /* (max_rows) flattened position of each gathered row */
    int32_t *target;  /* (max_rows) */
    uint8_t *meta;    /* (max_rows) ROW_* */
    float *xg;        /* (max_rows, C) gathered hidden states */
    float *dxg;       /* (max_rows, C) their gradients */
    float *logits;    /* (chunk + 1, V) */
    float *lse;       /* (max_rows) */
    float *r;         /* (max_rows) */
    int32_t *argmax;  /* (max_rows) */
    float value_coef; /* online IQLearn's value term (iq_head_set_value_term) */
    bool value_only;
    float *ent;       /* (max_rows) H(pi) of target rows, with label smoothing or the entropy bonus */
    float *smooth;    /* (max_rows) -mean_v log pi(v) = V(s) - mean_v z, likewise */
};

iq_head *iq_head_create(int max_rows, int C, int V, int chunk_rows) {
    iq_head *h = iq_xcalloc(1, sizeof *h);
    h->max_rows = max_rows;
    h->C = C;
    h->V = V;
    if (chunk_rows <= 0) {
        /* 64 MB of logits, and at least 128 rows: OpenBLAS runs the head's three products at half speed
         * with fewer (measured on 2 threads, GPT-2's vocabulary: 83-row chunks 43 GFLOP/s, 128 rows 92) */
        chunk_rows = (int)((16u << 20) / (unsigned)V);
        if (chunk_rows < 128) chunk_rows = 128;
    }
    if (chunk_rows > max_rows) chunk_rows = max_rows;
    h->chunk = chunk_rows;
    size_t n = (size_t)max_rows;
    h->row_idx = iq_xcalloc(n, sizeof *h->row_idx);
    h->target = iq_xcalloc(n, sizeof *h->target);
    h->meta = iq_xcalloc(n, 1);
    h->xg = iq_arena_xcalloc(n * (size_t)C, sizeof *h->xg);
    h->dxg = iq_arena_xcalloc(n * (size_t)C, sizeof *h->dxg);
    h->logits = iq_arena_xcalloc(((size_t)chunk_rows + 1) * (size_t)V, sizeof *h->logits);
    h->lse = iq_xcalloc(n, sizeof *h->lse);
    h->r = iq_xcalloc(n, sizeof *h->r);
    h->argmax = iq_xcalloc(n, sizeof *h->argmax);
    h->ent = iq_xcalloc(n, sizeof *h->ent);
    h->smooth = iq_xcalloc(n, sizeof *h->smooth);
    return h;
}

void iq_head_set_value_term(iq_head *h, float coef, bool value_only) {
    h->value_coef = coef;
    h->value_only = value_only;
}

size_t iq_head_bytes(const iq_head *h) {
    size_t n = (size_t)h->max_rows;
    return sizeof *h + n * (3 * sizeof(int32_t) + 1 + 2 * sizeof(float)) + 2 * n * (size_t)h->C * sizeof(float) +
           ((size_t)h->chunk + 1) * (size_t)h->V * sizeof(float);
}

int iq_head_chunk(const iq_head *h) { return h->chunk; }

void iq_head_free(iq_head *h) {
    if (!h) return;
    free(h->row_idx);
    free(h->target);
    free(h->meta);
    free(h->xg);
    free(h->dxg);
    free(h->logits);
    free(h->lse);
    free(h->r);
    free(h->argmax);
    free(h->ent);
    free(h->smooth);
    free(h);
}

// ----------------------------------------------------------------------------------------------------
// the loss

/* V(s) (and the argmax) of the chunk's rows m; with the controls, H(pi) and -mean_v log pi(v) of target rows,
 * in the same pass. */
static void chunk_lse(iq_head *h, const float *Lg, int ks, int m, bool ctl) {
    const int V = h->V;
#pragma omp parallel for
    for (int i = 0; i < m; i++) {
        const float *z = Lg + (size_t)i * V;
        float mx = z[0];
#pragma omp simd reduction(max : mx)
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        int am = V; /* the first maximum, as a scan with > finds (16 lanes wide; a NaN row: the last index) */
#pragma omp simd reduction(min : am)
        for (int v = 0; v < V; v++) am = z[v] == mx && v < am ? v : am;
        if (am == V) am = V - 1;
        float s = 0.0f;
        if (ctl && (h->meta[ks + i] & ROW_TARGET)) {
            float sd = 0.0f, sz = 0.0f; /* sums of t = z - mx and of e^t t, in the same pass */
#pragma omp simd reduction(+ : s, sd, sz)
            for (int v = 0; v < V; v++) {
                float t = z[v] - mx, e = iq_vexp(t);
                s += e;
                sd += t;
                sz += e * t;
            }
            h->ent[ks + i] = logf(s) - sz / s;           /* H = V(s) - E_pi[z] */
            h->smooth[ks + i] = logf(s) - sd / (float)V; /* V(s) - mean z */
        } else {
#pragma omp simd reduction(+ : s)
            for (int v = 0; v < V; v++) s += iq_vexp(z[v] - mx);
        }
        h->lse[ks + i] = mx + logf(s);
        h->argmax[ks + i] = am;
    }
}

/* dL/dz of rows ks..ke (Lg holds their logits and receives the gradient). */
static void chunk_dlogits(iq_head *h, float *Lg, int ks, int ke, const iq_loss_opts *o, float inv_n, bool ctl) {
    const int V = h->V;
    const float lambda = o->lambda, gamma = o->gamma, eps = o->label_smoothing, beta = o->entropy_coef;
    const float vc = h->value_coef;
    const bool vo = h->value_only;
#pragma omp parallel for
    for (int k = ks; k < ke; k++) {
        float *z = Lg + (size_t)(k - ks) * V;
        uint8_t mt = h->meta[k];
        float coef = (mt & ROW_TARGET) && !vo ? 1.0f : 0.0f;
        if (!vo && (mt & ROW_VGRAD) && k >= 1) coef -= 2.0f * lambda * gamma * h->r[k - 1];
        if (vc != 0.0f) { /* online: d/dz of vc [V(s_t) - gamma V(s_{t+1})] is vc pi_t here, -vc gamma pi_{t+1} next */
            if ((mt & ROW_TARGET) && (mt & ROW_TD)) coef += vc;
            if ((mt & ROW_VNEXT) && k >= 1) coef -= vc * gamma;
        }
        float lse = h->lse[k];
        if (ctl && (mt & ROW_TARGET)) { /* + (1/N)[beta pi (z - E_pi z) - eps/V] */
            float c = coef * inv_n, bn = beta * inv_n, ez = lse - h->ent[k], u = eps * inv_n / (float)V;
#pragma omp simd
            for (int v = 0; v < V; v++) z[v] = iq_vexp(z[v] - lse) * (c + bn * (z[v] - ez)) - u;
        } else if (coef == 0.0f) {
            memset(z, 0, (size_t)V * sizeof *z);
        } else {
            float c = coef * inv_n;
#pragma omp simd
            for (int v = 0; v < V; v++) z[v] = c * iq_vexp(z[v] - lse);
        }
        if ((mt & ROW_TARGET) && !vo) {
            float t = -(1.0f - eps);
            if (mt & ROW_TD) t += 2.0f * lambda * h->r[k];
            z[h->target[k]] += t * inv_n;
        }
    }
}

static void head_run(iq_head *h, const float *lnf, const float *wte, const int32_t *ids, const uint8_t *flags,
                     const int *lens, int B, int T, const iq_loss_opts *o, float inv_n, float *dlnf, float *dwte,
                     iq_loss_stats *st, float *r_out, float *lp_out, float *logits_out) {
    const int C = h->C, V = h->V;
    const bool all_rows = logits_out != NULL, backward = dlnf != NULL, full = o->td_grad == IQ_TD_FULL;
    const float gamma = o->gamma, eps = o->label_smoothing, beta = o->entropy_coef;
    /* the controls' terms (iqlearn.h); never in a value-only pass (online IQLearn's policy samples) */
    const bool ctl = (eps > 0.0f || beta > 0.0f) && !h->value_only;

    /* 1. which rows carry a term, gathered in order */
    int n = 0;
    for (int b = 0; b < B; b++) {
        int L = lens[b];
        const uint8_t *f = flags + (size_t)b * T;
        for (int j = 0; j < L; j++) {
            bool sup_next = j + 1 < L && (f[j + 1] & IQ_TOK_SUPERVISED);
            bool sup_here = j >= 1 && (f[j] & IQ_TOK_SUPERVISED);
            if (!sup_next && !sup_here && !all_rows) continue;
            uint8_t m = 0;
            int32_t tgt = -1;
            if (sup_next) {
                m |= ROW_TARGET;
                tgt = ids[(size_t)b * T + j + 1];
                bool term = (f[j + 1] & IQ_TOK_TERMINAL) != 0;
                bool last = j + 1 == L - 1;
                if (term) m |= ROW_TERMINAL;
                if (!(o->truncation == IQ_TRUNC_DROP && last && !term)) m |= ROW_TD;
            }
            if (sup_here && !(f[j] & IQ_TOK_TERMINAL)) {
                bool last = j == L - 1;
                bool td_here = !(o->truncation == IQ_TRUNC_DROP && last);
                if (td_here && full) m |= ROW_VGRAD;
                if (td_here) m |= ROW_VNEXT;
            }
            h->row_idx[n] = (int32_t)((size_t)b * T + j);
            h->target[n] = tgt;
            h->meta[n] = m;
            n++;
        }
    }
#pragma omp parallel for
    for (int k = 0; k < n; k++) memcpy(h->xg + (size_t)k * C, lnf + (size_t)h->row_idx[k] * C, (size_t)C * sizeof(float));

    if (r_out) memset(r_out, 0, (size_t)B * T * sizeof *r_out);
    if (lp_out) memset(lp_out, 0, (size_t)B * T * sizeof *lp_out);
    iq_loss_stats acc = {0};

    /* 2. chunks of rows: logits (+ one row of look-ahead for V(s_{t+1})), loss terms, gradient */
    for (int ks = 0; ks < n; ks += h->chunk) {
        int ke = ks + h->chunk < n ? ks + h->chunk : n;
        int m = (ke < n ? ke + 1 : ke) - ks; /* rows computed */
        float *Lg = h->logits;
        iq_sgemm_w(false, true, m, V, C, 1.0f, h->xg + (size_t)ks * C, wte, 0.0f, Lg);
        chunk_lse(h, Lg, ks, m, ctl);
        if (logits_out)
            for (int i = 0; i < ke - ks; i++)
                memcpy(logits_out + (size_t)h->row_idx[ks + i] * V, Lg + (size_t)i * V, (size_t)V * sizeof(float));
        /* loss terms, summed in order (deterministic whatever the thread count) */
        for (int k = ks; k < ke; k++) {
            uint8_t mt = h->meta[k];
            if (!(mt & ROW_TARGET)) continue;
            float zt = Lg[(size_t)(k - ks) * V + h->target[k]];
            double nll = (double)h->lse[k] - (double)zt;
            acc.nll_sum += nll;
            if (ctl) acc.ctl_sum += (double)eps * ((double)h->smooth[k] - nll) - (double)beta * (double)h->ent[k];
            if (lp_out) lp_out[h->row_idx[k] + 1] = zt - h->lse[k];
            acc.n_sup++;
            acc.n_correct += h->argmax[k] == h->target[k];
            if (mt & ROW_TD) {
                float vnext = (mt & ROW_TERMINAL) ? 0.0f : h->lse[k + 1];
                float r = zt - gamma * vnext;
                h->r[k] = r;
                acc.td_sum += (double)r * (double)r;
                acc.v_sum += h->lse[k] - gamma * vnext;
                acc.n_td++;
                acc.r_sum += r;
                acc.r_abs_sum += fabsf(r);
                if (fabsf(r) > acc.r_abs_max) acc.r_abs_max = fabsf(r);
                if (r_out) r_out[h->row_idx[k] + 1] = r;
            } else {
                h->r[k] = 0.0f;
            }
        }
        if (!backward) continue;
        chunk_dlogits(h, Lg, ks, ke, o, inv_n, ctl); /* dL/dz per row, in place */
        int mc = ke - ks;
        iq_matmul_group_begin(); /* Lg is rounded to bf16 once for both products */
        iq_sgemm_w(false, false, mc, C, V, 1.0f, Lg, wte, 0.0f, h->dxg + (size_t)ks * C);
        if (dwte) iq_sgemm(true, false, V, C, mc, 1.0f, Lg, h->xg + (size_t)ks * C, 1.0f, dwte); /* NULL: frozen */
        iq_matmul_group_end();
    }
    if (backward) {
        iq_zero(dlnf, (size_t)B * T * C);
#pragma omp parallel for
        for (int k = 0; k < n; k++) memcpy(dlnf + (size_t)h->row_idx[k] * C, h->dxg + (size_t)k * C, (size_t)C * sizeof(float));
    }
    iq_loss_stats_add(st, &acc);
}

void iq_head_loss(iq_head *h, const float *lnf, const float *wte, const int32_t *ids, const uint8_t *flags,
                  const int *lens, int B, int T, const iq_loss_opts *o, float inv_n, float *dlnf, float *dwte,
                  iq_loss_stats *st, float *r_out, float *logits_out) {
    head_run(h, lnf, wte, ids, flags, lens, B, T, o, inv_n, dlnf, dwte, st, r_out, NULL, logits_out);
}

void iq_head_score(iq_head *h, const float *lnf, const float *wte, const int32_t *ids, const uint8_t *flags,
                   const int *lens, int B, int T, const iq_loss_opts *o, iq_loss_stats *st, float *r_out, float *lp_out) {
    head_run(h, lnf, wte, ids, flags, lens, B, T, o, 1.0f, NULL, NULL, st, r_out, lp_out, NULL);
}
