/* args.c — option tables, argv and --config parsing, --help. */
#include "args.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/util.h"

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("iqtrain: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

// ----------------------------------------------------------------------------------------------------
// did you mean

static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

const char *args_did_you_mean(const char *s, const char *const *names, int n) {
    const char *best = NULL;
    int bd = 99;
    size_t ls = strlen(s);
    for (int i = 0; i < n; i++) {
        int dd = edit_distance(s, names[i]);
        /* a prefix of a longer name counts as close too (--lam -> --lambda) */
        if (ls >= 3 && strncmp(names[i], s, ls) == 0) dd = dd < 2 ? dd : 2;
        if (dd < bd) {
            bd = dd;
            best = names[i];
        }
    }
    int limit = ls <= 4 ? 1 : ls <= 8 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

// ----------------------------------------------------------------------------------------------------
// values

static int find_opt(const cmd_spec *cmd, const char *name, size_t len) {
    for (int i = 0; i < cmd->n_opts; i++)
        if (strlen(cmd->opts[i].name) == len && strncmp(cmd->opts[i].name, name, len) == 0) return i;
    return -1;
}

static void unknown_option(const cmd_spec *cmd, const char *name, const char *where) {
    const char **names = iq_xmalloc((size_t)(cmd->n_opts + 1) * sizeof *names);
    int n = 0;
    for (int i = 0; i < cmd->n_opts; i++) names[n++] = cmd->opts[i].name;
    const char *dym = args_did_you_mean(name, names, n);
    if (dym)
        cli_error("%sunknown option '--%s' for '%s' (did you mean '--%s'?)", where, name, cmd->name, dym);
    else
        cli_error("%sunknown option '--%s' for '%s' (see 'iqtrain %s --help')", where, name, cmd->name, cmd->name);
    free(names);
}

/* Whether x lies in a range "[lo,hi]" / "(lo,hi)" (either bracket; "inf" for no bound). */
static bool in_range(const char *range, double x) {
    char lb = range[0], rb = range[strlen(range) - 1];
    char *comma;
    double lo = strtod(range + 1, &comma), hi = strtod(comma + 1, NULL);
    bool lo_ok = lb == '[' ? x >= lo : x > lo, hi_ok = rb == ']' ? x <= hi : x < hi;
    return lo_ok && hi_ok;
}

/* Checks a number against its option's range; prints the error. */
static bool validate_range(const opt_spec *s, double x, const char *v, const char *where) {
    if (!s->range || in_range(s->range, x)) return true;
    cli_error("%s--%s must be in %s, got %s", where, s->name, s->range, v);
    return false;
}

/* Checks a value against its option's kind, choices and range; prints the error. */
static bool validate(const opt_spec *s, const char *v, const char *where) {
    char *end;
    switch (s->kind) {
    case OPT_FLAG:
        if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false")) {
            cli_error("%s--%s takes no value (or true/false), got '%s'", where, s->name, v);
            return false;
        }
        return true;
    case OPT_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            cli_error("%s--%s expects an integer, got '%s'", where, s->name, v);
            return false;
        }
        return validate_range(s, (double)x, v, where);
    }
    case OPT_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) {
            cli_error("%s--%s expects a number, got '%s'", where, s->name, v);
            return false;
        }
        return validate_range(s, x, v, where);
    }
    case OPT_STR:
    case OPT_LIST:
        if (s->choices) {
            size_t lv = strlen(v);
            const char *c = s->choices;
            while (*c) {
                const char *bar = strchr(c, '|');
                size_t lc = bar ? (size_t)(bar - c) : strlen(c);
                if (lc == lv && strncmp(c, v, lv) == 0) return true;
                c += lc + (bar ? 1 : 0);
            }
            cli_error("%s--%s must be one of %s, got '%s'", where, s->name, s->choices, v);
            return false;
        }
        return true;
    }
    return true;
}

static void set_value(opt_set *o, int i, const char *v, const char *source) {
    free(o->values[i]);
    o->values[i] = v ? iq_xstrdup(v) : NULL;
    o->source[i] = (char *)source;
}

