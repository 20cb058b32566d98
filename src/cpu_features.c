/* cpu_features.c — CPUID / XGETBV feature detection (x86-64; other CPUs report no features). */
#include "iqtrain/cpu_features.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(iq_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6, tiles = (xcr0 & 0x60000) == 0x60000;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = (b >> 5) & 1;
    bool f512 = (b >> 16) & 1, dq = (b >> 17) & 1, cd = (b >> 28) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    unsigned max7 = a;
    bool bf16 = false;
    if (max7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        bf16 = (a >> 5) & 1;
    }
    f->avx2_fma = ymm && avx2 && fma;
    f->avx512 = f->avx2_fma && zmm && f512 && dq && cd && bw && vl;
    f->avx512_bf16 = f->avx512 && bf16;
    f->amx_bf16 = f->avx512 && tiles && amx_tile && amx_bf16;
}
#else
static void detect(iq_cpu_features *f) { (void)f; }
#endif

const iq_cpu_features *iq_cpu_get(void) {
    static iq_cpu_features f;
    static int done;
#pragma omp critical(iq_cpu_detect)
    if (!done) {
        detect(&f);
        done = 1;
    }
    return &f;
}

const char *iq_cpu_flags(void) {
    static char buf[64];
    const iq_cpu_features *f = iq_cpu_get();
    snprintf(buf, sizeof buf, "%s%s%s%s", f->avx2_fma ? "avx2 fma" : "", f->avx512 ? " avx512" : "",
             f->avx512_bf16 ? " avx512_bf16" : "", f->amx_bf16 ? " amx_bf16" : "");
    return buf;
}

const char *iq_cpu_openblas_core(void) {
    const iq_cpu_features *f = iq_cpu_get();
    return f->avx512 ? "SkylakeX" : f->avx2_fma ? "Haswell" : NULL;
}
