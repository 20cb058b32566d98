/* cmd_eval.c — `iqtrain eval`: the loss of a model folder on demonstrations (DESIGN §6). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/eval.h"
#include "iqtrain/matmul.h"

static const opt_spec OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (ours or Hugging Face GPT-2) (required)", NULL},
    {"data", OPT_LIST, NULL, "FILE", "demonstrations (more may follow as arguments) (required)", NULL},
    {"lambda", OPT_FLOAT, NULL, "L", "TD weight (default: the model's \"iqtrain\" section, else 0.1)", NULL},
    {"gamma", OPT_FLOAT, NULL, "G", "discount (default: the model's \"iqtrain\" section, else 0.99)", NULL},
    {"truncation", OPT_STR, "bootstrap", "MODE", "last step of a truncated row", "bootstrap|drop"},
    {"batch-size", OPT_INT, "16", "B", "rows per forward pass", NULL},
    {"max-seq-len", OPT_INT, NULL, "N", "truncate rows (default: the model's ctx)", NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL},
    {"threads", OPT_INT, NULL, "N", "threads (default: the CPUs of this process's affinity mask)", NULL},
    {"json", OPT_FLAG, NULL, NULL, "print one JSON object on stdout", NULL},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL},
};

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "model") || (!opt_is_set(o, "data") && o->n_pos == 0)) {
        cli_error("eval needs --model DIR and --data FILE...");
        return IQ_EUSAGE;
    }
    int threads = opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads();
    if (threads < 1 || threads > 1024 || opt_int(o, "batch-size") < 1) {
        cli_error("--threads must be in 1..1024 and --batch-size at least 1");
        return IQ_EUSAGE;
    }
    iq_set_threads(threads);
    int n = 0;
    char **files = iq_xcalloc((size_t)o->n_pos + 64, sizeof *files);
    char *list = opt_is_set(o, "data") ? iq_xstrdup(opt_str(o, "data")) : NULL;
    for (char *save = NULL, *p = list ? strtok_r(list, ",", &save) : NULL; p && n < 64; p = strtok_r(NULL, ",", &save))
        files[n++] = p;
    for (int i = 0; i < o->n_pos; i++) files[n++] = o->pos[i];
    iq_eval_opts e = {0};
    e.model_dir = opt_str(o, "model");
    e.data = (const char *const *)files;
    e.n_data = n;
    e.has_lambda = opt_is_set(o, "lambda");
    e.lambda = (float)opt_float(o, "lambda");
    e.has_gamma = opt_is_set(o, "gamma");
    e.gamma = (float)opt_float(o, "gamma");
    e.truncation = strcmp(opt_str(o, "truncation"), "drop") == 0 ? IQ_TRUNC_DROP : IQ_TRUNC_BOOTSTRAP;
    e.batch_size = (int)opt_int(o, "batch-size");
    e.max_seq_len = (int)opt_int(o, "max-seq-len");
    e.skip_bad_rows = opt_flag(o, "skip-bad-rows");
    cJSON *res = NULL;
    iq_status st = iq_eval_command(&e, &res);
    free(files);
    free(list);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    if (opt_flag(o, "json")) {
        char *s = cJSON_PrintUnformatted(res);
        printf("%s\n", s);
        free(s);
    } else {
        const char *keys[] = {"loss", "nll", "td", "ppl", "token_accuracy", "tokens", "lambda", "gamma", "reward_mean",
                              "reward_abs_mean", "reward_abs_max"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(res, keys[i]);
            if (cJSON_IsNumber(x)) printf("%-16s %.6g\n", keys[i], x->valuedouble);
        }
    }
    cJSON_Delete(res);
    return 0;
}

const cmd_spec cmd_eval = {
    "eval",
    "--model DIR --data FILE... [--lambda L] [--gamma G] [--json]",
    "Evaluate a model folder on demonstrations: nll, td, loss, token accuracy and perplexity over all supervised "
    "tokens.",
    "lambda and gamma come from the options, else the model's \"iqtrain\" section, else 0.1 and 0.99. Generation "
    "metrics (accuracy, Self-BLEU, rewards of samples) arrive with the evaluation issue.",
    OPTS, N_OPTS(OPTS), 0, -1, run};
