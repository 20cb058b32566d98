/* kernels_llama.h — the layers of the Llama families (DESIGN §10): forward and backward; backward functions
 * accumulate (+=) into their gradients. Linear weights are [out, in] (HF nn.Linear order). N = B*T rows. */
#ifndef IQTRAIN_KERNELS_LLAMA_H
#define IQTRAIN_KERNELS_LLAMA_H

#include <stddef.h>
#include <stdint.h>

// out (N,C) = emb[ids]
void iq_embed_forward(float *out, const int32_t *ids, const float *emb, int N, int C);
// demb (V,C) += scatter of dout (N,C) by ids
void iq_embed_backward(float *demb, const float *dout, const int32_t *ids, int N, int C);
// out (N,C) = inp * rstd * weight, rstd (N) = 1 / sqrt(mean(inp^2) + eps)
void iq_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
// dweight NULL: a frozen weight (dinp only)
void iq_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const float *rstd, int N, int C);
// out (N,OC) = inp (N,C) @ weight^T (weight (OC,C)) + bias (OC, or NULL)
void iq_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
// dinp (N,C) += dout @ weight; dweight (OC,C, or NULL: a frozen weight) = dw_beta dweight + dout^T @ inp (dw_beta 0:
// written whole, whatever it held; 1: added to); dbias (OC, or NULL) += sum over rows of dout
void iq_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int N, int C, int OC, float dw_beta);
// The same with a frozen bf16 weight (a bf16 base, model.h): products through iq_sgemm_bw; backward is dinp only
void iq_linear_forward_bf16(float *out, const float *inp, const uint16_t *weight, const float *bias, int N, int C, int OC);
void iq_linear_backward_bf16(float *dinp, const float *dout, const uint16_t *weight, int N, int C, int OC);
// The rotary frequencies (D/2) of head width D: theta^(-2i/D), rescaled by rope_scaling type llama3 when
// factor > 0 (low_freq, high_freq factors and the original context).
void iq_rope_freqs(double *inv_freq, int D, double theta, double factor, double low_freq, double high_freq, int orig_ctx);
// cos, sin (n, D/2) of positions pos[0..n) (pos NULL: 0..n-1)
void iq_rope_table(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int D);
// Rotate-half RoPE of x (N, H*D) in place; row r uses table row r % T
void iq_rope_forward(float *x, const float *cos_t, const float *sin_t, int N, int T, int H, int D);
// dx (N, H*D) in place: the transposed rotation (the gradient through RoPE)
void iq_rope_backward(float *dx, const float *cos_t, const float *sin_t, int N, int T, int H, int D);
// Causal grouped-query attention: q (B,T,Hq*D), k, v (B,T,Hk*D), Hq a multiple of Hk (query head h reads
// key/value head h / (Hq/Hk)); out (B,T,Hq*D); att (B,Hq,T,T) keeps the probabilities; scale 1/sqrt(D)
void iq_gqa_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T, int Hq, int Hk,
                    int D);
// dq, dk, dv += from dout; datt (B,Hq,T,T) is scratch
void iq_gqa_backward(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *q, const float *k,
                     const float *v, const float *att, int B, int T, int Hq, int Hk, int D);
// out (N) = silu(gate) * up
void iq_swiglu_forward(float *out, const float *gate, const float *up, size_t N);
// dgate, dup += from dout
void iq_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N);

#endif
