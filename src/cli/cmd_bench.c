/* cmd_bench.c — `iqtrain bench`: throughput measurements. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/bench.h"
#include "iqtrain/matmul.h"
#include "iqtrain/tokenizer.h"

static const opt_spec OPTS[] = {
    {"what", OPT_STR, "tokenizer", "WHAT", "what to measure", "tokenizer"},
    {"tokenizer", OPT_STR, NULL, "PATH", "tokenizer for --what tokenizer (required)", NULL},
    {"input", OPT_STR, NULL, "FILE", "text to encode (default: 8 MB of generated English-like text)", NULL},
    {"threads", OPT_INT, NULL, "N", "threads (default: the CPUs of this process's affinity mask)", NULL},
    {"repeat", OPT_INT, "5", "N", "timed repeats after one warm-up; the median is reported", NULL},
    {"json", OPT_FLAG, NULL, NULL, "print one JSON object on stdout", NULL},
};

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "tokenizer")) {
        cli_error("bench --what tokenizer needs --tokenizer PATH");
        return IQ_EUSAGE;
    }
    int threads = opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads();
    if (threads < 1 || threads > 1024) {
        cli_error("--threads must be between 1 and 1024");
        return IQ_EUSAGE;
    }
    iq_tokenizer *tok;
    int rc = cli_load_tokenizer(opt_str(o, "tokenizer"), &tok);
    if (rc) return rc;
    char *text;
    size_t len;
    if (opt_is_set(o, "input")) {
        iq_status st = iq_read_file(opt_str(o, "input"), &text, &len);
        if (st) {
            cli_error("%s", iq_last_error());
            iq_tok_free(tok);
            return st;
        }
    } else {
        text = iq_bench_make_text(8u << 20, &len);
    }
    iq_bench_tok_result r;
    iq_status st = iq_bench_tokenizer(tok, text, len, threads, (int)opt_int(o, "repeat"), &r);
    free(text);
    iq_tok_free(tok);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    if (opt_flag(o, "json")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "what", "tokenizer");
        cJSON_AddNumberToObject(j, "threads", r.threads);
        cJSON_AddNumberToObject(j, "bytes", (double)r.bytes);
        cJSON_AddNumberToObject(j, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(j, "repeats", r.repeats);
        cJSON_AddNumberToObject(j, "seconds", r.seconds);
        cJSON_AddNumberToObject(j, "mb_per_s", r.mb_per_s);
        char *s = cJSON_PrintUnformatted(j);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    } else {
        printf("tokenizer: %.2f MB/s (%zu bytes -> %zu tokens, %d thread%s, median of %d: %.3f s)\n", r.mb_per_s, r.bytes,
               r.tokens, r.threads, r.threads == 1 ? "" : "s", r.repeats, r.seconds);
    }
    return 0;
}

const cmd_spec cmd_bench = {
    "bench",
    "[--what tokenizer] [--tokenizer PATH] [--input FILE] [--threads N] [--json]",
    "Measure throughput (tokenizer MB/s; training and generation benchmarks come with the trainer).",
    NULL,
    OPTS, N_OPTS(OPTS), 0, 0, run};
