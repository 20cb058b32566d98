/* cmd_train.c — `iqtrain [train]`: options of DESIGN §5 and the training entry point. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/data.h"
#include "iqtrain/log.h"
#include "iqtrain/lora.h"
#include "iqtrain/matmul.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/train.h"

static const opt_spec OPTS[] = {
    /* the method */
    {"lambda", OPT_FLOAT, "0.1", "L", "weight of the TD term (0 = plain MLE)", NULL, "[0,inf)"},
    {"gamma", OPT_FLOAT, "0.99", "G", "discount of the token-level MDP", NULL, "[0,1]"},
    {"lambda-schedule", OPT_STR, "constant", "S", "ramp of lambda over --lambda-warmup steps", "constant|linear|cosine", NULL},
    {"lambda-start", OPT_FLOAT, "0", "L", "lambda at step 0 of the ramp", NULL, "[0,inf)"},
    {"lambda-warmup", OPT_INT, "0", "N", "optimizer steps of the lambda ramp", NULL, "[0,inf)"},
    {"td-grad", OPT_STR, "full", "MODE", "gradient through V(s_{t+1}): full, or semi (treated as constant)", "full|semi", NULL},
    {"truncation", OPT_STR, "bootstrap", "MODE", "last step of a truncated row: bootstrap V, or drop its TD term",
     "bootstrap|drop", NULL},
    {"online-mix", OPT_FLOAT, "0", "A", "online IQLearn: weight of the value term over the policy's own samples (0 = offline)",
     NULL, "[0,inf)"},
    {"online-every", OPT_INT, "1", "K", "online: new samples every K optimizer steps (reused in between)", NULL, "[1,inf)"},
    {"online-temperature", OPT_FLOAT, "1", "T", "online: sampling temperature (0 = greedy)", NULL, "[0,inf)"},
    {"online-max-new-tokens", OPT_INT, "128", "N", "online: sampled tokens per prompt at most", NULL, "[1,inf)"},
    {"label-smoothing", OPT_FLOAT, "0", "EPS", "label smoothing of the nll term, as torch's cross_entropy(label_smoothing=EPS)",
     NULL, "[0,1)"},
    {"entropy-coef", OPT_FLOAT, "0", "BETA", "entropy bonus: the loss minus BETA x the mean entropy of pi over supervised tokens",
     NULL, "[0,inf)"},
    /* optimizer */
    {"lr", OPT_FLOAT, "3e-4", "LR", "peak learning rate", NULL, "[0,inf)"},
    {"min-lr", OPT_FLOAT, "3e-5", "LR", "final learning rate of the schedule", NULL, "[0,inf)"},
    {"lr-schedule", OPT_STR, "cosine", "S", "decay after warmup", "cosine|linear|constant", NULL},
    {"warmup", OPT_INT, "100", "N", "linear warmup steps", NULL, "[0,inf)"},
    {"weight-decay", OPT_FLOAT, "0.1", "WD", "AdamW decoupled weight decay (matrices only)", NULL, "[0,inf)"},
    {"beta1", OPT_FLOAT, "0.9", "B", "AdamW beta1", NULL, "[0,1)"},
    {"beta2", OPT_FLOAT, "0.95", "B", "AdamW beta2", NULL, "[0,1)"},
    {"eps", OPT_FLOAT, "1e-8", "E", "AdamW epsilon", NULL, "(0,inf)"},
    {"grad-clip", OPT_FLOAT, "1.0", "C", "global gradient-norm clip (0 = off)", NULL, "[0,inf)"},
    {"batch-size", OPT_INT, "16", "B", "rows per micro-step (global)", NULL, "[1,inf)"},
    {"grad-accum", OPT_INT, "1", "K", "micro-steps per optimizer step", NULL, "[1,inf)"},
    {"epochs", OPT_FLOAT, "1", "E", "passes over the data (when --max-steps is unset)", NULL, "(0,inf)"},
    {"max-steps", OPT_INT, NULL, "N", "optimizer steps (0 = none, still writes final/)", NULL, "[0,inf)"},
    /* model */
    {"model", OPT_STR, NULL, "DIR", "start from a model folder (ours, or Hugging Face GPT-2, Llama, Mistral, Qwen2, Qwen3)", NULL, NULL},
    OPT_SPEC_ALLOW_EXTRA_TENSORS,
    {"tokenizer", OPT_STR, NULL, "PATH", "tokenizer (required from scratch; --model brings its own)", NULL, NULL},
    {"chat-template", OPT_STR, NULL, "FILE", "render messages rows with this Jinja template (or a JSON file with a "
     "chat_template) instead of the tokenizer's; saved with the model as chat_template.jinja", NULL, NULL},
    {"arch", OPT_STR, "gpt2", "A", "model family from scratch", "gpt2|llama", NULL},
    {"preset", OPT_STR, "small", "P", "model size from scratch (gpt2: tiny, small, gpt2; llama: tiny, small, smollm2-135m)",
     "tiny|small|gpt2|smollm2-135m", NULL},
    {"n-layer", OPT_INT, NULL, "N", "override the preset's layers", NULL, "[1,256]"},
    {"n-head", OPT_INT, NULL, "N", "override the preset's heads", NULL, "[1,inf)"},
    {"n-embd", OPT_INT, NULL, "N", "override the preset's width", NULL, "[1,16384]"},
    {"n-kv-head", OPT_INT, NULL, "N", "override the preset's key/value heads (llama: grouped-query attention)", NULL, "[1,inf)"},
    {"ctx", OPT_INT, NULL, "N", "override the preset's positions", NULL, "[2,65536]"},
    {"max-seq-len", OPT_INT, NULL, "N", "longest training row (default: the model's ctx)", NULL, "[0,inf)"},
    {"gradient-checkpointing", OPT_FLAG, NULL, NULL,
     "recompute each layer's activations in backward (Llama families): less memory, ~1/3 more compute, same numbers",
     NULL, NULL},
    {"lora-rank", OPT_INT, "0", "R", "LoRA adapters of rank R on --lora-targets, the base frozen (0 = full fine-tuning)",
     NULL, "[0,4096]"},
    {"lora-alpha", OPT_FLOAT, "8", "A", "LoRA scale A/R (PEFT's lora_alpha)", NULL, "(0,inf)"},
    {"lora-targets", OPT_STR, NULL, "M,...", "LoRA: the linear layers adapted, PEFT's module names (q_proj, k_proj, "
     "v_proj, o_proj, gate_proj, up_proj, down_proj; gpt2: c_attn, c_proj, c_fc; default PEFT's: q_proj,v_proj; gpt2 "
     "c_attn)", NULL, NULL},
    {"train-head", OPT_FLAG, NULL, NULL, "LoRA: the LM head (an untied lm_head) trains too, saved as PEFT's "
     "modules_to_save [\"lm_head\"]", NULL, NULL},
    {"lora-dropout", OPT_FLOAT, "0", "P", "LoRA dropout on the adapters' input (PEFT's lora_dropout)", NULL, "[0,1)"},
    {"base-dtype", OPT_STR, "fp32", "T", "LoRA: the frozen base's weight matrices held in fp32 or bf16 (half their "
     "memory; the embedding and norms stay fp32)", "fp32|bf16", NULL},
    {"adapter", OPT_STR, NULL, "DIR", "LoRA: start from this adapter folder (PEFT's layout) on --model; its r, "
     "lora_alpha and target_modules are the run's", NULL, NULL},
    /* data */
    {"eval-data", OPT_LIST, NULL, "FILE", "held-out demonstrations for eval rows", NULL, NULL},
    {"eval-split", OPT_FLOAT, NULL, "F", "hold out this fraction of the training rows instead", NULL, "[0,1)"},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL, NULL},
    /* logging and files */
    {"log-every", OPT_INT, "10", "N", "progress and metrics every N steps", NULL, "[1,inf)"},
    {"eval-every", OPT_INT, "200", "N", "evaluate every N steps", NULL, "[1,inf)"},
    {"eval-generation-every", OPT_STR, NULL, "epoch|N",
     "also generate on the eval rows at each epoch's end (epoch) or every N steps, and after the last step: accuracy "
     "and Self-BLEU as \"generation\" rows in metrics.jsonl",
     NULL, NULL},
    {"eval-num-samples", OPT_INT, "4", "K", "generation eval: samples per prompt at each --eval-temperatures", NULL, "[1,1024]"},
    {"eval-temperatures", OPT_LIST, "0.7,1.0", "T,...", "generation eval: sampling temperatures (greedy is always run)",
     NULL, NULL},
    {"eval-beam", OPT_INT, "0", "N", "generation eval: also beam search with N beams (0 = none)", NULL, "[0,64]"},
    {"eval-max-new-tokens", OPT_INT, "128", "N", "generation eval: budget per sample", NULL, "[1,inf)"},
    {"eval-limit", OPT_INT, NULL, "N", "generation eval: the first N eval rows only (default: all)", NULL, "[1,inf)"},
    {"save-every", OPT_INT, "500", "N", "checkpoint every N steps", NULL, "[1,inf)"},
    {"keep-last", OPT_INT, "3", "N", "checkpoints to keep", NULL, "[0,inf)"},
    {"keep-best", OPT_FLAG, NULL, NULL, "also keep the best checkpoint by eval loss", NULL, NULL},
    {"save-dtype", OPT_STR, "f32", "T", "dtype of final/model.safetensors", "f32|bf16|f16", NULL},
    {"out", OPT_STR, NULL, "DIR", "output folder (default runs/<UTC date-time>-<6 hex>)", NULL, NULL},
    {"resume", OPT_STR, NULL, "DIR|auto", "continue from a checkpoint", NULL, NULL},
    {"seed", OPT_INT, "42", "S", "seed of init, data order and dropout-free sampling", NULL, NULL},
    OPT_SPEC_THREADS,
    OPT_SPEC_MATMUL_BACKEND,
    OPT_SPEC_MATMUL_PRECISION,
    {"json", OPT_FLAG, NULL, NULL, "print one summary object on stdout at the end", NULL, NULL},
    {"dry-run", OPT_FLAG, NULL, NULL, "print the resolved options and the data summary, then exit", NULL, NULL},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file or a run.json (flags override it)", NULL, NULL},
};

