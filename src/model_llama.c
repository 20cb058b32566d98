/* model_llama.c — the Llama families (DESIGN §10) behind the model interface (model_arch.h): `llama` (Llama
 * 2/3.x, SmolLM/SmolLM2, TinyLlama), `mistral` (without a sliding window), `qwen2` (q/k/v biases) and `qwen3`
 * (per-head q/k RMSNorm). Pre-RMSNorm blocks, rotate-half RoPE (rope_theta, rope_scaling llama3),
 * grouped-query attention, SiLU-gated MLP, tied or untied LM head. HF nn.Linear weights are [out, in] and
 * stored as the files have them. The layers are in kernels_llama.c; forward/backward only do pointer
 * arithmetic and call them in order. One iq_arch per model_type, sharing everything but the config keys.
 *
 * Sections: configuration · config.json · parameter table · activations · forward · backward ·
 * KV-cache decoding · init · the families. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/kernels.h"
#include "iqtrain/kernels_llama.h"
#include "iqtrain/lora.h"
#include "iqtrain/matmul.h"
#include "iqtrain/rng.h"
#include "iqtrain/safetensors.h"
#include "model_arch.h"

#define MAX_HEAD_DIM 1024

// ----------------------------------------------------------------------------------------------------
// configuration

/* From scratch: head_dim and the SwiGLU width follow n_embd (8/3 C rounded up to a multiple of 16). */
static void llama_derive(iq_model_config *c) {
    c->head_dim = c->n_head > 0 && c->n_embd % c->n_head == 0 ? c->n_embd / c->n_head : 0;
    c->n_inner = ((8 * c->n_embd / 3 + 15) / 16) * 16;
}

static iq_status llama_preset(const char *name, iq_model_config *c) {
    int L, H, KV, C, P;
    float theta = 10000.0f;
    if (strcmp(name, "tiny") == 0) L = 2, H = 4, KV = 2, C = 64, P = 128;
    else if (strcmp(name, "small") == 0) L = 4, H = 4, KV = 2, C = 256, P = 256;
    else if (strcmp(name, "smollm2-135m") == 0) L = 30, H = 9, KV = 3, C = 576, P = 2048, theta = 100000.0f;
    else return iq_fail(IQ_EUSAGE, "unknown preset '%s' for %s (tiny, small, smollm2-135m)", name, c->arch);
    c->n_layer = L, c->n_head = H, c->n_kv_head = KV, c->n_embd = C, c->ctx = P, c->ln_eps = 1e-5f;
    c->rope_theta = theta;
    llama_derive(c);
    return IQ_OK;
}

