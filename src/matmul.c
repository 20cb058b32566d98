/* matmul.c — matrix products: OpenBLAS sgemm, plus a skinny kernel for few rows (decoding), and the
 * OpenBLAS set-up and checks. */
#include "iqtrain/matmul.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>

/* declared by OpenBLAS's cblas.h in recent versions; repeated here for older headers */
int openblas_get_parallel(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);

/* C (M,N) = alpha * A (M,K) @ op(B) + beta * C for M <= IQ_SKINNY_M rows (one decoding step of a few
 * sequences) as M matrix-vector products. OpenBLAS's sgemm packs all of B on every call, which for a
 * handful of rows costs more than the product; its sgemv streams B once per row. Measured on 2 threads
 * (256 x 768 weights, 1 row: sgemm 78 us, sgemv 41 us; 768 x 2304, 2 rows: 799 vs 298-625 us; the 50257-row
 * LM head at 4 rows: about even, so 2 is the limit). */
enum { IQ_SKINNY_M = 2 };

static void sgemm_skinny(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, float *C, int ldc) {
    for (int m = 0; m < M; m++) {
        /* row m of C = alpha * op(B)^T a + beta c: B (K,N) -> B^T a is sgemv Trans; B (N,K) -> B a is NoTrans */
        if (trans_b)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A + (size_t)m * lda, 1, beta, C + (size_t)m * ldc, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A + (size_t)m * lda, 1, beta, C + (size_t)m * ldc, 1);
    }
}

void iq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const float *B, float beta,
              float *C) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* C = beta * C */
        for (long i = 0; i < (long)M * N; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
        return;
    }
    iq_sgemm_ld(trans_a, trans_b, M, N, K, alpha, A, trans_a ? M : K, B, trans_b ? K : N, beta, C, N);
}

void iq_sgemm_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    if (!trans_a && M <= IQ_SKINNY_M) {
        sgemm_skinny(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, lda, B, ldb, beta, C, ldc);
}

iq_status iq_blas_check(void) {
    int par = openblas_get_parallel();
    if (par != 2)
        return iq_fail(IQ_EINTERNAL,
                       "the OpenBLAS loaded at run time is the %s build, not the OpenMP one: install "
                       "libopenblas0-openmp and rebuild (DESIGN §8)",
                       par == 1 ? "pthread" : "sequential");
    return IQ_OK;
}

const char *iq_blas_info(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s (core %s)", openblas_get_config(), openblas_get_corename());
    return buf;
}

void iq_set_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int iq_get_threads(void) { return omp_get_max_threads(); }

int iq_default_threads(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    return omp_get_num_procs();
}
