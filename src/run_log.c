/* run_log.c — metrics.jsonl and the progress line (run_log.h). */
#include "iqtrain/run_log.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/log.h"

// ----------------------------------------------------------------------------------------------------
// metrics.jsonl

static void field(iq_run_log *l, const char *k, double v) {
    if (isfinite(v)) iq_buf_printf(&l->line, ",\"%s\":%.9g", k, v);
    else iq_buf_printf(&l->line, ",\"%s\":null", k);
}

static void begin(iq_run_log *l, const char *type, long step, double epoch, double elapsed) {
    l->line.len = 0;
    iq_buf_printf(&l->line, "{\"type\":\"%s\",\"step\":%ld", type, step);
    field(l, "epoch", epoch);
    field(l, "elapsed_s", elapsed);
}

static iq_status end(iq_run_log *l) {
    iq_buf_append(&l->line, "}\n", 2);
    if (fwrite(l->line.data, 1, l->line.len, l->f) != l->line.len || fflush(l->f) != 0)
        return iq_fail(IQ_EIO, "metrics.jsonl: write failed: %s", strerror(errno));
    return IQ_OK;
}

/* Keeps the rows whose step <= keep_step (and drops "final" rows): used on resume. */
static iq_status truncate_rows(const char *path, long keep_step) {
    char *data;
    size_t len;
    if (!iq_file_exists(path)) return IQ_OK;
    iq_status s = iq_read_file(path, &data, &len);
    if (s) return s;
    iq_buf out = {0};
    char *p = data, *e = data + len;
    while (p < e) {
        char *nl = memchr(p, '\n', (size_t)(e - p));
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

iq_status iq_run_log_open(iq_run_log *l, const char *out_dir, long keep_step, long total_steps, long steps_per_epoch,
                          double elapsed0) {
    memset(l, 0, sizeof *l);
    l->total_steps = total_steps;
    l->steps_per_epoch = steps_per_epoch;
    l->first_step = keep_step;
    l->elapsed0 = elapsed0;
    l->t0 = l->t_window = iq_now();
    char *path = iq_path_join(out_dir, "metrics.jsonl");
    iq_status st = truncate_rows(path, keep_step);
    if (!st) {
        l->f = fopen(path, keep_step > 0 ? "ab" : "wb");
        if (!l->f) st = iq_fail(IQ_ECANTCREAT, "%s: %s", path, strerror(errno));
    }
    free(path);
    return st;
}

void iq_run_log_close(iq_run_log *l) {
    if (l->f) fclose(l->f);
    iq_buf_free(&l->line);
    memset(l, 0, sizeof *l);
}

double iq_run_log_elapsed(const iq_run_log *l) { return l->elapsed0 + (iq_now() - l->t0); }

static double epoch_of(const iq_run_log *l, long step) { return (double)step / (double)l->steps_per_epoch; }

void iq_run_log_add_tokens(iq_run_log *l, long tokens) { l->tok_window += tokens; }

static double token_accuracy(const iq_loss_stats *st) {
    return st->n_sup ? (double)st->n_correct / (double)st->n_sup : 0.0;
}

iq_status iq_run_log_train(iq_run_log *l, long done, const iq_train_row *row) {
    double now = iq_now();
    double tps = (double)l->tok_window / (now - l->t_window > 1e-9 ? now - l->t_window : 1e-9);
    l->tok_window = 0;
    l->t_window = now;
    const iq_loss_stats *s = row->stats;
    double ntd = s->n_td ? (double)s->n_td : 1.0;
    begin(l, "train", done, epoch_of(l, done), l->elapsed0 + (now - l->t0));
    field(l, "tokens", (double)row->tokens_seen);
    field(l, "loss", row->loss);
    field(l, "nll", row->nll);
    field(l, "td", row->td);
    field(l, "lambda", row->lambda);
    field(l, "lr", row->lr);
    field(l, "grad_norm", row->grad_norm);
    field(l, "reward_mean", s->r_sum / ntd);
    field(l, "reward_abs_mean", s->r_abs_sum / ntd);
    field(l, "reward_abs_max", s->r_abs_max);
    field(l, "token_accuracy", token_accuracy(s));
    if (row->online) {
        field(l, "online_value_gap", row->online_value_gap);
        field(l, "online_sample_len", row->online_sample_len);
    }
    field(l, "tokens_per_s", tps);
    iq_status st = end(l);
    if (!st) iq_run_log_progress(l, done, row, tps, true);
    return st;
}

iq_status iq_run_log_eval(iq_run_log *l, long done, const iq_loss_stats *es, double lambda) {
    double nll, td, loss = iq_loss_value(es, (float)lambda, &nll, &td);
    begin(l, "eval", done, epoch_of(l, done), iq_run_log_elapsed(l));
    field(l, "loss", loss);
    field(l, "nll", nll);
    field(l, "td", td);
    field(l, "token_accuracy", token_accuracy(es));
    field(l, "ppl", exp(nll));
    iq_status st = end(l);
    if (!st)
        iq_info("eval at step %ld: loss %.4f · nll %.4f · td %.4f · ppl %.3f · token accuracy %.4f", done, loss, nll, td,
                exp(nll), token_accuracy(es));
    return st;
}

/* A number of a result object, also when printed raw ("%.9g"); NAN when absent or null. */
static double num_of(const cJSON *v) {
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsRaw(v) && v->valuestring) return strtod(v->valuestring, NULL);
    return NAN;
}

iq_status iq_run_log_generation(iq_run_log *l, long done, const cJSON *result) {
    static const char *const keys[] = {"temperature",     "beam",           "samples_per_prompt", "accuracy",
                                       "pass_at_k",       "self_bleu",      "reward_correct",     "reward_wrong",
                                       "logprob_correct", "logprob_wrong",  "spearman_reward_correct",
                                       "spearman_logprob_correct"};
    const cJSON *sets = cJSON_GetObjectItemCaseSensitive(result, "settings");
    double rows = num_of(cJSON_GetObjectItemCaseSensitive(result, "generation_rows"));
    iq_buf msg = {0};
    iq_status st = IQ_OK;
    for (const cJSON *x = cJSON_IsArray(sets) ? sets->child : NULL; x && !st; x = x->next) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(x, "decoding");
        const char *dec = cJSON_IsString(d) ? d->valuestring : "?";
        begin(l, "generation", done, epoch_of(l, done), iq_run_log_elapsed(l));
        iq_buf_printf(&l->line, ",\"decoding\":\"%s\"", dec);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, keys[k]);
            if (v) field(l, keys[k], num_of(v)); /* beam and pass_at_k, self_bleu only where they apply */
        }
        field(l, "rows", rows);
        st = end(l);
        double t = num_of(cJSON_GetObjectItemCaseSensitive(x, "temperature"));
        iq_buf_printf(&msg, "%s%s", msg.len ? " · " : "", dec);
        if (t > 0) iq_buf_printf(&msg, " T%g", t);
        iq_buf_printf(&msg, " %.4f", num_of(cJSON_GetObjectItemCaseSensitive(x, "accuracy")));
        double sb = num_of(cJSON_GetObjectItemCaseSensitive(x, "self_bleu"));
        if (isfinite(sb)) iq_buf_printf(&msg, " (Self-BLEU %.3f)", sb);
    }
    if (!st) iq_info("generation at step %ld (%g rows), accuracy: %s", done, rows, msg.len ? iq_buf_cstr(&msg) : "-");
    iq_buf_free(&msg);
    return st;
}

