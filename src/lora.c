/* lora.c — LoRA adapters on the Llama families' linear layers (lora.h): options, the adapters' arenas and
 * PEFT-named tensor table, PEFT's initialisation, forward and backward of the low-rank path, and saving in
 * PEFT's layout (adapter_config.json, adapter_model.safetensors). */
#include "iqtrain/lora.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/matmul.h"
#include "iqtrain/rng.h"
#include "iqtrain/safetensors.h"

static const char *const TARGET_NAMES[IQ_LORA_NUM_TARGETS] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                              "up_proj", "down_proj", "c_attn", "c_proj", "c_fc",
                                                              "c_proj"};
static const char *const TARGET_BLOCK[IQ_LORA_NUM_TARGETS] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp",
                                                              "mlp",       "mlp",       "attn",   "attn",   "mlp",
                                                              "mlp"};

struct iq_lora {
    iq_lora_opts o;
    iq_model_config cfg;
    int n_layer, max_rows;
    int in[IQ_LORA_NUM_TARGETS], out[IQ_LORA_NUM_TARGETS];
    size_t off_a[IQ_LORA_NUM_TARGETS], off_b[IQ_LORA_NUM_TARGETS]; /* layer 0's A and B in the arena */
    int xslot[IQ_LORA_NUM_TARGETS], n_used; /* a target's place among the targets in use (the xa stack) */
    bool gpt2;         /* GPT-2's Conv1D layers and names */
    size_t per_layer;  /* floats of one layer's adapters */
    size_t n_params;
    size_t head_off;   /* train_head: the head's copy (V, C) at the arena's end; 0 without */
    float *params, *grads;
    float *xa;         /* (n_layer, targets in use, max_rows, r) inp A^T of the last forward */
    float *tmp;        /* (max_rows, r) scale * dout B */
    uint64_t seed;     /* dropout masks: a hash of (seed, pass, layer, target, element) */
    uint64_t pass;     /* the current training pass's key, or IQ_LORA_NO_DROPOUT */
    float *xd;         /* dropout > 0: (max_rows, widest in) the dropped input, then (scale dout B) A before its mask */
    char base[4096];   /* base_model_name_or_path */
};

const char *iq_lora_target_name(iq_lora_target t) { return (unsigned)t < IQ_LORA_NUM_TARGETS ? TARGET_NAMES[t] : "?"; }
const char *iq_lora_target_block(iq_lora_target t) { return (unsigned)t < IQ_LORA_NUM_TARGETS ? TARGET_BLOCK[t] : "?"; }

bool iq_lora_name_matches(const char *name, size_t len, iq_lora_target t) {
    if ((unsigned)t >= IQ_LORA_NUM_TARGETS) return false;
    const char *m = TARGET_NAMES[t], *b = TARGET_BLOCK[t];
    if (strlen(m) == len && strncmp(name, m, len) == 0) return true;
    size_t nb = strlen(b);
    return len == nb + 1 + strlen(m) && strncmp(name, b, nb) == 0 && name[nb] == '.' && strncmp(name + nb + 1, m, len - nb - 1) == 0;
}

iq_status iq_lora_parse_targets(const char *list, unsigned *mask) {
    *mask = 0;
    const char *s = list;
    while (*s) {
        size_t n = strcspn(s, ",");
        unsigned found = 0;
        for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++)
            if (iq_lora_name_matches(s, n, t)) found |= 1u << t;
        if (!found)
            return iq_fail(IQ_EUSAGE, "--lora-targets: unknown module '%.*s' (known: q_proj, k_proj, v_proj, o_proj, "
                                      "gate_proj, up_proj, down_proj for the Llama families; c_attn, c_proj, c_fc for "
                                      "gpt2)", (int)n, s);
        if ((*mask & found) == found) return iq_fail(IQ_EUSAGE, "--lora-targets: '%.*s' given twice", (int)n, s);
        *mask |= found;
        s += n;
        if (*s == ',') s++;
    }
    if (!*mask) return iq_fail(IQ_EUSAGE, "--lora-targets: no module named");
    return IQ_OK;
}

