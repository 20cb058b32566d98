/* online.c — online IQLearn (online.h): sampling from the training weights with the KV cache, the policy
 * pass of a step, and the samples a checkpoint carries.
 *
 * Sections: the state · sampling · the policy pass · the sample book (MPI gather, checkpoint). */
#include "iqtrain/online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_io.h"
#include "iqtrain/data.h"
#include "iqtrain/dist.h"
#include "iqtrain/infer.h"
#include "iqtrain/log.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/sample.h"

/* Mixed into the seed of the samples' generators: online samples never repeat `generate`'s draws. */
#define ONLINE_SALT 0x6F6E6C696E65ULL

// ----------------------------------------------------------------------------------------------------
// the state

struct iq_online {
    iq_online_opts o;
    iq_model *m;
    iq_stop_ids stop;
    int B, S, V;         /* rows per policy batch (the model's max_batch), positions (its max_seq), vocabulary */
    int max_batches;
    iq_infer *inf;       /* the KV cache: B slots of S positions over m's weights */
    /* decoding scratch */
    float *logits;       /* (B, V) each slot's next-token logits */
    float *step_logits;  /* (B, V) the logits of one decode step, in feed order */
    float *scratch;      /* (2 V) iq_sample_next's */
    iq_rng *rng;         /* (B) */
    int32_t *seq;        /* (B, S) each slot's prompt and sampled tokens */
    int *len, *plen, *slots;
    int32_t *toks;
    uint8_t *active, *ended; /* ended: the sample stopped at EOS */
    const int32_t **pp;  /* (B) a micro-batch's prompts, their lengths and rows (iq_online_refresh) */
    int *pl;
    uint64_t *pid;
    /* the samples */
    iq_batch *pol;       /* (max_batches) this rank's policy batches */
    int n_batches;
    long refresh_step;   /* -1: none */
    double n_tokens, n_samples; /* over all ranks */
    /* the book: every rank's record (n_batches, then per batch: B, T, lens[B], ids[B*S], flags[B*S]) */
    size_t rec;          /* int32 per rank */
    int world;
    int32_t *book;       /* (world, rec) */
    double *gather;      /* (world, rec) the MPI sum's buffer (world > 1) */
    double sample_ms, backward_ms;
};

iq_online *iq_online_create(iq_model *m, const iq_online_opts *o, int max_batches, iq_stop_ids stop) {
    iq_online *on = iq_xcalloc(1, sizeof *on);
    on->o = *o;
    if (on->o.every < 1) on->o.every = 1;
    on->m = m;
    on->stop = stop;
    on->B = iq_model_max_batch(m);
    on->S = iq_model_max_seq(m);
    on->V = iq_model_cfg(m)->vocab;
    on->max_batches = max_batches;
    on->inf = iq_infer_create(m, on->B, on->S);
    size_t B = (size_t)on->B, S = (size_t)on->S, V = (size_t)on->V;
    on->logits = iq_xcalloc(B * V, sizeof *on->logits);
    on->step_logits = iq_xcalloc(B * V, sizeof *on->step_logits);
    on->scratch = iq_xcalloc(2 * V, sizeof *on->scratch);
    on->rng = iq_xcalloc(B, sizeof *on->rng);
    on->seq = iq_xcalloc(B * S, sizeof *on->seq);
    on->len = iq_xcalloc(B, sizeof *on->len);
    on->plen = iq_xcalloc(B, sizeof *on->plen);
    on->slots = iq_xcalloc(B, sizeof *on->slots);
    on->toks = iq_xcalloc(B, sizeof *on->toks);
    on->active = iq_xcalloc(B, 1);
    on->ended = iq_xcalloc(B, 1);
    on->pp = iq_xcalloc(B, sizeof *on->pp);
    on->pl = iq_xcalloc(B, sizeof *on->pl);
    on->pid = iq_xcalloc(B, sizeof *on->pid);
    on->pol = iq_xcalloc((size_t)max_batches, sizeof *on->pol);
    for (int i = 0; i < max_batches; i++) iq_batch_init(&on->pol[i], on->B, on->S);
    on->refresh_step = -1;
    on->world = iq_dist_world();
    on->rec = 1 + (size_t)max_batches * (2 + B + 2 * B * S);
    on->book = iq_xcalloc((size_t)on->world * on->rec, sizeof *on->book);
    if (on->world > 1) on->gather = iq_xcalloc((size_t)on->world * on->rec, sizeof *on->gather);
    return on;
}