iq_status iq_run_log_ckpt(iq_run_log *l, long step, double elapsed) {
    begin(l, "ckpt", step, epoch_of(l, step), elapsed);
    iq_buf_printf(&l->line, ",\"path\":\"checkpoint-%ld\"", step);
    return end(l);
}

iq_status iq_run_log_final(iq_run_log *l, long tokens_seen) {
    begin(l, "final", l->total_steps, epoch_of(l, l->total_steps), iq_run_log_elapsed(l));
    iq_buf_printf(&l->line, ",\"path\":\"final\"");
    field(l, "tokens", (double)tokens_seen); /* no peak RSS here: every field but the times is bit-exact (§7) */
    return end(l);
}

// ----------------------------------------------------------------------------------------------------
// the progress line

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void iq_run_log_progress(iq_run_log *l, long done, const iq_train_row *row, double tokens_per_s, bool row_written) {
    bool tty = iq_stderr_is_tty();
    if (tty == row_written) return; /* a TTY redraws after every step (not again with the row); a log gets rows */
    double now = iq_now();
    char el[32], eta[32];
    fmt_time(l->elapsed0 + (now - l->t0), el, sizeof el);
    fmt_time((now - l->t0) / (double)(done - l->first_step) * (double)(l->total_steps - done), eta, sizeof eta);
    if (tty) {
        iq_progress("step %ld/%ld · loss %.4f · nll %.4f · td %.4f · lr %.2e · %s · ETA %s", done, l->total_steps, row->loss,
                    row->nll, row->td, row->lr, el, eta);
        return;
    }
    const iq_loss_stats *s = row->stats;
    double ntd = s->n_td ? (double)s->n_td : 1.0;
    iq_progress("step %ld/%ld · loss %.4f · nll %.4f · td %.4f · |r| %.3f · lr %.2e · %.0f tok/s · %s · ETA %s", done,
                l->total_steps, row->loss, row->nll, row->td, s->r_abs_sum / ntd, row->lr, tokens_per_s, el, eta);
}
