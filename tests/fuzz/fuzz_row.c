/* fuzz_row.c — one JSONL row -> ids and supervision mask (iq_data_encode_row, DESIGN §3).
 *
 * The input is one line (without its '\n'). Properties checked on every accepted row:
 *   ids in the vocabulary; flags only SUPERVISED|TERMINAL; TERMINAL only on a supervised EOS; the last id
 *   supervised; an untruncated row ends with a terminal EOS; text rows start with a context EOS;
 *   with max_seq_len, the ids and flags are a prefix of the unlimited encoding (and no longer than the
 *   limit), marked truncated exactly when something was cut before the last supervised id;
 *   the result does not depend on first_line unless the line starts with a UTF-8 BOM;
 *   the line buffer is unchanged (the function restores the byte it borrows). */
#include "fuzz_common.h"
#include "iqtrain/data.h"
#include "iqtrain/tokenizer.h"

static iq_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (iq_tok_load(fuzz_gpt2_dir(), &g_tok) != IQ_OK) {
        fprintf(stderr, "fuzz_row: cannot load the GPT-2 tokenizer: %s\n", iq_last_error());
        abort();
    }
    return 0;
}

static void check_row(const iq_row *r, iq_row_result res) {
    int32_t V = iq_tok_vocab_size(g_tok), eos = iq_tok_eos(g_tok);
    if (res != IQ_ROW_OK) {
        FUZZ_CHECK(r->ids.len == 0 && r->flags.len == 0, "result %d with %zu ids", (int)res, r->ids.len);
        return;
    }
    size_t n = r->ids.len;
    FUZZ_CHECK(n > 0 && r->flags.len == n, "%zu ids, %zu flags", n, r->flags.len);
    FUZZ_CHECK(r->format == IQ_FMT_PROMPT || r->format == IQ_FMT_TEXT || r->format == IQ_FMT_MESSAGES, "format %d",
               (int)r->format);
    for (size_t i = 0; i < n; i++) {
        uint8_t f = (uint8_t)r->flags.data[i];
        FUZZ_CHECK(r->ids.v[i] >= 0 && r->ids.v[i] < V, "id %d at %zu", r->ids.v[i], i);
        FUZZ_CHECK((f & ~(IQ_TOK_SUPERVISED | IQ_TOK_TERMINAL)) == 0, "flags 0x%x at %zu", f, i);
        if (f & IQ_TOK_TERMINAL)
            FUZZ_CHECK((f & IQ_TOK_SUPERVISED) && r->ids.v[i] == eos, "terminal flag on id %d at %zu", r->ids.v[i], i);
    }
    FUZZ_CHECK(r->flags.data[n - 1] & IQ_TOK_SUPERVISED, "last id not supervised");
    if (!r->truncated)
        FUZZ_CHECK(r->ids.v[n - 1] == eos && (r->flags.data[n - 1] & IQ_TOK_TERMINAL), "untruncated row ends with %d",
                   r->ids.v[n - 1]);
    if (r->format == IQ_FMT_TEXT) FUZZ_CHECK(r->ids.v[0] == eos && r->flags.data[0] == 0, "text row without a BOS");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the API wants a writable line followed by a NUL */
    char *line = malloc(size + 1), *copy = malloc(size + 1);
    memcpy(line, data, size);
    line[size] = 0;
    memcpy(copy, line, size + 1);

    iq_row full = {0}, cut = {0}, other = {0};
    iq_buf reason = {0};
    iq_row_result r1 = iq_data_encode_row(g_tok, NULL, line, size, true, 0, &full, &reason);
    FUZZ_CHECK(fuzz_eq(line, copy, size + 1), "the line was modified");
    check_row(&full, r1);
    if (r1 == IQ_ROW_BAD) FUZZ_CHECK(reason.len > 0 && strlen(reason.data) == reason.len, "a bad row without a reason");
    FUZZ_CHECK(r1 != IQ_ROW_SKIPPED, "skipped without a length limit");

    /* the same row under a length limit (derived from the input, so that a crash reproduces) */
    int32_t lim = 1 + (int32_t)(fuzz_hash(data, size) % 24);
    iq_row_result r2 = iq_data_encode_row(g_tok, NULL, line, size, true, lim, &cut, NULL);
    FUZZ_CHECK(fuzz_eq(line, copy, size + 1), "the line was modified");
    check_row(&cut, r2);
    if (r1 != IQ_ROW_OK) {
        FUZZ_CHECK(r2 == r1, "result %d without a limit, %d with limit %d", (int)r1, (int)r2, lim);
    } else if (r2 == IQ_ROW_SKIPPED) {
        /* nothing supervised within the limit */
        for (size_t i = 0; i < full.ids.len && i < (size_t)lim; i++)
            FUZZ_CHECK(!(full.flags.data[i] & IQ_TOK_SUPERVISED), "skipped, but id %zu < %d is supervised", i, lim);
    } else {
        FUZZ_CHECK(r2 == IQ_ROW_OK, "result %d with limit %d", (int)r2, lim);
        FUZZ_CHECK(cut.ids.len <= (size_t)lim && cut.ids.len <= full.ids.len, "%zu ids with limit %d", cut.ids.len, lim);
        FUZZ_CHECK(fuzz_eq(cut.ids.v, full.ids.v, cut.ids.len * sizeof *cut.ids.v), "ids are not a prefix");
        FUZZ_CHECK(fuzz_eq(cut.flags.data, full.flags.data, cut.ids.len), "flags are not a prefix");
        FUZZ_CHECK(cut.truncated == (full.ids.len > (size_t)lim), "truncated %d: %zu ids, limit %d", cut.truncated,
                   full.ids.len, lim);
        FUZZ_CHECK(cut.format == full.format, "format changed");
    }

    /* first_line only matters for a BOM */
    bool bom = size >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF;
    iq_row_result r3 = iq_data_encode_row(g_tok, NULL, line, size, false, 0, &other, NULL);
    check_row(&other, r3);
    if (!bom) {
        FUZZ_CHECK(r3 == r1 && other.ids.len == full.ids.len &&
                       fuzz_eq(other.ids.v, full.ids.v, full.ids.len * sizeof *full.ids.v),
                   "first_line changed the result of a line without a BOM");
    } else if (r1 == IQ_ROW_OK && r3 == IQ_ROW_OK) {
        /* (cJSON itself skips a BOM, so a later line that starts with one may be accepted too) */
        FUZZ_CHECK(other.ids.len == full.ids.len && fuzz_eq(other.ids.v, full.ids.v, full.ids.len * sizeof *full.ids.v),
                   "a BOM line encodes differently as a later line");
    }

    iq_row_free(&full);
    iq_row_free(&cut);
    iq_row_free(&other);
    iq_buf_free(&reason);
    free(line);
    free(copy);
    return 0;
}
