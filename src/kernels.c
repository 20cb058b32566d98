/* kernels.c — the layers of the GPT-2 policy, one forward and one backward function each, with shape
 * comments. Backward functions accumulate (+=) into their input gradients. Kernels know nothing of
 * models: they take pointers and sizes. OpenMP parallel; sums over rows run in a fixed order so results
 * do not depend on the thread count (except inside sgemm). */
#include "iqtrain/kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "iqtrain/attention.h"
#include "iqtrain/matmul.h"
#include "vecmath.h"

void iq_zero(float *p, size_t n) { iq_zero_bytes(p, n * sizeof *p); }

// out (B,T,C) = wte[inp] + wpe[t]; inp (B,T), wte (V,C), wpe (ctx,C)
void iq_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B, int T, int C) {
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *we = wte + (size_t)inp[b * T + t] * C, *pe = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = we[c] + pe[c];
        }
}

// dwte (V,C) += scatter of dout (B,T,C) by inp; dwpe (ctx,C) += dout summed over B
void iq_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, int B, int T, int C) {
    /* parallel over channels: repeated tokens never race */
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int c0 = (int)((long)C * it / nt), c1 = (int)((long)C * (it + 1) / nt);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *d = dout + ((size_t)b * T + t) * C;
                float *we = dwte + (size_t)inp[b * T + t] * C, *pe = dwpe + (size_t)t * C;
                for (int c = c0; c < c1; c++) {
                    we[c] += d[c];
                    pe[c] += d[c];
                }
            }
    }
}

// out (N,C) = LayerNorm(inp (N,C)) * weight (C) + bias (C); mean, rstd (N) saved for backward
void iq_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                              const float *bias, int N, int C, float eps) {
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float m = 0.0f; /* the row's sums 16 lanes wide (a fixed order for a given build and CPU) */
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + (size_t)i * C;
        for (int c = 0; c < C; c++) o[c] = (s * (x[c] - m)) * weight[c] + bias[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

// dinp (N,C) += ..., dweight (C) += ..., dbias (C) += ... from dout (N,C)
void iq_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const float *d = dout + (size_t)i * C, *x = inp + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s, dnorm = weight[c] * d[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s, dnorm = weight[c] * d[c];
            dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
    if (!dweight) return; /* a frozen base: the input's gradient only */
    /* parameter gradients: column blocks per thread, rows in order (contiguous, deterministic) */
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int c0 = (int)((long)C * it / nt), c1 = (int)((long)C * (it + 1) / nt);
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * C, *x = inp + (size_t)i * C;
            float m = mean[i], s = rstd[i];
            for (int c = c0; c < c1; c++) {
                dweight[c] += (x[c] - m) * s * d[c];
                dbias[c] += d[c];
            }
        }
    }
}

// out (N,OC) = inp (N,C) @ weight (C,OC) + bias (OC)
void iq_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
#pragma omp parallel for
    for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OC, bias, (size_t)OC * sizeof *out);
    iq_sgemm_w(false, false, N, OC, C, 1.0f, inp, weight, 1.0f, out);
}

// dinp (N,C) += dout (N,OC) @ weight^T; dweight (C,OC) = dw_beta dweight + inp^T @ dout; dbias (OC) += sum_N dout
void iq_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int N, int C, int OC, float dw_beta) {
    iq_matmul_group_begin(); /* dout is rounded to bf16 once for both products */
    iq_sgemm_w(false, true, N, C, OC, 1.0f, dout, weight, 1.0f, dinp);
    if (dweight) iq_sgemm(true, false, C, OC, N, 1.0f, inp, dout, dw_beta, dweight); /* NULL: frozen, dX only */
    iq_matmul_group_end();
    if (dbias) iq_bias_backward(dbias, dout, N, OC);
}

void iq_bias_backward(float *dbias, const float *dout, int N, int OC) {
    /* column blocks per thread, rows in order: contiguous reads, deterministic sums */
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int o0 = (int)((long)OC * it / nt), o1 = (int)((long)OC * (it + 1) / nt);
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * OC;
            for (int o = o0; o < o1; o++) dbias[o] += d[o];
        }
    }
}

// GPT-2's attention: q, k, v are the three C-wide thirds of each qkv row (attention.h)
void iq_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H) {
    iq_attn_shape s = {B, T, H, H, C / H, 3 * C, 3 * C};
    iq_causal_attention_forward(&s, out, att, qkv, qkv + C, qkv + 2 * C);
}

void iq_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                           int T, int C, int H) {
    iq_attn_shape s = {B, T, H, H, C / H, 3 * C, 3 * C};
    iq_causal_attention_backward(&s, dqkv, dqkv + C, dqkv + 2 * C, datt, dout, qkv, qkv + C, qkv + 2 * C, att);
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

/* tanh through one exp: 2 / (1 + e^(-2u)) - 1 (libm's tanhf is several times slower and does not
 * vectorize); the clamp keeps e^(-2u) finite. Absolute error ~2e-7, which GELU multiplies by x. */
static inline float fast_tanh(float u) {
    u = u < -15.0f ? -15.0f : (u > 15.0f ? 15.0f : u); /* blends, not fminf/fmaxf calls: the loop vectorizes */
    return 2.0f / (1.0f + iq_vexp(-2.0f * u)) - 1.0f;
}

// out (N) = gelu_tanh(inp (N))
void iq_gelu_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for simd
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanh(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

// dinp (N) += gelu'(inp) * dout
void iq_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for simd
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float th = fast_tanh(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

// out (N) = a + b
void iq_residual_forward(float *out, const float *a, const float *b, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

// da += dout, db += dout
void iq_residual_backward(float *da, float *db, const float *dout, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

