/* tokenizer.c — byte-level BPE: the merges, encoding with added tokens, GPT-2's file layouts, saving.
 * The pre-tokenizers are in pretokenizer.c, tokenizer.json in tokenizer_json.c, NFC in unicode.c.
 *
 * Sections: byte-to-unicode map · the tokenizer object and its builder · BPE · encode/decode · loading ·
 * saving. */
#include "iqtrain/tokenizer.h"

#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/unicode.h"
#include "tokenizer_internal.h"

// ----------------------------------------------------------------------------------------------------
// GPT-2's byte-to-unicode map

/* Bytes that stand for themselves as characters, in GPT-2's order; the other 68 bytes follow in byte
 * order and map to U+0100 onwards. */
static int byte_is_printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

uint32_t iq_byte_to_unicode(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t n = 0;
    for (int c = 0; c < b; c++)
        if (!byte_is_printable(c)) n++;
    return 256 + n;
}

uint8_t iq_byte_order(int i) {
    /* printable bytes first (in byte order), then the rest; tabulated at first use (racing threads
     * write equal bytes) */
    static uint8_t order[256];
    static int ready = 0;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        int k = 0;
        for (int b = 0; b < 256; b++)
            if (byte_is_printable(b)) order[k++] = (uint8_t)b;
        for (int b = 0; b < 256; b++)
            if (!byte_is_printable(b)) order[k++] = (uint8_t)b;
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return i >= 0 && i < 256 ? order[i] : 0;
}

/* Inverse map: code point -> byte, or -1. */
static int unicode_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 && cp < 256 + 68) {
        uint32_t n = 0;
        for (int c = 0; c < 256; c++)
            if (!byte_is_printable(c) && n++ == cp - 256) return c;
    }
    return -1;
}

/* Token string (UTF-8 of byte-level characters) -> raw bytes. Returns false when a character is not in
 * the map (then the token is an added token whose text is its own bytes). */
bool iq_tok_string_to_bytes(const char *s, size_t n, iq_buf *out) {
    static int table_ready = 0;
    static int16_t inv[256 + 68];
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t cp = 0; cp < 256 + 68; cp++) inv[cp] = (int16_t)unicode_to_byte(cp);
        __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
    }
    out->len = 0;
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = iq_utf8_decode(p + i, n - i, &cp);
        if (cp >= 256 + 68 || inv[cp] < 0) return false;
        uint8_t b = (uint8_t)inv[cp];
        iq_buf_append(out, &b, 1);
        i += l;
    }
    return true;
}

static void bytes_to_token_string(const uint8_t *b, size_t n, iq_buf *out) {
    for (size_t i = 0; i < n; i++) {
        uint8_t u[4];
        size_t l = iq_utf8_encode(iq_byte_to_unicode(b[i]), u);
        iq_buf_append(out, u, l);
    }
}

// ----------------------------------------------------------------------------------------------------
// the tokenizer object and its builder

const char *const IQ_CHAT_TEMPLATE =
    "{% for message in messages %}{% if message['role'] == 'assistant' %}assistant: {{ message['content'] }}"
    "{{ eos_token }}{% else %}{{ message['role'] }}: {{ message['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}";

iq_tokenizer *iq_tok_new(int32_t vocab_size, const char *source) {
    iq_tokenizer *t = iq_xcalloc(1, sizeof *t);
    t->vocab_size = vocab_size;
    t->tok_off = iq_xcalloc((size_t)vocab_size, sizeof *t->tok_off);
    t->tok_len = iq_xcalloc((size_t)vocab_size, sizeof *t->tok_len);
    t->tok_flags = iq_xcalloc((size_t)vocab_size, sizeof *t->tok_flags);
    t->bytes_map = iq_strmap_new((size_t)vocab_size);
    t->eos = -1;
    t->bos = -1;
    t->eot = -1;
    t->pretok = IQ_PRETOK_GPT2;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    t->source = iq_xstrdup(source);
    return t;
}

void iq_tok_free(iq_tokenizer *t) {
    if (!t) return;
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_flags);
    iq_buf_free(&t->pool);
    iq_strmap_free(t->bytes_map);
    free(t->merges);
    free(t->merge_keys);
    free(t->merge_vals);
    free(t->special_ids);
    free(t->source);
    free(t->raw_json);
    free(t->raw_config);
    free(t->raw_stm);
    free(t->chat_jinja);
    free(t);
}

