/* export_gguf.c — a model folder as a GGUF file in the layout llama.cpp's converter writes (export.h).
 *
 * Everything family-specific is data: one entry in FAMILIES (llama.cpp's architecture name, which
 * hyper-parameter keys its converter writes, what the architecture can hold) and the tensor names in
 * TENSORS (HF name -> GGUF name, the layout change, the architectures that load it). A new family is a
 * row in each. The names come from the model's own parameter table (model.h): a tensor of the model that no
 * row maps for its architecture is one llama.cpp would not load, and is refused by name.
 *
 * Sections: the families · the tensors · what llama.cpp cannot hold · hyper-parameters · the tokenizer ·
 * export. */
#include "iqtrain/export.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "iqtrain/gguf.h"
#include "iqtrain/model.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/tokenizer.h"

// ----------------------------------------------------------------------------------------------------
// the families

/* llama.cpp architectures, as bits for the tensors each loads */
enum { A_GPT2 = 1, A_LLAMA = 2, A_QWEN2 = 4, A_QWEN3 = 8 };

/* What the converter writes and the architecture holds. */
enum {
    F_LAYERNORM = 1,   /* GPT-2 style: attention.layer_norm_epsilon, feed-forward 4C, no KV heads or rope */
    F_ROTARY = 2,      /* head_count_kv, rope.freq_base, attention.layer_norm_rms_epsilon, key/value_length */
    F_VOCAB_SIZE = 4,  /* <arch>.vocab_size (LlamaModel) */
    F_ROPE_DIM = 8,    /* <arch>.rope.dimension_count (LlamaModel) */
    F_ROPE_FREQS = 16, /* Llama 3 rope scaling as the rope_freqs tensor (LlamaModel.generate_extra_tensors) */
    F_PERMUTE = 32,    /* q/k rows permuted for llama.cpp's pairwise RoPE (LlamaModel.permute) */
    F_Q_IS_EMBD = 64,  /* the architecture sizes q and o by n_embd: n_head * head_dim must equal it */
};

typedef struct {
    const char *family; /* iqtrain's family (config.json's model_type) */
    const char *arch;   /* general.architecture */
    int arch_bit;
    unsigned flags;
} gguf_family;

static const gguf_family FAMILIES[] = {
    {"gpt2", "gpt2", A_GPT2, F_LAYERNORM},
    {"llama", "llama", A_LLAMA, F_ROTARY | F_VOCAB_SIZE | F_ROPE_DIM | F_ROPE_FREQS | F_PERMUTE},
    {"mistral", "llama", A_LLAMA, F_ROTARY | F_VOCAB_SIZE | F_ROPE_DIM | F_ROPE_FREQS | F_PERMUTE}, /* as the converter */
    {"qwen2", "qwen2", A_QWEN2, F_ROTARY | F_Q_IS_EMBD},
    {"qwen3", "qwen3", A_QWEN3, F_ROTARY},
};

static const gguf_family *find_family(const char *name) {
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        if (strcmp(FAMILIES[i].family, name) == 0) return &FAMILIES[i];
    return NULL;
}

// ----------------------------------------------------------------------------------------------------
// the tensors: HF name (%d = layer) -> llama.cpp's name, layout change, the architectures that load it

enum { OP_COPY, OP_TRANSPOSE /* HF Conv1D [in, out] -> [out, in] */, OP_ROPE_Q, OP_ROPE_K /* permuted when F_PERMUTE */ };