static iq_status llama_check(const iq_model_config *c) {
    if (c->n_layer < 1 || c->n_layer > 256) return iq_fail(IQ_EUSAGE, "n_layer must be in 1..256, got %d", c->n_layer);
    if (c->n_embd < 1 || c->n_embd > 65536) return iq_fail(IQ_EUSAGE, "hidden size %d out of range (1..65536)", c->n_embd);
    if (c->n_head < 1 || c->n_head > 1024) return iq_fail(IQ_EUSAGE, "n_head %d out of range (1..1024)", c->n_head);
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head != 0)
        return iq_fail(IQ_EUSAGE, "n_head (%d) must be a positive multiple of num_key_value_heads (%d)", c->n_head, c->n_kv_head);
    if (c->head_dim < 2 || c->head_dim > MAX_HEAD_DIM || c->head_dim % 2 != 0)
        return iq_fail(IQ_EUSAGE, "head_dim %d must be even and in 2..%d (n_embd %d a multiple of n_head %d from scratch)",
                       c->head_dim, MAX_HEAD_DIM, c->n_embd, c->n_head);
    if (c->n_inner < 1 || c->n_inner > 1 << 20) return iq_fail(IQ_EUSAGE, "intermediate_size %d out of range", c->n_inner);
    if (c->ctx < 2 || c->ctx > 1 << 22) return iq_fail(IQ_EUSAGE, "ctx must be in 2..%d, got %d", 1 << 22, c->ctx);
    if (c->vocab < 2 || c->vocab > 4000000) return iq_fail(IQ_EUSAGE, "vocabulary size %d out of range", c->vocab);
    if (!(c->ln_eps > 0.0f) || c->ln_eps > 1.0f) return iq_fail(IQ_EUSAGE, "rms_norm_eps must be in (0, 1]");
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta)) return iq_fail(IQ_EUSAGE, "rope_theta must be positive");
    if (c->rope_factor != 0.0f && !(c->rope_factor > 0.0f && c->rope_low_freq > 0.0f && c->rope_high_freq > c->rope_low_freq &&
                                    c->rope_orig_ctx > 0 && isfinite(c->rope_factor) && isfinite(c->rope_high_freq)))
        return iq_fail(IQ_EUSAGE, "rope_scaling llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                                  "original_max_position_embeddings > 0");
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// config.json

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static bool present(const cJSON *o, const char *k) { return item(o, k) && !cJSON_IsNull(item(o, k)); }

static bool get_int(const cJSON *o, const char *k, int *v) {
    const cJSON *x = item(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || fabs(x->valuedouble) > 1e9) return false;
    *v = (int)x->valuedouble;
    return true;
}

/* An optional number (absent or null: def); false when present and no finite number. */
static bool get_num(const cJSON *o, const char *k, double def, double *v) {
    *v = def;
    if (!present(o, k)) return true;
    const cJSON *x = item(o, k);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return false;
    *v = x->valuedouble;
    return true;
}

/* An optional boolean (absent or null: def); false when present and no boolean. */
static bool get_bool(const cJSON *o, const char *k, bool def, bool *v) {
    *v = def;
    if (!present(o, k)) return true;
    if (!cJSON_IsBool(item(o, k))) return false;
    *v = cJSON_IsTrue(item(o, k));
    return true;
}

/* rope_scaling (or transformers 5's rope_parameters): none, "default", or "llama3" with its four fields. */
static iq_status read_rope_scaling(const cJSON *j, const char *path, iq_model_config *c) {
    const char *key = present(j, "rope_scaling") ? "rope_scaling" : "rope_parameters";
    const cJSON *rs = item(j, key);
    if (!rs || cJSON_IsNull(rs)) return IQ_OK;
    if (!cJSON_IsObject(rs)) return iq_fail(IQ_EDATA, "%s: %s is not an object", path, key);
    const cJSON *t = present(rs, "rope_type") ? item(rs, "rope_type") : item(rs, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : t ? "(not a string)" : "default";
    double theta;
    if (!get_num(rs, "rope_theta", c->rope_theta, &theta)) return iq_fail(IQ_EDATA, "%s: %s.rope_theta is not a number", path, key);
    c->rope_theta = (float)theta;
    if (strcmp(type, "default") == 0) return IQ_OK;
    if (strcmp(type, "llama3") != 0)
        return iq_fail(IQ_EDATA, "%s: unsupported %s type %.40s (iqtrain implements llama3 only)", path, key, type);
    double f, lo, hi;
    int orig;
    if (!present(rs, "factor") || !get_num(rs, "factor", 0, &f) || !get_num(rs, "low_freq_factor", 1, &lo) ||
        !get_num(rs, "high_freq_factor", 4, &hi) || !get_int(rs, "original_max_position_embeddings", &orig))
        return iq_fail(IQ_EDATA, "%s: %s llama3 needs numbers factor, low_freq_factor, high_freq_factor and an integer "
                                 "original_max_position_embeddings", path, key);
    c->rope_factor = (float)f, c->rope_low_freq = (float)lo, c->rope_high_freq = (float)hi, c->rope_orig_ctx = orig;
    return IQ_OK;
}

/* Keys that change the computation in ways iqtrain does not implement, refused by name unless at their
 * default. A sliding window is refused when it is shorter than the context (and, for Qwen, switched on). */
static iq_status refuse_variants(const cJSON *j, const char *path, const iq_model_config *c) {
    const cJSON *x;
    if ((x = item(j, "hidden_act")) && !(cJSON_IsString(x) && strcmp(x->valuestring, "silu") == 0))
        return iq_fail(IQ_EDATA, "%s: unsupported hidden_act %.40s (silu only)", path,
                       cJSON_IsString(x) ? x->valuestring : "(not a string)");
    bool b;
    if (!get_bool(j, "mlp_bias", false, &b) || b) return iq_fail(IQ_EDATA, "%s: unsupported mlp_bias (false only)", path);
    double d;
    if (!get_num(j, "attention_dropout", 0, &d) || d != 0.0)
        return iq_fail(IQ_EDATA, "%s: unsupported attention_dropout (0 only)", path);
    if (!get_num(j, "partial_rotary_factor", 1, &d) || d != 1.0)
        return iq_fail(IQ_EDATA, "%s: unsupported partial_rotary_factor (1 only)", path);
    static const char *const MOE[] = {"num_experts", "num_local_experts", "moe_intermediate_size"};
    for (int i = 0; i < 3; i++)
        if (present(j, MOE[i])) return iq_fail(IQ_EDATA, "%s: unsupported %s (mixture of experts)", path, MOE[i]);
    if ((x = item(j, "layer_types")) && !cJSON_IsNull(x)) {
        bool full = cJSON_IsArray(x);
        for (const cJSON *e = full ? x->child : NULL; e; e = e->next)
            full = full && cJSON_IsString(e) && strcmp(e->valuestring, "full_attention") == 0;
        if (!full) return iq_fail(IQ_EDATA, "%s: unsupported layer_types (full_attention only)", path);
    }
    bool use_sw = true; /* mistral: a window whenever sliding_window is set; qwen: only with use_sliding_window */
    if (strncmp(c->arch, "qwen", 4) == 0 && !get_bool(j, "use_sliding_window", false, &use_sw))
        return iq_fail(IQ_EDATA, "%s: use_sliding_window is not a boolean", path);
    int sw;
    if (use_sw && present(j, "sliding_window")) {
        if (!get_int(j, "sliding_window", &sw)) return iq_fail(IQ_EDATA, "%s: sliding_window is not an integer", path);
        if (sw < c->ctx)
            return iq_fail(IQ_EDATA, "%s: unsupported sliding_window %d shorter than the context (%d): iqtrain attends to "
                                     "every earlier position", path, sw, c->ctx);
    }
    return IQ_OK;
}

/* Every key config.json may hold: the ones read above and in refuse_variants, then metadata and the generic
 * PretrainedConfig keys (generation defaults, labels, ...) that do not change the model's computation. A key
 * outside the list is refused by name: iqtrain cannot know what it changes. */
static const char *const KNOWN_KEYS[] = {
    "model_type", "architectures", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "rope_scaling", "rope_parameters", "tie_word_embeddings", "attention_bias", "mlp_bias", "hidden_act",
    "attention_dropout", "partial_rotary_factor", "sliding_window", "use_sliding_window", "max_window_layers",
    "layer_types", "rope_interleaved", "pretraining_tp", "is_llama_config", "initializer_range", "use_cache",
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "torch_dtype", "dtype",
    "transformers_version", "_name_or_path", "name_or_path", "iqtrain", "transformers.js_config", "output_attentions",
    "output_hidden_states", "return_dict", "torchscript", "use_bfloat16", "tf_legacy_loss", "pruned_heads",
    "tie_encoder_decoder", "is_decoder", "is_encoder_decoder", "add_cross_attention", "cross_attention_hidden_size",
    "chunk_size_feed_forward", "id2label", "label2id", "num_labels", "problem_type", "finetuning_task",
    "tokenizer_class", "prefix", "task_specific_params", "max_length", "min_length", "do_sample", "early_stopping",
    "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
    "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
    "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id",
    "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
};

static iq_status refuse_unknown_keys(const cJSON *j, const char *path) {
    for (const cJSON *e = j->child; e; e = e->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof KNOWN_KEYS / sizeof *KNOWN_KEYS && !known; i++) known = strcmp(e->string, KNOWN_KEYS[i]) == 0;
        if (!known) return iq_fail(IQ_EDATA, "%s: unsupported key %.60s (unknown to the Llama families)", path, e->string);
    }
    bool b;
    if (!get_bool(j, "rope_interleaved", false, &b) || b)
        return iq_fail(IQ_EDATA, "%s: unsupported rope_interleaved (false only: rotate-half RoPE)", path);
    return IQ_OK;
}

static iq_status llama_config_from_json(const cJSON *j, const char *path, iq_model_config *c) {
    if (!get_int(j, "num_hidden_layers", &c->n_layer) || !get_int(j, "num_attention_heads", &c->n_head) ||
        !get_int(j, "hidden_size", &c->n_embd) || !get_int(j, "vocab_size", &c->vocab) ||
        !get_int(j, "intermediate_size", &c->n_inner) || !get_int(j, "max_position_embeddings", &c->ctx))
        return iq_fail(IQ_EDATA, "%s: num_hidden_layers, num_attention_heads, hidden_size, vocab_size, intermediate_size "
                                 "and max_position_embeddings must be integers", path);
    c->n_kv_head = c->n_head;
    if (present(j, "num_key_value_heads") && !get_int(j, "num_key_value_heads", &c->n_kv_head))
        return iq_fail(IQ_EDATA, "%s: num_key_value_heads is not an integer", path);
    c->head_dim = c->n_head > 0 && c->n_embd % c->n_head == 0 ? c->n_embd / c->n_head : 0;
    if (present(j, "head_dim") && !get_int(j, "head_dim", &c->head_dim))
        return iq_fail(IQ_EDATA, "%s: head_dim is not an integer", path);
    double eps, theta;
    if (!get_num(j, "rms_norm_eps", 1e-6, &eps)) return iq_fail(IQ_EDATA, "%s: rms_norm_eps is not a number", path);
    if (!get_num(j, "rope_theta", 10000.0, &theta)) return iq_fail(IQ_EDATA, "%s: rope_theta is not a number", path);
    c->ln_eps = (float)eps, c->rope_theta = (float)theta;
    bool tied, bias;
    if (!get_bool(j, "tie_word_embeddings", false, &tied)) return iq_fail(IQ_EDATA, "%s: tie_word_embeddings is not a boolean", path);
    if (!get_bool(j, "attention_bias", false, &bias)) return iq_fail(IQ_EDATA, "%s: attention_bias is not a boolean", path);
    c->untied = !tied;
    /* Qwen2: q/k/v biases, none on o_proj; Mistral: no biases (both ignore attention_bias, as transformers does) */
    bool qwen2 = strcmp(c->arch, "qwen2") == 0, fixed = qwen2 || strcmp(c->arch, "mistral") == 0;
    c->qkv_bias = qwen2 || (!fixed && bias);
    c->o_bias = !fixed && bias;
    c->qk_norm = strcmp(c->arch, "qwen3") == 0;
    iq_status st = read_rope_scaling(j, path, c);
    if (!st) st = refuse_variants(j, path, c);
    return st ? st : refuse_unknown_keys(j, path);
}

static void llama_config_to_json(const iq_model_config *c, cJSON *j) {
    bool qwen = strncmp(c->arch, "qwen", 4) == 0, mistral = strcmp(c->arch, "mistral") == 0;
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(j, "hidden_size", c->n_embd);
    cJSON_AddNumberToObject(j, "intermediate_size", c->n_inner);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layer);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_head);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_head);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->ctx);
    cJSON_AddNumberToObject(j, "rms_norm_eps", (double)c->ln_eps);
    cJSON_AddNumberToObject(j, "rope_theta", (double)c->rope_theta);
    if (c->rope_factor > 0.0f) {
        cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddNumberToObject(rs, "factor", (double)c->rope_factor);
        cJSON_AddNumberToObject(rs, "low_freq_factor", (double)c->rope_low_freq);
        cJSON_AddNumberToObject(rs, "high_freq_factor", (double)c->rope_high_freq);
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_orig_ctx);
    } else {
        cJSON_AddNullToObject(j, "rope_scaling");
    }
    cJSON_AddBoolToObject(j, "tie_word_embeddings", !c->untied);
    if (strcmp(c->arch, "qwen2") != 0 && !mistral) cJSON_AddBoolToObject(j, "attention_bias", c->o_bias);
    if (strcmp(c->arch, "llama") == 0) cJSON_AddBoolToObject(j, "mlp_bias", 0);
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
    cJSON_AddNumberToObject(j, "initializer_range", 0.02);
    if (mistral) cJSON_AddNullToObject(j, "sliding_window");
    if (qwen) cJSON_AddBoolToObject(j, "use_sliding_window", 0);
}

