/* eval_generation.c — generation metrics for `iqtrain eval` (eval_generation.h): greedy, beam and sampled
 * completions per row, answers checked against the reference, pass@K, Self-BLEU, reward statistics. */
#include "iqtrain/eval_generation.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_io.h"
#include "iqtrain/eval_metrics.h"
#include "iqtrain/generate.h"
#include "iqtrain/log.h"


typedef struct {
    const char *name; /* greedy | beam | sample */
    float temperature;
    int beam, k;
    /* accumulators */
    double correct, n;         /* samples */
    double pass, rows;         /* pass@k over rows */
    double *rew, *lp, *ok;     /* per sample */
    size_t ns, cap;
    double bleu_sum;
    int bleu_n;
} setting;

static void setting_add(setting *s, double rew, double lp, bool ok) {
    if (s->ns == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->rew = iq_xrealloc(s->rew, s->cap * sizeof *s->rew);
        s->lp = iq_xrealloc(s->lp, s->cap * sizeof *s->lp);
        s->ok = iq_xrealloc(s->ok, s->cap * sizeof *s->ok);
    }
    s->rew[s->ns] = rew;
    s->lp[s->ns] = lp;
    s->ok[s->ns] = ok ? 1.0 : 0.0;
    s->ns++;
    s->correct += ok;
    s->n += 1;
}

static cJSON *mean_where(const double *x, const double *ok, size_t n, double want) {
    double s = 0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (ok[i] == want) {
            s += x[i];
            c++;
        }
    return c ? iq_gen_num9(s / (double)c) : cJSON_CreateNull();
}

/* What one evaluation holds: the model, its head and cache, the data, and the decoding settings. */
typedef struct {
    iq_model *m;
    iq_head *head;
    const iq_tokenizer *tok;
    const iq_dataset *d;
    iq_infer *inf;
    float gamma;
    int K, ns, len;
    setting *S;
    iq_gen_out *outs;
    char **texts;
    float *rw, *lpb;
    FILE *f; /* samples.jsonl, or NULL */
} gen_run;

static iq_status put_sample(gen_run *g, size_t r, const char *ptext, const char *ctext, const setting *S_, int k,
                            double logprob, double reward, bool ok) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "row", (double)r);
    cJSON_AddStringToObject(j, "prompt", ptext);
    cJSON_AddStringToObject(j, "completion", ctext);
    cJSON_AddStringToObject(j, "decoding", S_->name);
    cJSON_AddItemToObject(j, "temperature", iq_gen_num9(iq_short_float(S_->temperature)));
    cJSON_AddNumberToObject(j, "sample", k);
    cJSON_AddItemToObject(j, "logprob", iq_gen_num9(logprob));
    cJSON_AddItemToObject(j, "reward", iq_gen_num9(reward));
    cJSON_AddItemToObject(j, "rewards", iq_gen_float_array(g->rw, (int)g->outs[k].ids.len));
    cJSON_AddBoolToObject(j, "eos", g->outs[k].eos);
    cJSON_AddBoolToObject(j, "correct", ok);
    iq_status st = iq_gen_put_line(g->f, j);
    cJSON_Delete(j);
    return st;
}

