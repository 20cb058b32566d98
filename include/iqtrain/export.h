/* export.h — a model folder as one GGUF file for llama.cpp, Ollama and LM Studio (DESIGN §10 "Export").
 *
 * The file is what llama.cpp's converter (convert_hf_to_gguf.py with gguf-py) writes for the same HF
 * folder: general.architecture and name, the family's hyper-parameters under "<arch>.", the tokenizer
 * (tokenizer.ggml.model "gpt2" for byte-level BPE, the pre-tokenizer's name, tokens, token types, merges,
 * BOS/EOS/padding ids, tokenizer.chat_template), and the tensors under llama.cpp's names, in its layouts:
 *   - gpt2 -> "gpt2": HF Conv1D weights [in, out] transposed to nn.Linear's [out, in];
 *   - llama and mistral -> "llama": q/k projections permuted from HF's rotate-half RoPE to llama.cpp's
 *     pairwise one (LlamaModel.permute); Llama 3 rope scaling as the rope_freqs tensor;
 *   - qwen2 -> "qwen2", qwen3 -> "qwen3": no permutation (llama.cpp rotates halves for them, like HF).
 * 1-D tensors, norms and GPT-2's position embedding stay F32 whatever the dtype; a Q8_0 tensor whose rows
 * are not a multiple of 32 values is written F16 (as the converter falls back).
 *
 * A model llama.cpp's architecture cannot represent (a Qwen o_proj bias, Qwen with Llama 3 rope scaling, a
 * tokenizer larger than the model's vocabulary, ...) is refused with 65 naming what. */
#ifndef IQTRAIN_EXPORT_H
#define IQTRAIN_EXPORT_H

#include <stdint.h>

#include "iqtrain/util.h"

typedef enum { IQ_EXPORT_F32 = 0, IQ_EXPORT_F16 = 1, IQ_EXPORT_BF16 = 2, IQ_EXPORT_Q8_0 = 3 } iq_export_dtype;

typedef struct {
    iq_export_dtype dtype; /* the matrices' type (default F32) */
    const char *name;      /* general.name; NULL: the folder's name (the converter's default) */
} iq_export_opts;

typedef struct {
    char arch[16];       /* general.architecture */
    char pre[16];        /* tokenizer.ggml.pre */
    int n_tensors;
    int n_f32;           /* tensors kept F32 (1-D, norms, position embedding) beside the chosen dtype */
    int n_f16_fallback;  /* Q8_0 tensors written F16 (rows not a multiple of 32) */
    int n_vocab, n_merges;
    int n_kv;            /* metadata keys */
    bool chat_template;  /* tokenizer.chat_template written */
    uint64_t bytes;      /* size of the file */
} iq_export_report;

/* "f32", "f16", "bf16", "q8_0" -> the dtype; false for another name. */
bool iq_export_dtype_parse(const char *s, iq_export_dtype *out);

/* Writes model folder `dir` (config.json, weights, tokenizer files, tokenizer_config.json) as a GGUF file
 * at out_path, atomically. 66 when the folder cannot be read; 65 for a malformed folder or a model llama.cpp
 * cannot represent (the message names what); 73/74 when the file cannot be created or written. rep may be
 * NULL. */
iq_status iq_export_gguf(const char *dir, const char *out_path, const iq_export_opts *o, iq_export_report *rep);

#endif
