/* test_safetensors — fp16/bf16 conversions, write/read round trips, byte-exact agreement with the
 * reference implementation's layout, hostile files, atomic writes.
 * usage: test_safetensors TMPDIR */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "iqtrain/safetensors.h"

static const char *g_dir;

static char *tpath(const char *name) { return iq_path_join(g_dir, name); }

static uint32_t fbits(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

static float bitsf(uint32_t b) {
    float x;
    memcpy(&x, &b, 4);
    return x;
}

static void put_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* A file with header length field n_field, then the header bytes, then dlen zero bytes. */
static void put_st(const char *path, uint64_t n_field, const char *hdr, size_t hlen, size_t dlen) {
    size_t total = 8 + hlen + dlen;
    uint8_t *b = calloc(1, total);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n_field >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    put_file(path, b, total);
    free(b);
}

/* The header padded with spaces to a multiple of 8, as writers do. */
static void put_st_padded(const char *path, const char *hdr, const void *data, size_t dlen) {
    size_t hl = strlen(hdr), n = (hl + 7) / 8 * 8;
    uint8_t *b = calloc(1, 8 + n + dlen);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memset(b + 8, ' ', n);
    memcpy(b + 8, hdr, hl);
    if (dlen) memcpy(b + 8 + n, data, dlen);
    put_file(path, b, 8 + n + dlen);
    free(b);
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

static uint8_t *slurp(const char *path, size_t *n) {
    char *data = NULL;
    if (iq_read_file(path, &data, n) != IQ_OK) return NULL;
    return (uint8_t *)data;
}

// ----------------------------------------------------------------------------------------------------
// conversions

static void test_conversion_edge_values(void) {
    /* bf16: hand-computed bit patterns */
    CHECK(iq_f32_to_bf16(0.0f) == 0x0000);
    CHECK(iq_f32_to_bf16(-0.0f) == 0x8000);
    CHECK(iq_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(iq_f32_to_bf16(-2.0f) == 0xC000);
    CHECK(iq_f32_to_bf16(INFINITY) == 0x7F80);
    CHECK(iq_f32_to_bf16(-INFINITY) == 0xFF80);
    CHECK(iq_f32_to_bf16(bitsf(0x7F7FFFFF)) == 0x7F80);  /* FLT_MAX rounds past bf16 max to inf */
    CHECK(iq_f32_to_bf16(bitsf(0x7F7F7FFF)) == 0x7F7F);  /* just below the tie: bf16 max */
    CHECK(iq_f32_to_bf16(bitsf(0x3F808000)) == 0x3F80);  /* tie between 0x3F80 and 0x3F81 -> even */
    CHECK(iq_f32_to_bf16(bitsf(0x3F818000)) == 0x3F82);  /* tie between 0x3F81 and 0x3F82 -> even */
    CHECK(iq_f32_to_bf16(bitsf(0x3F808001)) == 0x3F81);  /* just above the tie */
    CHECK(iq_f32_to_bf16(bitsf(0x00000001)) == 0x0000);  /* smallest f32 subnormal */
    CHECK(iq_f32_to_bf16(bitsf(0x00008000)) == 0x0000);  /* subnormal tie -> even 0 */
    CHECK(iq_f32_to_bf16(bitsf(0x00018000)) == 0x0002);  /* subnormal tie -> even 2 */
    CHECK(iq_f32_to_bf16(bitsf(0x007FFFFF)) == 0x0080);  /* largest subnormal rounds up to FLT_MIN */
    CHECK(iq_f32_to_bf16(bitsf(0x7FC00000)) == 0x7FC0);  /* quiet NaN */
    CHECK(iq_f32_to_bf16(bitsf(0xFFC00000)) == 0xFFC0);  /* negative NaN keeps its sign */
    uint16_t sn = iq_f32_to_bf16(bitsf(0x7F800001)); /* NaN, low payload bit only: truncation would give inf */
    CHECK((sn & 0x7F80) == 0x7F80 && (sn & 0x7F) != 0);
    CHECK(fbits(iq_bf16_to_f32(0x0001)) == 0x00010000);
    CHECK(iq_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(isinf(iq_bf16_to_f32(0xFF80)) && iq_bf16_to_f32(0xFF80) < 0);
    CHECK(isnan(iq_bf16_to_f32(0x7FC1)));

    /* f16 */
    CHECK(iq_f32_to_f16(0.0f) == 0x0000);
    CHECK(iq_f32_to_f16(-0.0f) == 0x8000);
    CHECK(iq_f32_to_f16(1.0f) == 0x3C00);
    CHECK(iq_f32_to_f16(-2.0f) == 0xC000);
    CHECK(iq_f32_to_f16(0.1f) == 0x2E66);
    CHECK(iq_f32_to_f16(65504.0f) == 0x7BFF);            /* max */
    CHECK(iq_f32_to_f16(bitsf(0x477FEFFF)) == 0x7BFF);   /* just below 65520 */
    CHECK(iq_f32_to_f16(65520.0f) == 0x7C00);            /* tie between max and 2^16 -> even -> inf */
    CHECK(iq_f32_to_f16(1e6f) == 0x7C00);
    CHECK(iq_f32_to_f16(-1e6f) == 0xFC00);
    CHECK(iq_f32_to_f16(INFINITY) == 0x7C00);
    CHECK(iq_f32_to_f16(-INFINITY) == 0xFC00);
    CHECK(iq_f32_to_f16(ldexpf(1.0f, -14)) == 0x0400);   /* smallest normal */
    CHECK(iq_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);   /* smallest subnormal */
    CHECK(iq_f32_to_f16(ldexpf(1023.0f, -24)) == 0x03FF); /* largest subnormal */
    CHECK(iq_f32_to_f16(ldexpf(1023.5f, -24)) == 0x0400); /* tie 0x3FF / 0x400 -> even */
    CHECK(iq_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000);   /* tie 0 / 1 -> even 0 */
    CHECK(iq_f32_to_f16(ldexpf(1.5f, -25)) == 0x0001);   /* 0.75 ulp -> 1 */
    CHECK(iq_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002);   /* 1.5 ulp: tie -> even 2 */
    CHECK(iq_f32_to_f16(ldexpf(5.0f, -25)) == 0x0002);   /* 2.5 ulp: tie -> even 2 */
    CHECK(iq_f32_to_f16(ldexpf(-5.0f, -25)) == 0x8002);
    CHECK(iq_f32_to_f16(ldexpf(1.0f, -26)) == 0x0000);
    CHECK(iq_f32_to_f16(bitsf(0x00000001)) == 0x0000);   /* f32 subnormal */
    CHECK(iq_f32_to_f16(-1e-30f) == 0x8000);
    CHECK(iq_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00);     /* tie -> even */
    CHECK(iq_f32_to_f16(1.0f + ldexpf(3.0f, -11)) == 0x3C02);     /* tie -> even */
    CHECK(iq_f32_to_f16(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -23)) == 0x3C01);
    CHECK(iq_f32_to_f16(bitsf(0x7FC00000)) == 0x7E00);
    uint16_t hn = iq_f32_to_f16(bitsf(0xFF800001));
    CHECK((hn & 0xFC00) == 0xFC00 && (hn & 0x3FF) != 0);
    CHECK(iq_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(iq_f16_to_f32(0x03FF) == ldexpf(1023.0f, -24));
    CHECK(iq_f16_to_f32(0x8001) == -ldexpf(1.0f, -24));
    CHECK(iq_f16_to_f32(0x0400) == ldexpf(1.0f, -14));
    CHECK(iq_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(iq_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(fbits(iq_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(isinf(iq_f16_to_f32(0x7C00)) && iq_f16_to_f32(0x7C00) > 0);
    CHECK(isinf(iq_f16_to_f32(0xFC00)) && iq_f16_to_f32(0xFC00) < 0);
    CHECK(isnan(iq_f16_to_f32(0x7E00)) && isnan(iq_f16_to_f32(0x7C01)));
}

/* Every half / bfloat16 value: the decoder against the format's formula, and encode(decode(h)) == h. */
static void test_conversion_exhaustive(void) {
    int bad_f16 = 0, bad_bf16 = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        float got = iq_f16_to_f32((uint16_t)h);
        if (e == 31) {
            if (m ? !isnan(got) : !(isinf(got) && (got < 0) == s)) bad_f16++;
            if (m && (iq_f32_to_f16(got) & 0x7E00) != 0x7E00) bad_f16++;
        } else {
            double want = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp((double)m, -24);
            if (s) want = -want;
            if ((double)got != want || (signbit(got) != 0) != (s != 0)) bad_f16++;
            if (iq_f32_to_f16(got) != h) bad_f16++;
        }
        float gb = iq_bf16_to_f32((uint16_t)h);
        if (fbits(gb) != h << 16) bad_bf16++;
        if (!isnan(gb) && iq_f32_to_bf16(gb) != h) bad_bf16++;
        if (isnan(gb) && !isnan(iq_bf16_to_f32(iq_f32_to_bf16(gb)))) bad_bf16++;
    }
    CHECK_MSG(bad_f16 == 0, "%d f16 mismatches", bad_f16);
    CHECK_MSG(bad_bf16 == 0, "%d bf16 mismatches", bad_bf16);
}

/* Sweep fp32 values: the result must be a nearest representable value, ties to the even code. */
static void test_conversion_nearest(void) {
    int bad16 = 0, badb = 0;
    for (uint64_t u = 0; u < 0x7F800000u; u += 997) {
        for (int sgn = 0; sgn < 2; sgn++) {
            float x = bitsf((uint32_t)u | (sgn ? 0x80000000u : 0));
            double xd = x;
            /* f16 */
            uint16_t h = iq_f32_to_f16(x);
            if (fabs(xd) >= 65520.0) {
                if ((h & 0x7FFF) != 0x7C00) bad16++;
            } else if ((h & 0x7FFF) >= 0x7C00 || ((h >> 15) != sgn && (h & 0x7FFF))) {
                bad16++;
            } else {
                double v = iq_f16_to_f32(h), err = fabs(xd - v);
                uint16_t mag = h & 0x7FFF;
                for (int d = -1; d <= 1; d += 2) {
                    int nm = mag + d;
                    if (nm < 0 || nm > 0x7BFF) continue;
                    double en = fabs(xd - iq_f16_to_f32((uint16_t)((h & 0x8000) | nm)));
                    if (en < err || (en == err && (mag & 1))) bad16++;
                }
            }
            /* bf16 */
            uint16_t b = iq_f32_to_bf16(x);
            if (u >= 0x7F7F8000u) {
                if ((b & 0x7FFF) != 0x7F80) badb++;
            } else if ((b & 0x7FFF) >= 0x7F80 || (b >> 15) != sgn) {
                badb++;
            } else {
                double v = iq_bf16_to_f32(b), err = fabs(xd - v);
                uint16_t mag = b & 0x7FFF;
                for (int d = -1; d <= 1; d += 2) {
                    int nm = mag + d;
                    if (nm < 0 || nm > 0x7F7F) continue;
                    double en = fabs(xd - iq_bf16_to_f32((uint16_t)((b & 0x8000) | nm)));
                    if (en < err || (en == err && (mag & 1))) badb++;
                }
            }
        }
    }
    CHECK_MSG(bad16 == 0, "%d f16 values not correctly rounded", bad16);
    CHECK_MSG(badb == 0, "%d bf16 values not correctly rounded", badb);
}

// ----------------------------------------------------------------------------------------------------
// round trips

static void test_roundtrip(void) {
    char *path = tpath("rt.safetensors");
    float w[15];
    for (int i = 0; i < 15; i++) w[i] = (float)sin(i * 0.7) * (float)(1 + i * 1000);
    w[0] = -0.0f, w[1] = bitsf(0x00000001), w[2] = INFINITY, w[3] = bitsf(0x7FC01234), w[4] = 65519.0f;
    float b[7] = {1.0f, bitsf(0x3F808000), bitsf(0x3F818000), -3.14159f, 1e-40f, -INFINITY, 1e38f};
    float h[8] = {0.1f, -0.5f, 65504.0f, 70000.0f, ldexpf(3.0f, -25), 1e-8f, -0.0f, 2.0f / 3.0f};
    float s = 42.5f;
    iq_st_entry e[] = {
        {.name = "w", .dtype = IQ_DT_F32, .ndim = 2, .shape = {3, 5}, .data = w},
        {.name = "b.bf16", .dtype = IQ_DT_BF16, .ndim = 1, .shape = {7}, .data = b},
        {.name = "h.f16", .dtype = IQ_DT_F16, .ndim = 3, .shape = {2, 2, 2}, .data = h},
        {.name = "scalar", .dtype = IQ_DT_F32, .ndim = 0, .data = &s},
        {.name = "empty", .dtype = IQ_DT_F32, .ndim = 2, .shape = {0, 4}, .data = NULL},
        {.name = "odd \"name\"\n\\ é", .dtype = IQ_DT_F16, .ndim = 1, .shape = {1}, .data = &s},
    };
    const char *meta[] = {"format", "pt", "note", "a \"quoted\"\tvalue"};
    CHECK_MSG(iq_st_write(path, e, 6, meta, 2) == IQ_OK, "%s", iq_last_error());
    CHECK(count_tmp_files(g_dir) == 0);

    size_t flen = 0;
    uint8_t *raw = slurp(path, &flen);
    CHECK(raw != NULL);
    uint64_t n = 0;
    for (int i = 7; raw && i >= 0; i--) n = (n << 8) | raw[i];
    CHECK(n % 8 == 0);
    CHECK(flen == 8 + n + 15 * 4 + 7 * 2 + 8 * 2 + 4 + 0 + 2);
    CHECK(raw && memcmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\",", 31) == 0);
    CHECK(raw && (raw[8 + n - 1] == ' ' || raw[8 + n - 1] == '}'));
    free(raw);

    iq_safetensors *st = NULL;
    CHECK_MSG(iq_st_open(path, &st) == IQ_OK, "%s", iq_last_error());
    if (!st) return;
    CHECK(strcmp(iq_st_path(st), path) == 0);
    CHECK(iq_st_count(st) == 6);
    const char *names[] = {"w", "b.bf16", "h.f16", "scalar", "empty", "odd \"name\"\n\\ é"};
    const int64_t numels[] = {15, 7, 8, 1, 0, 1};
    uint64_t off = 0;
    for (int i = 0; i < 6; i++) {
        const iq_st_tensor *t = iq_st_tensor_at(st, i);
        CHECK(t && strcmp(t->name, names[i]) == 0);
        CHECK(t && t->dtype == e[i].dtype && t->ndim == e[i].ndim);
        CHECK(t && memcmp(t->shape, e[i].shape, sizeof(int64_t) * (size_t)e[i].ndim) == 0);
        CHECK(t && iq_st_numel(t) == numels[i]);
        CHECK(t && t->begin == off && t->end == off + (uint64_t)numels[i] * iq_dtype_size(e[i].dtype));
        CHECK(iq_st_find(st, names[i]) == t);
        if (t) off = t->end;
    }
    CHECK(iq_st_tensor_at(st, -1) == NULL && iq_st_tensor_at(st, 6) == NULL);
    CHECK(iq_st_find(st, "nope") == NULL && iq_st_find(st, "__metadata__") == NULL);
    CHECK(iq_st_metadata(st, "format") && strcmp(iq_st_metadata(st, "format"), "pt") == 0);
    CHECK(iq_st_metadata(st, "note") && strcmp(iq_st_metadata(st, "note"), meta[3]) == 0);
    CHECK(iq_st_metadata(st, "absent") == NULL);
    CHECK(iq_st_metadata_count(st) == 2);

    float out[16];
    CHECK(iq_st_read_f32(st, iq_st_find(st, "w"), out) == IQ_OK);
    CHECK(memcmp(out, w, sizeof w) == 0); /* bit-exact, NaN payload and -0 included */
    CHECK(iq_st_read_f32(st, iq_st_find(st, "b.bf16"), out) == IQ_OK);
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= fbits(out[i]) == fbits(iq_bf16_to_f32(iq_f32_to_bf16(b[i])));
    CHECK(ok);
    CHECK(out[0] == 1.0f && out[1] == 1.0f && fbits(out[2]) == 0x3F820000u);
    CHECK(iq_st_read_f32(st, iq_st_find(st, "h.f16"), out) == IQ_OK);
    ok = 1;
    for (int i = 0; i < 8; i++) ok &= fbits(out[i]) == fbits(iq_f16_to_f32(iq_f32_to_f16(h[i])));
    CHECK(ok);
    CHECK(out[2] == 65504.0f && isinf(out[3]) && out[4] == ldexpf(2.0f, -24));
    uint8_t hb[16];
    CHECK(iq_st_read_raw(st, iq_st_find(st, "h.f16"), hb) == IQ_OK);
    ok = 1;
    for (int i = 0; i < 8; i++) ok &= (uint16_t)(hb[2 * i] | hb[2 * i + 1] << 8) == iq_f32_to_f16(h[i]);
    CHECK(ok);
    CHECK(iq_st_read_f32(st, iq_st_find(st, "scalar"), out) == IQ_OK && out[0] == 42.5f);
    CHECK(iq_st_read_f32(st, iq_st_find(st, "empty"), out) == IQ_OK);
    CHECK(iq_st_read_f32(st, iq_st_find(st, names[5]), out) == IQ_OK && out[0] == 42.5f);
    iq_st_close(st);

    /* overwrite an existing file (rename over it) */
    CHECK(iq_st_write(path, e, 1, meta, 1) == IQ_OK);
    CHECK(iq_st_open(path, &st) == IQ_OK && iq_st_count(st) == 1);
    iq_st_close(st);
    free(path);
}

/* Tensors larger than the reader's conversion chunk. */
static void test_roundtrip_large(void) {
    char *path = tpath("large.safetensors");
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) x[i] = (float)((i * 2654435761u) % 100000) / 977.0f - 50.0f;
    iq_st_entry e[] = {
        {.name = "a", .dtype = IQ_DT_F16, .ndim = 1, .shape = {N}, .data = x},
        {.name = "b", .dtype = IQ_DT_BF16, .ndim = 2, .shape = {1, N}, .data = x},
        {.name = "c", .dtype = IQ_DT_F32, .ndim = 1, .shape = {N}, .data = x},
    };
    const char *meta[] = {"format", "pt"};
    CHECK(iq_st_write(path, e, 3, meta, 1) == IQ_OK);
    iq_safetensors *st = NULL;
    CHECK_MSG(iq_st_open(path, &st) == IQ_OK, "%s", iq_last_error());
    if (st) {
        int bad = 0;
        CHECK(iq_st_read_f32(st, iq_st_find(st, "a"), y) == IQ_OK);
        for (int i = 0; i < N; i++) bad += fbits(y[i]) != fbits(iq_f16_to_f32(iq_f32_to_f16(x[i])));
        CHECK(iq_st_read_f32(st, iq_st_find(st, "b"), y) == IQ_OK);
        for (int i = 0; i < N; i++) bad += fbits(y[i]) != fbits(iq_bf16_to_f32(iq_f32_to_bf16(x[i])));
        CHECK(iq_st_read_f32(st, iq_st_find(st, "c"), y) == IQ_OK);
        bad += memcmp(x, y, N * sizeof *x) != 0;
        CHECK_MSG(bad == 0, "%d mismatches", bad);
        iq_st_close(st);
    }
    free(x);
    free(y);
    free(path);
}

static void test_raw_roundtrip(void) {
    char *path = tpath("raw.safetensors");
    int64_t i64[3] = {-1, 1LL << 40, 7};
    int32_t i32[2] = {-5, 123456};
    int16_t i16[2] = {-300, 300};
    int8_t i8[3] = {-1, 0, 1};
    uint8_t u8[4] = {0, 1, 254, 255};
    uint8_t bl[2] = {1, 0};
    double f64[3] = {1.0 / 3.0, -1e300, 0.5};
    iq_st_raw_entry e[] = {
        {.name = "i64", .dtype = IQ_DT_I64, .ndim = 1, .shape = {3}, .bytes = i64},
        {.name = "i32", .dtype = IQ_DT_I32, .ndim = 2, .shape = {1, 2}, .bytes = i32},
        {.name = "i16", .dtype = IQ_DT_I16, .ndim = 1, .shape = {2}, .bytes = i16},
        {.name = "i8", .dtype = IQ_DT_I8, .ndim = 1, .shape = {3}, .bytes = i8},
        {.name = "u8", .dtype = IQ_DT_U8, .ndim = 1, .shape = {4}, .bytes = u8},
        {.name = "bool", .dtype = IQ_DT_BOOL, .ndim = 1, .shape = {2}, .bytes = bl},
        {.name = "f64", .dtype = IQ_DT_F64, .ndim = 1, .shape = {3}, .bytes = f64},
        {.name = "none", .dtype = IQ_DT_I32, .ndim = 1, .shape = {0}, .bytes = NULL},
    };
    CHECK_MSG(iq_st_write_raw(path, e, 8, NULL, 0) == IQ_OK, "%s", iq_last_error());
    iq_safetensors *st = NULL;
    CHECK_MSG(iq_st_open(path, &st) == IQ_OK, "%s", iq_last_error());
    if (!st) return;
    CHECK(iq_st_count(st) == 8 && iq_st_metadata_count(st) == 0 && iq_st_metadata(st, "format") == NULL);
    uint8_t buf[64];
    for (int i = 0; i < 7; i++) {
        const iq_st_tensor *t = iq_st_tensor_at(st, i);
        CHECK(t && t->dtype == e[i].dtype && strcmp(iq_dtype_name(t->dtype), iq_dtype_name(e[i].dtype)) == 0);
        CHECK(t && iq_st_read_raw(st, t, buf) == IQ_OK && memcmp(buf, e[i].bytes, iq_st_nbytes(t)) == 0);
    }
    float f[3];
    CHECK(iq_st_read_f32(st, iq_st_find(st, "f64"), f) == IQ_OK);
    CHECK(f[0] == (float)(1.0 / 3.0) && isinf(f[1]) && f[1] < 0 && f[2] == 0.5f);
    CHECK(iq_st_read_f32(st, iq_st_find(st, "i32"), f) == IQ_EDATA);
    CHECK(strstr(iq_last_error(), path) && strstr(iq_last_error(), "'i32'") && strstr(iq_last_error(), "I32"));
    printf("read_f32 of I32 -> %s\n", iq_last_error());
    iq_st_close(st);
    free(path);

    CHECK(iq_dtype_size(IQ_DT_BF16) == 2 && iq_dtype_size(IQ_DT_F64) == 8 && iq_dtype_size(IQ_DT_BOOL) == 1);
    iq_dtype dt;
    CHECK(iq_dtype_parse("BF16", &dt) == 0 && dt == IQ_DT_BF16);
    CHECK(iq_dtype_parse("bf16", &dt) == -1 && iq_dtype_parse("U16", &dt) == -1);
}

// ----------------------------------------------------------------------------------------------------
// the reference implementation's layout

/* Byte vectors from huggingface/safetensors' own tests (tensor.rs: test_serialization, test_empty). */
static const uint8_t REF_ATTN[] = {
    64,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,  34,  58,  123, 34,
    100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,  44,  34,  115, 104, 97,  112, 101, 34,
    58,  91,  49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111, 102, 102, 115, 101,
    116, 115, 34,  58,  91,  48,  44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
    0,   0,   0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
static const uint8_t REF_EMPTY[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
static const uint8_t REF_EMPTY_META[] = {40, 0,  0,   0,   0,   0,   0,   0,   123, 34, 95, 95, 109, 101,
                                         116, 97, 100, 97,  116, 97,  95,  95,  34,  58, 123, 34, 102, 114,
                                         97,  109, 101, 119, 111, 114, 107, 34,  58,  34, 112, 116, 34,  125,
                                         125, 32,  32,  32,  32,  32};

static void check_same_bytes(const char *path, const uint8_t *want, size_t n) {
    size_t len = 0;
    uint8_t *got = slurp(path, &len);
    CHECK_MSG(got && len == n && memcmp(got, want, n) == 0, "%s differs from the reference bytes", path);
    free(got);
}

static void test_reference_layout(void) {
    char *path = tpath("ref.safetensors");
    /* our writer produces the reference bytes */
    float x[6] = {0, 1, 2, 3, 4, 5};
    iq_st_entry e = {.name = "attn.0", .dtype = IQ_DT_F32, .ndim = 3, .shape = {1, 2, 3}, .data = x};
    CHECK(iq_st_write(path, &e, 1, NULL, 0) == IQ_OK);
    check_same_bytes(path, REF_ATTN, sizeof REF_ATTN);
    CHECK(iq_st_write(path, NULL, 0, NULL, 0) == IQ_OK);
    check_same_bytes(path, REF_EMPTY, sizeof REF_EMPTY);
    const char *fw[] = {"framework", "pt"};
    CHECK(iq_st_write(path, NULL, 0, fw, 1) == IQ_OK);
    check_same_bytes(path, REF_EMPTY_META, sizeof REF_EMPTY_META);

    /* and reads them */
    iq_safetensors *st = NULL;
    put_file(path, REF_ATTN, sizeof REF_ATTN);
    CHECK_MSG(iq_st_open(path, &st) == IQ_OK, "%s", iq_last_error());
    if (st) {
        const iq_st_tensor *t = iq_st_find(st, "attn.0");
        float y[6];
        CHECK(t && t->ndim == 3 && t->shape[0] == 1 && t->shape[1] == 2 && t->shape[2] == 3 && iq_st_numel(t) == 6);
        CHECK(t && iq_st_read_f32(st, t, y) == IQ_OK && memcmp(x, y, sizeof x) == 0);
        iq_st_close(st);
    }
    put_file(path, REF_EMPTY_META, sizeof REF_EMPTY_META);
    CHECK(iq_st_open(path, &st) == IQ_OK && iq_st_count(st) == 0 && strcmp(iq_st_metadata(st, "framework"), "pt") == 0);
    iq_st_close(st);

    /* a file laid out by hand the way Python's safetensors writes model files */
    float a[2] = {1.5f, -2.25f};
    put_st_padded(path,
                  "{\"__metadata__\":{\"format\":\"pt\"},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                  a, sizeof a);
    CHECK_MSG(iq_st_open(path, &st) == IQ_OK, "%s", iq_last_error());
    if (st) {
        float y[2];
        const iq_st_tensor *t = iq_st_tensor_at(st, 0);
        CHECK(iq_st_count(st) == 1 && t && strcmp(t->name, "a") == 0 && t->dtype == IQ_DT_F32 && iq_st_numel(t) == 2);
        CHECK(strcmp(iq_st_metadata(st, "format"), "pt") == 0);
        CHECK(iq_st_read_f32(st, t, y) == IQ_OK && y[0] == 1.5f && y[1] == -2.25f);
        iq_st_close(st);
    }

    /* valid but unusual: header order differs from offset order, zero-size tensors sharing an offset,
     * unknown keys in an entry, null metadata, unpadded header, escaped names */
    uint8_t d16[18] = {0};
    put_st_padded(path,
                  "{\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                  "\"z\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[8,8],\"extra\":[1]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[2,4],\"data_offsets\":[0,8]},"
                  "\"z0\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"\\u00e9\\n\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[16,16]},"
                  "\"\":{\"dtype\":\"I16\",\"shape\":[],\"data_offsets\":[16,18]},"
                  "\"__metadata__\":null}",
                  d16, 18);
    CHECK_MSG(iq_st_open(path, &st) == IQ_OK, "%s", iq_last_error());
    if (st) {
        const iq_st_tensor *e0 = iq_st_find(st, "");
        CHECK(e0 && e0->ndim == 0 && iq_st_numel(e0) == 1 && e0->dtype == IQ_DT_I16);
        CHECK(iq_st_count(st) == 6 && strcmp(iq_st_tensor_at(st, 0)->name, "b") == 0);
        CHECK(strcmp(iq_st_tensor_at(st, 2)->name, "a") == 0 && iq_st_find(st, "\xc3\xa9\n") != NULL);
        CHECK(iq_st_numel(iq_st_find(st, "z")) == 0 && iq_st_metadata_count(st) == 0);
        iq_st_close(st);
    }
    put_st(path, 2, "{}", 2, 0);
    CHECK(iq_st_open(path, &st) == IQ_OK && iq_st_count(st) == 0);
    iq_st_close(st);
    free(path);
}

// ----------------------------------------------------------------------------------------------------
// hostile files

static int g_hostile = 0;

/* Opens path expecting `want`, a message starting with "PATH: " and containing `needle`. */
static void expect_open_fails(const char *label, const char *path, iq_status want, const char *needle) {
    iq_safetensors *st = (iq_safetensors *)&g_hostile; /* must be reset to NULL */
    iq_status rc = iq_st_open(path, &st);
    const char *msg = iq_last_error();
    size_t pl = strlen(path);
    CHECK_MSG(rc == want, "%s: status %d, want %d (%s)", label, rc, want, msg);
    CHECK_MSG(st == NULL, "%s: handle not NULL", label);
    CHECK_MSG(strncmp(msg, path, pl) == 0 && msg[pl] == ':', "%s: message does not name the file: %s", label, msg);
    CHECK_MSG(!needle || strstr(msg, needle), "%s: message lacks \"%s\": %s", label, needle, msg);
    printf("hostile %-28s -> %d %s\n", label, rc, msg + (rc == want && strncmp(msg, path, pl) == 0 ? pl + 2 : 0));
    g_hostile++;
    if (rc == IQ_OK) iq_st_close(st);
}

static void hostile_header(const char *label, const char *hdr, size_t dlen, const char *needle) {
    char *path = tpath("hostile.safetensors");
    put_st(path, strlen(hdr), hdr, strlen(hdr), dlen);
    expect_open_fails(label, path, IQ_EDATA, needle);
    free(path);
}

#define T(name, body) "\"" name "\":{" body "}"
#define F32_2 "\"dtype\":\"F32\",\"shape\":[2]"

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_hostile_files(void) {
    long rss0 = max_rss_kb();
    char *path = tpath("hostile.safetensors");
    char *missing = tpath("does-not-exist.safetensors");
    expect_open_fails("missing file", missing, IQ_ENOINPUT, "No such file");
    expect_open_fails("directory", g_dir, IQ_ENOINPUT, "directory");

    put_file(path, "", 0);
    expect_open_fails("empty file", path, IQ_EDATA, "empty");
    put_file(path, "\x08\0\0\0\0", 5);
    expect_open_fails("shorter than 8 bytes", path, IQ_EDATA, "too short");
    put_st(path, 1000, "{}        ", 10, 0);
    expect_open_fails("header length past EOF", path, IQ_EDATA, "past the end of the file");
    put_st(path, (uint64_t)1 << 60, "{}        ", 10, 0);
    expect_open_fails("header length 2^60", path, IQ_EDATA, "1152921504606846976");
    put_st(path, UINT64_MAX, "{}", 2, 0);
    expect_open_fails("header length 2^64-1", path, IQ_EDATA, "past the end of the file");
    /* a sparse file big enough to hold a header just over the limit: refused before any allocation */
    {
        uint64_t n = IQ_ST_MAX_HEADER + 1;
        put_st(path, n, "{", 1, 0);
        CHECK(truncate(path, (off_t)(8 + n)) == 0);
        expect_open_fails("header over 100 MB", path, IQ_EDATA, "limit");
    }
    put_st(path, 1, "{", 1, 0);
    expect_open_fails("header of one byte", path, IQ_EDATA, "too small");
    {
        const char h[] = "{\"a\0\":{" F32_2 ",\"data_offsets\":[0,8]}}";
        put_st(path, sizeof h - 1, h, sizeof h - 1, 8);
        expect_open_fails("header containing NUL", path, IQ_EDATA, "NUL byte at offset 3");
    }

    hostile_header("header not JSON", "{\"a\": nope}", 0, "not valid JSON");
    hostile_header("truncated JSON", "{\"a\":{\"dtype\":\"F32\"", 0, "not valid JSON");
    hostile_header("header JSON not an object", "[1, 2, 3]", 0, "not a JSON object");
    hostile_header("header JSON a string", "\"{}\"", 0, "not a JSON object");
    hostile_header("leading space", " {}", 0, "does not start with '{'");
    hostile_header("garbage after object", "{} x", 0, "bytes after the JSON object");
    hostile_header("two objects", "{}{}", 0, "bytes after the JSON object");
    hostile_header("escaped NUL in a name", "{" T("a\\u0000b", F32_2 ",\"data_offsets\":[0,8]") "}", 8, "escaped NUL");
    hostile_header("invalid UTF-8", "{" T("\xff", F32_2 ",\"data_offsets\":[0,8]") "}", 8, "UTF-8");
    hostile_header("tensor of terabytes",
                   "{" T("huge", "\"dtype\":\"F32\",\"shape\":[1000000,1000000],"
                                 "\"data_offsets\":[0,4000000000000]") "}",
                   16, "'huge': data_offsets [0, 4000000000000] go past the end of the data buffer (16 bytes)");
    hostile_header("offsets out of range", "{" T("a", "\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]") "}", 8,
                   "'a': data_offsets [0, 16] go past the end");
    hostile_header("begin out of range", "{" T("a", "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]") "}", 8,
                   "go past the end");
    hostile_header("overlapping offsets",
                   "{" T("a", F32_2 ",\"data_offsets\":[0,8]") "," T("b", F32_2 ",\"data_offsets\":[4,12]") "}", 12,
                   "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    hostile_header("same offsets twice",
                   "{" T("a", F32_2 ",\"data_offsets\":[0,8]") "," T("b", F32_2 ",\"data_offsets\":[0,8]") "}", 8,
                   "overlap");
    hostile_header("end < begin", "{" T("a", "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]") "}", 8,
                   "'a': data_offsets [8, 0] end before they begin");
    hostile_header("gap between tensors",
                   "{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") ","
                       T("b", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]") "}",
                   12, "gap of 4 bytes in the data buffer before tensor 'b'");
    hostile_header("gap at the start", "{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]") "}", 8,
                   "gap of 4 bytes");
    hostile_header("bytes after last tensor", "{" T("a", F32_2 ",\"data_offsets\":[0,8]") "}", 16,
                   "8 unused bytes after the last tensor 'a'");
    hostile_header("data but no tensors", "{}", 4, "4 bytes of data but no tensors");
    hostile_header("unknown dtype", "{" T("a", "\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,32]") "}", 32,
                   "'a': unknown or unsupported dtype 'F128'");
    hostile_header("unsupported dtype U16", "{" T("a", "\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]") "}", 4,
                   "dtype 'U16'");
    hostile_header("lower-case dtype", "{" T("a", "\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8,
                   "dtype 'f32'");
    hostile_header("dtype not a string", "{" T("a", "\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]") "}", 8,
                   "'a': missing or non-string \"dtype\"");
    hostile_header("shape/size mismatch", "{" T("a", "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]") "}", 8,
                   "'a': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8");
    hostile_header("dtype/size mismatch", "{" T("a", "\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8,
                   "needs 16 bytes");
    hostile_header("negative shape", "{" T("a", "\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]") "}", 8,
                   "'a': shape[0] is not an integer in [0, 2^53)");
    hostile_header("fractional shape", "{" T("a", "\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,8]") "}", 8,
                   "shape[1] is not an integer");
    hostile_header("shape 2^53", "{" T("a", "\"dtype\":\"U8\",\"shape\":[9007199254740992],\"data_offsets\":[0,8]") "}",
                   8, "shape[0] is not an integer");
    hostile_header("shape 1e400", "{" T("a", "\"dtype\":\"U8\",\"shape\":[1e400],\"data_offsets\":[0,8]") "}", 8,
                   "shape[0] is not an integer");
    hostile_header("shape string", "{" T("a", "\"dtype\":\"U8\",\"shape\":[\"8\"],\"data_offsets\":[0,8]") "}", 8,
                   "shape[0] is not an integer");
    hostile_header("shape byte size overflow",
                   "{" T("a", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                              "\"data_offsets\":[0,0]") "}",
                   0, "'a': shape [4294967296, 4294967296, 4294967296] of F32 overflows a 64-bit byte count");
    hostile_header("9 dimensions",
                   "{" T("a", "\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]") "}", 1,
                   "'a': 9 dimensions (at most 8 supported)");
    hostile_header("shape not an array", "{" T("a", "\"dtype\":\"U8\",\"shape\":3,\"data_offsets\":[0,3]") "}", 3,
                   "'a': missing or non-array \"shape\"");
    hostile_header("missing shape", "{" T("a", "\"dtype\":\"U8\",\"data_offsets\":[0,3]") "}", 3, "\"shape\"");
    hostile_header("missing data_offsets", "{" T("a", F32_2) "}", 8, "'a': \"data_offsets\" is missing");
    hostile_header("three data_offsets", "{" T("a", F32_2 ",\"data_offsets\":[0,8,8]") "}", 8,
                   "not an array of two integers");
    hostile_header("negative data_offset", "{" T("a", F32_2 ",\"data_offsets\":[-8,0]") "}", 8,
                   "'a': data_offsets are not integers");
    hostile_header("fractional data_offset", "{" T("a", F32_2 ",\"data_offsets\":[0,7.5]") "}", 8,
                   "data_offsets are not integers");
    hostile_header("entry not an object", "{\"a\":5}", 0, "'a': entry is not a JSON object");
    hostile_header("duplicate tensor name",
                   "{" T("a", F32_2 ",\"data_offsets\":[0,8]") "," T("a", F32_2 ",\"data_offsets\":[8,16]") "}", 16,
                   "duplicate tensor name 'a'");
    hostile_header("metadata value not a string", "{\"__metadata__\":{\"format\":1}}", 0,
                   "\"__metadata__\" value of 'format' is not a string");
    hostile_header("metadata value null", "{\"__metadata__\":{\"format\":null}}", 0, "is not a string");
    hostile_header("metadata not an object", "{\"__metadata__\":\"pt\"}", 0, "\"__metadata__\" is not a JSON object");
    hostile_header("duplicate metadata key", "{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", 0,
                   "duplicate \"__metadata__\" key 'format'");
    hostile_header("duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0,
                   "duplicate \"__metadata__\"");
    {
        /* nesting far past cJSON's limit must fail cleanly, not exhaust the stack */
        enum { DEPTH = 100000 };
        char *h = malloc(2 * DEPTH + 16);
        size_t k = 0;
        k += (size_t)sprintf(h, "{\"a\":");
        for (int i = 0; i < DEPTH; i++) h[k++] = '[';
        for (int i = 0; i < DEPTH; i++) h[k++] = ']';
        h[k++] = '}';
        h[k] = 0;
        hostile_header("nesting 100000 deep", h, 0, "not valid JSON");
        free(h);
    }

    /* a file that shrinks after it was opened */
    {
        float x[1024];
        for (int i = 0; i < 1024; i++) x[i] = (float)i;
        iq_st_entry e = {.name = "x", .dtype = IQ_DT_F16, .ndim = 1, .shape = {1024}, .data = x};
        CHECK(iq_st_write(path, &e, 1, NULL, 0) == IQ_OK);
        iq_safetensors *st = NULL;
        CHECK(iq_st_open(path, &st) == IQ_OK);
        struct stat sb;
        CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size - 100) == 0);
        float y[1024];
        iq_status rc = st ? iq_st_read_f32(st, iq_st_find(st, "x"), y) : IQ_OK;
        CHECK_MSG(rc == IQ_EDATA && strstr(iq_last_error(), path) && strstr(iq_last_error(), "'x'"),
                  "shrunk file: %d %s", rc, iq_last_error());
        printf("hostile %-28s -> %d %s\n", "file shrank after open", rc, iq_last_error());
        iq_st_close(st);
    }

    long grew = max_rss_kb() - rss0;
    CHECK_MSG(grew < 64 * 1024, "hostile files raised the peak RSS by %ld kB", grew);
    free(missing);
    free(path);
}

// ----------------------------------------------------------------------------------------------------
// writing failures

static void test_write_failures(void) {
    float x[4] = {1, 2, 3, 4};
    const char *meta[] = {"format", "pt"};
    iq_st_entry e = {.name = "x", .dtype = IQ_DT_F32, .ndim = 1, .shape = {4}, .data = x};

    /* into a folder that does not exist: 73, and nothing is created */
    char *nodir = tpath("no-such-dir");
    char *inside = iq_path_join(nodir, "model.safetensors");
    iq_status rc = iq_st_write(inside, &e, 1, meta, 1);
    CHECK_MSG(rc == IQ_ECANTCREAT, "status %d: %s", rc, iq_last_error());
    CHECK(strstr(iq_last_error(), inside) != NULL);
    printf("write into missing folder -> %d %s\n", rc, iq_last_error());
    CHECK(!iq_file_exists(nodir) && count_tmp_files(g_dir) == 0);

    /* a write error midway (file size limit standing in for a full disk): 74, no temp file, the
     * previous file untouched */
    char *path = tpath("full.safetensors");
    CHECK(iq_st_write(path, &e, 1, meta, 1) == IQ_OK);
    enum { N = 1 << 18 };
    float *big = calloc(N, sizeof *big);
    iq_st_entry eb = {.name = "big", .dtype = IQ_DT_F32, .ndim = 1, .shape = {N}, .data = big};
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    rc = iq_st_write(path, &eb, 1, meta, 1);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK_MSG(rc == IQ_EIO, "status %d: %s", rc, iq_last_error());
    CHECK(strstr(iq_last_error(), path) != NULL && strstr(iq_last_error(), strerror(EFBIG)) != NULL);
    printf("write hitting the size limit -> %d %s\n", rc, iq_last_error());
    CHECK(count_tmp_files(g_dir) == 0);
    iq_safetensors *st = NULL;
    CHECK(iq_st_open(path, &st) == IQ_OK && iq_st_find(st, "x") && !iq_st_find(st, "big"));
    iq_st_close(st);
    free(big);

    /* caller errors: 70 and no file */
    char *p2 = tpath("invalid.safetensors");
    iq_st_entry dup[2] = {e, e};
    CHECK(iq_st_write(p2, dup, 2, meta, 1) == IQ_EINTERNAL && strstr(iq_last_error(), "duplicate tensor name 'x'"));
    iq_st_entry bad = e;
    bad.dtype = IQ_DT_I32;
    CHECK(iq_st_write(p2, &bad, 1, meta, 1) == IQ_EINTERNAL && strstr(iq_last_error(), "I32"));
    bad = e;
    bad.shape[0] = -4;
    CHECK(iq_st_write(p2, &bad, 1, meta, 1) == IQ_EINTERNAL);
    bad = e;
    bad.ndim = 9;
    CHECK(iq_st_write(p2, &bad, 1, meta, 1) == IQ_EINTERNAL);
    bad = e;
    bad.name = "__metadata__";
    CHECK(iq_st_write(p2, &bad, 1, meta, 1) == IQ_EINTERNAL);
    bad = e;
    bad.data = NULL;
    CHECK(iq_st_write(p2, &bad, 1, meta, 1) == IQ_EINTERNAL);
    const char *dupmeta[] = {"format", "pt", "format", "np"};
    CHECK(iq_st_write(p2, &e, 1, dupmeta, 2) == IQ_EINTERNAL);
    CHECK(!iq_file_exists(p2) && count_tmp_files(g_dir) == 0);

    free(p2);
    free(path);
    free(inside);
    free(nodir);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s TMPDIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    if (iq_mkdirs(g_dir) != IQ_OK) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    test_conversion_edge_values();
    test_conversion_exhaustive();
    test_conversion_nearest();
    test_roundtrip();
    test_roundtrip_large();
    test_raw_roundtrip();
    test_reference_layout();
    test_hostile_files();
    test_write_failures();
    printf("%d hostile files refused\n", g_hostile);
    CHECK_DONE();
}