static bool is_gpt2(const iq_model_config *cfg) { return strcmp(iq_model_arch_name(cfg), "gpt2") == 0; }
unsigned iq_lora_family_targets(const iq_model_config *cfg) { return is_gpt2(cfg) ? IQ_LORA_GPT2_TARGETS : IQ_LORA_LLAMA_TARGETS; }
unsigned iq_lora_family_default(const iq_model_config *cfg) {
    return is_gpt2(cfg) ? 1u << IQ_LORA_C_ATTN : (1u << IQ_LORA_Q) | (1u << IQ_LORA_V);
}

iq_status iq_lora_check_opts(const iq_lora_opts *o) {
    if (o->rank < 0) return iq_fail(IQ_EUSAGE, "--lora-rank must be >= 0, got %d", o->rank);
    if (o->rank == 0) return IQ_OK;
    if (!(o->alpha > 0.0f)) return iq_fail(IQ_EUSAGE, "--lora-alpha must be > 0, got %g", (double)o->alpha);
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f)) return iq_fail(IQ_EUSAGE, "--lora-dropout must be in [0, 1), got %g", (double)o->dropout);
    if (o->targets >> IQ_LORA_NUM_TARGETS) return iq_fail(IQ_EUSAGE, "--lora-targets: no valid module");
    return IQ_OK;
}

/* The widest input of the targets (the dropout scratch's row). */
static size_t widest_in(const iq_lora *lo) {
    size_t w = 0;
    for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++)
        if ((lo->o.targets & (1u << t)) && (size_t)lo->in[t] > w) w = (size_t)lo->in[t];
    return w;
}

static void target_dims(const iq_model_config *c, int in[], int out[]) {
    int C = c->n_embd, QD = c->n_head * c->head_dim, KD = c->n_kv_head * c->head_dim, I = c->n_inner;
    if (is_gpt2(c)) QD = KD = C, I = 4 * C; /* (GPT-2's targets have their own entries; these keep the table whole) */
    int ins[IQ_LORA_NUM_TARGETS] = {C, C, C, QD, C, C, I, C, C, C, 4 * C};
    int outs[IQ_LORA_NUM_TARGETS] = {QD, KD, KD, C, I, I, C, 3 * C, C, 4 * C, C};
    memcpy(in, ins, sizeof ins);
    memcpy(out, outs, sizeof outs);
}

/* The targets' names for a message: "c_attn, c_proj, c_fc" for gpt2. */
static const char *family_names(const iq_model_config *c) {
    return is_gpt2(c) ? "c_attn, c_proj, c_fc" : "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj";
}

/* A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5): gain sqrt(2/6), bound gain sqrt(3/in)) */
static void init_adapters(iq_lora *lo, uint64_t seed) {
    iq_rng rng;
    iq_rng_seed(&rng, seed, 0x10a);
    for (int l = 0; l < lo->n_layer; l++)
        for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++) {
            float *A = iq_lora_A(lo, t, l);
            if (!A) continue;
            float bound = 1.0f / sqrtf((float)lo->in[t]);
            for (size_t i = 0; i < (size_t)lo->o.rank * lo->in[t]; i++) A[i] = bound * (2.0f * iq_rng_uniform(&rng) - 1.0f);
        }
}

