/* generate.c — sampling and beam search with the KV cache, reward extraction, and the generate and score
 * drivers.
 *
 * Sections: sampling · beam search · scoring · prompts from data · the generate and score commands. */
#include "iqtrain/generate.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/model_folder.h"
#include "iqtrain/data.h"
#include "iqtrain/log.h"
#include "iqtrain/metrics.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"

int iq_gen_slots(const iq_gen_opts *o) {
    if (o->beam > 0) return 2 * o->beam;
    return o->num_samples > 0 ? o->num_samples : 1;
}

// ----------------------------------------------------------------------------------------------------
// sampling: prefill once, copy the prompt's cache to every sample, decode the samples as one batch

static void sample_many(iq_infer *inf, const int32_t *prompt, int plen, int32_t eos, const iq_gen_opts *o, uint64_t row,
                        iq_gen_out *out, int V) {
    int K = o->num_samples > 0 ? o->num_samples : 1, max_len = iq_infer_max_len(inf);
    float *logits = iq_xmalloc((size_t)K * V * sizeof *logits), *scratch = iq_xmalloc(2 * (size_t)V * sizeof *scratch);
    iq_rng *rng = iq_xmalloc((size_t)K * sizeof *rng);
    int *active = iq_xmalloc((size_t)K * sizeof *active), *slots = iq_xmalloc((size_t)K * sizeof *slots);
    int32_t *toks = iq_xmalloc((size_t)K * sizeof *toks);
    iq_infer_reset(inf, 0);
    int zero = 0;
    iq_infer_step(inf, &zero, prompt, 1, plen, logits);
    for (int k = 0; k < K; k++) {
        if (k > 0) {
            iq_infer_copy(inf, k, 0);
            memcpy(logits + (size_t)k * V, logits, (size_t)V * sizeof *logits);
        }
        iq_sample_rng(&rng[k], o->seed, row, (uint64_t)k);
        out[k].ids.len = 0;
        out[k].eos = false;
        active[k] = 1;
    }
    for (int t = 0; t < o->max_new_tokens; t++) {
        int n = 0;
        for (int k = 0; k < K; k++) {
            if (!active[k]) continue;
            int32_t tok = iq_sample_next(logits + (size_t)k * V, V, &o->sampler, &rng[k], scratch);
            iq_ids_push(&out[k].ids, tok);
            if (tok == eos) {
                out[k].eos = true;
                active[k] = 0;
            } else if (iq_infer_len(inf, k) + 1 > max_len || t + 1 == o->max_new_tokens) {
                active[k] = 0; /* the context is full (or the budget spent): stop without feeding it */
            } else {
                slots[n] = k;
                toks[n] = tok;
                n++;
            }
        }
        if (n == 0) break;
        /* feed the sampled tokens; logits come back in slot order, scatter them per sample */
        float *tmp = iq_xmalloc((size_t)n * V * sizeof *tmp);
        iq_infer_step(inf, slots, toks, n, 1, tmp);
        for (int i = 0; i < n; i++) memcpy(logits + (size_t)slots[i] * V, tmp + (size_t)i * V, (size_t)V * sizeof *tmp);
        free(tmp);
        for (int i = 0; i < n; i++)
            if (iq_infer_len(inf, slots[i]) >= max_len) active[slots[i]] = 0;
    }
    free(logits);
    free(scratch);
    free(rng);
    free(active);
    free(slots);
    free(toks);
}

// ----------------------------------------------------------------------------------------------------
// beam search with length normalisation (score / length); beam 1 is greedy

typedef struct {
    int slot;
    double score;
    iq_ids ids;
} beam_t;

typedef struct {
    int parent;
    int32_t tok;
    double score;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return x->tok < y->tok ? -1 : x->tok > y->tok;
}

