/* infer.h — incremental decoding with a KV cache (generation, scoring at sampling time).
 *
 * A cache has `max_slots` independent sequences of up to `max_len` positions. iq_infer_step appends n tokens
 * to each of B slots and returns the logits at the last new position of each: n = prompt length with B = 1
 * to prefill, n = 1 with many slots to decode in a batch. Results equal a full forward pass over the same
 * tokens (up to float round-off from a different summation shape). */
#ifndef IQTRAIN_INFER_H
#define IQTRAIN_INFER_H

#include <stdint.h>

#include "iqtrain/model.h"

typedef struct iq_infer iq_infer;

/* max_len <= the model's ctx; at most max(max_slots, max_len) rows per step. */
iq_infer *iq_infer_create(iq_model *m, int max_slots, int max_len);
void iq_infer_free(iq_infer *inf);
int iq_infer_max_len(const iq_infer *inf);
int iq_infer_vocab(const iq_infer *inf);
/* Bytes of the cache and its scratch. */
size_t iq_infer_bytes(const iq_infer *inf);
void iq_infer_reset(iq_infer *inf, int slot);
int iq_infer_len(const iq_infer *inf, int slot);
/* Copies slot src's cache (and length) into dst (beam search, samples sharing a prompt). */
void iq_infer_copy(iq_infer *inf, int dst, int src);
/* Appends tokens (B, n) to slots[0..B) and writes the logits of each slot's last new position to
 * logits (B, V). Requires B * n <= max(max_slots, max_len) and len + n <= max_len for every slot. */
void iq_infer_step(iq_infer *inf, const int *slots, const int32_t *tokens, int B, int n, float *logits);

#endif
