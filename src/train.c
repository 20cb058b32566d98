/* train.c — the training driver (DESIGN §5–§7).
 *
 * Data order: epoch e visits the training rows in a permutation drawn from (seed, e) — the same for every
 * lambda, so lambda = 0 is a true baseline. Optimizer step k of an epoch takes the next
 * batch_size x grad_accum rows of that order, sorts them by length and cuts them into micro-batches.
 * N (the loss normaliser) is the supervised-token count of the whole optimizer step.
 * The state of a run is its step, the weights and AdamW's moments: resuming from a checkpoint restores
 * exactly those, so the metrics continue bit for bit.
 * Under MPI (dist.h) every rank holds the whole model and data; each micro-batch of the step is split
 * across ranks in order (rank k takes rows [k n/W, (k+1) n/W) of it), the gradients and loss sums are
 * summed over ranks before the update, and rank 0 alone writes the folder, the metrics and checkpoints.
 *
 * Sections: signals · output folder · metrics · the run. */
#include "iqtrain/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "iqtrain/checkpoint.h"
#include "iqtrain/data.h"
#include "iqtrain/dist.h"
#include "iqtrain/eval.h"
#include "iqtrain/fault.h"
#include "iqtrain/log.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model.h"
#include "iqtrain/rng.h"
#include "iqtrain/sha256.h"
#include "iqtrain/tokenizer.h"

// ----------------------------------------------------------------------------------------------------
// signals: the first SIGINT/SIGTERM finishes the step and saves; a second one exits at once

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
    if (g_signal) _exit(128 + sig); /* the last complete checkpoint stays as it is */
    g_signal = sig;
    iq_dist_on_signal(); /* under MPI: a rank stuck waiting for a dead one exits 70 after a grace period */
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void restore_signals(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

// ----------------------------------------------------------------------------------------------------
// options that may change on resume

static const char *const RESUMABLE[] = {"max-steps", "epochs",   "save-every", "eval-every",     "log-every",
                                        "keep-last", "keep-best", "threads",    "json",           "dry-run",
                                        "out",       "resume",   "save-dtype", "matmul-backend", "matmul-precision", "allow-extra-tensors"};

bool iq_train_option_resumable(const char *name) {
    for (size_t i = 0; i < sizeof RESUMABLE / sizeof *RESUMABLE; i++)
        if (strcmp(name, RESUMABLE[i]) == 0) return true;
    return false;
}

/* Names of options (and "data") that differ between run.json and this invocation, comma-separated. */
static void changed_options(const cJSON *run, const cJSON *now, const iq_train_opts *o, iq_buf *out) {
    const cJSON *ro = cJSON_GetObjectItemCaseSensitive(run, "options");
    for (const cJSON *e = now ? now->child : NULL; e; e = e->next) {
        if (iq_train_option_resumable(e->string)) continue;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(ro, e->string);
        if (!r || !cJSON_Compare(r, e, 1)) iq_buf_printf(out, "%s%s", out->len ? ", " : "", e->string);
    }
    const cJSON *rd = cJSON_GetObjectItemCaseSensitive(run, "data");
    bool same = cJSON_IsArray(rd) && cJSON_GetArraySize(rd) == o->n_data;
    int i = 0;
    for (const cJSON *e = same ? rd->child : NULL; e && same; e = e->next, i++)
        same = cJSON_IsString(e) && strcmp(e->valuestring, o->data[i]) == 0;
    /* the same names with other contents are other data too */
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(run, "data_sha256");
    for (int k = 0; same && k < o->n_data; k++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(sha, o->data[k]);
        char hex[65];
        if (cJSON_IsString(h) && iq_sha256_file(o->data[k], hex) == IQ_OK && strcmp(hex, h->valuestring) != 0) same = false;
    }
    if (!same) iq_buf_printf(out, "%sdata", out->len ? ", " : "");
}

// ----------------------------------------------------------------------------------------------------
// metrics.jsonl: one flushed object per line, floats as %.9g so equal floats print equal

typedef struct {
    FILE *f;
    iq_buf line;
} metrics;

static void mfield(metrics *m, const char *k, double v) {
    if (isfinite(v)) iq_buf_printf(&m->line, ",\"%s\":%.9g", k, v);
    else iq_buf_printf(&m->line, ",\"%s\":null", k);
}

static void mbegin(metrics *m, const char *type, long step, double epoch, double elapsed) {
    m->line.len = 0;
    iq_buf_printf(&m->line, "{\"type\":\"%s\",\"step\":%ld", type, step);
    mfield(m, "epoch", epoch);
    mfield(m, "elapsed_s", elapsed);
}

static iq_status mend(metrics *m) {
    iq_buf_append(&m->line, "}\n", 2);
    if (fwrite(m->line.data, 1, m->line.len, m->f) != m->line.len || fflush(m->f) != 0)
        return iq_fail(IQ_EIO, "metrics.jsonl: write failed: %s", strerror(errno));
    return IQ_OK;
}

/* Keeps the rows whose step <= keep_step (and drops "final" rows): used on resume. */
static iq_status metrics_truncate(const char *path, long keep_step) {
    char *data;
    size_t len;
    if (!iq_file_exists(path)) return IQ_OK;
    iq_status s = iq_read_file(path, &data, &len);
    if (s) return s;
    iq_buf out = {0};
    char *p = data, *end = data + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break; /* a torn last line (killed mid-write) is dropped */
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step"), *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
        /* the ckpt row of the resumed step is written again after reopening (a kill between the rename and
         * that row must not lose it) */
        bool keep = cJSON_IsNumber(st) && st->valuedouble <= (double)keep_step &&
                    !(cJSON_IsString(ty) && strcmp(ty->valuestring, "final") == 0) &&
                    !(cJSON_IsString(ty) && strcmp(ty->valuestring, "ckpt") == 0 && st->valuedouble == (double)keep_step);
        if (keep) iq_buf_append(&out, p, (size_t)(nl - p) + 1);
        cJSON_Delete(j);
        p = nl + 1;
    }
    s = iq_write_file_atomic(path, out.data ? out.data : "", out.len);
    iq_buf_free(&out);
    free(data);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// helpers

static char *default_out_dir(void) {
    char buf[128], hex[7];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    iq_rng r;
    iq_rng_seed(&r, (uint64_t)t ^ ((uint64_t)getpid() << 32), (uint64_t)clock());
    snprintf(hex, sizeof hex, "%06x", (unsigned)(iq_rng_u64(&r) & 0xFFFFFF));
    snprintf(buf, sizeof buf, "runs/%04d%02d%02d-%02d%02d%02d-%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, hex);
    return iq_xstrdup(buf);
}

/* The folder holding PATH (a checkpoint folder's run folder), malloc'd. */
static char *parent_dir(const char *path) {
    char *d = iq_xstrdup(path);
    size_t l = strlen(d);
    while (l > 1 && d[l - 1] == '/') d[--l] = 0;
    char *slash = strrchr(d, '/');
    if (slash == d) d[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(d, ".");
    return d;
}

/* Reads DIR/run.json into *out; *out = NULL when there is none. */
static iq_status read_run_json(const char *dir, cJSON **out) {
    *out = NULL;
    char *path = iq_path_join(dir, "run.json");
    iq_status st = IQ_OK;
    if (iq_file_exists(path)) st = iq_read_json(path, out);
    free(path);
    return st;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static const char *td_name(iq_td_grad g) { return g == IQ_TD_SEMI ? "semi" : "full"; }
static const char *trunc_name(iq_truncation t) { return t == IQ_TRUNC_DROP ? "drop" : "bootstrap"; }


static cJSON *iqtrain_section(const iq_train_opts *o) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "lambda", iq_short_float(o->lambda));
    cJSON_AddNumberToObject(s, "gamma", iq_short_float(o->gamma));
    cJSON_AddStringToObject(s, "td_grad", td_name(o->td_grad));
    cJSON_AddStringToObject(s, "truncation", trunc_name(o->truncation));
    static const char *ls[] = {"constant", "linear", "cosine"};
    cJSON_AddStringToObject(s, "lambda_schedule", ls[o->lambda_schedule]);
    cJSON_AddStringToObject(s, "version", iq_version());
    return s;
}

static cJSON *build_facts(int threads) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "backend", "openblas");
    cJSON_AddStringToObject(b, "precision", "fp32");
    cJSON_AddNumberToObject(b, "threads", threads);
    cJSON_AddNumberToObject(b, "world_size", iq_dist_world());
    cJSON_AddStringToObject(b, "mpi", iq_dist_info());
    cJSON_AddStringToObject(b, "version", iq_version());
    cJSON_AddStringToObject(b, "commit", iq_git_commit());
    cJSON_AddStringToObject(b, "build_type", iq_build_type());
    cJSON_AddStringToObject(b, "blas", iq_blas_info());
    return b;
}

