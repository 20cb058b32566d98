/* bench.c — tokenizer throughput. */
#include "iqtrain/bench.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/unicode.h"

/* Chunk boundaries: after a '\n' between an ASCII letter or digit and a non-space code point. The
 * '\n' is then a whole piece both in the full text (\s+ before a non-space) and at the end of a chunk
 * (\s+(?!\S) at the end), and the next piece starts after it either way; for Llama 3's and Qwen2's
 * regexes too, which join '\n' to a preceding punctuation run (so that is no boundary). */
static size_t safe_cut(const char *s, size_t len, size_t from) {
    if (from == 0) from = 1;
    for (size_t i = from; i + 1 < len; i++) {
        char c = s[i - 1];
        if (s[i] != '\n' || !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) continue;
        uint32_t cp;
        iq_utf8_decode((const uint8_t *)s + i + 1, len - i - 1, &cp);
        if (iq_uc_class(cp) != IQ_UC_SPACE) return i + 1;
    }
    return len;
}

void iq_tok_encode_parallel(const iq_tokenizer *t, const char *text, size_t len, int threads, iq_ids *out) {
    if (threads <= 1 || len < (1 << 16)) {
        iq_tok_encode(t, text, len, out);
        return;
    }
    size_t n_chunks = (size_t)threads * 8, target = len / n_chunks + 1;
    size_t *cut = iq_xmalloc((n_chunks + 2) * sizeof *cut);
    size_t nc = 0;
    cut[nc++] = 0;
    while (cut[nc - 1] < len && nc <= n_chunks) {
        size_t c = safe_cut(text, len, cut[nc - 1] + target);
        cut[nc++] = c;
    }
    if (cut[nc - 1] < len) cut[nc++] = len;
    size_t parts = nc - 1;
    iq_ids *res = iq_xcalloc(parts, sizeof *res);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t k = 0; k < parts; k++) iq_tok_encode(t, text + cut[k], cut[k + 1] - cut[k], &res[k]);
    for (size_t k = 0; k < parts; k++) {
        iq_ids_reserve(out, res[k].len);
        memcpy(out->v + out->len, res[k].v, res[k].len * sizeof *res[k].v);
        out->len += res[k].len;
        iq_ids_free(&res[k]);
    }
    free(res);
    free(cut);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

iq_status iq_bench_tokenizer(const iq_tokenizer *t, const char *text, size_t len, int threads, int repeats,
                             iq_bench_tok_result *out) {
    if (repeats < 1) repeats = 1;
    if (threads < 1) threads = 1;
    double *times = iq_xmalloc((size_t)repeats * sizeof *times);
    iq_ids ids = {0};
    iq_tok_encode_parallel(t, text, len, threads, &ids); /* warm-up */
    size_t tokens = ids.len;
    for (int r = 0; r < repeats; r++) {
        ids.len = 0;
        double t0 = iq_now();
        iq_tok_encode_parallel(t, text, len, threads, &ids);
        times[r] = iq_now() - t0;
        if (ids.len != tokens) {
            free(times);
            iq_ids_free(&ids);
            return iq_fail(IQ_EINTERNAL, "tokenizer benchmark: repeat %d gave %zu tokens, not %zu", r, ids.len, tokens);
        }
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    out->bytes = len;
    out->tokens = tokens;
    out->threads = threads;
    out->repeats = repeats;
    out->seconds = times[repeats / 2];
    out->min_seconds = times[0];
    out->mb_per_s = out->seconds > 0 ? (double)len / out->seconds / 1e6 : 0;
    free(times);
    iq_ids_free(&ids);
    return IQ_OK;
}

char *iq_bench_make_text(size_t len, size_t *out_len) {
    static const char *words[] = {"the", "model", "learns", "from", "expert", "demonstrations", "and", "its",
                                  "reward", "is", "implicit", "in", "a", "soft", "value", "function", "we",
                                  "don't", "it's", "they're", "Question:", "Answer:", "total", "apples", "of",
                                  "café", "naïve", "über", "日本語", "données", "функция", "πρόβλημα"};
    const size_t nw = sizeof words / sizeof *words;
    iq_buf b = {0};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    while (b.len < len) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned r = (unsigned)(x >> 33);
        if (r % 11 == 0) iq_buf_printf(&b, " %u", r % 100000);
        else if (r % 17 == 0) iq_buf_append(&b, ".\n", 2);
        else if (r % 23 == 0) iq_buf_append(&b, ", ", 2);
        else {
            if (b.len && b.data[b.len - 1] != '\n') iq_buf_putc(&b, ' ');
            const char *w = words[r % nw];
            iq_buf_append(&b, w, strlen(w));
        }
    }
    *out_len = b.len;
    iq_buf_cstr(&b);
    return b.data;
}

