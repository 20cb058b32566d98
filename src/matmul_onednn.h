/* matmul_onednn.h — the oneDNN backend of matmul.c (internal to the library; built with IQ_ONEDNN). */
#ifndef IQTRAIN_MATMUL_ONEDNN_H
#define IQTRAIN_MATMUL_ONEDNN_H

#include <stdbool.h>
#include <stdint.h>

/* Creates oneDNN's CPU engine and stream (once). false with iq_fail's message if oneDNN cannot run. */
bool iq_dnnl_init(void);

/* C (M,N) = alpha op(A) op(B) + beta C as in iq_sgemm_ld. fp32: dnnl_sgemm (why: matmul_onednn.c). bf16: A
 * and B are rounded to bf16 (into scratch buffers that grow to the largest product seen and are then reused)
 * and multiplied on oneDNN's matmul primitive, accumulated in fp32; primitives are created once per shape,
 * leading dimensions, alpha, beta and precision, and kept (least recently used out beyond 64). Not
 * thread-safe: call from one thread, outside parallel regions. false if oneDNN refused the product (the
 * caller falls back). */
bool iq_dnnl_gemm(bool bf16, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
/* The same where B is a parameter: with bf16 its rounded copy is kept (one per distinct B, up to 256) and
 * reused while the parameter version (iq_dnnl_params_changed) and a fingerprint of B are unchanged. */
bool iq_dnnl_gemm_w(bool bf16, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc);
void iq_dnnl_params_changed(void);
/* bf16 with B already in bf16 (B (K,N), or (N,K) when trans_b, row stride ldb): A rounded as in iq_dnnl_gemm. */
bool iq_dnnl_gemm_bw(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const uint16_t *B, int ldb, float beta, float *C, int ldc);
/* A group of products whose operands are not written in between: bf16 copies are shared (matmul.h). */
void iq_dnnl_group_begin(void);
void iq_dnnl_group_end(void);

/* oneDNN's implementation name for a 256 x 256 x 256 product at that precision ("brg:avx512_core_bf16"; fp32:
 * "gemm:jit", dnnl_sgemm's). */
const char *iq_dnnl_impl(bool bf16);
/* "2.6.3" */
const char *iq_dnnl_version(void);
/* The highest ISA oneDNN dispatches to on this CPU: "amx", "avx512_core_bf16", "avx512_core", "avx2", ... */
const char *iq_dnnl_cpu_isa(void);

/* fp32 -> bf16, round to nearest even (NaN stays NaN): n values. */
void iq_f32_to_bf16_n(uint16_t *out, const float *in, long n);

#endif
