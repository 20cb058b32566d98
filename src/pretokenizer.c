/* pretokenizer.c — the pre-tokenizer regexes, each as hand-written matching code that returns where the
 * regex's match starting at a given position ends (every character is matched by some alternative, so
 * consecutive matches tile the text).
 *
 * Character classes are iq_uc_class's (\p{L}, \p{N}, \s of Python's `regex` module, which equal
 * Oniguruma's, the engine of Hugging Face tokenizers, except for characters assigned after the table's
 * Unicode version). An invalid UTF-8 byte is one character of class OTHER. */
#include <string.h>

#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"

static inline int class_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    uint32_t cp;
    *len = iq_utf8_decode(s + i, n - i, &cp);
    return iq_uc_class(cp);
}

/* End of the run of class `cls` starting at i. */
static inline size_t run_end(const uint8_t *s, size_t n, size_t i, int cls) {
    while (i < n) {
        size_t l;
        if (class_at(s, n, i, &l) != cls) break;
        i += l;
    }
    return i;
}

/* The whitespace run starting at i (s[i] is whitespace): its end, and the start of its last character. */
static inline size_t space_run(const uint8_t *s, size_t n, size_t i, size_t *last) {
    size_t k = i, l;
    *last = i;
    while (k < n && class_at(s, n, k, &l) == IQ_UC_SPACE) {
        *last = k;
        k += l;
    }
    return k;
}

// ----------------------------------------------------------------------------------------------------
// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+

size_t iq_pretok_next(const uint8_t *s, size_t n, size_t i) {
    uint8_t c = s[i];
    if (c == '\'' && i + 1 < n) {
        uint8_t a = s[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (i + 2 < n) {
            uint8_t b = s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        }
    }
    size_t l0;
    int cls = class_at(s, n, i, &l0);
    if (c == ' ' && i + 1 < n) {
        size_t l1;
        int cls1 = class_at(s, n, i + 1, &l1);
        if (cls1 != IQ_UC_SPACE) return run_end(s, n, i + 1 + l1, cls1); /* ' ?' + letters/numbers/other */
    }
    if (cls != IQ_UC_SPACE) return run_end(s, n, i + l0, cls);
    /* whitespace: \s+(?!\S) takes the run but its last character when the run is followed by a
     * non-space; a single whitespace character before a non-space is taken by \s+ */
    size_t last, k = space_run(s, n, i, &last);
    if (k == n) return n;
    return last > i ? last : k;
}

// ----------------------------------------------------------------------------------------------------
// Llama 3 and Qwen2 (they differ only in the digit alternative, \p{N}{1,3} against \p{N}):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
//   \s+(?!\S)|\s+

static inline int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i] == '\'': the match's end, or 0. Case-insensitive as Oniguruma
 * folds it: 's' also matches U+017F LATIN SMALL LETTER LONG S (it folds to 's'); no other character
 * folds to one of these letters. */
static size_t contraction(const uint8_t *s, size_t n, size_t i) {
    if (i + 1 >= n) return 0;
    int a = ascii_lower(s[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n && s[i + 1] == 0xC5 && s[i + 2] == 0xBF) return i + 3; /* U+017F */
    if (i + 2 >= n) return 0;
    int b = ascii_lower(s[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

static inline bool is_crlf(uint8_t c) { return c == '\r' || c == '\n'; }

static size_t split_llama(const uint8_t *s, size_t n, size_t i, int max_digits) {
    uint8_t c = s[i];
    if (c == '\'') {
        size_t e = contraction(s, n, i);
        if (e) return e;
    }
    size_t l0, l1;
    int cls = class_at(s, n, i, &l0);
    if (cls == IQ_UC_LETTER) return run_end(s, n, i + l0, IQ_UC_LETTER);
    if (cls != IQ_UC_NUMBER && !is_crlf(c) && i + l0 < n && class_at(s, n, i + l0, &l1) == IQ_UC_LETTER)
        return run_end(s, n, i + l0 + l1, IQ_UC_LETTER); /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cls == IQ_UC_NUMBER) {
        size_t k = i + l0;
        for (int d = 1; d < max_digits && k < n && class_at(s, n, k, &l1) == IQ_UC_NUMBER; d++) k += l1;
        return k;
    }
    size_t j = c == ' ' && i + 1 < n ? i + 1 : i; /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    if (class_at(s, n, j, &l1) == IQ_UC_OTHER) {
        size_t k = run_end(s, n, j + l1, IQ_UC_OTHER);
        while (k < n && is_crlf(s[k])) k++;
        return k;
    }
    /* s[i] is whitespace: \s*[\r\n]+ ends after the run's last \r or \n */
    size_t last, k = space_run(s, n, i, &last);
    for (size_t p = k; p > i; p--)
        if (is_crlf(s[p - 1])) return p;
    if (k == n) return n;            /* \s+(?!\S) at the end */
    return last > i ? last : k;      /* \s+(?!\S) leaves the last character; a single one is \s+ */
}

size_t iq_pretok_split(iq_pretok_kind kind, const uint8_t *s, size_t n, size_t i) {
    switch (kind) {
    case IQ_PRETOK_LLAMA3: return split_llama(s, n, i, 3);
    case IQ_PRETOK_QWEN2: return split_llama(s, n, i, 1);
    case IQ_PRETOK_GPT2: break;
    }
    return iq_pretok_next(s, n, i);
}

// ----------------------------------------------------------------------------------------------------
// recognising a tokenizer.json Split regex

/* The regex strings exactly as the published tokenizer.json files spell them. */
static const char *const LLAMA3_REGEX =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const QWEN2_REGEX =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

bool iq_pretok_from_regex(const char *regex, iq_pretok_kind *kind) {
    if (strcmp(regex, LLAMA3_REGEX) == 0) *kind = IQ_PRETOK_LLAMA3;
    else if (strcmp(regex, QWEN2_REGEX) == 0) *kind = IQ_PRETOK_QWEN2;
    else if (strcmp(regex, GPT2_REGEX) == 0) *kind = IQ_PRETOK_GPT2;
    else return false;
    return true;
}

const char *iq_pretok_name(iq_pretok_kind kind) {
    switch (kind) {
    case IQ_PRETOK_LLAMA3: return "llama3";
    case IQ_PRETOK_QWEN2: return "qwen2";
    case IQ_PRETOK_GPT2: break;
    }
    return "gpt2";
}
