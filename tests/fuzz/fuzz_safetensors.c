/* fuzz_safetensors.c — .safetensors headers and files: iq_st_open, iq_st_read_raw, iq_st_read_f32 and the
 * writer on what was read (include/iqtrain/safetensors.h).
 *
 * The input is the whole file (8-byte header length, JSON header, data). Properties: only 0 / 65 come
 * back, with a message; an accepted file's tensors have a known dtype, at most 8 dims, numel * size ==
 * end - begin, and tile the data buffer; lookups by name and metadata key find what iteration shows;
 * every tensor reads raw (and as fp32 when it is F32/F16/BF16/F64, equal to converting the raw bytes);
 * writing the tensors back with iq_st_write_raw and opening that file gives the same tensors and bytes. */
#include <math.h>

#include "fuzz_common.h"
#include "iqtrain/safetensors.h"

static char g_in[600], g_out[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_path(g_in, sizeof g_in, "in.safetensors");
    fuzz_path(g_out, sizeof g_out, "out.safetensors");
    return 0;
}

static float raw_to_f32(iq_dtype dt, const uint8_t *p) {
    switch (dt) {
    case IQ_DT_F32: {
        uint32_t b = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float x;
        memcpy(&x, &b, 4);
        return x;
    }
    case IQ_DT_F16: return iq_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    case IQ_DT_BF16: return iq_bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
    case IQ_DT_F64: {
        uint64_t b = 0;
        for (int i = 7; i >= 0; i--) b = b << 8 | p[i];
        double x;
        memcpy(&x, &b, 8);
        return (float)x;
    }
    default: return 0;
    }
}

static bool same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fuzz_eq(&a, &b, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(g_in, data, size);
    iq_safetensors *st = NULL;
    iq_status rc = iq_st_open(g_in, &st);
    FUZZ_CHECK(rc == IQ_OK || rc == IQ_EDATA, "status %d: %s", (int)rc, iq_last_error());
    FUZZ_CHECK((rc == IQ_OK) == (st != NULL), "status and handle disagree");
    if (rc) {
        FUZZ_CHECK(strlen(iq_last_error()) > 0, "a failure without a message");
        return 0;
    }
    int n = iq_st_count(st);
    uint64_t total = 0;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    FUZZ_CHECK(n >= 0 && iq_st_tensor_at(st, n) == NULL && iq_st_tensor_at(st, -1) == NULL, "count %d", n);
    iq_st_raw_entry *entries = calloc((size_t)n + 1, sizeof *entries);
    void **bufs = calloc((size_t)n + 1, sizeof *bufs);
    for (int i = 0; i < n; i++) {
        const iq_st_tensor *t = iq_st_tensor_at(st, i);
        FUZZ_CHECK(t && t->name && iq_st_find(st, t->name) == t, "tensor %d lookup", i);
        FUZZ_CHECK(iq_dtype_size(t->dtype) > 0 && t->ndim >= 0 && t->ndim <= IQ_ST_MAX_NDIM, "tensor %d dtype/ndim", i);
        int64_t numel = iq_st_numel(t);
        uint64_t nb = iq_st_nbytes(t);
        FUZZ_CHECK(numel >= 0 && (uint64_t)numel * iq_dtype_size(t->dtype) == nb, "tensor %d: numel %lld, %llu bytes", i,
                   (long long)numel, (unsigned long long)nb);
        FUZZ_CHECK(t->end >= t->begin && 8 + hlen + t->end <= size, "tensor %d outside the file", i);
        total += nb;
        uint8_t *raw = malloc(nb ? nb : 1);
        rc = iq_st_read_raw(st, t, raw);
        FUZZ_CHECK(rc == IQ_OK, "read_raw %d: %s", i, iq_last_error());
        FUZZ_CHECK(nb == 0 || fuzz_eq(raw, data + 8 + hlen + t->begin, nb), "read_raw %d: wrong bytes", i);
        if (t->dtype == IQ_DT_F32 || t->dtype == IQ_DT_F16 || t->dtype == IQ_DT_BF16 || t->dtype == IQ_DT_F64) {
            float *f = malloc((size_t)numel * sizeof *f + 1);
            rc = iq_st_read_f32(st, t, f);
            FUZZ_CHECK(rc == IQ_OK, "read_f32 %d: %s", i, iq_last_error());
            size_t es = iq_dtype_size(t->dtype);
            for (int64_t k = 0; k < numel; k++)
                FUZZ_CHECK(same_float(f[k], raw_to_f32(t->dtype, raw + (size_t)k * es)), "read_f32 %d: element %lld", i,
                           (long long)k);
            free(f);
        } else {
            FUZZ_CHECK(iq_st_read_f32(st, t, NULL) == IQ_EDATA, "read_f32 of %s accepted", iq_dtype_name(t->dtype));
        }
        entries[i] = (iq_st_raw_entry){t->name, t->dtype, t->ndim, {0}, raw};
        memcpy(entries[i].shape, t->shape, sizeof t->shape);
        bufs[i] = raw;
    }
    FUZZ_CHECK(8 + hlen + total == size, "tensors cover %llu of %zu bytes", (unsigned long long)(8 + hlen + total), size);

    int nm = iq_st_metadata_count(st);
    const char **kv = calloc((size_t)nm * 2 + 1, sizeof *kv);
    for (int i = 0; i < nm; i++) {
        const char *v = NULL, *k = iq_st_metadata_at(st, i, &v);
        FUZZ_CHECK(k && v && iq_st_metadata(st, k) == v, "metadata %d lookup", i);
        kv[2 * i] = k;
        kv[2 * i + 1] = v;
    }

    /* write back (in header order, so the offsets may change) and compare */
    rc = iq_st_write_raw(g_out, entries, n, kv, nm);
    FUZZ_CHECK(rc == IQ_OK, "write_raw: %s", iq_last_error());
    iq_safetensors *st2 = NULL;
    rc = iq_st_open(g_out, &st2);
    FUZZ_CHECK(rc == IQ_OK, "reopening the written file: %s", iq_last_error());
    FUZZ_CHECK(iq_st_count(st2) == n && iq_st_metadata_count(st2) == nm, "written file: %d tensors, %d metadata",
               iq_st_count(st2), iq_st_metadata_count(st2));
    for (int i = 0; i < n; i++) {
        const iq_st_tensor *a = iq_st_tensor_at(st, i), *b = iq_st_tensor_at(st2, i);
        FUZZ_CHECK(strcmp(a->name, b->name) == 0 && a->dtype == b->dtype && a->ndim == b->ndim &&
                       fuzz_eq(a->shape, b->shape, sizeof a->shape) && iq_st_nbytes(a) == iq_st_nbytes(b),
                   "written tensor %d differs", i);
        uint8_t *raw = malloc(iq_st_nbytes(b) ? iq_st_nbytes(b) : 1);
        FUZZ_CHECK(iq_st_read_raw(st2, b, raw) == IQ_OK, "reading back %d", i);
        FUZZ_CHECK(iq_st_nbytes(b) == 0 || fuzz_eq(raw, bufs[i], iq_st_nbytes(b)), "written bytes of %d differ", i);
        free(raw);
    }
    for (int i = 0; i < nm; i++) {
        const char *v2 = NULL, *k2 = iq_st_metadata_at(st2, i, &v2);
        FUZZ_CHECK(strcmp(k2, kv[2 * i]) == 0 && strcmp(v2, kv[2 * i + 1]) == 0, "written metadata %d differs", i);
    }
    iq_st_close(st2);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(entries);
    free(kv);
    iq_st_close(st);
    return 0;
}
