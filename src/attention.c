/* attention.c — causal attention, forward and backward, in blocks on the causal side of the diagonal
 * (attention.h). Per (batch, head) the products are OpenBLAS fp32 calls on one thread each
 * (iq_sgemm_fp32_ld), inside the parallel loop over (batch, head). */
#include "iqtrain/attention.h"

#include <math.h>
#include <omp.h>

#include "iqtrain/matmul.h"
#include "vecmath.h"

/* Query rows (and key columns) per block: blocks above the diagonal are skipped, so smaller blocks skip more
 * work but make smaller products. Forward + backward, 2 threads, medians of 5 (AVX-512 Xeon): B 8 T 128 D 64
 * (config S) 3.09 ms full products, 2.57 in blocks of 32, 2.58 of 64; B 1 T 512 D 64 (SmolLM2) 10.3, 9.1, 8.8;
 * B 4 T 64 (config G) 1.55, 1.37, 1.50. */
enum { ATT_BLOCK = 32 };

static int min_int(int a, int b) { return a < b ? a : b; }

/* Rows t of a (T,T) in place: softmax over columns 0..t, zeros after. */
static void causal_softmax(float *a, int T) {
    for (int t = 0; t < T; t++) {
        float *row = a + (size_t)t * T, maxv = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : maxv)
        for (int j = 0; j <= t; j++) maxv = row[j] > maxv ? row[j] : maxv;
#pragma omp simd
        for (int j = 0; j <= t; j++) row[j] = iq_vexp(row[j] - maxv);
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j <= t; j++) sum += row[j];
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j <= t; j++) row[j] *= inv;
        for (int j = t + 1; j < T; j++) row[j] = 0.0f;
    }
}

/* One (batch, query head): a = softmax(scale q k^T), out = a v. Query block [i0, i0 + m) sees keys [0, i0 + m). */
static void head_forward(const iq_attn_shape *s, float *out, float *a, const float *q, const float *k, const float *v) {
    int T = s->T, D = s->D, ldo = s->Hq * D;
    float scale = 1.0f / sqrtf((float)D);
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int m = min_int(ATT_BLOCK, T - i0);
        iq_sgemm_fp32_ld(false, true, m, i0 + m, D, scale, q + (size_t)i0 * s->ldq, s->ldq, k, s->ldkv, 0.0f,
                         a + (size_t)i0 * T, T);
    }
    causal_softmax(a, T);
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int m = min_int(ATT_BLOCK, T - i0);
        iq_sgemm_fp32_ld(false, false, m, D, i0 + m, 1.0f, a + (size_t)i0 * T, T, v, s->ldkv, 0.0f, out + (size_t)i0 * ldo,
                         ldo);
    }
}

void iq_causal_attention_forward(const iq_attn_shape *s, float *out, float *att, const float *q, const float *k,
                                 const float *v) {
    int T = s->T, D = s->D, G = s->Hq / s->Hk;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->Hq; h++) {
            size_t qo = (size_t)b * T * s->ldq + (size_t)h * D, ko = (size_t)b * T * s->ldkv + (size_t)(h / G) * D;
            head_forward(s, out + (size_t)b * T * s->Hq * D + (size_t)h * D, att + ((size_t)b * s->Hq + h) * T * T, q + qo,
                         k + ko, v + ko);
        }
}

/* One (batch, query head), adding into dq, dk, dv:
 * dv += a^T dout; da = dout v^T; ds = a (da - rowsum(a da)) scale; dq += ds k; dk += ds^T q.
 * Key block [j0, j0 + m) is seen by queries [j0, T): the transposed products start at row j0. */
static void head_backward(const iq_attn_shape *s, float *dq, float *dk, float *dv, float *da, const float *dout,
                          const float *q, const float *k, const float *v, const float *a) {
    int T = s->T, D = s->D, ldo = s->Hq * D, ldq = s->ldq, ldkv = s->ldkv;
    float scale = 1.0f / sqrtf((float)D);
    for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
        int m = min_int(ATT_BLOCK, T - j0);
        iq_sgemm_fp32_ld(true, false, m, D, T - j0, 1.0f, a + (size_t)j0 * T + j0, T, dout + (size_t)j0 * ldo, ldo, 1.0f,
                         dv + (size_t)j0 * ldkv, ldkv);
    }
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int m = min_int(ATT_BLOCK, T - i0);
        iq_sgemm_fp32_ld(false, true, m, i0 + m, D, 1.0f, dout + (size_t)i0 * ldo, ldo, v, ldkv, 0.0f, da + (size_t)i0 * T, T);
    }
    for (int t = 0; t < T; t++) {
        const float *ar = a + (size_t)t * T;
        float *dr = da + (size_t)t * T, dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j <= t; j++) dot += ar[j] * dr[j];
#pragma omp simd
        for (int j = 0; j <= t; j++) dr[j] = ar[j] * (dr[j] - dot) * scale;
        for (int j = t + 1; j < T; j++) dr[j] = 0.0f;
    }
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int m = min_int(ATT_BLOCK, T - i0);
        iq_sgemm_fp32_ld(false, false, m, D, i0 + m, 1.0f, da + (size_t)i0 * T, T, k, ldkv, 1.0f, dq + (size_t)i0 * ldq, ldq);
    }
    for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
        int m = min_int(ATT_BLOCK, T - j0);
        iq_sgemm_fp32_ld(true, false, m, D, T - j0, 1.0f, da + (size_t)j0 * T + j0, T, q + (size_t)j0 * ldq, ldq, 1.0f,
                         dk + (size_t)j0 * ldkv, ldkv);
    }
}

/* Parallel over (batch, key/value head): the query heads of a group add into the same dk, dv one after the other. */
void iq_causal_attention_backward(const iq_attn_shape *s, float *dq, float *dk, float *dv, float *datt, const float *dout,
                                  const float *q, const float *k, const float *v, const float *att) {
    int T = s->T, D = s->D, G = s->Hq / s->Hk;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < s->B; b++)
        for (int kh = 0; kh < s->Hk; kh++)
            for (int h = kh * G; h < (kh + 1) * G; h++) {
                size_t qo = (size_t)b * T * s->ldq + (size_t)h * D, ko = (size_t)b * T * s->ldkv + (size_t)kh * D;
                size_t ao = ((size_t)b * s->Hq + h) * T * T;
                head_backward(s, dq + qo, dk + ko, dv + ko, datt + ao, dout + (size_t)b * T * s->Hq * D + (size_t)h * D,
                              q + qo, k + ko, v + ko, att + ao);
            }
}