static void beam_search(iq_infer *inf, const int32_t *prompt, int plen, int32_t eos, const iq_gen_opts *o, iq_gen_out *out,
                        int V) {
    int N = o->beam, max_len = iq_infer_max_len(inf);
    float *logits = iq_xmalloc((size_t)N * V * sizeof *logits), *lsm = iq_xmalloc((size_t)V * sizeof *lsm);
    beam_t *cur = iq_xcalloc((size_t)N, sizeof *cur), *next = iq_xcalloc((size_t)N, sizeof *next);
    cand_t *cands = iq_xmalloc((size_t)N * N * sizeof *cands);
    int *slots = iq_xmalloc((size_t)N * sizeof *slots);
    int32_t *toks = iq_xmalloc((size_t)N * sizeof *toks);
    iq_ids best = {0};
    double best_norm = -INFINITY;
    bool best_eos = false;
    iq_infer_reset(inf, 0);
    int zero = 0;
    iq_infer_step(inf, &zero, prompt, 1, plen, logits);
    int nb = 1;
    cur[0].slot = 0;
    cur[0].score = 0.0;
    int base_next = N; /* ping-pong between slots [0, N) and [N, 2N) */
    for (int t = 0; t < o->max_new_tokens && nb > 0; t++) {
        int nc = 0;
        for (int b = 0; b < nb; b++) {
            const float *z = logits + (size_t)b * V;
            float mx = z[0];
            for (int v = 1; v < V; v++)
                if (z[v] > mx) mx = z[v];
            double s = 0.0;
            for (int v = 0; v < V; v++) s += exp((double)(z[v] - mx));
            float lse = mx + (float)log(s);
            for (int v = 0; v < V; v++) lsm[v] = z[v] - lse;
            /* this beam's N best tokens (ties to the smaller id) */
            for (int k = 0; k < N && k < V; k++) {
                int bi = -1;
                for (int v = 0; v < V; v++) {
                    bool taken = false;
                    for (int j = nc - k; j < nc; j++) taken |= cands[j].tok == v;
                    if (taken) continue;
                    if (bi < 0 || lsm[v] > lsm[bi]) bi = v;
                }
                cands[nc++] = (cand_t){b, bi, cur[b].score + lsm[bi]};
            }
        }
        qsort(cands, (size_t)nc, sizeof *cands, cmp_cand);
        int nn = 0;
        bool last = t + 1 == o->max_new_tokens;
        for (int i = 0; i < nc && nn < N; i++) {
            const cand_t *c = &cands[i];
            const beam_t *p = &cur[c->parent];
            /* prompt + ids + tok must fit max_len (the scoring pass holds max_len positions) */
            bool full = iq_infer_len(inf, p->slot) + 1 >= max_len;
            if (c->tok == eos || last || full) {
                double norm = c->score / (double)(p->ids.len + 1);
                if (norm > best_norm) {
                    best_norm = norm;
                    best.len = 0;
                    for (size_t j = 0; j < p->ids.len; j++) iq_ids_push(&best, p->ids.v[j]);
                    iq_ids_push(&best, c->tok);
                    best_eos = c->tok == eos;
                }
                continue;
            }
            beam_t *q = &next[nn];
            q->slot = base_next + nn;
            q->score = c->score;
            q->ids.len = 0;
            for (size_t j = 0; j < p->ids.len; j++) iq_ids_push(&q->ids, p->ids.v[j]);
            iq_ids_push(&q->ids, c->tok);
            iq_infer_copy(inf, q->slot, p->slot);
            slots[nn] = q->slot;
            toks[nn] = c->tok;
            nn++;
        }
        if (nn == 0) break;
        iq_infer_step(inf, slots, toks, nn, 1, logits);
        beam_t *sw = cur;
        cur = next;
        next = sw;
        nb = nn;
        base_next = base_next == N ? 0 : N;
    }
    out[0].ids.len = 0;
    for (size_t j = 0; j < best.len; j++) iq_ids_push(&out[0].ids, best.v[j]);
    out[0].eos = best_eos;
    for (int b = 0; b < N; b++) {
        iq_ids_free(&cur[b].ids);
        iq_ids_free(&next[b].ids);
    }
    iq_ids_free(&best);
    free(logits);
    free(lsm);
    free(cur);
    free(next);
    free(cands);
    free(slots);
    free(toks);
}

void iq_generate(iq_infer *inf, const int32_t *prompt, int plen, int32_t eos, const iq_gen_opts *o, uint64_t row,
                 iq_gen_out *out) {
    int V = iq_infer_vocab(inf);
    if (o->beam > 0) beam_search(inf, prompt, plen, eos, o, out, V);
    else sample_many(inf, prompt, plen, eos, o, row, out, V);
}

// ----------------------------------------------------------------------------------------------------
// scoring: the full forward pass and the IQLearn head over prompt ++ completion

