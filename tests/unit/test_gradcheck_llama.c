/* test_gradcheck_llama — finite-difference checks of the Llama layers' backward (kernels_llama.h): RMSNorm,
 * [out, in] linear with bias, rotate-half RoPE (llama3-scaled frequencies), grouped-query attention (4 query
 * heads over 2 key/value heads) and the SiLU-gated MLP; and the embedding's scatter.
 *
 * As test_gradcheck: the analytic gradient dotted with a random direction v against
 * (L(x + h v) - L(x - h v)) / 2h, L = sum(w * out) with w random, accumulated in double. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "iqtrain/kernels_llama.h"
#include "iqtrain/matmul.h"
#include "iqtrain/rng.h"

enum { B = 2, T = 5, C = 8, OC = 6, HQ = 4, HK = 2, D = 4, N = B * T, QW = HQ * D, KW = HK * D };

static iq_rng g_rng;

static float *randn(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * iq_rng_normal(&g_rng);
    return p;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*objective)(void *ctx);

/* the analytic directional derivative g.v against central differences of f along v (x perturbed in place) */
static void check_dir(const char *what, objective f, void *ctx, float *x, const float *g, size_t n) {
    float *v = randn(n, 1.0f), h = 1e-3f;
    for (size_t i = 0; i < n; i++) x[i] += h * v[i];
    double lp = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] -= 2 * h * v[i];
    double lm = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] += h * v[i];
    double fd = (lp - lm) / (2.0 * h), an = dot(g, v, n);
    CHECK_MSG(fabs(an - fd) <= 1e-3 * (fabs(an) + fabs(fd)) + 1e-6, "%s: analytic %.8g, finite differences %.8g", what, an, fd);
    free(v);
}

typedef struct {
    float *x, *w, *b, *out, *rstd, *wout;
} norm_ctx;

static double rms_obj(void *p) {
    norm_ctx *c = p;
    iq_rmsnorm_forward(c->out, c->rstd, c->x, c->w, N, C, 1e-5f);
    return dot(c->out, c->wout, N * C);
}

static void test_rmsnorm_backward(void) {
    norm_ctx c = {randn(N * C, 1), randn(C, 1), NULL, zeros(N * C), zeros(N), randn(N * C, 1)};
    float *dx = zeros(N * C), *dw = zeros(C);
    rms_obj(&c);
    iq_rmsnorm_backward(dx, dw, c.wout, c.x, c.w, c.rstd, N, C);
    check_dir("rmsnorm dinp", rms_obj, &c, c.x, dx, N * C);
    check_dir("rmsnorm dweight", rms_obj, &c, c.w, dw, C);
    free(c.x), free(c.w), free(c.out), free(c.rstd), free(c.wout), free(dx), free(dw);
}

static double lin_obj(void *p) {
    norm_ctx *c = p;
    iq_linear_forward(c->out, c->x, c->w, c->b, N, C, OC);
    return dot(c->out, c->wout, N * OC);
}

static void test_linear_backward(void) {
    norm_ctx c = {randn(N * C, 1), randn(OC * C, 1), randn(OC, 1), zeros(N * OC), NULL, randn(N * OC, 1)};
    float *dx = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
    iq_linear_backward(dx, dw, db, c.wout, c.x, c.w, N, C, OC, 1.0f);
    check_dir("linear dinp", lin_obj, &c, c.x, dx, N * C);
    check_dir("linear dweight", lin_obj, &c, c.w, dw, OC * C);
    check_dir("linear dbias", lin_obj, &c, c.b, db, OC);
    free(c.x), free(c.w), free(c.b), free(c.out), free(c.wout), free(dx), free(dw), free(db);
}

typedef struct {
    float *x, *out, *wout, cos_t[T * D / 2], sin_t[T * D / 2];
} rope_ctx;

static double rope_obj(void *p) {
    rope_ctx *c = p;
    memcpy(c->out, c->x, N * QW * sizeof(float));
    iq_rope_forward(c->out, c->cos_t, c->sin_t, N, T, HQ, D);
    return dot(c->out, c->wout, N * QW);
}

