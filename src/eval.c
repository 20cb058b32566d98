/* eval.c — padded batches, the loss over a dataset, and the `eval` command's driver. */
#include "iqtrain/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/checkpoint.h"
#include "iqtrain/log.h"

void iq_batch_init(iq_batch *b, int max_batch, int max_seq) {
    memset(b, 0, sizeof *b);
    b->max_batch = max_batch;
    b->max_seq = max_seq;
    b->ids = iq_xcalloc((size_t)max_batch * max_seq, sizeof *b->ids);
    b->flags = iq_xcalloc((size_t)max_batch * max_seq, 1);
    b->lens = iq_xcalloc((size_t)max_batch, sizeof *b->lens);
}

void iq_batch_free(iq_batch *b) {
    free(b->ids);
    free(b->flags);
    free(b->lens);
    memset(b, 0, sizeof *b);
}

long iq_batch_fill(iq_batch *b, const iq_dataset *d, const uint32_t *rows, int n) {
    int T = 1;
    for (int i = 0; i < n; i++) {
        int l = (int)iq_data_row_len(d, rows[i]);
        if (l > T) T = l;
    }
    b->B = n;
    b->T = T;
    long sup = 0;
    for (int i = 0; i < n; i++) {
        size_t off = d->row_off[rows[i]];
        int l = (int)iq_data_row_len(d, rows[i]);
        int32_t *ids = b->ids + (size_t)i * T;
        uint8_t *fl = b->flags + (size_t)i * T;
        memcpy(ids, d->ids + off, (size_t)l * sizeof *ids);
        memcpy(fl, d->tok_flags + off, (size_t)l);
        memset(ids + l, 0, (size_t)(T - l) * sizeof *ids);
        memset(fl + l, 0, (size_t)(T - l));
        b->lens[i] = l;
        for (int j = 0; j < l; j++) sup += (fl[j] & IQ_TOK_SUPERVISED) != 0;
    }
    return sup;
}