// ----------------------------------------------------------------------------------------------------
// parameter table: every tensor stacked over layers in the arena; the HF names address per-layer slices

enum { P_EMB, P_LN1, P_WQ, P_BQ, P_WK, P_BK, P_WV, P_BV, P_WO, P_BO, P_QN, P_KN, P_LN2, P_WG, P_WU, P_WD, P_NORM, P_HEAD, NUM_PARAMS };

/* Widths a tensor's dimensions are made of. */
enum { W_NONE, W_C, W_QD, W_KD, W_D, W_I };
/* When a per-layer tensor exists. */
enum { IF_ALWAYS, IF_QKV_BIAS, IF_O_BIAS, IF_QK_NORM };

/* The per-layer tensors in HF order: suffix, index into the params, shape (rows, cols; W_NONE = 1-D), when. */
static const struct {
    const char *suffix;
    int tensor, rows, cols, when;
} LAYER_TENSORS[] = {
    {"input_layernorm.weight", P_LN1, W_C, W_NONE, IF_ALWAYS},
    {"self_attn.q_proj.weight", P_WQ, W_QD, W_C, IF_ALWAYS},
    {"self_attn.q_proj.bias", P_BQ, W_QD, W_NONE, IF_QKV_BIAS},
    {"self_attn.k_proj.weight", P_WK, W_KD, W_C, IF_ALWAYS},
    {"self_attn.k_proj.bias", P_BK, W_KD, W_NONE, IF_QKV_BIAS},
    {"self_attn.v_proj.weight", P_WV, W_KD, W_C, IF_ALWAYS},
    {"self_attn.v_proj.bias", P_BV, W_KD, W_NONE, IF_QKV_BIAS},
    {"self_attn.o_proj.weight", P_WO, W_C, W_QD, IF_ALWAYS},
    {"self_attn.o_proj.bias", P_BO, W_C, W_NONE, IF_O_BIAS},
    {"self_attn.q_norm.weight", P_QN, W_D, W_NONE, IF_QK_NORM},
    {"self_attn.k_norm.weight", P_KN, W_D, W_NONE, IF_QK_NORM},
    {"post_attention_layernorm.weight", P_LN2, W_C, W_NONE, IF_ALWAYS},
    {"mlp.gate_proj.weight", P_WG, W_I, W_C, IF_ALWAYS},
    {"mlp.up_proj.weight", P_WU, W_I, W_C, IF_ALWAYS},
    {"mlp.down_proj.weight", P_WD, W_C, W_I, IF_ALWAYS},
};
#define N_LAYER_TENSORS ((int)(sizeof LAYER_TENSORS / sizeof *LAYER_TENSORS))

static size_t width(const iq_model_config *c, int w) {
    size_t v[] = {1, (size_t)c->n_embd, (size_t)c->n_head * c->head_dim, (size_t)c->n_kv_head * c->head_dim,
                  (size_t)c->head_dim, (size_t)c->n_inner};
    return v[w];
}

static bool exists(const iq_model_config *c, int when) {
    return when == IF_ALWAYS || (when == IF_QKV_BIAS && c->qkv_bias) || (when == IF_O_BIAS && c->o_bias) ||
           (when == IF_QK_NORM && c->qk_norm);
}

/* Floats of each stacked tensor (0 when the config has none). */
static void param_sizes(const iq_model_config *c, size_t s[NUM_PARAMS]) {
    memset(s, 0, NUM_PARAMS * sizeof *s);
    size_t V = (size_t)c->vocab, C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    s[P_EMB] = V * C;
    for (int t = 0; t < N_LAYER_TENSORS; t++)
        if (exists(c, LAYER_TENSORS[t].when))
            s[LAYER_TENSORS[t].tensor] = L * width(c, LAYER_TENSORS[t].rows) * width(c, LAYER_TENSORS[t].cols);
    s[P_NORM] = C;
    s[P_HEAD] = c->untied ? V * C : 0;
}

typedef struct {
    float *t[NUM_PARAMS];        /* stacked tensors (NULL when absent, or held in bf16) */
    const uint16_t *h[NUM_PARAMS]; /* a bf16 base (model.h, IQ_MODEL_BF16_BASE): the stacked weight matrices */
} params;

static bool is_matrix(int tensor) {
    for (int t = 0; t < N_LAYER_TENSORS; t++)
        if (LAYER_TENSORS[t].tensor == tensor) return LAYER_TENSORS[t].cols != W_NONE;
    return false;
}

/* Points p at the arena mem, or with mem16 (a bf16 base) the weight matrices at mem16 and the others at mem,
 * each arena in the table's order (as model.c's split_bf16 lays them out). */
