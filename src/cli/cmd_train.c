/* cmd_train.c — `iqtrain [train]`: options of DESIGN §5 and the training entry point. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/data.h"
#include "iqtrain/log.h"
#include "iqtrain/matmul.h"
#include "iqtrain/tokenizer.h"

static const opt_spec OPTS[] = {
    /* the method */
    {"lambda", OPT_FLOAT, "0.1", "L", "weight of the TD term (0 = plain MLE)", NULL},
    {"gamma", OPT_FLOAT, "0.99", "G", "discount of the token-level MDP", NULL},
    {"lambda-schedule", OPT_STR, "constant", "S", "ramp of lambda over --lambda-warmup steps", "constant|linear|cosine"},
    {"lambda-start", OPT_FLOAT, "0", "L", "lambda at step 0 of the ramp", NULL},
    {"lambda-warmup", OPT_INT, "0", "N", "optimizer steps of the lambda ramp", NULL},
    {"td-grad", OPT_STR, "full", "MODE", "gradient through V(s_{t+1}): full, or semi (treated as constant)", "full|semi"},
    {"truncation", OPT_STR, "bootstrap", "MODE", "last step of a truncated row: bootstrap V, or drop its TD term",
     "bootstrap|drop"},
    /* optimizer */
    {"lr", OPT_FLOAT, "3e-4", "LR", "peak learning rate", NULL},
    {"min-lr", OPT_FLOAT, "3e-5", "LR", "final learning rate of the schedule", NULL},
    {"lr-schedule", OPT_STR, "cosine", "S", "decay after warmup", "cosine|linear|constant"},
    {"warmup", OPT_INT, "100", "N", "linear warmup steps", NULL},
    {"weight-decay", OPT_FLOAT, "0.1", "WD", "AdamW decoupled weight decay (matrices only)", NULL},
    {"beta1", OPT_FLOAT, "0.9", "B", "AdamW beta1", NULL},
    {"beta2", OPT_FLOAT, "0.95", "B", "AdamW beta2", NULL},
    {"eps", OPT_FLOAT, "1e-8", "E", "AdamW epsilon", NULL},
    {"grad-clip", OPT_FLOAT, "1.0", "C", "global gradient-norm clip (0 = off)", NULL},
    {"batch-size", OPT_INT, "16", "B", "rows per micro-step (global)", NULL},
    {"grad-accum", OPT_INT, "1", "K", "micro-steps per optimizer step", NULL},
    {"epochs", OPT_FLOAT, "1", "E", "passes over the data (when --max-steps is unset)", NULL},
    {"max-steps", OPT_INT, NULL, "N", "optimizer steps (0 = none, still writes final/)", NULL},
    /* model */
    {"model", OPT_STR, NULL, "DIR", "start from a model folder (ours or Hugging Face GPT-2)", NULL},
    {"tokenizer", OPT_STR, NULL, "PATH", "tokenizer (required from scratch; --model brings its own)", NULL},
    {"preset", OPT_STR, "small", "P", "model size from scratch", "tiny|small|gpt2"},
    {"n-layer", OPT_INT, NULL, "N", "override the preset's layers", NULL},
    {"n-head", OPT_INT, NULL, "N", "override the preset's heads", NULL},
    {"n-embd", OPT_INT, NULL, "N", "override the preset's width", NULL},
    {"ctx", OPT_INT, NULL, "N", "override the preset's positions", NULL},
    {"max-seq-len", OPT_INT, NULL, "N", "longest training row (default: the model's ctx)", NULL},
    /* data */
    {"eval-data", OPT_LIST, NULL, "FILE", "held-out demonstrations for eval rows", NULL},
    {"eval-split", OPT_FLOAT, NULL, "F", "hold out this fraction of the training rows instead", NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL},
    /* logging and files */
    {"log-every", OPT_INT, "10", "N", "progress and metrics every N steps", NULL},
    {"eval-every", OPT_INT, "200", "N", "evaluate every N steps", NULL},
    {"save-every", OPT_INT, "500", "N", "checkpoint every N steps", NULL},
    {"keep-last", OPT_INT, "3", "N", "checkpoints to keep", NULL},
    {"keep-best", OPT_FLAG, NULL, NULL, "also keep the best checkpoint by eval loss", NULL},
    {"save-dtype", OPT_STR, "f32", "T", "dtype of final/model.safetensors", "f32|bf16|f16"},
    {"out", OPT_STR, NULL, "DIR", "output folder (default runs/<UTC date-time>-<6 hex>)", NULL},
    {"resume", OPT_STR, NULL, "DIR|auto", "continue from a checkpoint", NULL},
    {"seed", OPT_INT, "42", "S", "seed of init, data order and dropout-free sampling", NULL},
    {"threads", OPT_INT, NULL, "N", "threads (default: CPUs in this process's affinity mask)", NULL},
    {"matmul-backend", OPT_STR, "auto", "B", "matrix product backend", "auto|openblas|onednn"},
    {"matmul-precision", OPT_STR, "fp32", "P", "matmul input precision", "fp32|bf16"},
    {"json", OPT_FLAG, NULL, NULL, "print one summary object on stdout at the end", NULL},
    {"dry-run", OPT_FLAG, NULL, NULL, "print the resolved options and the data summary, then exit", NULL},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file or a run.json (flags override it)", NULL},
};

