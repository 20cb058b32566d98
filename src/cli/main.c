/* main.c — iqtrain's entry point: command dispatch, --version, global --help. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/dist.h"
#include "iqtrain/fault.h"
#include "iqtrain/log.h"
#include "iqtrain/matmul.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

static const cmd_spec *const COMMANDS[] = {&cmd_train,    &cmd_eval,            &cmd_generate, &cmd_score,
                                           &cmd_tokenize, &cmd_train_tokenizer, &cmd_bench,    &cmd_export,
                                           &cmd_merge};
static const int N_COMMANDS = (int)(sizeof COMMANDS / sizeof *COMMANDS);

int cli_load_tokenizer(const char *path, iq_tokenizer **out) {
    iq_status st = iq_tok_load(path, out);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    return 0;
}

static void print_global_help(void) {
    printf("iqtrain %s — fine-tune GPT-2-style models on demonstrations with IQLearn (TD-regularized MLE)\n\n"
           "usage: iqtrain [train] [OPTIONS] DATA...      train (the default command)\n"
           "       iqtrain COMMAND [OPTIONS] ...\n\ncommands:\n",
           iq_version());
    for (int i = 0; i < N_COMMANDS; i++) printf("  %-16s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    printf("\n'iqtrain COMMAND --help' shows a command's options. 'iqtrain --version' prints the version.\n");
}

static void print_version(void) {
    printf("iqtrain %s (commit %s, %s build)\n", iq_version(), iq_git_commit(), iq_build_type());
    printf("BLAS: %s\n", iq_blas_info());
    printf("oneDNN: %s\n", iq_onednn_built() ? "built in (--matmul-backend onednn, --matmul-precision bf16)" : "off");
    printf("MPI: %s\n", iq_dist_built() ? "built in (run under mpirun/srun for data-parallel training)" : "off");
    if (iq_faults_compiled_in()) printf("fault injection: compiled in (a test build, not for users)\n");
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv) {
    iq_blas_fix_core(argv); /* may re-execute with OPENBLAS_CORETYPE set (matmul.h): before threads and MPI */
    iq_dist_init(&argc, &argv);
    if (iq_dist_rank() != 0) iq_log_set_level(IQ_LOG_QUIET); /* rank 0 speaks for the job */
    int rc = run_main(argc, argv);
    iq_dist_finish(rc);
    return rc;
}

static int run_main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        print_version();
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            for (int i = 0; i < N_COMMANDS; i++)
                if (strcmp(argv[2], COMMANDS[i]->name) == 0) {
                    args_print_help(COMMANDS[i]);
                    return 0;
                }
        }
        print_global_help();
        return argc < 2 ? IQ_EUSAGE : 0;
    }
    const cmd_spec *cmd = &cmd_train;
    int first = 1;
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], COMMANDS[i]->name) == 0) {
            cmd = COMMANDS[i];
            first = 2;
        }
    if (first == 1 && argv[1][0] != '-') {
        /* a word that is not a file but looks like a command name is a typo, not data */
        if (!iq_file_exists(argv[1])) {
            const char *names[16];
            int n = 0;
            for (int i = 0; i < N_COMMANDS; i++) names[n++] = COMMANDS[i]->name;
            const char *dym = args_did_you_mean(argv[1], names, n);
            if (dym) {
                cli_error("unknown command '%s' (did you mean '%s'?)", argv[1], dym);
                return IQ_EUSAGE;
            }
        }
    }
    if (iq_blas_check() != IQ_OK) {
        cli_error("%s", iq_last_error());
        return IQ_EINTERNAL;
    }
    if (iq_dist_world() > 1 && cmd != &cmd_train && cmd != &cmd_bench && iq_dist_rank() != 0)
        return 0; /* only training and the benchmark are data-parallel: rank 0 runs the others */
    opt_set o;
    int rc = args_parse(cmd, argc - first, argv + first, &o);
    if (rc == 0) rc = cmd->run(cmd, &o);
    else if (rc < 0) rc = 0;
    args_free(&o);
    return rc;
}
