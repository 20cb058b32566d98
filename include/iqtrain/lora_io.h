/* lora_io.h — reading a PEFT LoRA adapter folder (issue #19): adapter_config.json and adapter_model.safetensors,
 * as PeftModel.from_pretrained(base, DIR) reads what PeftModel.save_pretrained (and iq_lora_save) wrote.
 *
 * adapter_config.json: peft_type "LORA"; r (>= 1); lora_alpha (> 0; PEFT's default 8 when absent);
 * target_modules, a list of module names (each must be one this family adapts, lora.h) or a string (PEFT's
 * regex, matched against full module names; "all-linear" means every linear layer but the LM head): a string
 * is not evaluated, the tensors present name the targets; lora_dropout (any value: it only acts in training).
 * The keys that would change the computation must hold their neutral values, else the folder is refused by
 * name: bias "none", use_rslora false, use_dora false, lora_bias false, rank_pattern and
 * alpha_pattern empty, modules_to_save (but ["lm_head"]: --train-head's trained head, base_model.model.lm_head.weight,
 * for an untied head only), layers_to_transform, exclude_modules, target_parameters,
 * trainable_token_indices, layer_replication, alora_invocation_tokens (and the other variants' configs) null or
 * empty; init_lora_weights not one that changes the base (pissa, olora, corda, loftq, lora_ga). fan_in_fan_out
 * (PEFT's flag for HF Conv1D layers) may be true only for GPT-2 (PEFT sets it there itself; false is read the same). Other keys (task_type, inference_mode,
 * base_model_name_or_path, revision, peft_version, ...) are bookkeeping and ignored.
 *
 * adapter_model.safetensors (checked by the safetensors reader: header, offsets, sizes): exactly the tensors
 * base_model.model.model.layers.N.{self_attn,mlp}.MODULE.lora_A.weight (r, in) and ...lora_B.weight (out, r)
 * (GPT-2: base_model.model.transformer.h.N.{attn,mlp}.MODULE....) of every layer N < n_layer and every target, in F32, BF16 or F16 (widened exactly) or F64. A folder is
 * refused (65, naming the folder, the file and the tensor or key) for: a rank that differs between the config
 * and a tensor, an unknown target module or one of the other family, a tensor of a module outside target_modules, wrong shapes, a missing
 * tensor, an extra tensor, a layer index beyond the model. No adapter_config.json: 66. */
#ifndef IQTRAIN_LORA_IO_H
#define IQTRAIN_LORA_IO_H

#include "iqtrain/lora.h"
#include "iqtrain/model.h"
#include "iqtrain/util.h"

/* DIR/adapter_config.json as options: rank, alpha, targets (0 when target_modules is a regex string: the
 * tensors tell) and dropout (the folder's lora_dropout). 66 when the file is missing; 65 naming the key. */
iq_status iq_lora_read_config(const char *dir, iq_lora_opts *o);

/* Reads the adapter folder DIR, checked against the model config cfg, into new adapters for steps of up to
 * max_rows rows (1 is enough to merge them). dropout is the dropout the adapters train with (the folder's
 * lora_dropout is read by iq_lora_read_config; the caller decides). The adapters' base_model_name_or_path is
 * the folder's. 65/66 as above; 64 for a family without LoRA support. */
iq_status iq_lora_load(const char *dir, const iq_model_config *cfg, int max_rows, float dropout, iq_lora **out);

/* Reads the adapter folder DIR into existing adapters lo (of a model with n_layer layers) made with the same rank,
 * alpha and targets (65 naming what differs): resuming a LoRA run from a checkpoint's adapter/. */
iq_status iq_lora_load_into(iq_lora *lo, const char *dir, int n_layer);

#endif
