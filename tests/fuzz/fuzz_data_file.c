/* fuzz_data_file.c — whole demonstration files: iq_data_load and iq_data_scan_text (DESIGN §3).
 *
 * The input is written to a file and loaded as plain JSONL or gzip (by its magic bytes; multi-member,
 * trailing garbage and truncation are errors). Properties: the dataset's offsets, flags and counts agree
 * with each other; for plain input the rows equal what iq_data_encode_row gives line by line (so the
 * line reader splits exactly at '\n', hands out the last line without one, and counts lines); the scan
 * for tokenizer training accepts and refuses exactly the same input. */
#include "fuzz_common.h"
#include "iqtrain/data.h"
#include "iqtrain/tokenizer.h"

static iq_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (iq_tok_load(fuzz_gpt2_dir(), &g_tok) != IQ_OK) {
        fprintf(stderr, "fuzz_data_file: cannot load the GPT-2 tokenizer: %s\n", iq_last_error());
        abort();
    }
    return 0;
}

static void count_text(void *ctx, const char *s, size_t len) {
    (void)s;
    *(size_t *)ctx += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    fuzz_path(path, sizeof path, "data.jsonl");
    fuzz_write(path, data, size);
    uint32_t h = fuzz_hash(data, size);
    iq_data_opts o = {.max_seq_len = (h & 1) ? (int32_t)(1 + (h >> 1) % 40) : 0, .skip_bad_rows = (h & 2) != 0};
    const char *paths[1] = {path};
    iq_dataset *d = NULL;
    iq_status st = iq_data_load(paths, 1, g_tok, &o, &d);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "status %d: %s", (int)st, iq_last_error());
    FUZZ_CHECK((st == IQ_OK) == (d != NULL), "status %d with dataset %p", (int)st, (void *)d);

    iq_data_stats scan;
    size_t text_bytes = 0;
    iq_status st2 = iq_data_scan_text(paths, 1, &o, count_text, &text_bytes, &scan);
    /* the scan skips the same bad rows; it fails only where loading fails (loading also fails when every
     * row is too long for max_seq_len) */
    if (st2 != IQ_OK) FUZZ_CHECK(st != IQ_OK, "the scan failed (%d) where loading succeeded", (int)st2);
    if (st == IQ_OK) {
        FUZZ_CHECK(st2 == IQ_OK, "loading succeeded, the scan failed: %s", iq_last_error());
        const iq_data_stats *s = &d->stats;
        FUZZ_CHECK(d->n_rows == s->rows && s->rows > 0, "%zu rows, stats %zu", d->n_rows, s->rows);
        FUZZ_CHECK(scan.rows == s->rows + s->skipped && scan.bad == s->bad && scan.blank == s->blank,
                   "scan rows %zu bad %zu blank %zu vs load rows %zu skipped %zu bad %zu blank %zu", scan.rows, scan.bad,
                   scan.blank, s->rows, s->skipped, s->bad, s->blank);
        FUZZ_CHECK(d->row_off[0] == 0 && d->row_off[d->n_rows] == s->tokens, "offsets");
        size_t sup = 0, maxlen = 0, trunc = 0, fmt[3] = {0};
        for (size_t r = 0; r < d->n_rows; r++) {
            size_t a = d->row_off[r], b = d->row_off[r + 1];
            FUZZ_CHECK(b > a, "row %zu is empty", r);
            if (b - a > maxlen) maxlen = b - a;
            if (o.max_seq_len) FUZZ_CHECK(b - a <= (size_t)o.max_seq_len, "row %zu has %zu ids", r, b - a);
            FUZZ_CHECK(d->tok_flags[b - 1] & IQ_TOK_SUPERVISED, "row %zu ends unsupervised", r);
            for (size_t i = a; i < b; i++) {
                FUZZ_CHECK(d->ids[i] >= 0 && d->ids[i] < iq_tok_vocab_size(g_tok), "id %d", d->ids[i]);
                sup += (d->tok_flags[i] & IQ_TOK_SUPERVISED) != 0;
            }
            trunc += (d->row_flags[r] & IQ_ROW_TRUNCATED) != 0;
            FUZZ_CHECK(d->row_format[r] < 3 && d->row_file[r] == 0 && d->row_line[r] >= 1, "row %zu bookkeeping", r);
            if (r) FUZZ_CHECK(d->row_line[r] > d->row_line[r - 1], "row lines out of order");
            fmt[d->row_format[r]]++;
        }
        FUZZ_CHECK(sup == s->supervised && maxlen == s->max_len && trunc == s->truncated, "stats disagree with the rows");
        FUZZ_CHECK(fmt[0] == s->by_format[0] && fmt[1] == s->by_format[1] && fmt[2] == s->by_format[2], "by_format");
    }

    /* plain input: the same rows line by line */
    if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
        char *buf = malloc(size + 1);
        memcpy(buf, data, size);
        buf[size] = 0;
        iq_row row = {0};
        size_t start = 0, lineno = 0, rows = 0, bad = 0, tokens = 0;
        bool failed = false;
        while (start < size && !failed) {
            char *nl = memchr(buf + start, '\n', size - start);
            size_t end = nl ? (size_t)(nl - buf) : size;
            char saved = buf[end];
            buf[end] = 0;
            lineno++;
            iq_row_result r = iq_data_encode_row(g_tok, NULL, buf + start, end - start, lineno == 1, o.max_seq_len, &row, NULL);
            buf[end] = saved;
            if (r == IQ_ROW_BAD) {
                bad++;
                if (!o.skip_bad_rows) failed = true;
            } else if (r == IQ_ROW_OK) {
                FUZZ_CHECK(st != IQ_OK || (rows < d->n_rows && d->row_line[rows] == lineno &&
                                           d->row_off[rows + 1] - d->row_off[rows] == row.ids.len &&
                                           fuzz_eq(d->ids + d->row_off[rows], row.ids.v, row.ids.len * sizeof *row.ids.v) &&
                                           fuzz_eq(d->tok_flags + d->row_off[rows], row.flags.data, row.flags.len)),
                           "line %zu differs from the loaded row %zu", lineno, rows);
                rows++;
                tokens += row.ids.len;
            }
            start = end + 1;
        }
        iq_row_free(&row);
        free(buf);
        if (failed) FUZZ_CHECK(st == IQ_EDATA, "a bad line was accepted");
        else if (rows == 0) FUZZ_CHECK(st == IQ_EDATA, "no usable rows, yet loaded");
        else {
            FUZZ_CHECK(st == IQ_OK, "line by line fine, loading failed: %s", iq_last_error());
            FUZZ_CHECK(rows == d->n_rows && tokens == d->stats.tokens && bad == d->stats.bad, "counts differ");
        }
    }
    iq_data_free(d);
    return 0;
}
