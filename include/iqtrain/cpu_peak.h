/* cpu_peak.h — the CPU's arithmetic peaks, measured: independent fused multiply-adds (fp32) and bf16 dot
 * products (vdpbf16ps) in registers on every thread, no memory traffic. No matrix product can beat them;
 * `iqtrain bench` reports them next to its GEMM peak so that a machine's bf16-versus-fp32 ratio is a number,
 * not an assumption (AVX-512 BF16 without AMX: one vdpbf16ps every two cycles on the Xeons seen so far, half
 * the fp32 FMA rate in FLOPs). */
#ifndef IQTRAIN_CPU_PEAK_H
#define IQTRAIN_CPU_PEAK_H

typedef struct {
    double fp32_fma_gflops; /* 2 FLOP per lane per FMA; 0 without AVX2 + FMA */
    int fp32_fma_bits;      /* the vector width measured: 512 with AVX-512, 256 with AVX2, 0 for none */
    double bf16_dot_gflops; /* 2 FLOP per bf16 product (vdpbf16ps: 32 per 512-bit instruction); 0 without AVX-512 BF16 */
} iq_cpu_peak;

/* Measures both peaks on `threads` threads (about 0.3 s): the sum over threads of each one's best of three
 * short runs. */
void iq_cpu_peak_measure(int threads, iq_cpu_peak *out);

#endif
