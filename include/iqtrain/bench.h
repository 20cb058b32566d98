/* bench.h — benchmarks behind `iqtrain bench` (tokenizer now; training and generation join later). */
#ifndef IQTRAIN_BENCH_H
#define IQTRAIN_BENCH_H

#include <stddef.h>

#include "iqtrain/cpu_peak.h"
#include "iqtrain/model.h"
#include "iqtrain/tokenizer.h"

typedef struct {
    size_t bytes;       /* input size */
    size_t tokens;      /* ids produced */
    int threads;
    int repeats;
    double seconds;     /* median over repeats */
    double mb_per_s;    /* bytes / seconds / 1e6 */
    double min_seconds; /* best repeat */
} iq_bench_tok_result;

/* Encodes `text` `repeats` times (after one warm-up) with `threads` threads and reports the median.
 * With threads > 1 the text is cut into chunks only where a pre-token boundary is certain (after a
 * '\n' followed by a non-space), so the ids equal a single-threaded encode. */
iq_status iq_bench_tokenizer(const iq_tokenizer *t, const char *text, size_t len, int threads, int repeats,
                             iq_bench_tok_result *out);

/* Deterministic English-like text of about `len` bytes (words, numbers, punctuation, newlines). */
char *iq_bench_make_text(size_t len, size_t *out_len);

/* Parallel encode used by the benchmark: same ids as iq_tok_encode. */
void iq_tok_encode_parallel(const iq_tokenizer *t, const char *text, size_t len, int threads, iq_ids *out);


/* ---------------------------------------------------------------- training steps */

typedef struct {
    iq_model_config cfg;
    int batch, seq, steps;
    float lambda;
    uint64_t seed;
    float online_mix;       /* > 0: online IQLearn (online.h): each step first samples a completion for every row
                             * (prompt: its first seq/2 tokens, up to seq - seq/2 new tokens, temperature 1), then
                             * trains with the value term over the samples */
} iq_bench_train_opts;

typedef struct {
    double first_step_ms;   /* step 0 (page faults, first-touch) */
    double ms_per_step;     /* median of the other steps */
    double tokens_per_s;
    double gflops;          /* achieved, from the FLOP count below */
    double flops_per_step;  /* 6 x tokens x (block matmul params + LM head) + causal attention */
    double peak_gflops;     /* sgemm peak measured at start-up with the same threads */
    iq_cpu_peak cpu_peak;   /* the arithmetic peaks (fp32 FMA, bf16 dot products), same threads */
    double peak_fraction;
    double peak_rss_mb;
    double loss_first, loss_last;
    int world;              /* MPI ranks sharing each batch (1 without MPI) */
    /* with online_mix > 0 (medians over the steps after step 0): */
    double sample_ms;       /* sampling the completions (KV-cache decoding), not part of ms_per_step */
    double policy_ms;       /* the policy pass inside the step (forward + head + backward over the samples) */
    double sample_len;      /* mean sampled tokens per row */
} iq_bench_train_result;

/* Full training steps (forward, IQLearn loss, backward, AdamW) of a random-init model on random tokens.
 * Under MPI the batch is split across ranks and the gradients summed (data parallel, as iq_train does). */
iq_status iq_bench_train(const iq_bench_train_opts *o, iq_bench_train_result *r);
/* Achieved sgemm GFLOP/s on n x n x n (median of a few runs). */
double iq_bench_sgemm_peak(int n);

/* The fraction of the machine's CPU time spent busy (user, system, ...: everything but idle and iowait), over
 * all its CPUs, during the next `seconds`, from /proc/stat; this process sleeps meanwhile, so it is what other
 * processes leave of the machine. -1 where /proc/stat cannot be read. */
double iq_bench_cpu_busy(double seconds);

/* ---------------------------------------------------------------- generation */
typedef struct {
    iq_model_config cfg;
    int batch, prompt_len, new_tokens, repeats;
    uint64_t seed;
} iq_bench_gen_opts;

typedef struct {
    double seconds;      /* median over repeats of one whole generation (prefill + decode) */
    double tokens_per_s; /* batch * new_tokens / seconds */
    double prefill_ms;   /* median prefill time */
    double peak_rss_mb;
} iq_bench_gen_result;

/* Greedy decoding with the KV cache (iq_infer): batch prompts of prompt_len random tokens, prefilled in
 * one step, then new_tokens decode steps of the whole batch; the same work as bench_torch.py --what generate. */
iq_status iq_bench_generate(const iq_bench_gen_opts *o, iq_bench_gen_result *r);

#endif
