/* cmd_eval.c — `iqtrain eval`: the loss of a model folder on demonstrations (DESIGN §6). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/eval.h"
#include "iqtrain/eval_generation.h"
#include "iqtrain/matmul.h"

static const opt_spec OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (ours or Hugging Face GPT-2) (required)", NULL, NULL},
    OPT_SPEC_ADAPTER,
    OPT_SPEC_ALLOW_EXTRA_TENSORS,
    {"data", OPT_LIST, NULL, "FILE", "demonstrations (more may follow as arguments) (required)", NULL, NULL},
    {"lambda", OPT_FLOAT, NULL, "L", "TD weight (default: the model's \"iqtrain\" section, else 0.1)", NULL, "[0,inf)"},
    {"gamma", OPT_FLOAT, NULL, "G", "discount (default: the model's \"iqtrain\" section, else 0.99)", NULL, "[0,1]"},
    {"truncation", OPT_STR, "bootstrap", "MODE", "last step of a truncated row", "bootstrap|drop", NULL},
    {"batch-size", OPT_INT, "16", "B", "rows per forward pass", NULL, "[1,inf)"},
    {"max-seq-len", OPT_INT, NULL, "N", "truncate rows (default: the model's ctx)", NULL, "[0,inf)"},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL, NULL},
    OPT_SPEC_THREADS,
    OPT_SPEC_MATMUL_BACKEND,
    OPT_SPEC_MATMUL_PRECISION,
    {"num-samples", OPT_INT, NULL, "K", "generate K samples per prompt at each --temperatures setting", NULL, "[1,1024]"},
    {"temperatures", OPT_LIST, NULL, "T,...", "sampling temperatures, e.g. 0.1,0.3,0.5,0.7,1.0", NULL, NULL},
    {"beam", OPT_INT, NULL, "N", "also evaluate beam search with N beams", NULL, "[0,64]"},
    {"max-new-tokens", OPT_INT, "128", "N", "generation budget per sample", NULL, "[1,inf)"},
    {"seed", OPT_INT, "42", "S", "seed of the samples' generators", NULL, NULL},
    {"limit", OPT_INT, NULL, "N", "generate for the first N rows only", NULL, "[0,inf)"},
    {"out", OPT_STR, NULL, "DIR", "write DIR/eval.json and DIR/samples.jsonl", NULL, NULL},
    {"json", OPT_FLAG, NULL, NULL, "print one JSON object on stdout", NULL, NULL},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL, NULL},
};

/* a number item, also when printed raw ("%.9g") */
static double num_of(const cJSON *v) {
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsRaw(v) && v->valuestring) return strtod(v->valuestring, NULL);
    return NAN;
}

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "model") || (!opt_is_set(o, "data") && o->n_pos == 0)) {
        cli_error("eval needs --model DIR and --data FILE...");
        return IQ_EUSAGE;
    }
    int threads = opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads();
    iq_set_threads(threads);
    if (iq_matmul_configure(opt_str(o, "matmul-backend"), opt_str(o, "matmul-precision"))) {
        cli_error("%s", iq_last_error());
        return IQ_EUSAGE;
    }
    iq_model_folder_allow_extra_tensors(opt_flag(o, "allow-extra-tensors"));
    iq_model_folder_set_adapter(opt_is_set(o, "adapter") ? opt_str(o, "adapter") : NULL);
    char **files;
    int n = args_files(o, "data", true, &files);
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
    bool gen = opt_is_set(o, "num-samples") || opt_is_set(o, "temperatures") || opt_is_set(o, "beam");
    float temps[64];
    int nt = 0;
    if (!st && gen) {
        temps[0] = 1.0f;
        nt = opt_is_set(o, "temperatures") ? args_temperatures(o, "temperatures", temps, 64) : 1;
        if (nt < 0) st = IQ_EUSAGE;
        long long k = opt_is_set(o, "num-samples") ? opt_int(o, "num-samples") : 4;
        long long beam = opt_is_set(o, "beam") ? opt_int(o, "beam") : 0;
        if (!st) {
            iq_gen_eval_opts g = {0};
            g.model_dir = e.model_dir;
            g.data = e.data;
            g.n_data = e.n_data;
            g.num_samples = (int)k;
            g.temperatures = temps;
            g.n_temperatures = nt;
            g.beam = (int)beam;
            g.max_new_tokens = (int)opt_int(o, "max-new-tokens");
            g.seed = (uint64_t)opt_int(o, "seed");
            g.gamma = e.has_gamma ? e.gamma : -1.0f;
            g.out = opt_str(o, "out");
            g.skip_bad_rows = e.skip_bad_rows;
            g.limit = opt_is_set(o, "limit") ? (int)opt_int(o, "limit") : 0;
            cJSON *gr = NULL;
            st = iq_eval_generation(&g, &gr);
            if (!st) {
                for (cJSON *it = gr->child; it;) {
                    cJSON *next = it->next;
                    cJSON_AddItemToObject(res, it->string, cJSON_DetachItemViaPointer(gr, it));
                    it = next;
                }
                cJSON_Delete(gr);
            }
        }
    }
    args_files_free(files, n);
    if (st) {
        if (st != IQ_EUSAGE) cli_error("%s", iq_last_error());
        cJSON_Delete(res);
        return st;
    }
    if (opt_is_set(o, "out")) {
        char *s = cJSON_Print(res);
        char *p = iq_path_join(opt_str(o, "out"), "eval.json");
        iq_status ws = iq_mkdirs(opt_str(o, "out"));
        if (!ws) ws = iq_write_file_atomic(p, s, strlen(s));
        free(p);
        free(s);
        if (ws) {
            cli_error("%s", iq_last_error());
            cJSON_Delete(res);
            return ws;
        }
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
    /* the generation table, for people, on stderr */
    const cJSON *sets = cJSON_GetObjectItemCaseSensitive(res, "settings");
    if (cJSON_IsArray(sets)) {
        fprintf(stderr, "%-8s %6s %5s %9s %9s %10s %12s %12s\n", "decoding", "temp", "k", "accuracy", "pass@k",
                "self-bleu", "reward(ok)", "reward(bad)");
        for (const cJSON *x = sets->child; x; x = x->next) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(x, "decoding");
            double vals[6];
            const char *ks[6] = {"temperature", "accuracy", "pass_at_k", "self_bleu", "reward_correct", "reward_wrong"};
            for (int i = 0; i < 6; i++) vals[i] = num_of(cJSON_GetObjectItemCaseSensitive(x, ks[i]));
            const cJSON *kk = cJSON_GetObjectItemCaseSensitive(x, "samples_per_prompt");
            fprintf(stderr, "%-8s %6.2f %5d %9.4f %9.4f %10.4f %12.3f %12.3f\n", d->valuestring, vals[0],
                    cJSON_IsNumber(kk) ? (int)kk->valuedouble : 1, vals[1], vals[2], vals[3], vals[4], vals[5]);
        }
    }
    cJSON_Delete(res);
    return 0;
}

const cmd_spec cmd_eval = {
    "eval",
    "--model DIR [--adapter DIR] --data FILE... [--lambda L] [--gamma G] [--json]",
    "Evaluate a model folder on demonstrations: nll, td, loss, token accuracy and perplexity over all supervised "
    "tokens.",
    "lambda and gamma come from the options, else the model's \"iqtrain\" section, else 0.1 and 0.99. With "
    "--num-samples, --temperatures or --beam it also generates: exact-match accuracy (GSM8k rule: the number after "
    "the last ####) for greedy, beam and sampling at each temperature (mean over K samples, and pass@K), Self-BLEU-4 "
    "within each prompt's samples, and the mean reward and log-prob of correct and wrong samples with their "
    "Spearman correlation with correctness.",
    OPTS, N_OPTS(OPTS), 0, -1, run};
