/* generate_cmd.h — the drivers of `iqtrain generate` and `iqtrain score` (DESIGN §6: samples.jsonl rows). */
#ifndef IQTRAIN_GENERATE_CMD_H
#define IQTRAIN_GENERATE_CMD_H

#include <stdbool.h>

#include "iqtrain/generate.h"
#include "iqtrain/util.h"

typedef struct {
    const char *model_dir;
    const char *prompt;       /* --prompt TEXT, or NULL */
    const char *const *data;  /* --data files */
    int n_data;
    iq_gen_opts gen;
    const char *out;          /* NULL: completions to stdout */
    float gamma;              /* < 0: the model's "iqtrain" section, else 0.99 */
    bool skip_bad_rows;
} iq_generate_cmd;

/* `iqtrain generate`. 0 or an exit code with a message. */
iq_status iq_generate_command(const iq_generate_cmd *c);

typedef struct {
    const char *model_dir;
    const char *const *data;
    int n_data;
    const char *out; /* NULL: rows to stdout */
    float gamma;     /* < 0: from the model */
    bool skip_bad_rows;
} iq_score_cmd;

/* `iqtrain score`: one row per input row with prompt, completion, logprob, reward, rewards. */
iq_status iq_score_command(const iq_score_cmd *c);

#endif
