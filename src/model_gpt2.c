/* model_gpt2.c — the GPT-2 family (DESIGN §2) behind the model interface (model_arch.h): pre-LayerNorm
 * blocks, learned positions, GELU (tanh), causal attention scaled by 1/sqrt(d_head), tied input/output
 * embedding. llm.c-style: the layers are in kernels.c; forward/backward only do pointer arithmetic and call
 * them in order.
 *
 * Sections: configuration · parameter table · activations · forward and backward · KV-cache decoding ·
 * init · the family. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/kernels.h"
#include "iqtrain/lora.h"
#include "iqtrain/matmul.h"
#include "iqtrain/rng.h"
#include "model_arch.h"

// ----------------------------------------------------------------------------------------------------
// configuration

static iq_status gpt2_preset(const char *name, iq_model_config *c) {
    int L, H, C, P;
    if (strcmp(name, "tiny") == 0) L = 2, H = 2, C = 64, P = 128;
    else if (strcmp(name, "small") == 0) L = 4, H = 4, C = 256, P = 256;
    else if (strcmp(name, "gpt2") == 0) L = 12, H = 12, C = 768, P = 1024;
    else return iq_fail(IQ_EUSAGE, "unknown preset '%s' (tiny, small, gpt2)", name);
    c->n_layer = L, c->n_head = H, c->n_embd = C, c->ctx = P, c->ln_eps = 1e-5f;
    return IQ_OK;
}

static iq_status gpt2_check(const iq_model_config *c) {
    if (c->n_layer < 1 || c->n_layer > 256) return iq_fail(IQ_EUSAGE, "n_layer must be in 1..256, got %d", c->n_layer);
    if (c->n_head < 1 || c->n_embd < 1 || c->n_embd % c->n_head != 0)
        return iq_fail(IQ_EUSAGE, "n_embd (%d) must be a positive multiple of n_head (%d)", c->n_embd, c->n_head);
    if (c->n_embd > 16384) return iq_fail(IQ_EUSAGE, "n_embd %d is too large", c->n_embd);
    if (c->ctx < 2 || c->ctx > 65536) return iq_fail(IQ_EUSAGE, "ctx must be in 2..65536, got %d", c->ctx);
    if (c->vocab < 2 || c->vocab > 4000000) return iq_fail(IQ_EUSAGE, "vocabulary size %d out of range", c->vocab);
    if (!(c->ln_eps > 0.0f) || c->ln_eps > 1.0f) return iq_fail(IQ_EUSAGE, "layer_norm_epsilon must be in (0, 1]");
    return IQ_OK;
}

static bool get_int(const cJSON *o, const char *k, int *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || fabs(x->valuedouble) > 1e9) return false;
    *v = (int)x->valuedouble;
    return true;
}

/* GPT-2 variants iqtrain does not implement, refused by name. */
static iq_status gpt2_refuse_variants(const cJSON *j, const char *path, const iq_model_config *c) {
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "n_inner")) && !cJSON_IsNull(x)) {
        int ni;
        if (!get_int(j, "n_inner", &ni) || (long long)ni != 4LL * c->n_embd) /* (n_embd is only range-checked later) */
            return iq_fail(IQ_EDATA, "%s: unsupported n_inner (only 4 * n_embd)", path);
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "scale_attn_weights")) && cJSON_IsFalse(x))
        return iq_fail(IQ_EDATA, "%s: unsupported scale_attn_weights: false", path);
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "scale_attn_by_inverse_layer_idx")) && cJSON_IsTrue(x))
        return iq_fail(IQ_EDATA, "%s: unsupported scale_attn_by_inverse_layer_idx: true", path);
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "reorder_and_upcast_attn")) && cJSON_IsTrue(x))
        return iq_fail(IQ_EDATA, "%s: unsupported reorder_and_upcast_attn: true", path);
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "activation_function")) &&
        !(cJSON_IsString(x) && (strcmp(x->valuestring, "gelu_new") == 0 || strcmp(x->valuestring, "gelu_pytorch_tanh") == 0)))
        return iq_fail(IQ_EDATA, "%s: unsupported activation_function %s (gelu_new or gelu_pytorch_tanh)", path,
                       cJSON_IsString(x) ? x->valuestring : "(not a string)");
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings")) && cJSON_IsFalse(x))
        return iq_fail(IQ_EDATA, "%s: unsupported tie_word_embeddings: false (an untied head)", path);
    return IQ_OK;
}

