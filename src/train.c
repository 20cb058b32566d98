/* train.c — the training driver (DESIGN §5–§7): the loop over optimizer steps.
 *
 * It reads top to bottom like llm.c's training loop; each job is a function of the file that owns it: the run
 * folder and resume policy (run_folder.h), the model config (model.h), data order and batching (batch.h), the
 * step (step.h), the run log (run_log.h), the trainer state and checkpoints (checkpoint.h).
 * The state of a run is its step, the weights and AdamW's moments: resuming from a checkpoint restores exactly
 * those, so the metrics continue bit for bit.
 * Under MPI (dist.h) every rank holds the whole model and data; each micro-batch of the step is split across
 * ranks in order (batch.h), the gradients and loss sums are summed over ranks (step.h), and rank 0 alone writes
 * the folder, the metrics and checkpoints.
 *
 * Sections: signals · the run's parts · setting up · the loop · iq_train. */
#include "iqtrain/train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "iqtrain/batch.h"
#include "iqtrain/chat_format.h"
#include "iqtrain/checkpoint.h"
#include "iqtrain/data.h"
#include "iqtrain/dist.h"
#include "iqtrain/log.h"
#include "iqtrain/lora_io.h"
#include "iqtrain/matmul.h"
#include "iqtrain/memory_plan.h"
#include "iqtrain/model.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/online.h"
#include "iqtrain/run_folder.h"
#include "iqtrain/run_log.h"
#include "iqtrain/signals.h"
#include "iqtrain/step.h"
#include "iqtrain/tokenizer.h"

// ----------------------------------------------------------------------------------------------------
// signals: the first SIGINT/SIGTERM finishes the step and saves; a second one exits at once

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
    if (g_signal) _exit(128 + sig); /* the last complete checkpoint stays as it is */
    g_signal = sig;
    iq_dist_on_signal(); /* under MPI: a rank stuck waiting for a dead one exits 70 after a grace period */
}

static const int STOP_SIGNALS[2] = {SIGINT, SIGTERM};

/* on an alternate stack, off the OpenMP workers: oneDNN's JIT kernels (signals.h) */
static void install_signals(void) { iq_signals_install(on_signal, STOP_SIGNALS, 2); }

static void restore_signals(void) { iq_signals_restore(STOP_SIGNALS, 2); }

/* The signal every rank agrees on (the largest), 0 for none. */
static int agreed_signal(void) { return iq_dist_world() > 1 ? (int)iq_dist_max_f64((double)g_signal) : (int)g_signal; }

// ----------------------------------------------------------------------------------------------------
// the run's parts

typedef struct {
    iq_run_spec spec;
    iq_run_folder folder;
    iq_tokenizer *tok;
    iq_chat_format *chat; /* messages rows through this template, or NULL */
    iq_dataset *data, *eval_data;
    const iq_dataset *eval_src; /* eval_data, or data with --eval-split */
    uint32_t *train_rows, *eval_rows;
    size_t n_train, n_eval;
    iq_model *model;
    iq_head *head;
    iq_adamw *opt;
    iq_lora *lora;          /* --lora-rank > 0: the adapters the optimizer trains, else NULL */
    iq_online *online;      /* --online-mix > 0, else NULL */
    iq_batch batch;
    iq_order order;
    iq_run_log log;
    cJSON *section;         /* config.json's "iqtrain" section */
    iq_trainer_state state; /* the position, as a checkpoint records it */
    double last_eval_loss;  /* NAN until an eval ran */
    long total, spe;        /* steps in all and per epoch */
    int rank, world, B;     /* B: this rank's rows per micro-batch */
    double rss_before_model, peak_before_model; /* bytes, for the dry run's memory plan */
} run;

static void run_free(run *r) {
    iq_run_folder_free(&r->folder);
    iq_tok_free(r->tok);
    iq_chat_format_free(r->chat);
    iq_data_free(r->data);
    iq_data_free(r->eval_data);
    free(r->train_rows);
    free(r->eval_rows);
    iq_model_free(r->model);
    iq_lora_free(r->lora);
    iq_head_free(r->head);
    iq_online_free(r->online);
    iq_adamw_free(r->opt);
    iq_batch_free(&r->batch);
    iq_order_free(&r->order);
    iq_run_log_close(&r->log);
    cJSON_Delete(r->section);
}

