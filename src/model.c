/* model.c — the model interface (model.h): the registry of families, configs, arenas, and dispatch to the
 * family's file (model_arch.h). Adding a family is a new file and one line in FAMILIES.
 *
 * Sections: families · configs · arenas · dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_arch.h"
#include "iqtrain/kernels.h"
#include "iqtrain/lora.h"

// ----------------------------------------------------------------------------------------------------
// families

static const iq_arch *const FAMILIES[] = {&iq_arch_gpt2, &iq_arch_llama, &iq_arch_mistral, &iq_arch_qwen2, &iq_arch_qwen3};
#define N_FAMILIES ((int)(sizeof FAMILIES / sizeof *FAMILIES))

static const iq_arch *family(const char *name) {
    if (!name || !name[0]) return &iq_arch_gpt2;
    for (int i = 0; i < N_FAMILIES; i++)
        if (strcmp(FAMILIES[i]->name, name) == 0) return FAMILIES[i];
    return NULL;
}

bool iq_model_arch_known(const char *name) { return family(name) != NULL; }
const iq_arch *iq_arch_find(const char *name) { return name && name[0] ? family(name) : NULL; }

const char *iq_arch_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; i < N_FAMILIES; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", FAMILIES[i]->name);
    return names;
}
const char *iq_model_arch_name(const iq_model_config *cfg) { return cfg->arch[0] ? cfg->arch : "gpt2"; }

/* The family of a config; configs are checked on creation, so an unknown name here is a caller's bug. */
static const iq_arch *arch_of(const iq_model_config *cfg) {
    const iq_arch *a = family(cfg->arch);
    if (!a) {
        fprintf(stderr, "iqtrain: internal error: unknown model family '%s'\n", cfg->arch);
        abort();
    }
    return a;
}

// ----------------------------------------------------------------------------------------------------
// configs

iq_status iq_model_preset(const char *name, iq_model_config *cfg) {
    const iq_arch *a = family(cfg->arch);
    if (!a) return iq_fail(IQ_EUSAGE, "unknown architecture '%s'", cfg->arch);
    iq_model_config c = *cfg;
    iq_status st = a->preset(name, &c);
    if (!st) *cfg = c;
    return st;
}

iq_status iq_model_config_build(const char *arch, const char *preset, const int overrides[5], int vocab,
                                iq_model_config *cfg) {
    iq_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "%s", arch ? arch : "");
    iq_status st = iq_model_preset(preset ? preset : "small", &c);
    if (st) return st;
    const iq_arch *a = family(c.arch);
    if (overrides[4] && !a->derive)
        return iq_fail(IQ_EUSAGE, "--n-kv-head applies to the Llama families (%s has one key/value head per head)", a->name);
    int *fields[5] = {&c.n_layer, &c.n_head, &c.n_embd, &c.ctx, &c.n_kv_head};
    for (int i = 0; i < 5; i++)
        if (overrides[i]) *fields[i] = overrides[i];
    if (a->derive) a->derive(&c);
    c.vocab = vocab;
    st = iq_model_config_check(&c);
    if (!st) *cfg = c;
    return st;
}

iq_status iq_model_config_check(const iq_model_config *cfg) {
    const iq_arch *a = family(cfg->arch);
    if (!a) return iq_fail(IQ_EUSAGE, "unknown architecture '%s'", cfg->arch);
    return a->check(cfg);
}

const char *iq_model_config_diff(const iq_model_config *a, const iq_model_config *b) {
    if (strcmp(iq_model_arch_name(a), iq_model_arch_name(b)) != 0) return "model_type";
    if (a->n_layer != b->n_layer) return "n_layer";
    if (a->n_head != b->n_head) return "n_head";
    if (a->n_embd != b->n_embd) return "n_embd";
    if (a->ctx != b->ctx) return "ctx";
    if (a->vocab != b->vocab) return "vocab_size";
    if (a->ln_eps != b->ln_eps) return "layer_norm_epsilon";
    if (a->n_kv_head != b->n_kv_head) return "num_key_value_heads";
    if (a->head_dim != b->head_dim) return "head_dim";
    if (a->n_inner != b->n_inner) return "intermediate_size";
    if (a->rope_theta != b->rope_theta) return "rope_theta";
    if (a->rope_factor != b->rope_factor || a->rope_low_freq != b->rope_low_freq || a->rope_high_freq != b->rope_high_freq ||
        a->rope_orig_ctx != b->rope_orig_ctx)
        return "rope_scaling";
    if (a->untied != b->untied) return "tie_word_embeddings";
    if (a->qkv_bias != b->qkv_bias || a->o_bias != b->o_bias) return "attention_bias";
    if (a->qk_norm != b->qk_norm) return "qk_norm";
    return NULL;
}

