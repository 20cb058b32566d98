/* generate_cmd.c — the drivers of `iqtrain generate` and `iqtrain score` (generate_cmd.h). */
#include "iqtrain/generate_cmd.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_io.h"
#include "iqtrain/log.h"


iq_status iq_generate_command(const iq_generate_cmd *c) {
    iq_gen_loaded L;
    iq_status st = iq_gen_load_all(c->model_dir, c->data, c->n_data, c->skip_bad_rows, c->prompt, c->gen.max_new_tokens, &L);
    if (st) {
        iq_gen_loaded_free(&L);
        return st;
    }
    float gamma = iq_gen_model_gamma(c->model_dir, c->gamma);
    int32_t eos = iq_tok_eos(L.tok);
    size_t n_prompts = c->prompt ? 1 : L.d->n_rows;
    iq_infer *inf = iq_infer_create(L.m, iq_gen_slots(&c->gen), L.len);
    int K = c->gen.beam > 0 ? 1 : (c->gen.num_samples > 0 ? c->gen.num_samples : 1);
    iq_gen_out *outs = iq_xcalloc((size_t)K, sizeof *outs);
    float *rw = iq_xmalloc((size_t)L.len * sizeof *rw), *lp = iq_xmalloc((size_t)L.len * sizeof *lp);
    FILE *f = NULL;
    st = iq_gen_open_out(c->out, "samples.jsonl", &f);
    const char *decoding = c->gen.beam > 0 ? "beam" : c->gen.sampler.temperature <= 0 ? "greedy" : "sample";
    bool raw_stdout = !f && n_prompts == 1 && K == 1;
    iq_ids prompt = {0};
    for (size_t r = 0; r < n_prompts && !st; r++) {
        prompt.len = 0;
        if (c->prompt) {
            if (c->prompt[0]) iq_tok_encode(L.tok, c->prompt, strlen(c->prompt), &prompt);
            else iq_ids_push(&prompt, eos);
        } else {
            size_t a = L.d->row_off[r], pl = iq_gen_row_prompt_len(L.d, r);
            for (size_t i = 0; i < pl; i++) iq_ids_push(&prompt, L.d->ids[a + i]);
        }
        if (prompt.len == 0) iq_ids_push(&prompt, eos);
        if ((int)prompt.len >= L.len) {
            iq_warn("prompt %zu has %zu tokens and leaves no room in the context (%d): skipped", r, prompt.len, L.len);
            continue;
        }
        iq_stop_ids stop = iq_stop_ids_of(L.tok);
        iq_generate(inf, prompt.v, (int)prompt.len, &stop, &c->gen, r, outs);
        bool bos_only = prompt.len == 1 && prompt.v[0] == eos;
        char *ptext = bos_only ? iq_xstrdup("") : iq_gen_decode_text(L.tok, prompt.v, prompt.len);
        for (int k = 0; k < K && !st; k++) {
            const iq_gen_out *g = &outs[k];
            double reward, logprob;
            iq_score_sequence(L.m, L.head, prompt.v, (int)prompt.len, g->ids.v, (int)g->ids.len, g->eos, gamma, rw, lp,
                              &reward, &logprob);
            char *ctext = iq_gen_decode_text(L.tok, g->ids.v, g->ids.len - (g->eos ? 1 : 0));
            if (raw_stdout) {
                fputs(ctext, stdout);
                fputc('\n', stdout);
            } else {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddNumberToObject(j, "row", (double)r);
                cJSON_AddStringToObject(j, "prompt", ptext);
                cJSON_AddStringToObject(j, "completion", ctext);
                cJSON_AddStringToObject(j, "decoding", decoding);
                cJSON_AddItemToObject(j, "temperature", iq_gen_num9(c->gen.beam > 0 ? 0.0 : iq_short_float(c->gen.sampler.temperature)));
                cJSON_AddNumberToObject(j, "sample", k);
                cJSON_AddItemToObject(j, "logprob", iq_gen_num9(logprob));
                cJSON_AddItemToObject(j, "reward", iq_gen_num9(reward));
                cJSON_AddItemToObject(j, "rewards", iq_gen_float_array(rw, (int)g->ids.len));
                cJSON_AddBoolToObject(j, "eos", g->eos);
                cJSON_AddNullToObject(j, "correct");
                st = iq_gen_put_line(f ? f : stdout, j);
                cJSON_Delete(j);
            }
            free(ctext);
        }
        free(ptext);
    }
    if (f && fclose(f) != 0 && !st) st = iq_fail(IQ_EIO, "%s/samples.jsonl: write failed", c->out);
    for (int k = 0; k < K; k++) iq_ids_free(&outs[k].ids);
    free(outs);
    free(rw);
    free(lp);
    iq_ids_free(&prompt);
    iq_infer_free(inf);
    iq_gen_loaded_free(&L);
    return st;
}

iq_status iq_score_command(const iq_score_cmd *c) {
    iq_gen_loaded L;
    iq_status st = iq_gen_load_all(c->model_dir, c->data, c->n_data, c->skip_bad_rows, NULL, 0, &L);
    if (st) {
        iq_gen_loaded_free(&L);
        return st;
    }
    float gamma = iq_gen_model_gamma(c->model_dir, c->gamma);
    int32_t eos = iq_tok_eos(L.tok);
    float *rw = iq_xmalloc((size_t)L.len * sizeof *rw), *lp = iq_xmalloc((size_t)L.len * sizeof *lp);
    FILE *f = NULL;
    st = iq_gen_open_out(c->out, "scores.jsonl", &f);
    for (size_t r = 0; r < L.d->n_rows && !st; r++) {
        size_t a = L.d->row_off[r], n = iq_data_row_len(L.d, r), pl = iq_gen_row_prompt_len(L.d, r);
        bool eos_end = (L.d->tok_flags[a + n - 1] & IQ_TOK_TERMINAL) != 0;
        double reward, logprob;
        iq_score_sequence(L.m, L.head, L.d->ids + a, (int)pl, L.d->ids + a + pl, (int)(n - pl), eos_end, gamma, rw, lp,
                          &reward, &logprob);
        bool bos_only = pl == 1 && L.d->ids[a] == eos;
        char *ptext = bos_only ? iq_xstrdup("") : iq_gen_decode_text(L.tok, L.d->ids + a, pl);
        char *ctext = iq_gen_decode_text(L.tok, L.d->ids + a + pl, n - pl - (eos_end ? 1 : 0));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "row", (double)r);
        cJSON_AddStringToObject(j, "prompt", ptext);
        cJSON_AddStringToObject(j, "completion", ctext);
        cJSON_AddItemToObject(j, "logprob", iq_gen_num9(logprob));
        cJSON_AddItemToObject(j, "reward", iq_gen_num9(reward));
        cJSON_AddItemToObject(j, "rewards", iq_gen_float_array(rw, (int)(n - pl)));
        cJSON_AddBoolToObject(j, "truncated", !eos_end);
        st = iq_gen_put_line(f ? f : stdout, j);
        cJSON_Delete(j);
        free(ptext);
        free(ctext);
    }
    if (f && fclose(f) != 0 && !st) st = iq_fail(IQ_EIO, "%s/scores.jsonl: write failed", c->out);
    free(rw);
    free(lp);
    iq_gen_loaded_free(&L);
    return st;
}