static iq_status gpt2_config_from_json(const cJSON *j, const char *path, iq_model_config *c) {
    c->ln_eps = 1e-5f;
    const cJSON *x;
    if (!get_int(j, "n_layer", &c->n_layer) || !get_int(j, "n_head", &c->n_head) || !get_int(j, "n_embd", &c->n_embd) ||
        !get_int(j, "vocab_size", &c->vocab))
        return iq_fail(IQ_EDATA, "%s: n_layer, n_head, n_embd and vocab_size must be integers", path);
    if (!get_int(j, "n_positions", &c->ctx) && !get_int(j, "n_ctx", &c->ctx))
        return iq_fail(IQ_EDATA, "%s: no n_positions (or n_ctx)", path);
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon"))) {
        if (!cJSON_IsNumber(x)) return iq_fail(IQ_EDATA, "%s: layer_norm_epsilon is not a number", path);
        c->ln_eps = (float)x->valuedouble;
    }
    return gpt2_refuse_variants(j, path, c);
}

static void gpt2_config_to_json(const iq_model_config *c, cJSON *j) {
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(j, "n_positions", c->ctx);
    cJSON_AddNumberToObject(j, "n_ctx", c->ctx);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNullToObject(j, "n_inner");
    cJSON_AddStringToObject(j, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(j, "resid_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "embd_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "attn_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "layer_norm_epsilon", (double)c->ln_eps);
    cJSON_AddNumberToObject(j, "initializer_range", 0.02);
    cJSON_AddBoolToObject(j, "scale_attn_weights", 1);
    cJSON_AddBoolToObject(j, "scale_attn_by_inverse_layer_idx", 0);
    cJSON_AddBoolToObject(j, "reorder_and_upcast_attn", 0);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", 1);
}

// ----------------------------------------------------------------------------------------------------
// parameter table: every tensor stacked over layers in the arena; the HF names address per-layer slices

#define NUM_PARAMS 16

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
} params;

static void param_sizes(const iq_model_config *c, size_t s[NUM_PARAMS]) {
    size_t V = (size_t)c->vocab, C = (size_t)c->n_embd, L = (size_t)c->n_layer, P = (size_t)c->ctx;
    size_t v[NUM_PARAMS] = {V * C, P * C, L * C, L * C, L * C * 3 * C, L * 3 * C, L * C * C, L * C,
                            L * C, L * C, L * C * 4 * C, L * 4 * C, L * 4 * C * C, L * C, C, C};
    memcpy(s, v, sizeof v);
}

static void point_params(params *p, float *mem, const iq_model_config *c) {
    size_t s[NUM_PARAMS];
    param_sizes(c, s);
    float **ptrs[NUM_PARAMS] = {&p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb,
                                &p->ln2w, &p->ln2b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb};
    for (int i = 0; i < NUM_PARAMS; i++) {
        *ptrs[i] = mem;
        mem += s[i];
    }
}

/* The per-layer tensors in HF order: suffix, index into params, shape in units of C (rows, cols; 0 = 1-D),
 * decay. */
static const struct {
    const char *suffix;
    int tensor, rows, cols;
    bool decay;
} LAYER_TENSORS[12] = {
    {"ln_1.weight", 2, 1, 0, false},      {"ln_1.bias", 3, 1, 0, false},
    {"attn.c_attn.weight", 4, 1, 3, true}, {"attn.c_attn.bias", 5, 3, 0, false},
    {"attn.c_proj.weight", 6, 1, 1, true}, {"attn.c_proj.bias", 7, 1, 0, false},
    {"ln_2.weight", 8, 1, 0, false},      {"ln_2.bias", 9, 1, 0, false},
    {"mlp.c_fc.weight", 10, 1, 4, true},  {"mlp.c_fc.bias", 11, 4, 0, false},
    {"mlp.c_proj.weight", 12, 4, 1, true}, {"mlp.c_proj.bias", 13, 1, 0, false},
};

static void set_ref(iq_tensor_ref *r, const char *name, int ndim, int64_t s0, int64_t s1, size_t off, bool decay) {
    snprintf(r->name, sizeof r->name, "%s", name);
    r->ndim = ndim;
    r->shape[0] = s0;
    r->shape[1] = ndim == 2 ? s1 : 0;
    r->offset = off;
    r->numel = (size_t)s0 * (size_t)(ndim == 2 ? s1 : 1);
    r->decay = decay;
}

static int gpt2_tensors(const iq_model_config *c, iq_tensor_ref *refs) {
    int n = 2 + 12 * c->n_layer + 2;
    if (!refs) return n;
    size_t s[NUM_PARAMS], base[NUM_PARAMS], off = 0;
    param_sizes(c, s);
    for (int i = 0; i < NUM_PARAMS; i++) base[i] = off, off += s[i];
    int64_t V = c->vocab, C = c->n_embd, P = c->ctx;
    int k = 0;
    set_ref(&refs[k++], "wte.weight", 2, V, C, base[0], false);
    set_ref(&refs[k++], "wpe.weight", 2, P, C, base[1], false);
    char nm[64];
    for (int64_t l = 0; l < c->n_layer; l++)
        for (int t = 0; t < 12; t++) {
            int64_t rows = LAYER_TENSORS[t].rows * C, cols = LAYER_TENSORS[t].cols * C;
            int ndim = LAYER_TENSORS[t].cols ? 2 : 1;
            size_t per = (size_t)rows * (size_t)(ndim == 2 ? cols : 1);
            snprintf(nm, sizeof nm, "h.%d.%s", (int)l, LAYER_TENSORS[t].suffix);
            set_ref(&refs[k++], nm, ndim, rows, cols, base[LAYER_TENSORS[t].tensor] + (size_t)l * per, LAYER_TENSORS[t].decay);
        }
    set_ref(&refs[k++], "ln_f.weight", 1, C, 0, base[14], false);
    set_ref(&refs[k++], "ln_f.bias", 1, C, 0, base[15], false);
    return n;
}

/* HF GPT-2 folders store the causal mask buffers of old transformers versions; they are no parameters. */
static bool gpt2_hf_buffer(const char *name) {
    size_t n = strlen(name);
    return (n >= 10 && strcmp(name + n - 10, ".attn.bias") == 0) || (n >= 17 && strcmp(name + n - 17, ".attn.masked_bias") == 0);
}

static size_t gpt2_head_offset(const iq_model_config *c) {
    (void)c;
    return 0; /* tied: the head is wte */
}

// ----------------------------------------------------------------------------------------------------
// activations: (L, ...) stacks in training mode; one layer's worth, reused by every layer, in inference and for
// the activation gradients (the backward pass needs one layer's at a time)

#define NUM_ACT 19
typedef struct {
    float *encoded;   /* (B,T,C) */
    float *ln1;       /* (L,B,T,C) */
    float *ln1_mean;  /* (L,B,T) */
    float *ln1_rstd;  /* (L,B,T) */
    float *qkv;       /* (L,B,T,3C) */
    float *atty;      /* (L,B,T,C) */
    float *att;       /* (L,B,H,T,T) */
    float *attproj;   /* (L,B,T,C) */
    float *residual2; /* (L,B,T,C) */
    float *ln2;       /* (L,B,T,C) */
    float *ln2_mean;  /* (L,B,T) */
    float *ln2_rstd;  /* (L,B,T) */
    float *fch;       /* (L,B,T,4C) */
    float *fch_gelu;  /* (L,B,T,4C) */
    float *fcproj;    /* (L,B,T,C) */
    float *residual3; /* (L,B,T,C) */
    float *lnf;       /* (B,T,C) */
    float *lnf_mean;  /* (B,T) */
    float *lnf_rstd;  /* (B,T) */
} acts;

typedef struct {
    params p, g; /* g: NULL pointers in inference mode */
    acts a, ga;  /* ga: NULL pointers in inference mode */
} gpt2_layout;

static size_t act_sizes(const iq_model_config *c, int B, int T, bool train, size_t s[NUM_ACT]) {
    size_t L = train ? (size_t)c->n_layer : 1, C = (size_t)c->n_embd, H = (size_t)c->n_head, BT = (size_t)B * T;
    size_t v[NUM_ACT] = {BT * C,     L * BT * C, L * BT,         L * BT,     L * BT * 3 * C, L * BT * C, L * B * H * T * T,
                         L * BT * C, L * BT * C, L * BT * C,     L * BT,     L * BT,         L * BT * 4 * C,
                         L * BT * 4 * C, L * BT * C, L * BT * C, BT * C, BT, BT};
    size_t total = 0;
    for (int i = 0; i < NUM_ACT; i++) {
        s[i] = iq_line_floats(v[i]); /* every entry starts on a cache line */
        total += s[i];
    }
    return total;
}

static size_t gpt2_act_floats(const iq_model_config *c, int B, int T, bool train) {
    size_t s[NUM_ACT];
    return act_sizes(c, B, T, train, s);
}

static size_t gpt2_grad_act_floats(const iq_model_config *c, int B, int T) {
    size_t s[NUM_ACT];
    return act_sizes(c, B, T, false, s);
}

static void point_acts(acts *a, float *mem, const size_t s[NUM_ACT]) {
    float **ptrs[NUM_ACT] = {&a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->att,
                             &a->attproj, &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch,
                             &a->fch_gelu, &a->fcproj, &a->residual3, &a->lnf, &a->lnf_mean, &a->lnf_rstd};
    for (int i = 0; i < NUM_ACT; i++) {
        *ptrs[i] = mem;
        mem += s[i];
    }
}

static void gpt2_layout_fn(iq_model *m, int B, int T) {
    gpt2_layout *y = m->layout;
    bool train = m->mode == IQ_MODEL_TRAIN;
    point_params(&y->p, m->params_memory, &m->cfg);
    if (train) point_params(&y->g, m->grads_memory, &m->cfg);
    size_t s[NUM_ACT];
    act_sizes(&m->cfg, B, T, train, s);
    point_acts(&y->a, m->acts_memory, s);
    if (!train) return;
    act_sizes(&m->cfg, B, T, false, s);
    point_acts(&y->ga, m->grads_acts_memory, s);
}

static float *gpt2_lnf(iq_model *m) { return ((gpt2_layout *)m->layout)->a.lnf; }
static float *gpt2_dlnf(iq_model *m) { return ((gpt2_layout *)m->layout)->ga.lnf; }

// ----------------------------------------------------------------------------------------------------
// forward and backward

static void gpt2_forward(iq_model *m, const int32_t *ids, int B, int T) {
    const iq_model_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, H = c->n_head, N = B * T;
    gpt2_layout *y = m->layout;
    const params *p = &y->p;
    acts *a = &y->a;
    size_t stride = m->mode == IQ_MODEL_TRAIN ? 1 : 0; /* activations stacked per layer, or one layer reused */
    iq_encoder_forward(a->encoded, ids, p->wte, p->wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        size_t al = stride * (size_t)l, nc = al * N * C;
        const float *res = l == 0 ? a->encoded : a->residual3 + stride * (size_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + nc, *ln1_mean = a->ln1_mean + al * N, *ln1_rstd = a->ln1_rstd + al * N;
        float *qkv = a->qkv + nc * 3, *atty = a->atty + nc, *att = a->att + al * B * H * T * T;
        float *attproj = a->attproj + nc, *res2 = a->residual2 + nc;
        float *ln2 = a->ln2 + nc, *ln2_mean = a->ln2_mean + al * N, *ln2_rstd = a->ln2_rstd + al * N;
        float *fch = a->fch + nc * 4, *fch_gelu = a->fch_gelu + nc * 4, *fcproj = a->fcproj + nc, *res3 = a->residual3 + nc;
        iq_layernorm_forward(ln1, ln1_mean, ln1_rstd, res, p->ln1w + l * C, p->ln1b + l * C, N, C, c->ln_eps);
        iq_matmul_forward(qkv, ln1, p->qkvw + (size_t)l * C * 3 * C, p->qkvb + l * 3 * C, N, C, 3 * C);
        iq_lora_forward(m->lora, IQ_LORA_C_ATTN, l, qkv, ln1, N); /* adapters (lora.h): no-ops when not a target */
        iq_attention_forward(atty, att, qkv, B, T, C, H);
        iq_matmul_forward(attproj, atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, N, C, C);
        iq_lora_forward(m->lora, IQ_LORA_ATTN_C_PROJ, l, attproj, atty, N);
        iq_residual_forward(res2, res, attproj, (size_t)N * C);
        iq_layernorm_forward(ln2, ln2_mean, ln2_rstd, res2, p->ln2w + l * C, p->ln2b + l * C, N, C, c->ln_eps);
        iq_matmul_forward(fch, ln2, p->fcw + (size_t)l * C * 4 * C, p->fcb + l * 4 * C, N, C, 4 * C);
        iq_lora_forward(m->lora, IQ_LORA_C_FC, l, fch, ln2, N);
        iq_gelu_forward(fch_gelu, fch, (size_t)N * 4 * C);
        iq_matmul_forward(fcproj, fch_gelu, p->fcprojw + (size_t)l * 4 * C * C, p->fcprojb + l * C, N, 4 * C, C);
        iq_lora_forward(m->lora, IQ_LORA_MLP_C_PROJ, l, fcproj, fch_gelu, N);
        iq_residual_forward(res3, res2, fcproj, (size_t)N * C);
    }
    const float *last = a->residual3 + stride * (size_t)(L - 1) * N * C;
    iq_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb, N, C, c->ln_eps);
}

/* g's slice at off, or NULL for a frozen base's (NULL) gradients: the kernels then skip the parameter gradients */
static float *gat(float *g, size_t off) { return g ? g + off : NULL; }

/* One layer's backward: from dres3 (the gradient of its output) into dres_in (its input's), through the one layer's
 * worth of activation gradients in ga; g's members NULL for a frozen base (adapters attached, or no gradient arena). */
static void layer_backward(iq_model *m, const params *g, int l, int B, int T, const float *dres3, float *dres_in) {
    const iq_model_config *c = &m->cfg;
    int C = c->n_embd, H = c->n_head, N = B * T;
    gpt2_layout *y = m->layout;
    const params *p = &y->p;
    const acts *a = &y->a, *ga = &y->ga;
    const float *res = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
    size_t nc = (size_t)l * N * C; /* this layer's slice of the stacked activations */
    float wb = m->grads_unset ? 0.0f : 1.0f; /* the weight matrices' gradients: written, or added to */
    /* residual3 = residual2 + fcproj */
    iq_residual_backward(ga->residual2, ga->fcproj, dres3, (size_t)N * C);
    iq_matmul_backward(ga->fch_gelu, gat(g->fcprojw, (size_t)l * 4 * C * C), gat(g->fcprojb, (size_t)l * C), ga->fcproj,
                       a->fch_gelu + nc * 4, p->fcprojw + (size_t)l * 4 * C * C, N, 4 * C, C, wb);
    iq_lora_backward(m->lora, IQ_LORA_MLP_C_PROJ, l, ga->fch_gelu, ga->fcproj, a->fch_gelu + nc * 4, N);
    iq_gelu_backward(ga->fch, a->fch + nc * 4, ga->fch_gelu, (size_t)N * 4 * C);
    iq_matmul_backward(ga->ln2, gat(g->fcw, (size_t)l * C * 4 * C), gat(g->fcb, (size_t)l * 4 * C), ga->fch, a->ln2 + nc,
                       p->fcw + (size_t)l * C * 4 * C, N, C, 4 * C, wb);
    iq_lora_backward(m->lora, IQ_LORA_C_FC, l, ga->ln2, ga->fch, a->ln2 + nc, N);
    iq_layernorm_backward(ga->residual2, gat(g->ln2w, (size_t)l * C), gat(g->ln2b, (size_t)l * C), ga->ln2,
                          a->residual2 + nc, p->ln2w + l * C, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, N, C);
    /* residual2 = res + attproj */
    iq_residual_backward(dres_in, ga->attproj, ga->residual2, (size_t)N * C);
    iq_matmul_backward(ga->atty, gat(g->attprojw, (size_t)l * C * C), gat(g->attprojb, (size_t)l * C), ga->attproj,
                       a->atty + nc, p->attprojw + (size_t)l * C * C, N, C, C, wb);
    iq_lora_backward(m->lora, IQ_LORA_ATTN_C_PROJ, l, ga->atty, ga->attproj, a->atty + nc, N);
    iq_attention_backward(ga->qkv, ga->att, ga->atty, a->qkv + nc * 3, a->att + (size_t)l * B * H * T * T, B, T, C, H);
    iq_matmul_backward(ga->ln1, gat(g->qkvw, (size_t)l * C * 3 * C), gat(g->qkvb, (size_t)l * 3 * C), ga->qkv, a->ln1 + nc,
                       p->qkvw + (size_t)l * C * 3 * C, N, C, 3 * C, wb);
    iq_lora_backward(m->lora, IQ_LORA_C_ATTN, l, ga->ln1, ga->qkv, a->ln1 + nc, N);
    iq_layernorm_backward(dres_in, gat(g->ln1w, (size_t)l * C), gat(g->ln1b, (size_t)l * C), ga->ln1, res,
                          p->ln1w + l * C, a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, N, C);
}

/* No gradients: the parameters of a frozen base. */
static const params FROZEN;

static void gpt2_backward(iq_model *m, const int32_t *ids, int B, int T) {
    const iq_model_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, N = B * T;
    size_t NC = (size_t)N * C;
    gpt2_layout *y = m->layout;
    const params *p = &y->p, *g = m->lora || !m->grads_memory ? &FROZEN : &y->g;
    const acts *a = &y->a, *ga = &y->ga;
    /* the residual stream's gradient alternates between two (N, C) entries, the layer output's and its input's;
     * every other activation gradient is one layer's, accumulated into by the kernels: cleared per layer */
    float *dout = ga->residual3, *din = ga->encoded;
    size_t layer = (size_t)(ga->residual3 - ga->ln1); /* ln1 .. fcproj */
    iq_zero(dout, NC);
    iq_layernorm_backward(dout, g->lnfw, g->lnfb, ga->lnf, a->residual3 + (size_t)(L - 1) * NC, p->lnfw, a->lnf_mean,
                          a->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        iq_zero(ga->ln1, layer);
        iq_zero(din, NC);
        layer_backward(m, g, l, B, T, dout, din);
        float *t = dout;
        dout = din, din = t;
    }
    if (g->wte) iq_encoder_backward(g->wte, g->wpe, dout, ids, B, T, C); /* frozen: the embeddings too */
}

// ----------------------------------------------------------------------------------------------------
// KV-cache decoding: the same layers over the new rows only, attention against the cached keys and values

typedef struct {
    float *x, *ln, *qkv, *atty, *proj, *fch, *fchg, *att, *mean, *rstd;
} decode_scratch;

static size_t point_decode(const iq_model_config *c, int R, int max_len, float *mem, decode_scratch *d) {
    size_t C = (size_t)c->n_embd, r = (size_t)R;
    size_t sizes[10] = {r * C, r * C, r * 3 * C, r * C, r * C, r * 4 * C, r * 4 * C, r * (size_t)c->n_head * max_len, r, r};
    float **ptrs[10] = {&d->x, &d->ln, &d->qkv, &d->atty, &d->proj, &d->fch, &d->fchg, &d->att, &d->mean, &d->rstd};
    size_t total = 0;
    for (int i = 0; i < 10; i++) {
        if (mem) *ptrs[i] = mem + total;
        total += sizes[i];
    }
    return total;
}

static size_t gpt2_kv_width(const iq_model_config *c) { return (size_t)c->n_embd; }
static size_t gpt2_decode_scratch(const iq_model_config *c, int max_rows, int max_len) {
    decode_scratch d;
    return point_decode(c, max_rows, max_len, NULL, &d);
}

/* Causal attention of the new rows (R, 3C) against slot caches K, V (slot, pos, C) up to each row's position. */
static void decode_attention(const iq_model_config *c, const iq_kv_cache *kv, const float *kc, const float *vc,
                             decode_scratch *d, int R) {
    int C = c->n_embd, H = c->n_head, hs = C / H;
    size_t per = (size_t)kv->max_len * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2)
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++) {
            const float *q = d->qkv + (size_t)r * 3 * C + h * hs;
            int pos = kv->row_pos[r];
            const float *K = kc + (size_t)kv->row_slot[r] * per + h * hs;
            const float *Vv = vc + (size_t)kv->row_slot[r] * per + h * hs;
            float *a = d->att + ((size_t)r * H + h) * kv->max_len;
            float mx = -INFINITY;
            for (int t = 0; t <= pos; t++) {
                float s = 0.0f;
                for (int i = 0; i < hs; i++) s += q[i] * K[(size_t)t * C + i];
                s *= scale;
                a[t] = s;
                if (s > mx) mx = s;
            }
            float sum = 0.0f;
            for (int t = 0; t <= pos; t++) {
                a[t] = expf(a[t] - mx);
                sum += a[t];
            }
            float inv = 1.0f / sum;
            float *o = d->atty + (size_t)r * C + h * hs;
            for (int i = 0; i < hs; i++) o[i] = 0.0f;
            for (int t = 0; t <= pos; t++) {
                float w = a[t] * inv;
                for (int i = 0; i < hs; i++) o[i] += w * Vv[(size_t)t * C + i];
            }
        }
}

