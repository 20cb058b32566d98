/* test_gguf — the GGUF writer and the export, read back byte by byte (no llama.cpp needed; tests/gguf runs
 * the files in llama.cpp itself): Q8_0 blocks as ggml's quantize_row_q8_0_ref, the container layout (header,
 * key/values, tensor infos, 32-byte alignment, padding), GPT-2's transposed Conv1D weights, Llama's permuted
 * q/k rows (and Qwen's unpermuted ones), the tensor types the converter picks, and the refusals.
 * usage: test_gguf TMPDIR */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "iqtrain/export.h"
#include "iqtrain/gguf.h"
#include "iqtrain/model.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/tokenizer.h"

static const char *g_dir;

// ----------------------------------------------------------------------------------------------------
// a minimal GGUF reader

typedef struct {
    char name[64];
    int n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
} rtensor;

typedef struct {
    uint8_t *data;
    size_t len, pos;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    size_t kv_start, data_start;
    rtensor t[256];
    bool ok;
} gguf_file;

static uint64_t rd(gguf_file *f, int n) {
    uint64_t v = 0;
    if (f->pos + (size_t)n > f->len) {
        f->ok = false;
        return 0;
    }
    for (int i = 0; i < n; i++) v |= (uint64_t)f->data[f->pos + (size_t)i] << (8 * i);
    f->pos += (size_t)n;
    return v;
}

static void skip_value(gguf_file *f, uint32_t type) {
    static const int SIZE[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == IQ_GGUF_STRING) f->pos += rd(f, 8);
    else if (type == IQ_GGUF_ARRAY) {
        uint32_t et = (uint32_t)rd(f, 4);
        uint64_t n = rd(f, 8);
        for (uint64_t i = 0; i < n && f->ok; i++) skip_value(f, et);
    } else if (type <= 12) f->pos += (size_t)SIZE[type];
    else f->ok = false;
}

static bool gguf_read(const char *path, gguf_file *f) {
    memset(f, 0, sizeof *f);
    char *d;
    if (iq_read_file(path, &d, &f->len) != IQ_OK) return false;
    f->data = (uint8_t *)d;
    f->ok = f->len >= 24 && memcmp(d, "GGUF", 4) == 0;
    f->pos = 4;
    f->version = (uint32_t)rd(f, 4);
    f->n_tensors = rd(f, 8);
    f->n_kv = rd(f, 8);
    f->kv_start = f->pos;
    for (uint64_t i = 0; i < f->n_kv && f->ok; i++) {
        f->pos += rd(f, 8);
        skip_value(f, (uint32_t)rd(f, 4));
    }
    for (uint64_t i = 0; i < f->n_tensors && i < 256 && f->ok; i++) {
        rtensor *t = &f->t[i];
        uint64_t n = rd(f, 8);
        if (n > 63 || f->pos + n > f->len) return f->ok = false;
        memcpy(t->name, f->data + f->pos, n);
        f->pos += n;
        t->n_dims = (int)rd(f, 4);
        for (int k = 0; k < t->n_dims && k < 4; k++) t->ne[k] = rd(f, 8);
        t->type = (uint32_t)rd(f, 4);
        t->offset = rd(f, 8);
    }
    f->data_start = (f->pos + 31) / 32 * 32;
    return f->ok;
}

/* The value of a key (its type in *type), or NULL. */
static const uint8_t *gguf_kv(gguf_file *f, const char *key, uint32_t *type) {
    f->pos = f->kv_start;
    for (uint64_t i = 0; i < f->n_kv && f->ok; i++) {
        uint64_t n = rd(f, 8);
        bool hit = n == strlen(key) && memcmp(f->data + f->pos, key, n) == 0;
        f->pos += n;
        *type = (uint32_t)rd(f, 4);
        if (hit) return f->data + f->pos;
        skip_value(f, *type);
    }
    return NULL;
}

