/* lora.h — LoRA adapters on the linear layers of a model (issue #19; PEFT's LoraLayer).
 *
 * A target linear layer y = W x + b gains y += (alpha/r) · B (A dropout(x)), A (r, in), B (out, r). As PEFT's
 * reset_lora_parameters (init_lora_weights=True): A ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in),
 * 1/sqrt(in)); B = 0, so a fresh adapter leaves the model's outputs unchanged. Targets carry PEFT's module
 * names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj for the Llama families; c_attn, c_proj,
 * c_fc for GPT-2, where c_proj names both attn.c_proj and mlp.c_proj (PEFT matches a name against every module
 * ending in it: one name adapts both; attn.c_proj or mlp.c_proj names one). The defaults are PEFT's
 * (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING): q_proj,v_proj for the Llama families, c_attn for GPT-2;
 * rank 8, alpha 8. GPT-2's layers are HF Conv1D (weight (in, out)): PEFT adapts them with fan_in_fan_out true,
 * A still (r, in) and B (out, r), the merged delta transposed, (B A)^T; adapter_config.json says so.
 *
 * Design (the first slice; see the branch's report for what remains):
 *   - the adapters live in their own object: one arena of parameters (every A and B of every layer and
 *     target), one of gradients, one scratch of the A x products (N = max_batch*max_seq rows of r per layer
 *     and target, kept from forward for backward: N r floats each — small beside the layer's activations);
 *   - a model with adapters attached (iq_model_set_lora) calls iq_lora_forward after each target's frozen
 *     product and iq_lora_backward before it; its linear layers then compute only dX = dY W (no dW, no db:
 *     the base is frozen). The AdamW of the adapters is a second iq_adamw-like state over the adapters'
 *     arena only; the LM head (the Q head) stays frozen unless --train-head: then the adapters' arena ends with a
 *     copy of the head (V, C), "lm_head.weight" in their table (no weight decay, as in a full fine-tune), which the
 *     model reads and the loss head writes the gradient of (iq_model_head, iq_model_head_grad) — PEFT's
 *     modules_to_save ["lm_head"], saved as base_model.model.lm_head.weight. Untied heads only: a tied head is the
 *     embedding too (PEFT would untie it, or train the embedding with ensure_weight_tying): refused, 64;
 *   - the adapters' tensor table names them as the base's module plus PEFT's suffix, model.layers.N.self_attn.
 *     q_proj.lora_A.weight (r, in) and ...lora_B.weight (out, r); adapter_model.safetensors adds PEFT's prefix
 *     base_model.model. (IQ_LORA_PEFT_PREFIX). */
#ifndef IQTRAIN_LORA_H
#define IQTRAIN_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/model.h"
#include "iqtrain/util.h"

/* The targets, as bits of a mask: the Llama families' linear layers, then GPT-2's (attn.c_proj and mlp.c_proj
 * two targets of one PEFT name). */
typedef enum {
    IQ_LORA_Q = 0, IQ_LORA_K, IQ_LORA_V, IQ_LORA_O, IQ_LORA_GATE, IQ_LORA_UP, IQ_LORA_DOWN,
    IQ_LORA_C_ATTN, IQ_LORA_ATTN_C_PROJ, IQ_LORA_C_FC, IQ_LORA_MLP_C_PROJ, IQ_LORA_NUM_TARGETS
} iq_lora_target;
#define IQ_LORA_LLAMA_TARGETS 0x7Fu  /* q, k, v, o, gate, up, down */
#define IQ_LORA_GPT2_TARGETS 0x780u  /* c_attn, attn.c_proj, c_fc, mlp.c_proj */

typedef struct {
    int rank;        /* r; 0 = no adapters */
    float alpha;     /* lora_alpha; the scale is alpha / r */
    float dropout;   /* lora_dropout p in [0, 1): the low-rank path reads dropout(x) in training passes */
    unsigned targets; /* mask of 1u << iq_lora_target; 0: the family's default */
    bool train_head;  /* --train-head: the LM head (an untied lm_head.weight) trains too, a copy in the adapters' arena */
} iq_lora_opts;

#define IQ_LORA_DEFAULT_RANK 8
#define IQ_LORA_DEFAULT_ALPHA 8.0f
#define IQ_LORA_DEFAULT_TARGETS "q_proj,v_proj"
#define IQ_LORA_GPT2_DEFAULT_TARGETS "c_attn"
#define IQ_LORA_PEFT_PREFIX "base_model.model."

/* PEFT's module name of a target ("q_proj", "c_proj"), and its block's ("self_attn", "mlp"). */
const char *iq_lora_target_name(iq_lora_target t);
const char *iq_lora_target_block(iq_lora_target t);
/* Whether a target-module name (PEFT's matching: the module's name or a dotted tail of block.module) names t. */
bool iq_lora_name_matches(const char *name, size_t len, iq_lora_target t);
/* A comma-separated list of PEFT module names (or block.module tails) into a mask; 64 naming an unknown or repeated
 * one. */