/* Writes OUT/final atomically (temp folder + rename). */
static iq_status save_final(const char *out, iq_model *m, const iq_tokenizer *tok, iq_dtype dt, const cJSON *section) {
    char tmpn[64];
    snprintf(tmpn, sizeof tmpn, ".final.tmp-%ld", (long)getpid());
    char *tmp = iq_path_join(out, tmpn), *fin = iq_path_join(out, "final");
    iq_remove_tree(tmp);
    iq_status s = iq_mkdirs(tmp);
    if (!s) s = iq_model_save_folder(m, tok, tmp, dt, section);
    if (!s) {
        iq_fault_point("final-before-rename");
        iq_remove_tree(fin);
        if (rename(tmp, fin) != 0) s = iq_fail(IQ_EIO, "%s: rename failed: %s", fin, strerror(errno));
    }
    if (s) iq_remove_tree(tmp);
    free(tmp);
    free(fin);
    return s;
}

/* Keeps the newest keep_last checkpoints (and the best by eval loss with keep_best). */
static void rotate_checkpoints(const char *out, int keep_last, bool keep_best) {
    char **paths;
    long *steps;
    int n = iq_checkpoint_list(out, &paths, &steps);
    int best = -1;
    double best_loss = INFINITY;
    if (keep_best)
        for (int i = 0; i < n; i++) {
            char *p = iq_path_join(paths[i], "trainer_state.json");
            cJSON *j = NULL;
            if (iq_read_json(p, &j) == IQ_OK) {
                const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eval_loss");
                if (cJSON_IsNumber(e) && e->valuedouble < best_loss) {
                    best_loss = e->valuedouble;
                    best = i;
                }
                cJSON_Delete(j);
            }
            free(p);
        }
    for (int i = 0; i < n; i++) {
        if (keep_last > 0 && i >= keep_last && i != best) iq_remove_tree(paths[i]);
        free(paths[i]);
    }
    free(paths);
    free(steps);
}

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

// ----------------------------------------------------------------------------------------------------
// the run

typedef struct {
    iq_tokenizer *tok;
    iq_dataset *data, *eval_data;
    iq_model *model;
    iq_head *head;
    iq_adamw *opt;
    cJSON *section, *run_json, *resume_state;
    uint32_t *train_rows, *eval_rows, *perm, *step_rows;
    size_t n_train, n_eval;
    const iq_dataset *eval_src;
    char *out, *resume_dir;
    metrics met;
    iq_batch batch;
} run_ctx;

static void run_free(run_ctx *r) {
    iq_tok_free(r->tok);
    iq_data_free(r->data);
    iq_data_free(r->eval_data);
    iq_model_free(r->model);
    iq_head_free(r->head);
    iq_adamw_free(r->opt);
    cJSON_Delete(r->section);
    cJSON_Delete(r->run_json);
    cJSON_Delete(r->resume_state);
    free(r->train_rows);
    free(r->eval_rows);
    free(r->perm);
    free(r->step_rows);
    free(r->out);
    free(r->resume_dir);
    if (r->met.f) fclose(r->met.f);
    iq_buf_free(&r->met.line);
    iq_batch_free(&r->batch);
}

