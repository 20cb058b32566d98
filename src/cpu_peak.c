/* cpu_peak.c — the CPU's fp32 FMA and bf16 dot-product peaks, measured (cpu_peak.h). */
#include "iqtrain/cpu_peak.h"

#include <omp.h>
#include <string.h>

#include "iqtrain/cpu_features.h"
#include "iqtrain/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Twelve independent accumulators (more than latency x ports on every x86 core so far), each updated once per
 * iteration, as named variables (an array would live in memory); the empty asm keeps them in registers and the
 * loop from being folded. Each kernel returns the seconds its loop took. */
#define ACC12(T, init) T a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init, a7 = init, \
                                a8 = init, a9 = init, a10 = init, a11 = init
#define EACH12(F) F(a0) F(a1) F(a2) F(a3) F(a4) F(a5) F(a6) F(a7) F(a8) F(a9) F(a10) F(a11)
#define KEEP12()                                                                                                   \
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),       \
                     "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11))
#define TIMED_LOOP(F)                                                                                              \
    double t0 = iq_now();                                                                                          \
    for (long n = 0; n < iters; n++) {                                                                             \
        EACH12(F)                                                                                                  \
        KEEP12();                                                                                                  \
    }                                                                                                              \
    return iq_now() - t0

__attribute__((target("avx512f"))) static double fma512(long iters) {
    __m512 x = _mm512_set1_ps(1e-9f);
    ACC12(__m512, _mm512_setzero_ps());
#define FMA512(a) a = _mm512_fmadd_ps(x, x, a);
    TIMED_LOOP(FMA512);
}

__attribute__((target("avx2,fma"))) static double fma256(long iters) {
    __m256 x = _mm256_set1_ps(1e-9f);
    ACC12(__m256, _mm256_setzero_ps());
#define FMA256(a) a = _mm256_fmadd_ps(x, x, a);
    TIMED_LOOP(FMA256);
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16(long iters) {
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x30803080); /* pairs of small bf16 values */
    ACC12(__m512, _mm512_setzero_ps());
#define DPBF16(a) a = _mm512_dpbf16_ps(a, x, x);
    TIMED_LOOP(DPBF16);
}

/* The best GFLOP/s of three runs of `kernel` (flop FLOP per iteration) on this thread. */
static double best_rate(double (*kernel)(long), long iters, double flop) {
    double best = 0.0;
    for (int r = 0; r < 3; r++) {
        double s = kernel(iters);
        if (s > 0.0 && flop * (double)iters / s / 1e9 > best) best = flop * (double)iters / s / 1e9;
    }
    return best;
}

void iq_cpu_peak_measure(int threads, iq_cpu_peak *out) {
    memset(out, 0, sizeof *out);
    const iq_cpu_features *f = iq_cpu_get();
    if (!f->avx2_fma) return;
    out->fp32_fma_bits = f->avx512 ? 512 : 256;
    double fma = 0.0, dot = 0.0;
#pragma omp parallel num_threads(threads > 0 ? threads : 1) reduction(+ : fma, dot)
    {
        /* 12 instructions per iteration: about 10 ms per FMA run at two per cycle, 20 per bf16 run at one per two */
        fma = f->avx512 ? best_rate(fma512, 4000000, 12 * 32.0) : best_rate(fma256, 8000000, 12 * 16.0);
        if (f->avx512_bf16) dot = best_rate(dpbf16, 2000000, 12 * 64.0);
    }
    out->fp32_fma_gflops = fma;
    out->bf16_dot_gflops = dot;
}

#else
void iq_cpu_peak_measure(int threads, iq_cpu_peak *out) {
    (void)threads;
    memset(out, 0, sizeof *out);
}
#endif