iq_status iq_lora_create(const iq_model_config *cfg, const iq_lora_opts *o, int max_rows, uint64_t seed, iq_lora **out) {
    *out = NULL;
    iq_status st = iq_lora_check_opts(o);
    if (st) return st;
    if (o->rank == 0) return iq_fail(IQ_EUSAGE, "LoRA adapters need --lora-rank > 0");
    unsigned targets = o->targets ? o->targets : iq_lora_family_default(cfg), bad = targets & ~iq_lora_family_targets(cfg);
    if (bad) {
        int t = 0;
        while (!(bad & (1u << t))) t++;
        return iq_fail(IQ_EUSAGE, "--lora-targets: %s is not a module of the %s family (its modules: %s)", TARGET_NAMES[t],
                       iq_model_arch_name(cfg), family_names(cfg));
    }
    if (o->train_head && !cfg->untied)
        return iq_fail(IQ_EUSAGE, "--train-head: this %s model's LM head is tied to its input embedding: not supported "
                                  "yet (untied heads only: tie_word_embeddings false)", iq_model_arch_name(cfg));
    iq_lora *lo = iq_xcalloc(1, sizeof *lo);
    lo->o = *o, lo->cfg = *cfg, lo->n_layer = cfg->n_layer, lo->max_rows = max_rows, lo->gpt2 = is_gpt2(cfg);
    lo->o.targets = targets;
    target_dims(cfg, lo->in, lo->out);
    size_t r = (size_t)o->rank;
    for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++) {
        if (!(targets & (1u << t))) continue;
        lo->xslot[t] = lo->n_used++;
        lo->off_a[t] = lo->per_layer, lo->per_layer += r * lo->in[t];
        lo->off_b[t] = lo->per_layer, lo->per_layer += (size_t)lo->out[t] * r;
    }
    lo->n_params = lo->per_layer * lo->n_layer;
    if (o->train_head) lo->head_off = lo->n_params, lo->n_params += (size_t)cfg->vocab * cfg->n_embd;
    lo->params = iq_arena_xcalloc(lo->n_params, sizeof(float));
    lo->grads = iq_arena_xcalloc(lo->n_params, sizeof(float));
    lo->xa = iq_arena_xcalloc((size_t)lo->n_layer * lo->n_used * max_rows * r, sizeof(float));
    lo->tmp = iq_arena_xcalloc((size_t)max_rows * r, sizeof(float));
    lo->seed = seed, lo->pass = IQ_LORA_NO_DROPOUT;
    if (o->dropout > 0.0f) lo->xd = iq_arena_xcalloc((size_t)max_rows * widest_in(lo), sizeof(float));
    init_adapters(lo, seed);
    *out = lo;
    return IQ_OK;
}

void iq_lora_free(iq_lora *lo) {
    if (!lo) return;
    free(lo->params), free(lo->grads), free(lo->xa), free(lo->tmp), free(lo->xd), free(lo);
}

const iq_lora_opts *iq_lora_get_opts(const iq_lora *lo) { return &lo->o; }
float iq_lora_scale(const iq_lora *lo) { return lo->o.alpha / (float)lo->o.rank; }
int iq_lora_max_rows(const iq_lora *lo) { return lo->max_rows; }
size_t iq_lora_bytes(const iq_lora *lo) {
    size_t r = (size_t)lo->o.rank, rows = (size_t)lo->max_rows, xd = lo->xd ? rows * widest_in(lo) : 0;
    return (2 * lo->n_params + (size_t)lo->n_layer * lo->n_used * rows * r + rows * r + xd) * sizeof(float);
}
bool iq_lora_has(const iq_lora *lo, iq_lora_target t) {
    return lo && (unsigned)t < IQ_LORA_NUM_TARGETS && (lo->o.targets & (1u << t));
}

float *iq_lora_params(iq_lora *lo, size_t *n) { return *n = lo->n_params, lo->params; }
float *iq_lora_grads(iq_lora *lo, size_t *n) { return *n = lo->n_params, lo->grads; }
void iq_lora_zero_grad(iq_lora *lo) { memset(lo->grads, 0, lo->n_params * sizeof(float)); }

float *iq_lora_head(iq_lora *lo) { return lo->o.train_head ? lo->params + lo->head_off : NULL; }
float *iq_lora_head_grad(iq_lora *lo) { return lo->o.train_head ? lo->grads + lo->head_off : NULL; }

