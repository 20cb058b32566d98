/* checkpoint.c — checkpoints: the atomic folder write, the optimizer state, and trainer_state.json (the
 * typed trainer state: write, read and verification).
 *
 * Sections: trainer_state.json · optimizer state · saving · verifying · listing and rotation · folder helpers. */
#include "iqtrain/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iqtrain/fault.h"
#include "iqtrain/log.h"
#include "iqtrain/lora.h"

// ----------------------------------------------------------------------------------------------------
// trainer_state.json

static cJSON *state_json(const iq_trainer_state *ts, const cJSON *build) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)ts->step);
    cJSON_AddNumberToObject(j, "epoch", ts->epoch);
    cJSON *pos = cJSON_AddObjectToObject(j, "data_position");
    cJSON_AddNumberToObject(pos, "epoch", (double)ts->data_epoch);
    cJSON_AddNumberToObject(pos, "row", (double)ts->data_row);
    cJSON_AddNumberToObject(j, "tokens_seen", (double)ts->tokens_seen);
    cJSON_AddNumberToObject(j, "elapsed_s", ts->elapsed_s);
    cJSON_AddNumberToObject(j, "seed", (double)ts->seed);
    cJSON_AddStringToObject(j, "rng", "xoshiro256** seeded per epoch from (seed, epoch): no running state");
    cJSON_AddNumberToObject(j, "lambda", ts->lambda);
    cJSON_AddNumberToObject(j, "lr", ts->lr);
    cJSON_AddNumberToObject(j, "total_steps", (double)ts->total_steps);
    if (isfinite(ts->best_eval_loss)) cJSON_AddNumberToObject(j, "best_eval_loss", ts->best_eval_loss);
    if (isfinite(ts->eval_loss)) cJSON_AddNumberToObject(j, "eval_loss", ts->eval_loss);
    if (ts->online_refresh_step >= 0) cJSON_AddNumberToObject(j, "online_refresh_step", (double)ts->online_refresh_step);
    if (build) cJSON_AddItemToObject(j, "build", cJSON_Duplicate(build, 1));
    return j;
}

/* A number of the state in [lo, hi] (and an integer when integral); absent: *v keeps its default. */
static iq_status state_num(const char *dir, const cJSON *o, const char *key, double lo, double hi, bool integral,
                           bool required, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x && !required) return IQ_OK;
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= lo && x->valuedouble <= hi) ||
        (integral && x->valuedouble != floor(x->valuedouble)))
        return iq_fail(IQ_EDATA, "%s/trainer_state.json: \"%s\" is missing or out of range", dir, key);
    *v = x->valuedouble;
    return IQ_OK;
}

/* The typed state of a parsed trainer_state.json; numbers that resuming converts to integers are range-checked
 * first (the file has no CRC of its own; found by tests/fuzz). */
static iq_status state_from_json(const char *dir, const cJSON *j, iq_trainer_state *ts) {
    const double BIG = 9007199254740991.0; /* 2^53 - 1 */
    double step = 0, epoch = 0, de = 0, dr = 0, tok = 0, el = 0, seed = 0, lam = 0, lr = 0, total = 0, th = 0, ws = 1;
    double best = INFINITY, ev = NAN, ors = -1;
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "data_position");
    const cJSON *build = cJSON_GetObjectItemCaseSensitive(j, "build");
    iq_status s = state_num(dir, j, "step", 0, BIG, true, true, &step);
    if (!s) s = state_num(dir, j, "epoch", 0, 1e15, false, false, &epoch);
    if (!s) s = state_num(dir, pos, "epoch", 0, BIG, true, false, &de);
    if (!s) s = state_num(dir, pos, "row", 0, BIG, true, false, &dr);
    if (!s) s = state_num(dir, j, "tokens_seen", 0, BIG, false, false, &tok);
    if (!s) s = state_num(dir, j, "elapsed_s", -1e300, 1e300, false, false, &el);
    if (!s) s = state_num(dir, j, "seed", 0, 18446744073709551615.0, false, false, &seed);
    if (!s) s = state_num(dir, j, "lambda", -1e30, 1e30, false, false, &lam);
    if (!s) s = state_num(dir, j, "lr", -1e30, 1e30, false, false, &lr);
    if (!s) s = state_num(dir, j, "total_steps", 0, BIG, true, false, &total);
    if (!s) s = state_num(dir, j, "best_eval_loss", -1e300, 1e300, false, false, &best);
    if (!s) s = state_num(dir, j, "eval_loss", -1e300, 1e300, false, false, &ev);
    if (!s) s = state_num(dir, build, "threads", 0, 1e6, false, false, &th);
    if (!s) s = state_num(dir, build, "world_size", 1, 1e6, true, false, &ws);
    if (!s) s = state_num(dir, j, "online_refresh_step", 0, BIG, true, false, &ors);
    if (s) return s;
    *ts = (iq_trainer_state){.step = (long)step, .epoch = epoch, .data_epoch = (long)de, .data_row = (long)dr,
                             .tokens_seen = (long)tok, .elapsed_s = el, .seed = (uint64_t)seed, .lambda = (float)lam,
                             .lr = lr, .total_steps = (long)total, .best_eval_loss = best, .eval_loss = ev,
                             .threads = (int)th, .world_size = (int)ws, .online_refresh_step = (long)ors};
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// optimizer state