#define A_LLAMAS (A_LLAMA | A_QWEN2 | A_QWEN3)
static const struct {
    const char *hf, *gguf;
    int op, archs;
} TENSORS[] = {
    {"wte.weight", "token_embd.weight", OP_COPY, A_GPT2},
    {"wpe.weight", "position_embd.weight", OP_COPY, A_GPT2},
    {"h.%d.ln_1.weight", "blk.%d.attn_norm.weight", OP_COPY, A_GPT2},
    {"h.%d.ln_1.bias", "blk.%d.attn_norm.bias", OP_COPY, A_GPT2},
    {"h.%d.attn.c_attn.weight", "blk.%d.attn_qkv.weight", OP_TRANSPOSE, A_GPT2},
    {"h.%d.attn.c_attn.bias", "blk.%d.attn_qkv.bias", OP_COPY, A_GPT2},
    {"h.%d.attn.c_proj.weight", "blk.%d.attn_output.weight", OP_TRANSPOSE, A_GPT2},
    {"h.%d.attn.c_proj.bias", "blk.%d.attn_output.bias", OP_COPY, A_GPT2},
    {"h.%d.ln_2.weight", "blk.%d.ffn_norm.weight", OP_COPY, A_GPT2},
    {"h.%d.ln_2.bias", "blk.%d.ffn_norm.bias", OP_COPY, A_GPT2},
    {"h.%d.mlp.c_fc.weight", "blk.%d.ffn_up.weight", OP_TRANSPOSE, A_GPT2},
    {"h.%d.mlp.c_fc.bias", "blk.%d.ffn_up.bias", OP_COPY, A_GPT2},
    {"h.%d.mlp.c_proj.weight", "blk.%d.ffn_down.weight", OP_TRANSPOSE, A_GPT2},
    {"h.%d.mlp.c_proj.bias", "blk.%d.ffn_down.bias", OP_COPY, A_GPT2},
    {"ln_f.weight", "output_norm.weight", OP_COPY, A_GPT2},
    {"ln_f.bias", "output_norm.bias", OP_COPY, A_GPT2},
    {"model.embed_tokens.weight", "token_embd.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", OP_ROPE_Q, A_LLAMAS},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", OP_ROPE_Q, A_LLAMAS},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", OP_ROPE_K, A_LLAMAS},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", OP_ROPE_K, A_LLAMAS},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", OP_COPY, A_LLAMAS},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.self_attn.o_proj.bias", "blk.%d.attn_output.bias", OP_COPY, A_LLAMA},
    {"model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", OP_COPY, A_QWEN3},
    {"model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", OP_COPY, A_QWEN3},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", OP_COPY, A_LLAMAS},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", OP_COPY, A_LLAMAS},
    {"model.norm.weight", "output_norm.weight", OP_COPY, A_LLAMAS},
    {"lm_head.weight", "output.weight", OP_COPY, A_LLAMAS},
};
#define N_TENSOR_NAMES ((int)(sizeof TENSORS / sizeof *TENSORS))

/* Whether name matches the pattern (one optional %d); *layer receives the number (-1 without). */
static bool name_match(const char *pat, const char *name, int *layer) {
    const char *d = strstr(pat, "%d");
    *layer = -1;
    if (!d) return strcmp(pat, name) == 0;
    size_t pre = (size_t)(d - pat);
    if (strncmp(pat, name, pre) != 0 || !isdigit((unsigned char)name[pre])) return false;
    char *end;
    long v = strtol(name + pre, &end, 10);
    if (strcmp(end, d + 2) != 0 || v > 100000) return false;
    *layer = (int)v;
    return true;
}

/* The GGUF name of a pattern for a layer. */
static void gguf_name(const char *pat, int layer, char *out, size_t cap) {
    const char *d = strstr(pat, "%d");
    if (d) snprintf(out, cap, "%.*s%d%s", (int)(d - pat), pat, layer, d + 2);
    else snprintf(out, cap, "%s", pat);
}

/* A tensor of the file: where its values come from and how they are laid out. */
typedef struct {
    char name[64];
    const float *src;   /* the HF tensor (row-major, shape s0 x s1), or a generated one */
    int64_t s0, s1;     /* HF shape (s1 = 0 for 1-D) */
    int op;
    int heads;          /* heads of a permuted q or k */
    int n_dims;
    int64_t ne[2];
    iq_ggml_type type;
} plan_tensor;

/* The converter's choice of type: 1-D tensors, norms, biases and GPT-2's position embedding stay F32; a
 * Q8_0 matrix whose rows are not a multiple of 32 falls back to F16. */
