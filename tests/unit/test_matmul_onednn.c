/* test_matmul_onednn.c — the oneDNN backend of iq_sgemm against a naive double reference: every transpose
 * combination, odd sizes, alpha/beta and strides, in fp32 and bf16; repeatable results; the primitive
 * cache past its capacity; products inside a parallel region; bf16 rounding; configuration errors and
 * the facts; bf16 copies of parameters (iq_sgemm_w) and their invalidation; groups. Exits 77 (skipped) in a build without oneDNN, and after the fp32 checks when oneDNN has no
 * bf16 matmul on this CPU.
 *
 * Tolerances (err = |got - want| / (|alpha| sum_k |a_k b_k| + |want|), want from the fp32 operands):
 *   fp32: 1e-5 (fp32 accumulation over K <= 300: K * 2^-24 = 1.8e-5 worst case, ~sqrt(K) 2^-24 typical).
 *   bf16: each operand is rounded to 8 significant bits, relative error <= u = 2^-8, so each product
 *         a_k b_k is off by at most (2u + u^2) |a_k b_k|: err <= 2u + u^2 = 7.83e-3, plus the fp32 part.
 *         Against a reference computed from the bf16-rounded operands the product must agree to 1e-5: that
 *         pins down round-to-nearest-even operands and fp32 accumulation. */
#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/matmul_onednn.h"
#include "check.h"
#include "iqtrain/matmul.h"
#include "iqtrain/safetensors.h"

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static double as_bf16(float x) { return iq_bf16_to_f32(iq_f32_to_bf16(x)); }

typedef struct {
    double vs_fp32, vs_rounded; /* worst relative errors against the two references */
} errs;

/* C (M,N) = alpha op(A) op(B) + beta C with padding `pad` on every leading dimension */
static errs check_case(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int pad, unsigned seed) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int ar = ta ? K : M, br = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)ar * lda), *B = malloc(sizeof(float) * (size_t)br * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc), *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    for (int i = 0; i < ar * lda; i++) A[i] = frand(&seed);
    for (int i = 0; i < br * ldb; i++) B[i] = frand(&seed);
    for (int i = 0; i < M * ldc; i++) C0[i] = C[i] = beta == 0.0f ? NAN : frand(&seed); /* beta 0: C is not read */
    if (pad == 0) iq_sgemm(ta, tb, M, N, K, alpha, A, B, beta, C);
    else iq_sgemm_ld(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    errs w = {0, 0};
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0, sr = 0.0, mag = 0.0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                float b = tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                s += (double)a * b;
                sr += as_bf16(a) * as_bf16(b);
                mag += fabs((double)a * b);
            }
            double c0 = beta == 0.0f ? 0.0 : beta * (double)C0[(size_t)m * ldc + n];
            double want = alpha * s + c0, want_r = alpha * sr + c0, got = C[(size_t)m * ldc + n];
            double e = fabs(got - want) / (fabs(alpha) * mag + fabs(want) + 1e-30);
            double er = fabs(got - want_r) / (fabs(alpha) * mag + fabs(want_r) + 1e-30);
            if (!(e <= w.vs_fp32)) w.vs_fp32 = isnan(e) ? INFINITY : e;
            if (!(er <= w.vs_rounded)) w.vs_rounded = isnan(er) ? INFINITY : er;
        }
    for (int m = 0; m < M && pad; m++) /* the padding columns of C are untouched */
        for (int n = N; n < ldc; n++) {
            float g = C[(size_t)m * ldc + n], o = C0[(size_t)m * ldc + n];
            if (!(g == o || (isnan(g) && isnan(o)))) w.vs_fp32 = w.vs_rounded = INFINITY;
        }
    free(A);
    free(B);
    free(C);
    free(C0);
    return w;
}

