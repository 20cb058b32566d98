/* infer.c — the GPT-2 forward pass over new tokens with a KV cache. Same layers as training (kernels.c),
 * plus attention against the cached keys and values. */
#include "iqtrain/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/kernels.h"
#include "iqtrain/matmul.h"

struct iq_infer {
    iq_model *m;
    int max_slots, max_len, max_rows;
    float *kcache, *vcache; /* (L, max_slots, max_len, C) */
    int *len;               /* (max_slots) */
    /* scratch, (max_rows, ·) */
    float *x, *ln, *qkv, *atty, *proj, *fch, *fchg, *att;
    float *mean, *rstd, *last;
    int *row_slot, *row_pos;
};

iq_infer *iq_infer_create(iq_model *m, int max_slots, int max_len) {
    const iq_model_config *c = iq_model_cfg(m);
    if (max_len > c->ctx) max_len = c->ctx;
    iq_infer *inf = iq_xcalloc(1, sizeof *inf);
    inf->m = m;
    inf->max_slots = max_slots;
    inf->max_len = max_len;
    inf->max_rows = max_slots > max_len ? max_slots : max_len;
    size_t C = (size_t)c->n_embd, R = (size_t)inf->max_rows;
    size_t cache = (size_t)c->n_layer * max_slots * max_len * C;
    inf->kcache = iq_xcalloc(cache, sizeof(float));
    inf->vcache = iq_xcalloc(cache, sizeof(float));
    inf->len = iq_xcalloc((size_t)max_slots, sizeof(int));
    inf->x = iq_xcalloc(R * C, sizeof(float));
    inf->ln = iq_xcalloc(R * C, sizeof(float));
    inf->qkv = iq_xcalloc(R * 3 * C, sizeof(float));
    inf->atty = iq_xcalloc(R * C, sizeof(float));
    inf->proj = iq_xcalloc(R * C, sizeof(float));
    inf->fch = iq_xcalloc(R * 4 * C, sizeof(float));
    inf->fchg = iq_xcalloc(R * 4 * C, sizeof(float));
    inf->att = iq_xcalloc(R * (size_t)c->n_head * max_len, sizeof(float));
    inf->mean = iq_xcalloc(R, sizeof(float));
    inf->rstd = iq_xcalloc(R, sizeof(float));
    inf->last = iq_xcalloc((size_t)max_slots * C + C, sizeof(float));
    inf->row_slot = iq_xcalloc(R, sizeof(int));
    inf->row_pos = iq_xcalloc(R, sizeof(int));
    return inf;
}

void iq_infer_free(iq_infer *inf) {
    if (!inf) return;
    free(inf->kcache);
    free(inf->vcache);
    free(inf->len);
    free(inf->x);
    free(inf->ln);
    free(inf->qkv);
    free(inf->atty);
    free(inf->proj);
    free(inf->fch);
    free(inf->fchg);
    free(inf->att);
    free(inf->mean);
    free(inf->rstd);
    free(inf->last);
    free(inf->row_slot);
    free(inf->row_pos);
    free(inf);
}

int iq_infer_max_len(const iq_infer *inf) { return inf->max_len; }
int iq_infer_vocab(const iq_infer *inf) { return iq_model_cfg(inf->m)->vocab; }
void iq_infer_reset(iq_infer *inf, int slot) { inf->len[slot] = 0; }
int iq_infer_len(const iq_infer *inf, int slot) { return inf->len[slot]; }

void iq_infer_copy(iq_infer *inf, int dst, int src) {
    if (dst == src) return;
    const iq_model_config *c = iq_model_cfg(inf->m);
    size_t C = (size_t)c->n_embd, per = (size_t)inf->max_len * C, n = (size_t)inf->len[src] * C;
    for (int l = 0; l < c->n_layer; l++) {
        size_t base = (size_t)l * inf->max_slots * per;
        memcpy(inf->kcache + base + (size_t)dst * per, inf->kcache + base + (size_t)src * per, n * sizeof(float));
        memcpy(inf->vcache + base + (size_t)dst * per, inf->vcache + base + (size_t)src * per, n * sizeof(float));
    }
    inf->len[dst] = inf->len[src];
}