static bool kv_str_is(gguf_file *f, const char *key, const char *want) {
    uint32_t type;
    const uint8_t *v = gguf_kv(f, key, &type);
    uint64_t n;
    if (!v || type != IQ_GGUF_STRING) return false;
    memcpy(&n, v, 8);
    return n == strlen(want) && memcmp(v + 8, want, n) == 0;
}

static bool kv_u32_is(gguf_file *f, const char *key, uint32_t want) {
    uint32_t type, v;
    const uint8_t *p = gguf_kv(f, key, &type);
    if (!p || type != IQ_GGUF_U32) return false;
    memcpy(&v, p, 4);
    return v == want;
}

static const rtensor *find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors && i < 256; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static float tensor_f32(const gguf_file *f, const rtensor *t, uint64_t i) {
    float v;
    memcpy(&v, f->data + f->data_start + t->offset + 4 * i, 4);
    return v;
}

// ----------------------------------------------------------------------------------------------------
// Q8_0 and the container

static void test_q8_0_block(void) {
    float x[32] = {127.0f, -63.5f, 0.5f, -0.5f, 0.49f, 63.5f, -127.0f, 1.0f};
    uint8_t b[IQ_Q8_0_BYTES];
    iq_q8_0_block(x, b);
    CHECK(b[0] == 0x00 && b[1] == 0x3C); /* d = 127 / 127 = 1.0 as fp16 0x3C00 */
    int8_t q[8];
    memcpy(q, b + 2, 8);
    CHECK(q[0] == 127 && q[1] == -64 && q[2] == 1 && q[3] == -1 && q[4] == 0 && q[5] == 64 && q[6] == -127 && q[7] == 1);
    CHECK(b[2 + 31] == 0);
    float z[32] = {0};
    iq_q8_0_block(z, b);
    uint8_t zero[IQ_Q8_0_BYTES] = {0};
    CHECK(memcmp(b, zero, sizeof zero) == 0); /* all-zero block: d = 0, q = 0 */
    float y[32];
    for (int j = 0; j < 32; j++) y[j] = 0.01f * (float)(j - 16);
    iq_q8_0_block(y, b);
    float d = iq_f16_to_f32((uint16_t)(b[0] | b[1] << 8));
    CHECK(fabsf(d - 0.16f / 127.0f) < 1e-6f);
    for (int j = 0; j < 32; j++) CHECK(fabsf((float)(int8_t)b[2 + j] * d - y[j]) <= d * 0.5f + 1e-6f);
}

static float g_vals[3][64];
static void fill_test(void *ctx, int i, float *out) {
    (void)ctx;
    memcpy(out, g_vals[i], sizeof g_vals[i]);
}