static void point_params(params *p, float *mem, const uint16_t *mem16, const iq_model_config *c) {
    size_t s[NUM_PARAMS];
    param_sizes(c, s);
    for (int i = 0; i < NUM_PARAMS; i++) {
        bool half = mem16 && is_matrix(i);
        p->t[i] = s[i] && !half ? mem : NULL;
        p->h[i] = s[i] && half ? mem16 : NULL;
        if (half) mem16 += s[i];
        else mem += s[i];
    }
}

static void set_ref(iq_tensor_ref *r, const char *name, int64_t s0, int64_t s1, size_t off, bool decay) {
    snprintf(r->name, sizeof r->name, "%s", name);
    r->ndim = s1 ? 2 : 1;
    r->shape[0] = s0;
    r->shape[1] = s1;
    r->offset = off;
    r->numel = (size_t)s0 * (size_t)(s1 ? s1 : 1);
    r->decay = decay;
}

static int llama_tensors(const iq_model_config *c, iq_tensor_ref *refs) {
    int per = 0;
    for (int t = 0; t < N_LAYER_TENSORS; t++) per += exists(c, LAYER_TENSORS[t].when);
    int n = 1 + per * c->n_layer + 1 + (c->untied ? 1 : 0);
    if (!refs) return n;
    size_t s[NUM_PARAMS], base[NUM_PARAMS], off = 0;
    param_sizes(c, s);
    for (int i = 0; i < NUM_PARAMS; i++) base[i] = off, off += s[i];
    int64_t V = c->vocab, C = c->n_embd;
    int k = 0;
    set_ref(&refs[k++], "model.embed_tokens.weight", V, C, base[P_EMB], false);
    char nm[64];
    for (int l = 0; l < c->n_layer; l++)
        for (int t = 0; t < N_LAYER_TENSORS; t++) {
            if (!exists(c, LAYER_TENSORS[t].when)) continue;
            size_t rows = width(c, LAYER_TENSORS[t].rows), cols = LAYER_TENSORS[t].cols ? width(c, LAYER_TENSORS[t].cols) : 0;
            snprintf(nm, sizeof nm, "model.layers.%d.%s", l, LAYER_TENSORS[t].suffix);
            set_ref(&refs[k++], nm, (int64_t)rows, (int64_t)cols, base[LAYER_TENSORS[t].tensor] + (size_t)l * rows * (cols ? cols : 1),
                    cols != 0);
        }
    set_ref(&refs[k++], "model.norm.weight", C, 0, base[P_NORM], false);
    if (c->untied) set_ref(&refs[k++], "lm_head.weight", V, C, base[P_HEAD], false);
    return n;
}

/* Old HF checkpoints store the rotary frequencies as buffers; they are no parameters (iqtrain computes them). */
static bool llama_hf_buffer(const char *name) {
    size_t n = strlen(name);
    return n >= 20 && strcmp(name + n - 20, "rotary_emb.inv_freq") == 0;
}

static size_t llama_head_offset(const iq_model_config *c) {
    if (!c->untied) return 0; /* tied: the head is the embedding */
    size_t s[NUM_PARAMS], off = 0;
    param_sizes(c, s);
    for (int i = 0; i < P_HEAD; i++) off += s[i];
    return off;
}

// ----------------------------------------------------------------------------------------------------
// activations: (L, ...) stacks in training mode; one layer's worth, reused by every layer, in inference;
// with recomputation only A_RES3 is stacked (stacked() below). The entries after A_RES3 are not stacked.
// Their gradients are one layer's worth in training too: backward visits a layer once, clears that layer's
// entries, and passes the residual stream's gradient between the A_RES3 and A_ENC entries (the gradients of
// a layer's output and of its input).

enum {
    A_ENC,                                   /* (N,C) */
    A_LN1, A_LN1R,                           /* (N,C), (N) */
    A_Q, A_K, A_V,                           /* (N,QD), (N,KD), (N,KD): projections (q, k roped in place w/o qk norm) */
    A_QN, A_QNR, A_KN, A_KNR,                /* qk norm: (N,QD), (N*Hq), (N,KD), (N*Hk); roped in place */
    A_ATT, A_ATTY, A_ATTPROJ, A_RES2,        /* (B,Hq,T,T), (N,QD), (N,C), (N,C) */
    A_LN2, A_LN2R, A_GATE, A_UP, A_H, A_DOWN, A_RES3, /* (N,C), (N), (N,I) x3, (N,C), (N,C) */
    A_LNF, A_LNFR, A_COS, A_SIN,             /* (N,C), (N), (T,D/2) x2 */
    NUM_ACT
};

typedef struct {
    params p, g;              /* g: NULL pointers in inference mode */
    float *a[NUM_ACT], *ga[NUM_ACT]; /* ga: NULL pointers in inference mode */
    size_t per[NUM_ACT];      /* floats between layers of a stacked entry (0 in inference: one layer reused) */
    double inv_freq[MAX_HEAD_DIM / 2];
} llama_layout;

/* Floats of each entry for one layer (stacked ones) or in all (the others). */
static void act_layer_sizes(const iq_model_config *c, int B, int T, size_t s[NUM_ACT]) {
    size_t N = (size_t)B * T, C = (size_t)c->n_embd, Hq = (size_t)c->n_head, Hk = (size_t)c->n_kv_head;
    size_t QD = width(c, W_QD), KD = width(c, W_KD), I = (size_t)c->n_inner, qk = c->qk_norm ? 1 : 0;
    size_t v[NUM_ACT] = {N * C,  N * C,  N,      N * QD, N * KD, N * KD, qk * N * QD, qk * N * Hq, qk * N * KD,
                         qk * N * Hk, B * Hq * T * T, N * QD, N * C, N * C, N * C, N, N * I, N * I, N * I, N * C, N * C,
                         N * C,  N,      (size_t)T * c->head_dim / 2, (size_t)T * c->head_dim / 2};
    for (int i = 0; i < NUM_ACT; i++) s[i] = iq_line_floats(v[i]); /* every entry (and layer) starts on a cache line */
}

/* Which entries hold every layer: none (inference, and the gradients), all of A_LN1..A_RES3 (training), or
 * only A_RES3, the residual stream after each layer (training with recomputation: backward recomputes a
 * layer's other activations from its input, the previous layer's A_RES3). */
enum { STACK_NONE, STACK_ALL, STACK_RESIDUAL };

static bool stacked(int i, int how) {
    return how == STACK_ALL ? i >= A_LN1 && i <= A_RES3 : how == STACK_RESIDUAL && i == A_RES3;
}

static size_t act_sizes(const iq_model_config *c, int B, int T, int how, size_t s[NUM_ACT]) {
    act_layer_sizes(c, B, T, s);
    size_t total = 0;
    for (int i = 0; i < NUM_ACT; i++) {
        if (stacked(i, how)) s[i] *= (size_t)c->n_layer;
        total += s[i];
    }
    return total;
}

static size_t llama_act_floats(const iq_model_config *c, int B, int T, bool train) {
    size_t s[NUM_ACT];
    return act_sizes(c, B, T, train ? STACK_ALL : STACK_NONE, s);
}

