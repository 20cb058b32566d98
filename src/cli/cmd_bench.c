/* cmd_bench.c — `iqtrain bench`: throughput measurements. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/bench.h"
#include "iqtrain/dist.h"
#include "iqtrain/log.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/tokenizer.h"

static const opt_spec OPTS[] = {
    {"what", OPT_STR, "train", "WHAT", "what to measure", "train|generate|tokenizer", NULL},
    {"tokenizer", OPT_STR, NULL, "PATH", "tokenizer for --what tokenizer (required there)", NULL, NULL},
    {"preset", OPT_STR, "small", "P", "model size for --what train", "tiny|small|gpt2", NULL},
    {"model", OPT_STR, NULL, "DIR", "the shape of a model folder's config.json (any family; random weights, no tokenizer)",
     NULL, NULL},
    {"n-layer", OPT_INT, NULL, "N", "override the preset's layers", NULL, "[1,256]"},
    {"n-head", OPT_INT, NULL, "N", "override the preset's heads", NULL, "[1,inf)"},
    {"n-embd", OPT_INT, NULL, "N", "override the preset's width", NULL, "[1,16384]"},
    {"ctx", OPT_INT, NULL, "N", "override the preset's positions", NULL, "[2,65536]"},
    {"vocab-size", OPT_INT, "8192", "V", "vocabulary of the random model", NULL, "[2,4000000]"},
    {"batch-size", OPT_INT, "8", "B", "rows per step (generate: prompts decoded together)", NULL, "[1,inf)"},
    {"seq-len", OPT_INT, "128", "T", "tokens per row", NULL, "[1,inf)"},
    {"steps", OPT_INT, "10", "N", "training steps (step 0 reported separately); generate: timed repeats", NULL, "[1,inf)"},
    {"prompt-len", OPT_INT, "16", "N", "generate: random prompt tokens per row", NULL, NULL},
    {"new-tokens", OPT_INT, "64", "N", "generate: new tokens per row (greedy, KV cache)", NULL, NULL},
    {"lambda", OPT_FLOAT, "0.1", "L", "TD weight", NULL, NULL},
    {"online-mix", OPT_FLOAT, "0", "A", "train: online IQLearn, sampling a completion per row every step (prompt: the "
     "first seq-len/2 tokens)", NULL, "[0,inf)"},
    OPT_SPEC_MATMUL_BACKEND,
    OPT_SPEC_MATMUL_PRECISION,
    {"input", OPT_STR, NULL, "FILE", "text to encode (default: 8 MB of generated English-like text)", NULL, NULL},
    OPT_SPEC_THREADS,
    {"repeat", OPT_INT, "5", "N", "timed repeats after one warm-up; the median is reported", NULL, "[1,inf)"},
    {"json", OPT_FLAG, NULL, NULL, "print one JSON object on stdout", NULL, NULL},
};

static int model_config(opt_set *o, iq_model_config *cfg) {
    const char *names[5] = {"n-layer", "n-head", "n-embd", "ctx", "vocab-size"};
    if (opt_is_set(o, "model")) {
        for (int i = 0; i < 5; i++)
            if (strcmp(opt_source(o, names[i]), "default") != 0 || strcmp(opt_source(o, "preset"), "default") != 0) {
                cli_error("--model brings its own shape: --preset, --n-layer, --n-head, --n-embd, --ctx and --vocab-size "
                          "conflict with it");
                return IQ_EUSAGE;
            }
        iq_status st = iq_model_config_read(opt_str(o, "model"), cfg, NULL);
        if (st) cli_error("%s", iq_last_error());
        return (int)st;
    }
    int over[5] = {0};
    for (int i = 0; i < 4; i++) over[i] = opt_is_set(o, names[i]) ? (int)opt_int(o, names[i]) : 0;
    if (iq_model_config_build(NULL, opt_str(o, "preset"), over, (int)opt_int(o, "vocab-size"), cfg)) {
        cli_error("%s", iq_last_error());
        return IQ_EUSAGE;
    }
    return 0;
}

/* Configures the matmul backend and precision from the options; the precision's name, NULL on a usage error. */
static const char *precision(opt_set *o) {
    if (iq_matmul_configure(opt_str(o, "matmul-backend"), opt_str(o, "matmul-precision"))) {
        cli_error("%s", iq_last_error());
        return NULL;
    }
    return iq_matmul_precision_name();
}

