/* lora_merge.h — LoRA adapters merged into a model's weights (issue #19), as PEFT's merge_and_unload: each
 * target weight W (out, in) becomes W + (alpha/r) · B (out, r) · A (r, in), in fp32. The merged model computes
 * the adapter model's function with the ordinary forward pass (and the KV-cache decoder), so `eval`,
 * `generate` and `score` with --adapter merge in memory, and `iqtrain merge` writes the merged model folder. */
#ifndef IQTRAIN_LORA_MERGE_H
#define IQTRAIN_LORA_MERGE_H

#include "iqtrain/lora.h"
#include "iqtrain/model.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/util.h"

/* Adds the adapters' low-rank products to m's target weights (lo made for m's config: 64 otherwise) and
 * marks the parameters changed (matmul.h: bf16 copies are refreshed). m must have no adapters attached. */
iq_status iq_lora_merge(iq_model *m, iq_lora *lo);

/* Reads the adapter folder DIR for m's config (lora_io.h; 65/66 naming the problem) and merges it into m. */
iq_status iq_lora_merge_folder(iq_model *m, const char *dir);

/* `iqtrain merge`: the base model folder model_dir with the adapter folder adapter_dir merged, written to the new
 * folder out as an ordinary model folder (config.json with the base's "iqtrain" section, generation_config.json,
 * model.safetensors in dtype F32/BF16/F16, and the base's tokenizer files and chat template when it has them).
 * out must not exist (73); it is written as a temp folder renamed into place. 65/66 from the inputs, 74 on a
 * write error. */
iq_status iq_merge_command(const char *model_dir, const char *adapter_dir, const char *out, iq_dtype dtype);

#endif
