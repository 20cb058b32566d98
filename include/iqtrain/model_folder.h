/* model_folder.h — Hugging Face model folders (DESIGN §6): config.json, generation_config.json, the weights
 * (model.safetensors or shards with model.safetensors.index.json) and the tokenizer files. The family comes
 * from config.json's model_type, and the tensor names from the family's parameter table (model.h): this file
 * names no tensor itself.
 *
 * A folder that holds a trainer_state.json (a checkpoint) records the CRC-32 of its files there: every
 * load verifies them first, so a corrupt checkpoint is refused (65 naming the file) wherever it is read. */
#ifndef IQTRAIN_MODEL_FOLDER_H
#define IQTRAIN_MODEL_FOLDER_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "iqtrain/model.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

/* Reads DIR/config.json. 66 when missing; 65 when malformed, of an unknown model_type, or a variant the
 * family refuses (GPT-2: n_inner, scale_attn_weights, scale_attn_by_inverse_layer_idx,
 * reorder_and_upcast_attn, activation_function, tie_word_embeddings). *iqtrain_section (if not NULL)
 * receives a copy of the "iqtrain" object or NULL. */
iq_status iq_model_config_read(const char *dir, iq_model_config *cfg, cJSON **iqtrain_section);

/* Loads config.json and the weights of DIR into a new model of that mode sized for (max_batch, max_seq);
 * max_seq 0 means the model's ctx. Every tensor of the family's table must be present with its shape (checked
 * before anything is allocated); a "transformer." prefix, attn.bias / attn.masked_bias buffers and an
 * lm_head.weight equal to the tied embedding are accepted; other tensors are refused (65, naming file and
 * tensor). The folder's CRC-32s are verified first when it has a trainer_state.json. */
iq_status iq_model_load_folder(const char *dir, iq_model_mode mode, int max_batch, int max_seq, iq_model **out,
                               cJSON **iqtrain_section);

/* Loads the weights of DIR into an existing model (resuming: no second model is built). The folder's config
 * must describe the same model: 64 naming the first differing field otherwise. Unlike iq_model_load_folder it
 * does not verify the CRC-32s again: the caller has (resuming takes a checkpoint iq_checkpoint_verify passed). */
iq_status iq_model_load_weights(iq_model *m, const char *dir);

/* Whether loading ignores (with a warning) tensors it does not know instead of refusing them. */
void iq_model_folder_allow_extra_tensors(bool allow);

/* A LoRA adapter folder (lora_io.h) that iq_model_load_folder merges into every model it loads from here on
 * (lora_merge.h; NULL: none): `eval`, `generate` and `score` --adapter DIR. The string must outlive the loads. */
void iq_model_folder_set_adapter(const char *dir);

/* Writes config.json, generation_config.json, model.safetensors (dtype F32, BF16 or F16) and, when tok is
 * not NULL, the tokenizer files into DIR (which must exist). bos/eos ids are the tokenizer's end-of-text id.
 * iqtrain_section may be NULL. */
iq_status iq_model_save_folder(iq_model *m, const iq_tokenizer *tok, const char *dir, iq_dtype dtype,
                               const cJSON *iqtrain_section);

/* The files of a folder that carry a CRC-32 in trainer_state.json, in order; *n receives the count. */
const char *const *iq_folder_crc_files(int *n);
/* CRC-32 of a file. 66 when it cannot be read. */
iq_status iq_file_crc32(const char *path, uint32_t *crc);
/* Compares the files of DIR with the CRC-32s of files (a {"name": crc} object); skip names a file not to read
 * (or NULL). 65 naming the first file that is missing or differs. */
iq_status iq_folder_verify_crcs(const char *dir, const cJSON *files, const char *skip);

#endif