/* What other processes left of the machine before the run (iq_bench_cpu_busy), -1 unknown: in every JSON object,
 * and a warning when they kept it busy, as a loaded machine's numbers are low and noisy. */
static double cpu_busy_before = -1.0;
#define BUSY_WARN 0.25

static void probe_cpu_busy(void) {
    cpu_busy_before = iq_bench_cpu_busy(0.3);
    if (cpu_busy_before > BUSY_WARN)
        iq_warn("the CPUs were %.0f%% busy with other processes just before this run: the numbers will be "
                "low and noisy; measure on a quiet machine",
                100 * cpu_busy_before);
}

/* The fields every bench object starts with. */
static cJSON *json_begin(const char *what, const iq_model_config *c, int threads, const char *prec) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "what", what);
    cJSON_AddNumberToObject(j, "cpu_busy_before", cpu_busy_before);
    cJSON_AddStringToObject(j, "model_type", iq_model_arch_name(c));
    cJSON_AddNumberToObject(j, "parameters", (double)iq_model_config_num_params(c));
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "vocab", c->vocab);
    cJSON_AddNumberToObject(j, "threads", threads);
    cJSON_AddStringToObject(j, "precision", prec);
    iq_matmul_add_facts(j); /* backend, onednn_isa, openblas_core, ... */
    return j;
}

/* Prints the object as one line on stdout and frees it. */
static void json_end(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(j);
}

static int run_generate(opt_set *o, int threads) {
    iq_bench_gen_opts g = {0};
    int rc = model_config(o, &g.cfg);
    if (rc) return rc;
    g.batch = (int)opt_int(o, "batch-size");
    g.prompt_len = (int)opt_int(o, "prompt-len");
    g.new_tokens = (int)opt_int(o, "new-tokens");
    g.repeats = (int)opt_int(o, "steps");
    g.seed = 1;
    if (g.batch < 1 || g.batch > 4096 || g.prompt_len < 1 || g.new_tokens < 1 || g.repeats < 1 || g.repeats > 1000) {
        cli_error("--batch-size in 1..4096, --prompt-len and --new-tokens >= 1, --steps in 1..1000 please");
        return IQ_EUSAGE;
    }
    const char *prec = precision(o);
    if (!prec) return IQ_EUSAGE;
    iq_bench_gen_result r;
    iq_status st = iq_bench_generate(&g, &r);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    if (opt_flag(o, "json")) {
        cJSON *j = json_begin("generate", &g.cfg, threads, prec);
        cJSON_AddNumberToObject(j, "batch", g.batch);
        cJSON_AddNumberToObject(j, "prompt_len", g.prompt_len);
        cJSON_AddNumberToObject(j, "new_tokens", g.new_tokens);
        cJSON_AddNumberToObject(j, "seconds", r.seconds);
        cJSON_AddNumberToObject(j, "prefill_ms", r.prefill_ms);
        cJSON_AddNumberToObject(j, "tokens_per_s", r.tokens_per_s);
        cJSON_AddNumberToObject(j, "peak_rss_mb", r.peak_rss_mb);
        json_end(j);
    } else {
        printf("generate L%d H%d C%d V%d, %d prompt%s of %d tokens + %d new (greedy, KV cache), %d thread%s: %.0f tok/s "
               "(%.3f s per generation, prefill %.1f ms), peak RSS %.0f MB\n",
               g.cfg.n_layer, g.cfg.n_head, g.cfg.n_embd, g.cfg.vocab, g.batch, g.batch == 1 ? "" : "s", g.prompt_len,
               g.new_tokens, threads, threads == 1 ? "" : "s", r.tokens_per_s, r.seconds, r.prefill_ms, r.peak_rss_mb);
    }
    return 0;
}

