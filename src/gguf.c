/* gguf.c — the GGUF container writer (gguf.h): key/values, tensor infos, aligned data, written atomically.
 *
 * Sections: tensor types · key/values · tensors · writing. */
#include "iqtrain/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/safetensors.h"

// ----------------------------------------------------------------------------------------------------
// tensor types

const char *iq_ggml_type_name(iq_ggml_type t) {
    switch (t) {
    case IQ_GGML_F32: return "F32";
    case IQ_GGML_F16: return "F16";
    case IQ_GGML_BF16: return "BF16";
    case IQ_GGML_Q8_0: return "Q8_0";
    }
    return "?";
}

size_t iq_ggml_row_bytes(iq_ggml_type t, int64_t n) {
    switch (t) {
    case IQ_GGML_F32: return (size_t)n * 4;
    case IQ_GGML_F16:
    case IQ_GGML_BF16: return (size_t)n * 2;
    case IQ_GGML_Q8_0: return (size_t)(n / IQ_Q8_0_BLOCK) * IQ_Q8_0_BYTES;
    }
    return 0;
}

void iq_q8_0_block(const float *x, uint8_t out[IQ_Q8_0_BYTES]) {
    float amax = 0.0f;
    for (int j = 0; j < IQ_Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t h = iq_f32_to_f16(d);
    out[0] = (uint8_t)(h & 0xFF), out[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < IQ_Q8_0_BLOCK; j++) out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id); /* half away from zero */
}

