/* unicode.h — the character classes and UTF-8 rules of the pre-tokenizers, and NFC.
 *
 * Classes come from tables generated out of Python's `regex` module (scripts/gen_unicode_tables.py),
 * the normative oracle of DESIGN §4, so \p{L}, \p{N} and \s agree with it code point for code point. */
#ifndef IQTRAIN_UNICODE_H
#define IQTRAIN_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

enum { IQ_UC_OTHER = 0, IQ_UC_LETTER = 1, IQ_UC_NUMBER = 2, IQ_UC_SPACE = 3 };

/* Class of a code point under the regex module: \p{L}, \p{N}, \s, or none of them. */
int iq_uc_class(uint32_t cp);

/* Decodes one code point at s[0..n) (n >= 1) the way Python's UTF-8 decoder with
 * errors='surrogateescape' does: a complete, valid sequence gives its code point; otherwise the first
 * byte alone becomes U+DC00+byte (class OTHER). Returns the number of bytes consumed (1..4). */
static inline size_t iq_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80) {
            *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
            return 2;
        }
    } else if (c >= 0xE0 && c <= 0xEF) {
        if (n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
            uint32_t v = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
            if (v >= 0x800 && (v < 0xD800 || v > 0xDFFF)) {
                *cp = v;
                return 3;
            }
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        if (n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
            uint32_t v = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                         ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
            if (v >= 0x10000 && v <= 0x10FFFF) {
                *cp = v;
                return 4;
            }
        }
    }
    *cp = 0xDC00u + c;
    return 1;
}

/* True when s[0..n) is valid UTF-8 (strict: no overlongs, surrogates or values past U+10FFFF).
 * On false, *bad_offset (if not NULL) is the offset of the first invalid byte. */
bool iq_utf8_valid(const uint8_t *s, size_t n, size_t *bad_offset);

/* Encodes a code point (<= 0x10FFFF) as UTF-8; returns the length (1..4). */
size_t iq_utf8_encode(uint32_t cp, uint8_t out[4]);

/* ---------------------------------------------------------------- NFC (Unicode Normalization Form C)
 * Tables from Python's unicodedata (IQ_NFC_UNICODE_VERSION, scripts/gen_unicode_tables.py). An invalid
 * UTF-8 byte is kept as it is and acts like a character of combining class 0 that composes with nothing. */
extern const char *const IQ_NFC_UNICODE_VERSION;
/* True when s[0..n) is certainly NFC already: every character is NFC-inert (combining class 0,
 * NFC_Quick_Check Yes); most text, and all ASCII, is. */
bool iq_nfc_quick_check(const uint8_t *s, size_t n);
/* Appends NFC(s[0..n)) to *out. */
void iq_nfc(const uint8_t *s, size_t n, iq_buf *out);
/* Canonical combining class of a code point. */
int iq_nfc_ccc(uint32_t cp);

#endif
