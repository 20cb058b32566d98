/* matmul.c — matrix products: dispatch to OpenBLAS (sgemm, plus sgemv for few rows) or oneDNN
 * (matmul_onednn.c) at fp32 or bf16, the backend/precision configuration and its facts, and the OpenBLAS
 * set-up (core, thread pool, checks). Sections: OpenBLAS products · dispatch · configuration · OpenBLAS. */
#include "iqtrain/matmul.h"

#include <cJSON.h>
#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "iqtrain/cpu_features.h"
#include "iqtrain/log.h"
#include "iqtrain/safetensors.h"
#ifdef IQ_ONEDNN
#include "matmul_onednn.h"
#endif

/* declared by OpenBLAS's cblas.h in recent versions; repeated here for older headers */
int openblas_get_parallel(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);

// ----------------------------------------------------------------------------------------------------
// OpenBLAS products

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

void iq_sgemm_fp32_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    if (!trans_a && M <= IQ_SKINNY_M) {
        sgemm_skinny(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, lda, B, ldb, beta, C, ldc);
}

// ----------------------------------------------------------------------------------------------------
// dispatch

static iq_mm_backend g_backend = IQ_MM_OPENBLAS;
static iq_mm_precision g_precision = IQ_MM_FP32;

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

/* the configured product; b_param: B is a parameter (iq_sgemm_w) */
static void gemm(bool b_param, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
#ifdef IQ_ONEDNN
    bool bf16 = g_precision == IQ_MM_BF16;
    /* fp32 rows of a decoding step stay on OpenBLAS's sgemv (oneDNN's matmul ran 1-row products of config S
     * at half its speed: generation 347 vs 702 tok/s) */
    bool skinny = !bf16 && !trans_a && M <= IQ_SKINNY_M;
    if (g_backend == IQ_MM_ONEDNN && !omp_in_parallel() && !skinny) {
        if (b_param ? iq_dnnl_gemm_w(bf16, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
                    : iq_dnnl_gemm(bf16, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
            return;
        static int warned;
        if (!warned++) iq_warn("oneDNN refused a %d x %d x %d product: OpenBLAS fp32 runs it (and any other)", M, N, K);
    }
#else
    (void)b_param;
#endif
    iq_sgemm_fp32_ld(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void iq_sgemm_ld(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
    gemm(false, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void iq_sgemm_w(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const float *W, float beta,
                float *C) {
    if (K <= 0) {
        iq_sgemm(trans_a, trans_b, M, N, K, alpha, A, W, beta, C);
        return;
    }
    gemm(true, trans_a, trans_b, M, N, K, alpha, A, trans_a ? M : K, W, trans_b ? K : N, beta, C, N);
}

void iq_sgemm_bw(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, const uint16_t *W, float beta,
                 float *C) {
    if (M <= 0 || N <= 0 || K <= 0) {
        iq_sgemm(trans_a, trans_b, M, N, K, alpha, A, NULL, beta, C);
        return;
    }
    int lda = trans_a ? M : K, ldb = trans_b ? K : N;
#ifdef IQ_ONEDNN
    if (g_precision == IQ_MM_BF16 && g_backend == IQ_MM_ONEDNN && !omp_in_parallel() &&
        iq_dnnl_gemm_bw(trans_a, trans_b, M, N, K, alpha, A, lda, W, ldb, beta, C, N))
        return;
#endif
    static float *wide; /* fp32 W: grows to the largest weight, then stays */
    static size_t cap;
    size_t n = (size_t)K * N;
    if (n > cap) {
        free(wide);
        wide = iq_xmalloc(n * sizeof *wide);
        cap = n;
    }
#pragma omp parallel for if (n >= (1u << 16) && !omp_in_parallel())
    for (size_t i = 0; i < n; i++) wide[i] = iq_bf16_to_f32(W[i]);
    gemm(false, trans_a, trans_b, M, N, K, alpha, A, lda, wide, ldb, beta, C, N);
}

void iq_matmul_params_changed(void) {
#ifdef IQ_ONEDNN
    iq_dnnl_params_changed();
#endif
}

void iq_matmul_group_begin(void) {
#ifdef IQ_ONEDNN
    iq_dnnl_group_begin();
#endif
}

void iq_matmul_group_end(void) {
#ifdef IQ_ONEDNN
    iq_dnnl_group_end();
#endif
}

// ----------------------------------------------------------------------------------------------------
// configuration

bool iq_onednn_built(void) {
#ifdef IQ_ONEDNN
    return true;
#else
    return false;
#endif
}

iq_mm_backend iq_matmul_backend(void) { return g_backend; }
iq_mm_precision iq_matmul_precision(void) { return g_precision; }
const char *iq_matmul_backend_name(void) { return g_backend == IQ_MM_ONEDNN ? "onednn" : "openblas"; }
const char *iq_matmul_precision_name(void) { return g_precision == IQ_MM_BF16 ? "bf16" : "fp32"; }

/* The CPU runs oneDNN's JIT kernels at least as fast as OpenBLAS's (AVX2 + FMA and up). */
static bool onednn_worth_it(void) { return iq_cpu_get()->avx2_fma; }

/* Resolves the names into (backend, precision); 64 for impossible combinations. */
static iq_status resolve(const char *backend, const char *precision, iq_mm_backend *b, iq_mm_precision *p) {
    if (!backend) backend = "auto";
    if (!precision) precision = "fp32";
    bool bf16 = strcmp(precision, "bf16") == 0;
    if (!bf16 && strcmp(precision, "fp32") != 0)
        return iq_fail(IQ_EUSAGE, "--matmul-precision must be fp32 or bf16, not '%s'", precision);
    bool want_dnnl = strcmp(backend, "onednn") == 0, auto_ = strcmp(backend, "auto") == 0;
    if (!want_dnnl && !auto_ && strcmp(backend, "openblas") != 0)
        return iq_fail(IQ_EUSAGE, "--matmul-backend must be auto, openblas or onednn, not '%s'", backend);
    if (want_dnnl && !iq_onednn_built())
        return iq_fail(IQ_EUSAGE, "--matmul-backend onednn: this build has no oneDNN (install libdnnl-dev and rebuild; "
                                  "CMake option IQTRAIN_ONEDNN)");
    if (bf16 && strcmp(backend, "openblas") == 0)
        return iq_fail(IQ_EUSAGE, "--matmul-precision bf16 needs the oneDNN backend (OpenBLAS's build is fp32 only): "
                                  "use --matmul-backend auto or onednn");
    if (bf16 && !iq_onednn_built()) {
        iq_info("notice: --matmul-precision bf16: this build has no oneDNN (libdnnl-dev), so no bf16 matmul: "
                "running in fp32");
        bf16 = false;
    }
    *p = bf16 ? IQ_MM_BF16 : IQ_MM_FP32;
    *b = want_dnnl || (auto_ && iq_onednn_built() && (bf16 || onednn_worth_it())) ? IQ_MM_ONEDNN : IQ_MM_OPENBLAS;
    return IQ_OK;
}

iq_status iq_matmul_configure(const char *backend, const char *precision) {
    iq_mm_backend b = IQ_MM_OPENBLAS;
    iq_mm_precision p = IQ_MM_FP32;
    iq_status st = resolve(backend, precision, &b, &p);
    if (st) return st;
#ifdef IQ_ONEDNN
    if (b == IQ_MM_ONEDNN && !iq_dnnl_init()) {
        if (backend && strcmp(backend, "onednn") == 0) return IQ_EINTERNAL;
        iq_warn("%s: using OpenBLAS fp32", iq_last_error());
        b = IQ_MM_OPENBLAS;
        p = IQ_MM_FP32;
    }
    if (p == IQ_MM_BF16 && strcmp(iq_dnnl_impl(true), "unavailable") == 0) {
        iq_info("notice: --matmul-precision bf16: oneDNN %s has no bf16 matmul for this CPU (%s): running in fp32",
                iq_dnnl_version(), iq_cpu_flags());
        p = IQ_MM_FP32;
    }
#endif
    g_backend = b;
    g_precision = p;
    const iq_cpu_features *f = iq_cpu_get();
    static int said;
    if (p == IQ_MM_FP32 && iq_onednn_built() && (f->amx_bf16 || f->avx512_bf16) && !said++)
        iq_info("notice: this CPU computes bf16 natively (%s): --matmul-precision bf16 runs the matmuls with bf16 "
                "operands (fp32 accumulation and weights)%s",
                f->amx_bf16 ? "AMX" : "AVX-512 BF16",
                f->amx_bf16 ? "" : "; without AMX it is not faster than fp32 on every CPU: compare with iqtrain bench");
    return IQ_OK;
}

const char *iq_matmul_isa(void) {
#ifdef IQ_ONEDNN
    if (g_backend == IQ_MM_ONEDNN) {
        const char *impl = iq_dnnl_impl(g_precision == IQ_MM_BF16);
        if (strstr(impl, "amx")) return "amx";
        if (strstr(impl, "avx512_core_bf16")) return "avx512_core_bf16";
        if (strstr(impl, "avx512_core")) return "avx512_core";
        if (strstr(impl, "avx2")) return "avx2";
        /* "gemm:jit" (fp32, dnnl_sgemm) dispatches on the CPU's best fp32 ISA */
        const char *isa = iq_dnnl_cpu_isa();
        return strcmp(isa, "amx") == 0 || strcmp(isa, "avx512_core_bf16") == 0 ? "avx512_core" : isa;
    }
#endif
    return "none";
}

static void set_string(cJSON *o, const char *key, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (v) cJSON_AddStringToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

void iq_matmul_add_facts(struct cJSON *obj) {
    set_string(obj, "backend", iq_matmul_backend_name());
    set_string(obj, "precision", iq_matmul_precision_name());
    set_string(obj, "onednn_isa", iq_matmul_isa());
#ifdef IQ_ONEDNN
    set_string(obj, "onednn_impl", g_backend == IQ_MM_ONEDNN ? iq_dnnl_impl(g_precision == IQ_MM_BF16) : NULL);
    set_string(obj, "onednn_version", iq_dnnl_version());
#else
    set_string(obj, "onednn_impl", NULL);
    set_string(obj, "onednn_version", NULL);
#endif
    set_string(obj, "openblas_core", iq_blas_core());
    set_string(obj, "openblas_coretype", getenv("OPENBLAS_CORETYPE"));
    set_string(obj, "cpu_flags", iq_cpu_flags());
}

// ----------------------------------------------------------------------------------------------------
// OpenBLAS

const char *iq_blas_core(void) { return openblas_get_corename(); }

/* OpenBLAS cores whose sgemm kernels use AVX2 or AVX-512 (names as openblas_get_corename spells them) */
static bool core_is_modern(const char *core) {
    static const char *const OK[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof OK / sizeof *OK; i++)
        if (strcasecmp(core, OK[i]) == 0) return true;
    return false;
}

void iq_blas_fix_core(char **argv) {
    const char *want = iq_cpu_openblas_core(), *core = openblas_get_corename();
    if (!want || !core || core_is_modern(core) || getenv("OPENBLAS_CORETYPE")) return;
    const char *off = getenv("IQTRAIN_NO_BLAS_REEXEC");
    if (off && strcmp(off, "1") == 0) return;
    if (getenv("IQTRAIN_BLAS_REEXEC")) return; /* already re-executed once: keep what we got */
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("IQTRAIN_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* still here: exec failed; run on the generic kernels, and say so */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("IQTRAIN_BLAS_REEXEC");
    fprintf(stderr, "iqtrain: warning: OpenBLAS runs its generic %s kernels on this %s CPU (re-executing with "
                    "OPENBLAS_CORETYPE=%s failed); set OPENBLAS_CORETYPE=%s for its fast kernels\n",
            core, iq_cpu_flags(), want, want);
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