static void print_resolved(const opt_set *o) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < o->cmd->n_opts; i++) {
        const opt_spec *s = &o->cmd->opts[i];
        if (strcmp(s->name, "config") == 0) continue;
        const char *v = o->values[i];
        if (!v) cJSON_AddNullToObject(j, s->name);
        else if (s->kind == OPT_FLAG) cJSON_AddBoolToObject(j, s->name, strcmp(v, "1") == 0);
        else if (s->kind == OPT_INT || s->kind == OPT_FLOAT) cJSON_AddNumberToObject(j, s->name, strtod(v, NULL));
        else cJSON_AddStringToObject(j, s->name, v);
    }
    cJSON *d = cJSON_AddArrayToObject(j, "data");
    for (int i = 0; i < o->n_pos; i++) cJSON_AddItemToArray(d, cJSON_CreateString(o->pos[i]));
    char *s = cJSON_Print(j);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(j);
}

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (o->n_pos == 0) {
        cli_error("no data files given (usage: iqtrain [train] [OPTIONS] DATA...)");
        return IQ_EUSAGE;
    }
    if (!opt_is_set(o, "tokenizer") && !opt_is_set(o, "model")) {
        cli_error("training from scratch needs --tokenizer PATH (or start from --model DIR)");
        return IQ_EUSAGE;
    }
    if (opt_is_set(o, "model")) {
        cli_error("--model is not available in this version yet");
        return IQ_EUSAGE;
    }
    iq_tokenizer *tok;
    int rc = cli_load_tokenizer(opt_str(o, "tokenizer"), &tok);
    if (rc) return rc;
    iq_data_opts dopt = {.max_seq_len = opt_is_set(o, "max-seq-len") ? (int32_t)opt_int(o, "max-seq-len") : 0,
                         .skip_bad_rows = opt_flag(o, "skip-bad-rows"),
                         .progress = true};
    iq_dataset *d = NULL;
    iq_status st = iq_data_load((const char *const *)o->pos, o->n_pos, tok, &dopt, &d);
    if (st) {
        cli_error("%s", iq_last_error());
        iq_tok_free(tok);
        return st;
    }
    const iq_data_stats *s = &d->stats;
    iq_info("data: rows %zu · tokens %zu · supervised %zu · truncated %zu · skipped %zu · bad %zu", s->rows, s->tokens,
            s->supervised, s->truncated, s->skipped, s->bad);
    if (opt_flag(o, "dry-run")) {
        print_resolved(o);
    } else {
        cli_error("training is not available in this version yet (the data above was validated; use --dry-run)");
        rc = IQ_EINTERNAL;
    }
    iq_data_free(d);
    iq_tok_free(tok);
    return rc;
}

const cmd_spec cmd_train = {
    "train",
    "[OPTIONS] DATA...",
    "Train a GPT-2-style policy on demonstrations with IQLearn (TD-regularized MLE); --lambda 0 is plain MLE.",
    "DATA are JSONL files (or gzip) of {\"prompt\",\"completion\"}, {\"text\"} or {\"messages\"} rows.",
    OPTS, N_OPTS(OPTS), 0, -1, run};