void iq_model_config_describe(const iq_model_config *c, char *buf, size_t cap) {
    int k = snprintf(buf, cap, "%s L%d H%d C%d ctx %d, vocab %d", iq_model_arch_name(c), c->n_layer, c->n_head, c->n_embd,
                     c->ctx, c->vocab);
    if (!c->n_kv_head || k < 0 || (size_t)k >= cap) return;
    k += snprintf(buf + k, cap - (size_t)k, ", KV %d, head_dim %d, MLP %d, rope %g%s%s%s%s", c->n_kv_head, c->head_dim,
                  c->n_inner, (double)c->rope_theta, c->rope_factor > 0 ? " llama3" : "", c->untied ? ", untied" : ", tied",
                  c->qkv_bias ? (c->o_bias ? ", qkvo bias" : ", qkv bias") : "", c->qk_norm ? ", qk norm" : "");
}

int iq_model_config_tensors(const iq_model_config *cfg, iq_tensor_ref *refs) { return arch_of(cfg)->tensors(cfg, refs); }

size_t iq_model_config_num_params(const iq_model_config *cfg) {
    int n = iq_model_config_tensors(cfg, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_config_tensors(cfg, refs);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += refs[i].numel;
    free(refs);
    return total;
}

// ----------------------------------------------------------------------------------------------------
// arenas

/* Points the family's layout at the arenas for (B, T) (recomputed, never reallocated). */
static void layout(iq_model *m, int B, int T) {
    if (m->cur_B == B && m->cur_T == T) return;
    m->arch->layout(m, B, T);
    m->cur_B = B;
    m->cur_T = T;
}

static float *alloc_floats(size_t n) { return iq_arena_calloc(n, sizeof(float)); }

/* A bf16 base: the weight matrices (the tensors with decay) move to the bf16 arena. Each class keeps the
 * family's order of offsets (a stacked tensor stays contiguous in its arena): a tensor's new offset is its old
 * one less the floats of the other class's tensors before it. The family's layout compacts the same way. */
static void split_bf16(iq_model *m) {
    m->tensor_bf16 = iq_xcalloc((size_t)m->n_tensors, sizeof *m->tensor_bf16);
    size_t *old = iq_xmalloc((size_t)m->n_tensors * sizeof *old);
    for (int i = 0; i < m->n_tensors; i++) {
        m->tensor_bf16[i] = m->tensors[i].decay;
        old[i] = m->tensors[i].offset;
        if (m->tensor_bf16[i]) m->num_bf16 += m->tensors[i].numel;
    }
    for (int i = 0; i < m->n_tensors; i++)
        for (int j = 0; j < m->n_tensors; j++)
            if (m->tensor_bf16[j] != m->tensor_bf16[i] && old[j] < old[i]) m->tensors[i].offset -= m->tensors[j].numel;
    for (int i = 0; i < m->n_tensors; i++) /* the LM head (an fp32 tensor) moves with the others */
        if (old[i] == m->head_offset && !m->tensor_bf16[i]) {
            m->head_offset = m->tensors[i].offset;
            break;
        }
    free(old);
}

/* iq_model_create, with the parameter arena of another model when borrowed is not NULL. */
static iq_status model_new(const iq_model_config *cfg, iq_model_mode mode, int max_batch, int max_seq, float *borrowed,
                           iq_model **out) {
    *out = NULL;
    iq_status st = iq_model_config_check(cfg);
    if (st) return st;
    if (max_batch < 1 || max_seq < 1 || max_seq > cfg->ctx)
        return iq_fail(IQ_EUSAGE, "batch %d x sequence %d does not fit the model (ctx %d)", max_batch, max_seq, cfg->ctx);
    const iq_arch *a = arch_of(cfg);
    bool bf16 = (mode & IQ_MODEL_BF16_BASE) != 0, frozen = bf16 || (mode & IQ_MODEL_FROZEN) != 0;
    mode = (iq_model_mode)(mode & ~(IQ_MODEL_FROZEN | IQ_MODEL_BF16_BASE));
    if (frozen && mode == IQ_MODEL_INFER) return iq_fail(IQ_EUSAGE, "a frozen base is a training mode");
    if (bf16 && a == &iq_arch_gpt2)
        return iq_fail(IQ_EUSAGE, "--base-dtype bf16: the gpt2 family has no bf16 base yet (the Llama families do)");
    bool recompute = mode == IQ_MODEL_TRAIN_RECOMPUTE && a->recompute_act_floats;
    if (mode == IQ_MODEL_TRAIN_RECOMPUTE) mode = IQ_MODEL_TRAIN;
    bool train = mode == IQ_MODEL_TRAIN;
    iq_model *m = iq_xcalloc(1, sizeof *m);
    m->recompute = recompute;
    m->frozen = frozen;
    m->arch = a;
    m->cfg = *cfg;
    snprintf(m->cfg.arch, sizeof m->cfg.arch, "%s", a->name);
    m->mode = mode;
    m->max_batch = max_batch;
    m->max_seq = max_seq;
    m->n_tensors = a->tensors(cfg, NULL);
    m->tensors = iq_xmalloc((size_t)m->n_tensors * sizeof *m->tensors);
    a->tensors(cfg, m->tensors);
    for (int i = 0; i < m->n_tensors; i++) m->num_params += m->tensors[i].numel;
    m->head_offset = a->head_offset(cfg);
    if (bf16) split_bf16(m);
    m->acts_capacity = recompute ? a->recompute_act_floats(cfg, max_batch, max_seq) : a->act_floats(cfg, max_batch, max_seq, train);
    m->params_memory = borrowed ? borrowed : alloc_floats(m->num_params - m->num_bf16);
    m->params_borrowed = borrowed != NULL;
    m->acts_memory = alloc_floats(m->acts_capacity);
    bool ok = m->params_memory && m->acts_memory;
    if (bf16) {
        m->params_bf16 = iq_arena_calloc(m->num_bf16, sizeof *m->params_bf16);
        ok = ok && m->params_bf16;
    }
    if (train) {
        m->grads_acts_capacity = a->grad_act_floats ? a->grad_act_floats(cfg, max_batch, max_seq) : m->acts_capacity;
        if (!frozen) m->grads_memory = alloc_floats(m->num_params);
        m->grads_acts_memory = alloc_floats(m->grads_acts_capacity);
        ok = ok && (frozen || m->grads_memory) && m->grads_acts_memory;
    }
    m->layout = iq_xcalloc(1, a->layout_size);
    if (!ok) {
        double gb = (double)iq_model_arena_bytes(m) / 1e9;
        iq_model_free(m);
        return iq_fail(IQ_EINTERNAL, "out of memory: the model and its activations need %.2f GB", gb);
    }
    m->cur_B = m->cur_T = -1;
    layout(m, max_batch, max_seq); /* the parameter views are valid from here on (KV-cache decoding uses them) */
    *out = m;
    return IQ_OK;
}

iq_status iq_model_create(const iq_model_config *cfg, iq_model_mode mode, int max_batch, int max_seq, iq_model **out) {
    return model_new(cfg, mode, max_batch, max_seq, NULL, out);
}

iq_status iq_model_create_view(iq_model *src, int max_batch, int max_seq, iq_model **out) {
    if (src->params_bf16) return iq_fail(IQ_EUSAGE, "a model with a bf16 base (--base-dtype bf16) has no inference view yet");
    return model_new(&src->cfg, IQ_MODEL_INFER, max_batch, max_seq, src->params_memory, out);
}

void iq_model_free(iq_model *m) {
    if (!m) return;
    free(m->tensors);
    if (!m->params_borrowed) free(m->params_memory);
    free(m->params_bf16);
    free(m->tensor_bf16);
    free(m->grads_memory);
    free(m->acts_memory);
    free(m->grads_acts_memory);
    free(m->layout);
    free(m);
}

size_t iq_model_arena_bytes(const iq_model *m) {
    size_t fp32 = m->num_params - m->num_bf16 + (m->grads_memory ? m->num_params : 0);
    return (fp32 + m->acts_capacity + m->grads_acts_capacity) * sizeof(float) + m->num_bf16 * sizeof(uint16_t);
}

size_t iq_model_act_floats(const iq_model *m) { return m->acts_capacity; }
size_t iq_model_grad_act_floats(const iq_model *m) { return m->grads_acts_capacity; }

// ----------------------------------------------------------------------------------------------------
// dispatch

const iq_model_config *iq_model_cfg(const iq_model *m) { return &m->cfg; }
iq_model_mode iq_model_get_mode(const iq_model *m) { return m->mode; }
bool iq_model_recomputes(const iq_model *m) { return m->recompute; }
int iq_model_max_batch(const iq_model *m) { return m->max_batch; }
int iq_model_max_seq(const iq_model *m) { return m->max_seq; }
size_t iq_model_num_params(const iq_model *m) { return m->num_params; }

float *iq_model_param_memory(iq_model *m, size_t *n) {
    *n = m->num_params - m->num_bf16;
    return m->params_memory;
}

uint16_t *iq_model_param_bf16(iq_model *m, size_t *n) {
    *n = m->num_bf16;
    return m->params_bf16;
}

bool iq_model_tensor_bf16(const iq_model *m, int i) { return m->tensor_bf16 && i >= 0 && i < m->n_tensors && m->tensor_bf16[i]; }
bool iq_model_frozen(const iq_model *m) { return m->frozen; }

/* Clears the gradients of the tensors with decay (matrices == true) or of the others. */
static void zero_tensor_grads(iq_model *m, bool matrices) {
    for (int i = 0; i < m->n_tensors; i++) {
        const iq_tensor_ref *t = &m->tensors[i];
        if (t->decay != matrices) continue;
        iq_zero(m->grads_memory + t->offset, t->numel);
    }
}

/* The weight matrices' gradients zeroed now if iq_model_zero_grad left them for a backward that has not run. */
static void settle_grads(iq_model *m) {
    if (!m->grads_unset) return;
    zero_tensor_grads(m, true);
    m->grads_unset = false;
}

float *iq_model_grad_memory(iq_model *m, size_t *n) {
    settle_grads(m);
    *n = m->grads_memory ? m->num_params : 0;
    return m->grads_memory;
}

int iq_model_tensor_refs(const iq_model *m, iq_tensor_ref *refs) {
    if (refs) memcpy(refs, m->tensors, (size_t)m->n_tensors * sizeof *refs);
    return m->n_tensors;
}

const float *iq_model_head(iq_model *m) {
    const float *h = m->lora ? iq_lora_head(m->lora) : NULL; /* --train-head: the adapters' copy */
    return h ? h : m->params_memory + m->head_offset;
}
float *iq_model_head_grad(iq_model *m) {
    if (m->lora) return m->mode == IQ_MODEL_TRAIN ? iq_lora_head_grad(m->lora) : NULL; /* frozen unless --train-head */
    return m->grads_memory ? m->grads_memory + m->head_offset : NULL;
}

void iq_model_init(iq_model *m, uint64_t seed) { m->arch->init(m, seed); }

void iq_model_forward(iq_model *m, const int32_t *ids, int B, int T) {
    layout(m, B, T);
    m->arch->forward(m, ids, B, T);
}

float *iq_model_lnf(iq_model *m) { return m->arch->lnf(m); }
float *iq_model_dlnf(iq_model *m) { return m->mode == IQ_MODEL_TRAIN ? m->arch->dlnf(m) : NULL; }

void iq_model_backward(iq_model *m, const int32_t *ids, int B, int T) {
    layout(m, B, T);
    m->arch->backward(m, ids, B, T);
    m->grads_unset = false;
}

void iq_model_zero_grad(iq_model *m) {
    if (m->lora) iq_lora_zero_grad(m->lora);
    if (!m->grads_memory) return;
    if (m->lora || m->params_bf16) { /* adapters attached, or a bf16 base: the arena as a whole */
        iq_zero(m->grads_memory, m->num_params);
        return;
    }
    /* The weight matrices' gradients (most of the arena) are left for the next backward to write: clearing
     * them here and adding to zeros there moves them through memory twice more (GPT-2 124M: 340 MB each way). */
    zero_tensor_grads(m, false);
    m->grads_unset = true;
}

iq_status iq_model_set_lora(iq_model *m, struct iq_lora *lora) {
    if (lora && iq_lora_max_rows(lora) < m->max_batch * m->max_seq)
        return iq_fail(IQ_EUSAGE, "LoRA: the adapters hold %d rows, the model steps up to %d", iq_lora_max_rows(lora),
                       m->max_batch * m->max_seq);
    m->lora = lora;
    return IQ_OK;
}

struct iq_lora *iq_model_get_lora(const iq_model *m) { return m->lora; }

float *iq_model_trainable(iq_model *m, float **grads, size_t *n) {
    if (m->lora) {
        *grads = iq_lora_grads(m->lora, n);
        return iq_lora_params(m->lora, n);
    }
    settle_grads(m);
    *grads = m->grads_memory;
    *n = m->frozen ? 0 : m->num_params; /* a frozen base without adapters trains nothing */
    return m->frozen ? NULL : m->params_memory;
}

int iq_model_trainable_refs(iq_model *m, iq_tensor_ref *refs) {
    return m->lora ? iq_lora_tensor_refs(m->lora, refs) : m->frozen ? 0 : iq_model_tensor_refs(m, refs);
}