void iq_infer_step(iq_infer *inf, const int *slots, const int32_t *tokens, int B, int n, float *logits) {
    iq_model *m = inf->m;
    const iq_model_config *c = iq_model_cfg(m);
    const iq_params *p = iq_model_params(m);
    int C = c->n_embd, H = c->n_head, hs = C / H, L = c->n_layer, V = c->vocab, R = B * n;
    size_t per = (size_t)inf->max_len * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            inf->row_slot[b * n + i] = slots[b];
            inf->row_pos[b * n + i] = inf->len[slots[b]] + i;
        }
    /* embeddings */
    for (int r = 0; r < R; r++) {
        const float *we = p->wte + (size_t)tokens[r] * C, *pe = p->wpe + (size_t)inf->row_pos[r] * C;
        for (int k = 0; k < C; k++) inf->x[(size_t)r * C + k] = we[k] + pe[k];
    }
    for (int l = 0; l < L; l++) {
        iq_layernorm_forward(inf->ln, inf->mean, inf->rstd, inf->x, p->ln1w + l * C, p->ln1b + l * C, R, C, c->ln_eps);
        iq_matmul_forward(inf->qkv, inf->ln, p->qkvw + (size_t)l * C * 3 * C, p->qkvb + l * 3 * C, R, C, 3 * C);
        float *kc = inf->kcache + (size_t)l * inf->max_slots * per, *vc = inf->vcache + (size_t)l * inf->max_slots * per;
        for (int r = 0; r < R; r++) {
            size_t at = (size_t)inf->row_slot[r] * per + (size_t)inf->row_pos[r] * C;
            memcpy(kc + at, inf->qkv + (size_t)r * 3 * C + C, (size_t)C * sizeof(float));
            memcpy(vc + at, inf->qkv + (size_t)r * 3 * C + 2 * C, (size_t)C * sizeof(float));
        }
#pragma omp parallel for collapse(2)
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++) {
                const float *q = inf->qkv + (size_t)r * 3 * C + h * hs;
                int pos = inf->row_pos[r];
                const float *K = kc + (size_t)inf->row_slot[r] * per + h * hs;
                const float *Vv = vc + (size_t)inf->row_slot[r] * per + h * hs;
                float *a = inf->att + ((size_t)r * H + h) * inf->max_len;
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
                float *o = inf->atty + (size_t)r * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int t = 0; t <= pos; t++) {
                    float w = a[t] * inv;
                    for (int i = 0; i < hs; i++) o[i] += w * Vv[(size_t)t * C + i];
                }
            }
        iq_matmul_forward(inf->proj, inf->atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, R, C, C);
        iq_residual_forward(inf->x, inf->x, inf->proj, (size_t)R * C);
        iq_layernorm_forward(inf->ln, inf->mean, inf->rstd, inf->x, p->ln2w + l * C, p->ln2b + l * C, R, C, c->ln_eps);
        iq_matmul_forward(inf->fch, inf->ln, p->fcw + (size_t)l * C * 4 * C, p->fcb + l * 4 * C, R, C, 4 * C);
        iq_gelu_forward(inf->fchg, inf->fch, (size_t)R * 4 * C);
        iq_matmul_forward(inf->proj, inf->fchg, p->fcprojw + (size_t)l * 4 * C * C, p->fcprojb + l * C, R, 4 * C, C);
        iq_residual_forward(inf->x, inf->x, inf->proj, (size_t)R * C);
    }
    /* the last new position of each slot -> ln_f -> logits */
    for (int b = 0; b < B; b++) memcpy(inf->ln + (size_t)b * C, inf->x + ((size_t)b * n + n - 1) * C, (size_t)C * sizeof(float));
    iq_layernorm_forward(inf->last, inf->mean, inf->rstd, inf->ln, p->lnfw, p->lnfb, B, C, c->ln_eps);
    iq_sgemm_w(false, true, B, V, C, 1.0f, inf->last, p->wte, 0.0f, logits);
    for (int b = 0; b < B; b++) inf->len[slots[b]] += n;
}
