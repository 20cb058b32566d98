/* run_folder.c — the output folder and the resume policy (run_folder.h).
 *
 * Sections: options that may change · resolving the folder · opening it · build facts and final/. */
#include "iqtrain/run_folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iqtrain/dist.h"
#include "iqtrain/fault.h"
#include "iqtrain/log.h"
#include "iqtrain/lora.h"
#include "iqtrain/lora_io.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/rng.h"
#include "iqtrain/sha256.h"

// ----------------------------------------------------------------------------------------------------
// options that may change on resume

static const char *const RESUMABLE[] = {"max-steps", "epochs",   "save-every", "eval-every",     "log-every",
                                        "keep-last", "keep-best", "threads",    "json",           "dry-run",
                                        "out",       "resume",   "save-dtype", "matmul-backend", "matmul-precision",
                                        "allow-extra-tensors", "gradient-checkpointing",
                                        /* the generation eval reads the weights, it does not change them */
                                        "eval-generation-every", "eval-num-samples", "eval-temperatures", "eval-beam",
                                        "eval-max-new-tokens", "eval-limit"};

bool iq_run_option_resumable(const char *name) {
    for (size_t i = 0; i < sizeof RESUMABLE / sizeof *RESUMABLE; i++)
        if (strcmp(name, RESUMABLE[i]) == 0) return true;
    return false;
}

/* Whether run.json's data files are these files with the same contents. */
static bool same_data(const cJSON *run, const iq_run_spec *spec) {
    const cJSON *rd = cJSON_GetObjectItemCaseSensitive(run, "data");
    bool same = cJSON_IsArray(rd) && cJSON_GetArraySize(rd) == spec->n_data;
    int i = 0;
    for (const cJSON *e = same ? rd->child : NULL; e && same; e = e->next, i++)
        same = cJSON_IsString(e) && strcmp(e->valuestring, spec->data[i]) == 0;
    /* the same names with other contents are other data too */
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(run, "data_sha256");
    for (int k = 0; same && k < spec->n_data; k++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(sha, spec->data[k]);
        char hex[65];
        if (cJSON_IsString(h) && iq_sha256_file(spec->data[k], hex) == IQ_OK && strcmp(hex, h->valuestring) != 0) same = false;
    }
    return same;
}

/* Names of options (and "data") that differ between run.json and this invocation, comma-separated. */
static void changed_options(const cJSON *run, const iq_run_spec *spec, iq_buf *out) {
    const cJSON *ro = cJSON_GetObjectItemCaseSensitive(run, "options");
    for (const cJSON *e = spec->options ? spec->options->child : NULL; e; e = e->next) {
        if (iq_run_option_resumable(e->string)) continue;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(ro, e->string);
        if (!r && spec->option_defaults) r = cJSON_GetObjectItemCaseSensitive(spec->option_defaults, e->string);
        if (!r || !cJSON_Compare(r, e, 1)) iq_buf_printf(out, "%s%s", out->len ? ", " : "", e->string);
    }
    if (!same_data(run, spec)) iq_buf_printf(out, "%sdata", out->len ? ", " : "");
}

// ----------------------------------------------------------------------------------------------------
// resolving the folder

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
    if (iq_dist_enabled()) { /* the default name is random: rank 0's */
        char name[512] = {0};
        if (iq_dist_rank() == 0) snprintf(name, sizeof name, "%s", buf);
        iq_dist_bcast(name, sizeof name);
        return iq_xstrdup(name);
    }
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

/* The checkpoint to resume from: --resume DIR, or with auto the newest one of OUT that verifies. */
static iq_status find_resume(const iq_run_spec *spec, iq_run_folder *f) {
    if (strcmp(spec->resume, "auto") != 0) {
        iq_status s = iq_checkpoint_verify(spec->resume, &f->state);
        if (!s) f->resume_dir = iq_xstrdup(spec->resume);
        return s;
    }
    char **paths;
    long *steps;
    int n = iq_checkpoint_list(f->out, &paths, &steps);
    for (int i = 0; i < n && !f->resume_dir; i++) {
        if (iq_checkpoint_verify(paths[i], &f->state) == IQ_OK) f->resume_dir = iq_xstrdup(paths[i]);
        else iq_warn("%s; falling back to an older checkpoint", iq_last_error());
    }
    iq_checkpoint_list_free(paths, steps, n);
    return IQ_OK;
}