static size_t llama_grad_act_floats(const iq_model_config *c, int B, int T) {
    size_t s[NUM_ACT];
    return act_sizes(c, B, T, STACK_NONE, s);
}

static size_t llama_recompute_act_floats(const iq_model_config *c, int B, int T) {
    size_t s[NUM_ACT];
    return act_sizes(c, B, T, STACK_RESIDUAL, s);
}

static void point_acts(float **a, float *mem, const size_t s[NUM_ACT]) {
    for (int i = 0; i < NUM_ACT; i++) {
        a[i] = mem;
        mem += s[i];
    }
}

static void llama_layout_fn(iq_model *m, int B, int T) {
    llama_layout *y = m->layout;
    const iq_model_config *c = &m->cfg;
    bool train = m->mode == IQ_MODEL_TRAIN;
    point_params(&y->p, m->params_memory, m->params_bf16, c);
    memset(&y->g, 0, sizeof y->g);
    if (train && m->grads_memory) point_params(&y->g, m->grads_memory, NULL, c);
    size_t s[NUM_ACT];
    int how = !train ? STACK_NONE : m->recompute ? STACK_RESIDUAL : STACK_ALL;
    act_layer_sizes(c, B, T, y->per);
    for (int i = 0; i < NUM_ACT; i++)
        if (!stacked(i, how)) y->per[i] = 0;
    act_sizes(c, B, T, how, s);
    point_acts(y->a, m->acts_memory, s);
    act_sizes(c, B, T, STACK_NONE, s);
    if (train) point_acts(y->ga, m->grads_acts_memory, s);
    iq_rope_freqs(y->inv_freq, c->head_dim, c->rope_theta, c->rope_factor, c->rope_low_freq, c->rope_high_freq,
                  c->rope_orig_ctx);
}

static float *llama_lnf(iq_model *m) { return ((llama_layout *)m->layout)->a[A_LNF]; }
static float *llama_dlnf(iq_model *m) { return ((llama_layout *)m->layout)->ga[A_LNF]; }

/* Entry i of layer l in arena a (activations; their gradients are one layer: ga[i]). */
static float *at(const llama_layout *y, float *const *a, int i, int l) { return a[i] + y->per[i] * (size_t)l; }
/* Layer l's slice of stacked parameter i (NULL when absent). */
static float *pl(const params *p, int i, int l, size_t per) { return p->t[i] ? p->t[i] + per * (size_t)l : NULL; }

// ----------------------------------------------------------------------------------------------------
// forward

typedef struct {
    int B, T, N, C, Hq, Hk, D, QD, KD, I;
    float eps;
    bool qk_norm;
    iq_lora *lora; /* attached adapters (NULL: none) */
    bool frozen;   /* adapters attached or no gradient arena (IQ_MODEL_FROZEN): no parameter gradients */
    float dw_beta; /* backward: 0 writes the weight matrices' gradients, 1 adds to them (iq_model.grads_unset) */
} dims;

static dims dims_of(const iq_model_config *c, int B, int T) {
    dims d = {B, T, B * T, c->n_embd, c->n_head, c->n_kv_head, c->head_dim, c->n_head * c->head_dim,
              c->n_kv_head * c->head_dim, c->n_inner, c->ln_eps, c->qk_norm, NULL, false, 1.0f};
    return d;
}

/* out (N, OC) = inp (N, C) W^T + b: W the (OC, C) slice of layer l of stacked tensor w, fp32 or bf16 (a bf16 base);
 * b of stacked tensor b (-1: none). */
static void lin_forward(const params *p, int w, int b, int l, float *out, const float *inp, int N, int C, int OC) {
    size_t per = (size_t)C * OC;
    const float *bias = b >= 0 ? pl(p, b, l, (size_t)OC) : NULL;
    if (p->h[w]) iq_linear_forward_bf16(out, inp, p->h[w] + per * (size_t)l, bias, N, C, OC);
    else iq_linear_forward(out, inp, pl(p, w, l, per), bias, N, C, OC);
}

/* dinp += dout W; with gradients g (not FROZEN) also dW and db. A bf16 weight is always frozen. */
static void lin_backward(const params *p, const params *g, int w, int b, int l, float *dinp, const float *dout,
                         const float *inp, int N, int C, int OC, float dw_beta) {
    size_t per = (size_t)C * OC;
    if (p->h[w]) iq_linear_backward_bf16(dinp, dout, p->h[w] + per * (size_t)l, N, C, OC);
    else
        iq_linear_backward(dinp, pl(g, w, l, per), b >= 0 ? pl(g, b, l, (size_t)OC) : NULL, dout, inp, pl(p, w, l, per), N,
                           C, OC, dw_beta);
}

/* res2 = res + o_proj(attention(rope(norm(q, k)), v)) of rmsnorm(res) */
static void attn_forward(const llama_layout *y, const dims *d, int l, const float *res) {
    const params *p = &y->p;
    float *const *a = y->a;
    size_t C = (size_t)d->C, D = (size_t)d->D;
    float *ln1 = at(y, a, A_LN1, l), *q = at(y, a, A_Q, l), *k = at(y, a, A_K, l), *v = at(y, a, A_V, l);
    iq_rmsnorm_forward(ln1, at(y, a, A_LN1R, l), res, pl(p, P_LN1, l, C), d->N, d->C, d->eps);
    iq_matmul_group_begin(); /* ln1 is rounded to bf16 once for the three projections */
    lin_forward(p, P_WQ, P_BQ, l, q, ln1, d->N, d->C, d->QD);
    lin_forward(p, P_WK, P_BK, l, k, ln1, d->N, d->C, d->KD);
    lin_forward(p, P_WV, P_BV, l, v, ln1, d->N, d->C, d->KD);
    iq_matmul_group_end();
    iq_lora_forward(d->lora, IQ_LORA_Q, l, q, ln1, d->N);
    iq_lora_forward(d->lora, IQ_LORA_K, l, k, ln1, d->N);
    iq_lora_forward(d->lora, IQ_LORA_V, l, v, ln1, d->N);
    float *qr = q, *kr = k;
    if (d->qk_norm) {
        qr = at(y, a, A_QN, l), kr = at(y, a, A_KN, l);
        iq_rmsnorm_forward(qr, at(y, a, A_QNR, l), q, pl(p, P_QN, l, D), d->N * d->Hq, d->D, d->eps);
        iq_rmsnorm_forward(kr, at(y, a, A_KNR, l), k, pl(p, P_KN, l, D), d->N * d->Hk, d->D, d->eps);
    }
    iq_rope_forward(qr, a[A_COS], a[A_SIN], d->N, d->T, d->Hq, d->D);
    iq_rope_forward(kr, a[A_COS], a[A_SIN], d->N, d->T, d->Hk, d->D);
    float *atty = at(y, a, A_ATTY, l), *proj = at(y, a, A_ATTPROJ, l);
    iq_gqa_forward(atty, at(y, a, A_ATT, l), qr, kr, v, d->B, d->T, d->Hq, d->Hk, d->D);
    lin_forward(p, P_WO, P_BO, l, proj, atty, d->N, d->QD, d->C);
    iq_lora_forward(d->lora, IQ_LORA_O, l, proj, atty, d->N);
    iq_residual_forward(at(y, a, A_RES2, l), res, proj, (size_t)d->N * C);
}