static iq_ggml_type tensor_type(const plan_tensor *t, iq_ggml_type want, iq_export_report *rep) {
    size_t n = strlen(t->name);
    bool norm = n >= 12 && strcmp(t->name + n - 12, "_norm.weight") == 0;
    bool weight = n >= 7 && strcmp(t->name + n - 7, ".weight") == 0;
    if (t->n_dims <= 1 || norm || !weight || strcmp(t->name, "position_embd.weight") == 0) {
        rep->n_f32 += want != IQ_GGML_F32;
        return IQ_GGML_F32;
    }
    if (want == IQ_GGML_Q8_0 && t->ne[0] % IQ_Q8_0_BLOCK != 0) {
        rep->n_f16_fallback++;
        return IQ_GGML_F16;
    }
    return want;
}

/* Row r of a permuted (rows, cols) q or k: LlamaModel.permute reshapes the rows (heads, 2, hd/2) and swaps the
 * last two axes, so row (h, i, j) of the file is row (h, j, i) of HF's. */
static int64_t permuted_row(int64_t r, int64_t rows, int heads) {
    int64_t hd = rows / heads, h = r / hd, k = r % hd, i = k / 2, j = k % 2;
    return h * hd + j * (hd / 2) + i;
}

static void fill_tensor(void *ctx, int index, float *out) {
    const plan_tensor *t = &((const plan_tensor *)ctx)[index];
    int64_t rows = t->s0, cols = t->s1 ? t->s1 : 1;
    if (t->op == OP_TRANSPOSE) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t o = 0; o < cols; o++) out[o * rows + i] = t->src[i * cols + o];
    } else if (t->heads > 0) {
        for (int64_t r = 0; r < rows; r++)
            memcpy(out + r * cols, t->src + permuted_row(r, rows, t->heads) * cols, (size_t)cols * sizeof *out);
    } else {
        memcpy(out, t->src, (size_t)(rows * cols) * sizeof *out);
    }
}

/* Plans every tensor of the model (HF order) under its GGUF name. 65 naming a tensor the architecture has no
 * place for. */
static iq_status plan_tensors(iq_model *m, const gguf_family *fam, plan_tensor **out, int *n_out) {
    const iq_model_config *c = iq_model_cfg(m);
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    plan_tensor *plan = iq_xcalloc((size_t)n + 1, sizeof *plan); /* + rope_freqs */
    const float *params = iq_model_param_memory(m, &(size_t){0});
    iq_status st = IQ_OK;
    for (int i = 0; i < n && !st; i++) {
        int k = 0, layer = -1;
        while (k < N_TENSOR_NAMES && !((TENSORS[k].archs & fam->arch_bit) && name_match(TENSORS[k].hf, refs[i].name, &layer))) k++;
        if (k == N_TENSOR_NAMES) {
            st = iq_fail(IQ_EDATA, "llama.cpp's %s architecture has no place for tensor %s", fam->arch, refs[i].name);
            break;
        }
        plan_tensor *t = &plan[i];
        gguf_name(TENSORS[k].gguf, layer, t->name, sizeof t->name);
        t->src = params + refs[i].offset;
        t->s0 = refs[i].shape[0], t->s1 = refs[i].ndim == 2 ? refs[i].shape[1] : 0;
        t->op = TENSORS[k].op;
        if ((fam->flags & F_PERMUTE) && (t->op == OP_ROPE_Q || t->op == OP_ROPE_K)) t->heads = t->op == OP_ROPE_Q ? c->n_head : c->n_kv_head;
        t->n_dims = refs[i].ndim;
        t->ne[0] = t->n_dims == 1 || t->op == OP_TRANSPOSE ? t->s0 : t->s1;
        t->ne[1] = t->n_dims == 1 ? 1 : t->op == OP_TRANSPOSE ? t->s1 : t->s0;
    }
    free(refs);
    if (st) {
        free(plan);
        return st;
    }
    *out = plan;
    *n_out = n;
    return IQ_OK;
}

