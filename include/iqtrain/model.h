/* model.h — the GPT-2 policy (DESIGN §2): pre-LayerNorm blocks, learned positions, GELU (tanh),
 * causal attention scaled by 1/sqrt(d_head), tied input/output embedding, fp32 master weights.
 *
 * Memory is llm.c-style: one arena each for parameters, gradients, activations and activation
 * gradients, sized once for (max_batch, max_seq) and never reallocated. A step may use any B <= max_batch
 * and T <= max_seq; the activation layout is recomputed from (B, T) without allocation.
 *
 * The forward pass stops at the final LayerNorm: the LM head is fused with the loss in iqlearn.c, which
 * reads iq_model_lnf() and writes the gradient into iq_model_dlnf() before iq_model_backward(). */
#ifndef IQTRAIN_MODEL_H
#define IQTRAIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

typedef struct {
    int n_layer;
    int n_head;
    int n_embd;
    int ctx;      /* positions (n_positions) */
    int vocab;    /* from the tokenizer */
    float ln_eps; /* layer_norm_epsilon, 1e-5 */
} iq_model_config;

/* The presets of DESIGN §2: "tiny" (L2 H2 C64 ctx128), "small" (L4 H4 C256 ctx256), "gpt2"
 * (L12 H12 C768 ctx1024). 64 for an unknown name. */
iq_status iq_model_preset(const char *name, iq_model_config *cfg);
/* Checks sizes (positive, n_embd divisible by n_head, ...); 64 with the reason. */
iq_status iq_model_config_check(const iq_model_config *cfg);

#define IQ_NUM_PARAM_TENSORS 16

/* Parameter tensors, all layers stacked. Weights are [in, out] (HF Conv1D order). */
typedef struct {
    float *wte;      /* (V, C) */
    float *wpe;      /* (ctx, C) */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, C, 3C) */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, C, 4C) */
    float *fcb;      /* (L, 4C) */
    float *fcprojw;  /* (L, 4C, C) */
    float *fcprojb;  /* (L, C) */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
} iq_params;

typedef struct iq_model iq_model;

/* Allocates the model and its arenas (parameters zeroed). max_seq <= cfg->ctx. */
iq_status iq_model_create(const iq_model_config *cfg, int max_batch, int max_seq, iq_model **out);
void iq_model_free(iq_model *m);
const iq_model_config *iq_model_cfg(const iq_model *m);
int iq_model_max_batch(const iq_model *m);
int iq_model_max_seq(const iq_model *m);

/* GPT-2 initialisation from a seed: N(0, 0.02) weights and embeddings, residual projections
 * (attn.c_proj, mlp.c_proj) scaled by 1/sqrt(2 n_layer), LayerNorm 1/0, biases 0. Deterministic for a
 * seed whatever the thread count. */
void iq_model_init_gpt2(iq_model *m, uint64_t seed);

iq_params *iq_model_params(iq_model *m);
iq_params *iq_model_grads(iq_model *m);
float *iq_model_param_memory(iq_model *m, size_t *n);
float *iq_model_grad_memory(iq_model *m, size_t *n);
size_t iq_model_num_params(const iq_model *m);

/* One HF-named view into the arenas (a slice of a stacked tensor for per-layer names). */
typedef struct {
    char name[64];     /* e.g. "h.3.attn.c_attn.weight" */
    int ndim;
    int64_t shape[2];
    size_t offset;     /* in floats from the start of the parameter arena */
    size_t numel;
    bool decay;        /* AdamW weight decay applies (2-D matrices of the blocks only) */
} iq_tensor_ref;
/* Number of HF tensors (4 + 12 per layer); fills refs (if not NULL) in HF order:
 * wte, wpe, h.{i}.* per layer, ln_f.weight, ln_f.bias. */
int iq_model_tensor_refs(const iq_model *m, iq_tensor_ref *refs);

/* Forward pass over ids (B, T) up to the final LayerNorm. B <= max_batch, T <= max_seq. */
void iq_model_forward(iq_model *m, const int32_t *ids, int B, int T);
/* Output of ln_f: (B*T, C), valid until the next forward. */
float *iq_model_lnf(iq_model *m);
/* Gradient of the loss w.r.t. ln_f's output, (B*T, C): the loss head writes it. */
float *iq_model_dlnf(iq_model *m);
/* Backward pass from iq_model_dlnf(); accumulates (+=) into the parameter gradients. The LM head's
 * share of the wte gradient is added by the loss head directly. */
void iq_model_backward(iq_model *m, const int32_t *ids, int B, int T);
void iq_model_zero_grad(iq_model *m);

#endif
