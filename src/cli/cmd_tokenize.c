/* cmd_tokenize.c — `iqtrain tokenize`: encode stdin, decode ids, or show what the trainer sees of data. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/chat_format.h"
#include "iqtrain/data.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"

static const opt_spec OPTS[] = {
    {"tokenizer", OPT_STR, NULL, "PATH", "tokenizer folder or file (tokenizer.json, vocab.json, encoder.json)", NULL, NULL},
    {"allow-special", OPT_FLAG, NULL, NULL, "encode <|endoftext|> in the input as the special id", NULL, NULL},
    {"decode", OPT_FLAG, NULL, NULL, "read ids from stdin and write the bytes they stand for", NULL, NULL},
    {"data", OPT_LIST, NULL, "FILE", "demonstration files (JSONL or gzip; more may follow as arguments)", NULL, NULL},
    {"chat-template", OPT_STR, NULL, "FILE", "with --data: render messages rows with this template instead of the "
     "tokenizer's", NULL, NULL},
    {"show-mask", OPT_FLAG, NULL, NULL, "with --data: show each row's tokens, [supervised], $ terminal, ~ bootstrap", NULL, NULL},
    {"limit", OPT_INT, NULL, "N", "with --data: print at most N rows (all rows are still validated)", NULL, "[0,inf)"},
    {"max-seq-len", OPT_INT, NULL, "N", "with --data: truncate rows as training would (0 = no limit)", NULL, "[0,inf)"},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "with --data: skip and count bad rows instead of stopping (--show-mask names each)", NULL, NULL},
    {"json", OPT_FLAG, NULL, NULL, "with --data: print only the summary, as one JSON object", NULL, NULL},
};

static char *read_stdin(size_t *len) {
    iq_buf b = {0};
    char tmp[1 << 16];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, stdin)) > 0) iq_buf_append(&b, tmp, n);
    iq_buf_reserve(&b, 0);
    *len = b.len;
    return b.data;
}

/* One token as readable text: escapes for control characters, '|', '[', ']', '\' and bytes that are not
 * valid UTF-8 on their own. */
static void put_token_text(iq_buf *out, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = iq_utf8_decode(p + i, n - i, &cp);
        if (cp >= 0xDC80 && cp <= 0xDCFF && l == 1) iq_buf_printf(out, "\\x%02X", p[i]);
        else if (cp == '\n') iq_buf_append(out, "\\n", 2);
        else if (cp == '\t') iq_buf_append(out, "\\t", 2);
        else if (cp == '\r') iq_buf_append(out, "\\r", 2);
        else if (cp < 0x20 || cp == 0x7F) iq_buf_printf(out, "\\x%02X", (unsigned)cp);
        else if (cp == '\\' || cp == '|' || cp == '[' || cp == ']') {
            iq_buf_putc(out, '\\');
            iq_buf_putc(out, (char)cp);
        } else iq_buf_append(out, p + i, l);
        i += l;
    }
}

static void print_summary_text(const iq_dataset *d, FILE *f) {
    const iq_data_stats *s = &d->stats;
    fprintf(f,
            "rows %zu (prompt/completion %zu, text %zu, messages %zu) · tokens %zu · supervised %zu · truncated %zu · "
            "skipped %zu · bad %zu · longest row %zu tokens\n",
            s->rows, s->by_format[IQ_FMT_PROMPT], s->by_format[IQ_FMT_TEXT], s->by_format[IQ_FMT_MESSAGES], s->tokens,
            s->supervised, s->truncated, s->skipped, s->bad, s->max_len);
}

static void print_summary_json(const iq_dataset *d) {
    const iq_data_stats *s = &d->stats;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "rows", (double)s->rows);
    cJSON_AddNumberToObject(j, "tokens", (double)s->tokens);
    cJSON_AddNumberToObject(j, "supervised", (double)s->supervised);
    cJSON_AddNumberToObject(j, "truncated", (double)s->truncated);
    cJSON_AddNumberToObject(j, "skipped", (double)s->skipped);
    cJSON_AddNumberToObject(j, "bad", (double)s->bad);
    cJSON_AddNumberToObject(j, "blank", (double)s->blank);
    cJSON_AddNumberToObject(j, "max_len", (double)s->max_len);
    cJSON *f = cJSON_AddObjectToObject(j, "formats");
    cJSON_AddNumberToObject(f, "prompt_completion", (double)s->by_format[IQ_FMT_PROMPT]);
    cJSON_AddNumberToObject(f, "text", (double)s->by_format[IQ_FMT_TEXT]);
    cJSON_AddNumberToObject(f, "messages", (double)s->by_format[IQ_FMT_MESSAGES]);
    char *str = cJSON_PrintUnformatted(j);
    printf("%s\n", str);
    free(str);
    cJSON_Delete(j);
}

