/* cmd_generate.c — `iqtrain generate` and `iqtrain score`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/checkpoint.h"
#include "iqtrain/generate.h"
#include "iqtrain/matmul.h"

static const opt_spec GEN_OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (required)", NULL},
    {"allow-extra-tensors", OPT_FLAG, NULL, NULL, "ignore unknown tensors in a model folder (with a warning)", NULL},
    {"prompt", OPT_STR, NULL, "TEXT", "one prompt, encoded like a training prompt", NULL},
    {"data", OPT_LIST, NULL, "FILE", "prompts from demonstration rows (more files may follow as arguments)", NULL},
    {"num-samples", OPT_INT, "1", "K", "samples per prompt", NULL},
    {"temperature", OPT_FLOAT, "1.0", "T", "sampling temperature (0 = greedy)", NULL},
    {"top-k", OPT_INT, "0", "K", "sample from the K most likely tokens (0 = all)", NULL},
    {"top-p", OPT_FLOAT, "1.0", "P", "nucleus sampling (1 = off)", NULL},
    {"beam", OPT_INT, "0", "N", "beam search with N beams, length-normalised (0 = off)", NULL},
    {"max-new-tokens", OPT_INT, "128", "N", "tokens to generate at most (also stops at EOS or the context end)", NULL},
    {"gamma", OPT_FLOAT, NULL, "G", "discount for the rewards (default: the model's, else 0.99)", NULL},
    {"seed", OPT_INT, "42", "S", "seed; each sample draws from its own (seed, row, sample) generator", NULL},
    {"out", OPT_STR, NULL, "DIR", "write DIR/samples.jsonl (default: stdout)", NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL},
    {"threads", OPT_INT, NULL, "N", "threads (default: the CPUs of this process's affinity mask)", NULL},
    {"matmul-backend", OPT_STR, "auto", "B", "matrix product backend", "auto|openblas|onednn"},
    {"matmul-precision", OPT_STR, "fp32", "P", "matmul input precision", "fp32|bf16"},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL},
};

static int set_threads(opt_set *o) {
    int threads = opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads();
    if (threads < 1 || threads > 1024) {
        cli_error("--threads must be in 1..1024");
        return IQ_EUSAGE;
    }
    iq_set_threads(threads);
    if (iq_matmul_configure(opt_str(o, "matmul-backend"), opt_str(o, "matmul-precision"))) {
        cli_error("%s", iq_last_error());
        return IQ_EUSAGE;
    }
    iq_checkpoint_allow_extra_tensors(opt_flag(o, "allow-extra-tensors"));
    return 0;
}

static int run_generate(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    char **files;
    int n = args_files(o, "data", true, &files);
    int rc = 0;
    if (!opt_is_set(o, "model") || (!opt_is_set(o, "prompt") && n == 0) || (opt_is_set(o, "prompt") && n > 0)) {
        cli_error("generate needs --model DIR and either --prompt TEXT or --data FILE...");
        rc = IQ_EUSAGE;
    } else if (opt_int(o, "num-samples") < 1 || opt_int(o, "num-samples") > 4096 || opt_int(o, "beam") < 0 ||
               opt_int(o, "beam") > 256 || opt_int(o, "max-new-tokens") < 1 || opt_float(o, "temperature") < 0 ||
               opt_int(o, "top-k") < 0 || opt_float(o, "top-p") <= 0 || opt_float(o, "top-p") > 1) {
        cli_error("out of range: --num-samples 1..4096, --beam 0..256, --max-new-tokens >= 1, --temperature >= 0, "
                  "--top-k >= 0, --top-p in (0, 1]");
        rc = IQ_EUSAGE;
    } else if (opt_int(o, "beam") > 0 && strcmp(opt_source(o, "num-samples"), "default") != 0) {
        cli_error("--beam and --num-samples cannot be combined (beam search returns the best beam)");
        rc = IQ_EUSAGE;
    }
    if (!rc) rc = set_threads(o);
    if (!rc) {
        iq_generate_cmd c = {0};
        c.model_dir = opt_str(o, "model");
        c.prompt = opt_str(o, "prompt");
        c.data = (const char *const *)files;
        c.n_data = n;
        c.gen.num_samples = (int)opt_int(o, "num-samples");
        c.gen.sampler.temperature = (float)opt_float(o, "temperature");
        c.gen.sampler.top_k = (int)opt_int(o, "top-k");
        c.gen.sampler.top_p = (float)opt_float(o, "top-p");
        c.gen.beam = (int)opt_int(o, "beam");
        c.gen.max_new_tokens = (int)opt_int(o, "max-new-tokens");
        c.gen.seed = (uint64_t)opt_int(o, "seed");
        c.out = opt_str(o, "out");
        c.gamma = opt_is_set(o, "gamma") ? (float)opt_float(o, "gamma") : -1.0f;
        c.skip_bad_rows = opt_flag(o, "skip-bad-rows");
        iq_status st = iq_generate_command(&c);
        if (st) {
            cli_error("%s", iq_last_error());
            rc = st;
        }
    }
    args_files_free(files, n);
    return rc;
}

const cmd_spec cmd_generate = {
    "generate",
    "--model DIR (--prompt TEXT | --data FILE...) [--num-samples K] [--temperature T] [--top-k K] [--top-p P] "
    "[--beam N] [--max-new-tokens N] [--seed S] [--out DIR]",
    "Generate completions with a KV cache: greedy (temperature 0), sampling, or beam search.",
    "Prompts from --data are encoded exactly as training encodes them (the text before a row's completion or last "
    "assistant turn). With --out, DIR/samples.jsonl gets one row per sample: prompt, completion, decoding, "
    "temperature, sample, logprob, reward (sum of r_t), rewards, eos, correct. Without --out a single completion "
    "is printed as text, several as those JSON rows.",
    GEN_OPTS, N_OPTS(GEN_OPTS), 0, -1, run_generate};

static const opt_spec SCORE_OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (required)", NULL},
    {"allow-extra-tensors", OPT_FLAG, NULL, NULL, "ignore unknown tensors in a model folder (with a warning)", NULL},
    {"data", OPT_LIST, NULL, "FILE", "rows to score (more files may follow as arguments) (required)", NULL},
    {"gamma", OPT_FLOAT, NULL, "G", "discount for the rewards (default: the model's, else 0.99)", NULL},
    {"out", OPT_STR, NULL, "DIR", "write DIR/scores.jsonl (default: stdout)", NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL},
    {"threads", OPT_INT, NULL, "N", "threads (default: the CPUs of this process's affinity mask)", NULL},
    {"matmul-backend", OPT_STR, "auto", "B", "matrix product backend", "auto|openblas|onednn"},
    {"matmul-precision", OPT_STR, "fp32", "P", "matmul input precision", "fp32|bf16"},
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL},
};

static int run_score(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    char **files;
    int n = args_files(o, "data", true, &files);
    int rc = 0;
    if (!opt_is_set(o, "model") || n == 0) {
        cli_error("score needs --model DIR and --data FILE...");
        rc = IQ_EUSAGE;
    }
    if (!rc) rc = set_threads(o);
    if (!rc) {
        iq_score_cmd c = {opt_str(o, "model"), (const char *const *)files, n, opt_str(o, "out"),
                          opt_is_set(o, "gamma") ? (float)opt_float(o, "gamma") : -1.0f, opt_flag(o, "skip-bad-rows")};
        iq_status st = iq_score_command(&c);
        if (st) {
            cli_error("%s", iq_last_error());
            rc = st;
        }
    }
    args_files_free(files, n);
    return rc;
}

const cmd_spec cmd_score = {
    "score",
    "--model DIR --data FILE... [--gamma G] [--out DIR]",
    "Score given rows without generating: per-token rewards r_t, their sum and the sequence log-probability.",
    "Each row's completion (or last assistant turn) is scored after its prompt; one JSON row per input row with "
    "prompt, completion, logprob, reward, rewards, truncated. For an EOS-ended single episode with gamma 1, "
    "reward = logprob + V(s_0).",
    SCORE_OPTS, N_OPTS(SCORE_OPTS), 0, -1, run_score};