/* Llama 3 rope scaling: the per-frequency divisors llama.cpp reads as rope_freqs (the converter's formula). */
static float *rope_freqs(const iq_model_config *c) {
    int half = c->head_dim / 2;
    float *f = iq_xmalloc((size_t)half * sizeof *f);
    double lo_wavelen = c->rope_orig_ctx / (double)c->rope_low_freq, hi_wavelen = c->rope_orig_ctx / (double)c->rope_high_freq;
    for (int i = 0; i < half; i++) {
        float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        double wavelen = 2 * M_PI / freq;
        if (wavelen < hi_wavelen) f[i] = 1.0f;
        else if (wavelen > lo_wavelen) f[i] = c->rope_factor;
        else {
            double smooth = (c->rope_orig_ctx / wavelen - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
            f[i] = (float)(1.0 / ((1.0 - smooth) / c->rope_factor + smooth));
        }
    }
    return f;
}

// ----------------------------------------------------------------------------------------------------
// what llama.cpp cannot hold (beyond tensors without a name, refused in plan_tensors)

static iq_status refuse_unrepresentable(const iq_model_config *c, const gguf_family *fam, const iq_tokenizer *tok) {
    if (c->rope_factor > 0.0f && !(fam->flags & F_ROPE_FREQS))
        return iq_fail(IQ_EDATA, "llama.cpp's %s architecture cannot hold rope_scaling llama3 (no rope_freqs tensor)", fam->arch);
    if ((fam->flags & F_Q_IS_EMBD) && (long long)c->n_head * c->head_dim != c->n_embd)
        return iq_fail(IQ_EDATA, "llama.cpp's %s architecture needs num_attention_heads * head_dim (%d * %d) = hidden_size (%d)",
                       fam->arch, c->n_head, c->head_dim, c->n_embd);
    if (iq_tok_vocab_size(tok) > c->vocab)
        return iq_fail(IQ_EDATA, "the tokenizer has %d ids, more than the model's vocabulary (%d): llama.cpp needs one embedding row per token",
                       iq_tok_vocab_size(tok), c->vocab);
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// hyper-parameters, as the converter's set_gguf_parameters writes them for the family

static void put_key_u32(iq_gguf *g, const char *arch, const char *k, uint32_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    iq_gguf_u32(g, key, v);
}
static void put_key_f32(iq_gguf *g, const char *arch, const char *k, float v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    iq_gguf_f32(g, key, v);
}

static uint32_t file_type(iq_export_dtype d) {
    static const uint32_t FT[] = {0, 1, 32, 7}; /* LlamaFileType ALL_F32, MOSTLY_F16, MOSTLY_BF16, MOSTLY_Q8_0 */
    return FT[d];
}

static void put_hparams(iq_gguf *g, const gguf_family *fam, const iq_model_config *c, iq_export_dtype dtype) {
    const char *a = fam->arch;
    put_key_u32(g, a, "block_count", (uint32_t)c->n_layer);
    put_key_u32(g, a, "context_length", (uint32_t)c->ctx);
    put_key_u32(g, a, "embedding_length", (uint32_t)c->n_embd);
    put_key_u32(g, a, "feed_forward_length", (uint32_t)((fam->flags & F_LAYERNORM) ? 4 * c->n_embd : c->n_inner));
    put_key_u32(g, a, "attention.head_count", (uint32_t)c->n_head);
    if (fam->flags & F_LAYERNORM) put_key_f32(g, a, "attention.layer_norm_epsilon", c->ln_eps);
    if (fam->flags & F_ROTARY) {
        put_key_u32(g, a, "attention.head_count_kv", (uint32_t)c->n_kv_head);
        put_key_f32(g, a, "rope.freq_base", c->rope_theta);
        put_key_f32(g, a, "attention.layer_norm_rms_epsilon", c->ln_eps);
        put_key_u32(g, a, "attention.key_length", (uint32_t)c->head_dim);
        put_key_u32(g, a, "attention.value_length", (uint32_t)c->head_dim);
    }
    iq_gguf_u32(g, "general.file_type", file_type(dtype));
    if (fam->flags & F_VOCAB_SIZE) put_key_u32(g, a, "vocab_size", (uint32_t)c->vocab);
    if (fam->flags & F_ROPE_DIM) put_key_u32(g, a, "rope.dimension_count", (uint32_t)c->head_dim);
    iq_gguf_u32(g, "general.quantization_version", 2);
}

// ----------------------------------------------------------------------------------------------------
// the tokenizer, as the converter's _set_vocab_gpt2 and SpecialVocab write it

/* tokenizer.ggml.pre: llama.cpp's name for each pre-tokenizer regex iqtrain implements */
static const char *const PRE_NAMES[] = {[IQ_PRETOK_GPT2] = "gpt-2", [IQ_PRETOK_LLAMA3] = "llama-bpe", [IQ_PRETOK_QWEN2] = "qwen2"};

/* gguf-py's TokenType */
enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

/* The converter's does_token_look_special: added tokens marked non-special that are control tokens all the same. */
static bool looks_special(const char *s, size_t n) {
    if ((n == 5 && memcmp(s, "<pad>", 5) == 0) || (n == 6 && memcmp(s, "<mask>", 6) == 0)) return true;
    if (n >= 4 && memcmp(s, "<|", 2) == 0 && memcmp(s + n - 2, "|>", 2) == 0) return true;
    if (n >= 8 && memcmp(s, "<\xef\xbd\x9c", 4) == 0 && memcmp(s + n - 4, "\xef\xbd\x9c>", 4) == 0) return true; /* <｜...｜> */
    return n >= 8 && memcmp(s, "<unused", 7) == 0 && s[n - 1] == '>';
}

static void put_tokens(iq_gguf *g, const iq_tokenizer *tok, int n_vocab) {
    iq_buf s = {0};
    int32_t *types = iq_xmalloc((size_t)n_vocab * sizeof *types);
    iq_gguf_arr_begin(g, "tokenizer.ggml.tokens", IQ_GGUF_STRING, (uint64_t)n_vocab);
    for (int32_t id = 0; id < n_vocab; id++) {
        s.len = 0;
        iq_token_kind k = iq_tok_token_kind(tok, id);
        iq_tok_token_string(tok, id, &s);
        if (k == IQ_TOKEN_NONE) iq_buf_printf(&s, "[PAD%d]", (int)id);
        types[id] = k == IQ_TOKEN_NONE     ? TT_UNUSED
                    : k == IQ_TOKEN_NORMAL ? TT_NORMAL
                    : k == IQ_TOKEN_SPECIAL || looks_special(s.data, s.len) ? TT_CONTROL
                                                                           : TT_USER_DEFINED;
        iq_gguf_arr_str(g, s.data, s.len);
    }
    iq_gguf_arr_begin(g, "tokenizer.ggml.token_type", IQ_GGUF_I32, (uint64_t)n_vocab);
    for (int32_t id = 0; id < n_vocab; id++) iq_gguf_arr_i32(g, types[id]);
    free(types);
    iq_gguf_arr_begin(g, "tokenizer.ggml.merges", IQ_GGUF_STRING, (uint64_t)iq_tok_n_merges(tok));
    for (int32_t i = 0; i < iq_tok_n_merges(tok); i++) {
        int32_t a, b;
        iq_tok_merge(tok, i, &a, &b);
        s.len = 0;
        iq_tok_token_string(tok, a, &s);
        iq_buf_putc(&s, ' ');
        iq_tok_token_string(tok, b, &s);
        iq_gguf_arr_str(g, s.data, s.len);
    }
    iq_buf_free(&s);
}

/* A special token named in tokenizer_config.json ("bos_token": "<s>" or {"content": ...}) as an added token's
 * id, else config.json's "<typ>_token_id": SpecialVocab's order. -1 when neither names one. */
static int32_t special_id(const iq_tokenizer *tok, const cJSON *tcfg, const cJSON *cfg, const char *typ, int n_vocab) {
    char k[32];
    snprintf(k, sizeof k, "%s_token", typ);
    const cJSON *e = tcfg ? cJSON_GetObjectItemCaseSensitive(tcfg, k) : NULL;
    if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "content");
    int32_t id = cJSON_IsString(e) ? iq_tok_special_id(tok, e->valuestring) : -1;
    if (id >= 0) return id;
    snprintf(k, sizeof k, "%s_token_id", typ);
    e = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, k) : NULL;
    return cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < n_vocab ? (int32_t)e->valuedouble : -1;
}

