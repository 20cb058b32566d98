/* test_gradcheck — finite-difference checks of every layer's backward and of the whole IQLearn loss
 * gradient, and lambda = 0 being exactly the cross-entropy.
 *
 * Each check compares a directional derivative: the analytic gradient dotted with a random direction v
 * against (L(x + h v) - L(x - h v)) / 2h, with L = sum(w * out) for layers (w random) and the loss itself
 * for the model. Accumulation is in double; with fp32 forwards the agreement is ~1e-4 relative. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "iqtrain/data.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/kernels.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model.h"
#include "iqtrain/rng.h"

static iq_rng g_rng;

static float *randn(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * iq_rng_normal(&g_rng);
    return p;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* relative agreement of an analytic and a numeric directional derivative */
static bool close_enough(double an, double fd, double rtol) {
    return fabs(an - fd) <= rtol * (fabs(an) + fabs(fd)) + 1e-6;
}

// ----------------------------------------------------------------------------------------------------
// layers

enum { B = 2, T = 5, C = 8, H = 2, N = B * T };

typedef double (*objective)(void *ctx);

/* d/dh L(x + h v) at 0 by central differences, x perturbed in place */
static double numeric(objective f, void *ctx, float *x, const float *v, size_t n, float h) {
    for (size_t i = 0; i < n; i++) x[i] += h * v[i];
    double lp = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] -= 2 * h * v[i];
    double lm = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] += h * v[i];
    return (lp - lm) / (2.0 * h);
}

typedef struct {
    float *inp, *w, *b, *out, *mean, *rstd, *wout;
} ln_ctx;

static double ln_obj(void *p) {
    ln_ctx *c = p;
    iq_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, N, C, 1e-5f);
    return dot(c->out, c->wout, N * C);
}

static void test_layernorm_backward(void) {
    ln_ctx c = {randn(N * C, 1), randn(C, 1), randn(C, 1), zeros(N * C), zeros(N), zeros(N), randn(N * C, 1)};
    float *din = zeros(N * C), *dw = zeros(C), *db = zeros(C);
    ln_obj(&c);
    iq_layernorm_backward(din, dw, db, c.wout, c.inp, c.w, c.mean, c.rstd, N, C);
    float *v1 = randn(N * C, 1), *v2 = randn(C, 1), *v3 = randn(C, 1);
    double n1 = numeric(ln_obj, &c, c.inp, v1, N * C, 1e-3f), n2 = numeric(ln_obj, &c, c.w, v2, C, 1e-3f),
           n3 = numeric(ln_obj, &c, c.b, v3, C, 1e-3f);
    CHECK_MSG(close_enough(dot(din, v1, N * C), n1, 1e-3), "layernorm dinp %g vs %g", dot(din, v1, N * C), n1);
    CHECK_MSG(close_enough(dot(dw, v2, C), n2, 1e-3), "layernorm dweight %g vs %g", dot(dw, v2, C), n2);
    CHECK_MSG(close_enough(dot(db, v3, C), n3, 1e-3), "layernorm dbias %g vs %g", dot(db, v3, C), n3);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.wout);
    free(din), free(dw), free(db), free(v1), free(v2), free(v3);
}

typedef struct {
    float *inp, *w, *b, *out, *wout;
    int oc;
} mm_ctx;

static double mm_obj(void *p) {
    mm_ctx *c = p;
    iq_matmul_forward(c->out, c->inp, c->w, c->b, N, C, c->oc);
    return dot(c->out, c->wout, (size_t)N * c->oc);
}

