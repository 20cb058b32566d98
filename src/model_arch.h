/* model_arch.h — what an architecture file provides behind the model interface (internal to the library).
 *
 * A family is one file that fills an iq_arch (or several: model_llama.c fills one per model_type) and is
 * listed in model.c's registry. Everything outside the family file — training, evaluation, generation,
 * folders and checkpoints — goes through model.h and never names a family's tensors or layers:
 *   - its configuration: presets, config.json in and out (HF keys), checks;
 *   - the one parameter table: HF tensor names, shapes, offsets in the parameter arena, weight decay;
 *   - the activation arena's size for (B, T) in training and in inference mode;
 *   - forward (to the final norm), backward (from its gradient), init from a seed;
 *   - a KV-cache decode step (infer.c owns the cache; the family computes the layers). */
#ifndef IQTRAIN_MODEL_ARCH_H
#define IQTRAIN_MODEL_ARCH_H

#include <cJSON.h>

#include "iqtrain/model.h"

struct iq_model {
    const struct iq_arch *arch;
    iq_model_config cfg;
    iq_model_mode mode;
    int max_batch, max_seq;
    bool recompute;          /* training mode: activations recomputed layer by layer in backward */
    int n_tensors;
    iq_tensor_ref *tensors;  /* (n_tensors) the parameter table */
    size_t num_params;
    float *params_memory;    /* (num_params) */
    bool params_borrowed;    /* params_memory is another model's (iq_model_create_view) */
    uint16_t *params_bf16;   /* (num_bf16) IQ_MODEL_BF16_BASE: the weight matrices; NULL otherwise */
    size_t num_bf16;         /* of num_params, those in params_bf16 (params_memory holds the others) */
    bool *tensor_bf16;       /* (n_tensors) tensor i lives in params_bf16; NULL without a bf16 base */
    bool frozen;             /* IQ_MODEL_FROZEN: no parameter gradients */
    size_t head_offset;      /* the LM head in params_memory (the family's head_offset, moved by a bf16 base) */
    float *grads_memory;     /* (num_params); NULL in inference mode and frozen */
    bool grads_unset;        /* iq_model_zero_grad left the weight matrices' gradients (the tensors with decay) as
                              * they were: the next backward writes them (beta 0) instead of adding to them */
    float *acts_memory;      /* activations for (max_batch, max_seq) */
    float *grads_acts_memory; /* their gradients; NULL in inference mode */
    size_t acts_capacity;
    size_t grads_acts_capacity; /* floats of grads_acts_memory (0 in inference mode) */
    struct iq_lora *lora;    /* attached LoRA adapters (iq_model_set_lora), not owned; NULL: none */
    void *layout;            /* the family's pointers into the arenas, laid out for (cur_B, cur_T) */
    int cur_B, cur_T;
};

/* The KV cache as the family's decode step sees it (infer.c allocates it from kv_width). */
typedef struct {
    int max_slots, max_len, max_rows;
    float *kcache, *vcache; /* (L, max_slots, max_len, kv_width) */
    int *len;               /* (max_slots) positions cached per slot */
    int *row_slot, *row_pos; /* (max_rows) slot and position of each new row of a step */
    float *scratch;         /* the family's decode scratch (decode_scratch floats) */
} iq_kv_cache;

typedef struct iq_arch {
    const char *name;     /* --arch and config.json's model_type */
    const char *hf_class; /* config.json "architectures" */
    const char *hf_prefix; /* a prefix HF folders may put before every tensor name ("transformer."), or NULL */
    bool (*hf_buffer)(const char *name); /* tensors HF folders store that are no parameters (ignored) */
    /* configuration */
    iq_status (*preset)(const char *name, iq_model_config *cfg);
    iq_status (*check)(const iq_model_config *cfg);
    /* from scratch, after the overrides: the widths that follow from them (NULL: none; the family takes
     * --n-kv-head only with one) */
    void (*derive)(iq_model_config *cfg);
    iq_status (*config_from_json)(const cJSON *j, const char *path, iq_model_config *cfg); /* 65 with the reason */
    void (*config_to_json)(const iq_model_config *cfg, cJSON *j);
    /* the parameter table: count, and the refs when not NULL (offsets from the arena's start) */
    int (*tensors)(const iq_model_config *cfg, iq_tensor_ref *refs);
    /* activation floats for (B, T); train = false: what a forward pass without backward needs */
    size_t (*act_floats)(const iq_model_config *cfg, int B, int T, bool train);
    /* activation-gradient floats for (B, T) in training (NULL: as many as act_floats(train)); a family whose
     * backward needs one layer's gradients at a time says so here */
    size_t (*grad_act_floats)(const iq_model_config *cfg, int B, int T);
    /* activation floats for (B, T) in training with recomputation (NULL: the family has none) */
    size_t (*recompute_act_floats)(const iq_model_config *cfg, int B, int T);
    void (*layout)(iq_model *m, int B, int T); /* points m->layout into the arenas */
    size_t layout_size;
    void (*init)(iq_model *m, uint64_t seed);
    void (*forward)(iq_model *m, const int32_t *ids, int B, int T);
    /* adds the parameter gradients to grads_memory, except that with m->grads_unset it writes those of the
     * tensors with decay (every family's decay tensors are its blocks' weight matrices, each the output of one
     * weight-gradient product per backward) */
    void (*backward)(iq_model *m, const int32_t *ids, int B, int T);
    size_t (*head_offset)(const iq_model_config *cfg); /* the (V, C) LM head (the Q head) in the arena */
    float *(*lnf)(iq_model *m);  /* (B*T, C) final hidden states of the last forward */
    float *(*dlnf)(iq_model *m); /* their gradient (training mode) */
    /* KV-cache decoding: width of a cached key (and value) row, scratch floats for max_rows rows, and the
     * step: appends tokens (B, n) at kv->row_slot/row_pos to the cache, writes the final hidden state of each slot's last
     * new row to out (B, C) */
    size_t (*kv_width)(const iq_model_config *cfg);
    size_t (*decode_scratch)(const iq_model_config *cfg, int max_rows, int max_len);
    void (*decode)(iq_model *m, iq_kv_cache *kv, const int32_t *tokens, int B, int n, float *out);
} iq_arch;

extern const iq_arch iq_arch_gpt2;
extern const iq_arch iq_arch_llama, iq_arch_mistral, iq_arch_qwen2, iq_arch_qwen3; /* model_llama.c */

/* The family of that name (config.json's model_type), or NULL; the names known, for messages. */
const iq_arch *iq_arch_find(const char *name);
const char *iq_arch_names(void);

#endif
