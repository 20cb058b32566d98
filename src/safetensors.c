/* safetensors.c — the .safetensors format: dtypes, fp16/bf16 conversions, the validating reader, the
 * streaming atomic writer.
 *
 * Sections: dtypes · conversions · byte order and I/O helpers · opening (header validation) · reading
 * tensors · writing. */
#include "iqtrain/safetensors.h"

#include "iqtrain/fault.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iqtrain/unicode.h"

// ----------------------------------------------------------------------------------------------------
// dtypes

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    [IQ_DT_F32] = {"F32", 4},  [IQ_DT_F16] = {"F16", 2}, [IQ_DT_BF16] = {"BF16", 2}, [IQ_DT_F64] = {"F64", 8},
    [IQ_DT_I64] = {"I64", 8},  [IQ_DT_I32] = {"I32", 4}, [IQ_DT_I16] = {"I16", 2},   [IQ_DT_I8] = {"I8", 1},
    [IQ_DT_U8] = {"U8", 1},    [IQ_DT_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

static int dtype_ok(iq_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES; }

size_t iq_dtype_size(iq_dtype dt) { return dtype_ok(dt) ? DTYPES[dt].size : 0; }

const char *iq_dtype_name(iq_dtype dt) { return dtype_ok(dt) ? DTYPES[dt].name : "?"; }

int iq_dtype_parse(const char *name, iq_dtype *dt) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(name, DTYPES[i].name) == 0) {
            *dt = (iq_dtype)i;
            return 0;
        }
    return -1;
}

// ----------------------------------------------------------------------------------------------------
// conversions

static uint32_t f32_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

static float bits_f32(uint32_t b) {
    float x;
    memcpy(&x, &b, 4);
    return x;
}

uint16_t iq_f32_to_bf16(float x) {
    uint32_t b = f32_bits(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((b >> 16) | 0x0040u); /* NaN: keep it a (quiet) NaN */
    b += 0x7FFFu + ((b >> 16) & 1u);                                              /* ties to even; may carry to inf */
    return (uint16_t)(b >> 16);
}

float iq_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t iq_f32_to_f16(float x) {
    uint32_t b = f32_bits(x);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)); /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520 (half-way past 65504, tie to even) -> inf */
    if (a >= 0x38800000u) {                                  /* normal f16: >= 2^-14 */
        uint32_t r = a - 0x38000000u;                        /* rebias the exponent: 127 - 15 = 112 */
        r += 0xFFFu + ((r >> 13) & 1u);                      /* ties to even; a carry bumps the exponent */
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25: rounds to zero (2^-25 itself is a tie to even 0) */
    /* subnormal f16: value = m * 2^-24 with m = round(mant * 2^(exp - 150) / 2^-24) */
    uint32_t exp = a >> 23;                       /* 102..112 here */
    uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;  /* with the implicit bit */
    uint32_t shift = 126 - exp;                   /* 14..24 */
    uint32_t m = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1u))) m++; /* m == 0x400 is the smallest normal: still right */
    return (uint16_t)(sign | m);
}

float iq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13)); /* inf, NaN (payload kept) */
    if (exp != 0) return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) return bits_f32(sign); /* +-0 */
    /* subnormal m * 2^-24: normalise so the leading bit sits at 0x400 (exponent field 113 - shifts) */
    uint32_t e = 113;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return bits_f32(sign | (e << 23) | ((mant & 0x3FFu) << 13));
}

// ----------------------------------------------------------------------------------------------------
// byte order and I/O helpers