// ----------------------------------------------------------------------------------------------------
// training steps

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "iqtrain/batch.h"
#include "iqtrain/data.h"
#include "iqtrain/dist.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/matmul.h"
#include "iqtrain/optim.h"
#include "iqtrain/rng.h"
#include "iqtrain/step.h"

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

double iq_bench_sgemm_peak(int n) {
    size_t nn = (size_t)n * n;
    float *a = iq_xmalloc(nn * sizeof *a), *b = iq_xmalloc(nn * sizeof *b), *c = iq_xmalloc(nn * sizeof *c);
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    iq_sgemm(false, false, n, n, n, 1.0f, a, b, 0.0f, c); /* warm-up */
    double t[5];
    for (int k = 0; k < 5; k++) {
        double t0 = iq_now();
        iq_sgemm(false, false, n, n, n, 1.0f, a, b, 0.0f, c);
        t[k] = iq_now() - t0;
    }
    qsort(t, 5, sizeof *t, cmp_double);
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)nn / t[2] / 1e9;
}

/* The "cpu" line of /proc/stat: busy and total jiffies over all CPUs; false when it cannot be read. */
static bool cpu_jiffies(unsigned long long *busy, unsigned long long *total) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    unsigned long long v[8] = {0}; /* user nice system idle iowait irq softirq steal */
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) return false;
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    *busy = *total - v[3] - v[4];
    return true;
}

double iq_bench_cpu_busy(double seconds) {
    unsigned long long b0, t0, b1, t1;
    if (!cpu_jiffies(&b0, &t0)) return -1.0;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    if (!cpu_jiffies(&b1, &t1) || t1 <= t0) return -1.0;
    double busy = (double)((long long)(b1 - b0)) / (double)(t1 - t0); /* idle can step back on tickless kernels */
    return busy < 0.0 ? 0.0 : busy > 1.0 ? 1.0 : busy;
}

/* 6 x tokens x (the blocks' matrices + the LM head) + 6 B T^2 (query width) L for causal attention's four
 * products (the same count as before for GPT-2: its matrices are 12 C^2 per layer). */
