/* matmul_onednn.c — matrix products on oneDNN: fp32 through dnnl_sgemm (oneDNN's JIT GEMM), bf16 operands
 * with fp32 accumulation and output through the matmul primitive, primitives cached per shape. Sections:
 * bf16 conversion · the primitive cache · bf16 copies of parameters · groups · products · facts.
 *
 * Why fp32 does not use the matmul primitive: oneDNN 2.6 runs fp32 matmuls of plain row-major operands on its
 * brgemm implementation ("brg:avx512_core"), which on a 2-core AVX-512 Xeon ran some of GPT-2's shapes at half
 * speed or less — M 256 x N 3072 x K 768 (the MLP's up projection) at 90-160 GFLOP/s against 270-300 for
 * dnnl_sgemm and OpenBLAS, and no faster elsewhere (N 2304, 2560, 3584, 5120, 6144 slow too; powers of two
 * not). dnnl_sgemm ("gemm:jit") matched or beat the primitive on every product of a GPT-2 step. */
#ifdef IQ_ONEDNN /* the whole file: the build links oneDNN (CMake IQTRAIN_ONEDNN) */
#include "matmul_onednn.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/util.h"

// ----------------------------------------------------------------------------------------------------
// bf16 conversion

static inline uint16_t bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16; /* round to nearest, ties to even */
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r); /* NaN: stays a (quiet) NaN */
}

static void convert_rows(uint16_t *out, const float *in, long rows, long cols, long ld) {
    if (rows * cols >= (1L << 15) && !omp_in_parallel()) {
#pragma omp parallel for
        for (long r = 0; r < rows; r++) {
            const float *s = in + r * ld;
            uint16_t *d = out + r * cols;
#pragma omp simd
            for (long c = 0; c < cols; c++) d[c] = bf16_round(s[c]);
        }
    } else {
        for (long r = 0; r < rows; r++) {
            const float *s = in + r * ld;
            uint16_t *d = out + r * cols;
#pragma omp simd
            for (long c = 0; c < cols; c++) d[c] = bf16_round(s[c]);
        }
    }
}

void iq_f32_to_bf16_n(uint16_t *out, const float *in, long n) { convert_rows(out, in, 1, n, n); }

/* scratch for the bf16 operands: grows to the largest product, then stays */
typedef struct {
    uint16_t *p;
    size_t cap; /* elements */
} scratch;

static uint16_t *scratch_get(scratch *s, size_t n) {
    if (n > s->cap) {
        free(s->p);
        s->p = iq_arena_calloc((n + 31) / 32 * 32, sizeof(uint16_t)); /* whole cache lines */
        if (!s->p) {
            s->cap = 0;
            return NULL;
        }
        s->cap = n;
    }
    return s->p;
}

// ----------------------------------------------------------------------------------------------------
// the primitive cache

typedef struct {
    bool ta, tb; /* the primitives are all bf16 (fp32 runs on dnnl_sgemm) */
    int M, N, K, lda, ldb, ldc, threads; /* oneDNN splits the work for the thread count at creation */
    float alpha, beta;
} key;

typedef struct {
    key k;
    bool used;
    unsigned long last;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst; /* created without data; handles set per call */
} entry;

enum { CACHE_SIZE = 64 };
static entry g_cache[CACHE_SIZE];
static unsigned long g_clock;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static scratch g_abuf, g_bbuf;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static bool key_eq(const key *a, const key *b) {
    return a->ta == b->ta && a->tb == b->tb && a->M == b->M && a->N == b->N && a->K == b->K &&
           a->lda == b->lda && a->ldb == b->ldb && a->ldc == b->ldc && a->threads == b->threads && a->alpha == b->alpha && a->beta == b->beta;
}

static void entry_clear(entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->src) dnnl_memory_destroy(e->src);
    if (e->wei) dnnl_memory_destroy(e->wei);
    if (e->dst) dnnl_memory_destroy(e->dst);
    memset(e, 0, sizeof *e);
}

bool iq_dnnl_init(void) {
    if (g_engine) return true;
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) {
        g_engine = NULL;
        iq_fail(IQ_EINTERNAL, "oneDNN: cannot create its CPU engine");
        return false;
    }
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(g_engine);
        g_engine = NULL;
        iq_fail(IQ_EINTERNAL, "oneDNN: cannot create a CPU stream");
        return false;
    }
    return true;
}

/* op(A) (M,K) stored with row stride lda: element (m,k) at m*lda + k, or k*lda + m when transposed */
static dnnl_status_t md_2d(dnnl_memory_desc_t *md, int rows, int cols, bool trans, int ld, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : ld, trans ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

static dnnl_status_t make_attr(const key *k, dnnl_primitive_attr_t *attr) {
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s) return s;
    if (k->alpha != 1.0f) s = dnnl_primitive_attr_set_output_scales(*attr, 1, 0, &k->alpha);
    if (!s && k->beta != 0.0f) {
        dnnl_post_ops_t po;
        s = dnnl_post_ops_create(&po);
        if (!s) {
            s = dnnl_post_ops_append_sum(po, k->beta); /* C = scale * A B + beta * C */
            if (!s) s = dnnl_primitive_attr_set_post_ops(*attr, po);
            dnnl_post_ops_destroy(po);
        }
    }
    return s;
}