static int run_data(opt_set *o, const iq_tokenizer *tok) {
    /* --data a b c: the first file is the option's value, the rest arrive as positional arguments */
    char **files;
    int n = args_files(o, "data", true, &files);
    iq_chat_format *chat = NULL;
    iq_status st = iq_chat_format_load(tok, opt_str(o, "chat-template"), &chat);
    iq_data_opts dopt = {.max_seq_len = (int32_t)opt_int(o, "max-seq-len"),
                         .chat = chat,
                         .skip_bad_rows = opt_flag(o, "skip-bad-rows"),
                         .warn_every_bad_row = opt_flag(o, "show-mask"),
                         .progress = true};
    iq_dataset *d = NULL;
    if (!st) st = iq_data_load((const char *const *)files, n, tok, &dopt, &d);
    if (!st && chat && !opt_flag(o, "json")) {
        int32_t eot = iq_chat_format_end_of_turn(chat, tok);
        size_t tl = 0;
        const uint8_t *tb = eot >= 0 ? iq_tok_token_bytes(tok, eot, &tl) : NULL;
        fprintf(opt_flag(o, "show-mask") ? stdout : stderr, "# chat template: %s · end of turn %.*s (id %d; generation stops there)\n",
                iq_chat_format_source(chat), (int)tl, tb ? (const char *)tb : "", eot);
    }
    iq_chat_format_free(chat);
    args_files_free(files, n);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    if (opt_flag(o, "json")) {
        print_summary_json(d);
        iq_data_free(d);
        return 0;
    }
    long long limit = opt_is_set(o, "limit") ? opt_int(o, "limit") : -1;
    bool mask = opt_flag(o, "show-mask");
    if (mask)
        printf("# legend: text = context (no loss) · [text] = supervised · [text]$ = terminal EOS · "
               "[text]~ = last kept token of a truncated row (bootstraps V)\n");
    iq_buf line = {0};
    for (size_t r = 0; r < d->n_rows && (limit < 0 || (long long)r < limit); r++) {
        size_t a = d->row_off[r], b = d->row_off[r + 1], sup = 0;
        for (size_t i = a; i < b; i++) sup += (d->tok_flags[i] & IQ_TOK_SUPERVISED) != 0;
        line.len = 0;
        if (mask) {
            iq_buf_printf(&line, "#%zu %s:%llu %s, %zu tokens, %zu supervised%s\n", r + 1, d->files[d->row_file[r]],
                          (unsigned long long)d->row_line[r], iq_row_format_name((iq_row_format)d->row_format[r]), b - a,
                          sup, (d->row_flags[r] & IQ_ROW_TRUNCATED) ? ", truncated" : "");
            for (size_t i = a; i < b; i++) {
                size_t tl;
                const uint8_t *tb = iq_tok_token_bytes(tok, d->ids[i], &tl);
                uint8_t fl = d->tok_flags[i];
                if (i > a) iq_buf_putc(&line, '|');
                if (fl & IQ_TOK_SUPERVISED) iq_buf_putc(&line, '[');
                put_token_text(&line, tb, tl);
                if (fl & IQ_TOK_SUPERVISED) iq_buf_putc(&line, ']');
                if (fl & IQ_TOK_TERMINAL) iq_buf_putc(&line, '$');
                else if (i + 1 == b) iq_buf_putc(&line, '~');
            }
            iq_buf_putc(&line, '\n');
            for (size_t i = a; i < b; i++) {
                uint8_t fl = d->tok_flags[i];
                iq_buf_printf(&line, (fl & IQ_TOK_SUPERVISED) ? "%s[%d]" : "%s%d", i > a ? " " : "", d->ids[i]);
                if (fl & IQ_TOK_TERMINAL) iq_buf_putc(&line, '$');
                else if (i + 1 == b) iq_buf_putc(&line, '~');
            }
            iq_buf_putc(&line, '\n');
        } else {
            for (size_t i = a; i < b; i++) iq_buf_printf(&line, "%s%d", i > a ? " " : "", d->ids[i]);
            iq_buf_putc(&line, '\n');
        }
        fwrite(line.data, 1, line.len, stdout);
    }
    iq_buf_free(&line);
    if (mask) print_summary_text(d, stdout);
    else print_summary_text(d, stderr);
    iq_data_free(d);
    return 0;
}

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "tokenizer")) {
        cli_error("tokenize needs --tokenizer PATH");
        return IQ_EUSAGE;
    }
    bool data = opt_is_set(o, "data");
    if (!data && o->n_pos > 0) {
        cli_error("tokenize reads text from stdin; give demonstration files with --data FILE");
        return IQ_EUSAGE;
    }
    if (data && (opt_flag(o, "decode") || opt_flag(o, "allow-special"))) {
        cli_error("--data cannot be combined with --decode or --allow-special");
        return IQ_EUSAGE;
    }
    if (!data && (opt_flag(o, "show-mask") || opt_is_set(o, "limit") || opt_is_set(o, "max-seq-len") ||
                  opt_flag(o, "skip-bad-rows") || opt_flag(o, "json") || opt_is_set(o, "chat-template"))) {
        cli_error("--show-mask, --limit, --max-seq-len, --skip-bad-rows, --json and --chat-template need --data");
        return IQ_EUSAGE;
    }
    iq_tokenizer *tok;
    int rc = cli_load_tokenizer(opt_str(o, "tokenizer"), &tok);
    if (rc) return rc;
    if (data) {
        rc = run_data(o, tok);
        iq_tok_free(tok);
        return rc;
    }
    size_t len;
    char *in = read_stdin(&len);
    if (opt_flag(o, "decode")) {
        iq_ids ids = {0};
        char *p = in, *end = in + len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
            if (p >= end) break;
            char *q;
            errno = 0;
            long v = strtol(p, &q, 10);
            if (q == p || (q < end && !(*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r'))) {
                cli_error("--decode: stdin must hold token ids separated by whitespace (at byte %zu)", (size_t)(p - in));
                rc = IQ_EDATA;
                break;
            }
            if (errno == ERANGE || v < 0 || v >= iq_tok_vocab_size(tok)) {
                cli_error("--decode: token id %.*s is not in the vocabulary (size %d)", (int)(q - p), p, iq_tok_vocab_size(tok));
                rc = IQ_EDATA;
                break;
            }
            iq_ids_push(&ids, (int32_t)v);
            p = q;
        }
        iq_buf outb = {0};
        if (!rc) {
            iq_status st = iq_tok_decode(tok, ids.v, ids.len, &outb);
            if (st) {
                cli_error("%s", iq_last_error());
                rc = st;
            } else {
                fwrite(outb.data, 1, outb.len, stdout);
            }
        }
        iq_buf_free(&outb);
        iq_ids_free(&ids);
    } else {
        iq_ids ids = {0};
        if (opt_flag(o, "allow-special")) iq_tok_encode_special(tok, in, len, &ids);
        else iq_tok_encode(tok, in, len, &ids);
        iq_buf outb = {0};
        for (size_t i = 0; i < ids.len; i++) iq_buf_printf(&outb, "%s%d", i ? " " : "", ids.v[i]);
        iq_buf_putc(&outb, '\n');
        fwrite(outb.data, 1, outb.len, stdout);
        iq_buf_free(&outb);
        iq_ids_free(&ids);
    }
    free(in);
    iq_tok_free(tok);
    if (fflush(stdout) != 0) {
        cli_error("writing stdout failed");
        return IQ_EIO;
    }
    return rc;
}

const cmd_spec cmd_tokenize = {
    "tokenize",
    "--tokenizer PATH [--allow-special | --decode] < INPUT\n       iqtrain tokenize --tokenizer PATH --data FILE... "
    "[--show-mask] [--limit N] [--max-seq-len N]",
    "Encode the bytes on stdin to ids (one line, space-separated), decode ids back to bytes, or show exactly "
    "what training sees of demonstration files.",
    "Without --data, every byte on stdin is text (a trailing newline too). With --data, the whole input is "
    "validated like training does (bad rows: FILE:LINE: reason, exit 65); rows print as ids, or with "
    "--show-mask as tokens with the supervised ones in [brackets], terminal EOS flagged $ and the bootstrapped "
    "last token of a truncated row flagged ~, followed by a summary.",
    OPTS, N_OPTS(OPTS), 0, -1, run};
