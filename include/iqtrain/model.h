/* model.h — the model interface: a policy of some architecture family, its parameter table and its arenas.
 *
 * A family (DESIGN §10: GPT-2 in src/model_gpt2.c; llama, mistral, qwen2 and qwen3 in src/model_llama.c)
 * plugs in behind this interface; nothing here names a family's layers. The model's forward pass stops at
 * the final norm: the LM head (the embedding, or an untied lm_head.weight) is fused with the loss in
 * iqlearn.c, which reads iq_model_lnf() and iq_model_head() and writes the gradient into iq_model_dlnf()
 * and iq_model_head_grad() before iq_model_backward().
 *
 * Memory is llm.c-style: one arena each for parameters, gradients, activations and activation gradients,
 * sized once for (max_batch, max_seq) and never reallocated. A step may use any B <= max_batch and
 * T <= max_seq. A model created for inference (IQ_MODEL_INFER: eval, generate, score) has no gradient
 * arenas and keeps one layer's activations at a time. */
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
    char arch[16]; /* the family: "gpt2" ("" means gpt2) */
    /* Llama-family fields (src/model_llama.c); 0 / false in GPT-2 configs. ln_eps is rms_norm_eps there. */
    int n_kv_head;        /* num_key_value_heads (grouped-query attention) */
    int head_dim;         /* per-head width (n_embd / n_head unless config.json says) */
    int n_inner;          /* intermediate_size of the SwiGLU MLP */
    float rope_theta;     /* rotary base */
    float rope_factor;    /* rope_scaling type llama3: factor (0 = no scaling), low/high_freq_factor, */
    float rope_low_freq, rope_high_freq; /* and original_max_position_embeddings */
    int rope_orig_ctx;
    bool untied;          /* tie_word_embeddings false: lm_head.weight is its own tensor (the Q head) */
    bool qkv_bias;        /* q/k/v projections have biases (qwen2, attention_bias) */
    bool o_bias;          /* o_proj has a bias (attention_bias) */
    bool qk_norm;         /* per-head RMSNorm of q and k before RoPE (qwen3) */
} iq_model_config;

/* The family's name of a config ("gpt2" for ""). */
const char *iq_model_arch_name(const iq_model_config *cfg);
/* Whether a family of that name exists. */
bool iq_model_arch_known(const char *name);
/* A preset of the family cfg->arch names (GPT-2: "tiny" L2 H2 C64 ctx128, "small" L4 H4 C256 ctx256,
 * "gpt2" L12 H12 C768 ctx1024; Llama: "tiny" L2 H4 KV2 C64 ctx128, "small" L4 H4 KV2 C256 ctx256,
 * "smollm2-135m" L30 H9 KV3 C576 ctx2048); keeps cfg->arch. 64 for an unknown name. */
iq_status iq_model_preset(const char *name, iq_model_config *cfg);
/* A config from scratch: the family arch ("" = gpt2), its preset (NULL = "small"), the non-zero overrides
 * {n_layer, n_head, n_embd, ctx, n_kv_head} (the family derives the widths that follow from them, e.g. Llama's
 * head_dim and intermediate_size), and the tokenizer's vocabulary; checked. 64 with the reason. */
iq_status iq_model_config_build(const char *arch, const char *preset, const int overrides[5], int vocab,
                                iq_model_config *cfg);
/* Checks sizes (positive, n_embd divisible by n_head, ...); 64 with the reason. */
iq_status iq_model_config_check(const iq_model_config *cfg);
/* The first field in which two configs differ ("n_head", ...), or NULL when they describe the same model. */
const char *iq_model_config_diff(const iq_model_config *a, const iq_model_config *b);
/* One-line description for messages: "gpt2 L4 H4 C256 ctx 256 vocab 1024" (Llama families add KV heads,
 * head_dim, intermediate size, rope and the head's tying). */
void iq_model_config_describe(const iq_model_config *cfg, char *buf, size_t cap);

/* One HF-named view into the parameter arena (a slice of a stacked tensor for per-layer names). */
typedef struct {
    char name[64];     /* e.g. "h.3.attn.c_attn.weight" */
    int ndim;
    int64_t shape[2];
    size_t offset;     /* in floats from the start of the parameter arena */
    size_t numel;
    bool decay;        /* AdamW weight decay applies (2-D matrices of the blocks only) */
} iq_tensor_ref;

/* The parameter table of a config, computed without allocating the model (a folder is checked against it
 * before anything is allocated). Returns the count; fills refs (if not NULL) in the family's HF order. */
int iq_model_config_tensors(const iq_model_config *cfg, iq_tensor_ref *refs);
/* Parameters of a config. */
size_t iq_model_config_num_params(const iq_model_config *cfg);

/* IQ_MODEL_TRAIN_RECOMPUTE creates a training model with activation recomputation (transformers' gradient
 * checkpointing) where the family has it (the Llama families): the forward pass keeps each layer's output
 * (the residual stream) and one layer's other activations; backward recomputes a layer's activations from
 * its input before its gradients — one more forward pass of the layers per step, the same numbers bit for
 * bit (the same kernels on the same inputs). iq_model_get_mode then says IQ_MODEL_TRAIN and
 * iq_model_recomputes whether it took. A family without it (GPT-2) trains as IQ_MODEL_TRAIN. */