static int host_is_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads up to n bytes at off. Returns 0 and the count in *got (short only at end of file), or an errno. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off, size_t *got) {
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            *got = done;
            return errno ? errno : EIO;
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* How much of a hostile tensor name goes into a message. */
#define NAME_SHOW 120

// ----------------------------------------------------------------------------------------------------
// opening

struct iq_safetensors {
    char *path;
    int fd;
    uint64_t file_size;
    uint64_t data_start; /* 8 + header length */
    uint64_t data_len;   /* file_size - data_start */
    int n;
    iq_st_tensor *tensors; /* (n) in header order */
    iq_strmap *index;      /* name -> position in tensors */
    int n_meta;
    char **meta; /* (2 * n_meta) key, value, ... in header order */
};

/* 65 with "PATH: reason". */
static iq_status bad(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static iq_status bad(const char *path, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return iq_fail(IQ_EDATA, "%s: %s", path, msg);
}

/* A JSON number that is an integer in [0, 2^53) (beyond that doubles stop being exact). */
static int json_uint(const cJSON *item, uint64_t *v) {
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d < 9007199254740992.0)) return 0; /* also refuses NaN */
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0; /* fractional */
    *v = u;
    return 1;
}

/* "[2, 3]" into buf */
static const char *shape_str(const iq_st_tensor *t, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* Fills t (name already set) from a header entry; checks everything about it except the tiling. */
static iq_status parse_tensor(const char *path, const cJSON *e, iq_st_tensor *t, uint64_t data_len) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e)) return bad(path, "tensor '%.*s': entry is not a JSON object", NAME_SHOW, nm);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(jd)) return bad(path, "tensor '%.*s': missing or non-string \"dtype\"", NAME_SHOW, nm);
    if (iq_dtype_parse(jd->valuestring, &t->dtype) != 0)
        return bad(path, "tensor '%.*s': unknown or unsupported dtype '%.32s'", NAME_SHOW, nm, jd->valuestring);

    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(js)) return bad(path, "tensor '%.*s': missing or non-array \"shape\"", NAME_SHOW, nm);
    int nd = cJSON_GetArraySize(js);
    if (nd > IQ_ST_MAX_NDIM)
        return bad(path, "tensor '%.*s': %d dimensions (at most %d supported)", NAME_SHOW, nm, nd, IQ_ST_MAX_NDIM);
    t->ndim = 0;
    for (const cJSON *d = js->child; d; d = d->next) {
        uint64_t v;
        if (!json_uint(d, &v))
            return bad(path, "tensor '%.*s': shape[%d] is not an integer in [0, 2^53)", NAME_SHOW, nm, t->ndim);
        t->shape[t->ndim++] = (int64_t)v;
    }

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return bad(path, "tensor '%.*s': \"data_offsets\" is missing or not an array of two integers", NAME_SHOW, nm);
    if (!json_uint(jo->child, &t->begin) || !json_uint(jo->child->next, &t->end))
        return bad(path, "tensor '%.*s': data_offsets are not integers in [0, 2^53)", NAME_SHOW, nm);
    if (t->end < t->begin)
        return bad(path, "tensor '%.*s': data_offsets [%llu, %llu] end before they begin", NAME_SHOW, nm,
                   (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_len)
        return bad(path, "tensor '%.*s': data_offsets [%llu, %llu] go past the end of the data buffer (%llu bytes)",
                   NAME_SHOW, nm, (unsigned long long)t->begin, (unsigned long long)t->end,
                   (unsigned long long)data_len);

    char sh[256];
    uint64_t bytes = iq_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++)
        if (__builtin_mul_overflow(bytes, (uint64_t)t->shape[d], &bytes))
            return bad(path, "tensor '%.*s': shape %s of %s overflows a 64-bit byte count", NAME_SHOW, nm,
                       shape_str(t, sh, sizeof sh), iq_dtype_name(t->dtype));
    if (bytes != t->end - t->begin)
        return bad(path, "tensor '%.*s': shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                   NAME_SHOW, nm, shape_str(t, sh, sizeof sh), iq_dtype_name(t->dtype), (unsigned long long)bytes,
                   (unsigned long long)t->begin, (unsigned long long)t->end,
                   (unsigned long long)(t->end - t->begin));
    return IQ_OK;
}

