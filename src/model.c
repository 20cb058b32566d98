/* model.c — GPT-2 forward and backward, llm.c-style: the layers are in kernels.c; the model's
 * forward/backward only does pointer arithmetic and calls them in order.
 *
 * Sections: parameter and activation tables · model · init. */
#include "iqtrain/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/kernels.h"
#include "iqtrain/rng.h"

// ----------------------------------------------------------------------------------------------------
// parameter and activation tables

static void param_sizes(const iq_model_config *c, size_t s[IQ_NUM_PARAM_TENSORS]) {
    size_t V = (size_t)c->vocab, C = (size_t)c->n_embd, L = (size_t)c->n_layer, P = (size_t)c->ctx;
    s[0] = V * C;         /* wte */
    s[1] = P * C;         /* wpe */
    s[2] = L * C;         /* ln1w */
    s[3] = L * C;         /* ln1b */
    s[4] = L * C * 3 * C; /* qkvw */
    s[5] = L * 3 * C;     /* qkvb */
    s[6] = L * C * C;     /* attprojw */
    s[7] = L * C;         /* attprojb */
    s[8] = L * C;         /* ln2w */
    s[9] = L * C;         /* ln2b */
    s[10] = L * C * 4 * C; /* fcw */
    s[11] = L * 4 * C;    /* fcb */
    s[12] = L * 4 * C * C; /* fcprojw */
    s[13] = L * C;        /* fcprojb */
    s[14] = C;            /* lnfw */
    s[15] = C;            /* lnfb */
}

static void point_params(iq_params *p, float *mem, const size_t s[IQ_NUM_PARAM_TENSORS]) {
    float **ptrs[IQ_NUM_PARAM_TENSORS] = {&p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb,
                                          &p->attprojw, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcw, &p->fcb,
                                          &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb};
    for (int i = 0; i < IQ_NUM_PARAM_TENSORS; i++) {
        *ptrs[i] = mem;
        mem += s[i];
    }
}

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

static size_t act_sizes(const iq_model_config *c, int B, int T, size_t s[NUM_ACT]) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, H = (size_t)c->n_head, BT = (size_t)B * T;
    size_t v[NUM_ACT] = {BT * C,     L * BT * C, L * BT,         L * BT,     L * BT * 3 * C, L * BT * C, L * B * H * T * T,
                         L * BT * C, L * BT * C, L * BT * C,     L * BT,     L * BT,         L * BT * 4 * C,
                         L * BT * 4 * C, L * BT * C, L * BT * C, BT * C, BT, BT};
    size_t total = 0;
    for (int i = 0; i < NUM_ACT; i++) {
        s[i] = v[i];
        total += v[i];
    }
    return total;
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

// ----------------------------------------------------------------------------------------------------
// model

struct iq_model {
    iq_model_config cfg;
    int max_batch, max_seq;
    size_t param_sizes[IQ_NUM_PARAM_TENSORS];
    size_t num_params;
    float *params_memory, *grads_memory;
    iq_params params, grads;
    float *acts_memory, *grads_acts_memory;
    size_t acts_capacity;
    acts act, gact; /* laid out for (cur_B, cur_T) */
    int cur_B, cur_T;
};

iq_status iq_model_preset(const char *name, iq_model_config *cfg) {
    iq_model_config c = {0};
    c.ln_eps = 1e-5f;
    if (strcmp(name, "tiny") == 0) c = (iq_model_config){2, 2, 64, 128, 0, 1e-5f};
    else if (strcmp(name, "small") == 0) c = (iq_model_config){4, 4, 256, 256, 0, 1e-5f};
    else if (strcmp(name, "gpt2") == 0) c = (iq_model_config){12, 12, 768, 1024, 0, 1e-5f};
    else return iq_fail(IQ_EUSAGE, "unknown preset '%s' (tiny, small, gpt2)", name);
    *cfg = c;
    return IQ_OK;
}

iq_status iq_model_config_check(const iq_model_config *c) {
    if (c->n_layer < 1 || c->n_layer > 256) return iq_fail(IQ_EUSAGE, "n_layer must be in 1..256, got %d", c->n_layer);
    if (c->n_head < 1 || c->n_embd < 1 || c->n_embd % c->n_head != 0)
        return iq_fail(IQ_EUSAGE, "n_embd (%d) must be a positive multiple of n_head (%d)", c->n_embd, c->n_head);
    if (c->n_embd > 16384) return iq_fail(IQ_EUSAGE, "n_embd %d is too large", c->n_embd);
    if (c->ctx < 2 || c->ctx > 65536) return iq_fail(IQ_EUSAGE, "ctx must be in 2..65536, got %d", c->ctx);
    if (c->vocab < 2 || c->vocab > 4000000) return iq_fail(IQ_EUSAGE, "vocabulary size %d out of range", c->vocab);
    if (!(c->ln_eps > 0.0f) || c->ln_eps > 1.0f) return iq_fail(IQ_EUSAGE, "layer_norm_epsilon must be in (0, 1]");
    return IQ_OK;
}