/* res3 = res2 + down(silu(gate(x)) * up(x)), x = rmsnorm(res2) */
static void mlp_forward(const llama_layout *y, const dims *d, int l) {
    const params *p = &y->p;
    float *const *a = y->a;
    size_t C = (size_t)d->C, I = (size_t)d->I;
    float *res2 = at(y, a, A_RES2, l), *ln2 = at(y, a, A_LN2, l), *gate = at(y, a, A_GATE, l), *up = at(y, a, A_UP, l);
    float *h = at(y, a, A_H, l), *down = at(y, a, A_DOWN, l);
    iq_rmsnorm_forward(ln2, at(y, a, A_LN2R, l), res2, pl(p, P_LN2, l, C), d->N, d->C, d->eps);
    iq_matmul_group_begin(); /* ln2 rounded once for both */
    lin_forward(p, P_WG, -1, l, gate, ln2, d->N, d->C, d->I);
    lin_forward(p, P_WU, -1, l, up, ln2, d->N, d->C, d->I);
    iq_matmul_group_end();
    iq_lora_forward(d->lora, IQ_LORA_GATE, l, gate, ln2, d->N);
    iq_lora_forward(d->lora, IQ_LORA_UP, l, up, ln2, d->N);
    iq_swiglu_forward(h, gate, up, (size_t)d->N * I);
    lin_forward(p, P_WD, -1, l, down, h, d->N, d->I, d->C);
    iq_lora_forward(d->lora, IQ_LORA_DOWN, l, down, h, d->N);
    iq_residual_forward(at(y, a, A_RES3, l), res2, down, (size_t)d->N * C);
}

static void llama_forward(iq_model *m, const int32_t *ids, int B, int T) {
    const iq_model_config *c = &m->cfg;
    llama_layout *y = m->layout;
    dims d = dims_of(c, B, T);
    d.lora = m->lora;
    iq_embed_forward(y->a[A_ENC], ids, y->p.t[P_EMB], d.N, d.C);
    iq_rope_table(y->a[A_COS], y->a[A_SIN], NULL, T, y->inv_freq, d.D);
    for (int l = 0; l < c->n_layer; l++) {
        attn_forward(y, &d, l, l == 0 ? y->a[A_ENC] : at(y, y->a, A_RES3, l - 1));
        mlp_forward(y, &d, l);
    }
    iq_rmsnorm_forward(y->a[A_LNF], y->a[A_LNFR], at(y, y->a, A_RES3, c->n_layer - 1), y->p.t[P_NORM], d.N, d.C, d.eps);
}

// ----------------------------------------------------------------------------------------------------
// backward (training mode: every layer's activations are stacked, or recomputed layer by layer from its input;
// their gradients are one layer's)

/* from dres3 (the gradient of layer l's output) to d res2 */
/* No gradients: the parameters of a frozen base (adapters attached, or no gradient arena). */
static const params FROZEN;

static void mlp_backward(const llama_layout *y, const dims *d, int l, const float *dres3) {
    const params *p = &y->p, *g = d->frozen ? &FROZEN : &y->g;
    float *const *a = y->a, *const *ga = y->ga;
    size_t C = (size_t)d->C, I = (size_t)d->I, NI = (size_t)d->N * I;
    iq_residual_backward(ga[A_RES2], ga[A_DOWN], dres3, (size_t)d->N * C);
    lin_backward(p, g, P_WD, -1, l, ga[A_H], ga[A_DOWN], at(y, a, A_H, l), d->N, d->I, d->C, d->dw_beta);
    iq_lora_backward(d->lora, IQ_LORA_DOWN, l, ga[A_H], ga[A_DOWN], at(y, a, A_H, l), d->N);
    iq_swiglu_backward(ga[A_GATE], ga[A_UP], ga[A_H], at(y, a, A_GATE, l), at(y, a, A_UP, l), NI);
    lin_backward(p, g, P_WU, -1, l, ga[A_LN2], ga[A_UP], at(y, a, A_LN2, l), d->N, d->C, d->I, d->dw_beta);
    lin_backward(p, g, P_WG, -1, l, ga[A_LN2], ga[A_GATE], at(y, a, A_LN2, l), d->N, d->C, d->I, d->dw_beta);
    iq_lora_backward(d->lora, IQ_LORA_UP, l, ga[A_LN2], ga[A_UP], at(y, a, A_LN2, l), d->N);
    iq_lora_backward(d->lora, IQ_LORA_GATE, l, ga[A_LN2], ga[A_GATE], at(y, a, A_LN2, l), d->N);
    iq_rmsnorm_backward(ga[A_RES2], pl(g, P_LN2, l, C), ga[A_LN2], at(y, a, A_RES2, l), pl(p, P_LN2, l, C),
                        at(y, a, A_LN2R, l), d->N, d->C);
}

/* from d res2 (layer l) to d res (the layer's input, accumulated into dres) */
static void attn_backward(const llama_layout *y, const dims *d, int l, const float *res, float *dres) {
    const params *p = &y->p, *g = d->frozen ? &FROZEN : &y->g;
    float *const *a = y->a, *const *ga = y->ga;
    size_t C = (size_t)d->C, D = (size_t)d->D;
    iq_residual_backward(dres, ga[A_ATTPROJ], ga[A_RES2], (size_t)d->N * C);
    lin_backward(p, g, P_WO, P_BO, l, ga[A_ATTY], ga[A_ATTPROJ], at(y, a, A_ATTY, l), d->N, d->QD, d->C, d->dw_beta);
    iq_lora_backward(d->lora, IQ_LORA_O, l, ga[A_ATTY], ga[A_ATTPROJ], at(y, a, A_ATTY, l), d->N);
    int iq = d->qk_norm ? A_QN : A_Q, ik = d->qk_norm ? A_KN : A_K;
    float *dqr = ga[iq], *dkr = ga[ik];
    iq_gqa_backward(dqr, dkr, ga[A_V], ga[A_ATT], ga[A_ATTY], at(y, a, iq, l), at(y, a, ik, l), at(y, a, A_V, l),
                    at(y, a, A_ATT, l), d->B, d->T, d->Hq, d->Hk, d->D);
    iq_rope_backward(dqr, a[A_COS], a[A_SIN], d->N, d->T, d->Hq, d->D);
    iq_rope_backward(dkr, a[A_COS], a[A_SIN], d->N, d->T, d->Hk, d->D);
    if (d->qk_norm) {
        iq_rmsnorm_backward(ga[A_Q], pl(g, P_QN, l, D), dqr, at(y, a, A_Q, l), pl(p, P_QN, l, D), at(y, a, A_QNR, l),
                            d->N * d->Hq, d->D);
        iq_rmsnorm_backward(ga[A_K], pl(g, P_KN, l, D), dkr, at(y, a, A_K, l), pl(p, P_KN, l, D), at(y, a, A_KNR, l),
                            d->N * d->Hk, d->D);
    }
    float *ln1 = at(y, a, A_LN1, l), *dln1 = ga[A_LN1];
    lin_backward(p, g, P_WQ, P_BQ, l, dln1, ga[A_Q], ln1, d->N, d->C, d->QD, d->dw_beta);
    lin_backward(p, g, P_WK, P_BK, l, dln1, ga[A_K], ln1, d->N, d->C, d->KD, d->dw_beta);
    lin_backward(p, g, P_WV, P_BV, l, dln1, ga[A_V], ln1, d->N, d->C, d->KD, d->dw_beta);
    iq_lora_backward(d->lora, IQ_LORA_Q, l, dln1, ga[A_Q], ln1, d->N);
    iq_lora_backward(d->lora, IQ_LORA_K, l, dln1, ga[A_K], ln1, d->N);
    iq_lora_backward(d->lora, IQ_LORA_V, l, dln1, ga[A_V], ln1, d->N);
    iq_rmsnorm_backward(dres, pl(g, P_LN1, l, C), dln1, res, pl(p, P_LN1, l, C), at(y, a, A_LN1R, l), d->N, d->C);
}

