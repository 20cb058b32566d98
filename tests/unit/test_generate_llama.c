/* test_generate_llama — the Llama families' KV-cache decoding equals full recomputation (logits after a
 * prefill and single-token steps, two slots at different positions in one step, greedy generation), and the
 * inference-mode model (one layer's activations reused) computes the training-mode model's hidden states. One
 * model per family variant: llama (tied, GQA, rope_scaling llama3), qwen2 (q/k/v biases, untied), qwen3 (q/k
 * norm, o bias, head_dim != n_embd / n_head, MHA), mistral (one key/value head). */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "iqtrain/generate.h"
#include "iqtrain/infer.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model.h"
#include "iqtrain/rng.h"

enum { V = 53, CTX = 48 };

static iq_model_config variant(const char *arch, int kv, int head_dim, bool untied, bool qkv_bias, bool o_bias,
                               bool qk_norm, bool llama3) {
    iq_model_config c = {.n_layer = 2, .n_head = 4, .n_embd = 32, .ctx = CTX, .vocab = V, .ln_eps = 1e-6f};
    snprintf(c.arch, sizeof c.arch, "%s", arch);
    c.n_kv_head = kv, c.head_dim = head_dim, c.n_inner = 72, c.rope_theta = 10000.0f;
    if (llama3) c.rope_factor = 8.0f, c.rope_low_freq = 1.0f, c.rope_high_freq = 4.0f, c.rope_orig_ctx = 16;
    c.untied = untied, c.qkv_bias = qkv_bias, c.o_bias = o_bias, c.qk_norm = qk_norm;
    return c;
}

static iq_model *make_model(const iq_model_config *cfg, iq_model_mode mode) {
    iq_model *m = NULL;
    if (iq_model_create(cfg, mode, 2, CTX, &m) != IQ_OK) return NULL;
    iq_model_init(m, 11);
    /* sharper logits than the 0.02 init, and norms and biases away from 1 and 0 */
    size_t n;
    float *p = iq_model_param_memory(m, &n);
    iq_rng r;
    iq_rng_seed(&r, 5, 5);
    for (size_t i = 0; i < n; i++) p[i] += 0.15f * iq_rng_normal(&r);
    return m;
}

/* logits of position `at` of ids (B=1) by a full forward pass */
static void full_logits(iq_model *m, const int32_t *ids, int T, int at, float *out) {
    int C = iq_model_cfg(m)->n_embd;
    iq_model_forward(m, ids, 1, T);
    iq_sgemm(false, true, 1, V, C, 1.0f, iq_model_lnf(m) + (size_t)at * C, iq_model_head(m), 0.0f, out);
}

static float max_diff(const float *a, const float *b, int n) {
    float md = 0.0f;
    for (int i = 0; i < n; i++) md = fmaxf(md, fabsf(a[i] - b[i]));
    return md;
}

static void test_decode(iq_model *m, const char *what) {
    int32_t seq[CTX];
    for (int i = 0; i < CTX; i++) seq[i] = (int32_t)((i * 7 + 3) % V);
    iq_infer *inf = iq_infer_create(m, 2, CTX);
    float a[2 * V], b[V];
    int slot0 = 0, slots[2] = {0, 1};
    iq_infer_step(inf, &slot0, seq, 1, 8, a); /* prefill 8 */
    full_logits(m, seq, 8, 7, b);
    float md = max_diff(a, b, V);
    for (int i = 8; i < 12; i++) iq_infer_step(inf, &slot0, seq + i, 1, 1, a);
    full_logits(m, seq, 12, 11, b);
    md = fmaxf(md, max_diff(a, b, V));
    /* slot 1 prefilled with 3 tokens of another sequence; then one step feeds both slots at positions 12 and 3 */
    int32_t other[4] = {9, 31, 2, 40};
    int slot1 = 1;
    iq_infer_step(inf, &slot1, other, 1, 3, a);
    int32_t next[2] = {seq[12], other[3]};
    iq_infer_step(inf, slots, next, 2, 1, a);
    full_logits(m, seq, 13, 12, b);
    md = fmaxf(md, max_diff(a, b, V));
    full_logits(m, other, 4, 3, b);
    md = fmaxf(md, max_diff(a + V, b, V));
    CHECK_MSG(md < 1e-4f, "%s: KV-cache logits differ from recomputation by %g", what, (double)md);
    /* greedy generation agrees with recomputation token by token */
    iq_gen_opts o = {1, {0.0f, 0, 1.0f}, 0, 30, 1};
    iq_gen_out out = {0};
    iq_stop_ids none = {{-1, -1}};
    iq_generate(inf, seq, 5, &none, &o, 0, &out);
    int agree = 0;
    for (size_t t = 0; t < out.ids.len; t++) {
        full_logits(m, seq, 5 + (int)t, 4 + (int)t, b);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (b[v] > b[best]) best = v;
        agree += best == out.ids.v[t];
        seq[5 + t] = out.ids.v[t];
    }
    CHECK_MSG(out.ids.len == 30 && agree == 30, "%s: greedy decoding agrees at %d of %zu tokens", what, agree, out.ids.len);
    iq_ids_free(&out.ids);
    iq_infer_free(inf);
}

/* the inference-mode arenas (one layer's activations reused) give the same final hidden states */
static void test_infer_mode(iq_model *m, const iq_model_config *cfg, const char *what) {
    iq_model *mi = make_model(cfg, IQ_MODEL_INFER);
    CHECK(mi != NULL && iq_model_grad_memory(mi, &(size_t){0}) == NULL);
    if (!mi) return;
    size_t n, ni;
    const float *src = iq_model_param_memory(m, &n);
    float *dst = iq_model_param_memory(mi, &ni);
    CHECK(n == ni);
    memcpy(dst, src, n * sizeof(float));
    int32_t ids[2 * 20];
    for (int i = 0; i < 40; i++) ids[i] = (int32_t)((i * 13 + 1) % V);
    iq_model_forward(m, ids, 2, 20);
    iq_model_forward(mi, ids, 2, 20);
    float md = max_diff(iq_model_lnf(m), iq_model_lnf(mi), 2 * 20 * cfg->n_embd);
    CHECK_MSG(md == 0.0f, "%s: inference-mode hidden states differ by %g", what, (double)md);
    CHECK(iq_model_arena_bytes(mi) < iq_model_arena_bytes(m) / 2);
    iq_model_free(mi);
}

int main(void) {
    iq_set_threads(2);
    iq_model_config cfgs[4] = {
        variant("llama", 2, 8, false, false, false, false, true),
        variant("qwen2", 2, 8, true, true, false, false, false),
        variant("qwen3", 4, 12, false, true, true, true, false),
        variant("mistral", 1, 8, true, false, false, false, false),
    };
    for (int i = 0; i < 4; i++) {
        char what[128];
        iq_model_config_describe(&cfgs[i], what, sizeof what);
        CHECK_MSG(iq_model_config_check(&cfgs[i]) == IQ_OK, "%s: %s", what, iq_last_error());
        iq_model *m = make_model(&cfgs[i], IQ_MODEL_TRAIN);
        CHECK(m != NULL);
        if (!m) continue;
        test_decode(m, what);
        test_infer_mode(m, &cfgs[i], what);
        iq_model_free(m);
    }
    CHECK_DONE();
}