static void test_matmul_backward(void) {
    int OC = 3 * C;
    mm_ctx c = {randn(N * C, 1), randn((size_t)C * OC, 0.5f), randn(OC, 1), zeros((size_t)N * OC), randn((size_t)N * OC, 1), OC};
    float *din = zeros(N * C), *dw = zeros((size_t)C * OC), *db = zeros(OC);
    mm_obj(&c);
    iq_matmul_backward(din, dw, db, c.wout, c.inp, c.w, N, C, OC, 1.0f);
    { /* dw_beta 0 writes dweight whatever it held: the same bits as adding to zeros */
        float *din2 = zeros(N * C), *dw2 = randn((size_t)C * OC, 1), *db2 = zeros(OC);
        iq_matmul_backward(din2, dw2, db2, c.wout, c.inp, c.w, N, C, OC, 0.0f);
        CHECK(memcmp(dw2, dw, (size_t)C * OC * sizeof *dw) == 0 && memcmp(din2, din, N * C * sizeof *din) == 0);
        free(din2), free(dw2), free(db2);
    }
    float *v1 = randn(N * C, 1), *v2 = randn((size_t)C * OC, 1), *v3 = randn(OC, 1);
    double n1 = numeric(mm_obj, &c, c.inp, v1, N * C, 1e-2f), n2 = numeric(mm_obj, &c, c.w, v2, (size_t)C * OC, 1e-2f),
           n3 = numeric(mm_obj, &c, c.b, v3, OC, 1e-2f);
    CHECK_MSG(close_enough(dot(din, v1, N * C), n1, 1e-4), "matmul dinp %g vs %g", dot(din, v1, N * C), n1);
    CHECK_MSG(close_enough(dot(dw, v2, (size_t)C * OC), n2, 1e-4), "matmul dweight");
    CHECK_MSG(close_enough(dot(db, v3, OC), n3, 1e-4), "matmul dbias");
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.wout), free(din), free(dw), free(db), free(v1), free(v2), free(v3);
}

typedef struct {
    float *qkv, *out, *att, *wout;
} at_ctx;

static double at_obj(void *p) {
    at_ctx *c = p;
    iq_attention_forward(c->out, c->att, c->qkv, B, T, C, H);
    return dot(c->out, c->wout, N * C);
}

static void test_attention_backward(void) {
    at_ctx c = {randn(N * 3 * C, 1), zeros(N * C), zeros(B * H * T * T), randn(N * C, 1)};
    float *dqkv = zeros(N * 3 * C), *datt = zeros(B * H * T * T);
    at_obj(&c);
    iq_attention_backward(dqkv, datt, c.wout, c.qkv, c.att, B, T, C, H);
    float *v = randn(N * 3 * C, 1);
    double n = numeric(at_obj, &c, c.qkv, v, N * 3 * C, 1e-3f);
    CHECK_MSG(close_enough(dot(dqkv, v, N * 3 * C), n, 1e-3), "attention dqkv %g vs %g", dot(dqkv, v, N * 3 * C), n);
    /* causality: the output at t does not depend on inputs after t */
    float *out0 = zeros(N * C);
    iq_attention_forward(out0, c.att, c.qkv, B, T, C, H);
    c.qkv[(size_t)(T - 1) * 3 * C + 1] += 1.0f; /* key of the last position of batch 0 */
    iq_attention_forward(c.out, c.att, c.qkv, B, T, C, H);
    CHECK(memcmp(out0, c.out, (size_t)(T - 1) * C * sizeof(float)) == 0);
    free(c.qkv), free(c.out), free(c.att), free(c.wout), free(dqkv), free(datt), free(v), free(out0);
}

typedef struct {
    float *inp, *out, *wout;
} ge_ctx;

static double ge_obj(void *p) {
    ge_ctx *c = p;
    iq_gelu_forward(c->out, c->inp, N * C);
    return dot(c->out, c->wout, N * C);
}

static void test_gelu_backward(void) {
    ge_ctx c = {randn(N * C, 2), zeros(N * C), randn(N * C, 1)};
    float *din = zeros(N * C);
    ge_obj(&c);
    iq_gelu_backward(din, c.inp, c.wout, N * C);
    float *v = randn(N * C, 1);
    double n = numeric(ge_obj, &c, c.inp, v, N * C, 1e-3f);
    CHECK_MSG(close_enough(dot(din, v, N * C), n, 1e-3), "gelu %g vs %g", dot(din, v, N * C), n);
    /* the tanh approximation itself: gelu(1) = 0.8411920 (HF gelu_new) */
    float one = 1.0f, g;
    iq_gelu_forward(&g, &one, 1);
    CHECK(fabsf(g - 0.84119199f) < 1e-6f);
    free(c.inp), free(c.out), free(c.wout), free(din), free(v);
}