static void add_pos(opt_set *o, const char *v) {
    o->pos = iq_xrealloc(o->pos, (size_t)(o->n_pos + 1) * sizeof *o->pos);
    o->pos[o->n_pos++] = iq_xstrdup(v);
}

// ----------------------------------------------------------------------------------------------------
// --config FILE.json

static char *json_to_value(const cJSON *v, const opt_spec *s) {
    char buf[64];
    if (cJSON_IsBool(v)) return iq_xstrdup(cJSON_IsTrue(v) ? (s->kind == OPT_FLAG ? "1" : "true") : (s->kind == OPT_FLAG ? "0" : "false"));
    if (cJSON_IsNumber(v)) {
        /* integral values print as integers, others as they are (so that an int option refuses 1.5
         * like on the command line instead of truncating it); the range test comes first because
         * converting a double outside long long's range is undefined */
        double d = v->valuedouble;
        if (fabs(d) < 9e18 && d == (double)(long long)d && (s->kind == OPT_INT || fabs(d) < 1e15))
            snprintf(buf, sizeof buf, "%lld", (long long)d);
        else
            snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        return iq_xstrdup(buf);
    }
    if (cJSON_IsString(v)) return iq_xstrdup(v->valuestring);
    if (cJSON_IsArray(v) && s->kind == OPT_LIST) {
        iq_buf b = {0};
        for (const cJSON *e = v->child; e; e = e->next) {
            char *x = json_to_value(e, s);
            if (!x) {
                iq_buf_free(&b);
                return NULL;
            }
            if (b.len) iq_buf_putc(&b, ',');
            iq_buf_append(&b, x, strlen(x));
            free(x);
        }
        iq_buf_cstr(&b);
        return b.data;
    }
    return NULL;
}

static int load_config(opt_set *o, const char *path) {
    const cmd_spec *cmd = o->cmd;
    cJSON *root = NULL;
    iq_status st = iq_read_json(path, &root);
    if (st) {
        cli_error("--config %s", iq_last_error());
        return st;
    }
    if (!cJSON_IsObject(root)) {
        cli_error("%s: a config file must be a JSON object", path);
        cJSON_Delete(root);
        return IQ_EDATA;
    }
    /* a run.json: {"options": {...}, "data": [...], "version": ...} */
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(root, "options");
    bool run_json = cJSON_IsObject(opts);
    if (!run_json) opts = root;
    char where[512];
    snprintf(where, sizeof where, "%s: ", path);
    int rc = 0;
    for (const cJSON *e = opts->child; e && !rc; e = e->next) {
        if (!run_json && strcmp(e->string, "data") == 0) continue;
        if (strcmp(e->string, "config") == 0) {
            cli_error("%s\"config\" cannot be nested", where);
            rc = IQ_EUSAGE;
            break;
        }
        int i = find_opt(cmd, e->string, strlen(e->string));
        if (i < 0) {
            if (run_json) continue; /* a run.json of another command version: ignore what we do not know */
            unknown_option(cmd, e->string, where);
            rc = IQ_EUSAGE;
            break;
        }
        if (cJSON_IsNull(e)) {
            set_value(o, i, NULL, "config");
            continue;
        }
        char *v = json_to_value(e, &cmd->opts[i]);
        if (!v) {
            cli_error("%s\"%s\" has a value of the wrong type", where, e->string);
            rc = IQ_EUSAGE;
            break;
        }
        if (!validate(&cmd->opts[i], v, where)) rc = IQ_EUSAGE;
        else set_value(o, i, v, "config");
        free(v);
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!rc && d) {
        if (cJSON_IsString(d)) {
            add_pos(o, d->valuestring);
        } else if (cJSON_IsArray(d)) {
            for (const cJSON *e = d->child; e && !rc; e = e->next) {
                if (!cJSON_IsString(e)) {
                    cli_error("%s\"data\" must be a list of file names", where);
                    rc = IQ_EUSAGE;
                } else {
                    add_pos(o, e->valuestring);
                }
            }
        } else {
            cli_error("%s\"data\" must be a list of file names", where);
            rc = IQ_EUSAGE;
        }
        o->pos_from_config = true;
    }
    cJSON_Delete(root);
    return rc;
}

