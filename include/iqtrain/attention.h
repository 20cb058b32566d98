/* attention.h — causal scaled dot-product attention, forward and backward, for every family: GPT-2's packed
 * qkv and the Llama families' grouped-query q, k, v are the same computation on differently strided rows
 * (kernels.h's iq_attention_* and kernels_llama.h's iq_gqa_* call this).
 *
 * q row t of batch b, query head h:  q + (b T + t) ldq + h D        (D values)
 * k and v rows, key/value head h/G:  k + (b T + t) ldkv + (h/G) D   (G = Hq / Hk)
 * out and dout rows:                 out + (b T + t) Hq D + h D
 * att and datt: (B, Hq, T, T), row t holding the probabilities of keys 0..t (zeros after).
 *
 * The products run in blocks of query rows (and key columns) on the causal side of the diagonal only: at
 * T = 128 in blocks of 32 they do 10 of the 16 blocks of the full T x T products, at T = 512 136 of 256. The
 * products are always fp32 on OpenBLAS, one thread each (also for --matmul-precision bf16, as GPT-2's were). */
#ifndef IQTRAIN_ATTENTION_H
#define IQTRAIN_ATTENTION_H

typedef struct {
    int B, T, Hq, Hk, D;
    int ldq, ldkv; /* row strides of q (and dq) and of k, v (and dk, dv), in floats */
} iq_attn_shape;

// out = softmax(q k^T / sqrt(D) + causal mask) v; att keeps the probabilities
void iq_causal_attention_forward(const iq_attn_shape *s, float *out, float *att, const float *q, const float *k,
                                 const float *v);
// dq, dk, dv += the gradients through it given dout; datt is scratch of att's size
void iq_causal_attention_backward(const iq_attn_shape *s, float *dq, float *dk, float *dv, float *datt, const float *dout,
                                  const float *q, const float *k, const float *v, const float *att);

#endif