static void test_encoder_backward(void) {
    int V = 7;
    int32_t ids[N] = {1, 3, 3, 0, 6, 3, 2, 2, 5, 1}; /* repeated tokens */
    float *wte = randn((size_t)V * C, 1), *wpe = randn(T * C, 1), *out = zeros(N * C), *wout = randn(N * C, 1);
    float *dwte = zeros((size_t)V * C), *dwpe = zeros(T * C);
    iq_encoder_forward(out, ids, wte, wpe, B, T, C);
    iq_encoder_backward(dwte, dwpe, wout, ids, B, T, C);
    /* linear: the gradient is exact; check token 3 (three uses) and position 0 by summation */
    for (int c = 0; c < C; c++) {
        float e3 = wout[1 * C + c] + wout[2 * C + c] + wout[5 * C + c];
        float p0 = wout[0 * C + c] + wout[5 * C + c];
        CHECK(fabsf(dwte[3 * C + c] - e3) < 1e-6f);
        CHECK(fabsf(dwpe[c] - p0) < 1e-6f);
    }
    free(wte), free(wpe), free(out), free(wout), free(dwte), free(dwpe);
}

// ----------------------------------------------------------------------------------------------------
// the whole model and loss

typedef struct {
    iq_model *m;
    iq_head *h;
    int32_t *ids;
    uint8_t *flags;
    int *lens;
    int b, t;
    iq_loss_opts lo;
    float inv_n;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    iq_model_forward(c->m, c->ids, c->b, c->t);
    iq_loss_stats st = {0};
    iq_head_loss(c->h, iq_model_lnf(c->m), iq_model_head(c->m), c->ids, c->flags, c->lens, c->b, c->t, &c->lo,
                 c->inv_n, NULL, NULL, &st, NULL, NULL);
    return iq_loss_value(&st, c->lo.lambda, NULL, NULL);
}

static void model_grad(model_ctx *c) {
    iq_model_zero_grad(c->m);
    iq_model_forward(c->m, c->ids, c->b, c->t);
    iq_loss_stats st = {0};
    iq_head_loss(c->h, iq_model_lnf(c->m), iq_model_head(c->m), c->ids, c->flags, c->lens, c->b, c->t, &c->lo,
                 c->inv_n, iq_model_dlnf(c->m), iq_model_head_grad(c->m), &st, NULL, NULL);
    iq_model_backward(c->m, c->ids, c->b, c->t);
}

static void make_batch(model_ctx *c, int V) {
    /* row 0: prompt (3) + completion ending in a terminal EOS; row 1: truncated (last token supervised, not
     * terminal); row 2: multi-turn with two terminal EOS; row 3: short, padded */
    static const int lens[4] = {9, 7, 12, 4};
    c->b = 4;
    c->t = 12;
    c->ids = calloc((size_t)c->b * c->t, sizeof *c->ids);
    c->flags = calloc((size_t)c->b * c->t, 1);
    c->lens = calloc(4, sizeof *c->lens);
    int eos = V - 1, nsup = 0;
    for (int b = 0; b < 4; b++) {
        c->lens[b] = lens[b];
        for (int j = 0; j < lens[b]; j++) {
            c->ids[b * c->t + j] = (int32_t)iq_rng_below(&g_rng, (uint64_t)(V - 1));
            uint8_t f = 0;
            if (b == 0 && j >= 3) f = IQ_TOK_SUPERVISED;
            if (b == 1 && j >= 2) f = IQ_TOK_SUPERVISED;
            if (b == 2 && ((j >= 2 && j <= 4) || (j >= 8))) f = IQ_TOK_SUPERVISED;
            if (b == 3 && j >= 1) f = IQ_TOK_SUPERVISED;
            c->flags[b * c->t + j] = f;
        }
        nsup += 0;
    }
    int terms[4][2] = {{0, 8}, {-1, -1}, {4, 11}, {3, -1}};
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < 2; k++)
            if (terms[b][k] >= 0) {
                c->ids[b * c->t + terms[b][k]] = eos;
                c->flags[b * c->t + terms[b][k]] |= IQ_TOK_TERMINAL;
            }
    for (int i = 0; i < c->b * c->t; i++) nsup += (c->flags[i] & IQ_TOK_SUPERVISED) != 0;
    c->inv_n = 1.0f / (float)nsup;
}

