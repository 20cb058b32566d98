/* test_reference_dump — the C side of the PyTorch reference tests (tests/reference/test_reference.py).
 * usage: test_reference_dump MODEL_DIR BATCH.json OUT_DIR
 * Loads the model folder, runs iq_train_step — the step `iqtrain train` runs — on the batch (rows of ids and
 * flags, the loss options, and `steps` AdamW steps with constant lr), and writes OUT_DIR/grads.safetensors (gradient at the initial
 * weights, HF names), OUT_DIR/logits.safetensors ("logits" [B, T, V], zeros at padding) and
 * OUT_DIR/result.json (loss, nll, td, n_supervised, reward stats, losses of each step).
 * With "online": {"mix", "rows"} (online IQLearn, issue #17): the rows are injected as the policy samples of
 * every step (online.h's iq_online_add_batch), and result.json adds online_value_gap.
 * With "lora": {"rank", "alpha", "targets", "seed", "b_std", "dropout"} (issue #19): adapters are attached (B drawn from
 * N(0, b_std^2) so that they matter), their initial values written to OUT_DIR/adapter in PEFT's layout, and the
 * gradients dumped are the adapters' (the base is frozen: no gradient arena; its matrices in bf16 with
 * "base_dtype": "bf16"), named model.layers.N....lora_A.weight; with "train_head": true also the head's copy,
 * lm_head.weight (an untied head, --train-head). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/batch.h"
#include "iqtrain/data.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/lora.h"
#include "iqtrain/matmul.h"
#include "iqtrain/model.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/online.h"
#include "iqtrain/optim.h"
#include "iqtrain/rng.h"
#include "iqtrain/safetensors.h"
#include "iqtrain/step.h"

static int die(const char *what) {
    fprintf(stderr, "test_reference_dump: %s: %s\n", what, iq_last_error());
    return 1;
}

static int dump_grads(iq_model *m, const char *dir, float *logits, int B, int T, int V) {
    int nt = iq_model_trainable_refs(m, NULL); /* the adapters' when LoRA adapters are attached */
    iq_tensor_ref *refs = calloc((size_t)nt, sizeof *refs);
    iq_model_trainable_refs(m, refs);
    iq_st_entry *e = calloc((size_t)nt, sizeof *e);
    size_t ng;
    float *G;
    iq_model_trainable(m, &G, &ng);
    for (int i = 0; i < nt; i++)
        e[i] = (iq_st_entry){refs[i].name, IQ_DT_F32, refs[i].ndim, {refs[i].shape[0], refs[i].shape[1]}, G + refs[i].offset};
    char *p = iq_path_join(dir, "grads.safetensors");
    if (iq_st_write(p, e, nt, NULL, 0)) return die("grads");
    free(p);
    free(e);
    free(refs);
    iq_st_entry le = {"logits", IQ_DT_F32, 3, {B, T, V}, logits};
    p = iq_path_join(dir, "logits.safetensors");
    if (iq_st_write(p, &le, 1, NULL, 0)) return die("logits");
    free(p);
    return 0;
}

/* rows [{"ids", "flags"}] into a batch sized for them; returns the supervised tokens */
static long read_rows(const cJSON *rows, iq_batch *mb) {
    int B = cJSON_GetArraySize(rows), T = 0;
    for (const cJSON *r = rows->child; r; r = r->next) {
        int l = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "ids"));
        if (l > T) T = l;
    }
    iq_batch_init(mb, B, T);
    mb->B = B;
    mb->T = T;
    long n_sup = 0;
    int b = 0;
    for (const cJSON *r = rows->child; r; r = r->next, b++) {
        const cJSON *ri = cJSON_GetObjectItemCaseSensitive(r, "ids"), *rf = cJSON_GetObjectItemCaseSensitive(r, "flags");
        int j = 0;
        for (const cJSON *x = ri->child; x; x = x->next, j++) mb->ids[(size_t)b * T + j] = (int32_t)x->valuedouble;
        mb->lens[b] = j;
        j = 0;
        for (const cJSON *x = rf->child; x; x = x->next, j++) {
            mb->flags[(size_t)b * T + j] = (uint8_t)x->valuedouble;
            n_sup += (mb->flags[(size_t)b * T + j] & IQ_TOK_SUPERVISED) != 0;
        }
    }
    return n_sup;
}

static double num(const cJSON *o, const char *k, double def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : def;
}