iq_status iq_tok_set_token(iq_tokenizer *t, int32_t id, const void *bytes, size_t len, bool special) {
    if (id < 0 || id >= t->vocab_size) return iq_fail(IQ_EDATA, "token id %d out of range", id);
    if (t->tok_flags[id] & IQ_TOK_DEFINED) return iq_fail(IQ_EDATA, "token id %d defined twice", id);
    if (len == 0) return iq_fail(IQ_EDATA, "token id %d is empty", id);
    t->tok_off[id] = (uint32_t)t->pool.len;
    t->tok_len[id] = (uint32_t)len;
    iq_buf_append(&t->pool, bytes, len);
    t->tok_flags[id] = IQ_TOK_DEFINED | (special ? IQ_TOK_SPECIAL : 0);
    if (special) {
        t->special_ids = iq_xrealloc(t->special_ids, (size_t)(t->n_special + 1) * sizeof *t->special_ids);
        t->special_ids[t->n_special++] = id;
        if (len == strlen(IQ_EOS_TEXT) && memcmp(bytes, IQ_EOS_TEXT, len) == 0) t->eos = id;
    } else {
        int32_t other;
        if (iq_strmap_get(t->bytes_map, bytes, len, &other))
            return iq_fail(IQ_EDATA, "tokens %d and %d have the same bytes", other, id);
        iq_strmap_put(t->bytes_map, bytes, len, id);
        if (len == 1) t->byte_id[*(const uint8_t *)bytes] = id;
    }
    return IQ_OK;
}

static inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static inline size_t pair_hash(uint64_t k, int bits) { return (size_t)((k * 0x9E3779B97F4A7C15ULL) >> (64 - bits)); }
#define EMPTY_KEY UINT64_MAX

iq_status iq_tok_add_merge(iq_tokenizer *t, int32_t a, int32_t b) {
    if (a < 0 || b < 0 || a >= t->vocab_size || b >= t->vocab_size || !(t->tok_flags[a] & IQ_TOK_DEFINED) ||
        !(t->tok_flags[b] & IQ_TOK_DEFINED))
        return iq_fail(IQ_EDATA, "merge of undefined tokens %d and %d", a, b);
    iq_buf cat = {0};
    iq_buf_append(&cat, t->pool.data + t->tok_off[a], t->tok_len[a]);
    iq_buf_append(&cat, t->pool.data + t->tok_off[b], t->tok_len[b]);
    int32_t c;
    bool found = iq_strmap_get(t->bytes_map, cat.data, cat.len, &c);
    iq_buf_free(&cat);
    if (!found) return iq_fail(IQ_EDATA, "merge %d + %d: the merged token is not in the vocabulary", a, b);
    if (t->n_merges == t->merges_cap) {
        t->merges_cap = t->merges_cap ? 2 * t->merges_cap : 1024;
        t->merges = iq_xrealloc(t->merges, (size_t)t->merges_cap * sizeof *t->merges);
    }
    t->merges[t->n_merges][0] = a;
    t->merges[t->n_merges][1] = b;
    t->merges[t->n_merges][2] = c;
    t->n_merges++;
    return IQ_OK;
}

iq_status iq_tok_finish(iq_tokenizer *t) {
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return iq_fail(IQ_EDATA, "the vocabulary has no token for byte 0x%02X (not a byte-level BPE)", b);
    int bits = 4;
    while (((size_t)1 << bits) < (size_t)t->n_merges * 2 + 16) bits++;
    t->merge_bits = bits;
    memset(t->first_all, 0, sizeof t->first_all);
    memset(t->first_ns, 0, sizeof t->first_ns);
    t->n_nonspecial = 0;
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        uint8_t b0 = (uint8_t)t->pool.data[t->tok_off[id]];
        t->first_all[b0 >> 3] |= (uint8_t)(1u << (b0 & 7));
        if (t->tok_flags[id] & IQ_TOK_NONSPECIAL) {
            t->first_ns[b0 >> 3] |= (uint8_t)(1u << (b0 & 7));
            t->n_nonspecial++;
        }
    }
    size_t cap = (size_t)1 << bits;
    t->merge_keys = iq_xmalloc(cap * sizeof *t->merge_keys);
    t->merge_vals = iq_xmalloc(cap * sizeof *t->merge_vals);
    for (size_t i = 0; i < cap; i++) t->merge_keys[i] = EMPTY_KEY;
    for (int32_t r = 0; r < t->n_merges; r++) {
        uint64_t k = pair_key(t->merges[r][0], t->merges[r][1]);
        size_t i = pair_hash(k, bits);
        while (t->merge_keys[i] != EMPTY_KEY && t->merge_keys[i] != k) i = (i + 1) & (cap - 1);
        if (t->merge_keys[i] == k) continue; /* a repeated merge keeps its first (lowest) rank */
        t->merge_keys[i] = k;
        t->merge_vals[i] = r;
    }
    return IQ_OK;
}

