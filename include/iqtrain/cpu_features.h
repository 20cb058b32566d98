/* cpu_features.h — what the CPU (and the OS, for the wide registers) offers, from CPUID and XGETBV.
 * Used to pick the matmul backend and the OpenBLAS core (matmul.h), and recorded in run.json. */
#ifndef IQTRAIN_CPU_FEATURES_H
#define IQTRAIN_CPU_FEATURES_H

#include <stdbool.h>

typedef struct {
    bool avx2_fma;    /* AVX2 and FMA3, with the OS saving YMM state */
    bool avx512;      /* AVX-512 F, CD, BW, DQ and VL (OpenBLAS's SkylakeX, oneDNN's avx512_core), ZMM state on */
    bool avx512_bf16; /* AVX-512 BF16 (vdpbf16ps, vcvtne2ps2bf16): Cooper Lake, Sapphire Rapids, Zen 4 */
    bool amx_bf16;    /* AMX tiles with bf16 (Sapphire Rapids and later), with the OS enabling tile state */
} iq_cpu_features;

/* The features of the CPU this process runs on (detected once; thread-safe after the first call). */
const iq_cpu_features *iq_cpu_get(void);
/* The flags above that are present, space-separated, e.g. "avx2 fma avx512 avx512_bf16" ("" for none). */
const char *iq_cpu_flags(void);
/* The OpenBLAS core whose kernels fit this CPU: "SkylakeX" with AVX-512, "Haswell" with AVX2 + FMA,
 * NULL below that (OpenBLAS's own detection is then as good as ours). */
const char *iq_cpu_openblas_core(void);

#endif