/* Loss statistics summed over MPI ranks (max for r_abs_max). */
static void sum_loss_stats(iq_loss_stats *ls) {
    double v[7] = {ls->nll_sum, ls->td_sum, (double)ls->n_sup, (double)ls->n_td, (double)ls->n_correct, ls->r_sum, ls->r_abs_sum};
    iq_dist_sum_f64(v, 7);
    ls->nll_sum = v[0];
    ls->td_sum = v[1];
    ls->n_sup = (int64_t)v[2];
    ls->n_td = (int64_t)v[3];
    ls->n_correct = (int64_t)v[4];
    ls->r_sum = v[5];
    ls->r_abs_sum = v[6];
    ls->r_abs_max = iq_dist_max_f64(ls->r_abs_max);
}

static int fail(run_ctx *r, iq_status st) {
    iq_progress_end();
    fprintf(stderr, "iqtrain: %s\n", iq_last_error());
    run_free(r);
    restore_signals();
    return (int)st;
}

/* The same without a message: another rank failed and reported it. */
static int fail_quiet(run_ctx *r, iq_status st) {
    run_free(r);
    restore_signals();
    return (int)st;
}

/* Finds the checkpoint to resume from; NULL resume_dir means start at step 0. */
static iq_status find_resume(run_ctx *r, const iq_train_opts *o) {
    if (!o->resume) return IQ_OK;
    if (strcmp(o->resume, "auto") != 0) {
        cJSON *state = NULL;
        iq_status s = iq_checkpoint_verify(o->resume, &state);
        if (s) return s;
        r->resume_dir = iq_xstrdup(o->resume);
        r->resume_state = state;
        return IQ_OK;
    }
    char **paths;
    long *steps;
    int n = iq_checkpoint_list(r->out, &paths, &steps);
    for (int i = 0; i < n && !r->resume_dir; i++) {
        cJSON *state = NULL;
        if (iq_checkpoint_verify(paths[i], &state) == IQ_OK) {
            r->resume_dir = iq_xstrdup(paths[i]);
            r->resume_state = state;
        } else {
            iq_warn("%s; falling back to an older checkpoint", iq_last_error());
        }
    }
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(steps);
    return IQ_OK;
}

static iq_status write_run_json(run_ctx *r, const iq_train_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "options", o->options ? cJSON_Duplicate(o->options, 1) : cJSON_CreateObject());
    cJSON *d = cJSON_AddArrayToObject(j, "data");
    cJSON *sha = cJSON_CreateObject();
    for (int i = 0; i < o->n_data; i++) {
        cJSON_AddItemToArray(d, cJSON_CreateString(o->data[i]));
        char hex[65];
        if (iq_sha256_file(o->data[i], hex) == IQ_OK) cJSON_AddStringToObject(sha, o->data[i], hex);
    }
    cJSON *ed = cJSON_AddArrayToObject(j, "eval_data");
    for (int i = 0; i < o->n_eval_data; i++) {
        cJSON_AddItemToArray(ed, cJSON_CreateString(o->eval_data[i]));
        char hex[65];
        if (iq_sha256_file(o->eval_data[i], hex) == IQ_OK) cJSON_AddStringToObject(sha, o->eval_data[i], hex);
    }
    cJSON_AddItemToObject(j, "data_sha256", sha);
    cJSON_AddStringToObject(j, "version", iq_version());
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddItemToObject(j, "build", build_facts(o->threads));
    cJSON_AddNumberToObject(j, "parameters", (double)iq_model_num_params(r->model));
    char *p = iq_path_join(r->out, "run.json");
    char *s = cJSON_Print(j);
    iq_buf b = {0};
    iq_buf_append(&b, s, strlen(s));
    iq_buf_putc(&b, '\n');
    iq_status st = iq_write_file_atomic(p, b.data, b.len);
    iq_buf_free(&b);
    free(s);
    free(p);
    cJSON_Delete(j);
    return st;
}

/* Where a run continues from (rank 0 reads it; broadcast to the other ranks). */
typedef struct {
    long start, tokens_seen;
    double elapsed0, best_eval;
} resume_info;

/* Rank 0 only: creates the folder, loads the checkpoint to resume (weights and AdamW state into r->model and
 * r->opt), removes abandoned checkpoints and temp folders, writes run.json and opens metrics.jsonl. */