static float *slot(const iq_lora *lo, float *base, const size_t *off, iq_lora_target t, int l) {
    return iq_lora_has(lo, t) && l >= 0 && l < lo->n_layer ? base + lo->per_layer * (size_t)l + off[t] : NULL;
}
float *iq_lora_A(iq_lora *lo, iq_lora_target t, int l) { return slot(lo, lo->params, lo->off_a, t, l); }
float *iq_lora_B(iq_lora *lo, iq_lora_target t, int l) { return slot(lo, lo->params, lo->off_b, t, l); }
float *iq_lora_dA(iq_lora *lo, iq_lora_target t, int l) { return slot(lo, lo->grads, lo->off_a, t, l); }
float *iq_lora_dB(iq_lora *lo, iq_lora_target t, int l) { return slot(lo, lo->grads, lo->off_b, t, l); }

static float *xa_of(const iq_lora *lo, iq_lora_target t, int l) {
    return lo->xa + (((size_t)l * lo->n_used + lo->xslot[t]) * lo->max_rows) * (size_t)lo->o.rank;
}

static void ref_name(const iq_lora *lo, char *buf, size_t cap, int l, iq_lora_target t, char ab) {
    snprintf(buf, cap, "%s.%d.%s.%s.lora_%c.weight", lo->gpt2 ? "transformer.h" : "model.layers", l, TARGET_BLOCK[t],
             TARGET_NAMES[t], ab);
}

int iq_lora_tensor_refs(const iq_lora *lo, iq_tensor_ref *refs) {
    int n = 0;
    int64_t r = lo->o.rank;
    for (int l = 0; l < lo->n_layer; l++)
        for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++) {
            if (!iq_lora_has(lo, t)) continue;
            if (refs) {
                iq_tensor_ref *a = &refs[n], *b = &refs[n + 1];
                ref_name(lo, a->name, sizeof a->name, l, t, 'A');
                ref_name(lo, b->name, sizeof b->name, l, t, 'B');
                a->ndim = b->ndim = 2;
                a->shape[0] = r, a->shape[1] = lo->in[t], b->shape[0] = lo->out[t], b->shape[1] = r;
                a->offset = lo->per_layer * (size_t)l + lo->off_a[t], a->numel = (size_t)(r * lo->in[t]);
                b->offset = lo->per_layer * (size_t)l + lo->off_b[t], b->numel = (size_t)(r * lo->out[t]);
                a->decay = b->decay = true; /* PEFT's adapters are ordinary parameters to torch's AdamW */
            }
            n += 2;
        }
    if (lo->o.train_head) { /* last: the pairs above stay pairs */
        if (refs) {
            iq_tensor_ref *h = &refs[n];
            snprintf(h->name, sizeof h->name, "lm_head.weight");
            h->ndim = 2, h->shape[0] = lo->cfg.vocab, h->shape[1] = lo->cfg.n_embd;
            h->offset = lo->head_off, h->numel = (size_t)lo->cfg.vocab * lo->cfg.n_embd;
            h->decay = false; /* as the head in a full fine-tune */
        }
        n++;
    }
    return n;
}

// ----------------------------------------------------------------------------------------------------
// dropout: PEFT's lora_dropout on the input of the low-rank path only, y += s B A dropout(x)

void iq_lora_set_pass(iq_lora *lo, uint64_t pass) {
    if (lo) lo->pass = pass;
}

static bool dropping(const iq_lora *lo) { return lo->xd && lo->pass != IQ_LORA_NO_DROPOUT; }

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t iq_lora_dropout_key(uint64_t seed, uint64_t pass, int layer, iq_lora_target t) {
    uint64_t in_family = t >= IQ_LORA_C_ATTN ? (uint64_t)(t - IQ_LORA_C_ATTN) : (uint64_t)t;
    return splitmix64(splitmix64(splitmix64(seed) ^ pass) ^ ((uint64_t)layer * 7 + in_family));
}