static double train_flops(const iq_model_config *c, int batch, int T) {
    int n = iq_model_config_tensors(c, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_config_tensors(c, refs);
    double mat = 0.0;
    for (int i = 0; i < n; i++)
        if (refs[i].decay) mat += (double)refs[i].numel; /* weight decay: exactly the blocks' matrices */
    free(refs);
    double tokens = (double)batch * T, qw = c->head_dim ? (double)c->n_head * c->head_dim : (double)c->n_embd;
    return 6.0 * tokens * (mat + (double)c->vocab * c->n_embd) + 6.0 * batch * (double)T * T * qw * c->n_layer;
}

/* The benchmark's batch: every rank's share of `batch` rows of random tokens, all supervised but the first. */
static void bench_batch(const iq_bench_train_opts *o, int B, int T, int vocab, int rank, iq_batch *batch) {
    iq_rng rng;
    iq_rng_seed(&rng, o->seed, 77);
    batch->B = B;
    batch->T = T;
    for (int b = 0; b < o->batch; b++) {
        int mine = b / B == rank, lb = b % B;
        if (mine) batch->lens[lb] = T;
        for (int t = 0; t < T; t++) {
            int32_t id = (int32_t)iq_rng_below(&rng, (uint64_t)vocab);
            if (!mine) continue;
            batch->ids[lb * T + t] = id;
            batch->flags[lb * T + t] = (uint8_t)(t == 0 ? 0 : IQ_TOK_SUPERVISED);
        }
        if (mine) batch->flags[lb * T + T - 1] |= IQ_TOK_TERMINAL;
    }
}

#include "iqtrain/online.h"

/* Online IQLearn in the benchmark: one completion per row of the batch, from its first T/2 tokens. */
static iq_online *bench_online(const iq_bench_train_opts *o, iq_model *m, const iq_batch *batch) {
    if (o->online_mix <= 0) return NULL;
    int P = batch->T / 2 > 0 ? batch->T / 2 : 1;
    iq_online_opts oo = {o->online_mix, 1, 1.0f, batch->T - P, o->seed};
    return iq_online_create(m, &oo, 1, (iq_stop_ids){{iq_model_cfg(m)->vocab - 1, -1}});
}

static void bench_sample(iq_online *on, const iq_batch *batch, long step) {
    int n = batch->B, P = batch->T / 2 > 0 ? batch->T / 2 : 1;
    const int32_t **pp = iq_xmalloc((size_t)n * sizeof *pp);
    int *pl = iq_xmalloc((size_t)n * sizeof *pl);
    uint64_t *id = iq_xmalloc((size_t)n * sizeof *id);
    for (int b = 0; b < n; b++) {
        pp[b] = batch->ids + (size_t)b * batch->T;
        pl[b] = P;
        id[b] = (uint64_t)b;
    }
    iq_online_begin(on, step);
    iq_online_sample_prompts(on, pp, pl, id, n);
    iq_online_end(on);
    free(pp);
    free(pl);
    free(id);
}

iq_status iq_bench_train(const iq_bench_train_opts *o, iq_bench_train_result *r) {
    memset(r, 0, sizeof *r);
    /* under MPI each rank takes batch / world of the rows, and the gradients are summed over ranks */
    int world = iq_dist_world(), rank = iq_dist_rank();
    if (o->batch % world != 0)
        return iq_fail(IQ_EUSAGE, "--batch-size %d is not a multiple of the %d MPI ranks", o->batch, world);
    int B = o->batch / world, T = o->seq, steps = o->steps < 2 ? 2 : o->steps;
    iq_cpu_peak_measure(iq_get_threads(), &r->cpu_peak);
    iq_model *m = NULL;
    iq_status st = iq_model_create(&o->cfg, IQ_MODEL_TRAIN, B, T, &m);
    if (st) return st;
    iq_model_init(m, o->seed);
    const iq_model_config *c = iq_model_cfg(m);
    iq_head *h = iq_head_create(B * T, c->n_embd, c->vocab, 0);
    iq_adamw *opt = iq_adamw_create(m);
    iq_batch batch;
    iq_batch_init(&batch, B, T);
    bench_batch(o, B, T, c->vocab, rank, &batch);
    r->peak_gflops = iq_bench_sgemm_peak(1024);
    iq_online *on = bench_online(o, m, &batch);
    iq_step_opts so = {.loss = {o->lambda, 0.99f, IQ_TD_FULL, IQ_TRUNC_BOOTSTRAP, 0.0f, 0.0f},
                       .adamw = {1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f}, .lr = 1e-4f, .grad_clip = 1.0f, .online = on};
    double *ms = iq_xmalloc((size_t)steps * 3 * sizeof *ms), *sms = ms + steps, *pms = ms + 2 * steps;
    for (int s = 0; s < steps && !st; s++) {
        if (on) bench_sample(on, &batch, s);
        double t0 = iq_now();
        bool given = false;
        iq_step_source src = {iq_step_one_batch, &given, (long)o->batch * (T - 1)}; /* N of the global batch */
        iq_step_result res;
        st = iq_train_step(m, h, opt, &batch, &src, &so, &res);
        ms[s] = (iq_now() - t0) * 1e3;
        if (s == 0) r->loss_first = res.loss;
        r->loss_last = res.loss;
        if (on) {
            sms[s] = iq_online_sample_ms(on);
            pms[s] = iq_online_backward_ms(on);
            r->sample_len = res.online_sample_len;
        }
    }
    if (on) {
        qsort(sms + 1, (size_t)steps - 1, sizeof *ms, cmp_double);
        qsort(pms + 1, (size_t)steps - 1, sizeof *ms, cmp_double);
        r->sample_ms = sms[1 + (steps - 1) / 2];
        r->policy_ms = pms[1 + (steps - 1) / 2];
    }
    if (st) st = iq_fail(st, "the benchmark diverged");
    r->first_step_ms = ms[0];
    qsort(ms + 1, (size_t)steps - 1, sizeof *ms, cmp_double);
    r->ms_per_step = ms[1 + (steps - 1) / 2];
    r->flops_per_step = train_flops(c, o->batch, T);
    double tokens = (double)o->batch * T;
    r->tokens_per_s = tokens / (r->ms_per_step / 1e3);
    r->gflops = r->flops_per_step / (r->ms_per_step / 1e3) / 1e9;
    r->peak_fraction = r->gflops / (r->peak_gflops * world); /* every rank measured its own peak */
    r->world = world;
    r->peak_rss_mb = peak_rss_mb();
    free(ms);
    iq_online_free(on);
    iq_batch_free(&batch);
    iq_adamw_free(opt);
    iq_head_free(h);
    iq_model_free(m);
    return st;
}

// ----------------------------------------------------------------------------------------------------
// generation

#include "iqtrain/infer.h"
#include "iqtrain/sample.h"

iq_status iq_bench_generate(const iq_bench_gen_opts *o, iq_bench_gen_result *r) {
    memset(r, 0, sizeof *r);
    int B = o->batch, P = o->prompt_len, N = o->new_tokens, reps = o->repeats < 1 ? 1 : o->repeats;
    if (P + N > o->cfg.ctx)
        return iq_fail(IQ_EUSAGE, "prompt %d + new tokens %d exceed the context %d", P, N, o->cfg.ctx);
    iq_model *m = NULL;
    iq_status st = iq_model_create(&o->cfg, IQ_MODEL_INFER, 1, 2, &m);
    if (st) return st;
    iq_model_init(m, o->seed);
    int V = o->cfg.vocab;
    iq_infer *inf = iq_infer_create(m, B, P + N > B * P ? P + N : B * P);
    int32_t *tok = iq_xmalloc((size_t)B * P * sizeof *tok);
    int *slots = iq_xmalloc((size_t)B * sizeof *slots);
    float *logits = iq_xmalloc((size_t)B * V * sizeof *logits);
    iq_rng rng;
    iq_rng_seed(&rng, o->seed, 78);
    double *secs = iq_xmalloc((size_t)(reps + 1) * sizeof *secs), *pre = iq_xmalloc((size_t)(reps + 1) * sizeof *pre);
    for (int k = 0; k <= reps; k++) { /* k = 0 warms up */
        for (int b = 0; b < B; b++) {
            slots[b] = b;
            iq_infer_reset(inf, b);
            for (int t = 0; t < P; t++) tok[b * P + t] = (int32_t)iq_rng_below(&rng, (uint64_t)V);
        }
        double t0 = iq_now();
        iq_infer_step(inf, slots, tok, B, P, logits);
        pre[k] = (iq_now() - t0) * 1e3;
        const iq_sampler greedy = {0.0f, 0, 1.0f};
        for (int i = 0; i < N; i++) {
            for (int b = 0; b < B; b++) tok[b] = iq_sample_next(logits + (size_t)b * V, V, &greedy, NULL, NULL);
            if (i + 1 < N) iq_infer_step(inf, slots, tok, B, 1, logits);
        }
        secs[k] = iq_now() - t0;
    }
    qsort(secs + 1, (size_t)reps, sizeof *secs, cmp_double);
    qsort(pre + 1, (size_t)reps, sizeof *pre, cmp_double);
    r->seconds = secs[1 + reps / 2];
    r->prefill_ms = pre[1 + reps / 2];
    r->tokens_per_s = (double)B * N / r->seconds;
    r->peak_rss_mb = peak_rss_mb();
    free(secs);
    free(pre);
    free(tok);
    free(slots);
    free(logits);
    iq_infer_free(inf);
    iq_model_free(m);
    return IQ_OK;
}
