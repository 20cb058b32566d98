/* cmd_train_tokenizer.c — `iqtrain train-tokenizer`: learn a byte-level BPE from demonstration text. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "iqtrain/data.h"
#include "iqtrain/log.h"
#include "iqtrain/tokenizer.h"

static const opt_spec OPTS[] = {
    {"vocab-size", OPT_INT, NULL, "N", "ids in all: 256 bytes + merges + <|endoftext|> (required)", NULL, "[257,1000000]"},
    {"out", OPT_STR, NULL, "DIR", "folder to write the tokenizer files into (required)", NULL, NULL},
    {"model-max-length", OPT_INT, "1024", "N", "model_max_length written to tokenizer_config.json", NULL, NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL, NULL},
    {"json", OPT_FLAG, NULL, NULL, "print a summary object on stdout", NULL, NULL},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL, NULL},
};

static void add_text(void *ctx, const char *s, size_t len) { iq_bpe_trainer_add(ctx, s, len); }

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "vocab-size") || !opt_is_set(o, "out")) {
        cli_error("train-tokenizer needs --vocab-size N and --out DIR");
        return IQ_EUSAGE;
    }
    long long vs = opt_int(o, "vocab-size");
    double t0 = iq_now();
    iq_bpe_trainer *tr = iq_bpe_trainer_new();
    iq_data_opts dopt = {.skip_bad_rows = opt_flag(o, "skip-bad-rows"), .progress = true};
    iq_data_stats stats;
    iq_status st = iq_data_scan_text((const char *const *)o->pos, o->n_pos, &dopt, add_text, tr, &stats);
    iq_tokenizer *tok = NULL;
    if (!st) st = iq_bpe_trainer_train(tr, (int32_t)vs, &tok);
    iq_bpe_trainer_free(tr);
    if (!st) st = iq_mkdirs(opt_str(o, "out"));
    if (!st) st = iq_tok_save(tok, opt_str(o, "out"), (int)opt_int(o, "model-max-length"));
    if (st) {
        cli_error("%s", iq_last_error());
        iq_tok_free(tok);
        return st;
    }
    int32_t got = iq_tok_vocab_size(tok);
    if (got < vs) iq_warn("the data only supports %d merges: vocabulary has %d ids, not %lld", iq_tok_n_merges(tok), got, vs);
    iq_info("trained a %d-id tokenizer (%d merges) on %zu rows in %.1f s -> %s", got, iq_tok_n_merges(tok), stats.rows,
            iq_now() - t0, opt_str(o, "out"));
    if (opt_flag(o, "json")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "vocab_size", got);
        cJSON_AddNumberToObject(j, "merges", iq_tok_n_merges(tok));
        cJSON_AddNumberToObject(j, "rows", (double)stats.rows);
        cJSON_AddNumberToObject(j, "bad", (double)stats.bad);
        cJSON_AddStringToObject(j, "out", opt_str(o, "out"));
        char *s = cJSON_PrintUnformatted(j);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    }
    iq_tok_free(tok);
    return 0;
}

const cmd_spec cmd_train_tokenizer = {
    "train-tokenizer",
    "--vocab-size N --out DIR DATA...",
    "Learn a byte-level BPE (GPT-2's pre-tokenizer) from the text of demonstration rows.",
    "Writes tokenizer.json, vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json. Ids 0-255 "
    "are the bytes in GPT-2's order, then the merges, then <|endoftext|> last. Deterministic: the most frequent "
    "pair wins, ties go to the smaller ids.",
    OPTS, N_OPTS(OPTS), 1, -1, run};