static void llama_backward(iq_model *m, const int32_t *ids, int B, int T) {
    const iq_model_config *c = &m->cfg;
    llama_layout *y = m->layout;
    dims d = dims_of(c, B, T);
    d.lora = m->lora;
    d.frozen = m->lora || !m->grads_memory;
    d.dw_beta = m->grads_unset ? 0.0f : 1.0f;
    int L = c->n_layer;
    size_t NC = (size_t)d.N * d.C, layer = (size_t)(y->ga[A_RES3] - y->ga[A_LN1]); /* one layer's entries, A_LN1..A_DOWN */
    /* the residual stream's gradient alternates between two (N, C) entries: the output's and the input's */
    float *dout = y->ga[A_RES3], *din = y->ga[A_ENC];
    iq_zero(dout, NC);
    iq_rmsnorm_backward(dout, d.frozen ? NULL : y->g.t[P_NORM], y->ga[A_LNF], at(y, y->a, A_RES3, L - 1), y->p.t[P_NORM], y->a[A_LNFR], d.N, d.C);
    for (int l = L - 1; l >= 0; l--) {
        const float *res = l == 0 ? y->a[A_ENC] : at(y, y->a, A_RES3, l - 1);
        if (m->recompute && l < L - 1) { /* the last layer's activations are still there from the forward pass */
            attn_forward(y, &d, l, res);
            mlp_forward(y, &d, l); /* rewrites the layer's output with the same values */
        }
        /* every gradient the layer's backward writes is accumulated into: clear them */
        iq_zero(y->ga[A_LN1], layer);
        iq_zero(din, NC);
        mlp_backward(y, &d, l, dout);
        attn_backward(y, &d, l, res, din);
        float *t = dout;
        dout = din, din = t;
    }
    if (!d.frozen) iq_embed_backward(y->g.t[P_EMB], dout, ids, d.N, d.C); /* frozen under adapters */
}

// ----------------------------------------------------------------------------------------------------
// KV-cache decoding: the same layers over the new rows only, attention against the cached (roped) keys and
// the values of the key/value heads

enum { S_X, S_LN, S_Q, S_K, S_V, S_QN, S_KN, S_ATTY, S_PROJ, S_GATE, S_UP, S_H, S_ATT, S_RSTD, S_COS, S_SIN, NUM_SCRATCH };

static size_t point_decode(const iq_model_config *c, int R, int max_len, float *mem, float **s) {
    size_t r = (size_t)R, C = (size_t)c->n_embd, QD = width(c, W_QD), KD = width(c, W_KD), I = (size_t)c->n_inner;
    size_t Hq = (size_t)c->n_head, h2 = (size_t)c->head_dim / 2;
    size_t sizes[NUM_SCRATCH] = {r * C, r * C, r * QD, r * KD, r * KD, r * QD, r * KD, r * QD, r * C,
                                 r * I, r * I, r * I, r * Hq * (size_t)max_len, r * Hq, r * h2, r * h2};
    size_t total = 0;
    for (int i = 0; i < NUM_SCRATCH; i++) {
        if (mem) s[i] = mem + total;
        total += sizes[i];
    }
    return total;
}

static size_t llama_kv_width(const iq_model_config *c) { return width(c, W_KD); }
static size_t llama_decode_scratch(const iq_model_config *c, int max_rows, int max_len) {
    float *s[NUM_SCRATCH];
    return point_decode(c, max_rows, max_len, NULL, s);
}

/* Causal attention of the new rows' queries (R, QD) against slot caches K, V (slot, pos, KD) up to each row's
 * position; query head h reads key/value head h / (Hq / Hk). */
static void decode_attention(const iq_model_config *c, const iq_kv_cache *kv, const float *kc, const float *vc,
                             float *const *s, int R) {
    int Hq = c->n_head, D = c->head_dim, G = c->n_head / c->n_kv_head;
    size_t KW = width(c, W_KD), QD = width(c, W_QD), per = (size_t)kv->max_len * KW;
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2)
    for (int r = 0; r < R; r++)
        for (int h = 0; h < Hq; h++) {
            const float *q = s[S_QN] + (size_t)r * QD + (size_t)h * D;
            int pos = kv->row_pos[r];
            const float *K = kc + (size_t)kv->row_slot[r] * per + (size_t)(h / G) * D;
            const float *V = vc + (size_t)kv->row_slot[r] * per + (size_t)(h / G) * D;
            float *a = s[S_ATT] + ((size_t)r * Hq + h) * kv->max_len, mx = -INFINITY, sum = 0.0f;
            for (int t = 0; t <= pos; t++) {
                float dot = 0.0f;
                for (int i = 0; i < D; i++) dot += q[i] * K[(size_t)t * KW + i];
                a[t] = dot * scale;
                mx = a[t] > mx ? a[t] : mx;
            }
            for (int t = 0; t <= pos; t++) sum += (a[t] = expf(a[t] - mx));
            float *o = s[S_ATTY] + (size_t)r * QD + (size_t)h * D;
            for (int i = 0; i < D; i++) o[i] = 0.0f;
            for (int t = 0; t <= pos; t++) {
                float w = a[t] / sum;
                for (int i = 0; i < D; i++) o[i] += w * V[(size_t)t * KW + i];
            }
        }
}

