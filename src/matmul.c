/* matmul.c — OpenBLAS set-up and checks. */
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

void iq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const float *B, float beta,
              float *C) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* C = beta * C */
        for (long i = 0; i < (long)M * N; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, trans_a ? M : K, B, trans_b ? K : N, beta, C, N);
}

void iq_sgemm_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
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