/* Resuming: the options must match the run.json of the folder the checkpoint came from. */
static iq_status check_unchanged(const iq_run_spec *spec, const iq_run_folder *f) {
    cJSON *src_run = NULL;
    char *src_dir = NULL;
    iq_status st = IQ_OK;
    if (!f->run_json && f->resume_dir) { /* a checkpoint resumed into a new --out: its own run's options */
        src_dir = parent_dir(f->resume_dir);
        st = read_run_json(src_dir, &src_run);
    }
    const cJSON *against = f->run_json ? f->run_json : src_run;
    iq_buf changed = {0};
    if (!st && against) changed_options(against, spec, &changed);
    if (changed.len)
        st = iq_fail(IQ_EUSAGE, "cannot resume %s: changed options: %s (only step counts, intervals, threads and output "
                                "options may change)",
                     src_dir ? src_dir : f->out, iq_buf_cstr(&changed));
    iq_buf_free(&changed);
    cJSON_Delete(src_run);
    free(src_dir);
    return st;
}

iq_status iq_run_folder_resolve(const iq_run_spec *spec, iq_run_folder *f) {
    memset(f, 0, sizeof *f);
    if (spec->resume && strcmp(spec->resume, "auto") == 0 && !spec->out)
        return iq_fail(IQ_EUSAGE, "--resume auto needs --out DIR");
    if (spec->out) f->out = iq_xstrdup(spec->out);
    else if (spec->resume && strcmp(spec->resume, "auto") != 0) f->out = parent_dir(spec->resume);
    else f->out = default_out_dir();
    iq_status st = read_run_json(f->out, &f->run_json);
    if (st) return st;
    if (f->run_json && !spec->resume)
        return iq_fail(IQ_ECANTCREAT, "%s holds another run (use --resume auto to continue it, or another --out)", f->out);
    if (!spec->resume) return IQ_OK;
    st = find_resume(spec, f);
    if (!st) st = check_unchanged(spec, f);
    if (!st && strcmp(spec->resume, "auto") != 0 && !f->resume_dir)
        st = iq_fail(IQ_ENOINPUT, "%s: no checkpoint there", spec->resume);
    return st;
}

void iq_run_folder_free(iq_run_folder *f) {
    free(f->out);
    free(f->resume_dir);
    cJSON_Delete(f->run_json);
    memset(f, 0, sizeof *f);
}

// ----------------------------------------------------------------------------------------------------
// opening the folder

static iq_status write_run_json(const iq_run_spec *spec, const iq_run_folder *f, size_t n_params) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "options", spec->options ? cJSON_Duplicate(spec->options, 1) : cJSON_CreateObject());
    cJSON *sha = cJSON_CreateObject();
    const char *const *lists[2] = {spec->data, spec->eval_data};
    int counts[2] = {spec->n_data, spec->n_eval_data};
    const char *keys[2] = {"data", "eval_data"};
    for (int k = 0; k < 2; k++) {
        cJSON *d = cJSON_AddArrayToObject(j, keys[k]);
        for (int i = 0; i < counts[k]; i++) {
            cJSON_AddItemToArray(d, cJSON_CreateString(lists[k][i]));
            char hex[65];
            if (iq_sha256_file(lists[k][i], hex) == IQ_OK) cJSON_AddStringToObject(sha, lists[k][i], hex);
        }
    }
    cJSON_AddItemToObject(j, "data_sha256", sha);
    if (spec->chat_source) {
        cJSON *ct = cJSON_AddObjectToObject(j, "chat_template");
        cJSON_AddStringToObject(ct, "source", spec->chat_source);
        cJSON_AddStringToObject(ct, "sha256", spec->chat_sha256);
    }
    cJSON_AddStringToObject(j, "version", iq_version());
    cJSON_AddNumberToObject(j, "seed", (double)spec->seed);
    cJSON_AddItemToObject(j, "build", iq_run_build_facts(spec->threads));
    cJSON_AddNumberToObject(j, "parameters", (double)n_params);
    char *p = iq_path_join(f->out, "run.json");
    iq_status st = iq_write_json(p, j);
    free(p);
    cJSON_Delete(j);
    return st;
}

/* Loads the checkpoint's weights and AdamW state, and says what makes the curve differ from an
 * uninterrupted run. */
