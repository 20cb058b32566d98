/* test_matmul.c — iq_sgemm / iq_sgemm_ld (OpenBLAS sgemm, and sgemv for few rows) against a naive double
 * reference for every transpose combination, odd sizes, alpha/beta and strides; iq_vexp against exp. */
#include <math.h>
#include <stdlib.h>

#include "../../src/vecmath.h"
#include "check.h"
#include "iqtrain/matmul.h"

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* C (M,N) = alpha op(A) op(B) + beta C with leading dimensions; returns the worst relative error */
static double check_case(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int pad, unsigned seed) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int ar = ta ? K : M, br = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)ar * lda), *B = malloc(sizeof(float) * (size_t)br * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc), *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    for (int i = 0; i < ar * lda; i++) A[i] = frand(&seed);
    for (int i = 0; i < br * ldb; i++) B[i] = frand(&seed);
    for (int i = 0; i < M * ldc; i++) C0[i] = C[i] = beta == 0.0f ? NAN : frand(&seed); /* beta 0: C is not read */
    if (pad == 0)
        iq_sgemm(ta, tb, M, N, K, alpha, A, B, beta, C);
    else
        iq_sgemm_ld(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0.0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0, mag = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                double b = tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                s += a * b;
                mag += fabs(a * b);
            }
            double want = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)C0[(size_t)m * ldc + n]);
            double got = C[(size_t)m * ldc + n];
            double err = fabs(got - want) / (fabs(alpha) * mag + fabs(want) + 1e-30);
            if (!(err <= worst)) worst = isnan(err) ? INFINITY : err;
        }
    /* the padding columns of C are untouched */
    for (int m = 0; m < M && pad; m++)
        for (int n = N; n < ldc; n++)
            if (!(C[(size_t)m * ldc + n] == C0[(size_t)m * ldc + n] || (isnan(C[(size_t)m * ldc + n]) && isnan(C0[(size_t)m * ldc + n]))))
                worst = INFINITY;
    free(A);
    free(B);
    free(C);
    free(C0);
    return worst;
}

static void test_sgemm(void) {
    const int Ms[] = {1, 2, 3, 5, 40}, Ns[] = {1, 7, 33, 130}, Ks[] = {1, 9, 64, 300};
    unsigned seed = 7;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (unsigned i = 0; i < sizeof Ms / sizeof *Ms; i++)
                for (unsigned j = 0; j < sizeof Ns / sizeof *Ns; j++)
                    for (unsigned k = 0; k < sizeof Ks / sizeof *Ks; k++)
                        for (int v = 0; v < 3; v++) {
                            float alpha = v == 2 ? -0.5f : 1.0f, beta = v == 0 ? 0.0f : 1.5f;
                            int pad = v == 2 ? 3 : 0;
                            double e = check_case(ta, tb, Ms[i], Ns[j], Ks[k], alpha, beta, pad, seed++);
                            CHECK_MSG(e < 1e-5, "ta %d tb %d M %d N %d K %d alpha %g beta %g pad %d: rel err %g", ta, tb,
                                      Ms[i], Ns[j], Ks[k], alpha, beta, pad, e);
                        }
}

static void test_vexp(void) {
    double worst = 0.0;
    for (double x = -87.0; x <= 88.25; x += 0.0137) {
        double e = fabs((double)iq_vexp((float)x) - exp((double)(float)x)) / exp((double)(float)x);
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 5e-7, "iq_vexp worst relative error %g", worst);
    CHECK(iq_vexp(0.0f) == 1.0f);
    CHECK(iq_vexp(-88.0f) == 0.0f);
    CHECK(iq_vexp(-1000.0f) == 0.0f);
    CHECK(iq_vexp(-INFINITY) == 0.0f);
    CHECK(isnan(iq_vexp(NAN)));
    CHECK(isfinite(iq_vexp(1000.0f)) && iq_vexp(1000.0f) > 1e38f);
}

int main(void) {
    iq_set_threads(2);
    test_sgemm();
    test_vexp();
    CHECK_DONE();
}