/* "lora": adapters attached to m, B nonzero, written to out/adapter; NULL without "lora" (or on failure, *bad) */
static iq_lora *attach_lora(iq_model *m, const cJSON *j, int rows, const char *out, bool *bad) {
    *bad = false;
    if (!j) return NULL;
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(j, "targets");
    iq_lora_opts o = {(int)num(j, "rank", 8), (float)num(j, "alpha", 8), (float)num(j, "dropout", 0), 0,
                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "train_head"))};
    iq_lora *lo = NULL;
    const iq_model_config *c = iq_model_cfg(m);
    *bad = iq_lora_parse_targets(cJSON_IsString(tg) ? tg->valuestring : IQ_LORA_DEFAULT_TARGETS, &o.targets) ||
           iq_lora_create(c, &o, rows, (uint64_t)num(j, "seed", 1), &lo);
    if (!*bad && iq_lora_head(lo)) /* --train-head: the base's head, as train.c copies it */
        memcpy(iq_lora_head(lo), iq_model_head(m), (size_t)c->vocab * c->n_embd * sizeof(float));
    if (!*bad) *bad = iq_model_set_lora(m, lo) != IQ_OK;
    if (*bad) return lo;
    iq_rng rng;
    iq_rng_seed(&rng, (uint64_t)num(j, "seed", 1), 77);
    float b_std = (float)num(j, "b_std", 0.0);
    int nt = iq_lora_tensor_refs(lo, NULL);
    iq_tensor_ref *refs = calloc((size_t)nt, sizeof *refs);
    iq_lora_tensor_refs(lo, refs);
    size_t n;
    float *P = iq_lora_params(lo, &n);
    for (int i = 1; i < nt; i += 2) /* the B of each pair */
        for (size_t k = 0; k < refs[i].numel; k++) P[refs[i].offset + k] = b_std * iq_rng_normal(&rng);
    float *head = iq_lora_head(lo); /* --train-head: the head's copy moved too, so that merging it matters */
    for (size_t k = 0; head && k < (size_t)c->vocab * c->n_embd; k++) head[k] += b_std * iq_rng_normal(&rng);
    free(refs);
    char *dir = iq_path_join(out, "adapter");
    *bad = iq_lora_save(lo, dir, "model") != IQ_OK;
    free(dir);
    return lo;
}