static void test_model_gradient(iq_truncation tr, float lambda, float eps, float beta) {
    iq_model_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 16, .ctx = 16, .vocab = 11, .ln_eps = 1e-5f, .arch = "gpt2"};
    model_ctx c = {0};
    CHECK(iq_model_create(&cfg, IQ_MODEL_TRAIN, 4, 12, &c.m) == IQ_OK);
    iq_model_init(c.m, 7);
    /* larger weights so that every term is visible */
    size_t np;
    float *P = iq_model_param_memory(c.m, &np);
    for (size_t i = 0; i < np; i++) P[i] += 0.1f * iq_rng_normal(&g_rng);
    c.h = iq_head_create(4 * 12, cfg.n_embd, cfg.vocab, 5);
    c.lo = (iq_loss_opts){lambda, 0.9f, IQ_TD_FULL, tr, eps, beta};
    make_batch(&c, cfg.vocab);
    model_grad(&c);
    size_t ng;
    float *G = iq_model_grad_memory(c.m, &ng);
    float *grad = malloc(ng * sizeof *grad);
    memcpy(grad, G, ng * sizeof *grad);
    /* iq_model_zero_grad leaves the weight matrices' gradients for the next backward to write: a second pass
     * gives the same gradient, not twice it; read before any backward, the arena is zero */
    model_grad(&c);
    CHECK(memcmp(iq_model_grad_memory(c.m, &ng), grad, ng * sizeof *grad) == 0);
    iq_model_zero_grad(c.m);
    G = iq_model_grad_memory(c.m, &ng);
    size_t nonzero = 0;
    for (size_t i = 0; i < ng; i++) nonzero += G[i] != 0.0f;
    CHECK_MSG(nonzero == 0, "%zu of %zu gradients not zero after iq_model_zero_grad", nonzero, ng);
    int nt = iq_model_tensor_refs(c.m, NULL);
    iq_tensor_ref *refs = calloc((size_t)nt, sizeof *refs);
    iq_model_tensor_refs(c.m, refs);
    int ok = 0;
    for (int i = 0; i < nt; i++) {
        float *v = randn(refs[i].numel, 1);
        double an = dot(grad + refs[i].offset, v, refs[i].numel);
        double fd = numeric(model_loss, &c, P + refs[i].offset, v, refs[i].numel, 2e-3f);
        /* fp32 forward passes: the central difference carries ~|L| eps / h of round-off, about 1e-4 here */
        bool good = fabs(an - fd) <= 2e-3 * (fabs(an) + fabs(fd)) + 2e-4;
        if (!good || getenv("GRADCHECK_VERBOSE")) fprintf(stderr, "  %s: analytic %.7g, finite differences %.7g\n", refs[i].name, an, fd);
        ok += good;
        free(v);
    }
    CHECK_MSG(ok == nt, "lambda %g truncation %s label smoothing %g entropy coef %g: %d of %d tensors agree with finite "
              "differences", (double)lambda, tr == IQ_TRUNC_DROP ? "drop" : "bootstrap", (double)eps, (double)beta, ok, nt);
    free(refs);
    free(grad);
    free(c.ids), free(c.flags), free(c.lens);
    iq_head_free(c.h);
    iq_model_free(c.m);
}

/* lambda = 0 is plain token cross-entropy: the loss equals nll bit for bit, the gradients do not depend on
 * the TD options at all, and both match a direct double-precision cross-entropy. */
