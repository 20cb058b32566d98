/* fuzz_cli_config.c — `--config FILE.json` parsing (src/cli/args.c, compiled into this target), with a
 * command whose options have every kind (flag, int, float, string with and without choices, list).
 *
 * The input is the config file (a plain config, or a run.json with "options" and "data"). Properties:
 * args_parse returns 0, 64 or 65 (never crashes or exits); on 0 every value set is valid for its
 * option, as if typed on the command line (ints parse completely, floats are finite, choices are
 * respected, flags are 0/1 after normalisation on the command line), an int option given as a JSON
 * number holds exactly that number, and a flag given on the command line overrides the config. */
#include <errno.h>
#include <math.h>

#include <cJSON.h>

#include "args.h"
#include "fuzz_common.h"

static const opt_spec OPTS[] = {
    {"config", OPT_STR, NULL, "FILE", "options from a JSON file", NULL},
    {"lambda", OPT_FLOAT, "0.1", "X", "a float", NULL},
    {"gamma", OPT_FLOAT, "0.99", "X", "a float", NULL},
    {"batch-size", OPT_INT, "16", "N", "an int", NULL},
    {"seed", OPT_INT, "42", "N", "an int", NULL},
    {"max-steps", OPT_INT, NULL, "N", "an int, unset by default", NULL},
    {"lambda-schedule", OPT_STR, "constant", "S", "a choice", "constant|linear|cosine"},
    {"out", OPT_STR, NULL, "DIR", "a string", NULL},
    {"dry-run", OPT_FLAG, NULL, NULL, "a flag", NULL},
    {"json", OPT_FLAG, NULL, NULL, "a flag", NULL},
    {"data", OPT_LIST, NULL, "FILE", "a list", NULL},
    {"temperatures", OPT_LIST, NULL, "T,...", "a list", NULL},
};

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    (void)o;
    return 0;
}

static const cmd_spec CMD = {"fuzz", "[OPTIONS] DATA...", "fuzzing --config", NULL, OPTS,
                             (int)(sizeof OPTS / sizeof *OPTS), 0, -1, run};

static char g_file[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_path(g_file, sizeof g_file, "config.json");
    return 0;
}

static void check_values(const opt_set *o) {
    for (int i = 0; i < CMD.n_opts; i++) {
        const opt_spec *s = &OPTS[i];
        const char *v = o->values[i];
        FUZZ_CHECK(o->source[i] != NULL, "--%s has no source", s->name);
        if (!v) continue;
        char *end;
        switch (s->kind) {
        case OPT_FLAG:
            FUZZ_CHECK(!strcmp(v, "0") || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "false"), "--%s = '%s'",
                       s->name, v);
            break;
        case OPT_INT:
            errno = 0;
            (void)strtoll(v, &end, 10);
            FUZZ_CHECK(*v && !*end && !errno, "--%s = '%s' is not an integer", s->name, v);
            break;
        case OPT_FLOAT: {
            errno = 0;
            double x = strtod(v, &end);
            FUZZ_CHECK(*v && !*end && !errno && isfinite(x), "--%s = '%s' is not a finite number", s->name, v);
            break;
        }
        case OPT_STR:
        case OPT_LIST:
            if (s->choices)
                FUZZ_CHECK(!strcmp(v, "constant") || !strcmp(v, "linear") || !strcmp(v, "cosine"), "--%s = '%s'",
                           s->name, v);
            break;
        }
    }
}

/* An int option set from a JSON number holds exactly that number (1.5 is refused, not truncated). */
static void check_numbers(const opt_set *o, const uint8_t *data, size_t size) {
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(root, "options");
    if (!cJSON_IsObject(opts)) opts = root;
    for (int i = 0; i < CMD.n_opts; i++) {
        if (OPTS[i].kind != OPT_INT || !o->values[i] || strcmp(o->source[i], "config") != 0) continue;
        const cJSON *v = NULL; /* the last of duplicate keys wins, as in args.c */
        for (const cJSON *e = opts->child; e; e = e->next)
            if (strcmp(e->string, OPTS[i].name) == 0) v = e;
        if (cJSON_IsNumber(v))
            FUZZ_CHECK((double)strtoll(o->values[i], NULL, 10) == v->valuedouble, "--%s = %s from the number %.17g",
                       OPTS[i].name, o->values[i], v->valuedouble);
    }
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(g_file, data, size);
    char a0[] = "--config", a2[] = "--json", a3[] = "--seed=7";
    char *argv[] = {a0, g_file, a2, a3, NULL};
    /* with and without flags after the config (they must win) */
    for (int with_flags = 0; with_flags < 2; with_flags++) {
        opt_set o;
        int rc = args_parse(&CMD, with_flags ? 4 : 2, argv, &o);
        FUZZ_CHECK(rc == 0 || rc == 64 || rc == 65, "args_parse returned %d", rc);
        if (rc == 0) {
            check_values(&o);
            if (with_flags) {
                FUZZ_CHECK(opt_flag(&o, "json") && opt_int(&o, "seed") == 7, "command-line flags did not override");
                FUZZ_CHECK(!strcmp(opt_source(&o, "seed"), "command line"), "seed source %s", opt_source(&o, "seed"));
            }
            if (!with_flags) check_numbers(&o, data, size);
            for (int i = 0; i < o.n_pos; i++) FUZZ_CHECK(o.pos[i] != NULL, "positional %d", i);
            (void)opt_float(&o, "lambda");
            (void)opt_str(&o, "temperatures");
        }
        args_free(&o);
    }
    return 0;
}