/* One layer over the R new rows in s[S_X]: appends their keys and values to the cache at (slot, pos). */
static void decode_layer(const iq_model_config *c, const params *p, iq_kv_cache *kv, float *const *s, int l, int R) {
    size_t C = (size_t)c->n_embd, D = (size_t)c->head_dim, QD = width(c, W_QD), KD = width(c, W_KD), I = (size_t)c->n_inner;
    int Hq = c->n_head, Hk = c->n_kv_head;
    iq_rmsnorm_forward(s[S_LN], s[S_RSTD], s[S_X], pl(p, P_LN1, l, C), R, (int)C, c->ln_eps);
    lin_forward(p, P_WQ, P_BQ, l, s[S_Q], s[S_LN], R, (int)C, (int)QD);
    lin_forward(p, P_WK, P_BK, l, s[S_K], s[S_LN], R, (int)C, (int)KD);
    lin_forward(p, P_WV, P_BV, l, s[S_V], s[S_LN], R, (int)C, (int)KD);
    if (c->qk_norm) {
        iq_rmsnorm_forward(s[S_QN], s[S_RSTD], s[S_Q], pl(p, P_QN, l, D), R * Hq, (int)D, c->ln_eps);
        iq_rmsnorm_forward(s[S_KN], s[S_RSTD], s[S_K], pl(p, P_KN, l, D), R * Hk, (int)D, c->ln_eps);
    } else {
        memcpy(s[S_QN], s[S_Q], (size_t)R * QD * sizeof(float));
        memcpy(s[S_KN], s[S_K], (size_t)R * KD * sizeof(float));
    }
    iq_rope_forward(s[S_QN], s[S_COS], s[S_SIN], R, R, Hq, (int)D);
    iq_rope_forward(s[S_KN], s[S_COS], s[S_SIN], R, R, Hk, (int)D);
    size_t per = (size_t)kv->max_len * KD;
    float *kc = kv->kcache + (size_t)l * kv->max_slots * per, *vc = kv->vcache + (size_t)l * kv->max_slots * per;
    for (int r = 0; r < R; r++) {
        size_t o = (size_t)kv->row_slot[r] * per + (size_t)kv->row_pos[r] * KD;
        memcpy(kc + o, s[S_KN] + (size_t)r * KD, KD * sizeof(float));
        memcpy(vc + o, s[S_V] + (size_t)r * KD, KD * sizeof(float));
    }
    decode_attention(c, kv, kc, vc, s, R);
    lin_forward(p, P_WO, P_BO, l, s[S_PROJ], s[S_ATTY], R, (int)QD, (int)C);
    iq_residual_forward(s[S_X], s[S_X], s[S_PROJ], (size_t)R * C);
    iq_rmsnorm_forward(s[S_LN], s[S_RSTD], s[S_X], pl(p, P_LN2, l, C), R, (int)C, c->ln_eps);
    lin_forward(p, P_WG, -1, l, s[S_GATE], s[S_LN], R, (int)C, (int)I);
    lin_forward(p, P_WU, -1, l, s[S_UP], s[S_LN], R, (int)C, (int)I);
    iq_swiglu_forward(s[S_H], s[S_GATE], s[S_UP], (size_t)R * I);
    lin_forward(p, P_WD, -1, l, s[S_PROJ], s[S_H], R, (int)I, (int)C);
    iq_residual_forward(s[S_X], s[S_X], s[S_PROJ], (size_t)R * C);
}

static void llama_decode(iq_model *m, iq_kv_cache *kv, const int32_t *tokens, int B, int n, float *out) {
    const iq_model_config *c = &m->cfg;
    llama_layout *y = m->layout;
    const params *p = &y->p;
    int C = c->n_embd, R = B * n;
    float *s[NUM_SCRATCH];
    point_decode(c, kv->max_rows, kv->max_len, kv->scratch, s);
    iq_embed_forward(s[S_X], tokens, p->t[P_EMB], R, C);
    iq_rope_table(s[S_COS], s[S_SIN], kv->row_pos, R, y->inv_freq, c->head_dim);
    for (int l = 0; l < c->n_layer; l++) decode_layer(c, p, kv, s, l, R);
    /* the last new position of each slot -> the final norm */
    for (int b = 0; b < B; b++) memcpy(s[S_LN] + (size_t)b * C, s[S_X] + ((size_t)b * n + n - 1) * C, (size_t)C * sizeof(float));
    iq_rmsnorm_forward(out, s[S_RSTD], s[S_LN], p->t[P_NORM], B, C, c->ln_eps);
}

// ----------------------------------------------------------------------------------------------------
// init: N(0, 0.02) matrices and embeddings, RMSNorm weights 1, biases 0 (HF's _init_weights)

static void llama_init(iq_model *m, uint64_t seed) {
    iq_rng rng;
    iq_rng_seed(&rng, seed, 0x11a3);
    for (int i = 0; i < m->n_tensors; i++) {
        const iq_tensor_ref *r = &m->tensors[i];
        size_t len = strlen(r->name);
        if (iq_model_tensor_bf16(m, i)) { /* a bf16 base: the same draws, rounded */
            uint16_t *h = m->params_bf16 + r->offset;
            for (size_t k = 0; k < r->numel; k++) h[k] = iq_f32_to_bf16(0.02f * iq_rng_normal(&rng));
            continue;
        }
        float *p = m->params_memory + r->offset;
        if (len > 11 && strcmp(r->name + len - 11, "norm.weight") == 0)
            for (size_t k = 0; k < r->numel; k++) p[k] = 1.0f;
        else if (len > 5 && strcmp(r->name + len - 5, ".bias") == 0)
            memset(p, 0, r->numel * sizeof *p);
        else
            for (size_t k = 0; k < r->numel; k++) p[k] = 0.02f * iq_rng_normal(&rng);
    }
}

// ----------------------------------------------------------------------------------------------------
// the families: one model_type each, the same code

#define LLAMA_FAMILY(var, type, cls)                                                                                    \
    const iq_arch var = {                                                                                               \
        .name = type,                                                                                                   \
        .hf_class = cls,                                                                                                \
        .hf_prefix = NULL,                                                                                              \
        .hf_buffer = llama_hf_buffer,                                                                                   \
        .preset = llama_preset,                                                                                         \
        .check = llama_check,                                                                                           \
        .derive = llama_derive,                                                                                         \
        .config_from_json = llama_config_from_json,                                                                     \
        .config_to_json = llama_config_to_json,                                                                         \
        .tensors = llama_tensors,                                                                                       \
        .act_floats = llama_act_floats,                                                                                 \
        .grad_act_floats = llama_grad_act_floats,                                                                       \
        .recompute_act_floats = llama_recompute_act_floats,                                                             \
        .layout = llama_layout_fn,                                                                                      \
        .layout_size = sizeof(llama_layout),                                                                            \
        .init = llama_init,                                                                                             \
        .forward = llama_forward,                                                                                       \
        .backward = llama_backward,                                                                                     \
        .head_offset = llama_head_offset,                                                                               \
        .lnf = llama_lnf,                                                                                               \
        .dlnf = llama_dlnf,                                                                                             \
        .kv_width = llama_kv_width,                                                                                     \
        .decode_scratch = llama_decode_scratch,                                                                         \
        .decode = llama_decode,                                                                                         \
    }

LLAMA_FAMILY(iq_arch_llama, "llama", "LlamaForCausalLM");
LLAMA_FAMILY(iq_arch_mistral, "mistral", "MistralForCausalLM");
LLAMA_FAMILY(iq_arch_qwen2, "qwen2", "Qwen2ForCausalLM");
LLAMA_FAMILY(iq_arch_qwen3, "qwen3", "Qwen3ForCausalLM");