/* every transpose, sizes from 1 to 300 (M = 1, 2: the decoding shapes), alpha/beta, padding */
static void test_products(bool bf16) {
    const int Ms[] = {1, 2, 5, 40}, Ns[] = {1, 33, 130}, Ks[] = {1, 9, 300};
    const double u = 1.0 / 256, tol_fp32 = bf16 ? 2 * u + u * u + 1e-5 : 1e-5;
    unsigned seed = bf16 ? 11 : 7;
    double worst = 0, worst_r = 0;
    for (int t = 0; t < 4; t++)
        for (unsigned i = 0; i < sizeof Ms / sizeof *Ms; i++)
            for (unsigned j = 0; j < sizeof Ns / sizeof *Ns; j++)
                for (unsigned k = 0; k < sizeof Ks / sizeof *Ks; k++)
                    for (int v = 0; v < 3; v++) {
                        bool ta = t & 1, tb = t >> 1;
                        float alpha = v == 2 ? -0.5f : 1.0f, beta = v == 0 ? 0.0f : 1.5f;
                        int pad = v == 2 ? 3 : 0;
                        errs e = check_case(ta, tb, Ms[i], Ns[j], Ks[k], alpha, beta, pad, seed++);
                        CHECK_MSG(e.vs_fp32 < tol_fp32, "%s ta %d tb %d M %d N %d K %d alpha %g beta %g pad %d: err %g",
                                  bf16 ? "bf16" : "fp32", ta, tb, Ms[i], Ns[j], Ks[k], alpha, beta, pad, e.vs_fp32);
                        if (bf16)
                            CHECK_MSG(e.vs_rounded < 1e-5, "bf16 ta %d tb %d M %d N %d K %d: err vs rounded operands %g",
                                      ta, tb, Ms[i], Ns[j], Ks[k], e.vs_rounded);
                        if (e.vs_fp32 > worst) worst = e.vs_fp32;
                        if (e.vs_rounded > worst_r) worst_r = e.vs_rounded;
                    }
    printf("%s: worst relative error %.3g against fp32 operands (limit %.3g), %.3g against bf16-rounded ones\n",
           bf16 ? "bf16" : "fp32", worst, tol_fp32, worst_r);
    /* bf16 really rounds: some product must be further from the fp32 reference than fp32 arithmetic gets */
    if (bf16) CHECK_MSG(worst > 1e-4, "bf16 products look like fp32 ones (worst %g)", worst);
}

/* the same product twice is the same bits (primitive reused from the cache), and a run of more distinct
 * shapes than the cache holds leaves every product right */
static void test_repeat_and_cache(void) {
    int M = 64, N = 96, K = 128;
    unsigned seed = 3;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = frand(&seed);
    for (int i = 0; i < K * N; i++) B[i] = frand(&seed);
    iq_sgemm(false, false, M, N, K, 1.0f, A, B, 0.0f, C1);
    iq_sgemm(false, false, M, N, K, 1.0f, A, B, 0.0f, C2);
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    for (int m = 1; m <= 80; m++) { /* 80 shapes > 64 entries: evictions */
        errs e = check_case(false, m & 1, m, 17, 23, 1.0f, 0.0f, 0, seed++);
        CHECK_MSG(e.vs_fp32 < 8e-3, "after %d shapes: err %g", m, e.vs_fp32);
    }
    iq_sgemm(false, false, M, N, K, 1.0f, A, B, 0.0f, C2); /* rebuilt after eviction: still the same bits */
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    free(A);
    free(B);
    free(C1);
    free(C2);
}

/* inside a parallel region a product runs on OpenBLAS in fp32 (attention's per-head calls rely on it) */
static void test_in_parallel(void) {
    int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
    {
        errs e = check_case(false, true, 40, 33, 300, 1.0f, 0.0f, 0, 100u + (unsigned)omp_get_thread_num());
        bad += !(e.vs_fp32 < 1e-5);
    }
    CHECK_MSG(bad == 0, "%d products inside a parallel region were not fp32-accurate", bad);
}

/* iq_sgemm_w (B a parameter, its bf16 copy kept): the same bits as iq_sgemm, and a changed parameter is seen
 * after iq_matmul_params_changed() (the optimizer's call) and, as a guard, when all of it changed without it */
static void test_param_copies(void) {
    int M = 48, N = 80, K = 64;
    unsigned seed = 21;
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = frand(&seed);
    for (int i = 0; i < K * N; i++) W[i] = frand(&seed);
    for (int tb = 0; tb < 2; tb++) {
        iq_sgemm(false, tb, M, N, K, 1.0f, A, W, 0.0f, C1);
        iq_sgemm_w(false, tb, M, N, K, 1.0f, A, W, 0.0f, C2);
        CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
        iq_sgemm_w(false, tb, M, N, K, 1.0f, A, W, 0.0f, C2); /* from the kept copy */
        CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    }
    W[5] += 1.0f; /* one value: the fingerprint does not see it, the optimizer's call does */
    iq_matmul_params_changed();
    iq_sgemm(false, false, M, N, K, 1.0f, A, W, 0.0f, C1);
    iq_sgemm_w(false, false, M, N, K, 1.0f, A, W, 0.0f, C2);
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    for (int i = 0; i < K * N; i++) W[i] *= 2.0f; /* all of it, without the call: the fingerprint sees it */
    iq_sgemm(false, false, M, N, K, 1.0f, A, W, 0.0f, C1);
    iq_sgemm_w(false, false, M, N, K, 1.0f, A, W, 0.0f, C2);
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    free(A);
    free(W);
    free(C1);
    free(C2);
}

/* a group (operands rounded once and shared) gives the same bits as the same products one by one; a product
 * after the group rounds its operands again (a changed operand is seen) */