static int finish(run *r, int rc, bool say) {
    iq_progress_end();
    if (rc && say) fprintf(stderr, "iqtrain: %s\n", iq_last_error());
    run_free(r);
    restore_signals();
    return rc;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* The loss options at a value of lambda (the schedule's at a step). */
static iq_loss_opts loss_opts(const iq_train_opts *o, float lambda) {
    return (iq_loss_opts){lambda, o->gamma, o->td_grad, o->truncation, o->label_smoothing, o->entropy_coef};
}

static const char *td_name(iq_td_grad g) { return g == IQ_TD_SEMI ? "semi" : "full"; }
static const char *trunc_name(iq_truncation t) { return t == IQ_TRUNC_DROP ? "drop" : "bootstrap"; }

/* config.json's "iqtrain" section: the loss options a model was trained with. */
static cJSON *iqtrain_section(const iq_train_opts *o) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "lambda", iq_short_float(o->lambda));
    cJSON_AddNumberToObject(s, "gamma", iq_short_float(o->gamma));
    cJSON_AddStringToObject(s, "td_grad", td_name(o->td_grad));
    cJSON_AddStringToObject(s, "truncation", trunc_name(o->truncation));
    static const char *ls[] = {"constant", "linear", "cosine"};
    cJSON_AddStringToObject(s, "lambda_schedule", ls[o->lambda_schedule]);
    if (o->online.mix > 0) {
        cJSON_AddNumberToObject(s, "online_mix", iq_short_float(o->online.mix));
        cJSON_AddNumberToObject(s, "online_every", o->online.every);
        cJSON_AddNumberToObject(s, "online_temperature", iq_short_float(o->online.temperature));
        cJSON_AddNumberToObject(s, "online_max_new_tokens", o->online.max_new_tokens);
    }
    cJSON_AddNumberToObject(s, "label_smoothing", iq_short_float(o->label_smoothing));
    cJSON_AddNumberToObject(s, "entropy_coef", iq_short_float(o->entropy_coef));
    cJSON_AddStringToObject(s, "version", iq_version());
    return s;
}

// ----------------------------------------------------------------------------------------------------
// setting up

/* Combinations the options table cannot express. */
static iq_status check_options(const iq_train_opts *o) {
    if (o->batch_size < 1 || o->grad_accum < 1) return iq_fail(IQ_EUSAGE, "--batch-size and --grad-accum must be at least 1");
    if (o->log_every < 1 || o->eval_every < 1 || o->save_every < 1)
        return iq_fail(IQ_EUSAGE, "--log-every, --eval-every and --save-every must be at least 1");
    if (o->eval_split >= 0 && o->n_eval_data > 0) return iq_fail(IQ_EUSAGE, "--eval-data and --eval-split cannot be combined");
    if (o->eval_split >= 1.0) return iq_fail(IQ_EUSAGE, "--eval-split must be in [0, 1)");
    if (o->resume && strcmp(o->resume, "auto") == 0 && !o->out) return iq_fail(IQ_EUSAGE, "--resume auto needs --out DIR");
    bool lora = o->lora.rank > 0 || o->lora_adapter;
    if (o->lora_adapter && !o->model_dir) return iq_fail(IQ_EUSAGE, "--adapter needs --model BASE (the adapter's base model)");
    if (lora && o->online.mix > 0)
        return iq_fail(IQ_EUSAGE, "--online-mix with --lora-rank is not yet supported (the sampler would not see the adapters)");
    if (lora && o->gen_eval_every != 0)
        return iq_fail(IQ_EUSAGE, "--eval-generation-every with --lora-rank is not yet supported (generation would not "
                                  "see the adapters)");
    if (o->lambda < 0 || o->gamma < 0 || o->gamma > 1) return iq_fail(IQ_EUSAGE, "--lambda must be >= 0 and --gamma in [0, 1]");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1) || !(o->entropy_coef >= 0))
        return iq_fail(IQ_EUSAGE, "--label-smoothing must be in [0, 1) and --entropy-coef >= 0");
    return IQ_OK;
}

