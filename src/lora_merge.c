/* lora_merge.c — LoRA adapters merged into a model's weights (lora_merge.h), and `iqtrain merge`'s folder. */
#include "iqtrain/lora_merge.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iqtrain/chat_format.h"
#include "iqtrain/checkpoint.h"
#include "iqtrain/lora_io.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/tokenizer.h"

/* The model tensor an adapter tensor adapts: "X.lora_A.weight" -> "X.weight" (GPT-2's table drops the HF prefix
 * "transformer."); -1 when m has none. */
static int base_tensor(const iq_tensor_ref *mrefs, int nm, const char *lora_name) {
    const char *ab = strstr(lora_name, ".lora_");
    if (!ab) return -1;
    char want[sizeof mrefs->name];
    snprintf(want, sizeof want, "%.*s.weight", (int)(ab - lora_name), lora_name);
    const char *bare = strncmp(want, "transformer.", 12) == 0 ? want + 12 : want;
    for (int i = 0; i < nm; i++)
        if (strcmp(mrefs[i].name, want) == 0 || strcmp(mrefs[i].name, bare) == 0) return i;
    return -1;
}

iq_status iq_lora_merge(iq_model *m, iq_lora *lo) {
    if (iq_model_get_lora(m)) return iq_fail(IQ_EUSAGE, "LoRA merge: the model has adapters attached");
    int nm = iq_model_tensor_refs(m, NULL), nl = iq_lora_tensor_refs(lo, NULL);
    iq_tensor_ref *mrefs = iq_xcalloc((size_t)nm, sizeof *mrefs), *lrefs = iq_xcalloc((size_t)nl, sizeof *lrefs);
    iq_model_tensor_refs(m, mrefs);
    iq_lora_tensor_refs(lo, lrefs);
    size_t np, nlp;
    float *W = iq_model_param_memory(m, &np), *P = iq_lora_params(lo, &nlp);
    int r = iq_lora_get_opts(lo)->rank;
    bool conv1d = strcmp(iq_model_arch_name(iq_model_cfg(m)), "gpt2") == 0; /* HF Conv1D: W is (in, out) */
    iq_status s = IQ_OK;
    for (int i = 0; i + 1 < nl && !s; i += 2) { /* the table lists each target's A, then its B */
        const iq_tensor_ref *a = &lrefs[i], *b = &lrefs[i + 1];
        int k = base_tensor(mrefs, nm, a->name);
        int64_t out = b->shape[0], in = a->shape[1];
        if (k < 0 || mrefs[k].ndim != 2 || mrefs[k].shape[0] != (conv1d ? in : out) || mrefs[k].shape[1] != (conv1d ? out : in)) {
            s = iq_fail(IQ_EUSAGE, "LoRA merge: the adapters were made for another model (%s)", a->name);
            break;
        }
        if (conv1d) /* W (in, out) += scale * (B A)^T = scale * A^T (r, in)^T B^T (out, r)^T (PEFT's fan_in_fan_out) */
            iq_sgemm_fp32_ld(true, true, (int)in, (int)out, r, iq_lora_scale(lo), P + a->offset, (int)in, P + b->offset, r,
                             1.0f, W + mrefs[k].offset, (int)out);
        else /* W (out, in) += scale * B (out, r) A (r, in) */
            iq_sgemm_fp32_ld(false, false, (int)out, (int)in, r, iq_lora_scale(lo), P + b->offset, r, P + a->offset, (int)in,
                             1.0f, W + mrefs[k].offset, (int)in);
    }
    const float *head = iq_lora_head(lo); /* --train-head: the trained head replaces the base's (untied) lm_head */
    int kh = -1;
    for (int i = 0; head && i < nm; i++)
        if (strcmp(mrefs[i].name, "lm_head.weight") == 0) kh = i;
    if (!s && head && kh < 0) s = iq_fail(IQ_EUSAGE, "LoRA merge: the adapters train an lm_head the model does not have");
    if (!s && head) memcpy(W + mrefs[kh].offset, head, mrefs[kh].numel * sizeof(float));
    iq_matmul_params_changed();
    free(mrefs), free(lrefs);
    return s;
}

iq_status iq_lora_merge_folder(iq_model *m, const char *dir) {
    iq_lora *lo = NULL;
    iq_status s = iq_lora_load(dir, iq_model_cfg(m), 1, 0.0f, &lo);
    if (!s) s = iq_lora_merge(m, lo);
    iq_lora_free(lo);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// iqtrain merge

/* The base's tokenizer (NULL when its folder has no tokenizer files), its chat template's end of turn set. */
static iq_status base_tokenizer(const char *dir, iq_tokenizer **tok) {
    *tok = NULL;
    char *tj = iq_path_join(dir, "tokenizer.json"), *vj = iq_path_join(dir, "vocab.json");
    bool has = iq_file_exists(tj) || iq_file_exists(vj);
    free(tj), free(vj);
    if (!has) return IQ_OK;
    iq_status s = iq_tok_load(dir, tok);
    iq_chat_format *chat = NULL;
    if (!s) s = iq_chat_format_load(*tok, NULL, &chat);
    if (!s && chat) iq_tok_set_end_of_turn(*tok, iq_chat_format_end_of_turn(chat, *tok));
    iq_chat_format_free(chat);
    return s;
}

iq_status iq_merge_command(const char *model_dir, const char *adapter_dir, const char *out, iq_dtype dtype) {
    struct stat sb;
    if (stat(out, &sb) == 0) return iq_fail(IQ_ECANTCREAT, "%s already exists (merge writes a new folder)", out);
    iq_model *m = NULL;
    cJSON *section = NULL;
    iq_tokenizer *tok = NULL;
    iq_status s = iq_model_load_folder(model_dir, IQ_MODEL_INFER, 1, 1, &m, &section);
    if (!s) s = iq_lora_merge_folder(m, adapter_dir);
    if (!s) s = base_tokenizer(model_dir, &tok);
    char *tmp = iq_xmalloc(strlen(out) + 32);
    sprintf(tmp, "%s.tmp-%ld", out, (long)getpid());
    iq_remove_tree(tmp);
    if (!s) s = iq_mkdirs(tmp);
    if (!s) s = iq_model_save_folder(m, tok, tmp, dtype, section);
    if (!s) {
        iq_fsync_path(tmp);
        if (rename(tmp, out) != 0) s = iq_fail(IQ_EIO, "%s: rename failed: %s", out, strerror(errno));
    }
    if (s) iq_remove_tree(tmp);
    free(tmp);
    cJSON_Delete(section);
    iq_tok_free(tok);
    iq_model_free(m);
    return s;
}