typedef struct {
    uint64_t begin, end;
    int idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The reference implementation's rule: sorted by offset, the tensors tile [0, data_len) exactly. */
static iq_status check_tiling(const iq_safetensors *st) {
    if (st->n == 0) {
        if (st->data_len != 0)
            return bad(st->path, "%llu bytes of data but no tensors", (unsigned long long)st->data_len);
        return IQ_OK;
    }
    span *s = iq_xmalloc((size_t)st->n * sizeof *s);
    for (int i = 0; i < st->n; i++) s[i] = (span){st->tensors[i].begin, st->tensors[i].end, i};
    qsort(s, (size_t)st->n, sizeof *s, span_cmp);
    uint64_t pos = 0;
    int prev = -1; /* the tensor that ends at pos */
    iq_status rc = IQ_OK;
    for (int i = 0; i < st->n && rc == IQ_OK; i++) {
        const iq_st_tensor *t = &st->tensors[s[i].idx];
        if (s[i].begin < pos) {
            const iq_st_tensor *p = &st->tensors[prev];
            rc = bad(st->path, "tensors '%.*s' [%llu, %llu] and '%.*s' [%llu, %llu] overlap", NAME_SHOW, p->name,
                     (unsigned long long)p->begin, (unsigned long long)p->end, NAME_SHOW, t->name,
                     (unsigned long long)t->begin, (unsigned long long)t->end);
        } else if (s[i].begin > pos) {
            rc = bad(st->path, "gap of %llu bytes in the data buffer before tensor '%.*s' [%llu, %llu]",
                     (unsigned long long)(s[i].begin - pos), NAME_SHOW, t->name, (unsigned long long)t->begin,
                     (unsigned long long)t->end);
        } else {
            pos = s[i].end;
            prev = s[i].idx;
        }
    }
    if (rc == IQ_OK && pos != st->data_len)
        rc = bad(st->path, "%llu unused bytes after the last tensor '%.*s' (the data buffer is %llu bytes)",
                 (unsigned long long)(st->data_len - pos), NAME_SHOW, st->tensors[prev].name,
                 (unsigned long long)st->data_len);
    free(s);
    return rc;
}

static iq_status parse_metadata(iq_safetensors *st, const cJSON *m) {
    if (cJSON_IsNull(m)) return IQ_OK; /* the reference reads null as "no metadata" */
    if (!cJSON_IsObject(m)) return bad(st->path, "\"__metadata__\" is not a JSON object");
    int n = cJSON_GetArraySize(m);
    st->meta = iq_xcalloc((size_t)n * 2 + 1, sizeof *st->meta);
    iq_strmap *seen = iq_strmap_new((size_t)n);
    iq_status rc = IQ_OK;
    for (const cJSON *kv = m->child; kv && rc == IQ_OK; kv = kv->next) {
        if (!cJSON_IsString(kv))
            rc = bad(st->path, "\"__metadata__\" value of '%.*s' is not a string", NAME_SHOW, kv->string);
        else if (!iq_strmap_put(seen, kv->string, strlen(kv->string), 0))
            rc = bad(st->path, "duplicate \"__metadata__\" key '%.*s'", NAME_SHOW, kv->string);
        else {
            st->meta[2 * st->n_meta] = iq_xstrdup(kv->string);
            st->meta[2 * st->n_meta + 1] = iq_xstrdup(kv->valuestring);
            st->n_meta++;
        }
    }
    iq_strmap_free(seen);
    return rc;
}

/* Validates the header text h[0..len) (h[len] == 0) and fills st. */
static iq_status parse_header(iq_safetensors *st, const char *h, size_t len) {
    const char *path = st->path;
    const char *nul = memchr(h, 0, len);
    if (nul) return bad(path, "header contains a NUL byte at offset %zu", (size_t)(nul - h));
    size_t badpos;
    if (!iq_utf8_valid((const uint8_t *)h, len, &badpos))
        return bad(path, "header is not valid UTF-8 (byte %zu)", badpos);
    /* cJSON would decode \u0000 into a NUL and silently cut the string: refuse it. Outside strings a
     * backslash is invalid JSON anyway, so escapes can be skipped pairwise without tracking quotes. */
    for (size_t i = 0; i + 1 < len; i++) {
        if (h[i] != '\\') continue;
        if (h[i + 1] == 'u' && i + 6 <= len && memcmp(h + i + 2, "0000", 4) == 0)
            return bad(path, "header contains an escaped NUL (\\u0000) at offset %zu", i);
        i++;
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, len, &end, 0);
    if (!root) {
        size_t at = (end && end >= h && end <= h + len) ? (size_t)(end - h) : 0;
        return bad(path, "header is not valid JSON (near byte %zu of %zu)", at, len);
    }
    iq_status rc = IQ_OK;
    if (!cJSON_IsObject(root)) {
        rc = bad(path, "header is not a JSON object");
        goto done;
    }
    if (h[0] != '{') {
        rc = bad(path, "header does not start with '{'");
        goto done;
    }
    for (const char *p = end; p < h + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = bad(path, "header has bytes after the JSON object (offset %zu)", (size_t)(p - h));
            goto done;
        }

    int n_items = cJSON_GetArraySize(root);
    st->tensors = iq_xcalloc((size_t)n_items + 1, sizeof *st->tensors);
    st->index = iq_strmap_new((size_t)n_items);
    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta++) {
                rc = bad(path, "duplicate \"__metadata__\"");
                goto done;
            }
            if ((rc = parse_metadata(st, e)) != IQ_OK) goto done;
            continue;
        }
        size_t nl = strlen(e->string);
        if (!iq_strmap_put(st->index, e->string, nl, st->n)) {
            rc = bad(path, "duplicate tensor name '%.*s'", NAME_SHOW, e->string);
            goto done;
        }
        iq_st_tensor *t = &st->tensors[st->n++];
        t->name = iq_xstrndup(e->string, nl);
        if ((rc = parse_tensor(path, e, t, st->data_len)) != IQ_OK) goto done;
    }
    rc = check_tiling(st);