/* The tokenizer and the model's config: a folder's, or a preset with overrides from scratch. */
static iq_status resolve_model(const iq_train_opts *o, run *r, iq_model_config *cfg) {
    iq_status st;
    if (o->model_dir) {
        st = iq_model_config_read(o->model_dir, cfg, NULL);
        if (!st) st = iq_tok_load(o->tokenizer_path ? o->tokenizer_path : o->model_dir, &r->tok);
    } else {
        st = iq_tok_load(o->tokenizer_path, &r->tok);
        int over[5] = {o->n_layer, o->n_head, o->n_embd, o->ctx, o->n_kv_head};
        if (!st) st = iq_model_config_build(o->arch, o->preset, over, iq_tok_vocab_size(r->tok), cfg);
    }
    if (st) return st;
    if (iq_tok_vocab_size(r->tok) > cfg->vocab)
        return iq_fail(IQ_EDATA, "the tokenizer has %d ids but the model only %d", iq_tok_vocab_size(r->tok), cfg->vocab);
    int max_seq_len = o->max_seq_len > 0 ? o->max_seq_len : cfg->ctx;
    if (max_seq_len > cfg->ctx) return iq_fail(IQ_EUSAGE, "--max-seq-len %d exceeds the model's ctx %d", max_seq_len, cfg->ctx);
    if (max_seq_len < 2) return iq_fail(IQ_EUSAGE, "--max-seq-len must be at least 2");
    return IQ_OK;
}

/* The demonstrations, the eval rows (--eval-data or --eval-split) and the training rows. */
static iq_status load_data(const iq_train_opts *o, run *r, int max_seq_len) {
    iq_status st = iq_chat_format_load(r->tok, o->chat_template, &r->chat);
    if (st) return st;
    if (r->chat) {
        iq_info("chat template: %s (messages rows are rendered with it)", iq_chat_format_source(r->chat));
        r->spec.chat_source = iq_chat_format_source(r->chat);
        r->spec.chat_sha256 = iq_chat_format_sha256(r->chat);
        if (o->chat_template) iq_tok_set_chat_template(r->tok, iq_chat_format_text(r->chat)); /* saved with the model */
        iq_tok_set_end_of_turn(r->tok, iq_chat_format_end_of_turn(r->chat, r->tok)); /* generation stops there too */
    }
    iq_data_opts dopt = {.max_seq_len = max_seq_len, .chat = r->chat, .skip_bad_rows = o->skip_bad_rows, .progress = true};
    st = iq_data_load(o->data, o->n_data, r->tok, &dopt, &r->data);
    if (!st && o->n_eval_data > 0) st = iq_data_load(o->eval_data, o->n_eval_data, r->tok, &dopt, &r->eval_data);
    if (st) return st;
    const iq_data_stats *s = &r->data->stats;
    iq_info("data: %zu rows · %zu tokens · %zu supervised · %zu truncated · %zu skipped · %zu bad", s->rows, s->tokens,
            s->supervised, s->truncated, s->skipped, s->bad);
    iq_split_rows(r->data, o->eval_split, o->seed, &r->train_rows, &r->n_train, &r->eval_rows, &r->n_eval);
    r->eval_src = r->n_eval > 0 ? r->data : NULL;
    if (r->eval_data) {
        free(r->eval_rows);
        r->eval_rows = iq_xmalloc((r->eval_data->n_rows ? r->eval_data->n_rows : 1) * sizeof *r->eval_rows);
        for (size_t i = 0; i < r->eval_data->n_rows; i++) r->eval_rows[i] = (uint32_t)i;
        r->n_eval = r->eval_data->n_rows;
        r->eval_src = r->eval_data;
    }
    if (r->n_train == 0) return iq_fail(IQ_EDATA, "no training rows left after the eval split");
    if (o->gen_eval_every && r->n_eval == 0)
        return iq_fail(IQ_EUSAGE, "--eval-generation-every needs eval rows (--eval-data FILE or --eval-split F)");
    return IQ_OK;
}

/* --adapter DIR: the adapters read from DIR, with its r, alpha and targets (64 naming an option given that
 * differs) and its dropout unless --lora-dropout is given. */
static iq_status start_adapters(const iq_train_opts *o, run *r, int rows) {
    iq_lora_opts f;
    iq_status st = iq_lora_read_config(o->lora_adapter, &f);
    float dropout = o->lora.dropout >= 0 ? o->lora.dropout : f.dropout;
    if (!st) st = iq_lora_load(o->lora_adapter, iq_model_cfg(r->model), rows, dropout, &r->lora);
    if (st) return st;
    const iq_lora_opts *h = iq_lora_get_opts(r->lora);
    if (o->lora.rank && o->lora.rank != h->rank)
        return iq_fail(IQ_EUSAGE, "--lora-rank %d conflicts with %s's r = %d", o->lora.rank, o->lora_adapter, h->rank);
    if (o->lora.alpha > 0 && o->lora.alpha != h->alpha)
        return iq_fail(IQ_EUSAGE, "--lora-alpha %g conflicts with %s's lora_alpha = %g", (double)o->lora.alpha,
                       o->lora_adapter, (double)h->alpha);
    if (o->lora.targets && o->lora.targets != h->targets)
        return iq_fail(IQ_EUSAGE, "--lora-targets conflicts with %s's target_modules", o->lora_adapter);
    if (o->lora.train_head && !h->train_head)
        return iq_fail(IQ_EUSAGE, "--train-head conflicts with %s, whose modules_to_save has no lm_head", o->lora_adapter);
    return IQ_OK;
}