// ----------------------------------------------------------------------------------------------------
// argv

int args_parse(const cmd_spec *cmd, int argc, char **argv, opt_set *o) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->values = iq_xcalloc((size_t)cmd->n_opts + 1, sizeof *o->values);
    o->source = iq_xcalloc((size_t)cmd->n_opts + 1, sizeof *o->source);
    for (int i = 0; i < cmd->n_opts; i++) set_value(o, i, cmd->opts[i].def, "default");

    /* pass 1: --help and --config (the config file is applied first, flags override it) */
    const char *config = NULL;
    for (int a = 0; a < argc; a++) {
        if (strcmp(argv[a], "--") == 0) break;
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            args_print_help(cmd);
            return -1;
        }
        if (strcmp(argv[a], "--config") == 0) {
            if (a + 1 >= argc) {
                cli_error("--config needs a file");
                return IQ_EUSAGE;
            }
            config = argv[++a];
        } else if (strncmp(argv[a], "--config=", 9) == 0) {
            config = argv[a] + 9;
        }
    }
    if (config && find_opt(cmd, "config", 6) < 0) {
        cli_error("'%s' takes no --config", cmd->name);
        return IQ_EUSAGE;
    }
    if (config) {
        int rc = load_config(o, config);
        if (rc) return rc;
    }
    int cli_pos = 0;
    bool only_pos = false;
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (o->pos_from_config && cli_pos == 0) { /* positional files on the command line replace the config's */
                for (int k = 0; k < o->n_pos; k++) free(o->pos[k]);
                o->n_pos = 0;
            }
            add_pos(o, arg);
            cli_pos++;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (arg[1] != '-') {
            cli_error("unknown option '%s' (options are spelled --name)", arg);
            return IQ_EUSAGE;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        if (nl == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq) a++;
            continue;
        }
        int i = find_opt(cmd, name, nl);
        if (i < 0) {
            char *nm = iq_xstrndup(name, nl);
            unknown_option(cmd, nm, "");
            free(nm);
            return IQ_EUSAGE;
        }
        const opt_spec *s = &cmd->opts[i];
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (s->kind == OPT_FLAG) {
            v = "1";
        } else {
            if (a + 1 >= argc) {
                cli_error("--%s needs a value (%s)", s->name, s->metavar ? s->metavar : "see --help");
                return IQ_EUSAGE;
            }
            v = argv[++a];
        }
        if (!validate(s, v, "")) return IQ_EUSAGE;
        if (s->kind == OPT_FLAG) v = (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) ? "1" : "0";
        if (s->kind == OPT_LIST && o->values[i] && strcmp(o->source[i], "command line") == 0) {
            /* a list option given again adds to the list (--data a --data b), it does not replace it */
            iq_buf b = {0};
            iq_buf_printf(&b, "%s,%s", o->values[i], v);
            set_value(o, i, iq_buf_cstr(&b), "command line");
            iq_buf_free(&b);
            continue;
        }
        set_value(o, i, v, "command line");
    }
    if (o->n_pos < cmd->min_pos) {
        cli_error("'%s' needs %s (usage: iqtrain %s %s)", cmd->name,
                  cmd->min_pos == 1 ? "an argument" : "more arguments", cmd->name, cmd->usage);
        return IQ_EUSAGE;
    }
    if (cmd->max_pos >= 0 && o->n_pos > cmd->max_pos) {
        cli_error("'%s' takes %s: unexpected '%s'", cmd->name, cmd->max_pos == 0 ? "no positional arguments" : "fewer arguments",
                  o->pos[cmd->max_pos]);
        return IQ_EUSAGE;
    }
    return 0;
}