/* The arithmetic peaks (cpu_peak.h): null where the CPU has no such instruction. */
static void add_cpu_peak(cJSON *j, const iq_cpu_peak *p) {
    if (p->fp32_fma_gflops > 0) cJSON_AddNumberToObject(j, "fp32_fma_peak_gflops", p->fp32_fma_gflops);
    else cJSON_AddNullToObject(j, "fp32_fma_peak_gflops");
    if (p->bf16_dot_gflops > 0) cJSON_AddNumberToObject(j, "bf16_dot_peak_gflops", p->bf16_dot_gflops);
    else cJSON_AddNullToObject(j, "bf16_dot_peak_gflops");
}

static void print_cpu_peak(const iq_cpu_peak *p, double gflops, int threads) {
    if (p->fp32_fma_gflops <= 0) return;
    printf("arithmetic peak (%d thread%s, registers only): fp32 FMA %.1f GFLOP/s (%d-bit), the step %.0f%% of it",
           threads, threads == 1 ? "" : "s", p->fp32_fma_gflops, p->fp32_fma_bits, 100 * gflops / p->fp32_fma_gflops);
    if (p->bf16_dot_gflops > 0)
        printf("; bf16 dot products %.1f GFLOP/s = %.2fx fp32's", p->bf16_dot_gflops, p->bf16_dot_gflops / p->fp32_fma_gflops);
    printf("\n");
}

