/* checkpoint.h — training checkpoints (DESIGN §6) and their typed trainer state.
 *
 * A checkpoint folder is a model folder (model_folder.h, F32) plus optimizer.safetensors (AdamW m, v) and
 * trainer_state.json, which holds the training position (iq_trainer_state) and the CRC-32 of every other
 * file. A LoRA run's checkpoint adds adapter/ (lora_io.h: PEFT's adapter_config.json and adapter_model.
 * safetensors, CRC-32s under "adapter/NAME"); its optimizer.safetensors holds the adapters' moments. This file owns trainer_state.json: its write, read and verification. Checkpoints are written into a
 * temporary folder, fsynced and renamed into place, so a folder named checkpoint-STEP is complete or
 * detectably corrupt, never half-written. */
#ifndef IQTRAIN_CHECKPOINT_H
#define IQTRAIN_CHECKPOINT_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/model.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/optim.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

/* What a run needs to continue bit for bit (with the weights and AdamW's moments). */
typedef struct {
    long step;            /* optimizer steps done */
    double epoch;         /* step / steps per epoch */
    long data_epoch;      /* data position: the epoch whose permutation is being read ... */
    long data_row;        /* ... and the next row of it */
    long tokens_seen;     /* supervised tokens so far */
    double elapsed_s;
    uint64_t seed;
    float lambda;         /* lambda of the last step (the schedule's value) */
    double lr;            /* learning rate of the last step */
    long total_steps;     /* the run's planned steps when saved */
    double best_eval_loss; /* INFINITY: no eval yet */
    double eval_loss;     /* the eval loss at this step; NAN: no eval at this step */
    int threads;          /* build facts a resume compares (0 = unknown) */
    int world_size;       /* MPI ranks (1 when absent) */
    long online_refresh_step; /* online IQLearn: the step that drew the samples of online.h's file (-1: none) */
} iq_trainer_state;

/* A file a checkpoint carries besides the fixed ones (online IQLearn's samples): write(ctx, path) writes it
 * into the folder being saved; trainer_state.json records its CRC-32 like the others'. */
typedef struct {
    const char *name;
    iq_status (*write)(void *ctx, const char *path);
    void *ctx;
} iq_checkpoint_extra;

/* Saves OUT/checkpoint-STEP atomically: the model folder (F32), optimizer.safetensors, the extra file (when
 * not NULL) and trainer_state.json (*ts, the build facts `build` and {"files": {name: crc32}}). An existing folder of that
 * name is replaced. *path_out (if not NULL) receives the folder's path (malloc'd). 73/74 on failure, nothing
 * left behind. */
iq_status iq_checkpoint_save(const char *out_dir, iq_model *m, iq_adamw *opt, const iq_tokenizer *tok,
                             const cJSON *iqtrain_section, const iq_trainer_state *ts, const cJSON *build,
                             const iq_checkpoint_extra *extra, char **path_out);

/* Verifies a checkpoint folder and reads its state: trainer_state.json parses, its numbers are in range (the
 * file has no CRC of its own: step an integer in [0, 2^53), tokens_seen, build.threads, ...), and every other
 * file's CRC-32 matches. 65 naming the file that fails, 66 when the folder is missing. */
iq_status iq_checkpoint_verify(const char *dir, iq_trainer_state *ts);

/* Loads the optimizer state of a verified checkpoint into opt (which must match the model). */
iq_status iq_checkpoint_load_optimizer(const char *dir, iq_model *m, iq_adamw *opt);

/* Lists OUT/checkpoint-* folders by step, newest first; returns the count (paths malloc'd). */
int iq_checkpoint_list(const char *out_dir, char ***paths, long **steps);
void iq_checkpoint_list_free(char **paths, long *steps, int n);

/* Keeps the newest keep_last checkpoints of OUT (all when keep_last <= 0) and, with keep_best, also the one
 * with the lowest eval_loss. */
void iq_checkpoint_rotate(const char *out_dir, int keep_last, bool keep_best);

/* Removes a folder tree (only plain files and sub-folders). */
iq_status iq_remove_tree(const char *path);

#endif
