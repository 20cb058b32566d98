/* cmd_generate.c — `iqtrain generate` and `iqtrain score`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/generate_cmd.h"
#include "iqtrain/matmul.h"

static const opt_spec GEN_OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (required)", NULL, NULL},
    OPT_SPEC_ADAPTER,
    OPT_SPEC_ALLOW_EXTRA_TENSORS,
    {"prompt", OPT_STR, NULL, "TEXT", "one prompt, encoded like a training prompt", NULL, NULL},
    {"data", OPT_LIST, NULL, "FILE", "prompts from demonstration rows (more files may follow as arguments)", NULL, NULL},
    {"num-samples", OPT_INT, "1", "K", "samples per prompt", NULL, "[1,4096]"},
    {"temperature", OPT_FLOAT, "1.0", "T", "sampling temperature (0 = greedy)", NULL, "[0,inf)"},
    {"top-k", OPT_INT, "0", "K", "sample from the K most likely tokens (0 = all)", NULL, "[0,inf)"},
    {"top-p", OPT_FLOAT, "1.0", "P", "nucleus sampling (1 = off)", NULL, "(0,1]"},
    {"beam", OPT_INT, "0", "N", "beam search with N beams, length-normalised (0 = off)", NULL, "[0,256]"},
    {"max-new-tokens", OPT_INT, "128", "N", "tokens to generate at most (also stops at EOS or the context end)", NULL, "[1,inf)"},
    {"gamma", OPT_FLOAT, NULL, "G", "discount for the rewards (default: the model's, else 0.99)", NULL, "[0,1]"},
    {"seed", OPT_INT, "42", "S", "seed; each sample draws from its own (seed, row, sample) generator", NULL, NULL},
    {"out", OPT_STR, NULL, "DIR", "write DIR/samples.jsonl (default: stdout)", NULL, NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL, NULL},
    OPT_SPEC_THREADS,
    OPT_SPEC_MATMUL_BACKEND,
    OPT_SPEC_MATMUL_PRECISION,
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL, NULL},
};

static int set_threads(opt_set *o) {
    iq_set_threads(opt_is_set(o, "threads") ? (int)opt_int(o, "threads") : iq_default_threads());
    if (iq_matmul_configure(opt_str(o, "matmul-backend"), opt_str(o, "matmul-precision"))) {
        cli_error("%s", iq_last_error());
        return IQ_EUSAGE;
    }
    iq_model_folder_allow_extra_tensors(opt_flag(o, "allow-extra-tensors"));
    iq_model_folder_set_adapter(opt_is_set(o, "adapter") ? opt_str(o, "adapter") : NULL);
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
    "--model DIR [--adapter DIR] (--prompt TEXT | --data FILE...) [--num-samples K] [--temperature T] [--top-k K] "
    "[--top-p P] [--beam N] [--max-new-tokens N] [--seed S] [--out DIR]",
    "Generate completions with a KV cache: greedy (temperature 0), sampling, or beam search.",
    "Prompts from --data are encoded exactly as training encodes them (the text before a row's completion or last "
    "assistant turn). With --out, DIR/samples.jsonl gets one row per sample: prompt, completion, decoding, "
    "temperature, sample, logprob, reward (sum of r_t), rewards, eos, correct. Without --out a single completion "
    "is printed as text, several as those JSON rows.",
    GEN_OPTS, N_OPTS(GEN_OPTS), 0, -1, run_generate};

static const opt_spec SCORE_OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (required)", NULL, NULL},
    OPT_SPEC_ADAPTER,
    OPT_SPEC_ALLOW_EXTRA_TENSORS,
    {"data", OPT_LIST, NULL, "FILE", "rows to score (more files may follow as arguments) (required)", NULL, NULL},
    {"gamma", OPT_FLOAT, NULL, "G", "discount for the rewards (default: the model's, else 0.99)", NULL, "[0,1]"},
    {"out", OPT_STR, NULL, "DIR", "write DIR/scores.jsonl (default: stdout)", NULL, NULL},
    {"skip-bad-rows", OPT_FLAG, NULL, NULL, "skip and count bad rows instead of stopping", NULL, NULL},
    OPT_SPEC_THREADS,
    OPT_SPEC_MATMUL_BACKEND,
    OPT_SPEC_MATMUL_PRECISION,
    {"config", OPT_STR, NULL, "FILE.json", "read options from a JSON file (flags override it)", NULL, NULL},
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
    "--model DIR [--adapter DIR] --data FILE... [--gamma G] [--out DIR]",
    "Score given rows without generating: per-token rewards r_t, their sum and the sequence log-probability.",
    "Each row's completion (or last assistant turn) is scored after its prompt; one JSON row per input row with "
    "prompt, completion, logprob, reward, rewards, truncated. For an EOS-ended single episode with gamma 1, "
    "reward = logprob + V(s_0).",
    SCORE_OPTS, N_OPTS(SCORE_OPTS), 0, -1, run_score};