/* Builds the primitive and memory objects of k into e. */
static dnnl_status_t entry_build(entry *e, const key *k) {
    dnnl_data_type_t in = dnnl_bf16;
    dnnl_memory_desc_t a, b, c;
    dnnl_status_t s = md_2d(&a, k->M, k->K, k->ta, k->lda, in);
    if (!s) s = md_2d(&b, k->K, k->N, k->tb, k->ldb, in);
    if (!s) s = md_2d(&c, k->M, k->N, false, k->ldc, dnnl_f32);
    dnnl_matmul_desc_t d;
    if (!s) s = dnnl_matmul_desc_init(&d, &a, &b, NULL, &c);
    dnnl_primitive_attr_t attr = NULL;
    if (!s) s = make_attr(k, &attr);
    dnnl_primitive_desc_t pd = NULL;
    if (!s) s = dnnl_primitive_desc_create(&pd, &d, attr, g_engine, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!s) s = dnnl_primitive_create(&e->prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (!s) s = dnnl_memory_create(&e->src, &a, g_engine, DNNL_MEMORY_NONE);
    if (!s) s = dnnl_memory_create(&e->wei, &b, g_engine, DNNL_MEMORY_NONE);
    if (!s) s = dnnl_memory_create(&e->dst, &c, g_engine, DNNL_MEMORY_NONE);
    if (s) entry_clear(e);
    else {
        e->k = *k;
        e->used = true;
    }
    return s;
}

/* The cached entry for k (built on a miss, evicting the least recently used); NULL if oneDNN refuses. */
static entry *cache_get(const key *k) {
    entry *victim = &g_cache[0];
    g_clock++;
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry *e = &g_cache[i];
        if (e->used && key_eq(&e->k, k)) {
            e->last = g_clock;
            return e;
        }
        if (!e->used || (victim->used && e->last < victim->last)) victim = e;
    }
    if (victim->used) entry_clear(victim);
    if (entry_build(victim, k) != dnnl_success) return NULL;
    victim->last = g_clock;
    return victim;
}

static bool execute(entry *e, const void *a, const void *b, float *c) {
    if (dnnl_memory_set_data_handle(e->src, (void *)a) || dnnl_memory_set_data_handle(e->wei, (void *)b) ||
        dnnl_memory_set_data_handle(e->dst, c))
        return false;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst}};
    return dnnl_primitive_execute(e->prim, g_stream, 3, args) == dnnl_success && dnnl_stream_wait(g_stream) == dnnl_success;
}

// ----------------------------------------------------------------------------------------------------
// bf16 copies of parameters

/* A parameter B's bf16 copy is valid while the parameter version is the one it was made at and a few sampled
 * values of B still match (a guard against parameters written without iq_dnnl_params_changed). */
typedef struct {
    const float *src;
    int rows, cols, ld;
    unsigned long version;
    uint32_t fingerprint;
    uint16_t *bf;
} param_copy;

enum { PARAM_COPIES = 256 };
static param_copy g_params[PARAM_COPIES];
static int g_n_params;
static unsigned long g_param_version = 1;

void iq_dnnl_params_changed(void) {
    pthread_mutex_lock(&g_lock);
    g_param_version++;
    pthread_mutex_unlock(&g_lock);
}

static uint32_t fingerprint(const float *src, int rows, int cols, int ld) {
    uint32_t h = 2166136261u;
    long n = (long)rows * cols;
    for (int i = 0; i < 16; i++) {
        long at = n * i / 16 + (i == 15 ? n - 1 - n * 15 / 16 : 0); /* 15 spread samples and the last value */
        uint32_t u;
        memcpy(&u, src + at / cols * (long)ld + at % cols, sizeof u);
        h = (h ^ u) * 16777619u;
    }
    return h;
}

/* The bf16 copy of parameter src (rows x cols, row stride ld), converted now if stale; NULL if out of slots. */
static const uint16_t *param_bf16(const float *src, int rows, int cols, int ld) {
    uint32_t fp = fingerprint(src, rows, cols, ld);
    param_copy *c = NULL;
    for (int i = 0; i < g_n_params && !c; i++)
        if (g_params[i].src == src && g_params[i].rows == rows && g_params[i].cols == cols && g_params[i].ld == ld)
            c = &g_params[i];
    if (c && c->version == g_param_version && c->fingerprint == fp) return c->bf;
    if (!c) {
        if (g_n_params == PARAM_COPIES) return NULL;
        uint16_t *bf = aligned_alloc(64, ((size_t)rows * cols * sizeof *bf + 63) / 64 * 64);
        if (!bf) return NULL;
        c = &g_params[g_n_params++];
        *c = (param_copy){src, rows, cols, ld, 0, 0, bf};
    }
    convert_rows(c->bf, src, rows, cols, ld);
    c->version = g_param_version;
    c->fingerprint = fp;
    return c->bf;
}

// ----------------------------------------------------------------------------------------------------
// products