void iq_online_free(iq_online *on) {
    if (!on) return;
    iq_infer_free(on->inf);
    free(on->logits);
    free(on->step_logits);
    free(on->scratch);
    free(on->rng);
    free(on->seq);
    free(on->len);
    free(on->plen);
    free(on->slots);
    free(on->toks);
    free(on->active);
    free(on->ended);
    free(on->pp);
    free(on->pl);
    free(on->pid);
    for (int i = 0; i < on->max_batches; i++) iq_batch_free(&on->pol[i]);
    free(on->pol);
    free(on->book);
    free(on->gather);
    free(on);
}

float iq_online_mix(const iq_online *on) { return on->o.mix; }

size_t iq_online_bytes(const iq_online *on) {
    size_t B = (size_t)on->B, S = (size_t)on->S, V = (size_t)on->V;
    size_t kv = iq_infer_bytes(on->inf);
    size_t pol = (size_t)on->max_batches * B * S * (sizeof(int32_t) + 1);
    size_t book = (size_t)on->world * on->rec * (sizeof(int32_t) + (on->world > 1 ? sizeof(double) : 0));
    return kv + pol + book + (2 * B * V + 2 * V) * sizeof(float) + B * S * sizeof(int32_t);
}
long iq_online_refresh_step(const iq_online *on) { return on->refresh_step; }
double iq_online_sample_ms(const iq_online *on) { return on->sample_ms; }
double iq_online_backward_ms(const iq_online *on) { return on->backward_ms; }

bool iq_online_due(const iq_online *on, long step) { return on->refresh_step < 0 || step % on->o.every == 0; }

int iq_online_seq_needed(const iq_dataset *d, const uint32_t *rows, size_t n, int max_new_tokens, int cap) {
    int need = 0;
    for (size_t i = 0; i < n; i++) {
        long k = (long)iq_gen_row_prompt_len(d, rows[i]) + max_new_tokens;
        if (k > cap) k = cap;
        if (k > need) need = (int)k;
    }
    return need;
}

// ----------------------------------------------------------------------------------------------------
// sampling

void iq_online_begin(iq_online *on, long step) {
    on->n_batches = 0;
    on->refresh_step = step;
    on->sample_ms = 0.0;
}

/* Policy batch from the slots' sequences: prompt positions unflagged, sampled tokens supervised, a sampled
 * EOS terminal. */
static void pack_batch(iq_online *on, int n) {
    iq_batch *b = &on->pol[on->n_batches++];
    int T = 1;
    for (int i = 0; i < n; i++)
        if (on->len[i] > T) T = on->len[i];
    b->B = n;
    b->T = T;
    for (int i = 0; i < n; i++) {
        int32_t *ids = b->ids + (size_t)i * T;
        uint8_t *fl = b->flags + (size_t)i * T;
        memset(ids, 0, (size_t)T * sizeof *ids);
        memset(fl, 0, (size_t)T);
        memcpy(ids, on->seq + (size_t)i * on->S, (size_t)on->len[i] * sizeof *ids);
        for (int j = on->plen[i]; j < on->len[i]; j++) fl[j] = IQ_TOK_SUPERVISED;
        if (on->ended[i]) fl[on->len[i] - 1] |= IQ_TOK_TERMINAL;
        b->lens[i] = on->len[i];
    }
}

/* Prefills slot i with its prompt; a prompt that leaves no room (or is empty) gets no sample. */
static void prefill(iq_online *on, int i, const int32_t *prompt, int plen, uint64_t row) {
    on->active[i] = on->ended[i] = 0;
    on->plen[i] = on->len[i] = 0; /* no room: an empty row (no term) */
    if (plen < 1 || plen >= on->S) return;
    on->plen[i] = on->len[i] = plen;
    memcpy(on->seq + (size_t)i * on->S, prompt, (size_t)plen * sizeof *prompt);
    iq_infer_reset(on->inf, i);
    iq_infer_step(on->inf, &i, prompt, 1, plen, on->logits + (size_t)i * on->V);
    iq_sample_rng(&on->rng[i], on->o.seed ^ ONLINE_SALT, row, (uint64_t)on->refresh_step);
    on->active[i] = 1;
}