/* out (N, in) = mask ⊙ x / (1 - p): element i kept when splitmix64(key ^ i)'s top 24 bits / 2^24 >= p. The same
 * mask for the same pass, layer and target (backward and recomputation regenerate it). */
static void apply_mask(const iq_lora *lo, iq_lora_target t, int l, float *out, const float *x, size_t n) {
    uint64_t key = iq_lora_dropout_key(lo->seed, lo->pass, l, t);
    float p = lo->o.dropout, keep = 1.0f / (1.0f - p);
    uint32_t cut = (uint32_t)ceil((double)p * 16777216.0);
#pragma omp parallel for if (n >= 4096)
    for (size_t i = 0; i < n; i++) out[i] = (uint32_t)(splitmix64(key ^ i) >> 40) >= cut ? x[i] * keep : 0.0f;
}

/* The low-rank products run in fp32 (iq_sgemm_fp32_ld): r is small and the adapters change every step. */
void iq_lora_forward(iq_lora *lo, iq_lora_target t, int l, float *out, const float *inp, int N) {
    if (!iq_lora_has(lo, t)) return;
    int r = lo->o.rank, in = lo->in[t], oc = lo->out[t];
    float *xa = xa_of(lo, t, l);
    if (dropping(lo)) {
        apply_mask(lo, t, l, lo->xd, inp, (size_t)N * in);
        inp = lo->xd;
    }
    iq_sgemm_fp32_ld(false, true, N, r, in, 1.0f, inp, in, iq_lora_A(lo, t, l), in, 0.0f, xa, r);
    iq_sgemm_fp32_ld(false, true, N, oc, r, iq_lora_scale(lo), xa, r, iq_lora_B(lo, t, l), r, 1.0f, out, oc);
}

void iq_lora_backward(iq_lora *lo, iq_lora_target t, int l, float *dinp, const float *dout, const float *inp, int N) {
    if (!iq_lora_has(lo, t)) return;
    int r = lo->o.rank, in = lo->in[t], oc = lo->out[t];
    float s = iq_lora_scale(lo), *xa = xa_of(lo, t, l), *g = lo->tmp;
    /* dB (oc, r) += s dout^T xa */
    iq_sgemm_fp32_ld(true, false, oc, r, N, s, dout, oc, xa, r, 1.0f, iq_lora_dB(lo, t, l), r);
    /* g (N, r) = s dout B */
    iq_sgemm_fp32_ld(false, false, N, r, oc, s, dout, oc, iq_lora_B(lo, t, l), r, 0.0f, g, r);
    if (!dropping(lo)) {
        /* dA (r, in) += g^T inp; dinp (N, in) += g A */
        iq_sgemm_fp32_ld(true, false, r, in, N, 1.0f, g, r, inp, in, 1.0f, iq_lora_dA(lo, t, l), in);
        iq_sgemm_fp32_ld(false, false, N, in, r, 1.0f, g, r, iq_lora_A(lo, t, l), in, 1.0f, dinp, in);
        return;
    }
    /* dropout: dA += g^T dropout(inp); dinp += dropout'(g A), the same mask */
    size_t n = (size_t)N * in;
    apply_mask(lo, t, l, lo->xd, inp, n);
    iq_sgemm_fp32_ld(true, false, r, in, N, 1.0f, g, r, lo->xd, in, 1.0f, iq_lora_dA(lo, t, l), in);
    iq_sgemm_fp32_ld(false, false, N, in, r, 1.0f, g, r, iq_lora_A(lo, t, l), in, 0.0f, lo->xd, in);
    apply_mask(lo, t, l, lo->xd, lo->xd, n);
#pragma omp parallel for if (n >= 4096)
    for (size_t i = 0; i < n; i++) dinp[i] += lo->xd[i];
}