/* Every decoding setting for dataset row dr, evaluated as row r (which seeds the samples). */
static iq_status eval_row(gen_run *g, const iq_gen_eval_opts *o, size_t dr, size_t r, iq_ids *prompt) {
    const iq_dataset *d = g->d;
    int32_t eos = iq_tok_eos(g->tok);
    size_t a = d->row_off[dr], n = iq_data_row_len(d, dr), pl = iq_gen_row_prompt_len(d, dr);
    bool eos_end = (d->tok_flags[a + n - 1] & IQ_TOK_TERMINAL) != 0;
    char *ref = iq_gen_decode_text(g->tok, d->ids + a + pl, n - pl - (eos_end ? 1 : 0));
    prompt->len = 0;
    for (size_t i = 0; i < pl; i++) iq_ids_push(prompt, d->ids[a + i]);
    bool bos_only = pl == 1 && d->ids[a] == eos;
    char *ptext = bos_only ? iq_xstrdup("") : iq_gen_decode_text(g->tok, prompt->v, prompt->len);
    iq_status st = IQ_OK;
    for (int s = 0; s < g->ns && !st; s++) {
        setting *S_ = &g->S[s];
        iq_gen_opts go = {S_->k, {S_->temperature, 0, 1.0f}, S_->beam, o->max_new_tokens, o->seed};
        iq_stop_ids stop = iq_stop_ids_of(g->tok);
        iq_generate(g->inf, prompt->v, (int)prompt->len, &stop, &go, r, g->outs);
        bool any = false;
        for (int k = 0; k < S_->k; k++) {
            double reward, logprob;
            iq_score_sequence(g->m, g->head, prompt->v, (int)prompt->len, g->outs[k].ids.v, (int)g->outs[k].ids.len,
                              g->outs[k].eos, g->gamma, g->rw, g->lpb, &reward, &logprob);
            char *ctext = iq_gen_decode_text(g->tok, g->outs[k].ids.v, g->outs[k].ids.len - (g->outs[k].eos ? 1 : 0));
            bool ok = iq_answers_match(ctext, ref);
            any |= ok;
            setting_add(S_, reward, logprob, ok);
            if (g->f && !st) st = put_sample(g, r, ptext, ctext, S_, k, logprob, reward, ok);
            free(g->texts[k]);
            g->texts[k] = ctext;
        }
        S_->pass += any;
        S_->rows += 1;
        if (S_->k >= 2) {
            double b = iq_self_bleu((const char *const *)g->texts, S_->k);
            if (!isnan(b)) {
                S_->bleu_sum += b;
                S_->bleu_n++;
            }
        }
    }
    free(ref);
    free(ptext);
    return st;
}

/* {"settings": [...], "self_bleu": {T: x}, "generation_rows", ...}; frees the settings' accumulators. */
static cJSON *results_json(gen_run *g, const iq_gen_eval_opts *o, size_t rows) {
    cJSON *res = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(res, "settings");
    cJSON *sb = cJSON_AddObjectToObject(res, "self_bleu");
    for (int s = 0; s < g->ns; s++) {
        setting *x = &g->S[s];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "decoding", x->name);
        cJSON_AddItemToObject(j, "temperature", iq_gen_num9(iq_short_float(x->temperature)));
        if (x->beam) cJSON_AddNumberToObject(j, "beam", x->beam);
        cJSON_AddNumberToObject(j, "samples_per_prompt", x->k);
        cJSON_AddItemToObject(j, "accuracy", iq_gen_num9(x->n > 0 ? x->correct / x->n : 0.0));
        if (x->k > 1) {
            cJSON_AddItemToObject(j, "pass_at_k", iq_gen_num9(x->rows > 0 ? x->pass / x->rows : 0.0));
            double b = x->bleu_n ? x->bleu_sum / x->bleu_n : NAN;
            cJSON_AddItemToObject(j, "self_bleu", iq_gen_num9(b));
            char key[32];
            snprintf(key, sizeof key, "%g", iq_short_float(x->temperature));
            cJSON_AddItemToObject(sb, key, iq_gen_num9(b));
        }
        cJSON_AddItemToObject(j, "reward_correct", mean_where(x->rew, x->ok, x->ns, 1.0));
        cJSON_AddItemToObject(j, "reward_wrong", mean_where(x->rew, x->ok, x->ns, 0.0));
        cJSON_AddItemToObject(j, "logprob_correct", mean_where(x->lp, x->ok, x->ns, 1.0));
        cJSON_AddItemToObject(j, "logprob_wrong", mean_where(x->lp, x->ok, x->ns, 0.0));
        cJSON_AddItemToObject(j, "spearman_reward_correct", iq_gen_num9(iq_spearman(x->rew, x->ok, (int)x->ns)));
        cJSON_AddItemToObject(j, "spearman_logprob_correct", iq_gen_num9(iq_spearman(x->lp, x->ok, (int)x->ns)));
        cJSON_AddNumberToObject(j, "samples", x->n);
        cJSON_AddItemToArray(arr, j);
        free(x->rew);
        free(x->lp);
        free(x->ok);
    }
    cJSON_AddNumberToObject(res, "generation_rows", (double)rows);
    cJSON_AddNumberToObject(res, "max_new_tokens", o->max_new_tokens);
    cJSON_AddNumberToObject(res, "seed", (double)o->seed);
    return res;
}

/* The evaluation of n rows of d (rows[i], or i when rows is NULL; o->limit caps n) with model m, whose
 * arenas hold one row of len positions, and its head. */