void iq_online_sample_prompts(iq_online *on, const int32_t *const *prompts, const int *plens, const uint64_t *row_ids,
                              int n) {
    if (n < 1 || on->n_batches >= on->max_batches) return;
    double t0 = iq_now();
    const iq_sampler smp = {on->o.temperature, 0, 1.0f};
    const int V = on->V, S = on->S;
    for (int i = 0; i < n; i++) prefill(on, i, prompts[i], plens[i], row_ids[i]);
    for (int t = 0; t < on->o.max_new_tokens; t++) {
        int nf = 0;
        for (int i = 0; i < n; i++) {
            if (!on->active[i]) continue;
            int32_t tok = iq_sample_next(on->logits + (size_t)i * V, V, &smp, &on->rng[i], on->scratch);
            on->seq[(size_t)i * S + on->len[i]++] = tok;
            if (iq_stop_has(&on->stop, tok)) on->ended[i] = 1;
            if (iq_stop_has(&on->stop, tok) || on->len[i] >= S || t + 1 == on->o.max_new_tokens) {
                on->active[i] = 0; /* ended, or cut at the length limit: bootstraps */
                continue;
            }
            on->slots[nf] = i;
            on->toks[nf++] = tok;
        }
        if (nf == 0) break;
        iq_infer_step(on->inf, on->slots, on->toks, nf, 1, on->step_logits);
        for (int k = 0; k < nf; k++)
            memcpy(on->logits + (size_t)on->slots[k] * V, on->step_logits + (size_t)k * V, (size_t)V * sizeof(float));
    }
    pack_batch(on, n);
    on->sample_ms += (iq_now() - t0) * 1e3;
}

void iq_online_add_batch(iq_online *on, const iq_batch *b) {
    if (on->n_batches >= on->max_batches || b->B > on->B || b->T > on->S) return;
    iq_batch *p = &on->pol[on->n_batches++];
    p->B = b->B;
    p->T = b->T;
    memcpy(p->ids, b->ids, (size_t)b->B * b->T * sizeof *p->ids);
    memcpy(p->flags, b->flags, (size_t)b->B * b->T);
    memcpy(p->lens, b->lens, (size_t)b->B * sizeof *p->lens);
}

static void gather_book(iq_online *on);

void iq_online_refresh(iq_online *on, const iq_order *ord, int rank, int world, long step) {
    iq_online_begin(on, step);
    const iq_dataset *d = ord->d;
    size_t r0, r1;
    for (int mb = 0; iq_order_micro(ord, mb, rank, world, &r0, &r1); mb++) {
        int n = (int)(r1 - r0);
        if (n < 1) continue;
        for (int i = 0; i < n && i < on->B; i++) {
            uint32_t row = ord->step_rows[r0 + (size_t)i];
            on->pp[i] = d->ids + d->row_off[row];
            on->pl[i] = (int)iq_gen_row_prompt_len(d, row);
            on->pid[i] = row;
        }
        iq_online_sample_prompts(on, on->pp, on->pl, on->pid, n < on->B ? n : on->B);
    }
    iq_online_end(on);
}

void iq_online_end(iq_online *on) { gather_book(on); }

// ----------------------------------------------------------------------------------------------------
// the policy pass

void iq_online_backward(iq_online *on, iq_model *m, iq_head *h, const iq_loss_opts *lo, iq_loss_stats *pol) {
    double t0 = iq_now();
    /* a fresh struct: any other term of iq_loss_opts stays off in the policy pass */
    iq_loss_opts po;
    memset(&po, 0, sizeof po);
    po.gamma = lo->gamma;
    po.td_grad = lo->td_grad;
    po.truncation = lo->truncation;
    iq_head_set_value_term(h, on->o.mix, true);
    float inv = 1.0f / (float)(on->n_tokens > 0 ? on->n_tokens : 1.0);
    for (int i = 0; i < on->n_batches; i++) {
        const iq_batch *b = &on->pol[i];
        if (b->B < 1) continue;
        iq_model_forward(m, b->ids, b->B, b->T);
        iq_head_loss(h, iq_model_lnf(m), iq_model_head(m), b->ids, b->flags, b->lens, b->B, b->T, &po, inv,
                     iq_model_dlnf(m), iq_model_head_grad(m), pol, NULL, NULL);
        iq_model_backward(m, b->ids, b->B, b->T);
    }
    iq_head_set_value_term(h, 0.0f, false);
    on->backward_ms = (iq_now() - t0) * 1e3;
}