static iq_status save_optimizer(iq_model *m, iq_adamw *opt, const char *path) {
    int n = iq_model_trainable_refs(m, NULL); /* the adapters' with LoRA adapters attached */
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_trainable_refs(m, refs);
    iq_st_entry *e = iq_xcalloc(2 * (size_t)n, sizeof *e);
    char (*names)[96] = iq_xmalloc(2 * (size_t)n * sizeof *names);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n; i++) {
            iq_st_entry *x = &e[k * n + i];
            snprintf(names[k * n + i], sizeof names[0], "%s.%s", k == 0 ? "exp_avg" : "exp_avg_sq", refs[i].name);
            x->name = names[k * n + i];
            x->dtype = IQ_DT_F32;
            x->ndim = refs[i].ndim;
            x->shape[0] = refs[i].shape[0];
            x->shape[1] = refs[i].shape[1];
            x->data = (k == 0 ? iq_adamw_m(opt) : iq_adamw_v(opt)) + refs[i].offset;
        }
    char steps[32];
    snprintf(steps, sizeof steps, "%ld", iq_adamw_steps(opt));
    const char *meta[4] = {"format", "pt", "step", steps};
    iq_status s = iq_st_write(path, e, 2 * n, meta, 2);
    free(names);
    free(e);
    free(refs);
    return s;
}