int main(int argc, char **argv) {
    const char *precision = "fp32"; /* --precision bf16: the matmuls at bf16 (matmul.h), for the bf16 reference */
    if (argc == 6 && strcmp(argv[1], "--precision") == 0) {
        precision = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s [--precision fp32|bf16] MODEL_DIR BATCH.json OUT_DIR\n", argv[0]);
        return 2;
    }
    if (strcmp(precision, "fp32") != 0) {
        if (iq_matmul_configure("auto", precision)) return die("precision");
        if (iq_matmul_precision() != IQ_MM_BF16) {
            fprintf(stderr, "no bf16 matmul in this build or on this CPU: skipped\n");
            return 77;
        }
    }
    char *text;
    size_t len;
    if (iq_read_file(argv[2], &text, &len)) return die("batch");
    cJSON *batch = cJSON_Parse(text);
    free(text);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(batch, "rows");
    if (!cJSON_IsArray(rows)) {
        fprintf(stderr, "batch.json: no rows\n");
        return 2;
    }
    iq_batch mb, pb = {0};
    long n_sup = read_rows(rows, &mb);
    int B = mb.B, T = mb.T;
    const cJSON *online = cJSON_GetObjectItemCaseSensitive(batch, "online");
    const cJSON *prows = cJSON_GetObjectItemCaseSensitive(online, "rows");
    float mix = (float)num(online, "mix", 0.0);
    if (mix > 0 && cJSON_IsArray(prows)) read_rows(prows, &pb);
    /* the arenas hold the larger of the two batches */
    int maxB = pb.B > B ? pb.B : B, maxT = pb.T > T ? pb.T : T;
    iq_loss_opts lo = {(float)num(batch, "lambda", 0.1), (float)num(batch, "gamma", 0.99), IQ_TD_FULL, IQ_TRUNC_BOOTSTRAP,
                       (float)num(batch, "label_smoothing", 0.0), (float)num(batch, "entropy_coef", 0.0)};
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(batch, "td_grad"), *tr = cJSON_GetObjectItemCaseSensitive(batch, "truncation");
    if (cJSON_IsString(tg) && strcmp(tg->valuestring, "semi") == 0) lo.td_grad = IQ_TD_SEMI;
    if (cJSON_IsString(tr) && strcmp(tr->valuestring, "drop") == 0) lo.truncation = IQ_TRUNC_DROP;
    int steps = (int)num(batch, "steps", 1);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(batch, "optim");
    iq_adamw_opts ao = {(float)num(op, "lr", 1e-3), (float)num(op, "beta1", 0.9), (float)num(op, "beta2", 0.95),
                        (float)num(op, "eps", 1e-8), (float)num(op, "weight_decay", 0.1)};
    float clip = (float)num(op, "grad_clip", 1.0);

    iq_model *m = NULL;
    const cJSON *lj = cJSON_GetObjectItemCaseSensitive(batch, "lora"), *bd = cJSON_GetObjectItemCaseSensitive(lj, "base_dtype");
    iq_model_mode mode = !lj ? IQ_MODEL_TRAIN /* adapters: a frozen base, in bf16 with "base_dtype": "bf16" */
                             : cJSON_IsString(bd) && strcmp(bd->valuestring, "bf16") == 0 ? IQ_MODEL_BF16_BASE : IQ_MODEL_FROZEN;
    if (iq_model_load_folder(argv[1], mode, maxB, maxT, &m, NULL)) return die("model");
    const iq_model_config *cfg = iq_model_cfg(m);
    int V = cfg->vocab, C = cfg->n_embd;
    iq_head *head = iq_head_create(maxB * maxT, C, V, 7); /* small chunks: exercises the chunk boundaries */
    iq_online *on = NULL;
    if (pb.B > 0) { /* fixed samples, injected once: every step reuses them */
        iq_online_opts oo = {mix, 1, 1.0f, 1, 0};
        on = iq_online_create(m, &oo, 1, (iq_stop_ids){{96, -1}});
        iq_online_begin(on, 0);
        iq_online_add_batch(on, &pb);
        iq_online_end(on);
    }
    if (iq_mkdirs(argv[3])) return die("out");
    bool bad;
    iq_lora *lora = attach_lora(m, lj, maxB * maxT, argv[3], &bad);
    if (bad) return die("lora");
    iq_adamw *opt = iq_adamw_create(m); /* after the adapters: it trains them */
    float *logits = calloc((size_t)B * T * V, sizeof *logits);
    cJSON *losses = cJSON_CreateArray();
    iq_loss_stats first = {0};
    if (iq_mkdirs(argv[3])) return die("out");
    iq_step_opts so = {.loss = lo, .adamw = ao, .lr = ao.lr, .grad_clip = clip, .online = on};
    double gap = 0.0;
    for (int s = 0; s < steps; s++) {
        bool given = false;
        iq_step_source src = {iq_step_one_batch, &given, n_sup}; /* the whole batch, one micro-batch */
        iq_step_result res;
        so.logits_out = s == 0 ? logits : NULL;
        /* a non-finite loss (a hostile round-trip model) still has logits to compare: dump, stop stepping */
        iq_status st = iq_train_step(m, head, opt, &mb, &src, &so, &res);
        cJSON_AddItemToArray(losses, cJSON_CreateNumber(res.loss));
        if (s == 0) {
            first = res.stats;
            gap = res.online_value_gap;
            /* gradients at the initial weights: AdamW leaves the gradient arena as the step computed it */
            if (dump_grads(m, argv[3], logits, B, T, V)) return 1;
        }
        if (st) break;
    }
    double nll, td, loss = iq_loss_value(&first, lo.lambda, &nll, &td) + (double)mix * gap;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddNumberToObject(res, "loss", loss);
    cJSON_AddNumberToObject(res, "nll", nll);
    cJSON_AddNumberToObject(res, "td", td);
    cJSON_AddNumberToObject(res, "n_supervised", (double)first.n_sup);
    double ntd = first.n_td ? (double)first.n_td : 1.0;
    cJSON_AddNumberToObject(res, "reward_mean", first.r_sum / ntd);
    cJSON_AddNumberToObject(res, "reward_abs_mean", first.r_abs_sum / ntd);
    cJSON_AddNumberToObject(res, "reward_abs_max", first.r_abs_max);
    if (on) cJSON_AddNumberToObject(res, "online_value_gap", gap);
    cJSON_AddItemToObject(res, "losses", losses);
    char *s = cJSON_Print(res);
    char *p = iq_path_join(argv[3], "result.json");
    if (iq_write_file_atomic(p, s, strlen(s))) return die("result");
    free(p);
    free(s);
    cJSON_Delete(res);
    cJSON_Delete(batch);
    iq_head_free(head);
    iq_adamw_free(opt);
    iq_model_free(m);
    iq_lora_free(lora);
    iq_batch_free(&mb);
    iq_batch_free(&pb);
    iq_online_free(on);
    free(logits);
    return 0;
}