double iq_online_value_gap(const iq_online *on, const iq_loss_stats *expert, double pol_v_sum, double *sample_len) {
    double np = on->n_tokens > 0 ? on->n_tokens : 1.0, ne = expert->n_sup > 0 ? (double)expert->n_sup : 1.0;
    if (sample_len) *sample_len = on->n_samples > 0 ? on->n_tokens / on->n_samples : 0.0;
    return pol_v_sum / np - expert->v_sum / ne;
}

// ----------------------------------------------------------------------------------------------------
// the sample book: every rank's policy batches as int32 records (the MPI gather and the checkpoint)

static size_t batch_base(const iq_online *on, int i) { return 1 + (size_t)i * (2 + on->B + 2 * (size_t)on->B * on->S); }

static void pack_record(const iq_online *on, int32_t *r) {
    memset(r, 0, on->rec * sizeof *r);
    r[0] = on->n_batches;
    for (int i = 0; i < on->n_batches; i++) {
        const iq_batch *b = &on->pol[i];
        int32_t *x = r + batch_base(on, i), *lens = x + 2, *ids = lens + on->B, *fl = ids + (size_t)on->B * on->S;
        size_t n = (size_t)b->B * b->T;
        x[0] = b->B;
        x[1] = b->T;
        memcpy(lens, b->lens, (size_t)b->B * sizeof *lens);
        memcpy(ids, b->ids, n * sizeof *ids);
        for (size_t k = 0; k < n; k++) fl[k] = b->flags[k];
    }
}

/* Whether a record (from a file) describes batches this run can hold: sizes, lengths, ids and flags in range. */
static bool record_ok(const iq_online *on, const int32_t *r) {
    if (r[0] < 0 || r[0] > on->max_batches) return false;
    for (int i = 0; i < r[0]; i++) {
        const int32_t *x = r + batch_base(on, i), *lens = x + 2, *ids = lens + on->B, *fl = ids + (size_t)on->B * on->S;
        int B = x[0], T = x[1];
        if (B < 0 || B > on->B || T < 1 || T > on->S) return false;
        for (int b = 0; b < B; b++)
            if (lens[b] < 0 || lens[b] > T) return false;
        for (size_t k = 0; k < (size_t)B * T; k++)
            if (ids[k] < 0 || ids[k] >= on->V || (fl[k] & ~(IQ_TOK_SUPERVISED | IQ_TOK_TERMINAL))) return false;
    }
    return true;
}

static void unpack_record(iq_online *on, const int32_t *r) {
    on->n_batches = r[0];
    for (int i = 0; i < on->n_batches; i++) {
        iq_batch *b = &on->pol[i];
        const int32_t *x = r + batch_base(on, i), *lens = x + 2, *ids = lens + on->B, *fl = ids + (size_t)on->B * on->S;
        size_t n = (size_t)x[0] * x[1];
        b->B = x[0];
        b->T = x[1];
        memcpy(b->lens, lens, (size_t)b->B * sizeof *lens);
        memcpy(b->ids, ids, n * sizeof *ids);
        for (size_t k = 0; k < n; k++) b->flags[k] = (uint8_t)fl[k];
    }
}

/* Sampled tokens and samples over every rank's record. */
static void count_book(iq_online *on) {
    on->n_tokens = on->n_samples = 0.0;
    for (int w = 0; w < on->world; w++) {
        const int32_t *r = on->book + (size_t)w * on->rec;
        for (int i = 0; i < r[0]; i++) {
            const int32_t *x = r + batch_base(on, i), *lens = x + 2, *fl = lens + on->B + (size_t)on->B * on->S;
            for (int b = 0; b < x[0]; b++) {
                int c = 0;
                for (int j = 0; j < lens[b]; j++) c += (fl[(size_t)b * x[1] + j] & IQ_TOK_SUPERVISED) != 0;
                on->n_tokens += c;
                on->n_samples += c > 0;
            }
        }
    }
}

/* Every rank's record on every rank: a sum over ranks of a zeroed buffer that each rank fills at its place. */
static void gather_book(iq_online *on) {
    int rank = iq_dist_rank();
    int32_t *mine = on->book + (size_t)rank * on->rec;
    pack_record(on, mine);
    if (on->world > 1) {
        size_t n = (size_t)on->world * on->rec;
        memset(on->gather, 0, n * sizeof *on->gather);
        for (size_t k = 0; k < on->rec; k++) on->gather[(size_t)rank * on->rec + k] = mine[k];
        iq_dist_sum_f64(on->gather, n);
        for (size_t k = 0; k < n; k++) on->book[k] = (int32_t)on->gather[k];
    }
    count_book(on);
}