void iq_score_sequence(iq_model *m, iq_head *h, const int32_t *prompt, int plen, const int32_t *comp, int ncomp,
                       bool eos, float gamma, float *rewards, float *logprobs, double *reward, double *logprob) {
    int T = plen + ncomp;
    int32_t *ids = iq_xmalloc((size_t)T * sizeof *ids);
    uint8_t *flags = iq_xcalloc((size_t)T, 1);
    float *r = iq_xcalloc((size_t)T, sizeof *r), *lp = iq_xcalloc((size_t)T, sizeof *lp);
    memcpy(ids, prompt, (size_t)plen * sizeof *ids);
    memcpy(ids + plen, comp, (size_t)ncomp * sizeof *ids);
    for (int i = plen; i < T; i++) flags[i] = IQ_TOK_SUPERVISED;
    if (eos && ncomp > 0) flags[T - 1] |= IQ_TOK_TERMINAL;
    *reward = 0.0;
    *logprob = 0.0;
    if (ncomp > 0) {
        iq_model_forward(m, ids, 1, T);
        iq_loss_opts lo = {0.0f, gamma, IQ_TD_FULL, IQ_TRUNC_BOOTSTRAP};
        iq_loss_stats st = {0};
        iq_head_score(h, iq_model_lnf(m), iq_model_head(m), ids, flags, &T, 1, T, &lo, &st, r, lp);
        for (int i = 0; i < ncomp; i++) {
            rewards[i] = r[plen + i];
            logprobs[i] = lp[plen + i];
            *reward += r[plen + i];
            *logprob += lp[plen + i];
        }
    }
    free(ids);
    free(flags);
    free(r);
    free(lp);
}

// ----------------------------------------------------------------------------------------------------
// text helpers

/* Appends bytes as valid UTF-8 (invalid bytes become U+FFFD) so that JSON output stays valid. */
static void utf8_lossy(iq_buf *out, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = iq_utf8_decode(s + i, n - i, &cp);
        if (cp >= 0xDC80 && cp <= 0xDCFF && l == 1) iq_buf_append(out, "\xEF\xBF\xBD", 3);
        else iq_buf_append(out, s + i, l);
        i += l;
    }
}

static char *decode_text(const iq_tokenizer *tok, const int32_t *ids, size_t n) {
    iq_buf raw = {0}, out = {0};
    iq_tok_decode(tok, ids, n, &raw);
    utf8_lossy(&out, (const uint8_t *)raw.data, raw.len);
    iq_buf_free(&raw);
    iq_buf_cstr(&out);
    return out.data;
}

/* A dataset row's prompt: the ids before its last supervised run (the last assistant turn, the completion,
 * or everything after the BOS of a text row); *comp_start receives that run's start. */
static size_t row_prompt_len(const iq_dataset *d, size_t r) {
    size_t a = d->row_off[r], n = iq_data_row_len(d, r), s = n;
    while (s > 0 && (d->tok_flags[a + s - 1] & IQ_TOK_SUPERVISED)) s--;
    return s;
}

static float model_gamma(const char *dir, float given) {
    if (given >= 0) return given;
    iq_model_config cfg;
    cJSON *sec = NULL;
    float g = 0.99f;
    if (iq_model_config_read(dir, &cfg, &sec) == IQ_OK) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(sec, "gamma");
        if (cJSON_IsNumber(x)) g = (float)x->valuedouble;
    }
    cJSON_Delete(sec);
    return g;
}

static cJSON *float_array(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.9g", (double)x[i]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(buf));
    }
    return a;
}

static cJSON *num9(double x) {
    char buf[32];
    if (!isfinite(x)) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.9g", x);
    return cJSON_CreateRaw(buf);
}

static iq_status open_out(const char *dir, const char *name, FILE **f) {
    *f = NULL;
    if (!dir) return IQ_OK;
    iq_status st = iq_mkdirs(dir);
    if (st) return st;
    char *p = iq_path_join(dir, name);
    *f = fopen(p, "wb");
    st = *f ? IQ_OK : iq_fail(IQ_ECANTCREAT, "%s: cannot create", p);
    free(p);
    return st;
}

static iq_status put_line(FILE *f, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    bool ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    free(s);
    return ok ? IQ_OK : iq_fail(IQ_EIO, "write failed");
}

// ----------------------------------------------------------------------------------------------------
// the generate and score commands

typedef struct {
    iq_tokenizer *tok;
    iq_model *m;
    iq_head *head;
    iq_dataset *d;
    int len; /* positions the buffers hold: the longest prompt or row + the generation budget, <= ctx */
} loaded;

static void loaded_free(loaded *L) {
    iq_tok_free(L->tok);
    iq_model_free(L->m);
    iq_head_free(L->head);
    iq_data_free(L->d);
}