/* Rank of the merge (a, b), or INT32_MAX. */
static inline int32_t merge_rank(const iq_tokenizer *t, int32_t a, int32_t b) {
    uint64_t k = pair_key(a, b);
    size_t mask = ((size_t)1 << t->merge_bits) - 1, i = pair_hash(k, t->merge_bits);
    for (;;) {
        uint64_t kk = t->merge_keys[i];
        if (kk == k) return t->merge_vals[i];
        if (kk == EMPTY_KEY) return INT32_MAX;
        i = (i + 1) & mask;
    }
}

int32_t iq_tok_vocab_size(const iq_tokenizer *t) { return t->vocab_size; }
int32_t iq_tok_eos(const iq_tokenizer *t) { return t->eos; }
int32_t iq_tok_bos(const iq_tokenizer *t) { return t->bos; }
iq_pretok_kind iq_tok_pretok(const iq_tokenizer *t) { return t->pretok; }
bool iq_tok_nfc(const iq_tokenizer *t) { return t->nfc; }

int32_t iq_tok_special_id(const iq_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        if (t->tok_len[id] == n && memcmp(t->pool.data + t->tok_off[id], text, n) == 0) return id;
    }
    return -1;
}
int32_t iq_tok_n_merges(const iq_tokenizer *t) { return t->n_merges; }
const char *iq_tok_source(const iq_tokenizer *t) { return t->source; }

iq_token_kind iq_tok_token_kind(const iq_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->vocab_size || !(t->tok_flags[id] & IQ_TOK_DEFINED)) return IQ_TOKEN_NONE;
    if (t->tok_flags[id] & IQ_TOK_NONSPECIAL) return IQ_TOKEN_ADDED;
    return (t->tok_flags[id] & IQ_TOK_SPECIAL) ? IQ_TOKEN_SPECIAL : IQ_TOKEN_NORMAL;
}

void iq_tok_token_string(const iq_tokenizer *t, int32_t id, iq_buf *out) {
    if (iq_tok_token_kind(t, id) == IQ_TOKEN_NONE) return;
    const uint8_t *p = (const uint8_t *)t->pool.data + t->tok_off[id];
    if (t->tok_flags[id] & IQ_TOK_SPECIAL) iq_buf_append(out, p, t->tok_len[id]);
    else bytes_to_token_string(p, t->tok_len[id], out);
}

void iq_tok_merge(const iq_tokenizer *t, int32_t i, int32_t *left, int32_t *right) {
    *left = t->merges[i][0];
    *right = t->merges[i][1];
}

const uint8_t *iq_tok_token_bytes(const iq_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->vocab_size || !(t->tok_flags[id] & IQ_TOK_DEFINED)) return NULL;
    *len = t->tok_len[id];
    return (const uint8_t *)t->pool.data + t->tok_off[id];
}

// ----------------------------------------------------------------------------------------------------
// BPE on one piece

#define SHORT_WORD 64

/* encoder.py's loop: find the lowest-ranked adjacent pair, merge all its occurrences left to right,
 * repeat. O(n^2) in the piece length, which is what short pieces want. */
static size_t bpe_short(const iq_tokenizer *t, int32_t *sym, size_t m) {
    int32_t rank[SHORT_WORD];
    for (size_t i = 0; i + 1 < m; i++) rank[i] = merge_rank(t, sym[i], sym[i + 1]);
    while (m >= 2) {
        int32_t best = INT32_MAX;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] < best) best = rank[i];
        if (best == INT32_MAX) break;
        int32_t a = t->merges[best][0], b = t->merges[best][1], c = t->merges[best][2];
        size_t w = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && sym[i] == a && sym[i + 1] == b) {
                sym[w++] = c;
                i += 2;
            } else {
                sym[w++] = sym[i++];
            }
        }
        m = w;
        for (size_t i = 0; i + 1 < m; i++) rank[i] = merge_rank(t, sym[i], sym[i + 1]);
    }
    return m;
}

/* The same merges for long pieces in O(n log n): a doubly linked list of symbols and a min-heap of
 * (rank, position). Pairs of equal rank pop in position order, so occurrences of the best pair merge
 * left to right exactly as encoder.py's pass does. */
typedef struct {
    int32_t rank;
    int32_t pos;
} heap_item;

static inline bool heap_less(heap_item x, heap_item y) { return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos); }