static void test_group(void) {
    int N = 40, C = 24, OC = 72;
    unsigned seed = 31;
    float *dout = malloc(sizeof(float) * N * OC), *inp = malloc(sizeof(float) * N * C), *W = malloc(sizeof(float) * C * OC);
    float *dx1 = calloc((size_t)N * C, sizeof(float)), *dx2 = calloc((size_t)N * C, sizeof(float));
    float *dw1 = calloc((size_t)C * OC, sizeof(float)), *dw2 = calloc((size_t)C * OC, sizeof(float));
    for (int i = 0; i < N * OC; i++) dout[i] = frand(&seed);
    for (int i = 0; i < N * C; i++) inp[i] = frand(&seed);
    for (int i = 0; i < C * OC; i++) W[i] = frand(&seed);
    iq_sgemm(false, true, N, C, OC, 1.0f, dout, W, 1.0f, dx1);
    iq_sgemm(true, false, C, OC, N, 1.0f, inp, dout, 1.0f, dw1);
    iq_matmul_group_begin();
    iq_sgemm_w(false, true, N, C, OC, 1.0f, dout, W, 1.0f, dx2);
    iq_sgemm(true, false, C, OC, N, 1.0f, inp, dout, 1.0f, dw2);
    iq_matmul_group_end();
    CHECK(memcmp(dx1, dx2, sizeof(float) * N * C) == 0);
    CHECK(memcmp(dw1, dw2, sizeof(float) * C * OC) == 0);
    for (int i = 0; i < N * OC; i++) dout[i] = -dout[i]; /* after the group: no stale copy */
    iq_sgemm(true, false, C, OC, N, 1.0f, inp, dout, 1.0f, dw2);
    double worst = 0;
    for (int i = 0; i < C * OC; i++) worst = fmax(worst, fabs(dw2[i]));
    CHECK_MSG(worst < 1e-5, "dW - dW after negating dout: %g", worst);
    free(dout);
    free(inp);
    free(W);
    free(dx1);
    free(dx2);
    free(dw1);
    free(dw2);
}

static void test_bf16_rounding(void) {
    const float xs[] = {0.0f, -0.0f, 1.0f, 1.00390625f /* tie, even below */, 1.01171875f /* tie, odd below */,
                        3.14159265f, -2.5e-3f, 1e-40f, 3.4e38f, INFINITY, -INFINITY, NAN};
    enum { N = sizeof xs / sizeof *xs };
    uint16_t out[N];
    iq_f32_to_bf16_n(out, xs, N);
    for (int i = 0; i < N; i++) CHECK_MSG(out[i] == iq_f32_to_bf16(xs[i]), "x %g: %04x vs %04x", xs[i], out[i], iq_f32_to_bf16(xs[i]));
    CHECK(out[3] == 0x3F80 && out[4] == 0x3F82);
    CHECK(isnan(iq_bf16_to_f32(out[N - 1])));
}

static void test_configuration(void) {
    CHECK(iq_matmul_configure("openblas", "bf16") == IQ_EUSAGE);
    CHECK(iq_matmul_configure("cuda", "fp32") == IQ_EUSAGE);
    CHECK(iq_matmul_configure("auto", "fp16") == IQ_EUSAGE);
    CHECK(iq_matmul_configure("openblas", "fp32") == IQ_OK && iq_matmul_backend() == IQ_MM_OPENBLAS);
    CHECK(strcmp(iq_matmul_isa(), "none") == 0);
    CHECK(iq_matmul_configure("auto", "bf16") == IQ_OK && iq_matmul_backend() == IQ_MM_ONEDNN);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "backend", "stale");
    iq_matmul_add_facts(j);
    const char *keys[] = {"backend", "precision", "onednn_isa", "onednn_impl", "onednn_version", "openblas_core",
                          "openblas_coretype", "cpu_flags"};
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) CHECK_MSG(cJSON_HasObjectItem(j, keys[i]), "no %s", keys[i]);
    CHECK(strcmp(cJSON_GetObjectItem(j, "backend")->valuestring, "onednn") == 0);
    CHECK(cJSON_GetArraySize(j) == (int)(sizeof keys / sizeof *keys)); /* "backend" replaced, not repeated */
    cJSON_Delete(j);
}

int main(void) {
    if (!iq_onednn_built()) {
        printf("this build has no oneDNN: skipped\n");
        return 77;
    }
    iq_set_threads(2);
    test_configuration();
    test_bf16_rounding();
    CHECK(iq_matmul_configure("onednn", "fp32") == IQ_OK && iq_matmul_backend() == IQ_MM_ONEDNN);
    test_products(false);
    test_repeat_and_cache();
    test_in_parallel();
    test_param_copies();
    CHECK(iq_matmul_configure("onednn", "bf16") == IQ_OK);
    bool bf16 = iq_matmul_precision() == IQ_MM_BF16;
    if (bf16) {
        printf("bf16 on %s (%s)\n", iq_matmul_isa(), iq_dnnl_impl(true));
        test_products(true);
        test_repeat_and_cache();
        test_in_parallel();
        test_param_copies();
        test_group();
    } else {
        printf("oneDNN has no bf16 matmul on this CPU: the bf16 checks are skipped\n");
    }
    if (check_failed || bf16) CHECK_DONE();
    printf("%d passed, 0 failed (bf16 skipped)\n", check_passed);
    return 77;
}
