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

iq_status iq_eval_generation(const iq_gen_eval_opts *o, cJSON **result) {
    *result = NULL;
    iq_gen_loaded L;
    iq_status st = iq_gen_load_all(o->model_dir, o->data, o->n_data, o->skip_bad_rows, NULL, o->max_new_tokens, &L);
    if (st) {
        iq_gen_loaded_free(&L);
        return st;
    }
    float gamma = iq_gen_model_gamma(o->model_dir, o->gamma);
    int32_t eos = iq_tok_eos(L.tok);
    int K = o->num_samples > 0 ? o->num_samples : 1;
    int ns = 1 + (o->beam >= 2) + o->n_temperatures;
    setting *S = iq_xcalloc((size_t)ns, sizeof *S);
    S[0] = (setting){.name = "greedy", .temperature = 0, .k = 1};
    int si = 1;
    if (o->beam >= 2) S[si++] = (setting){.name = "beam", .beam = o->beam, .k = 1};
    for (int t = 0; t < o->n_temperatures; t++) S[si++] = (setting){.name = "sample", .temperature = o->temperatures[t], .k = K};
    int slots = K > 2 * o->beam ? K : 2 * o->beam;
    if (slots < 1) slots = 1;
    iq_infer *inf = iq_infer_create(L.m, slots, L.len);
    iq_gen_out *outs = iq_xcalloc((size_t)(K > 1 ? K : 1), sizeof *outs);
    float *rw = iq_xmalloc((size_t)L.len * sizeof *rw), *lpb = iq_xmalloc((size_t)L.len * sizeof *lpb);
    FILE *f = NULL;
    st = iq_gen_open_out(o->out, "samples.jsonl", &f);
    size_t rows = L.d->n_rows;
    if (o->limit > 0 && (size_t)o->limit < rows) rows = (size_t)o->limit;
    char **texts = iq_xcalloc((size_t)K, sizeof *texts);
    iq_ids prompt = {0};
    double t0 = iq_now();
    for (size_t r = 0; r < rows && !st; r++) {
        size_t a = L.d->row_off[r], n = iq_data_row_len(L.d, r), pl = iq_gen_row_prompt_len(L.d, r);
        bool eos_end = (L.d->tok_flags[a + n - 1] & IQ_TOK_TERMINAL) != 0;
        char *ref = iq_gen_decode_text(L.tok, L.d->ids + a + pl, n - pl - (eos_end ? 1 : 0));
        prompt.len = 0;
        for (size_t i = 0; i < pl; i++) iq_ids_push(&prompt, L.d->ids[a + i]);
        bool bos_only = pl == 1 && L.d->ids[a] == eos;
        char *ptext = bos_only ? iq_xstrdup("") : iq_gen_decode_text(L.tok, prompt.v, prompt.len);
        for (int s = 0; s < ns && !st; s++) {
            setting *S_ = &S[s];
            iq_gen_opts g = {S_->k, {S_->temperature, 0, 1.0f}, S_->beam, o->max_new_tokens, o->seed};
            iq_generate(inf, prompt.v, (int)prompt.len, eos, &g, r, outs);
            bool any = false;
            for (int k = 0; k < S_->k; k++) {
                double reward, logprob;
                iq_score_sequence(L.m, L.head, prompt.v, (int)prompt.len, outs[k].ids.v, (int)outs[k].ids.len, outs[k].eos,
                                  gamma, rw, lpb, &reward, &logprob);
                char *ctext = iq_gen_decode_text(L.tok, outs[k].ids.v, outs[k].ids.len - (outs[k].eos ? 1 : 0));
                bool ok = iq_answers_match(ctext, ref);
                any |= ok;
                setting_add(S_, reward, logprob, ok);
                if (f) {
                    cJSON *j = cJSON_CreateObject();
                    cJSON_AddNumberToObject(j, "row", (double)r);
                    cJSON_AddStringToObject(j, "prompt", ptext);
                    cJSON_AddStringToObject(j, "completion", ctext);
                    cJSON_AddStringToObject(j, "decoding", S_->name);
                    cJSON_AddItemToObject(j, "temperature", iq_gen_num9(iq_short_float(S_->temperature)));
                    cJSON_AddNumberToObject(j, "sample", k);
                    cJSON_AddItemToObject(j, "logprob", iq_gen_num9(logprob));
                    cJSON_AddItemToObject(j, "reward", iq_gen_num9(reward));
                    cJSON_AddItemToObject(j, "rewards", iq_gen_float_array(rw, (int)outs[k].ids.len));
                    cJSON_AddBoolToObject(j, "eos", outs[k].eos);
                    cJSON_AddBoolToObject(j, "correct", ok);
                    st = iq_gen_put_line(f, j);
                    cJSON_Delete(j);
                }
                free(texts[k]);
                texts[k] = ctext;
            }
            S_->pass += any;
            S_->rows += 1;
            if (S_->k >= 2) {
                double b = iq_self_bleu((const char *const *)texts, S_->k);
                if (!isnan(b)) {
                    S_->bleu_sum += b;
                    S_->bleu_n++;
                }
            }
        }
        free(ref);
        free(ptext);
        if (iq_now() - t0 > 2.0 && (r + 1) % 10 == 0) iq_progress("eval: generated for %zu/%zu rows", r + 1, rows);
    }
    iq_progress_end();
    if (f && fclose(f) != 0 && !st) st = iq_fail(IQ_EIO, "%s/samples.jsonl: write failed", o->out);
    cJSON *res = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(res, "settings");
    cJSON *sb = cJSON_AddObjectToObject(res, "self_bleu");
    for (int s = 0; s < ns; s++) {
        setting *x = &S[s];
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
    for (int k = 0; k < K; k++) {
        free(texts[k]);
        iq_ids_free(&outs[k].ids);
    }
    free(texts);
    free(outs);
    free(S);
    free(rw);
    free(lpb);
    iq_ids_free(&prompt);
    iq_infer_free(inf);
    iq_gen_loaded_free(&L);
    if (st) {
        cJSON_Delete(res);
        return st;
    }
    *result = res;
    return IQ_OK;
}