/* The resolved options as JSON (run.json's "options"): every option but config, typed; with defaults_only,
 * what every option is when not given. */
static cJSON *resolved_options(const opt_set *o, bool defaults_only) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < o->cmd->n_opts; i++) {
        const opt_spec *s = &o->cmd->opts[i];
        if (strcmp(s->name, "config") == 0) continue;
        const char *v = defaults_only ? (s->kind == OPT_FLAG ? "0" : s->def) : o->values[i];
        if (!v) cJSON_AddNullToObject(j, s->name);
        else if (s->kind == OPT_FLAG) cJSON_AddBoolToObject(j, s->name, strcmp(v, "1") == 0);
        else if (s->kind == OPT_INT || s->kind == OPT_FLOAT) cJSON_AddNumberToObject(j, s->name, strtod(v, NULL));
        else cJSON_AddStringToObject(j, s->name, v);
    }
    return j;
}

static int pick(const char *v, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) return i;
    return 0;
}

/* --eval-generation-every and the generation eval's settings (temps: room for 64 temperatures); 0 or 64. */
static int gen_eval_options(const opt_set *o, iq_train_opts *t, float *temps) {
    if (opt_is_set(o, "eval-generation-every")) {
        const char *v = opt_str(o, "eval-generation-every");
        char *end;
        long long n = strtoll(v, &end, 10);
        if (strcmp(v, "epoch") == 0) t->gen_eval_every = -1;
        else if (*v && !*end && n >= 1) t->gen_eval_every = (long)n;
        else {
            cli_error("--eval-generation-every: '%s' is neither 'epoch' nor a number of steps >= 1", v);
            return IQ_EUSAGE;
        }
    }
    int nt = args_temperatures(o, "eval-temperatures", temps, 64);
    if (nt < 0) return IQ_EUSAGE;
    t->gen_eval = (iq_gen_eval_opts){.num_samples = (int)opt_int(o, "eval-num-samples"),
                                     .temperatures = temps,
                                     .n_temperatures = nt,
                                     .beam = (int)opt_int(o, "eval-beam"),
                                     .max_new_tokens = (int)opt_int(o, "eval-max-new-tokens"),
                                     .seed = (uint64_t)opt_int(o, "seed"),
                                     .gamma = (float)opt_float(o, "gamma"),
                                     .limit = opt_is_set(o, "eval-limit") ? (int)opt_int(o, "eval-limit") : 0};
    return 0;
}