static iq_status open_folder(run_ctx *r, const iq_train_opts *o, int B, int max_seq, long total, long spe,
                             resume_info *ri) {
    iq_status st = iq_mkdirs(r->out);
    if (st) return st;
    long start = 0;
    double elapsed0 = 0.0, best_eval = INFINITY;
    long tokens_seen = 0;
    bool bit_exact = true;
    if (r->resume_dir) {
        const cJSON *s = r->resume_state;
        const cJSON *stp = cJSON_GetObjectItemCaseSensitive(s, "step");
        if (!cJSON_IsNumber(stp)) return iq_fail(IQ_EDATA, "%s/trainer_state.json: no step", r->resume_dir);
        start = (long)stp->valuedouble;
        if (start > total)
            return iq_fail(IQ_EUSAGE,
                           "%s is at step %ld, past --max-steps %ld (resume an earlier checkpoint-STEP, or raise "
                           "--max-steps)",
                           r->resume_dir, start, total);
        iq_model *m2 = NULL;
        st = iq_model_load_folder(r->resume_dir, B, max_seq, &m2, NULL);
        if (!st) {
            size_t n1, n2;
            float *dst = iq_model_param_memory(r->model, &n1), *src = iq_model_param_memory(m2, &n2);
            if (n1 != n2) st = iq_fail(IQ_EUSAGE, "%s: the checkpoint's model differs from the options", r->resume_dir);
            else memcpy(dst, src, n1 * sizeof *dst);
        }
        iq_model_free(m2);
        if (!st) st = iq_checkpoint_load_optimizer(r->resume_dir, r->model, r->opt);
        if (st) return st;
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(s, "elapsed_s")) && cJSON_IsNumber(x)) elapsed0 = x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(s, "tokens_seen")) && cJSON_IsNumber(x)) tokens_seen = (long)x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(s, "best_eval_loss")) && cJSON_IsNumber(x)) best_eval = x->valuedouble;
        const cJSON *bf = cJSON_GetObjectItemCaseSensitive(s, "build");
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(bf, "threads");
        if (cJSON_IsNumber(th) && (int)th->valuedouble != o->threads) bit_exact = false;
        if (!bit_exact)
            iq_warn("resuming with %d threads where the checkpoint used %d: the curve is no longer bit-exact", o->threads,
                    (int)th->valuedouble);
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(bf, "world_size");
        int ckpt_world = cJSON_IsNumber(ws) ? (int)ws->valuedouble : 1;
        if (ckpt_world != iq_dist_world()) {
            iq_warn("resuming on %d MPI rank%s where the checkpoint was written by %d: the data position is global, so "
                    "training continues at the same row, but the curve is no longer bit-exact (sums run in another order)",
                    iq_dist_world(), iq_dist_world() == 1 ? "" : "s", ckpt_world);
        }
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(s, "total_steps");
        if (cJSON_IsNumber(ts) && (long)ts->valuedouble != total && o->lr_schedule != IQ_LR_CONSTANT)
            iq_warn("the run now has %ld steps where the checkpoint planned %ld: the learning-rate schedule changes "
                    "from here, so the curve differs from a run that had %ld steps from the start",
                    total, (long)ts->valuedouble, total);
        iq_info("resuming %s at step %ld", r->resume_dir, start);
    }
    {
        /* checkpoints past the step we continue from belong to an abandoned future of this run: remove them,
         * so that rotation and a later --resume auto never pick them; also leftover temp folders */
        char **paths;
        long *steps;
        int n = iq_checkpoint_list(r->out, &paths, &steps);
        for (int i = 0; i < n; i++) {
            if (steps[i] > start) {
                iq_warn("removing %s (newer than the resumed step %ld)", paths[i], start);
                iq_remove_tree(paths[i]);
            }
            free(paths[i]);
        }
        free(paths);
        free(steps);
        DIR *dir = opendir(r->out);
        struct dirent *de;
        while (dir && (de = readdir(dir)) != NULL)
            if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp-")) {
                char *p = iq_path_join(r->out, de->d_name);
                iq_remove_tree(p);
                free(p);
            }
        if (dir) closedir(dir);
    }
    char *mpath = iq_path_join(r->out, "metrics.jsonl");
    st = metrics_truncate(mpath, start);
    if (!st) st = write_run_json(r, o);
    if (!st) {
        r->met.f = fopen(mpath, start > 0 ? "ab" : "wb");
        if (!r->met.f) st = iq_fail(IQ_ECANTCREAT, "%s: %s", mpath, strerror(errno));
    }
    if (!st && r->resume_dir && start > 0) {
        char nm[48];
        snprintf(nm, sizeof nm, "checkpoint-%ld", start);
        char *here = iq_path_join(r->out, nm);
        if (iq_is_dir(here)) {
            mbegin(&r->met, "ckpt", start, (double)start / (double)spe, elapsed0);
            iq_buf_printf(&r->met.line, ",\"path\":\"%s\"", nm);
            st = mend(&r->met);
        }
        free(here);
    }
    free(mpath);
    if (st) return st;
    ri->start = start;
    ri->elapsed0 = elapsed0;
    ri->best_eval = best_eval;
    ri->tokens_seen = tokens_seen;
    return IQ_OK;
}