static void test_lambda0_equals_ce(void) {
    iq_model_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 16, .ctx = 16, .vocab = 11, .ln_eps = 1e-5f, .arch = "gpt2"};
    model_ctx c = {0};
    CHECK(iq_model_create(&cfg, IQ_MODEL_TRAIN, 4, 12, &c.m) == IQ_OK);
    iq_model_init(c.m, 3);
    c.h = iq_head_create(4 * 12, cfg.n_embd, cfg.vocab, 3);
    make_batch(&c, cfg.vocab);
    int V = cfg.vocab, Cm = cfg.n_embd, BT = c.b * c.t;
    iq_model_forward(c.m, c.ids, c.b, c.t);
    const float *lnf = iq_model_lnf(c.m), *wte = iq_model_head(c.m);
    float *dl[3], *dw[3];
    double loss[3], nll[3];
    iq_loss_opts variants[3] = {{0.0f, 0.99f, IQ_TD_FULL, IQ_TRUNC_BOOTSTRAP, 0.0f, 0.0f},
                                {0.0f, 0.5f, IQ_TD_SEMI, IQ_TRUNC_BOOTSTRAP, 0.0f, 0.0f},
                                {0.0f, 1.0f, IQ_TD_FULL, IQ_TRUNC_DROP, 0.0f, 0.0f}};
    for (int k = 0; k < 3; k++) {
        dl[k] = zeros((size_t)BT * Cm);
        dw[k] = zeros((size_t)V * Cm);
        iq_loss_stats st = {0};
        iq_head_loss(c.h, lnf, wte, c.ids, c.flags, c.lens, c.b, c.t, &variants[k], c.inv_n, dl[k], dw[k], &st, NULL, NULL);
        loss[k] = iq_loss_value(&st, 0.0f, &nll[k], NULL);
        CHECK(loss[k] == nll[k]);
    }
    CHECK(memcmp(dl[0], dl[1], (size_t)BT * Cm * sizeof(float)) == 0 && memcmp(dl[0], dl[2], (size_t)BT * Cm * sizeof(float)) == 0);
    CHECK(memcmp(dw[0], dw[1], (size_t)V * Cm * sizeof(float)) == 0 && memcmp(dw[0], dw[2], (size_t)V * Cm * sizeof(float)) == 0);
    CHECK(loss[0] == loss[1] && loss[0] == loss[2]);
    /* direct cross-entropy in double */
    double ce = 0;
    int nsup = 0;
    double *dlr = calloc((size_t)BT * Cm, sizeof *dlr);
    for (int b = 0; b < c.b; b++)
        for (int j = 0; j + 1 < c.lens[b]; j++) {
            if (!(c.flags[b * c.t + j + 1] & IQ_TOK_SUPERVISED)) continue;
            const float *x = lnf + (size_t)(b * c.t + j) * Cm;
            double z[64] = {0}, mx = -1e300, s = 0;
            for (int v = 0; v < V; v++) {
                z[v] = 0;
                for (int i = 0; i < Cm; i++) z[v] += (double)x[i] * wte[(size_t)v * Cm + i];
                if (z[v] > mx) mx = z[v];
            }
            for (int v = 0; v < V; v++) s += exp(z[v] - mx);
            double lse = mx + log(s);
            int a = c.ids[b * c.t + j + 1];
            ce += lse - z[a];
            nsup++;
            for (int v = 0; v < V; v++) {
                double g = exp(z[v] - lse) - (v == a);
                for (int i = 0; i < Cm; i++) dlr[(size_t)(b * c.t + j) * Cm + i] += g * wte[(size_t)v * Cm + i];
            }
        }
    ce /= nsup;
    CHECK_MSG(fabs(ce - nll[0]) < 1e-5 * fabs(ce), "cross-entropy %.9g vs %.9g", ce, nll[0]);
    double num = 0, den = 0;
    for (size_t i = 0; i < (size_t)BT * Cm; i++) {
        double r = dlr[i] / nsup;
        num += (r - dl[0][i]) * (r - dl[0][i]);
        den += r * r;
    }
    CHECK_MSG(sqrt(num / den) < 1e-5, "dlnf relative error %g", sqrt(num / den));
    free(dlr);
    for (int k = 0; k < 3; k++) free(dl[k]), free(dw[k]);
    free(c.ids), free(c.flags), free(c.lens);
    iq_head_free(c.h);
    iq_model_free(c.m);
}

int main(void) {
    iq_rng_seed(&g_rng, 1234, 0);
    iq_set_threads(2);
    test_layernorm_backward();
    test_matmul_backward();
    test_attention_backward();
    test_gelu_backward();
    test_encoder_backward();
    test_model_gradient(IQ_TRUNC_BOOTSTRAP, 0.5f, 0.0f, 0.0f);
    test_model_gradient(IQ_TRUNC_DROP, 0.5f, 0.0f, 0.0f);
    test_model_gradient(IQ_TRUNC_BOOTSTRAP, 0.0f, 0.0f, 0.0f);
    /* the controls: label smoothing, the entropy bonus, and both with the TD term */
    test_model_gradient(IQ_TRUNC_BOOTSTRAP, 0.0f, 0.2f, 0.0f);
    test_model_gradient(IQ_TRUNC_BOOTSTRAP, 0.0f, 0.0f, 0.3f);
    test_model_gradient(IQ_TRUNC_DROP, 0.5f, 0.2f, 0.3f);
    test_lambda0_equals_ce();
    CHECK_DONE();
}
