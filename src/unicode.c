/* unicode.c — character classes from the generated tables, UTF-8 validation and encoding. */
#include "iqtrain/unicode.h"

#include <stdlib.h>
#include <string.h>

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

// ----------------------------------------------------------------------------------------------------
// NFC: canonical decomposition, canonical ordering, canonical composition (UAX #15)

const char *const IQ_NFC_UNICODE_VERSION = IQ_NFC_UNICODE;

enum { RAW_BYTE = 0x110000 }; /* RAW_BYTE + b: an invalid UTF-8 byte b, kept as it is */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, L_COUNT = 19, V_COUNT = 21,
       T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

static bool unsafe_search(uint32_t cp) {
    size_t lo = 0, hi = IQ_NFC_NUNSAFE;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < iq_nfc_unsafe[mid].lo) hi = mid;
        else if (cp > iq_nfc_unsafe[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

/* Not NFC-inert; the BMP through a bitmap tabulated at first use (built aside, then copied: racing
 * threads copy equal bytes). */
static bool nfc_unsafe(uint32_t cp) {
    static uint8_t bmp[0x10000 / 8];
    static int ready = 0;
    if (cp >= 0x10000) return unsafe_search(cp);
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        uint8_t t[0x10000 / 8] = {0};
        for (uint32_t c = 0; c < 0x10000; c++)
            if (unsafe_search(c)) t[c >> 3] = (uint8_t)(t[c >> 3] | (1u << (c & 7)));
        memcpy(bmp, t, sizeof bmp);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return (bmp[cp >> 3] >> (cp & 7)) & 1;
}

bool iq_nfc_quick_check(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0xCC) { /* below U+0300 every character is inert */
            i++;
            continue;
        }
        uint32_t cp;
        i += iq_utf8_decode(s + i, n - i, &cp);
        if (nfc_unsafe(cp)) return false;
    }
    return true;
}

int iq_nfc_ccc(uint32_t cp) {
    size_t lo = 0, hi = IQ_NFC_NCCC;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < iq_nfc_ccc_ranges[mid].lo) hi = mid;
        else if (cp > iq_nfc_ccc_ranges[mid].hi) lo = mid + 1;
        else return iq_nfc_ccc_ranges[mid].ccc;
    }
    return 0;
}

/* The full canonical decomposition of cp, or NULL. */
static const uint32_t *decomposition(uint32_t cp, size_t *len) {
    size_t lo = 0, hi = IQ_NFC_NDECOMP;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < iq_nfc_decomp[mid].cp) hi = mid;
        else if (cp > iq_nfc_decomp[mid].cp) lo = mid + 1;
        else {
            *len = iq_nfc_decomp[mid].len;
            return iq_nfc_pool + iq_nfc_decomp[mid].off;
        }
    }
    return NULL;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = IQ_NFC_NCOMP;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t ma = iq_nfc_comp[mid].a, mb = iq_nfc_comp[mid].b;
        if (a < ma || (a == ma && b < mb)) hi = mid;
        else if (a > ma || b > mb) lo = mid + 1;
        else return iq_nfc_comp[mid].c;
    }
    return 0;
}

typedef struct {
    uint32_t cp;
    uint8_t ccc;
} nfc_char;

static void push_char(nfc_char **a, size_t *m, size_t *cap, uint32_t cp) {
    if (*m == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *a = iq_xrealloc(*a, *cap * sizeof **a);
    }
    (*a)[*m].cp = cp;
    (*a)[*m].ccc = (uint8_t)(cp < 0x300 || cp >= RAW_BYTE ? 0 : iq_nfc_ccc(cp));
    (*m)++;
}

/* Canonical decomposition of the text (Hangul syllables algorithmically). */
static size_t nfc_decompose(const uint8_t *s, size_t n, nfc_char **a) {
    size_t m = 0, cap = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = iq_utf8_decode(s + i, n - i, &cp), dl;
        const uint32_t *d;
        if (l == 1 && s[i] >= 0x80) {
            push_char(a, &m, &cap, RAW_BYTE + s[i]);
        } else if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
            uint32_t k = cp - S_BASE;
            push_char(a, &m, &cap, L_BASE + k / N_COUNT);
            push_char(a, &m, &cap, V_BASE + (k % N_COUNT) / T_COUNT);
            if (k % T_COUNT) push_char(a, &m, &cap, T_BASE + k % T_COUNT);
        } else if (cp >= 0xC0 && (d = decomposition(cp, &dl))) {
            for (size_t j = 0; j < dl; j++) push_char(a, &m, &cap, d[j]);
        } else {
            push_char(a, &m, &cap, cp);
        }
        i += l;
    }
    return m;
}

/* Canonical ordering: a stable sort of each run of non-zero combining classes. */
static void nfc_reorder(nfc_char *a, size_t m) {
    for (size_t i = 1; i < m; i++) {
        nfc_char x = a[i];
        if (x.ccc == 0) continue;
        size_t j = i;
        while (j > 0 && a[j - 1].ccc > x.ccc) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Canonical composition in place; returns the new length. */
static size_t nfc_compose(nfc_char *a, size_t m) {
    size_t w = 0;
    long si = -1; /* the last starter in the output */
    for (size_t r = 0; r < m; r++) {
        nfc_char c = a[r];
        if (si >= 0) {
            bool adjacent = (size_t)si == w - 1;
            bool blocked = !adjacent && (a[w - 1].ccc == 0 || a[w - 1].ccc >= c.ccc);
            uint32_t x = blocked ? 0 : compose_pair(a[si].cp, c.cp);
            if (x) {
                a[si].cp = x;
                continue;
            }
        }
        if (c.ccc == 0) si = (long)w;
        a[w++] = c;
    }
    return w;
}

void iq_nfc(const uint8_t *s, size_t n, iq_buf *out) {
    nfc_char *a = NULL;
    size_t m = nfc_decompose(s, n, &a);
    nfc_reorder(a, m);
    m = nfc_compose(a, m);
    iq_buf_reserve(out, n + 8);
    for (size_t i = 0; i < m; i++) {
        uint8_t u[4];
        if (a[i].cp >= RAW_BYTE) {
            u[0] = (uint8_t)(a[i].cp - RAW_BYTE);
            iq_buf_append(out, u, 1);
        } else {
            iq_buf_append(out, u, iq_utf8_encode(a[i].cp, u));
        }
    }
    free(a);
}
