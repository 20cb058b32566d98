/* kernels.h — GPT-2's layers: forward and backward (backward accumulates with +=).
 * Weights are [in, out] (HF Conv1D order). N = B*T rows. */
#ifndef IQTRAIN_KERNELS_H
#define IQTRAIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// out (B,T,C) = wte[inp] + wpe[t]
void iq_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B, int T, int C);
// dwte (V,C), dwpe (ctx,C) += from dout (B,T,C)
void iq_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, int B, int T, int C);
// out (N,C) = LayerNorm(inp (N,C)) * weight + bias; mean, rstd (N)
void iq_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                          int N, int C, float eps);
// dweight and dbias NULL (a frozen base): dinp only
void iq_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int N, int C);
// out (N,OC) = inp (N,C) @ weight (C,OC) + bias (OC)
void iq_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
// dinp (N,C) += dout weight^T; dbias (OC) += unless NULL (a frozen base); dweight (C,OC) = dw_beta dweight +
// inp^T dout unless NULL (dw_beta 0: written whole, whatever it held; 1: added to)
void iq_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int N, int C, int OC, float dw_beta);
// out (B,T,C) = causal attention over qkv (B,T,3C) with H heads; att (B,H,T,T) probabilities
void iq_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H);
// dqkv (B,T,3C) += ...; datt (B,H,T,T) scratch
void iq_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B, int T,
                           int C, int H);
// dbias (OC) += sum over the N rows of dout (N,OC), summed in row order (deterministic for any thread count)
void iq_bias_backward(float *dbias, const float *dout, int N, int OC);
// out = gelu_tanh(inp)
void iq_gelu_forward(float *out, const float *inp, size_t N);
void iq_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);
// p[0..n) = 0 (iq_zero_bytes, util.h: split across the threads from 256 KB)
void iq_zero(float *p, size_t n);
// out = a + b
void iq_residual_forward(float *out, const float *a, const float *b, size_t N);
void iq_residual_backward(float *da, float *db, const float *dout, size_t N);

#endif