/* The model (loaded or initialised from the seed), the loss head, AdamW, the batch and the data order. Each
 * rank holds its share of a micro-batch: ceil(batch_size / world) rows. */
static iq_status build_model(const iq_train_opts *o, run *r, const iq_model_config *cfg) {
    size_t longest = r->data->stats.max_len;
    if (r->eval_data && r->eval_data->stats.max_len > longest) longest = r->eval_data->stats.max_len;
    r->B = (o->batch_size + r->world - 1) / r->world;
    int max_seq = (int)longest;
    if (o->online.mix > 0) { /* room for a prompt and its samples (online.h) */
        int need = iq_online_seq_needed(r->data, r->train_rows, r->n_train, o->online.max_new_tokens,
                                        o->max_seq_len > 0 ? o->max_seq_len : cfg->ctx);
        if (need > max_seq) max_seq = need;
    }
    iq_status st;
    iq_model_mode mode = o->gradient_checkpointing ? IQ_MODEL_TRAIN_RECOMPUTE : IQ_MODEL_TRAIN;
    if (o->lora.rank > 0) /* a frozen base: no gradient arena; its matrices in bf16 with --base-dtype bf16 */
        mode = (iq_model_mode)(mode | (o->base_bf16 ? IQ_MODEL_BF16_BASE : IQ_MODEL_FROZEN));
    if (o->model_dir) {
        st = iq_model_load_folder(o->model_dir, mode, r->B, max_seq, &r->model, NULL);
    } else {
        st = iq_model_create(cfg, mode, r->B, max_seq, &r->model);
        if (!st) iq_model_init(r->model, o->seed);
    }
    if (st) return st;
    if (o->gradient_checkpointing && !iq_model_recomputes(r->model) && r->rank == 0)
        iq_info("notice: --gradient-checkpointing: %s has no activation recomputation (the Llama families do): "
                "training without it", iq_model_arch_name(iq_model_cfg(r->model)));
    r->head = iq_head_create(r->B * max_seq, cfg->n_embd, cfg->vocab, 0);
    if (o->lora.rank > 0 || o->lora_adapter) { /* before the optimizer: it trains the adapters */
        st = o->lora_adapter ? start_adapters(o, r, r->B * max_seq)
                             : iq_lora_create(iq_model_cfg(r->model), &o->lora, r->B * max_seq, o->seed, &r->lora);
        if (!st && !o->lora_adapter && iq_lora_head(r->lora)) /* --train-head: from the base's head */
            memcpy(iq_lora_head(r->lora), iq_model_head(r->model), (size_t)cfg->vocab * cfg->n_embd * sizeof(float));
        if (!st) st = iq_model_set_lora(r->model, r->lora);
        if (st) return st;
        iq_lora_set_base(r->lora, o->model_dir ? o->model_dir : "");
    }
    r->opt = iq_adamw_create(r->model);
    if (o->online.mix > 0) {
        iq_online_opts oo = o->online;
        oo.seed = o->seed;
        r->online = iq_online_create(r->model, &oo, o->grad_accum, iq_stop_ids_of(r->tok));
    }
    iq_batch_init(&r->batch, r->B, max_seq);
    iq_order_init(&r->order, r->data, r->train_rows, r->n_train, o->seed, o->batch_size, o->grad_accum);
    r->section = iqtrain_section(o);
    r->spe = iq_order_steps_per_epoch(&r->order);
    r->total = o->max_steps >= 0 ? o->max_steps : (long)ceil(o->epochs * (double)r->spe);
    return IQ_OK;
}

/* --dry-run's "memory_mb": the predicted peak of the run and its items (memory_plan.h), and the dry run's own
 * peak so far (it has built the model and run one forward pass). */
