/* matmul.h — the one interface for matrix products and the BLAS thread pool (DESIGN §8).
 * OpenBLAS (Debian's OpenMP build) always; oneDNN joins with the performance work. */
#ifndef IQTRAIN_MATMUL_H
#define IQTRAIN_MATMUL_H

#include <stdbool.h>

#include "iqtrain/util.h"

/* C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major. op(A) is (M,K): A is (M,K), or (K,M) when
 * trans_a. op(B) is (K,N): B is (K,N), or (N,K) when trans_b. Leading dimensions are the natural ones. */
void iq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const float *B, float beta,
              float *C);

/* The same with explicit leading dimensions (row-major strides of A, B and C). */
void iq_sgemm_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc);

/* Checks that the OpenBLAS loaded at run time is the OpenMP build (one thread pool with our OpenMP
 * loops). 70 with an explanation otherwise. */
iq_status iq_blas_check(void);
/* "OpenBLAS 0.3.21 ... (core Haswell)" or similar. */
const char *iq_blas_info(void);
/* Sets the thread count for OpenMP and OpenBLAS. */
void iq_set_threads(int n);
int iq_get_threads(void);
/* CPUs in this process's affinity mask (the --threads default). */
int iq_default_threads(void);

#endif
