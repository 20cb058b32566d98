/* commands.h — the command table of the CLI. */
#ifndef IQTRAIN_CLI_COMMANDS_H
#define IQTRAIN_CLI_COMMANDS_H

#include "args.h"

extern const cmd_spec cmd_train;
extern const cmd_spec cmd_eval;
extern const cmd_spec cmd_generate;
extern const cmd_spec cmd_score;
extern const cmd_spec cmd_tokenize;
extern const cmd_spec cmd_train_tokenizer;
extern const cmd_spec cmd_bench;
extern const cmd_spec cmd_export;
extern const cmd_spec cmd_merge;

/* Loads --tokenizer (or a model folder's tokenizer); prints the error and returns its exit code. */
struct iq_tokenizer;
int cli_load_tokenizer(const char *path, struct iq_tokenizer **out);

#define N_OPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
