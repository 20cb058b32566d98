/* train.h — the training driver: the loop over optimizer steps, with evaluation, checkpoints and signals.
 * Everything a run needs arrives in iq_train_opts (the CLI fills it from argv/--config); the driver owns
 * the output folder (run.json, metrics.jsonl, checkpoint-STEP/, final/). */
#ifndef IQTRAIN_TRAIN_H
#define IQTRAIN_TRAIN_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/eval_generation.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/lora.h"
#include "iqtrain/online.h"
#include "iqtrain/optim.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/util.h"

typedef struct {
    /* the method */
    float lambda, gamma, lambda_start;
    long lambda_warmup;
    iq_lambda_schedule lambda_schedule;
    iq_td_grad td_grad;
    iq_truncation truncation;
    iq_online_opts online; /* online IQLearn (online.h): online.mix 0 = offline; its seed is `seed` below */
    float label_smoothing, entropy_coef; /* controls (DESIGN §10): eps in [0, 1), beta >= 0 */
    /* optimizer */
    float lr, min_lr, weight_decay, beta1, beta2, eps, grad_clip;
    iq_lr_schedule lr_schedule;
    long warmup;
    int batch_size, grad_accum;
    double epochs;
    long max_steps; /* -1 = the epochs decide */
    /* model */
    const char *model_dir;      /* NULL = from scratch */
    const char *tokenizer_path; /* required from scratch */
    const char *chat_template;  /* --chat-template FILE, or NULL: the tokenizer's (chat_format.h) */
    const char *arch;   /* family from scratch: "gpt2" (NULL too) or "llama" */
    const char *preset;
    int n_layer, n_head, n_embd, ctx; /* 0 = the preset's */
    int n_kv_head;                    /* 0 = the preset's (Llama families only) */
    int max_seq_len;                  /* 0 = ctx */
    bool gradient_checkpointing;      /* recompute activations in backward (model.h, IQ_MODEL_TRAIN_RECOMPUTE) */
    iq_lora_opts lora;                /* LoRA adapters (lora.h): rank 0 = full fine-tuning */
    const char *lora_adapter;         /* --adapter DIR: adapters read from DIR (lora_io.h); lora then holds the
                                       * options given (0, or dropout -1, when not: the folder's apply) */
    bool base_bf16;                   /* --base-dtype bf16 (LoRA only): the frozen base's matrices in bf16 (model.h) */
    /* data */
    const char *const *data;
    int n_data;
    const char *const *eval_data;
    int n_eval_data;
    double eval_split; /* < 0 = none */
    bool skip_bad_rows;
    /* generations on the eval rows during training ("generation" rows in metrics.jsonl): after every
     * gen_eval_every steps (-1: at each epoch's end; 0: never) and after the last step, with the loss eval of that
     * step; gen_eval's num_samples, temperatures, beam, max_new_tokens, limit and seed are used */
    long gen_eval_every;
    iq_gen_eval_opts gen_eval;
    /* logging and files */
    long log_every, eval_every, save_every;
    int keep_last;
    bool keep_best;
    iq_dtype save_dtype;
    const char *out;    /* NULL = runs/<UTC date-time>-<6 hex> */
    const char *resume; /* NULL, "auto" or a checkpoint folder */
    uint64_t seed;
    int threads;
    bool json, dry_run;
    const cJSON *options; /* resolved options for run.json (names as on the command line) */
    const cJSON *option_defaults; /* each option's value when not given (NULL: none known) */
} iq_train_opts;

/* Runs training. Returns 0, or the exit code of DESIGN §5 (64 conflicting options or a refused resume,
 * 65 bad data, 66, 73, 74, 75 diverged, 130/143 after a signal) with a message. With o->json, *summary
 * receives the summary object. */
int iq_train(const iq_train_opts *o, cJSON **summary);

#endif