void iq_ggml_convert(iq_ggml_type t, const float *x, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        switch (t) {
        case IQ_GGML_F32: memcpy(out + 4 * i, &x[i], 4); continue;
        case IQ_GGML_F16: h = iq_f32_to_f16(x[i]); break;
        case IQ_GGML_BF16: h = iq_f32_to_bf16(x[i]); break;
        case IQ_GGML_Q8_0:
            if (i % IQ_Q8_0_BLOCK == 0) iq_q8_0_block(x + i, out + (i / IQ_Q8_0_BLOCK) * IQ_Q8_0_BYTES);
            continue;
        default: continue;
        }
        out[2 * i] = (uint8_t)(h & 0xFF), out[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

// ----------------------------------------------------------------------------------------------------
// key/values: serialised at once into kv (little-endian, as x86-64 and every platform llama.cpp ships for)

typedef struct {
    char name[64];
    int n_dims;
    int64_t ne[IQ_GGUF_MAX_DIMS];
    iq_ggml_type type;
    uint64_t offset, bytes; /* in the data section; bytes without padding */
} tensor_info;

struct iq_gguf {
    iq_buf kv;
    uint64_t n_kv;
    iq_strmap *keys;
    uint64_t arr_left;  /* elements an open array still expects */
    bool broken;        /* a misuse recorded for iq_gguf_write */
    char why[160];
    tensor_info *tensors;
    int n_tensors, cap_tensors;
    iq_strmap *names;
    uint64_t data_bytes;
};

static void misuse(iq_gguf *g, const char *what, const char *name) {
    if (!g->broken) snprintf(g->why, sizeof g->why, "%s: %.100s", what, name);
    g->broken = true;
}

static void put_u32(iq_buf *b, uint32_t v) { iq_buf_append(b, &v, 4); }
static void put_u64(iq_buf *b, uint64_t v) { iq_buf_append(b, &v, 8); }
static void put_str(iq_buf *b, const void *s, size_t n) {
    put_u64(b, n);
    iq_buf_append(b, s, n);
}

iq_gguf *iq_gguf_new(void) {
    iq_gguf *g = iq_xcalloc(1, sizeof *g);
    g->keys = iq_strmap_new(64);
    g->names = iq_strmap_new(256);
    return g;
}

void iq_gguf_free(iq_gguf *g) {
    if (!g) return;
    iq_buf_free(&g->kv);
    iq_strmap_free(g->keys);
    iq_strmap_free(g->names);
    free(g->tensors);
    free(g);
}

static void key(iq_gguf *g, const char *k, iq_gguf_value_type t) {
    if (g->arr_left) misuse(g, "a key inside an unfinished array", k);
    if (!iq_strmap_put(g->keys, k, strlen(k), 0)) misuse(g, "duplicate key", k);
    put_str(&g->kv, k, strlen(k));
    put_u32(&g->kv, (uint32_t)t);
    g->n_kv++;
}

void iq_gguf_u32(iq_gguf *g, const char *k, uint32_t v) {
    key(g, k, IQ_GGUF_U32);
    put_u32(&g->kv, v);
}
void iq_gguf_f32(iq_gguf *g, const char *k, float v) {
    key(g, k, IQ_GGUF_F32);
    iq_buf_append(&g->kv, &v, 4);
}
void iq_gguf_bool(iq_gguf *g, const char *k, bool v) {
    key(g, k, IQ_GGUF_BOOL);
    iq_buf_putc(&g->kv, v ? 1 : 0);
}
void iq_gguf_strn(iq_gguf *g, const char *k, const void *s, size_t n) {
    key(g, k, IQ_GGUF_STRING);
    put_str(&g->kv, s, n);
}
void iq_gguf_str(iq_gguf *g, const char *k, const char *s) { iq_gguf_strn(g, k, s, strlen(s)); }

void iq_gguf_arr_begin(iq_gguf *g, const char *k, iq_gguf_value_type elem_type, uint64_t n) {
    key(g, k, IQ_GGUF_ARRAY);
    put_u32(&g->kv, (uint32_t)elem_type);
    put_u64(&g->kv, n);
    g->arr_left = n;
}
void iq_gguf_arr_str(iq_gguf *g, const void *s, size_t n) {
    if (!g->arr_left) misuse(g, "an array element outside an array", "string");
    g->arr_left -= g->arr_left > 0;
    put_str(&g->kv, s, n);
}
void iq_gguf_arr_i32(iq_gguf *g, int32_t v) {
    if (!g->arr_left) misuse(g, "an array element outside an array", "int32");
    g->arr_left -= g->arr_left > 0;
    iq_buf_append(&g->kv, &v, 4);
}
uint64_t iq_gguf_n_kv(const iq_gguf *g) { return g->n_kv; }

// ----------------------------------------------------------------------------------------------------
// tensors

static uint64_t pad(uint64_t n) { return (n + IQ_GGUF_ALIGNMENT - 1) / IQ_GGUF_ALIGNMENT * IQ_GGUF_ALIGNMENT; }

void iq_gguf_tensor(iq_gguf *g, const char *name, int n_dims, const int64_t *ne, iq_ggml_type type) {
    if (strlen(name) > 63 || n_dims < 1 || n_dims > IQ_GGUF_MAX_DIMS) {
        misuse(g, "a tensor name longer than 63 bytes or a bad rank", name);
        return;
    }
    if (!iq_strmap_put(g->names, name, strlen(name), g->n_tensors)) misuse(g, "duplicate tensor", name);
    if (type == IQ_GGML_Q8_0 && ne[0] % IQ_Q8_0_BLOCK != 0) misuse(g, "a Q8_0 row that is not a multiple of 32", name);
    if (g->n_tensors == g->cap_tensors) {
        g->cap_tensors = g->cap_tensors ? 2 * g->cap_tensors : 64;
        g->tensors = iq_xrealloc(g->tensors, (size_t)g->cap_tensors * sizeof *g->tensors);
    }
    tensor_info *t = &g->tensors[g->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    uint64_t rows = 1;
    for (int d = 0; d < n_dims; d++) {
        t->ne[d] = ne[d];
        if (d > 0) rows *= (uint64_t)ne[d];
    }
    t->type = type;
    t->bytes = rows * iq_ggml_row_bytes(type, ne[0]);
    t->offset = g->data_bytes;
    g->data_bytes += pad(t->bytes);
}

int iq_gguf_n_tensors(const iq_gguf *g) { return g->n_tensors; }
uint64_t iq_gguf_data_bytes(const iq_gguf *g) { return g->data_bytes; }

// ----------------------------------------------------------------------------------------------------
// writing

static void put_header(const iq_gguf *g, iq_buf *h) {
    iq_buf_append(h, "GGUF", 4);
    put_u32(h, 3);
    put_u64(h, (uint64_t)g->n_tensors);
    put_u64(h, g->n_kv);
    iq_buf_append(h, g->kv.data, g->kv.len);
    for (int i = 0; i < g->n_tensors; i++) {
        const tensor_info *t = &g->tensors[i];
        put_str(h, t->name, strlen(t->name));
        put_u32(h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(h, (uint64_t)t->ne[d]);
        put_u32(h, (uint32_t)t->type);
        put_u64(h, t->offset);
    }
    size_t padded = (size_t)pad(h->len);
    while (h->len < padded) iq_buf_putc(h, 0);
}

iq_status iq_gguf_write(iq_gguf *g, const char *path, iq_gguf_fill_fn fill, void *ctx) {
    if (g->arr_left) misuse(g, "an unfinished array", "(last key)");
    if (g->broken) return iq_fail(IQ_EINTERNAL, "GGUF writer misused (%s)", g->why);
    uint64_t max_n = 0, max_bytes = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        uint64_t n = 1;
        for (int d = 0; d < g->tensors[i].n_dims; d++) n *= (uint64_t)g->tensors[i].ne[d];
        if (n > max_n) max_n = n;
        if (pad(g->tensors[i].bytes) > max_bytes) max_bytes = pad(g->tensors[i].bytes);
    }
    iq_buf h = {0};
    put_header(g, &h);
    iq_atomic_file f;
    iq_status st = iq_atomic_begin(&f, path);
    if (st) {
        iq_buf_free(&h);
        return st;
    }
    iq_atomic_write(&f, h.data, h.len);
    iq_buf_free(&h);
    float *vals = iq_xmalloc((size_t)(max_n ? max_n : 1) * sizeof *vals);
    uint8_t *bytes = iq_xmalloc((size_t)(max_bytes ? max_bytes : 1));
    for (int i = 0; i < g->n_tensors && !f.err; i++) {
        const tensor_info *t = &g->tensors[i];
        uint64_t n = t->bytes == 0 ? 0 : 1;
        for (int d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        fill(ctx, i, vals);
        iq_ggml_convert(t->type, vals, (int64_t)n, bytes);
        memset(bytes + t->bytes, 0, (size_t)(pad(t->bytes) - t->bytes));
        iq_atomic_write(&f, bytes, (size_t)pad(t->bytes));
    }
    free(vals);
    free(bytes);
    return iq_atomic_commit(&f);
}