/* The --lora-* options (lora.h); 0 or 64 with the reason. */
static int lora_options(const opt_set *o, iq_train_opts *t) {
    t->lora = (iq_lora_opts){(int)opt_int(o, "lora-rank"), (float)opt_float(o, "lora-alpha"),
                             (float)opt_float(o, "lora-dropout"), 0, false};
    t->base_bf16 = strcmp(opt_str(o, "base-dtype"), "bf16") == 0;
    t->lora_adapter = opt_is_set(o, "adapter") ? opt_str(o, "adapter") : NULL;
    if (t->lora.rank == 0 && !t->lora_adapter && t->base_bf16) {
        cli_error("--base-dtype bf16 needs --lora-rank > 0 or --adapter (only a frozen base may drop its fp32 weights)");
        return IQ_EUSAGE;
    }
    if (t->lora.rank == 0 && !t->lora_adapter && opt_flag(o, "train-head")) {
        cli_error("--train-head needs --lora-rank > 0 or --adapter (a full fine-tune trains the head anyway)");
        return IQ_EUSAGE;
    }
    if (t->lora_adapter) { /* the folder's r, alpha, targets (and dropout): only options given are checked (train.c) */
        bool given[4];
        const char *names[4] = {"lora-rank", "lora-alpha", "lora-dropout", "lora-targets"};
        for (int i = 0; i < 4; i++) given[i] = opt_is_set(o, names[i]) && strcmp(opt_source(o, names[i]), "default") != 0;
        t->lora = (iq_lora_opts){given[0] ? t->lora.rank : 0, given[1] ? t->lora.alpha : 0.0f,
                                 given[2] ? t->lora.dropout : -1.0f, 0, opt_flag(o, "train-head")};
        if (given[3] && iq_lora_parse_targets(opt_str(o, "lora-targets"), &t->lora.targets)) {
            cli_error("%s", iq_last_error());
            return IQ_EUSAGE;
        }
        return 0;
    }
    if (t->lora.rank == 0) return 0; /* no --lora-targets: 0, the family's default (iq_lora_create) */
    t->lora.train_head = opt_flag(o, "train-head");
    if ((opt_is_set(o, "lora-targets") && iq_lora_parse_targets(opt_str(o, "lora-targets"), &t->lora.targets)) ||
        iq_lora_check_opts(&t->lora)) {
        cli_error("%s", iq_last_error());
        return IQ_EUSAGE;
    }
    return 0;
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
    if (opt_is_set(o, "model") && (opt_is_set(o, "n-layer") || opt_is_set(o, "n-head") || opt_is_set(o, "n-embd") ||
                                   opt_is_set(o, "ctx") || opt_is_set(o, "n-kv-head") ||
                                   strcmp(opt_source(o, "preset"), "default") != 0 ||
                                   strcmp(opt_source(o, "arch"), "default") != 0)) {
        cli_error("--model brings its own architecture and size: --arch, --preset, --n-layer, --n-head, --n-kv-head, "
                  "--n-embd and --ctx conflict with it");
        return IQ_EUSAGE;
    }
    if (iq_matmul_configure(opt_str(o, "matmul-backend"), opt_str(o, "matmul-precision"))) {
        cli_error("%s", iq_last_error());
        return IQ_EUSAGE;
    }
    static const char *const LS[] = {"constant", "linear", "cosine"};
    static const char *const LRS[] = {"cosine", "linear", "constant"};
    static const char *const SD[] = {"f32", "bf16", "f16"};
    static const iq_dtype SDT[] = {IQ_DT_F32, IQ_DT_BF16, IQ_DT_F16};
    iq_train_opts t = {0};
    float temps[64];
    if (gen_eval_options(o, &t, temps) || lora_options(o, &t)) return IQ_EUSAGE;
    t.lambda = (float)opt_float(o, "lambda");
    t.gamma = (float)opt_float(o, "gamma");
    t.lambda_start = (float)opt_float(o, "lambda-start");
    t.lambda_warmup = opt_int(o, "lambda-warmup");
    t.lambda_schedule = (iq_lambda_schedule)pick(opt_str(o, "lambda-schedule"), LS, 3);
    t.td_grad = strcmp(opt_str(o, "td-grad"), "semi") == 0 ? IQ_TD_SEMI : IQ_TD_FULL;
    t.truncation = strcmp(opt_str(o, "truncation"), "drop") == 0 ? IQ_TRUNC_DROP : IQ_TRUNC_BOOTSTRAP;
    t.online = (iq_online_opts){(float)opt_float(o, "online-mix"), (int)opt_int(o, "online-every"),
                                (float)opt_float(o, "online-temperature"), (int)opt_int(o, "online-max-new-tokens"), 0};
    t.label_smoothing = (float)opt_float(o, "label-smoothing");
    t.entropy_coef = (float)opt_float(o, "entropy-coef");
    t.lr = (float)opt_float(o, "lr");
    t.min_lr = (float)opt_float(o, "min-lr");
    t.lr_schedule = (iq_lr_schedule)pick(opt_str(o, "lr-schedule"), LRS, 3);
    t.warmup = opt_int(o, "warmup");
    t.weight_decay = (float)opt_float(o, "weight-decay");
    t.beta1 = (float)opt_float(o, "beta1");
    t.beta2 = (float)opt_float(o, "beta2");
    t.eps = (float)opt_float(o, "eps");
    t.grad_clip = (float)opt_float(o, "grad-clip");
    t.batch_size = (int)opt_int(o, "batch-size");
    t.grad_accum = (int)opt_int(o, "grad-accum");
    t.epochs = opt_float(o, "epochs");
    t.max_steps = opt_is_set(o, "max-steps") ? opt_int(o, "max-steps") : -1;
    t.model_dir = opt_str(o, "model");
    t.tokenizer_path = opt_str(o, "tokenizer");
    t.chat_template = opt_str(o, "chat-template");
    t.arch = opt_str(o, "arch");
    t.preset = opt_str(o, "preset");
    t.n_kv_head = opt_is_set(o, "n-kv-head") ? (int)opt_int(o, "n-kv-head") : 0;
    t.n_layer = (int)opt_int(o, "n-layer");
    t.n_head = (int)opt_int(o, "n-head");
    t.n_embd = (int)opt_int(o, "n-embd");
    t.ctx = (int)opt_int(o, "ctx");
    t.max_seq_len = (int)opt_int(o, "max-seq-len");
    t.data = (const char *const *)o->pos;
    t.n_data = o->n_pos;
    char **eval_files;
    t.n_eval_data = args_files(o, "eval-data", false, &eval_files);
    t.eval_data = (const char *const *)eval_files;
    t.eval_split = opt_is_set(o, "eval-split") ? opt_float(o, "eval-split") : -1.0;
    t.skip_bad_rows = opt_flag(o, "skip-bad-rows");
    t.log_every = opt_int(o, "log-every");
    t.eval_every = opt_int(o, "eval-every");
    t.save_every = opt_int(o, "save-every");
    t.keep_last = (int)opt_int(o, "keep-last");
    t.keep_best = opt_flag(o, "keep-best");
    t.save_dtype = SDT[pick(opt_str(o, "save-dtype"), SD, 3)];
    t.out = opt_str(o, "out");
    t.resume = opt_str(o, "resume");
    t.seed = (uint64_t)opt_int(o, "seed");
    t.threads = opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads();
    t.json = opt_flag(o, "json");
    t.dry_run = opt_flag(o, "dry-run");
    t.gradient_checkpointing = opt_flag(o, "gradient-checkpointing");
    iq_model_folder_allow_extra_tensors(opt_flag(o, "allow-extra-tensors"));
    cJSON *opts = resolved_options(o, false), *defaults = resolved_options(o, true);
    t.options = opts;
    t.option_defaults = defaults;
    cJSON *summary = NULL;
    int rc = iq_train(&t, t.json ? &summary : NULL);
    if (summary) {
        char *s = cJSON_PrintUnformatted(summary);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(summary);
    }
    cJSON_Delete(opts);
    cJSON_Delete(defaults);
    args_files_free(eval_files, t.n_eval_data);
    return rc;
}

const cmd_spec cmd_train = {
    "train",
    "[OPTIONS] DATA...",
    "Train a GPT-2- or Llama-style policy on demonstrations with IQLearn (TD-regularized MLE); --lambda 0 is plain MLE.",
    "DATA are JSONL files (or gzip) of {\"prompt\",\"completion\"}, {\"text\"} or {\"messages\"} rows.",
    OPTS, N_OPTS(OPTS), 0, -1, run};