static void heap_push(heap_item *h, size_t *n, heap_item x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(x, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static heap_item heap_pop(heap_item *h, size_t *n) {
    heap_item top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        heap_item best = x;
        if (l < *n && heap_less(h[l], best)) {
            m = l;
            best = h[l];
        }
        if (r < *n && heap_less(h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = x;
    return top;
}

static size_t bpe_long(const iq_tokenizer *t, int32_t *sym, size_t m) {
    int32_t *next = iq_xmalloc(m * sizeof *next), *prev = iq_xmalloc(m * sizeof *prev);
    int32_t *prank = iq_xmalloc(m * sizeof *prank); /* rank of the pair starting at i when pushed */
    heap_item *heap = iq_xmalloc(3 * m * sizeof *heap);
    size_t hn = 0;
    for (size_t i = 0; i < m; i++) {
        next[i] = i + 1 < m ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
        prank[i] = i + 1 < m ? merge_rank(t, sym[i], sym[i + 1]) : INT32_MAX;
        if (prank[i] != INT32_MAX) heap_push(heap, &hn, (heap_item){prank[i], (int32_t)i});
    }
    while (hn > 0) {
        heap_item it = heap_pop(heap, &hn);
        int32_t i = it.pos;
        if (sym[i] < 0 || prank[i] != it.rank || next[i] < 0) continue; /* stale */
        int32_t j = next[i];
        sym[i] = t->merges[it.rank][2];
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        int32_t p = prev[i];
        if (p >= 0) {
            prank[p] = merge_rank(t, sym[p], sym[i]);
            if (prank[p] != INT32_MAX) heap_push(heap, &hn, (heap_item){prank[p], p});
        }
        prank[i] = next[i] >= 0 ? merge_rank(t, sym[i], sym[next[i]]) : INT32_MAX;
        if (prank[i] != INT32_MAX) heap_push(heap, &hn, (heap_item){prank[i], i});
    }
    size_t w = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[w++] = sym[i];
    free(next);
    free(prev);
    free(prank);
    free(heap);
    return w;
}

static void bpe_piece(const iq_tokenizer *t, const uint8_t *p, size_t n, iq_ids *out) {
    if (n == 1) {
        iq_ids_push(out, t->byte_id[p[0]]);
        return;
    }
    iq_ids_reserve(out, n);
    int32_t *sym = out->v + out->len; /* merge in place in the output: the result is never longer */
    for (size_t i = 0; i < n; i++) sym[i] = t->byte_id[p[i]];
    size_t m = n <= SHORT_WORD ? bpe_short(t, sym, n) : bpe_long(t, sym, n);
    out->len += m;
}

// ----------------------------------------------------------------------------------------------------
// encode / decode

/* One pre-tokenized piece: with ignore_merges a piece that is a token is that token, else BPE. */
static inline void encode_piece(const iq_tokenizer *t, const uint8_t *p, size_t n, iq_ids *out) {
    int32_t id;
    if (t->ignore_merges && n > 1 && iq_strmap_get(t->bytes_map, p, n, &id)) {
        iq_ids_push(out, id);
        return;
    }
    bpe_piece(t, p, n, out);
}

/* Text without added tokens: NFC when the file asks for it, the pre-tokenizer, then BPE per piece. */
static void encode_plain(const iq_tokenizer *t, const uint8_t *s, size_t len, iq_ids *out) {
    if (t->pretok == IQ_PRETOK_GPT2 && !t->nfc && !t->ignore_merges) { /* GPT-2 */
        for (size_t i = 0; i < len;) {
            size_t j = iq_pretok_next(s, len, i);
            bpe_piece(t, s + i, j - i, out);
            i = j;
        }
        return;
    }
    iq_buf norm = {0};
    if (t->nfc && !iq_nfc_quick_check(s, len)) {
        iq_nfc(s, len, &norm);
        s = (const uint8_t *)norm.data;
        len = norm.len;
    }
    for (size_t i = 0; i < len;) {
        size_t j = iq_pretok_split(t->pretok, s, len, i);
        encode_piece(t, s + i, j - i, out);
        i = j;
    }
    iq_buf_free(&norm);
}

/* The longest added token (any, or only a non-special one) whose text starts at s[i]; -1 when none. */
static int32_t added_at(const iq_tokenizer *t, const uint8_t *s, size_t len, size_t i, bool all, size_t *mlen) {
    int32_t best = -1;
    size_t best_len = 0;
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        size_t sl = t->tok_len[id];
        if ((!all && !(t->tok_flags[id] & IQ_TOK_NONSPECIAL)) || sl > len - i || sl <= best_len) continue;
        if (memcmp(s + i, t->pool.data + t->tok_off[id], sl) == 0) {
            best = id;
            best_len = sl;
        }
    }
    *mlen = best_len;
    return best;
}

/* Splits the text at added tokens (the earliest match, the longest there: transformers' leftmost-longest
 * split) and encodes the text between them. */
static void encode_added(const iq_tokenizer *t, const uint8_t *s, size_t len, bool all, iq_ids *out) {
    const uint8_t *first = all ? t->first_all : t->first_ns;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (!(first[s[i] >> 3] & (1u << (s[i] & 7)))) continue;
        size_t ml;
        int32_t id = added_at(t, s, len, i, all, &ml);
        if (id < 0) continue;
        encode_plain(t, s + start, i - start, out);
        iq_ids_push(out, id);
        start = i + ml;
        i = start - 1;
    }
    encode_plain(t, s + start, len - start, out);
}

void iq_tok_encode(const iq_tokenizer *t, const void *text, size_t len, iq_ids *out) {
    if (t->n_nonspecial == 0) encode_plain(t, text, len, out);
    else encode_added(t, text, len, false, out);
}

void iq_tok_encode_special(const iq_tokenizer *t, const void *text, size_t len, iq_ids *out) {
    if (t->n_special == 0) encode_plain(t, text, len, out);
    else encode_added(t, text, len, true, out);
}

int32_t iq_tok_find_special(const iq_tokenizer *t, const void *text, size_t len, size_t *at) {
    const uint8_t *s = text;
    for (size_t i = 0; i < len && t->n_special > 0; i++) {
        if (!(t->first_all[s[i] >> 3] & (1u << (s[i] & 7)))) continue;
        size_t ml;
        int32_t id = added_at(t, s, len, i, true, &ml);
        if (id >= 0 && !(t->tok_flags[id] & IQ_TOK_NONSPECIAL)) {
            if (at) *at = i;
            return id;
        }
    }
    return -1;
}

iq_status iq_tok_decode(const iq_tokenizer *t, const int32_t *ids, size_t n, iq_buf *out) {
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const uint8_t *b = iq_tok_token_bytes(t, ids[i], &l);
        if (!b) return iq_fail(IQ_EDATA, "token id %d is not in the vocabulary (size %d)", ids[i], t->vocab_size);
        iq_buf_append(out, b, l);
    }
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// loading

iq_status iq_tok_load_vocab(const char *path, const cJSON *vocab, const cJSON *added, iq_tokenizer **out) {
    if (!cJSON_IsObject(vocab)) return iq_fail(IQ_EDATA, "%s: the vocabulary is not a JSON object", path);
    int32_t max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 16777216 ||
            e->valuedouble != (double)(int32_t)e->valuedouble)
            return iq_fail(IQ_EDATA, "%s: token \"%s\" has an invalid id", path, e->string ? e->string : "?");
        if ((int32_t)e->valuedouble > max_id) max_id = (int32_t)e->valuedouble;
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content) || id->valuedouble < 0 || id->valuedouble > 16777216)
            return iq_fail(IQ_EDATA, "%s: an added token lacks a valid id or content", path);
        if ((int32_t)id->valuedouble > max_id) max_id = (int32_t)id->valuedouble;
    }
    if (max_id < 255) return iq_fail(IQ_EDATA, "%s: the vocabulary has fewer than 256 tokens", path);
    iq_tokenizer *t = iq_tok_new(max_id + 1, path);
    uint8_t *in_added = iq_xcalloc((size_t)max_id + 1, 1); /* ids defined below from added_tokens */
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next)
        in_added[(int32_t)cJSON_GetObjectItemCaseSensitive(a, "id")->valuedouble] = 1;
    iq_buf b = {0};
    iq_status st = IQ_OK;
    for (const cJSON *e = vocab->child; e && !st; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        const char *s = e->string;
        size_t n = strlen(s);
        bool is_eos = strcmp(s, IQ_EOS_TEXT) == 0;
        if (in_added[id]) continue;
        if (!is_eos && iq_tok_string_to_bytes(s, n, &b)) st = iq_tok_set_token(t, id, b.data, b.len, false);
        else st = iq_tok_set_token(t, id, s, n, true);
    }
    for (const cJSON *a = added ? added->child : NULL; a && !st; a = a->next) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(a, "id")->valuedouble;
        const char *s = cJSON_GetObjectItemCaseSensitive(a, "content")->valuestring;
        st = iq_tok_set_token(t, id, s, strlen(s), true);
        if (!st && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a, "special"))) t->tok_flags[id] |= IQ_TOK_NONSPECIAL;
    }
    free(in_added);
    iq_buf_free(&b);
    /* a special text with two ids (the vocabulary's and an added token's) would make the id it stands for depend
     * on which was looked up (found by tests/fuzz: the EOS changed across save and reload) */
    for (int i = 0; i < t->n_special && !st; i++)
        for (int j = 0; j < i && !st; j++) {
            size_t li = 0, lj = 0;
            const uint8_t *bi = iq_tok_token_bytes(t, t->special_ids[i], &li), *bj = iq_tok_token_bytes(t, t->special_ids[j], &lj);
            if (bi && bj && li == lj && memcmp(bi, bj, li) == 0)
                st = iq_fail(IQ_EDATA, "special token \"%.*s\" has two ids, %d and %d", (int)(li < 80 ? li : 80), (const char *)bi,
                             (int)t->special_ids[j], (int)t->special_ids[i]);
        }
    if (st) {
        iq_error_prefix("%s", path);
        iq_tok_free(t);
        return st;
    }
    *out = t;
    return IQ_OK;
}