iq_status iq_checkpoint_load_optimizer(const char *dir, iq_model *m, iq_adamw *opt) {
    char *path = iq_path_join(dir, "optimizer.safetensors");
    iq_safetensors *st = NULL;
    iq_status s = iq_st_open(path, &st);
    int n = iq_model_trainable_refs(m, NULL); /* the adapters' with LoRA adapters attached */
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_trainable_refs(m, refs);
    char name[96];
    for (int k = 0; k < 2 && !s; k++)
        for (int i = 0; i < n && !s; i++) {
            snprintf(name, sizeof name, "%s.%s", k == 0 ? "exp_avg" : "exp_avg_sq", refs[i].name);
            const iq_st_tensor *t = iq_st_find(st, name);
            if (!t || t->dtype != IQ_DT_F32 || (size_t)iq_st_numel(t) != refs[i].numel)
                s = iq_fail(IQ_EDATA, "%s: tensor %s is missing or has the wrong shape", path, name);
            else
                s = iq_st_read_f32(st, t, (k == 0 ? iq_adamw_m(opt) : iq_adamw_v(opt)) + refs[i].offset);
        }
    if (!s) {
        const char *stp = iq_st_metadata(st, "step");
        if (!stp) s = iq_fail(IQ_EDATA, "%s: no step in the metadata", path);
        else iq_adamw_set_steps(opt, strtol(stp, NULL, 10));
    }
    free(refs);
    iq_st_close(st);
    free(path);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// saving

/* trainer_state.json: the state, the build facts and the CRC-32 of every other file of the folder tmp. */
static iq_status write_state(const char *tmp, const iq_trainer_state *ts, const cJSON *build, const char *extra) {
    cJSON *j = state_json(ts, build);
    cJSON *files = cJSON_AddObjectToObject(j, "files");
    int nf;
    const char *const *names = iq_folder_crc_files(&nf);
    iq_status s = IQ_OK;
    for (int i = 0; i < nf + (extra != NULL) && !s; i++) {
        const char *nm = i < nf ? names[i] : extra;
        char *p = iq_path_join(tmp, nm);
        uint32_t crc;
        s = iq_file_crc32(p, &crc);
        if (s) s = IQ_EIO;
        else cJSON_AddNumberToObject(files, nm, (double)crc);
        iq_fault_point("ckpt-file");
        free(p);
    }
    /* only when the tokenizer has a chat template; only with LoRA adapters */
    const char *optional[] = {"chat_template.jinja", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"};
    for (size_t i = 0; i < sizeof optional / sizeof *optional && !s; i++) {
        char *p = iq_path_join(tmp, optional[i]);
        uint32_t crc;
        if (iq_file_exists(p)) {
            s = iq_file_crc32(p, &crc) ? IQ_EIO : IQ_OK;
            if (!s) cJSON_AddNumberToObject(files, optional[i], (double)crc);
        }
        free(p);
    }
    if (!s) {
        char *p = iq_path_join(tmp, "trainer_state.json");
        s = iq_write_json(p, j);
        free(p);
    }
    cJSON_Delete(j);
    return s;
}

/* Renames the complete folder tmp onto final_dir (replacing an older one of that name) and fsyncs OUT. */
static iq_status publish(const char *out_dir, const char *name, const char *tmp, const char *final_dir) {
    iq_status s = IQ_OK;
    iq_fsync_path(tmp);
    iq_fault_point("ckpt-before-rename");
    if (iq_is_dir(final_dir)) { /* re-saving a step (after a resume): replace the old folder */
        char old[128];
        snprintf(old, sizeof old, ".%s.old-%ld", name, (long)getpid());
        char *oldp = iq_path_join(out_dir, old);
        if (rename(final_dir, oldp) != 0) s = iq_fail(IQ_EIO, "%s: cannot replace: %s", final_dir, strerror(errno));
        if (!s && rename(tmp, final_dir) != 0) s = iq_fail(IQ_EIO, "%s: rename failed: %s", final_dir, strerror(errno));
        if (!s) iq_remove_tree(oldp);
        free(oldp);
    } else if (rename(tmp, final_dir) != 0) {
        s = iq_fail(IQ_EIO, "%s: rename failed: %s", final_dir, strerror(errno));
    }
    if (!s) iq_fsync_path(out_dir);
    if (!s) iq_fault_point("ckpt-after-rename");
    return s;
}

iq_status iq_checkpoint_save(const char *out_dir, iq_model *m, iq_adamw *opt, const iq_tokenizer *tok,
                             const cJSON *iqtrain_section, const iq_trainer_state *ts, const cJSON *build,
                             const iq_checkpoint_extra *extra, char **path_out) {
    char name[64], tmpname[96];
    snprintf(name, sizeof name, "checkpoint-%ld", ts->step);
    snprintf(tmpname, sizeof tmpname, ".%s.tmp-%ld", name, (long)getpid());
    char *final_dir = iq_path_join(out_dir, name), *tmp = iq_path_join(out_dir, tmpname);
    iq_remove_tree(tmp);
    iq_fault_point("ckpt-begin");
    iq_status s = IQ_OK;
    if (mkdir(tmp, 0755) != 0) s = iq_fail(IQ_ECANTCREAT, "%s: cannot create: %s", tmp, strerror(errno));
    if (!s) s = iq_model_save_folder(m, tok, tmp, IQ_DT_F32, iqtrain_section);
    if (!s && iq_model_get_lora(m)) { /* LoRA: the adapters in PEFT's layout beside the (frozen) base */
        char *p = iq_path_join(tmp, "adapter");
        s = iq_lora_save(iq_model_get_lora(m), p, NULL);
        free(p);
    }
    if (!s) {
        char *p = iq_path_join(tmp, "optimizer.safetensors");
        s = save_optimizer(m, opt, p);
        free(p);
    }
    if (!s && extra) {
        char *p = iq_path_join(tmp, extra->name);
        s = extra->write(extra->ctx, p);
        free(p);
    }
    if (!s) s = write_state(tmp, ts, build, extra ? extra->name : NULL);
    if (!s) s = publish(out_dir, name, tmp, final_dir);
    if (s) iq_remove_tree(tmp);
    free(tmp);
    if (!s && path_out) *path_out = final_dir;
    else free(final_dir);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// verifying

static iq_status read_state_json(const char *dir, cJSON **j) {
    char *p = iq_path_join(dir, "trainer_state.json");
    iq_status s = iq_read_json(p, j);
    free(p);
    return s == IQ_ENOINPUT ? iq_fail(IQ_EDATA, "%s: trainer_state.json is missing", dir) : s;
}

iq_status iq_checkpoint_verify(const char *dir, iq_trainer_state *ts) {
    if (!iq_is_dir(dir)) return iq_fail(IQ_ENOINPUT, "%s: no such checkpoint folder", dir);
    cJSON *j = NULL;
    iq_status s = read_state_json(dir, &j);
    if (s) return s;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files");
    if (!cJSON_IsObject(files)) s = iq_fail(IQ_EDATA, "%s/trainer_state.json: no \"files\" checksums", dir);
    int nf;
    const char *const *names = iq_folder_crc_files(&nf);
    for (int i = 0; i < nf && !s; i++)
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(files, names[i])))
            s = iq_fail(IQ_EDATA, "%s/trainer_state.json: no checksum for %s", dir, names[i]);
    if (!s) s = iq_folder_verify_crcs(dir, files, NULL);
    if (!s) s = state_from_json(dir, j, ts);
    cJSON_Delete(j);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// listing and rotation

int iq_checkpoint_list(const char *out_dir, char ***paths, long **steps) {
    *paths = NULL;
    *steps = NULL;
    DIR *d = opendir(out_dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, "checkpoint-", 11) != 0) continue;
        char *end;
        long s = strtol(nm + 11, &end, 10);
        if (end == nm + 11 || *end || s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            *paths = iq_xrealloc(*paths, (size_t)cap * sizeof **paths);
            *steps = iq_xrealloc(*steps, (size_t)cap * sizeof **steps);
        }
        (*paths)[n] = iq_path_join(out_dir, nm);
        (*steps)[n] = s;
        n++;
    }
    closedir(d);
    /* newest first */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
            long ts = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = ts;
            char *tp = (*paths)[j];
            (*paths)[j] = (*paths)[j - 1];
            (*paths)[j - 1] = tp;
        }
    return n;
}