static void test_container_layout(void) {
    for (int i = 0; i < 64; i++) g_vals[0][i] = (float)i, g_vals[1][i] = 0.25f * (float)(i - 32), g_vals[2][i] = -(float)i;
    iq_gguf *g = iq_gguf_new();
    iq_gguf_str(g, "general.architecture", "test");
    iq_gguf_u32(g, "test.block_count", 7);
    iq_gguf_arr_begin(g, "test.list", IQ_GGUF_I32, 2);
    iq_gguf_arr_i32(g, 5);
    iq_gguf_arr_i32(g, -6);
    iq_gguf_tensor(g, "a", 1, (int64_t[]){3}, IQ_GGML_F32);
    iq_gguf_tensor(g, "b", 2, (int64_t[]){32, 2}, IQ_GGML_Q8_0);
    iq_gguf_tensor(g, "c", 1, (int64_t[]){5}, IQ_GGML_F16);
    CHECK(iq_gguf_data_bytes(g) == 32 + 96 + 32); /* 12 -> 32, 2 x 34 = 68 -> 96, 10 -> 32 */
    char *path = iq_path_join(g_dir, "layout.gguf");
    CHECK(iq_gguf_write(g, path, fill_test, NULL) == IQ_OK);
    iq_gguf_free(g);
    gguf_file f;
    CHECK(gguf_read(path, &f));
    CHECK(f.version == 3 && f.n_tensors == 3 && f.n_kv == 3);
    CHECK(kv_str_is(&f, "general.architecture", "test") && kv_u32_is(&f, "test.block_count", 7));
    CHECK(f.t[0].offset == 0 && f.t[1].offset == 32 && f.t[2].offset == 128);
    CHECK(f.t[1].n_dims == 2 && f.t[1].ne[0] == 32 && f.t[1].ne[1] == 2 && f.t[1].type == IQ_GGML_Q8_0);
    CHECK(f.data_start % 32 == 0 && f.len == f.data_start + 160);
    CHECK(tensor_f32(&f, &f.t[0], 2) == 2.0f);
    uint8_t blk[IQ_Q8_0_BYTES];
    iq_q8_0_block(g_vals[1] + 32, blk);
    CHECK(memcmp(f.data + f.data_start + 32 + IQ_Q8_0_BYTES, blk, sizeof blk) == 0); /* the second row's block */
    CHECK(f.data[f.data_start + 32 + 68] == 0 && f.data[f.data_start + 127] == 0);   /* padding */
    uint16_t h = (uint16_t)(f.data[f.data_start + 128 + 8] | f.data[f.data_start + 128 + 9] << 8);
    CHECK(iq_f16_to_f32(h) == -4.0f);
    free(f.data);
    /* misuse is an internal error, no file */
    g = iq_gguf_new();
    iq_gguf_u32(g, "k", 1);
    iq_gguf_u32(g, "k", 2);
    char *bad = iq_path_join(g_dir, "bad.gguf");
    CHECK(iq_gguf_write(g, bad, fill_test, NULL) == IQ_EINTERNAL && !iq_file_exists(bad));
    iq_gguf_free(g);
    g = iq_gguf_new();
    iq_gguf_tensor(g, "q", 1, (int64_t[]){20}, IQ_GGML_Q8_0);
    CHECK(iq_gguf_write(g, bad, fill_test, NULL) == IQ_EINTERNAL);
    iq_gguf_free(g);
    free(bad);
    free(path);
}

// ----------------------------------------------------------------------------------------------------
// the export

static iq_tokenizer *small_tokenizer(void) {
    const char *text = "the cat sat on the mat; the dog sat on the log. 12 cats, 34 dogs!";
    iq_bpe_trainer *tr = iq_bpe_trainer_new();
    iq_bpe_trainer_add(tr, text, strlen(text));
    iq_tokenizer *t = NULL;
    CHECK(iq_bpe_trainer_train(tr, 280, &t) == IQ_OK);
    iq_bpe_trainer_free(tr);
    return t;
}

/* A model of family arch (tiny preset, overrides) with seeded weights saved to DIR/name; returns the model. */
static iq_model *saved_model(const char *arch, const int ov[5], iq_tokenizer *tok, int vocab, bool qk_norm, float rope_factor,
                             const char *name) {
    iq_model_config c;
    CHECK(iq_model_config_build(arch, "tiny", ov, vocab, &c) == IQ_OK);
    c.qk_norm = qk_norm;
    c.qkv_bias = strcmp(arch, "qwen2") == 0; /* what config.json gives a qwen2 folder */
    if (rope_factor > 0) c.rope_factor = rope_factor, c.rope_low_freq = 1, c.rope_high_freq = 4, c.rope_orig_ctx = 64;
    iq_model *m = NULL;
    CHECK(iq_model_create(&c, IQ_MODEL_INFER, 1, 1, &m) == IQ_OK);
    iq_model_init(m, 7);
    char *dir = iq_path_join(g_dir, name);
    CHECK(iq_mkdirs(dir) == IQ_OK);
    CHECK(iq_model_save_folder(m, tok, dir, IQ_DT_F32, NULL) == IQ_OK);
    free(dir);
    return m;
}