done:
    cJSON_Delete(root);
    return rc;
}

iq_status iq_st_open(const char *path, iq_safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block us */
    if (fd < 0) return iq_fail(IQ_ENOINPUT, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return iq_fail(IQ_ENOINPUT, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return iq_fail(IQ_ENOINPUT, "%s: is a directory", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return iq_fail(IQ_ENOINPUT, "%s: not a regular file", path);
    }

    iq_safetensors *st = iq_xcalloc(1, sizeof *st);
    st->path = iq_xstrdup(path);
    st->fd = fd;
    st->file_size = (uint64_t)sb.st_size;
    char *hdr = NULL;
    iq_status rc;
    if (st->file_size == 0) {
        rc = bad(path, "empty file");
        goto fail;
    }
    if (st->file_size < 8) {
        rc = bad(path, "file is %llu bytes, too short for the 8-byte header length", (unsigned long long)st->file_size);
        goto fail;
    }
    uint8_t lenbuf[8];
    size_t got;
    int err = pread_full(fd, lenbuf, 8, 0, &got);
    if (err) {
        rc = iq_fail(IQ_EIO, "%s: read error: %s", path, strerror(err));
        goto fail;
    }
    if (got < 8) {
        rc = bad(path, "file shrank while being opened");
        goto fail;
    }
    uint64_t n = le64(lenbuf);
    if (n > st->file_size - 8) {
        rc = bad(path, "header length %llu goes past the end of the file (%llu bytes)", (unsigned long long)n,
                 (unsigned long long)st->file_size);
        goto fail;
    }
    if (n > IQ_ST_MAX_HEADER) {
        rc = bad(path, "header length %llu exceeds the %llu-byte limit", (unsigned long long)n,
                 (unsigned long long)IQ_ST_MAX_HEADER);
        goto fail;
    }
    if (n < 2) {
        rc = bad(path, "header length %llu is too small for a JSON object", (unsigned long long)n);
        goto fail;
    }
    st->data_start = 8 + n;
    st->data_len = st->file_size - st->data_start;
    hdr = iq_xmalloc((size_t)n + 1); /* n <= 100 MB and within the file */
    err = pread_full(fd, hdr, (size_t)n, 8, &got);
    if (err) {
        rc = iq_fail(IQ_EIO, "%s: read error: %s", path, strerror(err));
        goto fail;
    }
    if (got < n) {
        rc = bad(path, "file shrank while being opened");
        goto fail;
    }
    hdr[n] = 0;
    if ((rc = parse_header(st, hdr, (size_t)n)) != IQ_OK) goto fail;
    free(hdr);
    *out = st;
    return IQ_OK;
fail:
    free(hdr);
    iq_st_close(st);
    return rc;
}

void iq_st_close(iq_safetensors *st) {
    if (!st) return;
    if (st->fd >= 0) close(st->fd);
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    iq_strmap_free(st->index);
    for (int i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->meta);
    free(st->path);
    free(st);
}

int iq_st_count(const iq_safetensors *st) { return st->n; }

const iq_st_tensor *iq_st_tensor_at(const iq_safetensors *st, int i) {
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const iq_st_tensor *iq_st_find(const iq_safetensors *st, const char *name) {
    int32_t i;
    return iq_strmap_get(st->index, name, strlen(name), &i) ? &st->tensors[i] : NULL;
}

const char *iq_st_metadata(const iq_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

int iq_st_metadata_count(const iq_safetensors *st) { return st->n_meta; }

const char *iq_st_metadata_at(const iq_safetensors *st, int i, const char **value) {
    if (i < 0 || i >= st->n_meta) return NULL;
    if (value) *value = st->meta[2 * i + 1];
    return st->meta[2 * i];
}

const char *iq_st_path(const iq_safetensors *st) { return st->path; }

int64_t iq_st_numel(const iq_st_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d]; /* validated: n * dtype size <= file size */
    return n;
}

uint64_t iq_st_nbytes(const iq_st_tensor *t) { return t->end - t->begin; }

// ----------------------------------------------------------------------------------------------------
// reading tensors

static int owns(const iq_safetensors *st, const iq_st_tensor *t) {
    uintptr_t p = (uintptr_t)t, b = (uintptr_t)st->tensors;
    return t && p >= b && p < b + (uintptr_t)st->n * sizeof *t && (p - b) % sizeof *t == 0;
}

/* Reads nb bytes of t starting at byte `off` within the tensor. */
static iq_status read_bytes(const iq_safetensors *st, const iq_st_tensor *t, uint64_t off, void *dst, size_t nb) {
    size_t got;
    int err = pread_full(st->fd, dst, nb, st->data_start + t->begin + off, &got);
    if (err)
        return iq_fail(IQ_EIO, "%s: read error in tensor '%.*s': %s", st->path, NAME_SHOW, t->name, strerror(err));
    if (got < nb)
        return bad(st->path, "file ended inside tensor '%.*s' (was it changed after opening?)", NAME_SHOW, t->name);
    return IQ_OK;
}

iq_status iq_st_read_raw(const iq_safetensors *st, const iq_st_tensor *t, void *dst) {
    if (!owns(st, t)) return iq_fail(IQ_EINTERNAL, "%s: tensor does not belong to this file", st->path);
    return read_bytes(st, t, 0, dst, (size_t)(t->end - t->begin));
}

iq_status iq_st_read_f32(const iq_safetensors *st, const iq_st_tensor *t, float *dst) {
    if (!owns(st, t)) return iq_fail(IQ_EINTERNAL, "%s: tensor does not belong to this file", st->path);
    if (t->dtype == IQ_DT_F32) {
        iq_status rc = read_bytes(st, t, 0, dst, (size_t)(t->end - t->begin));
        if (rc == IQ_OK && !host_is_le()) {
            size_t n = (size_t)iq_st_numel(t);
            uint8_t *p = (uint8_t *)dst;
            for (size_t i = 0; i < n; i++, p += 4) {
                uint8_t a = p[0], b = p[1];
                p[0] = p[3], p[1] = p[2], p[2] = b, p[3] = a;
            }
        }
        return rc;
    }
    if (t->dtype != IQ_DT_F16 && t->dtype != IQ_DT_BF16 && t->dtype != IQ_DT_F64)
        return bad(st->path, "tensor '%.*s' has dtype %s, expected F32, F16, BF16 or F64", NAME_SHOW, t->name,
                   iq_dtype_name(t->dtype));
    const size_t es = iq_dtype_size(t->dtype), chunk = 8192; /* elements per read */
    uint8_t *buf = iq_xmalloc(chunk * es);
    size_t n = (size_t)iq_st_numel(t);
    iq_status rc = IQ_OK;
    for (size_t i0 = 0; i0 < n && rc == IQ_OK; i0 += chunk) {
        size_t k = n - i0 < chunk ? n - i0 : chunk;
        if ((rc = read_bytes(st, t, (uint64_t)i0 * es, buf, k * es)) != IQ_OK) break;
        const uint8_t *p = buf;
        float *o = dst + i0;
        if (t->dtype == IQ_DT_F16)
            for (size_t i = 0; i < k; i++, p += 2) o[i] = iq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
        else if (t->dtype == IQ_DT_BF16)
            for (size_t i = 0; i < k; i++, p += 2) o[i] = iq_bf16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
        else
            for (size_t i = 0; i < k; i++, p += 8) {
                uint64_t u = le64(p);
                double d;
                memcpy(&d, &u, 8);
                o[i] = (float)d;
            }
    }
    free(buf);
    return rc;
}

// ----------------------------------------------------------------------------------------------------
// writing

typedef struct {
    const char *name;
    iq_dtype dtype;
    int ndim;
    const int64_t *shape;
    int from_f32;     /* data is fp32 to convert (iq_st_write), else raw bytes (iq_st_write_raw) */
    const void *data; /* may be NULL when the tensor is empty */
    uint64_t numel, nbytes;
} wtensor;

static void json_str(iq_buf *b, const char *s) {
    iq_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            iq_buf_putc(b, '\\');
            iq_buf_putc(b, (char)*p);
        } else if (*p < 0x20) {
            switch (*p) {
            case '\b': iq_buf_append(b, "\\b", 2); break;
            case '\f': iq_buf_append(b, "\\f", 2); break;
            case '\n': iq_buf_append(b, "\\n", 2); break;
            case '\r': iq_buf_append(b, "\\r", 2); break;
            case '\t': iq_buf_append(b, "\\t", 2); break;
            default: iq_buf_printf(b, "\\u%04x", *p);
            }
        } else {
            iq_buf_putc(b, (char)*p);
        }
    }
    iq_buf_putc(b, '"');
}

static iq_status check_utf8_arg(const char *path, const char *what, const char *s) {
    if (!s) return iq_fail(IQ_EINTERNAL, "%s: %s is NULL", path, what);
    if (!iq_utf8_valid((const uint8_t *)s, strlen(s), NULL))
        return iq_fail(IQ_EINTERNAL, "%s: %s '%.*s' is not valid UTF-8", path, what, NAME_SHOW, s);
    return IQ_OK;
}

/* Checks the entries and metadata and builds the padded header; 70 on a caller error. */
static iq_status build_header(const char *path, wtensor *w, int n, const char *const *meta_kv, int n_meta,
                              iq_buf *hb) {
    iq_status rc;
    if (n < 0 || n_meta < 0 || (n_meta > 0 && !meta_kv))
        return iq_fail(IQ_EINTERNAL, "%s: invalid tensor or metadata count", path);
    iq_buf_putc(hb, '{');
    if (n_meta > 0) {
        iq_buf_append(hb, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_meta; i++) {
            if ((rc = check_utf8_arg(path, "metadata key", meta_kv[2 * i])) != IQ_OK) return rc;
            if ((rc = check_utf8_arg(path, "metadata value", meta_kv[2 * i + 1])) != IQ_OK) return rc;
            for (int j = 0; j < i; j++)
                if (strcmp(meta_kv[2 * j], meta_kv[2 * i]) == 0)
                    return iq_fail(IQ_EINTERNAL, "%s: duplicate metadata key '%.*s'", path, NAME_SHOW, meta_kv[2 * i]);
            if (i) iq_buf_putc(hb, ',');
            json_str(hb, meta_kv[2 * i]);
            iq_buf_putc(hb, ':');
            json_str(hb, meta_kv[2 * i + 1]);
        }
        iq_buf_putc(hb, '}');
    }
    iq_strmap *names = iq_strmap_new((size_t)n);
    uint64_t off = 0;
    rc = IQ_OK;
    for (int i = 0; i < n && rc == IQ_OK; i++) {
        wtensor *t = &w[i];
        if ((rc = check_utf8_arg(path, "tensor name", t->name)) != IQ_OK) break;
        if (strcmp(t->name, "__metadata__") == 0) {
            rc = iq_fail(IQ_EINTERNAL, "%s: \"__metadata__\" cannot be a tensor name", path);
            break;
        }
        if (!iq_strmap_put(names, t->name, strlen(t->name), i)) {
            rc = iq_fail(IQ_EINTERNAL, "%s: duplicate tensor name '%.*s'", path, NAME_SHOW, t->name);
            break;
        }
        if (!dtype_ok(t->dtype) ||
            (t->from_f32 && t->dtype != IQ_DT_F32 && t->dtype != IQ_DT_F16 && t->dtype != IQ_DT_BF16)) {
            rc = iq_fail(IQ_EINTERNAL, "%s: tensor '%.*s': dtype %s cannot be written from fp32", path, NAME_SHOW,
                         t->name, iq_dtype_name(t->dtype));
            break;
        }
        if (t->ndim < 0 || t->ndim > IQ_ST_MAX_NDIM) {
            rc = iq_fail(IQ_EINTERNAL, "%s: tensor '%.*s': ndim %d outside 0..%d", path, NAME_SHOW, t->name, t->ndim,
                         IQ_ST_MAX_NDIM);
            break;
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim && rc == IQ_OK; d++)
            if (t->shape[d] < 0 || __builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel))
                rc = iq_fail(IQ_EINTERNAL, "%s: tensor '%.*s': bad dimension %lld", path, NAME_SHOW, t->name,
                             (long long)t->shape[d]);
        if (rc != IQ_OK) break;
        t->numel = numel;
        if (__builtin_mul_overflow(numel, (uint64_t)iq_dtype_size(t->dtype), &t->nbytes) ||
            __builtin_add_overflow(off, t->nbytes, &off) || off >= ((uint64_t)1 << 53)) {
            rc = iq_fail(IQ_EINTERNAL, "%s: tensor '%.*s': too large", path, NAME_SHOW, t->name);
            break;
        }
        if (numel > 0 && !t->data) {
            rc = iq_fail(IQ_EINTERNAL, "%s: tensor '%.*s': no data", path, NAME_SHOW, t->name);
            break;
        }
        if (i || n_meta > 0) iq_buf_putc(hb, ',');
        json_str(hb, t->name);
        iq_buf_printf(hb, ":{\"dtype\":\"%s\",\"shape\":[", iq_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) iq_buf_printf(hb, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        iq_buf_printf(hb, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)(off - t->nbytes),
                      (unsigned long long)off);
    }
    iq_strmap_free(names);
    if (rc != IQ_OK) return rc;
    iq_buf_putc(hb, '}');
    while (hb->len % 8) iq_buf_putc(hb, ' ');
    return IQ_OK;
}