void iq_checkpoint_list_free(char **paths, long *steps, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(steps);
}

void iq_checkpoint_rotate(const char *out_dir, int keep_last, bool keep_best) {
    char **paths;
    long *steps;
    int n = iq_checkpoint_list(out_dir, &paths, &steps);
    int best = -1;
    double best_loss = INFINITY;
    for (int i = 0; keep_best && i < n; i++) {
        cJSON *j = NULL;
        iq_trainer_state ts; /* the state alone: rotation reads no weights */
        if (read_state_json(paths[i], &j) == IQ_OK && state_from_json(paths[i], j, &ts) == IQ_OK && isfinite(ts.eval_loss) &&
            ts.eval_loss < best_loss) {
            best_loss = ts.eval_loss;
            best = i;
        }
        cJSON_Delete(j);
    }
    for (int i = 0; i < n; i++)
        if (keep_last > 0 && i >= keep_last && i != best) iq_remove_tree(paths[i]);
    iq_checkpoint_list_free(paths, steps, n);
}

// ----------------------------------------------------------------------------------------------------
// folder helpers

iq_status iq_remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return IQ_OK;
    if (!S_ISDIR(sb.st_mode)) return unlink(path) == 0 ? IQ_OK : iq_fail(IQ_EIO, "%s: %s", path, strerror(errno));
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char *p = iq_path_join(path, e->d_name);
            iq_remove_tree(p);
            free(p);
        }
        closedir(d);
    }
    return rmdir(path) == 0 ? IQ_OK : iq_fail(IQ_EIO, "%s: %s", path, strerror(errno));
}
