/* gguf.h — the GGUF container, version 3 (ggml's docs/gguf.md), as llama.cpp reads it.
 *
 * Layout (all little-endian): "GGUF", version u32, tensor count u64, key/value count u64; the key/values
 * (key string, value type u32, value); the tensor infos (name string, n_dims u32, ne[n_dims] u64 with ne[0]
 * the contiguous dimension, ggml type u32, data offset u64); padding to the alignment (32); then each
 * tensor's data at its offset, padded to the alignment. Strings are a u64 length and the bytes, no NUL.
 *
 * Tensor types written: F32, F16, BF16 and Q8_0 (blocks of 32 values: an fp16 scale d = max|x| / 127 and
 * 32 int8 q = round(x / d), rounding half away from zero, as ggml's quantize_row_q8_0_ref).
 *
 * A writer collects the key/values (serialised at once) and the tensor infos; the data are produced one
 * tensor at a time while the file is written (a fill callback), so exporting needs one tensor's memory, and
 * the file is written atomically (a temp file beside it, fsync, rename). */
#ifndef IQTRAIN_GGUF_H
#define IQTRAIN_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

#define IQ_GGUF_ALIGNMENT 32
#define IQ_GGUF_MAX_DIMS 4

/* ggml tensor types (ggml.h's enum ggml_type) */
typedef enum { IQ_GGML_F32 = 0, IQ_GGML_F16 = 1, IQ_GGML_Q8_0 = 8, IQ_GGML_BF16 = 30 } iq_ggml_type;
/* GGUF value types (gguf.h's enum gguf_type) */
typedef enum {
    IQ_GGUF_U8 = 0, IQ_GGUF_I8 = 1, IQ_GGUF_U16 = 2, IQ_GGUF_I16 = 3, IQ_GGUF_U32 = 4, IQ_GGUF_I32 = 5,
    IQ_GGUF_F32 = 6, IQ_GGUF_BOOL = 7, IQ_GGUF_STRING = 8, IQ_GGUF_ARRAY = 9, IQ_GGUF_U64 = 10, IQ_GGUF_I64 = 11,
    IQ_GGUF_F64 = 12
} iq_gguf_value_type;

#define IQ_Q8_0_BLOCK 32 /* values per Q8_0 block */
#define IQ_Q8_0_BYTES 34 /* bytes per Q8_0 block: fp16 d, 32 x int8 */

/* "F32", "F16", "BF16", "Q8_0". */
const char *iq_ggml_type_name(iq_ggml_type t);
/* Bytes of a row of n values of type t (n a multiple of 32 for Q8_0). */
size_t iq_ggml_row_bytes(iq_ggml_type t, int64_t n);
/* Converts n fp32 values to type t into out (iq_ggml_row_bytes(t, n) bytes; n a multiple of 32 for Q8_0). */
void iq_ggml_convert(iq_ggml_type t, const float *x, int64_t n, uint8_t *out);
/* One Q8_0 block of 32 values (34 bytes), as ggml's quantize_row_q8_0_ref. */
void iq_q8_0_block(const float *x, uint8_t out[IQ_Q8_0_BYTES]);

typedef struct iq_gguf iq_gguf;

/* Writes tensor number `index`'s values as fp32, ne[0] fastest, into out (the tensor's element count). */
typedef void (*iq_gguf_fill_fn)(void *ctx, int index, float *out);

iq_gguf *iq_gguf_new(void);
void iq_gguf_free(iq_gguf *g);

/* Key/values, in the order they are set. A key set twice is the caller's bug (70 at write). */
void iq_gguf_u32(iq_gguf *g, const char *key, uint32_t v);
void iq_gguf_f32(iq_gguf *g, const char *key, float v);
void iq_gguf_bool(iq_gguf *g, const char *key, bool v);
void iq_gguf_str(iq_gguf *g, const char *key, const char *s);
void iq_gguf_strn(iq_gguf *g, const char *key, const void *s, size_t n);
/* An array of n values of elem_type, followed by exactly n iq_gguf_arr_* calls (checked at write). */
void iq_gguf_arr_begin(iq_gguf *g, const char *key, iq_gguf_value_type elem_type, uint64_t n);
void iq_gguf_arr_str(iq_gguf *g, const void *s, size_t n);
void iq_gguf_arr_i32(iq_gguf *g, int32_t v);
/* Keys set so far. */
uint64_t iq_gguf_n_kv(const iq_gguf *g);

/* Declares a tensor (names are at most 63 bytes, as ggml's GGML_MAX_NAME - 1): its dimensions ne[0..n_dims)
 * and the type to store; its values come from fill(ctx, index, ...) at write time, index being the order of
 * the declarations (0, 1, ...). */
void iq_gguf_tensor(iq_gguf *g, const char *name, int n_dims, const int64_t *ne, iq_ggml_type type);
int iq_gguf_n_tensors(const iq_gguf *g);
/* Total bytes of the tensor data (with padding). */
uint64_t iq_gguf_data_bytes(const iq_gguf *g);

/* Writes the file atomically. 73 when it cannot be created, 74 on a write error, 70 for a malformed
 * writer (an unfinished array, a duplicate key or tensor name, a Q8_0 row not a multiple of 32). */
iq_status iq_gguf_write(iq_gguf *g, const char *path, iq_gguf_fill_fn fill, void *ctx);

#endif