/* Loads the tokenizer, the data and then the model, sized for what this command needs (never for a whole
 * huge context that no row uses). */
static iq_status load_all(const char *model_dir, const char *const *data, int n_data, bool skip_bad, const char *prompt,
                          int max_new, loaded *L) {
    memset(L, 0, sizeof *L);
    iq_model_config cfg;
    iq_status st = iq_model_config_read(model_dir, &cfg, NULL);
    if (!st) st = iq_tok_load(model_dir, &L->tok);
    if (!st && iq_tok_eos(L->tok) < 0) st = iq_fail(IQ_EDATA, "%s: the tokenizer has no %s", model_dir, IQ_EOS_TEXT);
    if (!st && iq_tok_vocab_size(L->tok) > cfg.vocab)
        st = iq_fail(IQ_EDATA, "%s: the tokenizer has more ids than the model", model_dir);
    long longest = 1;
    if (!st && n_data > 0) {
        iq_data_opts dopt = {.max_seq_len = cfg.ctx, .skip_bad_rows = skip_bad, .progress = true};
        st = iq_data_load(data, n_data, L->tok, &dopt, &L->d);
        if (!st) longest = (long)L->d->stats.max_len;
    } else if (!st && prompt) {
        iq_ids ids = {0};
        iq_tok_encode(L->tok, prompt, strlen(prompt), &ids);
        longest = ids.len > 0 ? (long)ids.len : 1;
        iq_ids_free(&ids);
    }
    if (!st) {
        long need = longest + (max_new > 0 ? max_new : 0);
        L->len = need < cfg.ctx ? (int)need : cfg.ctx;
        st = iq_model_load_folder(model_dir, IQ_MODEL_INFER, 1, L->len, &L->m, NULL);
    }
    if (!st) L->head = iq_head_create(L->len, cfg.n_embd, cfg.vocab, 0);
    return st;
}