static const iq_dataset *g_sort_d; /* qsort has no context argument */
static int cmp_len(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    size_t la = iq_data_row_len(g_sort_d, a), lb = iq_data_row_len(g_sort_d, b);
    if (la != lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

void iq_sort_rows_by_length(const iq_dataset *d, uint32_t *rows, size_t n) {
    g_sort_d = d;
    qsort(rows, n, sizeof *rows, cmp_len);
}

void iq_eval_rows(iq_model *m, iq_head *h, const iq_dataset *d, const uint32_t *rows, size_t n_rows,
                  const iq_loss_opts *o, int batch_size, iq_loss_stats *st) {
    uint32_t *order = iq_xmalloc((n_rows ? n_rows : 1) * sizeof *order);
    memcpy(order, rows, n_rows * sizeof *order);
    iq_sort_rows_by_length(d, order, n_rows);
    iq_batch b;
    iq_batch_init(&b, batch_size, iq_model_max_seq(m));
    memset(st, 0, sizeof *st);
    for (size_t s = 0; s < n_rows; s += (size_t)batch_size) {
        int n = (int)(n_rows - s < (size_t)batch_size ? n_rows - s : (size_t)batch_size);
        iq_batch_fill(&b, d, order + s, n);
        iq_model_forward(m, b.ids, b.B, b.T);
        iq_head_loss(h, iq_model_lnf(m), iq_model_params(m)->wte, b.ids, b.flags, b.lens, b.B, b.T, o, 1.0f, NULL, NULL,
                     st, NULL, NULL);
    }
    iq_batch_free(&b);
    free(order);
}

void iq_eval_dataset(iq_model *m, iq_head *h, const iq_dataset *d, const iq_loss_opts *o, int batch_size,
                     iq_loss_stats *st) {
    uint32_t *all = iq_xmalloc((d->n_rows ? d->n_rows : 1) * sizeof *all);
    for (size_t i = 0; i < d->n_rows; i++) all[i] = (uint32_t)i;
    iq_eval_rows(m, h, d, all, d->n_rows, o, batch_size, st);
    free(all);
}

void iq_eval_stats_json(cJSON *j, const iq_loss_stats *st, float lambda) {
    double nll, td, loss = iq_loss_value(st, lambda, &nll, &td);
    cJSON_AddNumberToObject(j, "loss", loss);
    cJSON_AddNumberToObject(j, "nll", nll);
    cJSON_AddNumberToObject(j, "td", td);
    cJSON_AddNumberToObject(j, "tokens", (double)st->n_sup);
    cJSON_AddNumberToObject(j, "token_accuracy", st->n_sup ? (double)st->n_correct / (double)st->n_sup : 0.0);
    cJSON_AddNumberToObject(j, "ppl", exp(nll));
}


static double section_num(const cJSON *s, const char *k, double def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, k);
    return cJSON_IsNumber(x) ? x->valuedouble : def;
}

iq_status iq_eval_command(const iq_eval_opts *o, cJSON **result) {
    *result = NULL;
    int bs = o->batch_size > 0 ? o->batch_size : 16;
    iq_model_config cfg;
    cJSON *section = NULL;
    iq_status st = iq_model_config_read(o->model_dir, &cfg, &section);
    if (st) return st;
    int max_seq = o->max_seq_len > 0 && o->max_seq_len < cfg.ctx ? o->max_seq_len : cfg.ctx;
    iq_tokenizer *tok = NULL;
    st = iq_tok_load(o->model_dir, &tok);
    iq_dataset *d = NULL;
    iq_data_opts dopt = {.max_seq_len = max_seq, .skip_bad_rows = o->skip_bad_rows, .progress = true};
    if (!st) st = iq_data_load(o->data, o->n_data, tok, &dopt, &d);
    iq_model *m = NULL;
    if (!st) {
        int longest = (int)d->stats.max_len;
        cJSON_Delete(section);
        section = NULL;
        st = iq_model_load_folder(o->model_dir, bs, longest < max_seq ? longest : max_seq, &m, &section);
    }
    if (!st && iq_tok_vocab_size(tok) > cfg.vocab)
        st = iq_fail(IQ_EDATA, "%s: the tokenizer has %d ids but the model only %d", o->model_dir, iq_tok_vocab_size(tok),
                     cfg.vocab);
    if (st) {
        cJSON_Delete(section);
        iq_data_free(d);
        iq_tok_free(tok);
        iq_model_free(m);
        return st;
    }
    iq_loss_opts lo;
    lo.lambda = o->has_lambda ? o->lambda : (float)section_num(section, "lambda", 0.1);
    lo.gamma = o->has_gamma ? o->gamma : (float)section_num(section, "gamma", 0.99);
    lo.td_grad = o->td_grad;
    lo.truncation = o->truncation;
    iq_head *h = iq_head_create(bs * iq_model_max_seq(m), cfg.n_embd, cfg.vocab, 0);
    iq_loss_stats ls;
    iq_eval_dataset(m, h, d, &lo, bs, &ls);
    cJSON *j = cJSON_CreateObject();
    iq_eval_stats_json(j, &ls, lo.lambda);
    cJSON_AddNumberToObject(j, "lambda", iq_short_float(lo.lambda));
    cJSON_AddNumberToObject(j, "gamma", iq_short_float(lo.gamma));
    cJSON_AddNumberToObject(j, "rows", (double)d->stats.rows);
    double ntd = ls.n_td ? (double)ls.n_td : 1.0;
    cJSON_AddNumberToObject(j, "reward_mean", ls.r_sum / ntd);
    cJSON_AddNumberToObject(j, "reward_abs_mean", ls.r_abs_sum / ntd);
    cJSON_AddNumberToObject(j, "reward_abs_max", ls.r_abs_max);
    *result = j;
    iq_head_free(h);
    cJSON_Delete(section);
    iq_data_free(d);
    iq_tok_free(tok);
    iq_model_free(m);
    return IQ_OK;
}