static void *alloc_floats(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (p) iq_prefault(p, (n ? n : 1) * sizeof(float)); /* step 0 pays no page faults */
    return p;
}

iq_status iq_model_create(const iq_model_config *cfg, int max_batch, int max_seq, iq_model **out) {
    *out = NULL;
    iq_status st = iq_model_config_check(cfg);
    if (st) return st;
    if (max_batch < 1 || max_seq < 1 || max_seq > cfg->ctx)
        return iq_fail(IQ_EUSAGE, "batch %d x sequence %d does not fit the model (ctx %d)", max_batch, max_seq, cfg->ctx);
    iq_model *m = iq_xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->max_batch = max_batch;
    m->max_seq = max_seq;
    param_sizes(cfg, m->param_sizes);
    for (int i = 0; i < IQ_NUM_PARAM_TENSORS; i++) m->num_params += m->param_sizes[i];
    size_t s[NUM_ACT];
    m->acts_capacity = act_sizes(cfg, max_batch, max_seq, s);
    m->params_memory = alloc_floats(m->num_params);
    m->grads_memory = alloc_floats(m->num_params);
    m->acts_memory = alloc_floats(m->acts_capacity);
    m->grads_acts_memory = alloc_floats(m->acts_capacity);
    if (!m->params_memory || !m->grads_memory || !m->acts_memory || !m->grads_acts_memory) {
        double gb = (double)(2 * m->num_params + 2 * m->acts_capacity) * 4 / 1e9;
        iq_model_free(m);
        return iq_fail(IQ_EINTERNAL, "out of memory: the model and its activations need %.2f GB", gb);
    }
    point_params(&m->params, m->params_memory, m->param_sizes);
    point_params(&m->grads, m->grads_memory, m->param_sizes);
    *out = m;
    return IQ_OK;
}

void iq_model_free(iq_model *m) {
    if (!m) return;
    free(m->params_memory);
    free(m->grads_memory);
    free(m->acts_memory);
    free(m->grads_acts_memory);
    free(m);
}

const iq_model_config *iq_model_cfg(const iq_model *m) { return &m->cfg; }
int iq_model_max_batch(const iq_model *m) { return m->max_batch; }
int iq_model_max_seq(const iq_model *m) { return m->max_seq; }
iq_params *iq_model_params(iq_model *m) { return &m->params; }
iq_params *iq_model_grads(iq_model *m) { return &m->grads; }
size_t iq_model_num_params(const iq_model *m) { return m->num_params; }
float *iq_model_param_memory(iq_model *m, size_t *n) {
    *n = m->num_params;
    return m->params_memory;
}
float *iq_model_grad_memory(iq_model *m, size_t *n) {
    *n = m->num_params;
    return m->grads_memory;
}
float *iq_model_lnf(iq_model *m) { return m->act.lnf; }
float *iq_model_dlnf(iq_model *m) { return m->gact.lnf; }

void iq_model_zero_grad(iq_model *m) { memset(m->grads_memory, 0, m->num_params * sizeof(float)); }

