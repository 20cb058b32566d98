/* fuzz_tokenizer_encode.c — what `iqtrain tokenize` does with arbitrary bytes: iq_tok_encode,
 * iq_tok_encode_special and iq_tok_decode (DESIGN §4), with GPT-2's tokenizer and with a BPE trained on
 * the input itself (iq_bpe_trainer_*: the `train-tokenizer` path); the Llama 3 / Qwen2 pre-tokenizers
 * and NFC (check_llama_qwen_nfc).
 *
 * Properties: the pre-tokenizer's pieces partition the input; decode(encode(x)) == x and
 * decode(encode_special(x)) == x; encode_special equals encode when x holds no special token's text;
 * every piece's ids equal a naive, independent implementation of encoder.py's BPE loop (this covers
 * the O(n log n) heap path taken by pieces longer than 64 bytes); a trained tokenizer has the requested
 * size at most, <|endoftext|> last, and encodes its own training text losslessly. */
#include <limits.h>

#include "fuzz_common.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"
#include "iqtrain/util.h"
#include "tokenizer_internal.h"

static iq_tokenizer *g_gpt2;
static uint8_t g_byte_order[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (iq_tok_load(fuzz_gpt2_dir(), &g_gpt2) != IQ_OK) {
        fprintf(stderr, "fuzz_tokenizer_encode: cannot load the GPT-2 tokenizer: %s\n", iq_last_error());
        abort();
    }
    for (int i = 0; i < 256; i++) g_byte_order[i] = iq_byte_order(i);
    return 0;
}

/* ---- reference BPE: encoder.py's loop, written independently of tokenizer.c's hash and heap */

typedef struct {
    iq_strmap *rank; /* 8-byte key (left, right) -> lowest rank */
} ref_bpe;

static ref_bpe ref_new(const iq_tokenizer *t) {
    ref_bpe r = {iq_strmap_new((size_t)t->n_merges + 1)};
    for (int32_t k = 0; k < t->n_merges; k++) {
        int32_t key[2] = {t->merges[k][0], t->merges[k][1]}, old;
        if (!iq_strmap_get(r.rank, key, sizeof key, &old)) iq_strmap_put(r.rank, key, sizeof key, k);
    }
    return r;
}

static int32_t ref_rank(const ref_bpe *r, int32_t a, int32_t b) {
    int32_t key[2] = {a, b}, v;
    return iq_strmap_get(r->rank, key, sizeof key, &v) ? v : INT32_MAX;
}

/* BPE of one piece into sym (returns the count). */
static size_t ref_piece(const iq_tokenizer *t, const ref_bpe *r, const uint8_t *p, size_t n, int32_t *sym) {
    for (size_t i = 0; i < n; i++) sym[i] = t->byte_id[p[i]];
    size_t m = n;
    for (;;) {
        int32_t best = INT32_MAX;
        for (size_t i = 0; i + 1 < m; i++) {
            int32_t k = ref_rank(r, sym[i], sym[i + 1]);
            if (k < best) best = k;
        }
        if (best == INT32_MAX) return m;
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
    }
}

static bool has_special_text(const iq_tokenizer *t, const uint8_t *data, size_t size) {
    for (int k = 0; k < t->n_special; k++) {
        size_t l;
        const uint8_t *b = iq_tok_token_bytes(t, t->special_ids[k], &l);
        if (memmem(data, size, b, l)) return true;
    }
    return false;
}

static void check_tokenizer(const iq_tokenizer *t, const ref_bpe *ref, const uint8_t *data, size_t size, const char *what) {
    /* pieces partition the input */
    size_t i = 0, n_pieces = 0;
    while (i < size) {
        size_t j = iq_pretok_next(data, size, i);
        FUZZ_CHECK(j > i && j <= size, "%s: pre-tokenizer piece [%zu, %zu)", what, i, j);
        i = j;
        n_pieces++;
    }

    iq_ids ids = {0}, ids_sp = {0};
    iq_tok_encode(t, data, size, &ids);
    FUZZ_CHECK(ids.len <= size && (size == 0 || ids.len >= n_pieces), "%s: %zu ids for %zu bytes, %zu pieces", what,
               ids.len, size, n_pieces);
    iq_buf out = {0};
    FUZZ_CHECK(iq_tok_decode(t, ids.v, ids.len, &out) == IQ_OK, "%s: decode failed: %s", what, iq_last_error());
    FUZZ_CHECK(out.len == size && (size == 0 || fuzz_eq(out.data, data, size)), "%s: decode(encode(x)) != x", what);
    for (size_t k = 0; k < ids.len; k++) {
        FUZZ_CHECK(ids.v[k] >= 0 && ids.v[k] < t->vocab_size && !(t->tok_flags[ids.v[k]] & IQ_TOK_SPECIAL),
                   "%s: encode produced id %d", what, ids.v[k]);
    }

    /* piece by piece against the reference */
    if (ref) {
        int32_t *sym = malloc((size ? size : 1) * sizeof *sym);
        size_t pos = 0;
        i = 0;
        while (i < size) {
            size_t j = iq_pretok_next(data, size, i);
            size_t m = ref_piece(t, ref, data + i, j - i, sym);
            FUZZ_CHECK(pos + m <= ids.len && fuzz_eq(ids.v + pos, sym, m * sizeof *sym),
                       "%s: the piece at byte %zu (%zu bytes) differs from encoder.py's BPE", what, i, j - i);
            pos += m;
            i = j;
        }
        FUZZ_CHECK(pos == ids.len, "%s: %zu ids, the reference has %zu", what, ids.len, pos);
        free(sym);
    }

    iq_tok_encode_special(t, data, size, &ids_sp);
    out.len = 0;
    FUZZ_CHECK(iq_tok_decode(t, ids_sp.v, ids_sp.len, &out) == IQ_OK, "%s: decode failed", what);
    FUZZ_CHECK(out.len == size && (size == 0 || fuzz_eq(out.data, data, size)),
               "%s: decode(encode_special(x)) != x", what);
    if (!has_special_text(t, data, size))
        FUZZ_CHECK(ids_sp.len == ids.len && fuzz_eq(ids_sp.v, ids.v, ids.len * sizeof *ids.v),
                   "%s: encode_special differs from encode without special text", what);
    iq_buf_free(&out);
    iq_ids_free(&ids);
    iq_ids_free(&ids_sp);
}