typedef struct {
    iq_atomic_file *af;
    uint8_t *buf; /* staging for converted data */
    size_t len, cap;
} wfile;

static void wf_flush(wfile *f) {
    iq_atomic_write(f->af, f->buf, f->len);
    f->len = 0;
}

/* Streams one tensor's data. */
static void write_tensor_data(wfile *f, const wtensor *t) {
    if (t->nbytes == 0) return;
    if (!t->from_f32 || (t->dtype == IQ_DT_F32 && host_is_le())) {
        wf_flush(f);
        iq_atomic_write(f->af, t->data, (size_t)t->nbytes);
        return;
    }
    const float *x = t->data;
    for (uint64_t i = 0; i < t->numel && !f->af->err; i++) {
        if (f->cap - f->len < 4) wf_flush(f);
        uint8_t *p = f->buf + f->len;
        if (t->dtype == IQ_DT_F32) {
            uint32_t u = f32_bits(x[i]);
            p[0] = (uint8_t)u, p[1] = (uint8_t)(u >> 8), p[2] = (uint8_t)(u >> 16), p[3] = (uint8_t)(u >> 24);
            f->len += 4;
        } else {
            uint16_t h = t->dtype == IQ_DT_F16 ? iq_f32_to_f16(x[i]) : iq_f32_to_bf16(x[i]);
            p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
            f->len += 2;
        }
    }
}

