/* run_folder.h — a run's output folder and its resume policy (DESIGN §5–§7): where the run writes, whether it
 * continues an earlier one (and from which checkpoint), run.json, and the final model folder.
 *
 * Policy: an --out holding another run (a run.json) is refused (73) unless --resume. --resume auto takes the
 * newest checkpoint there whose CRCs verify (older ones are tried in turn, with a warning); with none yet it
 * starts at step 0. --resume DIR takes that checkpoint (into its parent folder unless --out). Resuming refuses
 * changed options (64, naming them) but those iq_run_option_resumable lists, and a checkpoint whose model
 * differs from the options' (64, naming the field). Checkpoints newer than the resumed step and leftover temp
 * folders are removed before the run continues. */
#ifndef IQTRAIN_RUN_FOLDER_H
#define IQTRAIN_RUN_FOLDER_H

#include <cJSON.h>
#include <stdbool.h>

#include "iqtrain/checkpoint.h"
#include "iqtrain/model.h"
#include "iqtrain/optim.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/tokenizer.h"

/* What the folder needs to know of the run's options. */
typedef struct {
    const char *out;      /* NULL = runs/<UTC date-time>-<6 hex> (rank 0's name under MPI) */
    const char *resume;   /* NULL, "auto" or a checkpoint folder */
    const cJSON *options; /* resolved options (names as on the command line) for run.json */
    const char *const *data, *const *eval_data;
    int n_data, n_eval_data;
    uint64_t seed;
    int threads;
    bool lr_schedule_constant; /* a changed step count then changes no schedule (no warning) */
    const char *chat_source, *chat_sha256; /* the chat template messages rows were rendered with, or NULL */
    const cJSON *option_defaults; /* an option missing from an older run.json is unchanged when at its default */
} iq_run_spec;

typedef struct {
    char *out;              /* the folder */
    char *resume_dir;       /* the checkpoint to continue from, or NULL */
    iq_trainer_state state; /* its state (valid with resume_dir) */
    cJSON *run_json;        /* the folder's run.json, or NULL */
} iq_run_folder;

/* Options that may change on resume (everything else must match run.json). */
bool iq_run_option_resumable(const char *name);

/* Decides the folder and what to resume (read-only: nothing is written). 64/65/66/73 with a message. */
iq_status iq_run_folder_resolve(const iq_run_spec *spec, iq_run_folder *f);
void iq_run_folder_free(iq_run_folder *f);

/* Rank 0, after the model and optimizer exist: creates the folder; when resuming, loads the checkpoint's
 * weights into m and its AdamW state into opt (warning when threads, ranks or the step count differ from the
 * checkpoint's); removes abandoned checkpoints and temp folders; writes run.json. *start receives the step
 * to continue from (0 for a new run); 64 when the checkpoint is past total_steps. */
iq_status iq_run_folder_open(iq_run_folder *f, const iq_run_spec *spec, iq_model *m, iq_adamw *opt, long total_steps,
                             long *start);

/* The facts of this build and run for run.json and trainer_state.json (backend, precision, threads, MPI,
 * version, commit, BLAS). */
cJSON *iq_run_build_facts(int threads);

/* Writes OUT/final atomically (temp folder, fsync, rename, fsync of OUT). */
iq_status iq_run_save_final(const char *out, iq_model *m, const iq_tokenizer *tok, iq_dtype dtype, const cJSON *section);

#endif