int iq_model_tensor_refs(const iq_model *m, iq_tensor_ref *refs) {
    const iq_model_config *c = &m->cfg;
    int64_t V = c->vocab, C = c->n_embd, P = c->ctx;
    int n = 0;
    size_t base[IQ_NUM_PARAM_TENSORS];
    size_t off = 0;
    for (int i = 0; i < IQ_NUM_PARAM_TENSORS; i++) {
        base[i] = off;
        off += m->param_sizes[i];
    }
#define REF(NAME, ND, S0, S1, OFF, DECAY)                                                                     \
    do {                                                                                                     \
        if (refs) {                                                                                          \
            iq_tensor_ref *r = &refs[n];                                                                     \
            snprintf(r->name, sizeof r->name, "%s", NAME);                                                  \
            r->ndim = ND;                                                                                    \
            r->shape[0] = S0;                                                                                \
            r->shape[1] = S1;                                                                                \
            r->offset = OFF;                                                                                 \
            r->numel = (size_t)(S0) * (size_t)((ND) == 2 ? (S1) : 1);                                        \
            r->decay = DECAY;                                                                                \
        }                                                                                                    \
        n++;                                                                                                 \
    } while (0)
    REF("wte.weight", 2, V, C, base[0], false);
    REF("wpe.weight", 2, P, C, base[1], false);
    char nm[64];
    for (int64_t l = 0; l < c->n_layer; l++) {
        snprintf(nm, sizeof nm, "h.%d.ln_1.weight", (int)l);
        REF(nm, 1, C, 0, base[2] + l * C, false);
        snprintf(nm, sizeof nm, "h.%d.ln_1.bias", (int)l);
        REF(nm, 1, C, 0, base[3] + l * C, false);
        snprintf(nm, sizeof nm, "h.%d.attn.c_attn.weight", (int)l);
        REF(nm, 2, C, 3 * C, base[4] + l * C * 3 * C, true);
        snprintf(nm, sizeof nm, "h.%d.attn.c_attn.bias", (int)l);
        REF(nm, 1, 3 * C, 0, base[5] + l * 3 * C, false);
        snprintf(nm, sizeof nm, "h.%d.attn.c_proj.weight", (int)l);
        REF(nm, 2, C, C, base[6] + l * C * C, true);
        snprintf(nm, sizeof nm, "h.%d.attn.c_proj.bias", (int)l);
        REF(nm, 1, C, 0, base[7] + l * C, false);
        snprintf(nm, sizeof nm, "h.%d.ln_2.weight", (int)l);
        REF(nm, 1, C, 0, base[8] + l * C, false);
        snprintf(nm, sizeof nm, "h.%d.ln_2.bias", (int)l);
        REF(nm, 1, C, 0, base[9] + l * C, false);
        snprintf(nm, sizeof nm, "h.%d.mlp.c_fc.weight", (int)l);
        REF(nm, 2, C, 4 * C, base[10] + l * C * 4 * C, true);
        snprintf(nm, sizeof nm, "h.%d.mlp.c_fc.bias", (int)l);
        REF(nm, 1, 4 * C, 0, base[11] + l * 4 * C, false);
        snprintf(nm, sizeof nm, "h.%d.mlp.c_proj.weight", (int)l);
        REF(nm, 2, 4 * C, C, base[12] + l * 4 * C * C, true);
        snprintf(nm, sizeof nm, "h.%d.mlp.c_proj.bias", (int)l);
        REF(nm, 1, C, 0, base[13] + l * C, false);
    }
    REF("ln_f.weight", 1, C, 0, base[14], false);
    REF("ln_f.bias", 1, C, 0, base[15], false);
#undef REF
    return n;
}

static void layout_acts(iq_model *m, int B, int T) {
    if (m->cur_B == B && m->cur_T == T) return;
    size_t s[NUM_ACT];
    act_sizes(&m->cfg, B, T, s);
    point_acts(&m->act, m->acts_memory, s);
    point_acts(&m->gact, m->grads_acts_memory, s);
    m->cur_B = B;
    m->cur_T = T;
}

void iq_model_forward(iq_model *m, const int32_t *ids, int B, int T) {
    const iq_model_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, H = c->n_head, N = B * T;
    layout_acts(m, B, T);
    iq_params *p = &m->params;
    acts *a = &m->act;
    iq_encoder_forward(a->encoded, ids, p->wte, p->wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        const float *res = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
        size_t nc = (size_t)l * N * C;
        float *ln1 = a->ln1 + nc, *ln1_mean = a->ln1_mean + (size_t)l * N, *ln1_rstd = a->ln1_rstd + (size_t)l * N;
        float *qkv = a->qkv + nc * 3, *atty = a->atty + nc, *att = a->att + (size_t)l * B * H * T * T;
        float *attproj = a->attproj + nc, *res2 = a->residual2 + nc;
        float *ln2 = a->ln2 + nc, *ln2_mean = a->ln2_mean + (size_t)l * N, *ln2_rstd = a->ln2_rstd + (size_t)l * N;
        float *fch = a->fch + nc * 4, *fch_gelu = a->fch_gelu + nc * 4, *fcproj = a->fcproj + nc, *res3 = a->residual3 + nc;
        iq_layernorm_forward(ln1, ln1_mean, ln1_rstd, res, p->ln1w + l * C, p->ln1b + l * C, N, C, c->ln_eps);
        iq_matmul_forward(qkv, ln1, p->qkvw + (size_t)l * C * 3 * C, p->qkvb + l * 3 * C, N, C, 3 * C);
        iq_attention_forward(atty, att, qkv, B, T, C, H);
        iq_matmul_forward(attproj, atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, N, C, C);
        iq_residual_forward(res2, res, attproj, (size_t)N * C);
        iq_layernorm_forward(ln2, ln2_mean, ln2_rstd, res2, p->ln2w + l * C, p->ln2b + l * C, N, C, c->ln_eps);
        iq_matmul_forward(fch, ln2, p->fcw + (size_t)l * C * 4 * C, p->fcb + l * 4 * C, N, C, 4 * C);
        iq_gelu_forward(fch_gelu, fch, (size_t)N * 4 * C);
        iq_matmul_forward(fcproj, fch_gelu, p->fcprojw + (size_t)l * 4 * C * C, p->fcprojb + l * C, N, 4 * C, C);
        iq_residual_forward(res3, res2, fcproj, (size_t)N * C);
    }
    const float *last = a->residual3 + (size_t)(L - 1) * N * C;
    iq_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb, N, C, c->ln_eps);
}