// ----------------------------------------------------------------------------------------------------
// groups: operands shared by consecutive products

/* Between iq_dnnl_group_begin and _end the caller promises that no operand of the group's products is
 * written (except as a product's own output C, never read again in the group): an operand's bf16 copy is
 * then made once and reused by the later products that read the same rows (a layer's output gradient feeds
 * both its input and its weight gradient). */
enum { MEMO_SLOTS = 4 };
typedef struct {
    const float *src;
    int rows, cols, ld;
    scratch buf;
} memo;
static memo g_memo[MEMO_SLOTS];
static int g_group, g_n_memo;

void iq_dnnl_group_begin(void) {
    g_group = 1;
    g_n_memo = 0;
}

void iq_dnnl_group_end(void) {
    g_group = 0;
    g_n_memo = 0;
}

/* The bf16 copy of an operand (rows x cols, row stride ld): from the group's memo, or converted into a memo
 * slot, or into `fallback` outside groups or when the slots are full. NULL when out of memory. */
static const uint16_t *operand_bf16(const float *src, int rows, int cols, int ld, scratch *fallback) {
    for (int i = 0; g_group && i < g_n_memo; i++) {
        memo *m = &g_memo[i];
        if (m->src == src && m->rows == rows && m->cols == cols && m->ld == ld) return m->buf.p;
    }
    scratch *dst = fallback;
    if (g_group && g_n_memo < MEMO_SLOTS) {
        memo *m = &g_memo[g_n_memo];
        dst = &m->buf;
        if (scratch_get(dst, (size_t)rows * cols)) {
            m->src = src, m->rows = rows, m->cols = cols, m->ld = ld;
            g_n_memo++;
        }
    }
    uint16_t *out = scratch_get(dst, (size_t)rows * cols);
    if (out) convert_rows(out, src, rows, cols, ld);
    return out;
}

// ----------------------------------------------------------------------------------------------------
// products

/* given16: B is already bf16 (a frozen bf16 base) at its natural leading dimension */
static bool gemm(bool bf16, bool b_param, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, const uint16_t *given16, int ldb, float beta, float *C, int ldc) {
    if (!g_engine && !iq_dnnl_init()) return false;
    if (!bf16) /* row-major, like the rest of this file */
        return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == dnnl_success;
    pthread_mutex_lock(&g_lock);
    /* stored shapes: A is (M,K) or (K,M), B is (K,N) or (N,K); packed to their natural leading dimension */
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const uint16_t *b16 = given16 ? given16 : b_param ? param_bf16(B, br, bc, ldb) : NULL;
    if (!b16) b16 = operand_bf16(B, br, bc, ldb, &g_bbuf);
    const uint16_t *a16 = operand_bf16(A, ar, ac, lda, &g_abuf);
    bool ok = a16 && b16;
    key k = {ta, tb, M, N, K, ac, bc, ldc, omp_get_max_threads(), alpha, beta};
    entry *e = ok ? cache_get(&k) : NULL;
    ok = e && execute(e, a16, b16, C);
    pthread_mutex_unlock(&g_lock);
    return ok;
}

bool iq_dnnl_gemm(bool bf16, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    return gemm(bf16, false, ta, tb, M, N, K, alpha, A, lda, B, NULL, ldb, beta, C, ldc);
}

bool iq_dnnl_gemm_w(bool bf16, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
    return gemm(bf16, true, ta, tb, M, N, K, alpha, A, lda, B, NULL, ldb, beta, C, ldc);
}

bool iq_dnnl_gemm_bw(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, const uint16_t *B,
                     int ldb, float beta, float *C, int ldc) {
    int bc = tb ? K : N;
    if (ldb != bc) return false; /* given bf16 operands are packed */
    return gemm(true, true, ta, tb, M, N, K, alpha, A, lda, NULL, B, ldb, beta, C, ldc);
}

// ----------------------------------------------------------------------------------------------------
// facts

const char *iq_dnnl_impl(bool bf16) {
    static char buf[2][96];
    char *out = buf[bf16];
    if (out[0]) return out;
    snprintf(out, sizeof buf[0], "unavailable");
    if (!g_engine && !iq_dnnl_init()) return out;
    if (!bf16) { /* dnnl_sgemm: the JIT GEMM for the CPU's best ISA */
        snprintf(out, sizeof buf[0], "gemm:jit");
        return out;
    }
    key k = {false, false, 256, 256, 256, 256, 256, 256, omp_get_max_threads(), 1.0f, 0.0f};
    entry e = {0};
    if (entry_build(&e, &k) != dnnl_success) return out;
    const_dnnl_primitive_desc_t pd;
    const char *impl = NULL;
    if (dnnl_primitive_get_primitive_desc(e.prim, &pd) == dnnl_success &&
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(out, sizeof buf[0], "%s", impl);
    entry_clear(&e);
    return out;
}

const char *iq_dnnl_version(void) {
    static char buf[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", v->major, v->minor, v->patch);
    return buf;
}

const char *iq_dnnl_cpu_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni:
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni:
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "older than avx2";
    }
}

#endif