void iq_lora_set_base(iq_lora *lo, const char *base_model) {
    snprintf(lo->base, sizeof lo->base, "%s", base_model ? base_model : "");
}
const char *iq_lora_base(const iq_lora *lo) { return lo->base; }

/* target_modules: PEFT's names; GPT-2's c_proj once for both its modules, or block.c_proj for one of them. */
static cJSON *target_modules(const iq_lora *lo) {
    cJSON *targets = cJSON_CreateArray();
    bool both = iq_lora_has(lo, IQ_LORA_ATTN_C_PROJ) && iq_lora_has(lo, IQ_LORA_MLP_C_PROJ);
    char name[64];
    for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++) {
        if (!iq_lora_has(lo, t) || (both && t == IQ_LORA_MLP_C_PROJ)) continue;
        bool one_c_proj = !both && (t == IQ_LORA_ATTN_C_PROJ || t == IQ_LORA_MLP_C_PROJ);
        snprintf(name, sizeof name, "%s%s%s", one_c_proj ? TARGET_BLOCK[t] : "", one_c_proj ? "." : "", TARGET_NAMES[t]);
        cJSON_AddItemToArray(targets, cJSON_CreateString(name));
    }
    return targets;
}

static cJSON *adapter_config(const iq_lora *lo, const char *base_model) {
    cJSON *j = cJSON_CreateObject(), *targets = target_modules(lo);
    cJSON_AddStringToObject(j, "base_model_name_or_path", base_model ? base_model : lo->base);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", lo->gpt2); /* PEFT sets it for Conv1D layers (GPT-2) */
    cJSON_AddBoolToObject(j, "inference_mode", true);
    cJSON_AddBoolToObject(j, "init_lora_weights", true);
    cJSON_AddNumberToObject(j, "lora_alpha", lo->o.alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", iq_short_float(lo->o.dropout)); /* 0.1, not 0.100000001 */
    if (lo->o.train_head) { /* PEFT's ModulesToSaveWrapper: saved as base_model.model.lm_head.weight */
        cJSON *ms = cJSON_CreateArray();
        cJSON_AddItemToArray(ms, cJSON_CreateString("lm_head"));
        cJSON_AddItemToObject(j, "modules_to_save", ms);
    } else {
        cJSON_AddNullToObject(j, "modules_to_save");
    }
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", lo->o.rank);
    cJSON_AddItemToObject(j, "target_modules", targets);
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(j, "use_dora", false);
    cJSON_AddBoolToObject(j, "use_rslora", false);
    return j;
}

iq_status iq_lora_save(const iq_lora *lo, const char *dir, const char *base_model) {
    iq_status st = iq_mkdirs(dir);
    if (st) return st;
    cJSON *j = adapter_config(lo, base_model);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char *path = iq_path_join(dir, "adapter_config.json");
    st = iq_write_file_atomic(path, text, strlen(text));
    free(text), free(path);
    if (st) return st;
    int n = iq_lora_tensor_refs(lo, NULL);
    iq_tensor_ref *refs = iq_xcalloc((size_t)n, sizeof *refs);
    iq_st_entry *e = iq_xcalloc((size_t)n, sizeof *e);
    char (*names)[96] = iq_xcalloc((size_t)n, sizeof *names);
    iq_lora_tensor_refs(lo, refs);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", IQ_LORA_PEFT_PREFIX, refs[i].name);
        e[i].name = names[i], e[i].dtype = IQ_DT_F32, e[i].ndim = 2;
        e[i].shape[0] = refs[i].shape[0], e[i].shape[1] = refs[i].shape[1];
        e[i].data = lo->params + refs[i].offset;
    }
    path = iq_path_join(dir, "adapter_model.safetensors");
    const char *meta[2] = {"format", "pt"};
    st = iq_st_write(path, e, n, meta, 1);
    if (st) iq_error_prefix("%s", path);
    free(path), free(e), free(refs), free(names);
    return st;
}