static int run_train(opt_set *o, int threads) {
    iq_bench_train_opts b = {0};
    int rc = model_config(o, &b.cfg);
    if (rc) return rc;
    b.batch = (int)opt_int(o, "batch-size");
    b.seq = (int)opt_int(o, "seq-len");
    b.steps = (int)opt_int(o, "steps");
    b.lambda = (float)opt_float(o, "lambda");
    b.online_mix = (float)opt_float(o, "online-mix");
    b.seed = 1;
    if (b.batch < 1 || b.seq < 2 || b.seq > b.cfg.ctx || b.steps < 2 || b.steps > 100000) {
        cli_error("--batch-size >= 1, --seq-len in 2..ctx (%d) and --steps >= 2 please", b.cfg.ctx);
        return IQ_EUSAGE;
    }
    const char *prec = precision(o);
    if (!prec) return IQ_EUSAGE;
    iq_bench_train_result r;
    iq_status st = iq_bench_train(&b, &r);
    if (st) {
        cli_error("%s", iq_last_error());
        return st == IQ_EUSAGE ? IQ_EUSAGE : st;
    }
    if (iq_dist_rank() != 0) return 0; /* rank 0 reports */
    if (opt_flag(o, "json")) {
        cJSON *j = json_begin("train", &b.cfg, threads, prec);
        cJSON_AddNumberToObject(j, "mpi_ranks", r.world);
        cJSON_AddNumberToObject(j, "batch", b.batch);
        cJSON_AddNumberToObject(j, "seq_len", b.seq);
        cJSON_AddNumberToObject(j, "lambda", b.lambda);
        cJSON_AddNumberToObject(j, "tokens_per_s", r.tokens_per_s);
        cJSON_AddNumberToObject(j, "ms_per_step", r.ms_per_step);
        cJSON_AddNumberToObject(j, "first_step_ms", r.first_step_ms);
        cJSON_AddNumberToObject(j, "gflops", r.gflops);
        cJSON_AddNumberToObject(j, "peak_gflops", r.peak_gflops);
        cJSON_AddNumberToObject(j, "peak_fraction", r.peak_fraction);
        add_cpu_peak(j, &r.cpu_peak);
        cJSON_AddNumberToObject(j, "peak_rss_mb", r.peak_rss_mb);
        cJSON_AddNumberToObject(j, "loss_first", r.loss_first);
        cJSON_AddNumberToObject(j, "loss_last", r.loss_last);
        if (b.online_mix > 0) {
            cJSON_AddNumberToObject(j, "online_mix", b.online_mix);
            cJSON_AddNumberToObject(j, "sample_ms", r.sample_ms);
            cJSON_AddNumberToObject(j, "policy_ms", r.policy_ms);
            cJSON_AddNumberToObject(j, "sample_len", r.sample_len);
        }
        json_end(j);
    } else {
        if (r.world > 1) printf("%d MPI ranks x ", r.world);
        printf("train %s L%d H%d C%d V%d, B=%d T=%d, %d thread%s: %.1f ms/step (step 0: %.1f ms), %.0f tok/s, %.1f GFLOP/s "
               "= %.0f%% of the sgemm peak %.1f, peak RSS %.0f MB\n",
               iq_model_arch_name(&b.cfg), b.cfg.n_layer, b.cfg.n_head, b.cfg.n_embd, b.cfg.vocab, b.batch, b.seq, threads, threads == 1 ? "" : "s",
               r.ms_per_step, r.first_step_ms, r.tokens_per_s, r.gflops, 100 * r.peak_fraction, r.peak_gflops, r.peak_rss_mb);
        print_cpu_peak(&r.cpu_peak, r.gflops / r.world, threads);
        if (b.online_mix > 0)
            printf("online IQLearn (alpha %g): sampling %.1f ms per step (%.1f new tokens per row, KV cache) + the update "
                   "%.1f ms, of which the policy pass %.1f ms: sampling is %.2fx the update\n",
                   (double)b.online_mix, r.sample_ms, r.sample_len, r.ms_per_step, r.policy_ms,
                   r.ms_per_step > 0 ? r.sample_ms / r.ms_per_step : 0.0);
    }
    return 0;
}

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    int threads = opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads();
    const char *what = opt_str(o, "what");
    bool tokenizer = strcmp(what, "train") != 0 && strcmp(what, "generate") != 0;
    if (tokenizer && !opt_is_set(o, "tokenizer")) {
        cli_error("bench --what tokenizer needs --tokenizer PATH");
        return IQ_EUSAGE;
    }
    probe_cpu_busy();
    if (!tokenizer) {
        iq_set_threads(threads);
        return what[0] == 't' ? run_train(o, threads) : run_generate(o, threads);
    }
    iq_tokenizer *tok;
    int rc = cli_load_tokenizer(opt_str(o, "tokenizer"), &tok);
    if (rc) return rc;
    char *text;
    size_t len;
    if (opt_is_set(o, "input")) {
        iq_status st = iq_read_file(opt_str(o, "input"), &text, &len);
        if (st) {
            cli_error("%s", iq_last_error());
            iq_tok_free(tok);
            return st;
        }
    } else {
        text = iq_bench_make_text(8u << 20, &len);
    }
    iq_bench_tok_result r;
    iq_status st = iq_bench_tokenizer(tok, text, len, threads, (int)opt_int(o, "repeat"), &r);
    free(text);
    iq_tok_free(tok);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    if (opt_flag(o, "json")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "what", "tokenizer");
        cJSON_AddNumberToObject(j, "cpu_busy_before", cpu_busy_before);
        cJSON_AddNumberToObject(j, "threads", r.threads);
        cJSON_AddNumberToObject(j, "bytes", (double)r.bytes);
        cJSON_AddNumberToObject(j, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(j, "repeats", r.repeats);
        cJSON_AddNumberToObject(j, "seconds", r.seconds);
        cJSON_AddNumberToObject(j, "mb_per_s", r.mb_per_s);
        char *s = cJSON_PrintUnformatted(j);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    } else {
        printf("tokenizer: %.2f MB/s (%zu bytes -> %zu tokens, %d thread%s, median of %d: %.3f s)\n", r.mb_per_s, r.bytes,
               r.tokens, r.threads, r.threads == 1 ? "" : "s", r.repeats, r.seconds);
    }
    return 0;
}

const cmd_spec cmd_bench = {
    "bench",
    "[--what train|generate|tokenizer] [--preset P | --n-layer ...] [--vocab-size V] [--batch-size B] [--seq-len T] "
    "[--steps N] [--lambda L] [--prompt-len N --new-tokens N] [--tokenizer PATH --input FILE] [--threads N] [--json]",
    "Measure throughput: full training steps of a random-init model on random tokens (default), greedy generation "
    "with the KV cache, or tokenizer MB/s.",
    NULL,
    OPTS, N_OPTS(OPTS), 0, 0, run};