iq_status iq_tok_add_merge_strings(iq_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, iq_buf *tmp) {
    int32_t ia, ib;
    if (!iq_tok_string_to_bytes(a, na, tmp) || !iq_strmap_get(t->bytes_map, tmp->data, tmp->len, &ia))
        return iq_fail(IQ_EDATA, "unknown token \"%.*s\"", (int)na, a);
    if (!iq_tok_string_to_bytes(b, nb, tmp) || !iq_strmap_get(t->bytes_map, tmp->data, tmp->len, &ib))
        return iq_fail(IQ_EDATA, "unknown token \"%.*s\"", (int)nb, b);
    return iq_tok_add_merge(t, ia, ib);
}

static iq_status load_merges_txt(iq_tokenizer *t, const char *path) {
    char *data;
    size_t len;
    iq_status st = iq_read_file(path, &data, &len);
    if (st) return st;
    iq_buf tmp = {0};
    size_t line = 0, i = 0;
    while (i < len && !st) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        size_t e = j;
        if (e > i && data[e - 1] == '\r') e--;
        line++;
        if (e > i && !(line == 1 && e - i >= 8 && memcmp(data + i, "#version", 8) == 0)) {
            const char *sp = memchr(data + i, ' ', e - i);
            if (!sp || memchr(sp + 1, ' ', (size_t)(data + e - sp - 1)) || sp == data + i || sp + 1 == data + e) {
                st = iq_fail(IQ_EDATA, "%s:%zu: expected two tokens separated by one space", path, line);
                break;
            }
            st = iq_tok_add_merge_strings(t, data + i, (size_t)(sp - data - i), sp + 1, (size_t)(data + e - sp - 1), &tmp);
            if (st) iq_error_prefix("%s:%zu", path, line);
        }
        i = j + 1;
    }
    iq_buf_free(&tmp);
    free(data);
    return st;
}

