/* args.h — command-line and --config parsing shared by every command (DESIGN §5).
 *
 * Each command declares a table of options: its kind, default, choices and numeric range are declared
 * there once, and every value is validated against them when parsed (exit 64 naming the option); `--opt value`, `--opt=value` and `--config FILE.json` (keys = option names without "--",
 * plus "data": [files]; also a run's run.json with "options" and "data") all work, and flags override
 * the config file. */
#ifndef IQTRAIN_CLI_ARGS_H
#define IQTRAIN_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { OPT_FLAG, OPT_INT, OPT_FLOAT, OPT_STR, OPT_LIST } opt_kind;

typedef struct {
    const char *name;    /* without the leading "--" */
    opt_kind kind;
    const char *def;     /* default, as it would be typed; NULL = unset */
    const char *metavar; /* shown in --help */
    const char *help;
    const char *choices; /* "a|b|c" or NULL */
    const char *range;   /* numbers: "[lo,hi]", "(lo,hi)", "[lo,inf)", ... or NULL; checked when parsed */
} opt_spec;

/* Options every command that has them declares the same way. */
#define OPT_SPEC_THREADS \
    {"threads", OPT_INT, NULL, "N", "threads (default: the CPUs of this process's affinity mask)", NULL, "[1,1024]"}
#define OPT_SPEC_MATMUL_BACKEND \
    {"matmul-backend", OPT_STR, "auto", "B", "matrix product backend", "auto|openblas|onednn", NULL}
#define OPT_SPEC_MATMUL_PRECISION {"matmul-precision", OPT_STR, "fp32", "P", "matmul input precision", "fp32|bf16", NULL}
#define OPT_SPEC_ADAPTER \
    {"adapter", OPT_STR, NULL, "DIR", "a LoRA adapter folder (PEFT's layout) for --model, merged into its weights", NULL, NULL}
#define OPT_SPEC_ALLOW_EXTRA_TENSORS \
    {"allow-extra-tensors", OPT_FLAG, NULL, NULL, "ignore unknown tensors in a model folder (with a warning)", NULL, NULL}

typedef struct cmd_spec cmd_spec;
typedef struct opt_set opt_set;

struct cmd_spec {
    const char *name;
    const char *usage;   /* after "iqtrain NAME " */
    const char *summary; /* one line */
    const char *details; /* extra help text or NULL */
    const opt_spec *opts;
    int n_opts;
    int min_pos, max_pos; /* positional arguments (max -1 = unlimited) */
    int (*run)(const cmd_spec *cmd, opt_set *o);
};

struct opt_set {
    const cmd_spec *cmd;
    char **values;   /* (n_opts) current value or NULL */
    char **source;   /* (n_opts) "default", "config", "command line" */
    char **pos;      /* positional arguments */
    int n_pos;
    bool pos_from_config;
};

/* Parses argv (after the command name). Returns 0 to run, -1 when --help was printed (exit 0), or an
 * exit code (64 usage, 65 bad config, 66 unreadable config) after printing the message. */
int args_parse(const cmd_spec *cmd, int argc, char **argv, opt_set *o);
void args_free(opt_set *o);
void args_print_help(const cmd_spec *cmd);

const char *opt_str(const opt_set *o, const char *name); /* NULL when unset */
bool opt_is_set(const opt_set *o, const char *name);
bool opt_flag(const opt_set *o, const char *name);
long long opt_int(const opt_set *o, const char *name);
double opt_float(const opt_set *o, const char *name);
/* Where a value came from: "default", "config" or "command line". */
const char *opt_source(const opt_set *o, const char *name);

/* File names from a list option (comma-separated; repeats accumulate) followed, when with_pos, by the
 * positional arguments: `--data a,b c d` gives a b c d. Returns the count; *files holds copies, freed with
 * args_files_free. */
int args_files(const opt_set *o, const char *list_opt, bool with_pos, char ***files);
void args_files_free(char **files, int n);
/* Sampling temperatures from a list option ("0.1,0.7,1.0"; repeats accumulate) into out (at most cap; 0 is
 * greedy, which generation evals always run, and is left out). Returns the count, or -1 after a message naming
 * the item that is not a temperature (>= 0). */
int args_temperatures(const opt_set *o, const char *list_opt, float *out, int cap);

/* The closest of `n` names to `s` by edit distance, or NULL when none is close. */
const char *args_did_you_mean(const char *s, const char *const *names, int n);

/* Prints "iqtrain: message" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
