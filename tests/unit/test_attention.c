/* test_attention — the blocked causal attention (attention.h) against a naive double-precision computation
 * of the same formulas, on lengths that span several blocks and end in a partial one: forward (outputs and
 * probabilities, zeros above the diagonal) and backward (dq, dk, dv added to what they held), for grouped
 * query heads (Llama's layout through iq_gqa_*) and GPT-2's packed qkv rows (iq_attention_*). The finite
 * differences of test_gradcheck*.c cover the maths at T = 5; this covers the blocking. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "iqtrain/attention.h"
#include "iqtrain/kernels.h"
#include "iqtrain/kernels_llama.h"
#include "iqtrain/rng.h"

static iq_rng g_rng;

static float *randn(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = iq_rng_normal(&g_rng);
    return p;
}

static float *copy(const float *x, size_t n) {
    float *p = malloc(n * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* max |a - b| / (1 + |b|) */
static double max_err(const float *a, const double *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs(b[i]));
        if (d > e || d != d) e = d != d ? INFINITY : d;
    }
    return e;
}

typedef struct {
    const iq_attn_shape *s;
    const float *q, *k, *v, *dout;
    double *out, *att, *dq, *dk, *dv; /* dq, dk, dv start from the values the kernel adds to */
} naive;

static const float *row(const float *x, int ld, int b, int T, int t, int head, int D) {
    return x + ((size_t)b * T + t) * ld + (size_t)head * D;
}

static void naive_run(naive *n) {
    const iq_attn_shape *s = n->s;
    int T = s->T, D = s->D, G = s->Hq / s->Hk, ldo = s->Hq * D;
    double scale = 1.0 / sqrt((double)D), *p = malloc((size_t)T * sizeof *p), *dp = malloc((size_t)T * sizeof *dp);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->Hq; h++)
            for (int t = 0; t < T; t++) {
                const float *q = row(n->q, s->ldq, b, T, t, h, D), *dout = row(n->dout, ldo, b, T, t, h, D);
                double mx = -INFINITY, sum = 0, pdp = 0;
                for (int j = 0; j <= t; j++) {
                    const float *k = row(n->k, s->ldkv, b, T, j, h / G, D);
                    double x = 0;
                    for (int d = 0; d < D; d++) x += (double)q[d] * k[d];
                    p[j] = x * scale;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j <= t; j++) sum += p[j] = exp(p[j] - mx);
                double *att = n->att + (((size_t)b * s->Hq + h) * T + t) * T;
                for (int j = 0; j < T; j++) att[j] = j <= t ? p[j] / sum : 0.0;
                double *out = n->out + ((size_t)b * T + t) * ldo + (size_t)h * D;
                for (int j = 0; j <= t; j++) {
                    const float *v = row(n->v, s->ldkv, b, T, j, h / G, D);
                    dp[j] = 0;
                    for (int d = 0; d < D; d++) out[d] += att[j] * v[d], dp[j] += (double)dout[d] * v[d];
                    pdp += att[j] * dp[j];
                }
                size_t qo = ((size_t)b * T + t) * s->ldq + (size_t)h * D;
                for (int j = 0; j <= t; j++) {
                    size_t ko = ((size_t)b * T + j) * s->ldkv + (size_t)(h / G) * D;
                    double ds = att[j] * (dp[j] - pdp) * scale;
                    for (int d = 0; d < D; d++) {
                        n->dv[ko + d] += att[j] * dout[d];
                        n->dq[qo + d] += ds * n->k[ko + d];
                        n->dk[ko + d] += ds * q[d];
                    }
                }
            }
    free(p), free(dp);
}

static double *widen(const float *x, size_t n) {
    double *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = x[i];
    return p;
}

/* GQA layout (separate q, k, v) at length T */
static void test_gqa(int B, int T, int Hq, int Hk, int D) {
    iq_attn_shape s = {B, T, Hq, Hk, D, Hq * D, Hk * D};
    size_t nq = (size_t)B * T * Hq * D, nk = (size_t)B * T * Hk * D, na = (size_t)B * Hq * T * T;
    float *q = randn(nq), *k = randn(nk), *v = randn(nk), *dout = randn(nq), *out = randn(nq), *att = randn(na);
    float *dq = randn(nq), *dk = randn(nk), *dv = randn(nk), *datt = randn(na);
    naive n = {&s, q, k, v, dout, calloc(nq, sizeof(double)), calloc(na, sizeof(double)), widen(dq, nq), widen(dk, nk),
               widen(dv, nk)};
    naive_run(&n);
    iq_gqa_forward(out, att, q, k, v, B, T, Hq, Hk, D);
    iq_gqa_backward(dq, dk, dv, datt, dout, q, k, v, att, B, T, Hq, Hk, D);
    double e[5] = {max_err(out, n.out, nq), max_err(att, n.att, na), max_err(dq, n.dq, nq), max_err(dk, n.dk, nk),
                   max_err(dv, n.dv, nk)};
    const char *what[5] = {"out", "att", "dq", "dk", "dv"};
    for (int i = 0; i < 5; i++)
        CHECK_MSG(e[i] < 2e-5, "gqa B%d T%d Hq%d Hk%d D%d: %s off by %.3g", B, T, Hq, Hk, D, what[i], e[i]);
    free(q), free(k), free(v), free(dout), free(out), free(att), free(dq), free(dk), free(dv), free(datt);
    free(n.out), free(n.att), free(n.dq), free(n.dk), free(n.dv);
}

/* GPT-2's packed rows: q, k, v the thirds of each (3C) row, dqkv likewise */
static void test_packed(int B, int T, int H, int D) {
    int C = H * D;
    iq_attn_shape s = {B, T, H, H, D, 3 * C, 3 * C};
    size_t nqkv = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * H * T * T;
    float *qkv = randn(nqkv), *dout = randn(no), *out = randn(no), *att = randn(na), *dqkv = randn(nqkv),
          *datt = randn(na);
    double *dq0 = widen(dqkv, nqkv);
    naive n = {&s, qkv, qkv + C, qkv + 2 * C, dout, calloc(no, sizeof(double)), calloc(na, sizeof(double)), dq0, dq0 + C,
               dq0 + 2 * C};
    naive_run(&n);
    iq_attention_forward(out, att, qkv, B, T, C, H);
    iq_attention_backward(dqkv, datt, dout, qkv, att, B, T, C, H);
    double eo = max_err(out, n.out, no), ea = max_err(att, n.att, na), ed = max_err(dqkv, dq0, nqkv);
    CHECK_MSG(eo < 2e-5 && ea < 2e-5 && ed < 2e-5, "packed B%d T%d H%d D%d: out %.3g, att %.3g, dqkv %.3g off", B, T, H,
              D, eo, ea, ed);
    float *again = copy(out, no);
    iq_attention_forward(out, att, qkv, B, T, C, H);
    CHECK(memcmp(again, out, no * sizeof *out) == 0); /* deterministic */
    free(qkv), free(dout), free(out), free(att), free(dqkv), free(datt), free(dq0), free(n.out), free(n.att), free(again);
}

int main(void) {
    iq_rng_seed(&g_rng, 7, 0);
    test_gqa(2, 71, 4, 2, 8); /* blocks of 32: 32 + 32 + 7 */
    test_gqa(1, 64, 3, 1, 16);
    test_gqa(1, 1, 2, 2, 4);
    test_gqa(1, 33, 6, 3, 64);
    test_packed(2, 37, 3, 8);
    test_packed(1, 96, 2, 64);
    CHECK_DONE();
}