/* tokenizer_config.json's chat_template (a string, or a list of {name, template}), else chat_template.jinja. */
static bool put_chat_template(iq_gguf *g, const char *dir, const cJSON *tcfg) {
    const cJSON *ct = tcfg ? cJSON_GetObjectItemCaseSensitive(tcfg, "chat_template") : NULL;
    if (cJSON_IsString(ct)) {
        iq_gguf_str(g, "tokenizer.chat_template", ct->valuestring);
        return true;
    }
    bool any = false;
    for (const cJSON *e = cJSON_IsArray(ct) ? ct->child : NULL; e; e = e->next) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *t = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (!cJSON_IsString(nm) || !cJSON_IsString(t) || !nm->valuestring[0]) continue;
        char key[128] = "tokenizer.chat_template";
        if (strcmp(nm->valuestring, "default") != 0) {
            size_t k = strlen(key);
            key[k++] = '.';
            for (const char *p = nm->valuestring; *p && k < sizeof key - 1; p++) key[k++] = isalnum((unsigned char)*p) ? *p : '_';
            key[k] = 0;
        }
        iq_gguf_str(g, key, t->valuestring);
        any = true;
    }
    if (any || ct) return any;
    char *path = iq_path_join(dir, "chat_template.jinja"), *data = NULL;
    size_t len = 0;
    if (iq_file_exists(path) && iq_read_file(path, &data, &len) == IQ_OK) iq_gguf_strn(g, "tokenizer.chat_template", data, len);
    free(path);
    free(data);
    return len > 0;
}