static const float *hf_tensor(iq_model *m, const char *name, int64_t *rows, int64_t *cols) {
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = malloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    const float *p = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(refs[i].name, name) == 0) {
            p = iq_model_param_memory(m, &(size_t){0}) + refs[i].offset;
            *rows = refs[i].shape[0], *cols = refs[i].ndim == 2 ? refs[i].shape[1] : 1;
        }
    free(refs);
    return p;
}

static bool export_read(const char *name, iq_export_dtype dt, gguf_file *f, iq_export_report *rep) {
    char *dir = iq_path_join(g_dir, name), out[512];
    snprintf(out, sizeof out, "%s.gguf", dir);
    iq_export_opts o = {.dtype = dt};
    bool ok = iq_export_gguf(dir, out, &o, rep) == IQ_OK && gguf_read(out, f);
    if (!ok) fprintf(stderr, "export %s: %s\n", name, iq_last_error());
    free(dir);
    return ok;
}

static void test_export_gpt2(iq_tokenizer *tok) {
    iq_model *m = saved_model("gpt2", (int[5]){1, 2, 32, 16, 0}, tok, iq_tok_vocab_size(tok), false, 0, "gpt2");
    gguf_file f;
    iq_export_report rep;
    if (export_read("gpt2", IQ_EXPORT_F32, &f, &rep)) {
        CHECK(kv_str_is(&f, "general.architecture", "gpt2") && kv_str_is(&f, "tokenizer.ggml.pre", "gpt-2"));
        CHECK(kv_u32_is(&f, "gpt2.feed_forward_length", 128) && kv_u32_is(&f, "gpt2.context_length", 16));
        CHECK(kv_str_is(&f, "tokenizer.ggml.model", "gpt2") && kv_u32_is(&f, "tokenizer.ggml.eos_token_id", 279));
        CHECK(f.n_tensors == 16 && rep.n_vocab == 280 && rep.n_merges == iq_tok_n_merges(tok));
        const rtensor *t = find_tensor(&f, "blk.0.attn_qkv.weight");
        int64_t rows, cols;
        const float *w = hf_tensor(m, "h.0.attn.c_attn.weight", &rows, &cols); /* [in 32, out 96] */
        CHECK(t && w && t->ne[0] == 32 && t->ne[1] == 96 && rows == 32 && cols == 96);
        bool same = t && w;
        for (int64_t o = 0; o < 96 && same; o++)
            for (int64_t i = 0; i < 32 && same; i++) same = tensor_f32(&f, t, (uint64_t)(o * 32 + i)) == w[i * 96 + o];
        CHECK_MSG(same, "attn_qkv must be c_attn transposed to [out, in]");
        CHECK(find_tensor(&f, "position_embd.weight") && !find_tensor(&f, "output.weight")); /* tied head */
        free(f.data);
    }
    if (export_read("gpt2", IQ_EXPORT_Q8_0, &f, &rep)) {
        CHECK(find_tensor(&f, "position_embd.weight")->type == IQ_GGML_F32 && find_tensor(&f, "blk.0.ffn_norm.weight")->type == IQ_GGML_F32);
        CHECK(find_tensor(&f, "blk.0.attn_qkv.bias")->type == IQ_GGML_F32 && find_tensor(&f, "blk.0.ffn_up.weight")->type == IQ_GGML_Q8_0);
        CHECK(kv_u32_is(&f, "general.file_type", 7) && rep.n_f16_fallback == 0);
        free(f.data);
    }
    iq_model_free(m);
}

