/* kernels_llama.c — the layers of the Llama families (kernels_llama.h): embedding, RMSNorm, [out, in]
 * linear layers, rotate-half RoPE (with llama3 frequency scaling), causal grouped-query attention and the
 * SiLU-gated MLP. Backward functions accumulate (+=). OpenMP parallel; sums over rows run in a fixed order
 * so results do not depend on the thread count (except inside sgemm). */
#include "iqtrain/kernels_llama.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "iqtrain/attention.h"
#include "iqtrain/kernels.h"
#include "iqtrain/matmul.h"
#include "vecmath.h"

// out (N,C) = emb[ids]
void iq_embed_forward(float *out, const int32_t *ids, const float *emb, int N, int C) {
#pragma omp parallel for
    for (int i = 0; i < N; i++) memcpy(out + (size_t)i * C, emb + (size_t)ids[i] * C, (size_t)C * sizeof *out);
}

// demb (V,C) += dout (N,C) scattered by ids; parallel over channels: repeated tokens never race
void iq_embed_backward(float *demb, const float *dout, const int32_t *ids, int N, int C) {
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int c0 = (int)((long)C * it / nt), c1 = (int)((long)C * (it + 1) / nt);
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * C;
            float *e = demb + (size_t)ids[i] * C;
            for (int c = c0; c < c1; c++) e[c] += d[c];
        }
    }
}

// out (N,C) = inp * rstd * weight; rstd (N) saved for backward
void iq_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps) {
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float ss = 0.0f; /* 16 lanes wide (a fixed order for a given build and CPU) */
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float s = 1.0f / sqrtf(ss / (float)C + eps);
        float *o = out + (size_t)i * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] * s) * weight[c];
        rstd[i] = s;
    }
}

// y = x s w, s = (mean x^2 + eps)^-1/2: dx = s (w dy - x s^2 mean(x w dy)); dw = sum_rows x s dy
void iq_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const float *rstd, int N, int C) {
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const float *d = dout + (size_t)i * C, *x = inp + (size_t)i * C;
        float *dx = dinp + (size_t)i * C, s = rstd[i], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += x[c] * weight[c] * d[c];
        float k = s * s * dot / (float)C;
        for (int c = 0; c < C; c++) dx[c] += s * (weight[c] * d[c] - x[c] * k);
    }
    if (!dweight) return; /* a frozen weight */
    /* column blocks per thread, rows in order (deterministic) */
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int c0 = (int)((long)C * it / nt), c1 = (int)((long)C * (it + 1) / nt);
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * C, *x = inp + (size_t)i * C;
            float s = rstd[i];
            for (int c = c0; c < c1; c++) dweight[c] += x[c] * s * d[c];
        }
    }
}

// out (N,OC) = inp (N,C) @ weight^T + bias; the weight is a parameter (iq_sgemm_w: its bf16 copy is cached)
void iq_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    if (bias) {
#pragma omp parallel for
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OC, bias, (size_t)OC * sizeof *out);
    }
    iq_sgemm_w(false, true, N, OC, C, 1.0f, inp, weight, bias ? 1.0f : 0.0f, out);
}

void iq_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int N, int C, int OC, float dw_beta) {
    iq_matmul_group_begin(); /* dout is rounded to bf16 once for both products */
    iq_sgemm_w(false, false, N, C, OC, 1.0f, dout, weight, 1.0f, dinp);
    if (dweight) iq_sgemm(true, false, OC, C, N, 1.0f, dout, inp, dw_beta, dweight); /* NULL: frozen, dX only */
    iq_matmul_group_end();
    if (dbias) iq_bias_backward(dbias, dout, N, OC);
}

void iq_linear_forward_bf16(float *out, const float *inp, const uint16_t *weight, const float *bias, int N, int C, int OC) {
    if (bias) {
#pragma omp parallel for
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OC, bias, (size_t)OC * sizeof *out);
    }
    iq_sgemm_bw(false, true, N, OC, C, 1.0f, inp, weight, bias ? 1.0f : 0.0f, out);
}