static void gpt2_decode(iq_model *m, iq_kv_cache *kv, const int32_t *tokens, int B, int n, float *out) {
    const iq_model_config *c = &m->cfg;
    const params *p = &((gpt2_layout *)m->layout)->p;
    int C = c->n_embd, L = c->n_layer, R = B * n;
    size_t per = (size_t)kv->max_len * C;
    decode_scratch d;
    point_decode(c, kv->max_rows, kv->max_len, kv->scratch, &d);
    for (int r = 0; r < R; r++) {
        const float *we = p->wte + (size_t)tokens[r] * C, *pe = p->wpe + (size_t)kv->row_pos[r] * C;
        for (int k = 0; k < C; k++) d.x[(size_t)r * C + k] = we[k] + pe[k];
    }
    for (int l = 0; l < L; l++) {
        iq_layernorm_forward(d.ln, d.mean, d.rstd, d.x, p->ln1w + l * C, p->ln1b + l * C, R, C, c->ln_eps);
        iq_matmul_forward(d.qkv, d.ln, p->qkvw + (size_t)l * C * 3 * C, p->qkvb + l * 3 * C, R, C, 3 * C);
        float *kc = kv->kcache + (size_t)l * kv->max_slots * per, *vc = kv->vcache + (size_t)l * kv->max_slots * per;
        for (int r = 0; r < R; r++) {
            size_t at = (size_t)kv->row_slot[r] * per + (size_t)kv->row_pos[r] * C;
            memcpy(kc + at, d.qkv + (size_t)r * 3 * C + C, (size_t)C * sizeof(float));
            memcpy(vc + at, d.qkv + (size_t)r * 3 * C + 2 * C, (size_t)C * sizeof(float));
        }
        decode_attention(c, kv, kc, vc, &d, R);
        iq_matmul_forward(d.proj, d.atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, R, C, C);
        iq_residual_forward(d.x, d.x, d.proj, (size_t)R * C);
        iq_layernorm_forward(d.ln, d.mean, d.rstd, d.x, p->ln2w + l * C, p->ln2b + l * C, R, C, c->ln_eps);
        iq_matmul_forward(d.fch, d.ln, p->fcw + (size_t)l * C * 4 * C, p->fcb + l * 4 * C, R, C, 4 * C);
        iq_gelu_forward(d.fchg, d.fch, (size_t)R * 4 * C);
        iq_matmul_forward(d.proj, d.fchg, p->fcprojw + (size_t)l * 4 * C * C, p->fcprojb + l * C, R, 4 * C, C);
        iq_residual_forward(d.x, d.x, d.proj, (size_t)R * C);
    }
    /* the last new position of each slot -> ln_f */
    for (int b = 0; b < B; b++) memcpy(d.ln + (size_t)b * C, d.x + ((size_t)b * n + n - 1) * C, (size_t)C * sizeof(float));
    iq_layernorm_forward(out, d.mean, d.rstd, d.ln, p->lnfw, p->lnfb, B, C, c->ln_eps);
}

