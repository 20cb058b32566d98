/* unicode.c — character classes from the generated tables, UTF-8 validation and encoding. */
#include "iqtrain/unicode.h"

#include "unicode_tables.inc"

/* ASCII classes, filled from the tables at first use */
static uint8_t g_ascii[128];
static int g_ascii_ready = 0;

static int class_search(uint32_t cp) {
    size_t lo = 0, hi = IQ_UC_NRANGES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < iq_uc_ranges[mid].lo) hi = mid;
        else if (cp > iq_uc_ranges[mid].hi) lo = mid + 1;
        else return iq_uc_ranges[mid].cls;
    }
    return IQ_UC_OTHER;
}

int iq_uc_class(uint32_t cp) {
    if (cp < 128) {
        if (!__atomic_load_n(&g_ascii_ready, __ATOMIC_ACQUIRE)) {
            uint8_t t[128];
            for (uint32_t c = 0; c < 128; c++) t[c] = (uint8_t)class_search(c);
            for (int c = 0; c < 128; c++) g_ascii[c] = t[c]; /* idempotent: racing threads write equal bytes */
            __atomic_store_n(&g_ascii_ready, 1, __ATOMIC_RELEASE);
        }
        return g_ascii[cp];
    }
    return class_search(cp);
}

bool iq_utf8_valid(const uint8_t *s, size_t n, size_t *bad_offset) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = iq_utf8_decode(s + i, n - i, &cp);
        if (l == 1) { /* a non-ASCII byte decoded alone is always an escape */
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += l;
    }
    return true;
}

size_t iq_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}