static iq_status eval_rows(iq_model *m, iq_head *head, const iq_tokenizer *tok, const iq_dataset *d, const uint32_t *rows,
                           size_t n, int len, float gamma, const iq_gen_eval_opts *o, cJSON **result) {
    gen_run g = {.m = m, .head = head, .tok = tok, .d = d, .gamma = gamma, .len = len};
    g.K = o->num_samples > 0 ? o->num_samples : 1;
    g.ns = 1 + (o->beam >= 2) + o->n_temperatures;
    g.S = iq_xcalloc((size_t)g.ns, sizeof *g.S);
    g.S[0] = (setting){.name = "greedy", .temperature = 0, .k = 1};
    int si = 1;
    if (o->beam >= 2) g.S[si++] = (setting){.name = "beam", .beam = o->beam, .k = 1};
    for (int t = 0; t < o->n_temperatures; t++) g.S[si++] = (setting){.name = "sample", .temperature = o->temperatures[t], .k = g.K};
    int slots = g.K > 2 * o->beam ? g.K : 2 * o->beam;
    if (slots < 1) slots = 1;
    g.inf = iq_infer_create(m, slots, len);
    g.outs = iq_xcalloc((size_t)g.K, sizeof *g.outs);
    g.rw = iq_xmalloc((size_t)len * sizeof *g.rw);
    g.lpb = iq_xmalloc((size_t)len * sizeof *g.lpb);
    g.texts = iq_xcalloc((size_t)g.K, sizeof *g.texts);
    iq_status st = iq_gen_open_out(o->out, "samples.jsonl", &g.f);
    if (o->limit > 0 && (size_t)o->limit < n) n = (size_t)o->limit;
    iq_ids prompt = {0};
    double t0 = iq_now();
    for (size_t r = 0; r < n && !st; r++) {
        st = eval_row(&g, o, rows ? rows[r] : r, r, &prompt);
        if (iq_now() - t0 > 2.0 && (r + 1) % 10 == 0) iq_progress("eval: generated for %zu/%zu rows", r + 1, n);
    }
    iq_progress_end();
    if (g.f && fclose(g.f) != 0 && !st) st = iq_fail(IQ_EIO, "%s/samples.jsonl: write failed", o->out);
    cJSON *res = results_json(&g, o, n);
    for (int k = 0; k < g.K; k++) {
        free(g.texts[k]);
        iq_ids_free(&g.outs[k].ids);
    }
    free(g.texts);
    free(g.outs);
    free(g.S);
    free(g.rw);
    free(g.lpb);
    iq_ids_free(&prompt);
    iq_infer_free(g.inf);
    *result = NULL;
    if (st) cJSON_Delete(res);
    else *result = res;
    return st;
}

iq_status iq_eval_generation(const iq_gen_eval_opts *o, cJSON **result) {
    *result = NULL;
    iq_gen_loaded L;
    iq_status st = iq_gen_load_all(o->model_dir, o->data, o->n_data, o->skip_bad_rows, NULL, o->max_new_tokens, &L);
    if (!st)
        st = eval_rows(L.m, L.head, L.tok, L.d, NULL, L.d->n_rows, L.len, iq_gen_model_gamma(o->model_dir, o->gamma), o,
                       result);
    iq_gen_loaded_free(&L);
    return st;
}

iq_status iq_eval_generation_model(iq_model *m, const iq_tokenizer *tok, const iq_dataset *d, const uint32_t *rows,
                                   size_t n, const iq_gen_eval_opts *o, cJSON **result) {
    *result = NULL;
    const iq_model_config *cfg = iq_model_cfg(m);
    if (iq_tok_eos(tok) < 0) return iq_fail(IQ_EDATA, "the tokenizer has no %s: no generation eval", IQ_EOS_TEXT);
    long need = (long)d->stats.max_len + (o->max_new_tokens > 0 ? o->max_new_tokens : 0); /* as iq_gen_load_all */
    int len = need < cfg->ctx ? (int)need : cfg->ctx;
    iq_model *view = NULL;
    iq_status st = iq_model_create_view(m, 1, len, &view);
    if (st) return st;
    iq_head *head = iq_head_create(len, cfg->n_embd, cfg->vocab, 0);
    st = eval_rows(view, head, tok, d, rows, n, len, o->gamma >= 0 ? o->gamma : 0.99f, o, result);
    iq_head_free(head);
    iq_model_free(view);
    return st;
}