void iq_linear_backward_bf16(float *dinp, const float *dout, const uint16_t *weight, int N, int C, int OC) {
    iq_sgemm_bw(false, false, N, C, OC, 1.0f, dout, weight, 1.0f, dinp);
}

// theta^(-2i/D); llama3: wavelengths beyond orig_ctx/low_freq are divided by factor, below orig_ctx/high_freq
// kept, and in between interpolated by smooth = (orig_ctx/wavelen - low) / (high - low)
void iq_rope_freqs(double *inv_freq, int D, double theta, double factor, double low_freq, double high_freq, int orig_ctx) {
    for (int i = 0; i < D / 2; i++) {
        double f = 1.0 / pow(theta, (double)(2 * i) / (double)D);
        if (factor > 0.0) {
            double wavelen = 2.0 * M_PI / f, low_wl = orig_ctx / low_freq, high_wl = orig_ctx / high_freq;
            if (wavelen > low_wl) f /= factor;
            else if (wavelen >= high_wl) {
                double smooth = (orig_ctx / wavelen - low_freq) / (high_freq - low_freq);
                f = (1.0 - smooth) * f / factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

void iq_rope_table(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int D) {
    int h = D / 2;
    for (int r = 0; r < n; r++) {
        double p = pos ? pos[r] : r;
        for (int i = 0; i < h; i++) {
            double a = p * inv_freq[i];
            cos_t[(size_t)r * h + i] = (float)cos(a);
            sin_t[(size_t)r * h + i] = (float)sin(a);
        }
    }
}

/* (x1, x2) -> (x1 c - x2 s, x2 c + x1 s) with sign = 1; the transpose with sign = -1 */
static void rope_apply(float *x, const float *cos_t, const float *sin_t, int N, int T, int H, int D, float sign) {
    int h2 = D / 2;
#pragma omp parallel for
    for (int r = 0; r < N; r++) {
        const float *c = cos_t + (size_t)(r % T) * h2, *s = sin_t + (size_t)(r % T) * h2;
        for (int h = 0; h < H; h++) {
            float *a = x + ((size_t)r * H + h) * D, *b = a + h2;
            for (int i = 0; i < h2; i++) {
                float x1 = a[i], x2 = b[i], si = sign * s[i];
                a[i] = x1 * c[i] - x2 * si;
                b[i] = x2 * c[i] + x1 * si;
            }
        }
    }
}

void iq_rope_forward(float *x, const float *cos_t, const float *sin_t, int N, int T, int H, int D) {
    rope_apply(x, cos_t, sin_t, N, T, H, D, 1.0f);
}

void iq_rope_backward(float *dx, const float *cos_t, const float *sin_t, int N, int T, int H, int D) {
    rope_apply(dx, cos_t, sin_t, N, T, H, D, -1.0f);
}

// grouped-query attention on separate q (B,T,Hq*D) and k, v (B,T,Hk*D) (attention.h)
void iq_gqa_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T, int Hq, int Hk,
                    int D) {
    iq_attn_shape s = {B, T, Hq, Hk, D, Hq * D, Hk * D};
    iq_causal_attention_forward(&s, out, att, q, k, v);
}

void iq_gqa_backward(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *q, const float *k,
                     const float *v, const float *att, int B, int T, int Hq, int Hk, int D) {
    iq_attn_shape s = {B, T, Hq, Hk, D, Hq * D, Hk * D};
    iq_causal_attention_backward(&s, dq, dk, dv, datt, dout, q, k, v, att);
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + iq_vexp(-x)); }

// out = gate sigmoid(gate) * up
void iq_swiglu_forward(float *out, const float *gate, const float *up, size_t N) {
#pragma omp parallel for simd
    for (size_t i = 0; i < N; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

// silu'(g) = s (1 + g (1 - s)), s = sigmoid(g)
void iq_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N) {
#pragma omp parallel for simd
    for (size_t i = 0; i < N; i++) {
        float g = gate[i], s = sigmoid(g);
        dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] += dout[i] * g * s;
    }
}
