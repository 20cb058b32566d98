/* fuzz_tokenizer_files.c — iq_tok_load on every tokenizer file layout (DESIGN §4).
 *
 * The first byte of the input picks the layout; the rest is the file content:
 *   't'  tokenizer.json (a folder holding it)          'f'  tokenizer.json given as a file path
 *   'v'  vocab.json + merges.txt (folder), split at the first NUL byte
 *   'e'  encoder.json + vocab.bpe (folder), split at the first NUL byte
 *   'j'  vocab.json + merges.txt, the vocab file given as a path
 *   anything else: the whole input is tokenizer.json (so plain JSON inputs work as they are)
 * Properties: only 0 / 65 come back (66 cannot: the files exist); a loaded tokenizer has every byte,
 * encodes and decodes a sample and the input losslessly (up to NFC when the file normalizes), and survives iq_tok_save -> iq_tok_load with
 * the same ids, token bytes, merges and special tokens (also from its vocab.json + merges.txt alone
 * when <|endoftext|> is its only special token). */
#include "fuzz_common.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"
#include "iqtrain/util.h"
#include "tokenizer_internal.h"

static char g_dir[600], g_saved[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_path(g_dir, sizeof g_dir, "tok");
    fuzz_path(g_saved, sizeof g_saved, "saved");
    return 0;
}

static void reset_dir(const char *dir) {
    fuzz_rm_tree(dir);
    fuzz_mkdir(dir);
}

static void roundtrip(const iq_tokenizer *t, const uint8_t *data, size_t size) {
    static const char sample[] = "Hello world! It's 2024 -- naïve café 🍰\n\t  spaces  <|endoftext|> end";
    const void *texts[2] = {sample, data};
    size_t lens[2] = {sizeof sample - 1, size};
    for (int k = 0; k < 2; k++) {
        iq_ids ids = {0};
        iq_buf out = {0};
        iq_buf want = {0}; /* x, or NFC(x) for a tokenizer that normalizes */
        if (iq_tok_nfc(t)) iq_nfc(texts[k], lens[k], &want);
        else iq_buf_append(&want, texts[k], lens[k]);
        iq_tok_encode_special(t, texts[k], lens[k], &ids);
        FUZZ_CHECK(iq_tok_decode(t, ids.v, ids.len, &out) == IQ_OK, "decode: %s", iq_last_error());
        FUZZ_CHECK(out.len == want.len && (want.len == 0 || fuzz_eq(out.data, want.data, want.len)),
                   "decode(encode(x)) != %sx for text %d", iq_tok_nfc(t) ? "NFC " : "", k);
        iq_buf_free(&out);
        iq_buf_free(&want);
        iq_ids_free(&ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char mode = size ? (char)data[0] : 0;
    const uint8_t *body = data;
    size_t n = size;
    if (mode == 't' || mode == 'f' || mode == 'v' || mode == 'e' || mode == 'j') {
        body++;
        n--;
    } else {
        mode = 't';
    }
    reset_dir(g_dir);
    char p1[700], p2[700], load_path[700];
    const uint8_t *nul = memchr(body, 0, n);
    size_t a = nul ? (size_t)(nul - body) : n;
    const uint8_t *rest = nul ? nul + 1 : body + n;
    size_t nrest = nul ? n - a - 1 : 0;
    snprintf(load_path, sizeof load_path, "%s", g_dir);
    if (mode == 't' || mode == 'f') {
        snprintf(p1, sizeof p1, "%s/tokenizer.json", g_dir);
        fuzz_write(p1, body, n);
        if (mode == 'f') snprintf(load_path, sizeof load_path, "%s", p1);
    } else {
        bool enc = mode == 'e';
        snprintf(p1, sizeof p1, "%s/%s", g_dir, enc ? "encoder.json" : "vocab.json");
        snprintf(p2, sizeof p2, "%s/%s", g_dir, enc ? "vocab.bpe" : "merges.txt");
        fuzz_write(p1, body, a);
        fuzz_write(p2, rest, nrest);
        if (mode == 'j') snprintf(load_path, sizeof load_path, "%s", p1);
    }

    iq_tokenizer *t = NULL;
    iq_status st = iq_tok_load(load_path, &t);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "status %d: %s", (int)st, iq_last_error());
    FUZZ_CHECK((st == IQ_OK) == (t != NULL), "status and tokenizer disagree");
    if (st) {
        FUZZ_CHECK(strlen(iq_last_error()) > 0, "a failure without a message");
        return 0;
    }
    int32_t V = iq_tok_vocab_size(t);
    FUZZ_CHECK(V >= 256, "vocabulary of %d", V);
    roundtrip(t, data, size);

    /* save and load again: the same tokenizer (a sparse vocabulary of millions of ids is legal but slow
     * to save; the property is the same for small ones) */
    if (V <= 200000) {
        reset_dir(g_saved);
        st = iq_tok_save(t, g_saved, 1024);
        FUZZ_CHECK(st == IQ_OK, "save: %s", iq_last_error());
        /* vocab.json + merges.txt carry <|endoftext|> but no other special token (like GPT-2's files) */
        bool only_eos = t->n_special == 0 || (t->n_special == 1 && t->special_ids[0] == t->eos);
        only_eos = only_eos && !t->raw_json; /* a tokenizer.json written back as loaded has no vocab.json */
        for (int layout = 0; layout < (only_eos ? 2 : 1); layout++) {
            if (layout == 1) { /* vocab.json + merges.txt alone */
                char tj[700];
                snprintf(tj, sizeof tj, "%s/tokenizer.json", g_saved);
                unlink(tj);
            }
            iq_tokenizer *u = NULL;
            st = iq_tok_load(g_saved, &u);
            FUZZ_CHECK(st == IQ_OK, "reloading the saved tokenizer (layout %d): %s", layout, iq_last_error());
            FUZZ_CHECK(iq_tok_vocab_size(u) == V && iq_tok_n_merges(u) == iq_tok_n_merges(t) &&
                           iq_tok_eos(u) == iq_tok_eos(t),
                       "layout %d: vocab %d/%d merges %d/%d eos %d/%d", layout, iq_tok_vocab_size(u), V,
                       iq_tok_n_merges(u), iq_tok_n_merges(t), iq_tok_eos(u), iq_tok_eos(t));
            for (int32_t id = 0; id < V; id++) {
                size_t l1 = 0, l2 = 0;
                const uint8_t *b1 = iq_tok_token_bytes(t, id, &l1), *b2 = iq_tok_token_bytes(u, id, &l2);
                FUZZ_CHECK((b1 == NULL) == (b2 == NULL) && l1 == l2 && (!b1 || fuzz_eq(b1, b2, l1)),
                           "layout %d: token %d differs after save/load", layout, id);
            }
            iq_ids x = {0}, y = {0};
            iq_tok_encode_special(t, data, size, &x);
            iq_tok_encode_special(u, data, size, &y);
            FUZZ_CHECK(x.len == y.len && fuzz_eq(x.v, y.v, x.len * sizeof *x.v),
                       "layout %d: the reloaded tokenizer encodes differently", layout);
            iq_ids_free(&x);
            iq_ids_free(&y);
            iq_tok_free(u);
        }
    }
    iq_tok_free(t);
    return 0;
}