static iq_status load_resume(const iq_run_folder *f, const iq_run_spec *spec, iq_model *m, iq_adamw *opt, long total) {
    const iq_trainer_state *s = &f->state;
    if (s->step > total)
        return iq_fail(IQ_EUSAGE, "%s is at step %ld, past --max-steps %ld (resume an earlier checkpoint-STEP, or raise "
                                  "--max-steps)",
                       f->resume_dir, s->step, total);
    iq_status st = iq_model_load_weights(m, f->resume_dir);
    if (!st && iq_model_get_lora(m)) { /* LoRA: the adapters from the checkpoint's adapter/ */
        char *p = iq_path_join(f->resume_dir, "adapter");
        st = iq_lora_load_into(iq_model_get_lora(m), p, iq_model_cfg(m)->n_layer);
        free(p);
    }
    if (!st) st = iq_checkpoint_load_optimizer(f->resume_dir, m, opt);
    if (st) return st;
    if (s->threads > 0 && s->threads != spec->threads)
        iq_warn("resuming with %d threads where the checkpoint used %d: the curve is no longer bit-exact", spec->threads,
                s->threads);
    if (s->world_size != iq_dist_world())
        iq_warn("resuming on %d MPI rank%s where the checkpoint was written by %d: the data position is global, so "
                "training continues at the same row, but the curve is no longer bit-exact (sums run in another order)",
                iq_dist_world(), iq_dist_world() == 1 ? "" : "s", s->world_size);
    if (s->total_steps > 0 && s->total_steps != total && !spec->lr_schedule_constant)
        iq_warn("the run now has %ld steps where the checkpoint planned %ld: the learning-rate schedule changes from "
                "here, so the curve differs from a run that had %ld steps from the start",
                total, s->total_steps, total);
    iq_info("resuming %s at step %ld", f->resume_dir, s->step);
    return IQ_OK;
}

/* Checkpoints past the step we continue from belong to an abandoned future of this run: removed, so that
 * rotation and a later --resume auto never pick them; also leftover temp folders. */
static void remove_abandoned(const char *out, long start) {
    char **paths;
    long *steps;
    int n = iq_checkpoint_list(out, &paths, &steps);
    for (int i = 0; i < n; i++)
        if (steps[i] > start) {
            iq_warn("removing %s (newer than the resumed step %ld)", paths[i], start);
            iq_remove_tree(paths[i]);
        }
    iq_checkpoint_list_free(paths, steps, n);
    DIR *dir = opendir(out);
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL)
        if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp-")) {
            char *p = iq_path_join(out, de->d_name);
            iq_remove_tree(p);
            free(p);
        }
    if (dir) closedir(dir);
}

iq_status iq_run_folder_open(iq_run_folder *f, const iq_run_spec *spec, iq_model *m, iq_adamw *opt, long total_steps,
                             long *start) {
    *start = 0;
    iq_status st = iq_mkdirs(f->out);
    if (!st && f->resume_dir) st = load_resume(f, spec, m, opt, total_steps);
    if (st) return st;
    if (f->resume_dir) *start = f->state.step;
    remove_abandoned(f->out, *start);
    return write_run_json(spec, f, iq_model_num_params(m));
}

// ----------------------------------------------------------------------------------------------------
// build facts and final/

cJSON *iq_run_build_facts(int threads) {
    cJSON *b = cJSON_CreateObject();
    iq_matmul_add_facts(b); /* backend, precision, the ISA oneDNN dispatched, the OpenBLAS core */
    cJSON_AddNumberToObject(b, "threads", threads);
    cJSON_AddNumberToObject(b, "world_size", iq_dist_world());
    cJSON_AddStringToObject(b, "mpi", iq_dist_info());
    cJSON_AddStringToObject(b, "version", iq_version());
    cJSON_AddStringToObject(b, "commit", iq_git_commit());
    cJSON_AddStringToObject(b, "build_type", iq_build_type());
    cJSON_AddStringToObject(b, "blas", iq_blas_info());
    return b;
}

iq_status iq_run_save_final(const char *out, iq_model *m, const iq_tokenizer *tok, iq_dtype dtype, const cJSON *section) {
    char tmpn[64];
    snprintf(tmpn, sizeof tmpn, ".final.tmp-%ld", (long)getpid());
    char *tmp = iq_path_join(out, tmpn), *fin = iq_path_join(out, "final");
    iq_remove_tree(tmp);
    iq_status s = iq_mkdirs(tmp);
    /* LoRA: final/ is the adapter in PEFT's layout (adapter_config.json, adapter_model.safetensors), F32 */
    if (!s) s = iq_model_get_lora(m) ? iq_lora_save(iq_model_get_lora(m), tmp, NULL) : iq_model_save_folder(m, tok, tmp, dtype, section);
    if (!s) {
        iq_fsync_path(tmp);
        iq_fault_point("final-before-rename");
        iq_remove_tree(fin);
        if (rename(tmp, fin) != 0) s = iq_fail(IQ_EIO, "%s: rename failed: %s", fin, strerror(errno));
        if (!s) s = iq_fsync_parent(fin); /* the rename itself is durable only once OUT is synced */
    }
    if (s) iq_remove_tree(tmp);
    free(tmp);
    free(fin);
    return s;
}