iq_status iq_lora_parse_targets(const char *list, unsigned *mask);
/* The targets a config's family has (IQ_LORA_LLAMA_TARGETS or IQ_LORA_GPT2_TARGETS), and its default mask. */
unsigned iq_lora_family_targets(const iq_model_config *cfg);
unsigned iq_lora_family_default(const iq_model_config *cfg);
/* The options' checks: rank >= 0, alpha > 0, dropout in [0, 1), known targets; 64 with the reason. */
iq_status iq_lora_check_opts(const iq_lora_opts *o);

typedef struct iq_lora iq_lora;

/* Adapters for a config (targets 0: the family's default; 64 naming a target the family does not have, or
 * train_head with a tied head), for steps of up to max_rows = B*T rows; A initialised from seed as PEFT does, B zero,
 * the head's copy zero (iq_lora_head: the caller copies the base's in). */
iq_status iq_lora_create(const iq_model_config *cfg, const iq_lora_opts *o, int max_rows, uint64_t seed, iq_lora **out);
void iq_lora_free(iq_lora *lo);
const iq_lora_opts *iq_lora_get_opts(const iq_lora *lo);
float iq_lora_scale(const iq_lora *lo);
int iq_lora_max_rows(const iq_lora *lo);
/* Bytes of the adapters' arenas: parameters, gradients, the saved A x products and their scratch. */
size_t iq_lora_bytes(const iq_lora *lo);
bool iq_lora_has(const iq_lora *lo, iq_lora_target t);

/* The adapters' parameter table (names without PEFT's prefix: the base's HF module names, model.layers.N.... or
 * transformer.h.N...., plus .lora_A.weight / .lora_B.weight; offsets into iq_lora_params): count, and refs when not
 * NULL; each target's A, then its B. */
int iq_lora_tensor_refs(const iq_lora *lo, iq_tensor_ref *refs);
float *iq_lora_params(iq_lora *lo, size_t *n);
float *iq_lora_grads(iq_lora *lo, size_t *n);
void iq_lora_zero_grad(iq_lora *lo);
/* The trained head's copy (V, C) and its gradient; NULL without train_head. */
float *iq_lora_head(iq_lora *lo);
float *iq_lora_head_grad(iq_lora *lo);
/* A (r, in) and B (out, r) of layer l's target t (NULL when not a target), and their gradients. */
float *iq_lora_A(iq_lora *lo, iq_lora_target t, int l);
float *iq_lora_B(iq_lora *lo, iq_lora_target t, int l);
float *iq_lora_dA(iq_lora *lo, iq_lora_target t, int l);
float *iq_lora_dB(iq_lora *lo, iq_lora_target t, int l);

/* out (N, out) += scale · (inp (N, in) A^T) B^T; keeps inp A^T for backward. No-op when t is not a target. */
void iq_lora_forward(iq_lora *lo, iq_lora_target t, int l, float *out, const float *inp, int N);
/* From dout (N, out): dB += scale · dout^T (x A^T), dA += (scale · dout B)^T x, dinp += (scale · dout B) A. */
void iq_lora_backward(iq_lora *lo, iq_lora_target t, int l, float *dinp, const float *dout, const float *inp, int N);

/* Dropout (PEFT's lora_dropout, p > 0): y += s B A dropout(x), dropout(x) = mask ⊙ x / (1 - p), on the training
 * passes only. iq_lora_set_pass(lo, key) before a training pass's forward (and its backward, which regenerates the
 * masks, as does a recomputation) — iq_train_step passes adamw_steps * 65536 + micro-batch; IQ_LORA_NO_DROPOUT
 * after it (evaluation: no dropout). Element i (row-major in the (N, in) input) of layer l's target t is kept
 * when the top 24 bits of splitmix64(iq_lora_dropout_key(seed, pass, l, t) ^ i), over 2^24, are >= p. The key hashes
 * layer * 7 + the target's index in its family (q_proj 0 .. down_proj 6; c_attn 0, attn.c_proj 1, c_fc 2,
 * mlp.c_proj 3). */
#define IQ_LORA_NO_DROPOUT UINT64_MAX
void iq_lora_set_pass(iq_lora *lo, uint64_t pass);
uint64_t iq_lora_dropout_key(uint64_t seed, uint64_t pass, int layer, iq_lora_target t);

/* The base_model_name_or_path iq_lora_save writes ("" until set; copied). */
void iq_lora_set_base(iq_lora *lo, const char *base_model);
const char *iq_lora_base(const iq_lora *lo);
/* Writes dir/adapter_config.json and dir/adapter_model.safetensors in PEFT's layout (base_model is the
 * base_model_name_or_path written; NULL: iq_lora_base); 74 naming the file. */
iq_status iq_lora_save(const iq_lora *lo, const char *dir, const char *base_model);

#endif