static iq_status load_vocab_and_merges(const char *vocab_path, const char *merges_path, iq_tokenizer **out) {
    cJSON *root;
    iq_status st = iq_read_json(vocab_path, &root);
    if (st) return st;
    iq_tokenizer *t = NULL;
    st = iq_tok_load_vocab(vocab_path, root, NULL, &t);
    cJSON_Delete(root);
    if (!st) st = load_merges_txt(t, merges_path);
    if (!st) {
        st = iq_tok_finish(t);
        if (st) iq_error_prefix("%s", vocab_path);
    }
    if (st) {
        iq_tok_free(t);
        return st;
    }
    *out = t;
    return IQ_OK;
}

static const char *basename_of(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static iq_status load_any(const char *path, iq_tokenizer **out);

iq_status iq_tok_load(const char *path, iq_tokenizer **out) {
    iq_status st = load_any(path, out);
    if (st) return st;
    char *jinja = iq_path_beside((*out)->source, "chat_template.jinja");
    size_t len;
    if (iq_file_exists(jinja)) st = iq_read_file(jinja, &(*out)->chat_jinja, &len);
    free(jinja);
    if (st) {
        iq_tok_free(*out);
        *out = NULL;
    }
    return st;
}

int32_t iq_tok_end_of_turn(const iq_tokenizer *t) { return t->eot; }
void iq_tok_set_end_of_turn(iq_tokenizer *t, int32_t id) { t->eot = id; }

void iq_tok_set_chat_template(iq_tokenizer *t, const char *text) {
    free(t->chat_jinja);
    t->chat_jinja = text ? iq_xstrdup(text) : NULL;
}

static iq_status load_any(const char *path, iq_tokenizer **out) {
    *out = NULL;
    if (!iq_file_exists(path)) return iq_fail(IQ_ENOINPUT, "%s: tokenizer not found", path);
    iq_status st;
    if (iq_is_dir(path)) {
        char *tj = iq_path_join(path, "tokenizer.json");
        char *vj = iq_path_join(path, "vocab.json"), *mt = iq_path_join(path, "merges.txt");
        char *ej = iq_path_join(path, "encoder.json"), *vb = iq_path_join(path, "vocab.bpe");
        char *sp = iq_path_join(path, "tokenizer.model");
        if (iq_file_exists(tj)) st = iq_tok_load_json(tj, out);
        else if (iq_file_exists(vj) && iq_file_exists(mt)) st = load_vocab_and_merges(vj, mt, out);
        else if (iq_file_exists(ej) && iq_file_exists(vb)) st = load_vocab_and_merges(ej, vb, out);
        else if (iq_file_exists(sp))
            st = iq_fail(IQ_EDATA, "%s: only a SentencePiece tokenizer.model, which is not supported (iqtrain reads "
                         "byte-level BPE: tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe)", path);
        else
            st = iq_fail(IQ_ENOINPUT, "%s: no tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe there",
                         path);
        free(sp);
        free(tj);
        free(vj);
        free(mt);
        free(ej);
        free(vb);
        return st;
    }
    const char *base = basename_of(path);
    if (strcmp(base, "vocab.json") == 0 || strcmp(base, "encoder.json") == 0) {
        size_t dl = (size_t)(base - path);
        char *dir = iq_xstrndup(path, dl ? dl : 0);
        char *m = iq_path_join(dl ? dir : ".", strcmp(base, "vocab.json") == 0 ? "merges.txt" : "vocab.bpe");
        if (!iq_file_exists(m)) st = iq_fail(IQ_ENOINPUT, "%s: no %s beside it", path, basename_of(m));
        else st = load_vocab_and_merges(path, m, out);
        free(dir);
        free(m);
        return st;
    }
    return iq_tok_load_json(path, out);
}

// ----------------------------------------------------------------------------------------------------
// saving

static char *token_string(const iq_tokenizer *t, int32_t id) {
    iq_buf b = {0};
    iq_tok_token_string(t, id, &b);
    iq_buf_cstr(&b);
    return b.data;
}

static iq_status write_json(const char *dir, const char *name, cJSON *j, bool formatted) {
    char *s = formatted ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    if (!s) return iq_fail(IQ_EINTERNAL, "out of memory printing %s", name);
    size_t n = strlen(s);
    char *p = iq_path_join(dir, name);
    iq_buf b = {0};
    iq_buf_append(&b, s, n);
    iq_buf_putc(&b, '\n');
    iq_status st = iq_write_file_atomic(p, b.data, b.len);
    iq_buf_free(&b);
    free(p);
    free(s);
    return st;
}

/* Writes a file's bytes as they were read. */
static iq_status write_raw(const char *dir, const char *name, const char *data, size_t len) {
    char *p = iq_path_join(dir, name);
    iq_status st = iq_write_file_atomic(p, data, len);
    free(p);
    return st;
}

/* tokenizer_config.json and special_tokens_map.json as iqtrain writes them: GPT-2's (EOS also as BOS and
 * UNK), or for a tokenizer.json kept as loaded whose folder had none, PreTrainedTokenizerFast with the
 * post-processor's BOS and the EOS. */
static void make_configs(const iq_tokenizer *t, char **strs, int model_max_length, cJSON **cfg_out, cJSON **stm_out) {
    bool gpt2 = !t->raw_json;
    const char *eos = t->eos >= 0 ? (gpt2 ? IQ_EOS_TEXT : strs[t->eos]) : NULL;
    const char *bos = gpt2 ? eos : t->bos >= 0 ? strs[t->bos] : NULL;
    cJSON *cfg = cJSON_CreateObject(), *stm = cJSON_CreateObject();
    cJSON_AddBoolToObject(cfg, "add_bos_token", 0);
    if (gpt2) cJSON_AddBoolToObject(cfg, "add_prefix_space", 0);
    for (int k = 0; k < 2; k++) {
        cJSON *o = k ? stm : cfg;
        if (bos) cJSON_AddStringToObject(o, "bos_token", bos);
        if (eos) cJSON_AddStringToObject(o, "eos_token", eos);
        if (eos && gpt2) cJSON_AddStringToObject(o, "unk_token", eos);
    }
    cJSON_AddBoolToObject(cfg, "clean_up_tokenization_spaces", 0);
    if (gpt2) cJSON_AddStringToObject(cfg, "errors", "replace");
    cJSON_AddNumberToObject(cfg, "model_max_length", model_max_length);
    cJSON_AddStringToObject(cfg, "tokenizer_class", gpt2 ? "GPT2Tokenizer" : "PreTrainedTokenizerFast");
    cJSON_AddStringToObject(cfg, "chat_template", IQ_CHAT_TEMPLATE);
    *cfg_out = cfg;
    *stm_out = stm;
}

iq_status iq_tok_save(const iq_tokenizer *t, const char *dir, int model_max_length) {
    char **strs = iq_xcalloc((size_t)t->vocab_size, sizeof *strs);
    for (int32_t id = 0; id < t->vocab_size; id++)
        if (t->tok_flags[id] & IQ_TOK_DEFINED) strs[id] = token_string(t, id);

    cJSON *vocab = cJSON_CreateObject();
    for (int32_t id = 0; id < t->vocab_size; id++)
        if (strs[id] && !(t->tok_flags[id] & IQ_TOK_SPECIAL)) cJSON_AddNumberToObject(vocab, strs[id], id);
    cJSON *vocab_all = cJSON_Duplicate(vocab, 1);
    for (int k = 0; k < t->n_special; k++) cJSON_AddNumberToObject(vocab_all, strs[t->special_ids[k]], t->special_ids[k]);

    iq_buf merges_txt = {0};
    iq_buf_append(&merges_txt, "#version: 0.2\n", 14);
    cJSON *merges = cJSON_CreateArray();
    iq_buf line = {0};
    for (int32_t r = 0; r < t->n_merges; r++) {
        line.len = 0;
        iq_buf_printf(&line, "%s %s", strs[t->merges[r][0]], strs[t->merges[r][1]]);
        cJSON_AddItemToArray(merges, cJSON_CreateString(line.data));
        iq_buf_append(&merges_txt, line.data, line.len);
        iq_buf_putc(&merges_txt, '\n');
    }
    iq_buf_free(&line);

    cJSON *tj = cJSON_CreateObject();
    cJSON_AddStringToObject(tj, "version", "1.0");
    cJSON_AddNullToObject(tj, "truncation");
    cJSON_AddNullToObject(tj, "padding");
    cJSON *added = cJSON_AddArrayToObject(tj, "added_tokens");
    for (int k = 0; k < t->n_special; k++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", t->special_ids[k]);
        cJSON_AddStringToObject(a, "content", strs[t->special_ids[k]]);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 1);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    cJSON_AddNullToObject(tj, "normalizer");
    const char *bl[3] = {"pre_tokenizer", "post_processor", "decoder"};
    for (int k = 0; k < 3; k++) {
        cJSON *o = cJSON_AddObjectToObject(tj, bl[k]);
        cJSON_AddStringToObject(o, "type", "ByteLevel");
        cJSON_AddBoolToObject(o, "add_prefix_space", k != 0);
        cJSON_AddBoolToObject(o, "trim_offsets", k != 1);
        cJSON_AddBoolToObject(o, "use_regex", 1);
    }
    cJSON *model = cJSON_AddObjectToObject(tj, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddItemToObject(model, "vocab", vocab_all);
    cJSON_AddItemToObject(model, "merges", merges);

    cJSON *cfg, *stm;
    make_configs(t, strs, model_max_length, &cfg, &stm);
    /* vocab.json carries EOS, like GPT-2's (a tokenizer.json kept as loaded: ordinary tokens only, like Qwen's) */
    if (t->eos >= 0 && !t->raw_json) cJSON_AddNumberToObject(vocab, IQ_EOS_TEXT, t->eos);
    iq_status st = t->raw_json ? write_raw(dir, "tokenizer.json", t->raw_json, t->raw_json_len)
                               : write_json(dir, "tokenizer.json", tj, false);
    if (!st) st = write_json(dir, "vocab.json", vocab, false);
    if (!st) st = write_raw(dir, "merges.txt", merges_txt.data, merges_txt.len);
    if (!st) st = t->raw_config ? write_raw(dir, "tokenizer_config.json", t->raw_config, t->raw_config_len)
                                : write_json(dir, "tokenizer_config.json", cfg, true);
    if (!st) st = t->raw_stm ? write_raw(dir, "special_tokens_map.json", t->raw_stm, t->raw_stm_len)
                             : write_json(dir, "special_tokens_map.json", stm, true);
    if (!st && t->chat_jinja) st = write_raw(dir, "chat_template.jinja", t->chat_jinja, strlen(t->chat_jinja));

    cJSON_Delete(tj);
    cJSON_Delete(vocab);
    cJSON_Delete(cfg);
    cJSON_Delete(stm);
    iq_buf_free(&merges_txt);
    for (int32_t id = 0; id < t->vocab_size; id++) free(strs[id]);
    free(strs);
    return st;
}