// ----------------------------------------------------------------------------------------------------
// init

static void gpt2_init(iq_model *m, uint64_t seed) {
    iq_rng rng;
    iq_rng_seed(&rng, seed, 0x1417);
    float resid_scale = 1.0f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const iq_tensor_ref *r = &m->tensors[i];
        float *p = m->params_memory + r->offset;
        const char *nm = r->name;
        size_t len = strlen(nm);
        bool is_bias = len > 5 && strcmp(nm + len - 5, ".bias") == 0;
        bool is_ln = strstr(nm, "ln_") != NULL;
        if (is_ln && !is_bias) {
            for (size_t k = 0; k < r->numel; k++) p[k] = 1.0f;
        } else if (is_bias) {
            memset(p, 0, r->numel * sizeof *p);
        } else {
            float std = 0.02f;
            if (strstr(nm, "c_proj.weight")) std *= resid_scale;
            for (size_t k = 0; k < r->numel; k++) p[k] = std * iq_rng_normal(&rng);
        }
    }
}

// ----------------------------------------------------------------------------------------------------
// the family

const iq_arch iq_arch_gpt2 = {
    .name = "gpt2",
    .hf_class = "GPT2LMHeadModel",
    .hf_prefix = "transformer.",
    .hf_buffer = gpt2_hf_buffer,
    .preset = gpt2_preset,
    .check = gpt2_check,
    .config_from_json = gpt2_config_from_json,
    .config_to_json = gpt2_config_to_json,
    .tensors = gpt2_tensors,
    .act_floats = gpt2_act_floats,
    .grad_act_floats = gpt2_grad_act_floats,
    .layout = gpt2_layout_fn,
    .layout_size = sizeof(gpt2_layout),
    .init = gpt2_init,
    .forward = gpt2_forward,
    .backward = gpt2_backward,
    .head_offset = gpt2_head_offset,
    .lnf = gpt2_lnf,
    .dlnf = gpt2_dlnf,
    .kv_width = gpt2_kv_width,
    .decode_scratch = gpt2_decode_scratch,
    .decode = gpt2_decode,
};
