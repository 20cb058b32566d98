/* run_log.h — a run's log (DESIGN §6): metrics.jsonl, one flushed object per line (floats as %.9g so equal
 * floats print equal), and the progress line a person sees on stderr. */
#ifndef IQTRAIN_RUN_LOG_H
#define IQTRAIN_RUN_LOG_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "iqtrain/iqlearn.h"
#include "iqtrain/util.h"

typedef struct {
    FILE *f;
    iq_buf line;
    long total_steps, steps_per_epoch;
    long first_step; /* the step this process started at (for the ETA) */
    double t0;       /* iq_now() at the start of this process's loop */
    double elapsed0; /* seconds spent before this process (a resumed run) */
    long tok_window; /* tokens since the last train row (tokens_per_s) */
    double t_window;
} iq_run_log;

/* Keeps the rows of OUT/metrics.jsonl whose step <= keep_step (dropping "final" rows and the ckpt row of
 * keep_step, which is written again) and opens it for appending (creating it when keep_step is 0). */
iq_status iq_run_log_open(iq_run_log *l, const char *out_dir, long keep_step, long total_steps, long steps_per_epoch,
                          double elapsed0);
void iq_run_log_close(iq_run_log *l);
/* Seconds of the whole run so far (this process's and the earlier ones'). */
double iq_run_log_elapsed(const iq_run_log *l);

/* Rows. `done` is the number of optimizer steps completed. */
typedef struct {
    long tokens_seen; /* supervised tokens so far */
    double loss, nll, td, lambda, lr, grad_norm;
    const iq_loss_stats *stats; /* of the step */
    bool online;                /* online IQLearn: the two fields below are logged */
    double online_value_gap, online_sample_len;
} iq_train_row;
iq_status iq_run_log_train(iq_run_log *l, long done, const iq_train_row *row);
iq_status iq_run_log_eval(iq_run_log *l, long done, const iq_loss_stats *st, double lambda);
/* One "generation" row per decoding setting of an iq_eval_generation result (decoding, temperature, beam,
 * samples_per_prompt, accuracy, pass_at_k, self_bleu, reward and log-prob means, Spearman correlations, rows). */
iq_status iq_run_log_generation(iq_run_log *l, long done, const cJSON *result);
iq_status iq_run_log_ckpt(iq_run_log *l, long step, double elapsed);
iq_status iq_run_log_final(iq_run_log *l, long tokens_seen);

/* The progress line after step `done`: on a TTY after every step, otherwise with each train row. */
void iq_run_log_progress(iq_run_log *l, long done, const iq_train_row *row, double tokens_per_s, bool row_written);
/* Counts the tokens of a step for tokens_per_s. */
void iq_run_log_add_tokens(iq_run_log *l, long tokens);

#endif