static cJSON *read_optional_json(const char *dir, const char *name) {
    char *path = iq_path_join(dir, name);
    cJSON *j = NULL;
    if (iq_file_exists(path) && iq_read_json(path, &j) != IQ_OK) j = NULL;
    free(path);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

static void put_tokenizer(iq_gguf *g, const char *dir, const iq_tokenizer *tok, int n_vocab, iq_export_report *rep) {
    cJSON *tcfg = read_optional_json(dir, "tokenizer_config.json"), *cfg = read_optional_json(dir, "config.json");
    const char *pre = PRE_NAMES[iq_tok_pretok(tok)];
    iq_gguf_str(g, "tokenizer.ggml.model", "gpt2");
    iq_gguf_str(g, "tokenizer.ggml.pre", pre);
    put_tokens(g, tok, n_vocab);
    int32_t bos = iq_tok_bos(tok) >= 0 ? iq_tok_bos(tok) : special_id(tok, tcfg, cfg, "bos", n_vocab);
    int32_t eos = iq_tok_eos(tok) >= 0 ? iq_tok_eos(tok) : special_id(tok, tcfg, cfg, "eos", n_vocab);
    int32_t pad = special_id(tok, tcfg, cfg, "pad", n_vocab);
    if (bos >= 0) iq_gguf_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) iq_gguf_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (pad >= 0) iq_gguf_u32(g, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    /* add_bos_token: tokenizer_config.json's when it says, else true when the post-processor adds a BOS */
    const cJSON *ab = tcfg ? cJSON_GetObjectItemCaseSensitive(tcfg, "add_bos_token") : NULL;
    if (cJSON_IsBool(ab)) iq_gguf_bool(g, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(ab));
    else if (iq_tok_bos(tok) >= 0) iq_gguf_bool(g, "tokenizer.ggml.add_bos_token", true);
    rep->chat_template = put_chat_template(g, dir, tcfg);
    snprintf(rep->pre, sizeof rep->pre, "%s", pre);
    rep->n_vocab = n_vocab;
    rep->n_merges = iq_tok_n_merges(tok);
    cJSON_Delete(tcfg);
    cJSON_Delete(cfg);
}

// ----------------------------------------------------------------------------------------------------
// export

bool iq_export_dtype_parse(const char *s, iq_export_dtype *out) {
    static const char *const NAMES[] = {"f32", "f16", "bf16", "q8_0"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, NAMES[i]) == 0) {
            *out = (iq_export_dtype)i;
            return true;
        }
    return false;
}

/* The folder's name (the converter's default general.name); for iqtrain's final/ and checkpoint-N/ folders the
 * run's folder name before it ("run-final"), as "final" alone names nothing. */