/* With LoRA also "memory_mb_without_lora": the plan of a full fine-tune of the same model (without the dry run's
 * own peak). */
static void add_memory_plan(cJSON *j, const run *r) {
    for (int full = 0; full <= (r->lora ? 1 : 0); full++) {
        iq_memory_plan p;
        (full ? iq_memory_plan_full : iq_memory_plan_training)(r->model, r->head, iq_get_threads(), r->rss_before_model,
                                                               r->peak_before_model, &p);
        cJSON *mem = cJSON_AddObjectToObject(j, full ? "memory_mb_without_lora" : "memory_mb");
        const char *k[] = {"predicted_peak_rss", "before_model", "parameters", "gradients", "adamw", "lora",
                           "activations", "activation_grads", "loss_head", "batch", "bf16_weights", "bf16_operands",
                           "widened_weight", "matmul_runtime"};
        double v[] = {p.peak, p.before_model, p.parameters, p.gradients, p.adamw, p.lora, p.activations,
                      p.activation_grads, p.loss_head, p.batch, p.bf16_weights, p.bf16_operands, p.widened_weight,
                      p.matmul_runtime};
        double online = r->online ? (double)iq_online_bytes(r->online) : 0.0; /* the sampler's KV cache and rows */
        v[0] += online;
        for (size_t i = 0; i < sizeof v / sizeof *v; i++) cJSON_AddNumberToObject(mem, k[i], v[i] / 1e6);
        if (r->online) cJSON_AddNumberToObject(mem, "online_sampling", online / 1e6);
        if (!full) cJSON_AddNumberToObject(mem, "dry_run_peak_rss", peak_rss_mb() * 1.048576);
    }
}

/* --dry-run: the resolved plan and |r| statistics of the first batch at the initial weights, on stdout. */
static void dry_run(const iq_train_opts *o, run *r) {
    const iq_model_config *cfg = iq_model_cfg(r->model);
    iq_order_select(&r->order, 0, &(long){0});
    uint32_t *first = r->order.perm; /* the first epoch's order, unsorted: the first rows drawn */
    int n = (int)(r->n_train < (size_t)r->B ? r->n_train : (size_t)r->B);
    iq_batch_fill(&r->batch, r->data, first, n);
    iq_loss_opts lo = loss_opts(o, o->lambda);
    iq_loss_stats ls = {0};
    iq_eval_batch(r->model, r->head, &r->batch, &lo, 1.0f, &ls, NULL);
    double nll, td, loss = iq_loss_value(&ls, lo.lambda, &nll, &td);
    size_t np = iq_model_num_params(r->model);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "options", o->options ? cJSON_Duplicate(o->options, 1) : cJSON_CreateObject());
    cJSON *mc = cJSON_AddObjectToObject(j, "model");
    cJSON_AddStringToObject(mc, "model_type", iq_model_arch_name(cfg));
    cJSON_AddNumberToObject(mc, "n_layer", cfg->n_layer);
    cJSON_AddNumberToObject(mc, "n_head", cfg->n_head);
    cJSON_AddNumberToObject(mc, "n_embd", cfg->n_embd);
    cJSON_AddNumberToObject(mc, "ctx", cfg->ctx);
    cJSON_AddNumberToObject(mc, "vocab", cfg->vocab);
    cJSON_AddNumberToObject(j, "parameters", (double)np);
    add_memory_plan(j, r);
    const iq_data_stats *s = &r->data->stats;
    cJSON *dd = cJSON_AddObjectToObject(j, "data");
    double dv[8] = {(double)s->rows, (double)r->n_train, (double)r->n_eval, (double)s->tokens, (double)s->supervised,
                    (double)s->truncated, (double)s->skipped, (double)s->bad};
    const char *dk[8] = {"rows", "train_rows", "eval_rows", "tokens", "supervised", "truncated", "skipped", "bad"};
    for (int i = 0; i < 8; i++) cJSON_AddNumberToObject(dd, dk[i], dv[i]);
    cJSON_AddNumberToObject(j, "steps_per_epoch", (double)r->spe);
    cJSON_AddNumberToObject(j, "total_steps", (double)r->total);
    cJSON *fb = cJSON_AddObjectToObject(j, "first_batch");
    double ntd = ls.n_td ? (double)ls.n_td : 1.0;
    double fv[6] = {loss, nll, td, ls.r_sum / ntd, ls.r_abs_sum / ntd, ls.r_abs_max};
    const char *fk[6] = {"loss", "nll", "td", "reward_mean", "reward_abs_mean", "reward_abs_max"};
    for (int i = 0; i < 6; i++) cJSON_AddNumberToObject(fb, fk[i], fv[i]);
    char *txt = cJSON_Print(j);
    if (r->rank == 0) printf("%s\n", txt);
    free(txt);
    cJSON_Delete(j);
}