static iq_status write_file(const char *path, wtensor *w, int n, const char *const *meta_kv, int n_meta) {
    iq_buf hb = {0};
    iq_status rc = build_header(path, w, n, meta_kv, n_meta, &hb);
    iq_atomic_file af;
    if (!rc) rc = iq_atomic_begin(&af, path);
    if (rc) {
        iq_buf_free(&hb);
        return rc;
    }
    wfile f = {.af = &af, .cap = 1 << 16};
    f.buf = iq_xmalloc(f.cap);
    uint8_t lenbuf[8];
    put_le64(lenbuf, hb.len);
    iq_atomic_write(&af, lenbuf, 8);
    iq_atomic_write(&af, hb.data, hb.len);
    for (int i = 0; i < n; i++) write_tensor_data(&f, &w[i]);
    wf_flush(&f);
    rc = iq_atomic_commit(&af);
    free(f.buf);
    iq_buf_free(&hb);
    return rc;
}

iq_status iq_st_write(const char *path, const iq_st_entry *entries, int n, const char *const *meta_kv, int n_meta) {
    if (n < 0 || (n > 0 && !entries)) return iq_fail(IQ_EINTERNAL, "%s: invalid tensor list", path);
    wtensor *w = iq_xcalloc((size_t)n + 1, sizeof *w);
    for (int i = 0; i < n; i++)
        w[i] = (wtensor){.name = entries[i].name, .dtype = entries[i].dtype, .ndim = entries[i].ndim,
                         .shape = entries[i].shape, .from_f32 = 1, .data = entries[i].data};
    iq_status rc = write_file(path, w, n, meta_kv, n_meta);
    free(w);
    return rc;
}

iq_status iq_st_write_raw(const char *path, const iq_st_raw_entry *entries, int n, const char *const *meta_kv,
                          int n_meta) {
    if (n < 0 || (n > 0 && !entries)) return iq_fail(IQ_EINTERNAL, "%s: invalid tensor list", path);
    wtensor *w = iq_xcalloc((size_t)n + 1, sizeof *w);
    for (int i = 0; i < n; i++)
        w[i] = (wtensor){.name = entries[i].name, .dtype = entries[i].dtype, .ndim = entries[i].ndim,
                         .shape = entries[i].shape, .from_f32 = 0, .data = entries[i].bytes};
    iq_status rc = write_file(path, w, n, meta_kv, n_meta);
    free(w);
    return rc;
}