iq_status iq_generate_command(const iq_generate_cmd *c) {
    loaded L;
    iq_status st = load_all(c->model_dir, c->data, c->n_data, c->skip_bad_rows, c->prompt, c->gen.max_new_tokens, &L);
    if (st) {
        loaded_free(&L);
        return st;
    }
    float gamma = model_gamma(c->model_dir, c->gamma);
    int32_t eos = iq_tok_eos(L.tok);
    size_t n_prompts = c->prompt ? 1 : L.d->n_rows;
    iq_infer *inf = iq_infer_create(L.m, iq_gen_slots(&c->gen), L.len);
    int K = c->gen.beam > 0 ? 1 : (c->gen.num_samples > 0 ? c->gen.num_samples : 1);
    iq_gen_out *outs = iq_xcalloc((size_t)K, sizeof *outs);
    float *rw = iq_xmalloc((size_t)L.len * sizeof *rw), *lp = iq_xmalloc((size_t)L.len * sizeof *lp);
    FILE *f = NULL;
    st = open_out(c->out, "samples.jsonl", &f);
    const char *decoding = c->gen.beam > 0 ? "beam" : c->gen.sampler.temperature <= 0 ? "greedy" : "sample";
    bool raw_stdout = !f && n_prompts == 1 && K == 1;
    iq_ids prompt = {0};
    for (size_t r = 0; r < n_prompts && !st; r++) {
        prompt.len = 0;
        if (c->prompt) {
            if (c->prompt[0]) iq_tok_encode(L.tok, c->prompt, strlen(c->prompt), &prompt);
            else iq_ids_push(&prompt, eos);
        } else {
            size_t a = L.d->row_off[r], pl = row_prompt_len(L.d, r);
            for (size_t i = 0; i < pl; i++) iq_ids_push(&prompt, L.d->ids[a + i]);
        }
        if (prompt.len == 0) iq_ids_push(&prompt, eos);
        if ((int)prompt.len >= L.len) {
            iq_warn("prompt %zu has %zu tokens and leaves no room in the context (%d): skipped", r, prompt.len, L.len);
            continue;
        }
        iq_generate(inf, prompt.v, (int)prompt.len, eos, &c->gen, r, outs);
        bool bos_only = prompt.len == 1 && prompt.v[0] == eos;
        char *ptext = bos_only ? iq_xstrdup("") : decode_text(L.tok, prompt.v, prompt.len);
        for (int k = 0; k < K && !st; k++) {
            const iq_gen_out *g = &outs[k];
            double reward, logprob;
            iq_score_sequence(L.m, L.head, prompt.v, (int)prompt.len, g->ids.v, (int)g->ids.len, g->eos, gamma, rw, lp,
                              &reward, &logprob);
            char *ctext = decode_text(L.tok, g->ids.v, g->ids.len - (g->eos ? 1 : 0));
            if (raw_stdout) {
                fputs(ctext, stdout);
                fputc('\n', stdout);
            } else {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddNumberToObject(j, "row", (double)r);
                cJSON_AddStringToObject(j, "prompt", ptext);
                cJSON_AddStringToObject(j, "completion", ctext);
                cJSON_AddStringToObject(j, "decoding", decoding);
                cJSON_AddItemToObject(j, "temperature", num9(c->gen.beam > 0 ? 0.0 : iq_short_float(c->gen.sampler.temperature)));
                cJSON_AddNumberToObject(j, "sample", k);
                cJSON_AddItemToObject(j, "logprob", num9(logprob));
                cJSON_AddItemToObject(j, "reward", num9(reward));
                cJSON_AddItemToObject(j, "rewards", float_array(rw, (int)g->ids.len));
                cJSON_AddBoolToObject(j, "eos", g->eos);
                cJSON_AddNullToObject(j, "correct");
                st = put_line(f ? f : stdout, j);
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
    loaded_free(&L);
    return st;
}

iq_status iq_score_command(const iq_score_cmd *c) {
    loaded L;
    iq_status st = load_all(c->model_dir, c->data, c->n_data, c->skip_bad_rows, NULL, 0, &L);
    if (st) {
        loaded_free(&L);
        return st;
    }
    float gamma = model_gamma(c->model_dir, c->gamma);
    int32_t eos = iq_tok_eos(L.tok);
    float *rw = iq_xmalloc((size_t)L.len * sizeof *rw), *lp = iq_xmalloc((size_t)L.len * sizeof *lp);
    FILE *f = NULL;
    st = open_out(c->out, "scores.jsonl", &f);
    for (size_t r = 0; r < L.d->n_rows && !st; r++) {
        size_t a = L.d->row_off[r], n = iq_data_row_len(L.d, r), pl = row_prompt_len(L.d, r);
        bool eos_end = (L.d->tok_flags[a + n - 1] & IQ_TOK_TERMINAL) != 0;
        double reward, logprob;
        iq_score_sequence(L.m, L.head, L.d->ids + a, (int)pl, L.d->ids + a + pl, (int)(n - pl), eos_end, gamma, rw, lp,
                          &reward, &logprob);
        bool bos_only = pl == 1 && L.d->ids[a] == eos;
        char *ptext = bos_only ? iq_xstrdup("") : decode_text(L.tok, L.d->ids + a, pl);
        char *ctext = decode_text(L.tok, L.d->ids + a + pl, n - pl - (eos_end ? 1 : 0));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "row", (double)r);
        cJSON_AddStringToObject(j, "prompt", ptext);
        cJSON_AddStringToObject(j, "completion", ctext);
        cJSON_AddItemToObject(j, "logprob", num9(logprob));
        cJSON_AddItemToObject(j, "reward", num9(reward));
        cJSON_AddItemToObject(j, "rewards", float_array(rw, (int)(n - pl)));
        cJSON_AddBoolToObject(j, "truncated", !eos_end);
        st = put_line(f ? f : stdout, j);
        cJSON_Delete(j);
        free(ptext);
        free(ctext);
    }
    if (f && fclose(f) != 0 && !st) st = iq_fail(IQ_EIO, "%s/scores.jsonl: write failed", c->out);
    free(rw);
    free(lp);
    loaded_free(&L);
    return st;
}

// ----------------------------------------------------------------------------------------------------
// generation metrics

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
    return c ? num9(s / (double)c) : cJSON_CreateNull();
}

iq_status iq_eval_generation(const iq_gen_eval_opts *o, cJSON **result) {
    *result = NULL;
    loaded L;
    iq_status st = load_all(o->model_dir, o->data, o->n_data, o->skip_bad_rows, NULL, o->max_new_tokens, &L);
    if (st) {
        loaded_free(&L);
        return st;
    }
    float gamma = model_gamma(o->model_dir, o->gamma);
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
    st = open_out(o->out, "samples.jsonl", &f);
    size_t rows = L.d->n_rows;
    if (o->limit > 0 && (size_t)o->limit < rows) rows = (size_t)o->limit;
    char **texts = iq_xcalloc((size_t)K, sizeof *texts);
    iq_ids prompt = {0};
    double t0 = iq_now();
    for (size_t r = 0; r < rows && !st; r++) {
        size_t a = L.d->row_off[r], n = iq_data_row_len(L.d, r), pl = row_prompt_len(L.d, r);
        bool eos_end = (L.d->tok_flags[a + n - 1] & IQ_TOK_TERMINAL) != 0;
        char *ref = decode_text(L.tok, L.d->ids + a + pl, n - pl - (eos_end ? 1 : 0));
        prompt.len = 0;
        for (size_t i = 0; i < pl; i++) iq_ids_push(&prompt, L.d->ids[a + i]);
        bool bos_only = pl == 1 && L.d->ids[a] == eos;
        char *ptext = bos_only ? iq_xstrdup("") : decode_text(L.tok, prompt.v, prompt.len);
        for (int s = 0; s < ns && !st; s++) {
            setting *S_ = &S[s];
            iq_gen_opts g = {S_->k, {S_->temperature, 0, 1.0f}, S_->beam, o->max_new_tokens, o->seed};
            iq_generate(inf, prompt.v, (int)prompt.len, eos, &g, r, outs);
            bool any = false;
            for (int k = 0; k < S_->k; k++) {
                double reward, logprob;
                iq_score_sequence(L.m, L.head, prompt.v, (int)prompt.len, outs[k].ids.v, (int)outs[k].ids.len, outs[k].eos,
                                  gamma, rw, lpb, &reward, &logprob);
                char *ctext = decode_text(L.tok, outs[k].ids.v, outs[k].ids.len - (outs[k].eos ? 1 : 0));
                bool ok = iq_answers_match(ctext, ref);
                any |= ok;
                setting_add(S_, reward, logprob, ok);
                if (f) {
                    cJSON *j = cJSON_CreateObject();
                    cJSON_AddNumberToObject(j, "row", (double)r);
                    cJSON_AddStringToObject(j, "prompt", ptext);
                    cJSON_AddStringToObject(j, "completion", ctext);
                    cJSON_AddStringToObject(j, "decoding", S_->name);
                    cJSON_AddItemToObject(j, "temperature", num9(iq_short_float(S_->temperature)));
                    cJSON_AddNumberToObject(j, "sample", k);
                    cJSON_AddItemToObject(j, "logprob", num9(logprob));
                    cJSON_AddItemToObject(j, "reward", num9(reward));
                    cJSON_AddItemToObject(j, "rewards", float_array(rw, (int)outs[k].ids.len));
                    cJSON_AddBoolToObject(j, "eos", outs[k].eos);
                    cJSON_AddBoolToObject(j, "correct", ok);
                    st = put_line(f, j);
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
        cJSON_AddItemToObject(j, "temperature", num9(iq_short_float(x->temperature)));
        if (x->beam) cJSON_AddNumberToObject(j, "beam", x->beam);
        cJSON_AddNumberToObject(j, "samples_per_prompt", x->k);
        cJSON_AddItemToObject(j, "accuracy", num9(x->n > 0 ? x->correct / x->n : 0.0));
        if (x->k > 1) {
            cJSON_AddItemToObject(j, "pass_at_k", num9(x->rows > 0 ? x->pass / x->rows : 0.0));
            double b = x->bleu_n ? x->bleu_sum / x->bleu_n : NAN;
            cJSON_AddItemToObject(j, "self_bleu", num9(b));
            char key[32];
            snprintf(key, sizeof key, "%g", iq_short_float(x->temperature));
            cJSON_AddItemToObject(sb, key, num9(b));
        }
        cJSON_AddItemToObject(j, "reward_correct", mean_where(x->rew, x->ok, x->ns, 1.0));
        cJSON_AddItemToObject(j, "reward_wrong", mean_where(x->rew, x->ok, x->ns, 0.0));
        cJSON_AddItemToObject(j, "logprob_correct", mean_where(x->lp, x->ok, x->ns, 1.0));
        cJSON_AddItemToObject(j, "logprob_wrong", mean_where(x->lp, x->ok, x->ns, 0.0));
        cJSON_AddItemToObject(j, "spearman_reward_correct", num9(iq_spearman(x->rew, x->ok, (int)x->ns)));
        cJSON_AddItemToObject(j, "spearman_logprob_correct", num9(iq_spearman(x->lp, x->ok, (int)x->ns)));
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
    loaded_free(&L);
    if (st) {
        cJSON_Delete(res);
        return st;
    }
    *result = res;
    return IQ_OK;
}