typedef enum { IQ_MODEL_TRAIN = 0, IQ_MODEL_INFER = 1, IQ_MODEL_TRAIN_RECOMPUTE = 2 } iq_model_mode;
/* Flags OR'ed onto IQ_MODEL_TRAIN or IQ_MODEL_TRAIN_RECOMPUTE for a frozen base under LoRA adapters (lora.h):
 *   IQ_MODEL_FROZEN     no parameter-gradient arena: backward computes the activations' gradients only
 *                       (iq_model_grad_memory and iq_model_head_grad are NULL); the activation arenas as ever;
 *   IQ_MODEL_BF16_BASE  (implies FROZEN; the Llama families only, 64 for gpt2) the blocks' weight matrices (the tensors with decay: q, k, v, o, gate,
 *                       up, down) held in bf16 only, in a second arena (iq_model_param_bf16), no fp32 copy: half
 *                       their memory. The embedding (and LM head), norms and biases stay fp32. Their products run
 *                       from the bf16 values (iq_sgemm_bw: bf16 products at --matmul-precision bf16; at fp32 the
 *                       weight is widened exactly and the product is fp32). iq_model_tensor_bf16 says which
 *                       tensors live there; iq_model_tensor_refs' offsets count in the tensor's own arena. */
enum { IQ_MODEL_FROZEN = 4, IQ_MODEL_BF16_BASE = 8 };

typedef struct iq_model iq_model;

/* Allocates the model and its arenas (parameters zeroed). max_seq <= cfg->ctx. mode: a mode, for training
 * with the flags above. */
iq_status iq_model_create(const iq_model_config *cfg, iq_model_mode mode, int max_batch, int max_seq, iq_model **out);
/* An inference-mode model (its own activations for (max_batch, max_seq)) on src's parameters, which it reads
 * and never frees: generation from a model being trained. src must outlive it. */
iq_status iq_model_create_view(iq_model *src, int max_batch, int max_seq, iq_model **out);
void iq_model_free(iq_model *m);
const iq_model_config *iq_model_cfg(const iq_model *m);
iq_model_mode iq_model_get_mode(const iq_model *m);
bool iq_model_recomputes(const iq_model *m);
int iq_model_max_batch(const iq_model *m);
int iq_model_max_seq(const iq_model *m);
/* Bytes of the model's arenas (parameters, gradients, activations and their gradients). */
size_t iq_model_arena_bytes(const iq_model *m);
/* The arenas' floats one by one: activations and (training mode) their gradients. */
size_t iq_model_act_floats(const iq_model *m);
size_t iq_model_grad_act_floats(const iq_model *m);
/* The family's initialisation from a seed (GPT-2: N(0, 0.02) weights and embeddings, residual
 * projections scaled by 1/sqrt(2 n_layer), LayerNorm 1/0, biases 0). Deterministic for a seed whatever the
 * thread count. */
void iq_model_init(iq_model *m, uint64_t seed);

/* The fp32 parameter arena (every tensor, or with IQ_MODEL_BF16_BASE those not in the bf16 arena). */
float *iq_model_param_memory(iq_model *m, size_t *n);
/* The bf16 arena of a IQ_MODEL_BF16_BASE model (NULL and *n = 0 otherwise), and whether tensor i (the table's
 * index) lives there. */
uint16_t *iq_model_param_bf16(iq_model *m, size_t *n);
bool iq_model_tensor_bf16(const iq_model *m, int i);
/* Whether the model was created IQ_MODEL_FROZEN (or IQ_MODEL_BF16_BASE): no parameter gradients. */
bool iq_model_frozen(const iq_model *m);
/* NULL (and *n = 0) in inference mode. */
float *iq_model_grad_memory(iq_model *m, size_t *n);
size_t iq_model_num_params(const iq_model *m);
/* The parameter table (as iq_model_config_tensors): count, and the refs when not NULL. */
int iq_model_tensor_refs(const iq_model *m, iq_tensor_ref *refs);
/* The LM head (V, C), which is the Q head of IQLearn, and its gradient (NULL in inference mode and with LoRA
 * adapters attached: the head is frozen; with adapters made with train_head, their copy of the head and its
 * gradient). */
const float *iq_model_head(iq_model *m);
float *iq_model_head_grad(iq_model *m);

/* Forward pass over ids (B, T) up to the final norm. B <= max_batch, T <= max_seq. */
void iq_model_forward(iq_model *m, const int32_t *ids, int B, int T);
/* Output of the final norm: (B*T, C), valid until the next forward. */
float *iq_model_lnf(iq_model *m);
/* Gradient of the loss w.r.t. the final norm's output, (B*T, C): the loss head writes it (training mode). */
float *iq_model_dlnf(iq_model *m);
/* Backward pass from iq_model_dlnf(); accumulates (+=) into the parameter gradients, except that the first
 * backward after iq_model_zero_grad writes the weight matrices' (the tensors with decay) whatever they held.
 * The LM head's share of its weight's gradient (never a tensor with decay) is added by the loss head
 * directly. Training mode only. */
void iq_model_backward(iq_model *m, const int32_t *ids, int B, int T);
/* Zeroes the parameter gradients. The weight matrices' (the tensors with decay: most of the arena) are zeroed
 * lazily: the next iq_model_backward writes them instead of adding, and iq_model_trainable and
 * iq_model_grad_memory zero them if asked first. */
void iq_model_zero_grad(iq_model *m);

/* Attaches LoRA adapters (lora.h; NULL detaches): forward adds their low-rank path to the target layers and
 * backward accumulates their gradients; the base's linear layers are then frozen (backward computes their
 * input gradients only). The adapters must outlive the model or be
 * detached first, and hold max_rows >= max_batch * max_seq. */
struct iq_lora;
iq_status iq_model_set_lora(iq_model *m, struct iq_lora *lora);
struct iq_lora *iq_model_get_lora(const iq_model *m);
/* What the optimizer trains: the adapters' arena when adapters are attached, else the parameter arena; their
 * gradients (*grads NULL in inference mode), their count and their table (count, refs when not NULL). */
float *iq_model_trainable(iq_model *m, float **grads, size_t *n);
int iq_model_trainable_refs(iq_model *m, iq_tensor_ref *refs);

#endif