static const char *folder_name(const char *dir, char *buf, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    bool generic = (n - b == 5 && strncmp(dir + b, "final", 5) == 0) || strncmp(dir + b, "checkpoint-", 11) == 0;
    size_t pe = b, pb;
    while (pe > 1 && dir[pe - 1] == '/') pe--;
    pb = pe;
    while (pb > 0 && dir[pb - 1] != '/') pb--;
    if (generic && pe > pb && !(pe - pb == 1 && dir[pb] == '.'))
        snprintf(buf, cap, "%.*s-%.*s", (int)(pe - pb), dir + pb, (int)(n - b), dir + b);
    else snprintf(buf, cap, "%.*s", (int)(n - b), dir + b);
    return buf;
}

/* Declares the planned tensors (and rope_freqs) in the writer, with the types the converter chooses. */
static void declare_tensors(iq_gguf *g, plan_tensor *plan, int n, iq_ggml_type want, iq_export_report *rep) {
    for (int i = 0; i < n; i++) {
        plan[i].type = tensor_type(&plan[i], want, rep);
        iq_gguf_tensor(g, plan[i].name, plan[i].n_dims, plan[i].ne, plan[i].type);
    }
}

static iq_status export_model(iq_model *m, const iq_tokenizer *tok, const char *dir, const char *out_path,
                              const iq_export_opts *o, iq_export_report *rep) {
    const iq_model_config *c = iq_model_cfg(m);
    const gguf_family *fam = find_family(iq_model_arch_name(c));
    if (!fam) return iq_fail(IQ_EDATA, "no GGUF mapping for the %s family", iq_model_arch_name(c));
    iq_status st = refuse_unrepresentable(c, fam, tok);
    plan_tensor *plan = NULL;
    int n = 0;
    if (!st) st = plan_tensors(m, fam, &plan, &n);
    if (st) return st;
    float *freqs = NULL;
    if (c->rope_factor > 0.0f) { /* Llama 3 rope scaling: rope_freqs first, as the converter's extra tensor */
        memmove(plan + 1, plan, (size_t)n * sizeof *plan);
        memset(plan, 0, sizeof *plan);
        freqs = rope_freqs(c);
        snprintf(plan[0].name, sizeof plan[0].name, "rope_freqs.weight");
        plan[0].src = freqs, plan[0].s0 = c->head_dim / 2, plan[0].n_dims = 1, plan[0].ne[0] = c->head_dim / 2, plan[0].ne[1] = 1;
        n++;
    }
    static const iq_ggml_type TYPES[] = {IQ_GGML_F32, IQ_GGML_F16, IQ_GGML_BF16, IQ_GGML_Q8_0};
    char nbuf[256];
    iq_gguf *g = iq_gguf_new();
    iq_gguf_str(g, "general.architecture", fam->arch);
    iq_gguf_str(g, "general.type", "model");
    iq_gguf_str(g, "general.name", o->name ? o->name : folder_name(dir, nbuf, sizeof nbuf));
    put_hparams(g, fam, c, o->dtype);
    put_tokenizer(g, dir, tok, c->vocab, rep);
    declare_tensors(g, plan, n, TYPES[o->dtype], rep);
    snprintf(rep->arch, sizeof rep->arch, "%s", fam->arch);
    rep->n_tensors = n;
    rep->n_kv = (int)iq_gguf_n_kv(g);
    st = iq_gguf_write(g, out_path, fill_tensor, plan);
    struct stat sb;
    rep->bytes = !st && stat(out_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    iq_gguf_free(g);
    free(plan);
    free(freqs);
    return st;
}

iq_status iq_export_gguf(const char *dir, const char *out_path, const iq_export_opts *o, iq_export_report *rep) {
    iq_export_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    iq_export_opts def = {0};
    if (!o) o = &def;
    iq_model *m = NULL;
    iq_status st = iq_model_load_folder(dir, IQ_MODEL_INFER, 1, 1, &m, NULL);
    if (st) return st;
    iq_tokenizer *tok = NULL;
    st = iq_tok_load(dir, &tok);
    if (!st) st = export_model(m, tok, dir, out_path, o, rep);
    iq_tok_free(tok);
    iq_model_free(m);
    return st;
}