/* Rank 0 opens the folder (resuming loads the checkpoint into the model and AdamW) and the run log; the other
 * ranks then receive the same weights, moments and position. Returns the step to start at. */
static iq_status open_run(run *r, long *start, bool *quiet) {
    *quiet = false;
    *start = 0;
    iq_status st = iq_dist_agree(IQ_OK); /* every rank is past its read-only checks before rank 0 writes anything */
    if (r->rank == 0) st = iq_run_folder_open(&r->folder, &r->spec, r->model, r->opt, r->total, start);
    r->state = r->folder.resume_dir ? r->folder.state : (iq_trainer_state){.best_eval_loss = INFINITY};
    r->state.step = *start;
    if (!st && r->rank == 0) {
        st = iq_run_log_open(&r->log, r->folder.out, *start, r->total, r->spe, r->state.elapsed_s);
        char nm[48];
        snprintf(nm, sizeof nm, "checkpoint-%ld", *start);
        char *here = iq_path_join(r->folder.out, nm);
        if (!st && r->folder.resume_dir && *start > 0 && iq_is_dir(here)) st = iq_run_log_ckpt(&r->log, *start, r->state.elapsed_s);
        free(here);
    }
    if (!iq_dist_enabled()) return st;
    iq_status agreed = (iq_status)iq_dist_agree((int)st);
    *quiet = agreed && !st; /* rank 0 failed and said why */
    if (agreed) return agreed;
    iq_dist_bcast(start, sizeof *start);
    iq_dist_bcast(&r->state, sizeof r->state);
    size_t n;
    float *params = iq_model_param_memory(r->model, &n);
    iq_dist_bcast(params, n * sizeof(float));
    uint16_t *half = iq_model_param_bf16(r->model, &n); /* --base-dtype bf16 */
    if (half) iq_dist_bcast(half, n * sizeof *half);
    float *tg, *tp = iq_model_trainable(r->model, &tg, &n); /* the adapters with LoRA */
    if (tp != params) iq_dist_bcast(tp, n * sizeof(float));
    iq_matmul_params_changed();
    iq_dist_bcast(iq_adamw_m(r->opt), n * sizeof(float));
    iq_dist_bcast(iq_adamw_v(r->opt), n * sizeof(float));
    long ast = iq_adamw_steps(r->opt);
    iq_dist_bcast(&ast, sizeof ast);
    iq_adamw_set_steps(r->opt, ast);
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// the loop

/* The step's micro-batches as this rank holds them (batch.h), for iq_train_step. */
typedef struct {
    run *r;
    int mb;
} micro_source;

static bool next_micro(void *ctx, iq_batch *b) {
    micro_source *m = ctx;
    size_t r0, r1;
    while (iq_order_micro(&m->r->order, m->mb++, m->r->rank, m->r->world, &r0, &r1))
        if (r1 > r0) {
            iq_batch_fill(b, m->r->data, m->r->order.step_rows + r0, (int)(r1 - r0));
            return true;
        }
    return false;
}

/* Eval rows at the step's lambda (rank 0), logged; the state remembers the loss of this step. */
static iq_status evaluate(run *r, const iq_train_opts *o, long done, float lambda) {
    iq_loss_opts lo = loss_opts(o, lambda);
    iq_loss_stats es;
    iq_eval_rows(r->model, r->head, r->eval_src, r->eval_rows, r->n_eval, &lo, r->B, &es);
    double loss = iq_loss_value(&es, lambda, NULL, NULL);
    r->state.eval_loss = r->last_eval_loss = loss;
    if (loss < r->state.best_eval_loss) r->state.best_eval_loss = loss;
    return iq_run_log_eval(&r->log, done, &es, lambda);
}

/* Whether generations are evaluated after step `done`: every gen_eval_every steps (or at each epoch's end), and
 * after the last one. */
static bool gen_eval_due(const run *r, const iq_train_opts *o, long done) {
    if (o->gen_eval_every == 0) return false;
    long every = o->gen_eval_every < 0 ? r->spe : o->gen_eval_every;
    return done % every == 0 || done == r->total;
}

/* Generations on the eval rows with the weights after step `done` (rank 0), logged as "generation" rows. */
static iq_status evaluate_generation(run *r, const iq_train_opts *o, long done) {
    cJSON *res = NULL;
    iq_status st = iq_eval_generation_model(r->model, r->tok, r->eval_src, r->eval_rows, r->n_eval, &o->gen_eval, &res);
    if (!st) st = iq_run_log_generation(&r->log, done, res);
    cJSON_Delete(res);
    return st;
}

/* checkpoint-DONE with the state as it is after step `done` (rank 0), logged, then rotation. */
static iq_status save_checkpoint(run *r, const iq_train_opts *o, long done) {
    iq_trainer_state *s = &r->state;
    s->step = done;
    s->epoch = (double)done / (double)r->spe;
    s->data_epoch = done / r->spe;
    s->data_row = (done % r->spe) * r->order.rows_per_step;
    s->elapsed_s = iq_run_log_elapsed(&r->log);
    s->seed = o->seed;
    s->total_steps = r->total;
    s->threads = o->threads;
    s->world_size = r->world;
    s->online_refresh_step = r->online ? iq_online_refresh_step(r->online) : -1;
    iq_checkpoint_extra samples = {IQ_ONLINE_SAMPLES_FILE, iq_online_save, r->online};
    cJSON *build = iq_run_build_facts(o->threads);
    iq_status st = iq_checkpoint_save(r->folder.out, r->model, r->opt, r->tok, r->section, s, build,
                                      r->online ? &samples : NULL, NULL);
    cJSON_Delete(build);
    if (!st) st = iq_run_log_ckpt(&r->log, done, iq_run_log_elapsed(&r->log));
    if (!st) iq_checkpoint_rotate(r->folder.out, o->keep_last, o->keep_best);
    return st;
}

/* Steps start..total; 0, or an exit code (75 diverged, 74 I/O, 130/143 after a signal and a checkpoint). */
static int train_loop(run *r, const iq_train_opts *o, long start, iq_step_result *last) {
    iq_step_opts so = {.loss = loss_opts(o, o->lambda),
                       .adamw = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay},
                       .grad_clip = o->grad_clip, .online = r->online};
    for (long step = start; step < r->total; step++) {
        long done = step + 1, ntok = 0;
        micro_source ms = {r, 0};
        iq_step_source src = {next_micro, &ms, iq_order_select(&r->order, step, &ntok)};
        so.loss.lambda = iq_lambda_at(o->lambda_schedule, o->lambda_start, o->lambda, o->lambda_warmup, step);
        so.lr = iq_lr_at(o->lr_schedule, o->lr, o->min_lr, o->warmup, r->total, step);
        if (r->online && iq_online_due(r->online, step)) iq_online_refresh(r->online, &r->order, r->rank, r->world, step);
        if (iq_train_step(r->model, r->head, r->opt, &r->batch, &src, &so, last))
            return (int)iq_fail(IQ_EDIVERGED, "diverged at step %ld: loss %g, gradient norm %g (the last good checkpoint is kept)",
                                done, last->loss, last->grad_norm);
        r->state.tokens_seen += src.n_sup;
        r->state.lambda = so.loss.lambda;
        r->state.lr = so.lr;
        r->state.eval_loss = NAN;
        iq_train_row row = {r->state.tokens_seen, last->loss, last->nll, last->td, so.loss.lambda, so.lr, last->grad_norm,
                            &last->stats, r->online != NULL, last->online_value_gap, last->online_sample_len};
        iq_status st = IQ_OK;
        if (r->rank == 0) {
            iq_run_log_add_tokens(&r->log, ntok);
            if (done % o->log_every == 0 || done == r->total) st = iq_run_log_train(&r->log, done, &row);
            iq_run_log_progress(&r->log, done, &row, 0.0, false); /* redrawn on a TTY after every step */
            bool gen = gen_eval_due(r, o, done);
            if (!st && r->n_eval > 0 && (done % o->eval_every == 0 || done == r->total || gen))
                st = evaluate(r, o, done, so.loss.lambda);
            if (!st && gen) st = evaluate_generation(r, o, done);
        }
        int sig = agreed_signal(); /* every rank stops together */
        if (!st && r->rank == 0 && (done % o->save_every == 0 || sig)) st = save_checkpoint(r, o, done);
        if (st) return (int)st;
        if (sig) {
            iq_progress_end();
            if (r->rank == 0) iq_warn("%s: saved checkpoint-%ld, exiting", sig == SIGINT ? "interrupted" : "terminated", done);
            return sig == SIGINT ? 130 : 143;
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------------------------------
// iq_train

static cJSON *summary_json(const run *r, const iq_step_result *last, double elapsed) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "out", r->folder.out);
    cJSON_AddNumberToObject(j, "steps", (double)r->total);
    cJSON_AddNumberToObject(j, "tokens", (double)r->state.tokens_seen);
    cJSON *tr = cJSON_AddObjectToObject(j, "train");
    cJSON_AddNumberToObject(tr, "loss", last->loss);
    cJSON_AddNumberToObject(tr, "nll", last->nll);
    cJSON_AddNumberToObject(tr, "td", last->td);
    if (isfinite(r->last_eval_loss)) cJSON_AddNumberToObject(j, "eval_loss", r->last_eval_loss);
    cJSON_AddNumberToObject(j, "elapsed_s", elapsed);
    cJSON_AddNumberToObject(j, "peak_rss_mb", peak_rss_mb());
    return j;
}

int iq_train(const iq_train_opts *o, cJSON **summary) {
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->rank = iq_dist_rank();
    r->world = iq_dist_world();
    r->last_eval_loss = NAN;
    r->spec = (iq_run_spec){o->out, o->resume, o->options, o->data, o->eval_data, o->n_data, o->n_eval_data, o->seed,
                            o->threads, o->lr_schedule == IQ_LR_CONSTANT, NULL, NULL,
                            o->option_defaults};
    if (summary) *summary = NULL;
    g_signal = 0;
    iq_set_threads(o->threads);

    iq_model_config cfg;
    iq_status st = check_options(o);
    if (!st && !o->dry_run) st = iq_run_folder_resolve(&r->spec, &r->folder);
    if (!st) st = resolve_model(o, r, &cfg);
    if (!st) st = load_data(o, r, o->max_seq_len > 0 ? o->max_seq_len : cfg.ctx);
    r->rss_before_model = iq_rss_now(), r->peak_before_model = iq_rss_peak();
    if (!st) st = build_model(o, r, &cfg);
    if (st) return finish(r, (int)st, true);
    if (o->dry_run) {
        dry_run(o, r);
        return finish(r, 0, false);
    }
    long start;
    bool quiet;
    st = open_run(r, &start, &quiet);
    if (!st && r->online && start > 0) { /* the samples the resumed step reuses (collective) */
        st = iq_online_load(r->online, r->rank == 0 ? r->folder.resume_dir : NULL, r->state.online_refresh_step);
        quiet = st && r->rank != 0;
    }
    if (st) return finish(r, (int)st, !quiet);
    char desc[128];
    iq_model_config_describe(iq_model_cfg(r->model), desc, sizeof desc);
    char ctl[96] = "";
    if (o->label_smoothing > 0 || o->entropy_coef > 0)
        snprintf(ctl, sizeof ctl, ", label smoothing %g, entropy coef %g", (double)o->label_smoothing, (double)o->entropy_coef);
    iq_info("training %s: %zu parameters (%s), lambda %g, gamma %g%s, %ld steps (%ld per epoch), out %s",
            r->folder.resume_dir ? "(resumed)" : o->model_dir ? o->model_dir : "from scratch", iq_model_num_params(r->model),
            desc, (double)o->lambda, (double)o->gamma, ctl, r->total, r->spe, r->folder.out);

    install_signals();
    iq_step_result last;
    memset(&last, 0, sizeof last);
    int rc = train_loop(r, o, start, &last);
    iq_progress_end();
    if (rc) return finish(r, rc, rc != 130 && rc != 143);

    if (r->rank == 0) {
        st = iq_run_save_final(r->folder.out, r->model, r->tok, o->save_dtype, r->section);
        if (!st) st = iq_run_log_final(&r->log, r->state.tokens_seen);
        if (st) return finish(r, (int)st, true);
    }
    double elapsed = r->rank == 0 ? iq_run_log_elapsed(&r->log) : 0.0;
    iq_info("done: %ld steps in %.1f s, final model in %s/final (peak RSS %.0f MB)", r->total - start, elapsed,
            r->folder.out, peak_rss_mb());
    if (summary && r->rank == 0) *summary = summary_json(r, &last, elapsed);
    return finish(r, 0, false);
}