void iq_model_backward(iq_model *m, const int32_t *ids, int B, int T) {
    const iq_model_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, H = c->n_head, N = B * T;
    layout_acts(m, B, T);
    iq_params *p = &m->params, *g = &m->grads;
    acts *a = &m->act, *ga = &m->gact;
    /* every activation gradient but dlnf (written by the loss head) is accumulated into: clear them */
    size_t s[NUM_ACT];
    act_sizes(c, B, T, s);
    size_t lnf_off = (size_t)(ga->lnf - m->grads_acts_memory);
    memset(m->grads_acts_memory, 0, lnf_off * sizeof(float));

    float *dres = ga->residual3 + (size_t)(L - 1) * N * C;
    iq_layernorm_backward(dres, g->lnfw, g->lnfb, ga->lnf, a->residual3 + (size_t)(L - 1) * N * C, p->lnfw, a->lnf_mean,
                       a->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        const float *res = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
        float *dres_in = l == 0 ? ga->encoded : ga->residual3 + (size_t)(l - 1) * N * C;
        size_t nc = (size_t)l * N * C;
        float *dres3 = ga->residual3 + nc;
        /* residual3 = residual2 + fcproj */
        iq_residual_backward(ga->residual2 + nc, ga->fcproj + nc, dres3, (size_t)N * C);
        iq_matmul_backward(ga->fch_gelu + nc * 4, g->fcprojw + (size_t)l * 4 * C * C, g->fcprojb + l * C, ga->fcproj + nc,
                        a->fch_gelu + nc * 4, p->fcprojw + (size_t)l * 4 * C * C, N, 4 * C, C);
        iq_gelu_backward(ga->fch + nc * 4, a->fch + nc * 4, ga->fch_gelu + nc * 4, (size_t)N * 4 * C);
        iq_matmul_backward(ga->ln2 + nc, g->fcw + (size_t)l * C * 4 * C, g->fcb + l * 4 * C, ga->fch + nc * 4, a->ln2 + nc,
                        p->fcw + (size_t)l * C * 4 * C, N, C, 4 * C);
        iq_layernorm_backward(ga->residual2 + nc, g->ln2w + l * C, g->ln2b + l * C, ga->ln2 + nc, a->residual2 + nc,
                           p->ln2w + l * C, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, N, C);
        /* residual2 = res + attproj */
        iq_residual_backward(dres_in, ga->attproj + nc, ga->residual2 + nc, (size_t)N * C);
        iq_matmul_backward(ga->atty + nc, g->attprojw + (size_t)l * C * C, g->attprojb + l * C, ga->attproj + nc,
                        a->atty + nc, p->attprojw + (size_t)l * C * C, N, C, C);
        iq_attention_backward(ga->qkv + nc * 3, ga->att + (size_t)l * B * H * T * T, ga->atty + nc, a->qkv + nc * 3,
                           a->att + (size_t)l * B * H * T * T, B, T, C, H);
        iq_matmul_backward(ga->ln1 + nc, g->qkvw + (size_t)l * C * 3 * C, g->qkvb + l * 3 * C, ga->qkv + nc * 3, a->ln1 + nc,
                        p->qkvw + (size_t)l * C * 3 * C, N, C, 3 * C);
        iq_layernorm_backward(dres_in, g->ln1w + l * C, g->ln1b + l * C, ga->ln1 + nc, res, p->ln1w + l * C,
                           a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, N, C);
    }
    iq_encoder_backward(g->wte, g->wpe, ga->encoded, ids, B, T, C);
}

// ----------------------------------------------------------------------------------------------------
// init

void iq_model_init_gpt2(iq_model *m, uint64_t seed) {
    iq_rng rng;
    iq_rng_seed(&rng, seed, 0x1417);
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    float resid_scale = 1.0f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int i = 0; i < n; i++) {
        float *p = m->params_memory + refs[i].offset;
        const char *nm = refs[i].name;
        size_t len = strlen(nm);
        bool is_bias = len > 5 && strcmp(nm + len - 5, ".bias") == 0;
        bool is_ln = strstr(nm, "ln_") != NULL;
        if (is_ln && !is_bias) {
            for (size_t k = 0; k < refs[i].numel; k++) p[k] = 1.0f;
        } else if (is_bias) {
            memset(p, 0, refs[i].numel * sizeof *p);
        } else {
            float std = 0.02f;
            if (strstr(nm, "c_proj.weight")) std *= resid_scale;
            for (size_t k = 0; k < refs[i].numel; k++) p[k] = std * iq_rng_normal(&rng);
        }
    }
    free(refs);
}