/* The Llama 3 and Qwen2 pre-tokenizers: pieces partition the input, digit runs are at most 3 (1) long;
 * NFC: the quick check never passes text that NFC changes, NFC is idempotent, and invalid bytes survive. */
static void check_llama_qwen_nfc(const uint8_t *data, size_t size) {
    for (int k = 0; k < 2; k++) {
        iq_pretok_kind kind = k ? IQ_PRETOK_QWEN2 : IQ_PRETOK_LLAMA3;
        for (size_t i = 0; i < size;) {
            size_t j = iq_pretok_split(kind, data, size, i);
            FUZZ_CHECK(j > i && j <= size, "%s: piece [%zu, %zu)", iq_pretok_name(kind), i, j);
            uint32_t cp;
            size_t l = iq_utf8_decode(data + i, size - i, &cp), digits = 0;
            for (size_t p = i; iq_uc_class(cp) == IQ_UC_NUMBER && p < j; p += l, l = p < size ? iq_utf8_decode(data + p, size - p, &cp) : 0)
                digits++;
            FUZZ_CHECK(digits <= (k ? 1u : 3u), "%s: a piece of %zu digits", iq_pretok_name(kind), digits);
            i = j;
        }
    }
    iq_buf a = {0}, b = {0};
    iq_nfc(data, size, &a);
    iq_nfc((const uint8_t *)a.data, a.len, &b);
    FUZZ_CHECK(a.len == b.len && (a.len == 0 || fuzz_eq(a.data, b.data, a.len)), "NFC is not idempotent");
    if (iq_nfc_quick_check(data, size))
        FUZZ_CHECK(a.len == size && (size == 0 || fuzz_eq(a.data, data, size)), "the NFC quick check passed non-NFC text");
    size_t bad_in = 0, bad_out = 0;
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        size_t l = iq_utf8_decode(data + i, size - i, &cp);
        bad_in += l == 1 && data[i] >= 0x80;
        i += l;
    }
    for (size_t i = 0; i < a.len;) {
        uint32_t cp;
        size_t l = iq_utf8_decode((const uint8_t *)a.data + i, a.len - i, &cp);
        bad_out += l == 1 && (uint8_t)a.data[i] >= 0x80;
        i += l;
    }
    FUZZ_CHECK(bad_in == bad_out, "NFC changed the number of invalid bytes (%zu -> %zu)", bad_in, bad_out);
    iq_buf_free(&a);
    iq_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_llama_qwen_nfc(data, size);
    /* the reference is quadratic in the piece length: long inputs are only checked for the round trip */
    static ref_bpe gpt2_ref;
    if (!gpt2_ref.rank) gpt2_ref = ref_new(g_gpt2);
    check_tokenizer(g_gpt2, size <= 1024 ? &gpt2_ref : NULL, data, size, "gpt2");

    /* a BPE trained on the input (split in two texts at the first NUL, as train-tokenizer sees segments);
     * training sets up tables of fixed size (64K pairs), which costs more than the rest: every fourth input */
    uint32_t h = fuzz_hash(data, size);
    if (size <= 2048 && h % 4 == 0) {
        int32_t vocab = 257 + (int32_t)((h / 4) % 96);
        iq_bpe_trainer *tr = iq_bpe_trainer_new();
        const uint8_t *nul = memchr(data, 0, size);
        size_t a = nul ? (size_t)(nul - data) : size;
        iq_bpe_trainer_add(tr, data, a);
        if (nul) iq_bpe_trainer_add(tr, nul + 1, size - a - 1);
        iq_tokenizer *t = NULL;
        iq_status st = iq_bpe_trainer_train(tr, vocab, &t);
        FUZZ_CHECK(st == IQ_OK, "training failed: %s", iq_last_error());
        FUZZ_CHECK(iq_tok_vocab_size(t) <= vocab && iq_tok_vocab_size(t) >= 257, "trained vocabulary %d, asked %d",
                   iq_tok_vocab_size(t), vocab);
        FUZZ_CHECK(iq_tok_eos(t) == iq_tok_vocab_size(t) - 1, "<|endoftext|> is not last");
        FUZZ_CHECK(iq_tok_n_merges(t) >= iq_tok_vocab_size(t) - 257, "%d merges for %d ids", iq_tok_n_merges(t),
                   iq_tok_vocab_size(t));
        for (int b = 0; b < 256; b++) {
            size_t l;
            const uint8_t *p = iq_tok_token_bytes(t, b, &l);
            FUZZ_CHECK(p && l == 1 && p[0] == g_byte_order[b], "id %d is not byte %d", b, g_byte_order[b]);
        }
        ref_bpe ref = ref_new(t);
        check_tokenizer(t, &ref, data, size, "trained");
        iq_strmap_free(ref.rank);
        iq_tok_free(t);
        iq_bpe_trainer_free(tr);
    }
    return 0;
}