void args_free(opt_set *o) {
    if (!o->cmd) return;
    for (int i = 0; i < o->cmd->n_opts; i++) free(o->values[i]);
    free(o->values);
    free(o->source);
    for (int i = 0; i < o->n_pos; i++) free(o->pos[i]);
    free(o->pos);
    memset(o, 0, sizeof *o);
}

void args_print_help(const cmd_spec *cmd) {
    printf("usage: iqtrain %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->details) printf("\n%s\n", cmd->details);
    if (cmd->n_opts) printf("\noptions:\n");
    for (int i = 0; i < cmd->n_opts; i++) {
        const opt_spec *s = &cmd->opts[i];
        char left[96];
        if (s->kind == OPT_FLAG) snprintf(left, sizeof left, "--%s", s->name);
        else snprintf(left, sizeof left, "--%s %s", s->name, s->metavar ? s->metavar : "VALUE");
        printf("  %-30s %s", left, s->help);
        if (s->choices) printf(" (%s)", s->choices);
        if (s->range) printf(" (in %s)", s->range);
        if (s->def && s->kind != OPT_FLAG) printf(" [default: %s]", s->def);
        printf("\n");
    }
    printf("\nExit codes: 0 ok, 64 usage, 65 bad data or corrupt input, 66 cannot open input, 70 internal error,\n"
           "73 cannot create output, 74 I/O error, 75 diverged, 130 SIGINT, 143 SIGTERM.\n");
}

// ----------------------------------------------------------------------------------------------------
// file lists

int args_files(const opt_set *o, const char *list_opt, bool with_pos, char ***files) {
    const char *v = opt_str(o, list_opt);
    int n = 0, cap = (with_pos ? o->n_pos : 0) + 1;
    for (const char *c = v; c && *c; c++) cap += *c == ',';
    *files = iq_xcalloc((size_t)cap, sizeof **files);
    if (v) {
        char *copy = iq_xstrdup(v);
        for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
            (*files)[n++] = iq_xstrdup(p);
        free(copy);
    }
    for (int i = 0; with_pos && i < o->n_pos; i++) (*files)[n++] = iq_xstrdup(o->pos[i]);
    return n;
}

int args_temperatures(const opt_set *o, const char *list_opt, float *out, int cap) {
    const char *v = opt_str(o, list_opt);
    int n = 0;
    char *copy = iq_xstrdup(v ? v : "");
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *end;
        double t = strtod(p, &end);
        if (*end || !(t >= 0) || !isfinite(t)) {
            cli_error("--%s: '%s' is not a temperature", list_opt, p);
            n = -1;
            break;
        }
        if (t > 0 && n < cap) out[n++] = (float)t; /* 0 is greedy, always evaluated */
    }
    free(copy);
    return n;
}

void args_files_free(char **files, int n) {
    for (int i = 0; i < n; i++) free(files[i]);
    free(files);
}

// ----------------------------------------------------------------------------------------------------
// getters

static int must_find(const opt_set *o, const char *name) {
    int i = find_opt(o->cmd, name, strlen(name));
    if (i < 0) {
        fprintf(stderr, "iqtrain: internal error: command '%s' has no option '%s'\n", o->cmd->name, name);
        abort();
    }
    return i;
}

const char *opt_str(const opt_set *o, const char *name) { return o->values[must_find(o, name)]; }
bool opt_is_set(const opt_set *o, const char *name) { return o->values[must_find(o, name)] != NULL; }
bool opt_flag(const opt_set *o, const char *name) {
    const char *v = opt_str(o, name);
    return v && strcmp(v, "1") == 0;
}
long long opt_int(const opt_set *o, const char *name) {
    const char *v = opt_str(o, name);
    return v ? strtoll(v, NULL, 10) : 0;
}
double opt_float(const opt_set *o, const char *name) {
    const char *v = opt_str(o, name);
    return v ? strtod(v, NULL) : 0.0;
}
const char *opt_source(const opt_set *o, const char *name) { return o->source[must_find(o, name)]; }
