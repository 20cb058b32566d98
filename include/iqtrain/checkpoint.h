/* checkpoint.h — model folders (Hugging Face GPT-2 layout) and training checkpoints (DESIGN §6).
 *
 * A model folder holds config.json (model_type gpt2, GPT2LMHeadModel, an "iqtrain" section with the loss
 * options), generation_config.json, model.safetensors (HF names, tied head not stored) and the tokenizer
 * files. A checkpoint folder adds optimizer.safetensors (AdamW m, v) and trainer_state.json, which holds
 * the training position and the CRC-32 of every other file. Checkpoints are written into a temporary
 * folder, fsynced and renamed into place, so a folder named checkpoint-STEP is complete or detectably
 * corrupt, never half-written. */
#ifndef IQTRAIN_CHECKPOINT_H
#define IQTRAIN_CHECKPOINT_H

#include <cJSON.h>
#include <stdbool.h>

#include "iqtrain/model.h"
#include "iqtrain/optim.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

/* Reads DIR/config.json. 66 when missing; 65 when malformed or an unsupported GPT-2 variant (named:
 * n_inner, scale_attn_weights, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn,
 * activation_function, tie_word_embeddings). *iqtrain_section (if not NULL) receives a copy of the
 * "iqtrain" object or NULL. */
iq_status iq_model_config_read(const char *dir, iq_model_config *cfg, cJSON **iqtrain_section);

/* Loads config.json + model.safetensors (or the shards listed in model.safetensors.index.json) of DIR into a new model sized for (max_batch, max_seq); max_seq 0
 * means the model's ctx. Every expected tensor must be present with its shape; a "transformer." prefix,
 * attn.bias / attn.masked_bias buffers and an lm_head.weight equal to wte are accepted; other tensors are
 * refused (65, naming file and tensor). */
iq_status iq_model_load_folder(const char *dir, int max_batch, int max_seq, iq_model **out, cJSON **iqtrain_section);

/* Whether iq_model_load_folder ignores (with a warning) tensors it does not know instead of refusing them. */
void iq_checkpoint_allow_extra_tensors(bool allow);

/* Writes config.json, generation_config.json, model.safetensors (dtype F32, BF16 or F16) and, when tok is
 * not NULL, the tokenizer files into DIR (which must exist). iqtrain_section may be NULL. */
iq_status iq_model_save_folder(iq_model *m, const iq_tokenizer *tok, const char *dir, iq_dtype dtype,
                               const cJSON *iqtrain_section);

/* Saves OUT/checkpoint-STEP atomically: the model folder (F32), optimizer.safetensors and
 * trainer_state.json = *state plus {"files": {name: crc32}}. An existing folder of that name is replaced.
 * *path_out (if not NULL) receives the folder's path (malloc'd). 73/74 on failure, nothing left behind. */
iq_status iq_checkpoint_save(const char *out_dir, long step, iq_model *m, iq_adamw *opt, const iq_tokenizer *tok,
                             const cJSON *iqtrain_section, const cJSON *state, char **path_out);

/* Verifies a checkpoint folder: trainer_state.json parses, its step, tokens_seen and build.threads are
 * integers in range (the file has no CRC of its own), and every other file's CRC-32 matches. 65 naming the
 * file that fails, 66 when the folder or a file is missing. On success *state receives trainer_state.json. */
iq_status iq_checkpoint_verify(const char *dir, cJSON **state);

/* Loads the optimizer state of a verified checkpoint into opt (which must match the model). */
iq_status iq_checkpoint_load_optimizer(const char *dir, iq_model *m, iq_adamw *opt);

/* Lists OUT/checkpoint-* folders by step, newest first; returns the count (paths malloc'd). */
int iq_checkpoint_list(const char *out_dir, char ***paths, long **steps);

/* Removes a folder tree (only plain files and sub-folders). */
iq_status iq_remove_tree(const char *path);

#endif