iq_status iq_online_save(void *ctx, const char *path) {
    const iq_online *on = ctx;
    char rs[32], ws[16], bs[16], ss[16], nb[16];
    snprintf(rs, sizeof rs, "%ld", on->refresh_step);
    snprintf(ws, sizeof ws, "%d", on->world);
    snprintf(bs, sizeof bs, "%d", on->B);
    snprintf(ss, sizeof ss, "%d", on->S);
    snprintf(nb, sizeof nb, "%d", on->max_batches);
    const char *meta[12] = {"format", "iqtrain-online-samples", "refresh_step", rs, "world_size", ws,
                            "max_batch", bs, "max_seq", ss, "batches", nb};
    iq_st_raw_entry e = {"book", IQ_DT_I32, 2, {on->world, (int64_t)on->rec}, on->book};
    return iq_st_write_raw(path, &e, 1, meta, 6);
}

/* A metadata value of the samples file as an integer, or -2 when absent or not a number. */
static long meta_long(const iq_safetensors *st, const char *key) {
    const char *v = iq_st_metadata(st, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : -2;
    return v && *v && !*end ? x : -2;
}

/* Rank 0: reads the book. *fits = false (and a warning) when it was written by another layout of ranks. */
static iq_status read_book(iq_online *on, const char *dir, long refresh_step, int32_t *fits) {
    char *p = iq_path_join(dir, IQ_ONLINE_SAMPLES_FILE);
    iq_safetensors *st = NULL;
    iq_status s = iq_st_open(p, &st);
    if (s == IQ_ENOINPUT) s = iq_fail(IQ_EDATA, "%s: missing (the checkpoint of an --online-mix run holds its samples)", p);
    const iq_st_tensor *t = s ? NULL : iq_st_find(st, "book");
    if (!s && meta_long(st, "refresh_step") != refresh_step)
        s = iq_fail(IQ_EDATA, "%s: refresh_step %ld, trainer_state.json says %ld", p, meta_long(st, "refresh_step"),
                    refresh_step);
    *fits = !s && meta_long(st, "world_size") == on->world && meta_long(st, "max_batch") == on->B &&
            meta_long(st, "max_seq") == on->S && meta_long(st, "batches") == on->max_batches;
    if (!s && *fits && (!t || t->dtype != IQ_DT_I32 || t->ndim != 2 || t->shape[0] != on->world || t->shape[1] != (int64_t)on->rec))
        s = iq_fail(IQ_EDATA, "%s: no int32 tensor \"book\" of shape [%d, %zu]", p, on->world, on->rec);
    if (!s && *fits) s = iq_st_read_raw(st, t, on->book);
    for (int w = 0; !s && *fits && w < on->world; w++)
        if (!record_ok(on, on->book + (size_t)w * on->rec))
            s = iq_fail(IQ_EDATA, "%s: the samples of rank %d do not fit this run (sizes, ids or flags out of range)", p, w);
    if (!s && !*fits)
        iq_warn("%s was written by another layout of MPI ranks: new samples are drawn at the resumed step", p);
    iq_st_close(st);
    free(p);
    return s;
}

iq_status iq_online_load(iq_online *on, const char *dir, long refresh_step) {
    on->n_batches = 0;
    on->refresh_step = -1; /* nothing loaded: the next step samples */
    if (refresh_step < 0) return IQ_OK; /* the same on every rank (the trainer state is broadcast) */
    int32_t fits = 0;
    iq_status s = IQ_OK;
    if (iq_dist_rank() == 0 && dir) s = read_book(on, dir, refresh_step, &fits);
    s = (iq_status)iq_dist_agree((int)s);
    if (s) return s;
    iq_dist_bcast(&fits, sizeof fits);
    if (!fits) return IQ_OK;
    iq_dist_bcast(on->book, (size_t)on->world * on->rec * sizeof *on->book);
    unpack_record(on, on->book + (size_t)iq_dist_rank() * on->rec);
    count_book(on);
    on->refresh_step = refresh_step;
    return IQ_OK;
}