/* q and k rows: permuted per head (h, i, j) <- (h, j, i) for llama, as HF has them for qwen3. */
static void check_qk(gguf_file *f, iq_model *m, bool permuted) {
    static const char *const HF[2] = {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"};
    static const char *const GG[2] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight"};
    const iq_model_config *c = iq_model_cfg(m);
    for (int w = 0; w < 2; w++) {
        int64_t rows, cols, hd = c->head_dim;
        const float *src = hf_tensor(m, HF[w], &rows, &cols);
        const rtensor *t = find_tensor(f, GG[w]);
        bool same = src && t && (int64_t)t->ne[0] == cols && (int64_t)t->ne[1] == rows;
        for (int64_t r = 0; r < rows && same; r++) {
            int64_t h = r / hd, k = r % hd, from = permuted ? h * hd + (k % 2) * (hd / 2) + k / 2 : r;
            for (int64_t x = 0; x < cols && same; x++) same = tensor_f32(f, t, (uint64_t)(r * cols + x)) == src[from * cols + x];
        }
        CHECK_MSG(same, "%s %s", GG[w], permuted ? "must be HF's rows permuted for llama.cpp's RoPE" : "must be HF's rows");
    }
}

static void test_export_llama_families(iq_tokenizer *tok) {
    int ov[5] = {1, 4, 32, 16, 2};
    iq_model *m = saved_model("llama", ov, tok, iq_tok_vocab_size(tok), false, 4.0f, "llama");
    gguf_file f;
    iq_export_report rep;
    if (export_read("llama", IQ_EXPORT_F32, &f, &rep)) {
        CHECK(kv_str_is(&f, "general.architecture", "llama") && kv_u32_is(&f, "llama.attention.head_count_kv", 2));
        CHECK(kv_u32_is(&f, "llama.rope.dimension_count", 8) && kv_u32_is(&f, "llama.vocab_size", 280));
        check_qk(&f, m, true);
        const rtensor *rf = find_tensor(&f, "rope_freqs.weight");
        CHECK(rf && rf->ne[0] == 4 && rf->type == IQ_GGML_F32);
        CHECK(rf && tensor_f32(&f, rf, 0) == 1.0f && tensor_f32(&f, rf, 3) == 4.0f); /* high frequencies kept, low / factor */
        free(f.data);
    }
    iq_model_free(m);
    m = saved_model("qwen3", ov, tok, iq_tok_vocab_size(tok), true, 0, "qwen3");
    if (export_read("qwen3", IQ_EXPORT_F32, &f, &rep)) {
        CHECK(kv_str_is(&f, "general.architecture", "qwen3") && find_tensor(&f, "blk.0.attn_q_norm.weight"));
        CHECK(!find_tensor(&f, "rope_freqs.weight"));
        check_qk(&f, m, false);
        free(f.data);
    }
    iq_model_free(m);
}

static void test_refusals(iq_tokenizer *tok) {
    int ov[5] = {1, 4, 32, 16, 2};
    iq_model_free(saved_model("qwen2", ov, tok, iq_tok_vocab_size(tok), false, 4.0f, "qwen2-rope"));
    char *dir = iq_path_join(g_dir, "qwen2-rope"), *out = iq_path_join(g_dir, "refused.gguf");
    CHECK(iq_export_gguf(dir, out, NULL, NULL) == IQ_EDATA && strstr(iq_last_error(), "rope_scaling llama3"));
    CHECK(!iq_file_exists(out));
    free(dir);
    iq_model_free(saved_model("gpt2", (int[5]){1, 2, 32, 16, 0}, tok, 270, false, 0, "small-vocab"));
    dir = iq_path_join(g_dir, "small-vocab");
    CHECK(iq_export_gguf(dir, out, NULL, NULL) == IQ_EDATA && strstr(iq_last_error(), "more than the model's vocabulary"));
    free(dir);
    dir = iq_path_join(g_dir, "missing");
    CHECK(iq_export_gguf(dir, out, NULL, NULL) == IQ_ENOINPUT);
    free(dir);
    free(out);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s TMPDIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    if (iq_mkdirs(g_dir) != IQ_OK) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    test_q8_0_block();
    test_container_layout();
    iq_tokenizer *tok = small_tokenizer();
    if (tok) {
        test_export_gpt2(tok);
        test_export_llama_families(tok);
        test_refusals(tok);
    }
    iq_tok_free(tok);
    CHECK_DONE();
}