static void test_rope_backward(void) {
    double f[D / 2];
    iq_rope_freqs(f, D, 10000.0, 8.0, 1.0, 4.0, 16);
    rope_ctx c = {randn(N * QW, 1), zeros(N * QW), randn(N * QW, 1), {0}, {0}};
    iq_rope_table(c.cos_t, c.sin_t, NULL, T, f, D);
    float *dx = malloc(N * QW * sizeof *dx);
    memcpy(dx, c.wout, N * QW * sizeof *dx);
    iq_rope_backward(dx, c.cos_t, c.sin_t, N, T, HQ, D);
    check_dir("rope dx", rope_obj, &c, c.x, dx, N * QW);
    /* a rotation: the norm of every row is kept */
    rope_obj(&c);
    CHECK(fabs(dot(c.out, c.out, N * QW) - dot(c.x, c.x, N * QW)) < 1e-4 * dot(c.x, c.x, N * QW));
    free(c.x), free(c.out), free(c.wout), free(dx);
}

typedef struct {
    float *q, *k, *v, *out, *att, *wout;
} gqa_ctx;

static double gqa_obj(void *p) {
    gqa_ctx *c = p;
    iq_gqa_forward(c->out, c->att, c->q, c->k, c->v, B, T, HQ, HK, D);
    return dot(c->out, c->wout, N * QW);
}

static void test_gqa_backward(void) {
    gqa_ctx c = {randn(N * QW, 1), randn(N * KW, 1), randn(N * KW, 1), zeros(N * QW), zeros(B * HQ * T * T),
                 randn(N * QW, 1)};
    float *dq = zeros(N * QW), *dk = zeros(N * KW), *dv = zeros(N * KW), *datt = zeros(B * HQ * T * T);
    gqa_obj(&c);
    iq_gqa_backward(dq, dk, dv, datt, c.wout, c.q, c.k, c.v, c.att, B, T, HQ, HK, D);
    check_dir("gqa dq", gqa_obj, &c, c.q, dq, N * QW);
    check_dir("gqa dk", gqa_obj, &c, c.k, dk, N * KW);
    check_dir("gqa dv", gqa_obj, &c, c.v, dv, N * KW);
    /* causal: the first position's output is its own value row (of its key/value head) */
    gqa_obj(&c);
    CHECK(fabsf(c.out[QW - 1] - c.v[KW - 1]) < 1e-6f && fabsf(c.out[0] - c.v[0]) < 1e-6f);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.att), free(c.wout), free(dq), free(dk), free(dv), free(datt);
}

static double swiglu_obj(void *p) {
    norm_ctx *c = p; /* x = gate, w = up */
    iq_swiglu_forward(c->out, c->x, c->w, N * C);
    return dot(c->out, c->wout, N * C);
}

static void test_swiglu_backward(void) {
    norm_ctx c = {randn(N * C, 2), randn(N * C, 1), NULL, zeros(N * C), NULL, randn(N * C, 1)};
    float *dg = zeros(N * C), *du = zeros(N * C);
    iq_swiglu_backward(dg, du, c.wout, c.x, c.w, N * C);
    check_dir("swiglu dgate", swiglu_obj, &c, c.x, dg, N * C);
    check_dir("swiglu dup", swiglu_obj, &c, c.w, du, N * C);
    free(c.x), free(c.w), free(c.out), free(c.wout), free(dg), free(du);
}

static void test_embed_backward(void) {
    int32_t ids[N] = {3, 1, 3, 0, 2, 3, 1, 1, 0, 2};
    float *emb = randn(4 * C, 1), *out = zeros(N * C), *d = randn(N * C, 1), *demb = zeros(4 * C);
    iq_embed_forward(out, ids, emb, N, C);
    CHECK(memcmp(out + 2 * C, emb + 3 * C, C * sizeof(float)) == 0);
    iq_embed_backward(demb, d, ids, N, C);
    double want = (double)d[0 * C + 5] + d[2 * C + 5] + d[5 * C + 5], got = demb[3 * C + 5];
    CHECK_MSG(fabs(want - got) < 1e-5, "embed: %g vs %g", got, want);
    free(emb), free(out), free(d), free(demb);
}

int main(void) {
    iq_set_threads(2);
    iq_rng_seed(&g_rng, 7, 1);
    test_rmsnorm_backward();
    test_linear_backward();
    test_rope_backward();
    test_gqa_backward();
    test_swiglu_backward();
    test_embed_backward();
    CHECK_DONE();
}
