/* safetensors.h — reading and writing Hugging Face .safetensors files (DESIGN §6).
 *
 * Layout: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON (an object; writers pad it with spaces
 * so that 8 + N is a multiple of 8), then the data buffer. The JSON maps each tensor name to
 *   {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
 * (offsets in bytes, relative to the start of the data buffer), plus an optional "__metadata__" object
 * of string -> string. Data is little-endian, C order.
 *
 * Reading follows the reference implementation's validation: the header must start with '{', tensors
 * sorted by offset must tile the data buffer exactly (no gap, no overlap, nothing after the last one),
 * and end - begin must equal numel * dtype size. On top of that this reader refuses duplicate tensor
 * names and metadata keys, more than 8 dimensions and NUL bytes (raw or \u0000) in the header.
 * The data is never read up front: iq_st_read_* pread one tensor at a time, so an open file costs the
 * header only. An open iq_safetensors is immutable; reads from several threads are fine. */
#ifndef IQTRAIN_SAFETENSORS_H
#define IQTRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

typedef enum {
    IQ_DT_F32,
    IQ_DT_F16,
    IQ_DT_BF16,
    IQ_DT_F64,
    IQ_DT_I64,
    IQ_DT_I32,
    IQ_DT_I16,
    IQ_DT_I8,
    IQ_DT_U8,
    IQ_DT_BOOL,
} iq_dtype;

#define IQ_ST_MAX_NDIM 8
/* Largest header the reader accepts (the reference implementation's limit). */
#define IQ_ST_MAX_HEADER ((uint64_t)100000000)

/* Bytes per element (0 for a value outside the enum). */
size_t iq_dtype_size(iq_dtype dt);
/* The format's name: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL" ("?" if invalid). */
const char *iq_dtype_name(iq_dtype dt);
/* Parses a format name (exact, case-sensitive). Returns 0 and sets *dt, or -1 if unknown/unsupported. */
int iq_dtype_parse(const char *name, iq_dtype *dt);

typedef struct {
    char *name;
    iq_dtype dtype;
    int ndim;                       /* 0..8; 0 is a scalar */
    int64_t shape[IQ_ST_MAX_NDIM];  /* unused dims are 0 */
    uint64_t begin, end;            /* byte offsets in the data buffer */
} iq_st_tensor;

typedef struct iq_safetensors iq_safetensors; /* opaque */

/* Opens and validates PATH (see the top of this file for the rules). Only the header is read.
 * Returns 0 and sets *out; 66 if the file cannot be opened (or is a directory); 65 with
 * "PATH: reason" (naming the tensor at fault, if any) for anything malformed; 74 on a read error. */
iq_status iq_st_open(const char *path, iq_safetensors **out);
void iq_st_close(iq_safetensors *st);

int iq_st_count(const iq_safetensors *st);
/* The i-th tensor in the header's order (NULL if i is out of range). */
const iq_st_tensor *iq_st_tensor_at(const iq_safetensors *st, int i);
/* NULL if absent. */
const iq_st_tensor *iq_st_find(const iq_safetensors *st, const char *name);
/* The value of a "__metadata__" key, NULL if absent. */
const char *iq_st_metadata(const iq_safetensors *st, const char *key);
int iq_st_metadata_count(const iq_safetensors *st);
/* The i-th metadata pair in header order; returns the key and sets *value (NULL if out of range). */
const char *iq_st_metadata_at(const iq_safetensors *st, int i, const char **value);
const char *iq_st_path(const iq_safetensors *st);

/* Product of the shape (1 for a scalar). */
int64_t iq_st_numel(const iq_st_tensor *t);
/* end - begin */
uint64_t iq_st_nbytes(const iq_st_tensor *t);

/* Reads tensor t of st (t from iq_st_find / iq_st_tensor_at of the same st) into dst as numel fp32
 * values, converting F16 / BF16 / F64 exactly (F64 rounds to nearest). 65 for any other dtype or when
 * the file is shorter than it was at open (changed underneath); 74 on a read error. */
iq_status iq_st_read_f32(const iq_safetensors *st, const iq_st_tensor *t, float *dst);
/* Reads the raw little-endian bytes of t (end - begin bytes, any dtype) into dst. 65/74 as above. */
iq_status iq_st_read_raw(const iq_safetensors *st, const iq_st_tensor *t, void *dst);

/* ---------------------------------------------------------------- writing */

/* One tensor to write: fp32 data (numel values, may be NULL when numel is 0) stored as dtype, which
 * must be F32, F16 or BF16 (converted with round-to-nearest-even). */
typedef struct {
    const char *name;
    iq_dtype dtype;
    int ndim;
    int64_t shape[IQ_ST_MAX_NDIM];
    const float *data;
} iq_st_entry;

/* Writes PATH atomically: PATH.tmp-PID in the same folder, fsync, rename over PATH, fsync the folder.
 * Tensors are laid out in the given order, contiguously from offset 0; the header is compact JSON with
 * "__metadata__" first (when n_meta > 0), padded with spaces to a multiple of 8 bytes.
 * meta_kv: NULL or 2 * n_meta strings key0, value0, key1, value1, ... (this project passes
 * {"format", "pt"}). Returns 0; 70 for invalid entries (unsupported dtype, ndim outside 0..8, negative
 * dim, NULL or duplicate name, "__metadata__" as a name, NULL data with numel > 0); 73 if the temp file
 * cannot be created; 74 on a write error (a full disk included). After a failure no temp file is left
 * and an existing PATH is untouched. */
iq_status iq_st_write(const char *path, const iq_st_entry *entries, int n, const char *const *meta_kv, int n_meta);

/* Like iq_st_entry but the data is numel * iq_dtype_size(dtype) raw little-endian bytes, any dtype. */
typedef struct {
    const char *name;
    iq_dtype dtype;
    int ndim;
    int64_t shape[IQ_ST_MAX_NDIM];
    const void *bytes;
} iq_st_raw_entry;

/* Same layout, atomicity and status codes as iq_st_write; the bytes are written unchanged. */
iq_status iq_st_write_raw(const char *path, const iq_st_raw_entry *entries, int n, const char *const *meta_kv,
                          int n_meta);

/* ---------------------------------------------------------------- conversions */
/* fp32 -> bf16 / f16 round to nearest, ties to even; overflow gives inf; NaN stays NaN (quiet, sign
 * kept). f16 results below the normal range are correctly rounded subnormals or zero.
 * bf16 / f16 -> fp32 are exact (subnormals, inf, NaN included). */
uint16_t iq_f32_to_bf16(float x);
float iq_bf16_to_f32(uint16_t h);
uint16_t iq_f32_to_f16(float x);
float iq_f16_to_f32(uint16_t h);

#endif
