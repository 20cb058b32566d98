/* eval.c — the `eval` command's driver: the loss over every row of the data (step.h's evaluation step). */
#include "iqtrain/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/chat_format.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/log.h"

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
    iq_chat_format *chat = NULL;
    if (!st) st = iq_chat_format_load(tok, NULL, &chat);
    iq_data_opts dopt = {.max_seq_len = max_seq, .chat = chat, .skip_bad_rows = o->skip_bad_rows, .progress = true};
    if (!st) st = iq_data_load(o->data, o->n_data, tok, &dopt, &d);
    iq_chat_format_free(chat);
    iq_model *m = NULL;
    if (!st) {
        int longest = (int)d->stats.max_len;
        cJSON_Delete(section);
        section = NULL;
        st = iq_model_load_folder(o->model_dir, IQ_MODEL_INFER, bs, longest < max_seq ? longest : max_seq, &m, &section);
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
    iq_loss_opts lo = {0};
    lo.lambda = o->has_lambda ? o->lambda : (float)section_num(section, "lambda", 0.1);
    lo.gamma = o->has_gamma ? o->gamma : (float)section_num(section, "gamma", 0.99);
    lo.td_grad = o->td_grad;
    lo.truncation = o->truncation;
    iq_head *h = iq_head_create(bs * iq_model_max_seq(m), cfg.n_embd, cfg.vocab, 0);
    iq_loss_stats ls;
    uint32_t *all = iq_xmalloc((d->n_rows ? d->n_rows : 1) * sizeof *all);
    for (size_t i = 0; i < d->n_rows; i++) all[i] = (uint32_t)i;
    iq_eval_rows(m, h, d, all, d->n_rows, &lo, bs, &ls);
    free(all);
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