int iq_train(const iq_train_opts *o, cJSON **summary) {
    run_ctx R;
    memset(&R, 0, sizeof R);
    run_ctx *r = &R;
    if (summary) *summary = NULL;
    g_signal = 0;
    iq_set_threads(o->threads);
    iq_status st;

    /* ---- option checks */
    if (o->batch_size < 1 || o->grad_accum < 1)
        return fail(r, iq_fail(IQ_EUSAGE, "--batch-size and --grad-accum must be at least 1"));
    if (o->log_every < 1 || o->eval_every < 1 || o->save_every < 1)
        return fail(r, iq_fail(IQ_EUSAGE, "--log-every, --eval-every and --save-every must be at least 1"));
    if (o->eval_split >= 0 && o->n_eval_data > 0)
        return fail(r, iq_fail(IQ_EUSAGE, "--eval-data and --eval-split cannot be combined"));
    if (o->eval_split >= 1.0) return fail(r, iq_fail(IQ_EUSAGE, "--eval-split must be in [0, 1)"));
    if (o->resume && strcmp(o->resume, "auto") == 0 && !o->out)
        return fail(r, iq_fail(IQ_EUSAGE, "--resume auto needs --out DIR"));
    if (o->lambda < 0 || o->gamma < 0 || o->gamma > 1)
        return fail(r, iq_fail(IQ_EUSAGE, "--lambda must be >= 0 and --gamma in [0, 1]"));

    /* ---- output folder and what to resume from */
    if (o->out) r->out = iq_xstrdup(o->out);
    else if (o->resume && strcmp(o->resume, "auto") != 0) r->out = parent_dir(o->resume);
    else r->out = default_out_dir();
    if (iq_dist_enabled() && !o->out) {
        /* the default name is random: rank 0's */
        char name[512] = {0};
        if (iq_dist_rank() == 0) snprintf(name, sizeof name, "%s", r->out);
        iq_dist_bcast(name, sizeof name);
        free(r->out);
        r->out = iq_xstrdup(name);
    }
    bool has_run = false;
    if (!o->dry_run) {
        st = read_run_json(r->out, &r->run_json);
        if (st) return fail(r, st);
        has_run = r->run_json != NULL;
    }
    if (has_run && !o->resume && !o->dry_run)
        return fail(r, iq_fail(IQ_ECANTCREAT, "%s holds another run (use --resume auto to continue it, or another --out)",
                               r->out));
    if (!o->dry_run) {
        st = find_resume(r, o);
        if (st) return fail(r, st);
        /* a checkpoint resumed into a new --out is checked against the run.json of the folder it came from */
        cJSON *src_run = NULL;
        const char *src_dir = r->out;
        char *parent = NULL;
        if (!r->run_json && r->resume_dir) {
            parent = parent_dir(r->resume_dir);
            st = read_run_json(parent, &src_run);
            if (st) {
                free(parent);
                return fail(r, st);
            }
            src_dir = parent;
        }
        const cJSON *against = r->run_json ? r->run_json : src_run;
        if (against && o->resume) {
            iq_buf changed = {0};
            changed_options(against, o->options, o, &changed);
            cJSON_Delete(src_run);
            if (changed.len) {
                st = iq_fail(IQ_EUSAGE, "cannot resume %s: changed options: %s (only step counts, intervals, threads "
                                        "and output options may change)",
                             src_dir, iq_buf_cstr(&changed));
                free(parent);
                iq_buf_free(&changed);
                return fail(r, st);
            }
            iq_buf_free(&changed);
        }
        free(parent);
        if (o->resume && strcmp(o->resume, "auto") != 0 && !r->resume_dir)
            return fail(r, iq_fail(IQ_ENOINPUT, "%s: no checkpoint there", o->resume));
    }

    /* ---- tokenizer and model */
    iq_model_config cfg;
    if (o->model_dir) {
        st = iq_model_config_read(o->model_dir, &cfg, NULL);
        if (!st) st = iq_tok_load(o->tokenizer_path ? o->tokenizer_path : o->model_dir, &r->tok);
    } else {
        st = iq_model_preset(o->preset ? o->preset : "small", &cfg);
        if (!st) {
            if (o->n_layer) cfg.n_layer = o->n_layer;
            if (o->n_head) cfg.n_head = o->n_head;
            if (o->n_embd) cfg.n_embd = o->n_embd;
            if (o->ctx) cfg.ctx = o->ctx;
            st = iq_tok_load(o->tokenizer_path, &r->tok);
        }
        if (!st) cfg.vocab = iq_tok_vocab_size(r->tok);
        if (!st) st = iq_model_config_check(&cfg);
    }
    if (st) return fail(r, st);
    if (iq_tok_vocab_size(r->tok) > cfg.vocab)
        return fail(r, iq_fail(IQ_EDATA, "the tokenizer has %d ids but the model only %d", iq_tok_vocab_size(r->tok), cfg.vocab));
    int max_seq_len = o->max_seq_len > 0 ? o->max_seq_len : cfg.ctx;
    if (max_seq_len > cfg.ctx)
        return fail(r, iq_fail(IQ_EUSAGE, "--max-seq-len %d exceeds the model's ctx %d", max_seq_len, cfg.ctx));
    if (max_seq_len < 2) return fail(r, iq_fail(IQ_EUSAGE, "--max-seq-len must be at least 2"));

    /* ---- data */
    iq_data_opts dopt = {.max_seq_len = max_seq_len, .skip_bad_rows = o->skip_bad_rows, .progress = true};
    st = iq_data_load(o->data, o->n_data, r->tok, &dopt, &r->data);
    if (!st && o->n_eval_data > 0) st = iq_data_load(o->eval_data, o->n_eval_data, r->tok, &dopt, &r->eval_data);
    if (st) return fail(r, st);
    {
        const iq_data_stats *s = &r->data->stats;
        iq_info("data: %zu rows · %zu tokens · %zu supervised · %zu truncated · %zu skipped · %zu bad", s->rows, s->tokens,
                s->supervised, s->truncated, s->skipped, s->bad);
    }
    size_t n_all = r->data->n_rows;
    r->train_rows = iq_xmalloc(n_all * sizeof *r->train_rows);
    r->eval_rows = iq_xmalloc((n_all ? n_all : 1) * sizeof *r->eval_rows);
    if (o->eval_split > 0) {
        /* held out deterministically from (seed): the first round(F n) rows of a fixed permutation */
        uint32_t *p = iq_xmalloc(n_all * sizeof *p);
        for (size_t i = 0; i < n_all; i++) p[i] = (uint32_t)i;
        iq_rng rng;
        iq_rng_seed(&rng, o->seed, 0xE7A15EEDull);
        iq_rng_shuffle_u32(&rng, p, n_all);
        size_t k = (size_t)llround(o->eval_split * (double)n_all);
        if (k >= n_all) k = n_all - 1;
        uint8_t *is_eval = iq_xcalloc(n_all, 1);
        for (size_t i = 0; i < k; i++) is_eval[p[i]] = 1;
        for (size_t i = 0; i < n_all; i++) {
            if (is_eval[i]) r->eval_rows[r->n_eval++] = (uint32_t)i;
            else r->train_rows[r->n_train++] = (uint32_t)i;
        }
        free(is_eval);
        free(p);
        r->eval_src = r->data;
    } else {
        for (size_t i = 0; i < n_all; i++) r->train_rows[r->n_train++] = (uint32_t)i;
        if (r->eval_data) {
            free(r->eval_rows);
            r->eval_rows = iq_xmalloc(r->eval_data->n_rows * sizeof *r->eval_rows);
            for (size_t i = 0; i < r->eval_data->n_rows; i++) r->eval_rows[r->n_eval++] = (uint32_t)i;
            r->eval_src = r->eval_data;
        }
    }
    if (r->n_train == 0) return fail(r, iq_fail(IQ_EDATA, "no training rows left after the eval split"));
    size_t longest = r->data->stats.max_len;
    if (r->eval_data && r->eval_data->stats.max_len > longest) longest = r->eval_data->stats.max_len;

    /* ---- model arenas */
    /* each rank holds its share of a micro-batch: ceil(batch_size / world) rows */
    const int world = iq_dist_world(), rank = iq_dist_rank();
    int B = (o->batch_size + world - 1) / world, max_seq = (int)longest;
    if (o->model_dir) st = iq_model_load_folder(o->model_dir, B, max_seq, &r->model, NULL);
    else {
        st = iq_model_create(&cfg, B, max_seq, &r->model);
        if (!st) iq_model_init_gpt2(r->model, o->seed);
    }
    if (st) return fail(r, st);
    r->head = iq_head_create(B * max_seq, cfg.n_embd, cfg.vocab, 0);
    r->opt = iq_adamw_create(r->model);
    iq_batch_init(&r->batch, B, max_seq);
    r->section = iqtrain_section(o);
    long rps = (long)o->batch_size * o->grad_accum;
    long spe = (long)((r->n_train + (size_t)rps - 1) / (size_t)rps);
    long total = o->max_steps >= 0 ? o->max_steps : (long)ceil(o->epochs * (double)spe);
    iq_loss_opts lo = {o->lambda, o->gamma, o->td_grad, o->truncation};
    size_t np = iq_model_num_params(r->model);

    if (o->dry_run) {
        /* |r| statistics of the first batch at the initial weights */
        r->perm = iq_xmalloc(r->n_train * sizeof *r->perm);
        memcpy(r->perm, r->train_rows, r->n_train * sizeof *r->perm);
        iq_rng rng;
        iq_rng_seed(&rng, o->seed, 0x5EED0000ull);
        iq_rng_shuffle_u32(&rng, r->perm, r->n_train);
        int n = (int)(r->n_train < (size_t)B ? r->n_train : (size_t)B);
        iq_batch_fill(&r->batch, r->data, r->perm, n);
        iq_model_forward(r->model, r->batch.ids, r->batch.B, r->batch.T);
        iq_loss_stats ls = {0};
        iq_head_loss(r->head, iq_model_lnf(r->model), iq_model_params(r->model)->wte, r->batch.ids, r->batch.flags,
                     r->batch.lens, r->batch.B, r->batch.T, &lo, 1.0f, NULL, NULL, &ls, NULL, NULL);
        double nll, td, loss = iq_loss_value(&ls, lo.lambda, &nll, &td);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "options", o->options ? cJSON_Duplicate(o->options, 1) : cJSON_CreateObject());
        cJSON *mc = cJSON_AddObjectToObject(j, "model");
        cJSON_AddNumberToObject(mc, "n_layer", cfg.n_layer);
        cJSON_AddNumberToObject(mc, "n_head", cfg.n_head);
        cJSON_AddNumberToObject(mc, "n_embd", cfg.n_embd);
        cJSON_AddNumberToObject(mc, "ctx", cfg.ctx);
        cJSON_AddNumberToObject(mc, "vocab", cfg.vocab);
        cJSON_AddNumberToObject(j, "parameters", (double)np);
        cJSON *mem = cJSON_AddObjectToObject(j, "memory_mb");
        cJSON_AddNumberToObject(mem, "parameters", (double)np * 4 / 1e6);
        cJSON_AddNumberToObject(mem, "gradients", (double)np * 4 / 1e6);
        cJSON_AddNumberToObject(mem, "adamw", (double)np * 8 / 1e6);
        cJSON_AddNumberToObject(mem, "peak_rss", peak_rss_mb());
        cJSON *dd = cJSON_AddObjectToObject(j, "data");
        cJSON_AddNumberToObject(dd, "rows", (double)r->data->stats.rows);
        cJSON_AddNumberToObject(dd, "train_rows", (double)r->n_train);
        cJSON_AddNumberToObject(dd, "eval_rows", (double)r->n_eval);
        cJSON_AddNumberToObject(dd, "tokens", (double)r->data->stats.tokens);
        cJSON_AddNumberToObject(dd, "supervised", (double)r->data->stats.supervised);
        cJSON_AddNumberToObject(dd, "truncated", (double)r->data->stats.truncated);
        cJSON_AddNumberToObject(dd, "skipped", (double)r->data->stats.skipped);
        cJSON_AddNumberToObject(dd, "bad", (double)r->data->stats.bad);
        cJSON_AddNumberToObject(j, "steps_per_epoch", (double)spe);
        cJSON_AddNumberToObject(j, "total_steps", (double)total);
        cJSON *fb = cJSON_AddObjectToObject(j, "first_batch");
        cJSON_AddNumberToObject(fb, "loss", loss);
        cJSON_AddNumberToObject(fb, "nll", nll);
        cJSON_AddNumberToObject(fb, "td", td);
        double ntd = ls.n_td ? (double)ls.n_td : 1.0;
        cJSON_AddNumberToObject(fb, "reward_mean", ls.r_sum / ntd);
        cJSON_AddNumberToObject(fb, "reward_abs_mean", ls.r_abs_sum / ntd);
        cJSON_AddNumberToObject(fb, "reward_abs_max", ls.r_abs_max);
        char *s = cJSON_Print(j);
        if (rank == 0) printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
        run_free(r);
        return 0;
    }

    /* ---- the folder: run.json, metrics, and the state to continue from (rank 0; the others get the state) */
    resume_info ri = {0, 0, 0.0, INFINITY};
    st = iq_dist_agree(IQ_OK); /* every rank is past its read-only checks before rank 0 writes anything */
    if (rank == 0) st = open_folder(r, o, B, max_seq, total, spe, &ri);
    if (iq_dist_enabled()) {
        iq_status agreed = (iq_status)iq_dist_agree((int)st);
        if (agreed && !st) return fail_quiet(r, agreed); /* rank 0 failed and said why */
        if (agreed) return fail(r, agreed);
        iq_dist_bcast(&ri, sizeof ri);
        size_t n;
        float *params = iq_model_param_memory(r->model, &n);
        iq_dist_bcast(params, n * sizeof(float));
        iq_dist_bcast(iq_adamw_m(r->opt), n * sizeof(float));
        iq_dist_bcast(iq_adamw_v(r->opt), n * sizeof(float));
        long ast = iq_adamw_steps(r->opt);
        iq_dist_bcast(&ast, sizeof ast);
        iq_adamw_set_steps(r->opt, ast);
    } else if (st) {
        return fail(r, st);
    }
    long start = ri.start, tokens_seen = ri.tokens_seen;
    double elapsed0 = ri.elapsed0, best_eval = ri.best_eval;

    iq_info("training %s: %zu parameters (L%d H%d C%d ctx %d, vocab %d), lambda %g, gamma %g, %ld steps (%ld per epoch), "
            "out %s",
            r->resume_dir ? "(resumed)" : o->model_dir ? o->model_dir : "from scratch", np, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.ctx, cfg.vocab,
            (double)o->lambda, (double)o->gamma, total, spe, r->out);

    /* ---- the loop */
    install_signals();
    r->perm = iq_xmalloc(r->n_train * sizeof *r->perm);
    r->step_rows = iq_xmalloc((size_t)rps * sizeof *r->step_rows);
    long perm_epoch = -1;
    double t0 = iq_now(), last_eval_loss = NAN;
    long tok_window = 0;
    double t_window = t0;
    int rc = 0;
    iq_adamw_opts ao = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay};
    iq_loss_stats ls = {0};
    double grad_norm = 0, lr = 0;
    float lam = o->lambda;
    long step;
    for (step = start; step < total; step++) {
        long epoch = step / spe, k = step % spe;
        if (epoch != perm_epoch) {
            memcpy(r->perm, r->train_rows, r->n_train * sizeof *r->perm);
            iq_rng rng;
            iq_rng_seed(&rng, o->seed, 0x5EED0000ull + (uint64_t)epoch);
            iq_rng_shuffle_u32(&rng, r->perm, r->n_train);
            perm_epoch = epoch;
        }
        size_t a = (size_t)k * (size_t)rps, e = a + (size_t)rps < r->n_train ? a + (size_t)rps : r->n_train;
        size_t n = e - a;
        memcpy(r->step_rows, r->perm + a, n * sizeof *r->step_rows);
        iq_sort_rows_by_length(r->data, r->step_rows, n);
        long N = 0, ntok = 0;
        for (size_t i = 0; i < n; i++) {
            size_t off = r->data->row_off[r->step_rows[i]], l = iq_data_row_len(r->data, r->step_rows[i]);
            ntok += (long)l;
            for (size_t j = 0; j < l; j++) N += (r->data->tok_flags[off + j] & IQ_TOK_SUPERVISED) != 0;
        }
        lam = iq_lambda_at(o->lambda_schedule, o->lambda_start, o->lambda, o->lambda_warmup, step);
        lo.lambda = lam;
        iq_model_zero_grad(r->model);
        memset(&ls, 0, sizeof ls);
        const size_t GB = (size_t)o->batch_size; /* the global micro-batch; this rank takes its share */
        for (size_t mb = 0; mb < n; mb += GB) {
            size_t nb = n - mb < GB ? n - mb : GB;
            size_t r0 = mb + nb * (size_t)rank / (size_t)world, r1 = mb + nb * (size_t)(rank + 1) / (size_t)world;
            if (r1 == r0) continue;
            iq_batch_fill(&r->batch, r->data, r->step_rows + r0, (int)(r1 - r0));
            iq_model_forward(r->model, r->batch.ids, r->batch.B, r->batch.T);
            iq_head_loss(r->head, iq_model_lnf(r->model), iq_model_params(r->model)->wte, r->batch.ids, r->batch.flags,
                         r->batch.lens, r->batch.B, r->batch.T, &lo, 1.0f / (float)(N > 0 ? N : 1),
                         iq_model_dlnf(r->model), iq_model_grads(r->model)->wte, &ls, NULL, NULL);
            iq_model_backward(r->model, r->batch.ids, r->batch.B, r->batch.T);
        }
        if (world > 1) {
            /* the sums over ranks (the same bits on every rank): gradients, then the loss statistics */
            size_t ng;
            float *grads = iq_model_grad_memory(r->model, &ng);
            iq_dist_sum_f32(grads, ng);
            sum_loss_stats(&ls);
        }
        double nll, td, loss = iq_loss_value(&ls, lam, &nll, &td);
        grad_norm = iq_grad_norm(r->model);
        if (!isfinite(loss) || !isfinite(grad_norm)) {
            iq_fail(IQ_EDIVERGED, "diverged at step %ld: loss %g, gradient norm %g (the last good checkpoint is kept)",
                    step + 1, loss, grad_norm);
            rc = IQ_EDIVERGED;
            break;
        }
        iq_fault_point("step-mid");
        lr = iq_lr_at(o->lr_schedule, o->lr, o->min_lr, o->warmup, total, step);
        iq_adamw_step(r->opt, r->model, &ao, (float)lr, iq_clip_coef(grad_norm, o->grad_clip));
        tokens_seen += N;
        tok_window += ntok;
        long done = step + 1;
        double now = iq_now(), elapsed = elapsed0 + (now - t0), ep = (double)done / (double)spe;

        if (rank == 0 && (done % o->log_every == 0 || done == total)) {
            double tps = (double)tok_window / (now - t_window > 1e-9 ? now - t_window : 1e-9);
            tok_window = 0;
            t_window = now;
            double ntd = ls.n_td ? (double)ls.n_td : 1.0;
            mbegin(&r->met, "train", done, ep, elapsed);
            mfield(&r->met, "tokens", (double)tokens_seen);
            mfield(&r->met, "loss", loss);
            mfield(&r->met, "nll", nll);
            mfield(&r->met, "td", td);
            mfield(&r->met, "lambda", lam);
            mfield(&r->met, "lr", lr);
            mfield(&r->met, "grad_norm", grad_norm);
            mfield(&r->met, "reward_mean", ls.r_sum / ntd);
            mfield(&r->met, "reward_abs_mean", ls.r_abs_sum / ntd);
            mfield(&r->met, "reward_abs_max", ls.r_abs_max);
            mfield(&r->met, "token_accuracy", ls.n_sup ? (double)ls.n_correct / (double)ls.n_sup : 0.0);
            mfield(&r->met, "tokens_per_s", tps);
            if ((st = mend(&r->met)) != IQ_OK) {
                rc = st;
                break;
            }
            char el[32], eta[32];
            fmt_time(elapsed, el, sizeof el);
            fmt_time((now - t0) / (double)(done - start) * (double)(total - done), eta, sizeof eta);
            if (!iq_stderr_is_tty())
                iq_progress("step %ld/%ld · loss %.4f · nll %.4f · td %.4f · |r| %.3f · lr %.2e · %.0f tok/s · %s · ETA %s",
                            done, total, loss, nll, td, ls.r_abs_sum / ntd, lr, tps, el, eta);
        }
        if (iq_stderr_is_tty()) {
            char el[32], eta[32];
            fmt_time(elapsed, el, sizeof el);
            fmt_time((now - t0) / (double)(done - start) * (double)(total - done), eta, sizeof eta);
            iq_progress("step %ld/%ld · loss %.4f · nll %.4f · td %.4f · lr %.2e · %s · ETA %s", done, total, loss, nll, td, lr,
                        el, eta);
        }
        if (rank == 0 && r->n_eval > 0 && (done % o->eval_every == 0 || done == total)) {
            iq_loss_stats es;
            lo.lambda = lam;
            iq_eval_rows(r->model, r->head, r->eval_src, r->eval_rows, r->n_eval, &lo, B, &es);
            double enll, etd, eloss = iq_loss_value(&es, lam, &enll, &etd);
            last_eval_loss = eloss;
            if (eloss < best_eval) best_eval = eloss;
            mbegin(&r->met, "eval", done, ep, elapsed0 + (iq_now() - t0));
            mfield(&r->met, "loss", eloss);
            mfield(&r->met, "nll", enll);
            mfield(&r->met, "td", etd);
            mfield(&r->met, "token_accuracy", es.n_sup ? (double)es.n_correct / (double)es.n_sup : 0.0);
            mfield(&r->met, "ppl", exp(enll));
            if ((st = mend(&r->met)) != IQ_OK) {
                rc = st;
                break;
            }
            iq_info("eval at step %ld: loss %.4f · nll %.4f · td %.4f · ppl %.3f · token accuracy %.4f", done, eloss, enll,
                    etd, exp(enll), es.n_sup ? (double)es.n_correct / (double)es.n_sup : 0.0);
        }
        int sig = world > 1 ? (int)iq_dist_max_f64((double)g_signal) : (int)g_signal; /* every rank stops together */
        bool stop = sig != 0;
        if (rank == 0 && (done % o->save_every == 0 || stop)) {
            cJSON *state = cJSON_CreateObject();
            cJSON_AddNumberToObject(state, "step", (double)done);
            cJSON_AddNumberToObject(state, "epoch", ep);
            cJSON *pos = cJSON_AddObjectToObject(state, "data_position");
            cJSON_AddNumberToObject(pos, "epoch", (double)((done) / spe));
            cJSON_AddNumberToObject(pos, "row", (double)(((done) % spe) * rps));
            cJSON_AddNumberToObject(state, "tokens_seen", (double)tokens_seen);
            cJSON_AddNumberToObject(state, "elapsed_s", elapsed0 + (iq_now() - t0));
            cJSON_AddNumberToObject(state, "seed", (double)o->seed);
            cJSON_AddStringToObject(state, "rng", "xoshiro256** seeded per epoch from (seed, epoch): no running state");
            cJSON_AddNumberToObject(state, "lambda", lam);
            cJSON_AddNumberToObject(state, "lr", lr);
            cJSON_AddNumberToObject(state, "total_steps", (double)total);
            if (isfinite(best_eval)) cJSON_AddNumberToObject(state, "best_eval_loss", best_eval);
            if (done % o->eval_every == 0 && isfinite(last_eval_loss)) cJSON_AddNumberToObject(state, "eval_loss", last_eval_loss);
            cJSON_AddItemToObject(state, "build", build_facts(o->threads));
            char *path = NULL;
            st = iq_checkpoint_save(r->out, done, r->model, r->opt, r->tok, r->section, state, &path);
            cJSON_Delete(state);
            if (st) {
                rc = st;
                free(path);
                break;
            }
            mbegin(&r->met, "ckpt", done, ep, elapsed0 + (iq_now() - t0));
            iq_buf_printf(&r->met.line, ",\"path\":\"checkpoint-%ld\"", done);
            if ((st = mend(&r->met)) != IQ_OK) {
                rc = st;
                free(path);
                break;
            }
            free(path);
            rotate_checkpoints(r->out, o->keep_last, o->keep_best);
        }
        if (stop) {
            iq_progress_end();
            if (rank == 0) iq_warn("%s: saved checkpoint-%ld, exiting", sig == SIGINT ? "interrupted" : "terminated", done);
            rc = sig == SIGINT ? 130 : 143;
            break;
        }
    }
    iq_progress_end();
    if (rc == IQ_EDIVERGED || (rc && rc != 130 && rc != 143)) return fail(r, (iq_status)rc);
    if (rc) {
        run_free(r);
        restore_signals();
        return rc;
    }

    /* ---- final/ and the summary (rank 0 writes) */
    double elapsed = elapsed0 + (iq_now() - t0);
    if (rank == 0) {
        st = save_final(r->out, r->model, r->tok, o->save_dtype, r->section);
        if (st) return fail(r, st);
        elapsed = elapsed0 + (iq_now() - t0);
        mbegin(&r->met, "final", total, (double)total / (double)spe, elapsed);
        iq_buf_printf(&r->met.line, ",\"path\":\"final\"");
        mfield(&r->met, "tokens", (double)tokens_seen); /* no peak RSS here: every field but the times is bit-exact (§7) */
        if ((st = mend(&r->met)) != IQ_OK) return fail(r, st);
    }
    iq_info("done: %ld steps in %.1f s, final model in %s/final (peak RSS %.0f MB)", total - start, elapsed, r->out,
            peak_rss_mb());
    if (summary && rank == 0) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "out", r->out);
        cJSON_AddNumberToObject(j, "steps", (double)total);
        cJSON_AddNumberToObject(j, "tokens", (double)tokens_seen);
        double nll, td, loss = iq_loss_value(&ls, lam, &nll, &td);
        cJSON *tr = cJSON_AddObjectToObject(j, "train");
        cJSON_AddNumberToObject(tr, "loss", loss);
        cJSON_AddNumberToObject(tr, "nll", nll);
        cJSON_AddNumberToObject(tr, "td", td);
        if (isfinite(last_eval_loss)) cJSON_AddNumberToObject(j, "eval_loss", last_eval_loss);
        cJSON_AddNumberToObject(j, "elapsed_s", elapsed);
        cJSON_AddNumberToObject(j, "peak_rss_mb", peak_rss_mb());
        *summary = j;
    }
    run_free(r);
    restore_signals();
    return 0;
}
