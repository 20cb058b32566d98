/* matmul.h — the one interface for matrix products, their backend and precision, and the BLAS thread
 * pool (DESIGN §8, §10).
 *
 * Backends: OpenBLAS (Debian's OpenMP build, always linked) and oneDNN (libdnnl, when the build found it:
 * CMake IQTRAIN_ONEDNN=AUTO|ON|OFF). Precisions: fp32, and bf16 = the operands rounded to bf16 (round to
 * nearest even), products accumulated and written in fp32; master weights, optimizer and loss stay fp32.
 *
 * Which products follow the precision: every iq_sgemm / iq_sgemm_ld / iq_sgemm_w call made outside an
 * OpenMP parallel region — the three products of each linear layer (forward, input gradient, weight
 * gradient) and the LM head's three (logits, hidden-state gradient, embedding gradient), in training and in
 * generation. In fp32 on oneDNN, products of M <= 2 rows (decoding) stay on OpenBLAS's sgemv.
 * iq_sgemm_fp32_ld is always fp32 on OpenBLAS: attention's per-head products (T x T x head size, 4% of a
 * step's FLOPs at T = 128, called from a parallel loop over heads) use it. A call made inside a parallel
 * region also runs on OpenBLAS in fp32 (one thread, as OpenBLAS does there).
 *
 * Determinism: for a given machine, backend, precision and thread count, every product is the same from
 * run to run (OpenBLAS and oneDNN split the work by shape and thread count only).
 *
 * OpenBLAS's core: Debian's OpenBLAS picks its kernels when the library loads, before main, from CPUID or
 * from OPENBLAS_CORETYPE, and 0.3.21 falls back to the generic "Prescott" kernels on CPUs it does not know
 * (4-5x slower on an AVX-512 Xeon). iq_blas_fix_core() (the first call in main) re-executes the program once
 * with OPENBLAS_CORETYPE set when the loaded core is a generic one and the CPU has AVX-512 (SkylakeX) or
 * AVX2 + FMA (Haswell). A user's OPENBLAS_CORETYPE is always kept. */
#ifndef IQTRAIN_MATMUL_H
#define IQTRAIN_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/util.h"

/* C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major. op(A) is (M,K): A is (M,K), or (K,M) when
 * trans_a. op(B) is (K,N): B is (K,N), or (N,K) when trans_b. Leading dimensions are the natural ones.
 * Runs on the configured backend at the configured precision (see above). beta = 0: C is not read. */
void iq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const float *B, float beta,
              float *C);

/* The same with explicit leading dimensions (row-major strides of A, B and C). */
void iq_sgemm_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc);

/* iq_sgemm where B is a model parameter (a weight matrix): at bf16 its rounded copy is made once and reused
 * until iq_matmul_params_changed() — one conversion per optimizer step instead of one per product, and one
 * per model in generation. The optimizer (iq_adamw_step) calls it; so must any other code that writes
 * parameters between products (a sampled fingerprint of B also catches most writes that forget to). */
void iq_sgemm_w(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const float *W, float beta,
                float *C);
void iq_matmul_params_changed(void);

/* iq_sgemm_w where W is held in bf16 only (a frozen bf16 base, model.h): at bf16 precision on oneDNN the product
 * reads W as it is (A rounded as usual); otherwise W is widened to fp32 (exactly) into a scratch that grows to
 * the largest W and stays, and the product runs as iq_sgemm at the configured precision. */
void iq_sgemm_bw(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const uint16_t *W, float beta,
                 float *C);

/* Brackets consecutive products (at most 4 distinct operands) none of whose operands is written in between
 * — outputs C must not be read by a later product of the group: at bf16 an operand read by several of them
 * (a layer's output gradient, for its input and its weight gradients) is rounded once. No effect in fp32. */
void iq_matmul_group_begin(void);
void iq_matmul_group_end(void);

/* The same, always fp32 on OpenBLAS whatever the configuration; callable from inside parallel regions. */
void iq_sgemm_fp32_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

// ----------------------------------------------------------------------------------------------------
// backend and precision

typedef enum { IQ_MM_OPENBLAS = 0, IQ_MM_ONEDNN = 1 } iq_mm_backend;
typedef enum { IQ_MM_FP32 = 0, IQ_MM_BF16 = 1 } iq_mm_precision;

/* Sets the backend ("auto", "openblas", "onednn"; NULL = auto) and precision ("fp32", "bf16"; NULL =
 * fp32) for the process. Call after iq_set_threads and before the first product; the default until then
 * is OpenBLAS fp32. auto = oneDNN when the build has it and the CPU has AVX2 + FMA or AVX-512 (oneDNN's
 * JIT kernels then match or beat OpenBLAS's; measured in README, Performance), OpenBLAS otherwise.
 * bf16 needs oneDNN: with auto it picks oneDNN; in a build without oneDNN it falls back to fp32 with a
 * notice. 64 with the reason for an unknown name, "onednn" in a build without it, or openblas + bf16.
 * Says once (iq_info) when an fp32 run is on a CPU with native bf16. */
iq_status iq_matmul_configure(const char *backend, const char *precision);
iq_mm_backend iq_matmul_backend(void);
iq_mm_precision iq_matmul_precision(void);
const char *iq_matmul_backend_name(void);   /* "openblas" | "onednn" */
const char *iq_matmul_precision_name(void); /* "fp32" | "bf16" */
/* The ISA of oneDNN's kernels for the configured precision ("amx", "avx512_core_bf16", "avx512_core",
 * "avx2", or oneDNN's implementation name for anything else); "none" on the OpenBLAS backend. */
const char *iq_matmul_isa(void);
/* Whether this build links oneDNN. */
bool iq_onednn_built(void);
/* Adds the facts to a cJSON object (run.json's "build", bench --json): backend, precision, onednn_isa,
 * onednn_impl, onednn_version, openblas_core, openblas_coretype (the environment variable, or null),
 * cpu_flags. Replaces keys of those names already there. */
struct cJSON;
void iq_matmul_add_facts(struct cJSON *obj);

// ----------------------------------------------------------------------------------------------------
// OpenBLAS set-up

/* When the OpenBLAS core loaded is a generic one (Prescott, Core2, ..., not SkylakeX/Cooperlake/
 * SapphireRapids/Haswell/Zen...) below what the CPU offers and OPENBLAS_CORETYPE is unset, re-executes
 * /proc/self/exe with the same argv and OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2 + FMA);
 * does not return then. Returns otherwise (also if exec fails: a warning, and the run goes on). Call first
 * thing in main, before threads or MPI start; IQTRAIN_NO_BLAS_REEXEC=1 turns it off. */
void iq_blas_fix_core(char **argv);
/* Checks that the OpenBLAS loaded at run time is the OpenMP build (one thread pool with our OpenMP
 * loops). 70 with an explanation otherwise. */
iq_status iq_blas_check(void);
/* "OpenBLAS 0.3.21 ... (core Haswell)" or similar. */
const char *iq_blas_info(void);
/* OpenBLAS's core name ("SkylakeX", "Prescott", ...). */
const char *iq_blas_core(void);
/* Sets the thread count for OpenMP, OpenBLAS and oneDNN (which runs on the OpenMP pool). */
void iq_set_threads(int n);
int iq_get_threads(void);
/* CPUs in this process's affinity mask (the --threads default). */
int iq_default_threads(void);

#endif
