/* infer.c — incremental decoding with a KV cache (infer.h): the cache and its slots; the family's decode step
 * (model_arch.h) computes the layers over the new rows, and the LM head gives each slot's logits. */
#include "iqtrain/infer.h"

#include <stdlib.h>
#include <string.h>

#include "iqtrain/matmul.h"
#include "model_arch.h"

struct iq_infer {
    iq_model *m;
    iq_kv_cache kv;
    size_t width; /* floats per cached key (and value) row */
    float *last;  /* (max_slots, C) final hidden state of each slot's last new row */
};

iq_infer *iq_infer_create(iq_model *m, int max_slots, int max_len) {
    const iq_model_config *c = iq_model_cfg(m);
    if (max_len > c->ctx) max_len = c->ctx;
    iq_infer *inf = iq_xcalloc(1, sizeof *inf);
    inf->m = m;
    iq_kv_cache *kv = &inf->kv;
    kv->max_slots = max_slots;
    kv->max_len = max_len;
    kv->max_rows = max_slots > max_len ? max_slots : max_len;
    inf->width = m->arch->kv_width(c);
    size_t cache = (size_t)c->n_layer * max_slots * max_len * inf->width, R = (size_t)kv->max_rows;
    kv->kcache = iq_xcalloc(cache, sizeof(float));
    kv->vcache = iq_xcalloc(cache, sizeof(float));
    kv->len = iq_xcalloc((size_t)max_slots, sizeof(int));
    kv->row_slot = iq_xcalloc(R, sizeof(int));
    kv->row_pos = iq_xcalloc(R, sizeof(int));
    kv->scratch = iq_xcalloc(m->arch->decode_scratch(c, kv->max_rows, max_len), sizeof(float));
    inf->last = iq_xcalloc((size_t)max_slots * c->n_embd + c->n_embd, sizeof(float));
    return inf;
}

void iq_infer_free(iq_infer *inf) {
    if (!inf) return;
    free(inf->kv.kcache);
    free(inf->kv.vcache);
    free(inf->kv.len);
    free(inf->kv.row_slot);
    free(inf->kv.row_pos);
    free(inf->kv.scratch);
    free(inf->last);
    free(inf);
}

int iq_infer_max_len(const iq_infer *inf) { return inf->kv.max_len; }
int iq_infer_vocab(const iq_infer *inf) { return iq_model_cfg(inf->m)->vocab; }

size_t iq_infer_bytes(const iq_infer *inf) {
    const iq_kv_cache *kv = &inf->kv;
    const iq_model_config *c = iq_model_cfg(inf->m);
    size_t cache = 2 * (size_t)c->n_layer * kv->max_slots * kv->max_len * inf->width;
    size_t scratch = inf->m->arch->decode_scratch(c, kv->max_rows, kv->max_len);
    return (cache + scratch + ((size_t)kv->max_slots + 1) * c->n_embd) * sizeof(float);
}
void iq_infer_reset(iq_infer *inf, int slot) { inf->kv.len[slot] = 0; }
int iq_infer_len(const iq_infer *inf, int slot) { return inf->kv.len[slot]; }

void iq_infer_copy(iq_infer *inf, int dst, int src) {
    if (dst == src) return;
    iq_kv_cache *kv = &inf->kv;
    size_t per = (size_t)kv->max_len * inf->width, n = (size_t)kv->len[src] * inf->width;
    for (int l = 0; l < iq_model_cfg(inf->m)->n_layer; l++) {
        size_t base = (size_t)l * kv->max_slots * per;
        memcpy(kv->kcache + base + (size_t)dst * per, kv->kcache + base + (size_t)src * per, n * sizeof(float));
        memcpy(kv->vcache + base + (size_t)dst * per, kv->vcache + base + (size_t)src * per, n * sizeof(float));
    }
    kv->len[dst] = kv->len[src];
}

void iq_infer_step(iq_infer *inf, const int *slots, const int32_t *tokens, int B, int n, float *logits) {
    iq_model *m = inf->m;
    iq_kv_cache *kv = &inf->kv;
    const iq_model_config *c = iq_model_cfg(m);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            kv->row_slot[b * n + i] = slots[b];
            kv->row_pos[b * n + i] = kv->len[slots[b]] + i;
        }
    m->arch->decode(m, kv, tokens, B, n, inf->last);
    iq_sgemm_w(false, true, B, c->vocab, c->n_embd, 1.0f, inf->last, iq_model_head(m), 0.0f, logits);
    for (int b = 0; b < B; b++) kv->len[slots[b]] += n;
}
