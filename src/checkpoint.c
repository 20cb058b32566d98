/* checkpoint.c — model folders and training checkpoints: layout, atomic folder writes, CRC checks.
 *
 * Sections: config.json · weights · model folder · checkpoints · folder helpers. */
#include "iqtrain/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "iqtrain/fault.h"
#include "iqtrain/log.h"

// ----------------------------------------------------------------------------------------------------
// config.json

static iq_status write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) return iq_fail(IQ_EINTERNAL, "out of memory printing %s", path);
    iq_buf b = {0};
    iq_buf_append(&b, s, strlen(s));
    iq_buf_putc(&b, '\n');
    free(s);
    iq_status st = iq_write_file_atomic(path, b.data, b.len);
    iq_buf_free(&b);
    return st;
}

static bool get_int(const cJSON *o, const char *k, int *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || fabs(x->valuedouble) > 1e9) return false;
    *v = (int)x->valuedouble;
    return true;
}

iq_status iq_model_config_read(const char *dir, iq_model_config *cfg, cJSON **iqtrain_section) {
    if (iqtrain_section) *iqtrain_section = NULL;
    char *path = iq_path_join(dir, "config.json");
    cJSON *j = NULL;
    iq_status st = iq_read_json(path, &j);
    if (st) {
        free(path);
        return st;
    }
    iq_model_config c = {0};
    c.ln_eps = 1e-5f;
    const cJSON *x;
    if (!cJSON_IsObject(j)) st = iq_fail(IQ_EDATA, "%s: not a JSON object", path);
    else if ((x = cJSON_GetObjectItemCaseSensitive(j, "model_type")) && !(cJSON_IsString(x) && strcmp(x->valuestring, "gpt2") == 0))
        st = iq_fail(IQ_EDATA, "%s: model_type is not gpt2", path);
    else if (!get_int(j, "n_layer", &c.n_layer) || !get_int(j, "n_head", &c.n_head) || !get_int(j, "n_embd", &c.n_embd) ||
             !get_int(j, "vocab_size", &c.vocab))
        st = iq_fail(IQ_EDATA, "%s: n_layer, n_head, n_embd and vocab_size must be integers", path);
    else if (!get_int(j, "n_positions", &c.ctx) && !get_int(j, "n_ctx", &c.ctx))
        st = iq_fail(IQ_EDATA, "%s: no n_positions (or n_ctx)", path);
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon"))) {
        if (!cJSON_IsNumber(x)) st = iq_fail(IQ_EDATA, "%s: layer_norm_epsilon is not a number", path);
        else c.ln_eps = (float)x->valuedouble;
    }
    /* GPT-2 variants iqtrain does not implement are refused by name */
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "n_inner")) && !cJSON_IsNull(x)) {
        int ni;
        if (!get_int(j, "n_inner", &ni) || (long long)ni != 4LL * c.n_embd) /* (n_embd is only range-checked below) */
            st = iq_fail(IQ_EDATA, "%s: unsupported n_inner (only 4 * n_embd)", path);
    }
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "scale_attn_weights")) && cJSON_IsFalse(x))
        st = iq_fail(IQ_EDATA, "%s: unsupported scale_attn_weights: false", path);
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "scale_attn_by_inverse_layer_idx")) && cJSON_IsTrue(x))
        st = iq_fail(IQ_EDATA, "%s: unsupported scale_attn_by_inverse_layer_idx: true", path);
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "reorder_and_upcast_attn")) && cJSON_IsTrue(x))
        st = iq_fail(IQ_EDATA, "%s: unsupported reorder_and_upcast_attn: true", path);
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "activation_function")) &&
        !(cJSON_IsString(x) && (strcmp(x->valuestring, "gelu_new") == 0 || strcmp(x->valuestring, "gelu_pytorch_tanh") == 0)))
        st = iq_fail(IQ_EDATA, "%s: unsupported activation_function %s (gelu_new or gelu_pytorch_tanh)", path,
                     cJSON_IsString(x) ? x->valuestring : "(not a string)");
    if (!st && (x = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings")) && cJSON_IsFalse(x))
        st = iq_fail(IQ_EDATA, "%s: unsupported tie_word_embeddings: false (an untied head)", path);
    if (!st) {
        st = iq_model_config_check(&c);
        if (st) {
            iq_error_prefix("%s", path);
            st = IQ_EDATA;
        }
    }
    if (!st && iqtrain_section) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "iqtrain");
        if (cJSON_IsObject(s)) *iqtrain_section = cJSON_Duplicate(s, 1);
    }
    cJSON_Delete(j);
    free(path);
    if (!st) *cfg = c;
    return st;
}

static cJSON *config_json(const iq_model_config *c, const cJSON *iqtrain_section) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model_type", "gpt2");
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(j, "n_positions", c->ctx);
    cJSON_AddNumberToObject(j, "n_ctx", c->ctx);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNullToObject(j, "n_inner");
    cJSON_AddStringToObject(j, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(j, "resid_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "embd_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "attn_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "layer_norm_epsilon", (double)c->ln_eps);
    cJSON_AddNumberToObject(j, "initializer_range", 0.02);
    cJSON_AddBoolToObject(j, "scale_attn_weights", 1);
    cJSON_AddBoolToObject(j, "scale_attn_by_inverse_layer_idx", 0);
    cJSON_AddBoolToObject(j, "reorder_and_upcast_attn", 0);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", 1);
    cJSON_AddBoolToObject(j, "use_cache", 1);
    cJSON_AddNumberToObject(j, "bos_token_id", c->vocab - 1);
    cJSON_AddNumberToObject(j, "eos_token_id", c->vocab - 1);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    if (iqtrain_section) cJSON_AddItemToObject(j, "iqtrain", cJSON_Duplicate(iqtrain_section, 1));
    return j;
}

// ----------------------------------------------------------------------------------------------------
// weights

static bool ends_with(const char *s, const char *suffix) {
    size_t l = strlen(s), k = strlen(suffix);
    return l >= k && strcmp(s + l - k, suffix) == 0;
}

/* HF's causal-mask buffers: h.{i}.attn.bias and h.{i}.attn.masked_bias */
static bool is_buffer_name(const char *n) { return ends_with(n, ".attn.bias") || ends_with(n, ".attn.masked_bias"); }

static bool g_allow_extra = false;
void iq_checkpoint_allow_extra_tensors(bool allow) { g_allow_extra = allow; }

/* How much of a (possibly hostile) tensor or file name goes into a message. */
#define NAME_SHOW 120

/* A tensor the config calls for: its HF name (no prefix) and shape, in iq_model_tensor_refs's order, and
 * where it was found. */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[2];
    int file;
    const iq_st_tensor *t;
} wanted_tensor;

/* The tensors of a config, computed without allocating the model (so that a config.json that claims a
 * huge model is checked against the files before anything that size is allocated). Returns the count;
 * fills w when not NULL. */
static int wanted_tensors(const iq_model_config *c, wanted_tensor *w) {
    int64_t V = c->vocab, C = c->n_embd, P = c->ctx;
    int n = 0;
#define WANT(ND, S0, S1, ...)                                                                                \
    do {                                                                                                     \
        if (w) {                                                                                             \
            memset(&w[n], 0, sizeof w[n]);                                                                   \
            snprintf(w[n].name, sizeof w[n].name, __VA_ARGS__);                                              \
            w[n].ndim = ND;                                                                                  \
            w[n].shape[0] = S0;                                                                              \
            w[n].shape[1] = S1;                                                                              \
        }                                                                                                    \
        n++;                                                                                                 \
    } while (0)
    WANT(2, V, C, "wte.weight");
    WANT(2, P, C, "wpe.weight");
    for (int l = 0; l < c->n_layer; l++) {
        WANT(1, C, 0, "h.%d.ln_1.weight", l);
        WANT(1, C, 0, "h.%d.ln_1.bias", l);
        WANT(2, C, 3 * C, "h.%d.attn.c_attn.weight", l);
        WANT(1, 3 * C, 0, "h.%d.attn.c_attn.bias", l);
        WANT(2, C, C, "h.%d.attn.c_proj.weight", l);
        WANT(1, C, 0, "h.%d.attn.c_proj.bias", l);
        WANT(1, C, 0, "h.%d.ln_2.weight", l);
        WANT(1, C, 0, "h.%d.ln_2.bias", l);
        WANT(2, C, 4 * C, "h.%d.mlp.c_fc.weight", l);
        WANT(1, 4 * C, 0, "h.%d.mlp.c_fc.bias", l);
        WANT(2, 4 * C, C, "h.%d.mlp.c_proj.weight", l);
        WANT(1, C, 0, "h.%d.mlp.c_proj.bias", l);
    }
    WANT(1, C, 0, "ln_f.weight");
    WANT(1, C, 0, "ln_f.bias");
#undef WANT
    return n;
}

/* "[2, 3]" into buf */
static const char *dims_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* Finds w->name, bare or with a "transformer." prefix, across the files. A second copy is refused: which
 * one would be loaded would depend on the order of the files and of the header. */
static iq_status find_wanted(iq_safetensors *const *files, int nf, const char *src, wanted_tensor *w) {
    char pre[80];
    snprintf(pre, sizeof pre, "transformer.%s", w->name);
    const char *names[2] = {w->name, pre};
    w->t = NULL;
    for (int f = 0; f < nf; f++)
        for (int k = 0; k < 2; k++) {
            const iq_st_tensor *t = iq_st_find(files[f], names[k]);
            if (!t) continue;
            if (w->t)
                return iq_fail(IQ_EDATA, "%s: tensor %s is stored twice: as %s in %s and as %s in %s", src, w->name,
                               w->t->name, iq_st_path(files[w->file]), t->name, iq_st_path(files[f]));
            w->t = t;
            w->file = f;
        }
    return IQ_OK;
}

/* Checks the files against the config before the model is allocated: every wanted tensor once, with its
 * shape and a float dtype; everything else a known buffer, an lm_head.weight of wte's shape (its values
 * are compared after loading), or an extra tensor allowed by --allow-extra-tensors. src names the folder's
 * weights in messages (model.safetensors or the shard index). */
static iq_status check_weights(iq_safetensors *const *files, int nf, const char *src, wanted_tensor *w, int n) {
    char sh[160], want[64];
    for (int i = 0; i < n; i++) {
        iq_status s = find_wanted(files, nf, src, &w[i]);
        if (s) return s;
        const iq_st_tensor *t = w[i].t;
        if (!t) return iq_fail(IQ_EDATA, "%s: tensor %s is missing", src, w[i].name);
        const char *path = iq_st_path(files[w[i].file]);
        if (t->ndim != w[i].ndim || t->shape[0] != w[i].shape[0] || (w[i].ndim == 2 && t->shape[1] != w[i].shape[1]))
            return iq_fail(IQ_EDATA, "%s: tensor %s has shape %s, expected %s (config.json)", path, t->name,
                           dims_str(t->ndim, t->shape, sh, sizeof sh), dims_str(w[i].ndim, w[i].shape, want, sizeof want));
        if (t->dtype != IQ_DT_F32 && t->dtype != IQ_DT_F16 && t->dtype != IQ_DT_BF16)
            return iq_fail(IQ_EDATA, "%s: tensor %s has dtype %s (F32, F16 or BF16 expected)", path, t->name,
                           iq_dtype_name(t->dtype));
    }
    iq_strmap *known = iq_strmap_new((size_t)n);
    for (int i = 0; i < n; i++) iq_strmap_put(known, w[i].name, strlen(w[i].name), i);
    iq_status s = IQ_OK;
    for (int f = 0; f < nf && !s; f++)
        for (int k = 0; k < iq_st_count(files[f]) && !s; k++) {
            const iq_st_tensor *t = iq_st_tensor_at(files[f], k);
            const char *nm = t->name, *path = iq_st_path(files[f]);
            const char *bare = strncmp(nm, "transformer.", 12) == 0 ? nm + 12 : nm;
            int32_t idx;
            if (iq_strmap_get(known, bare, strlen(bare), &idx) || is_buffer_name(bare)) continue;
            if (strcmp(nm, "lm_head.weight") == 0) {
                if (t->ndim != 2 || t->shape[0] != w[0].shape[0] || t->shape[1] != w[0].shape[1])
                    s = iq_fail(IQ_EDATA, "%s: lm_head.weight has shape %s, not wte's %s (an untied head is not supported)",
                                path, dims_str(t->ndim, t->shape, sh, sizeof sh), dims_str(2, w[0].shape, want, sizeof want));
                else if (t->dtype != IQ_DT_F32 && t->dtype != IQ_DT_F16 && t->dtype != IQ_DT_BF16)
                    s = iq_fail(IQ_EDATA, "%s: lm_head.weight has dtype %s (F32, F16 or BF16 expected)", path,
                                iq_dtype_name(t->dtype));
                continue;
            }
            if (g_allow_extra) {
                iq_warn("%s: ignoring tensor %.*s (--allow-extra-tensors)", path, NAME_SHOW, nm);
                continue;
            }
            s = iq_fail(IQ_EDATA, "%s: unexpected tensor %.*s (--allow-extra-tensors ignores it)", path, NAME_SHOW, nm);
        }
    iq_strmap_free(known);
    return s;
}

/* Reads the checked tensors into the model, then compares every stored lm_head.weight with wte. */
static iq_status read_weights(iq_model *m, iq_safetensors *const *files, int nf, const wanted_tensor *w, int n) {
    int nr = iq_model_tensor_refs(m, NULL);
    if (nr != n) return iq_fail(IQ_EINTERNAL, "model has %d tensors, the folder check expected %d", nr, n);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    size_t np;
    float *P = iq_model_param_memory(m, &np);
    iq_status s = IQ_OK;
    for (int i = 0; i < n && !s; i++) {
        if (strcmp(refs[i].name, w[i].name) != 0 || refs[i].ndim != w[i].ndim || refs[i].shape[0] != w[i].shape[0] ||
            (refs[i].ndim == 2 && refs[i].shape[1] != w[i].shape[1]))
            s = iq_fail(IQ_EINTERNAL, "model tensor %d is %s, the folder check expected %s", i, refs[i].name, w[i].name);
        else
            s = iq_st_read_f32(files[w[i].file], w[i].t, P + refs[i].offset);
    }
    for (int f = 0; f < nf && !s; f++) {
        const iq_st_tensor *t = iq_st_find(files[f], "lm_head.weight");
        if (!t) continue;
        size_t vc = refs[0].numel;
        float *tmp = iq_xmalloc(vc * sizeof *tmp);
        s = iq_st_read_f32(files[f], t, tmp);
        if (!s && memcmp(tmp, P + refs[0].offset, vc * sizeof *tmp) != 0)
            s = iq_fail(IQ_EDATA, "%s: lm_head.weight differs from wte.weight (an untied head is not supported)",
                        iq_st_path(files[f]));
        free(tmp);
    }
    free(refs);
    return s;
}

/* Opens model.safetensors, or the shards named by model.safetensors.index.json. *src receives the path
 * that names the weights in messages (malloc'd). */
static iq_status open_weight_files(const char *dir, iq_safetensors ***files, int *nf, char **src) {
    *files = NULL;
    *nf = 0;
    *src = NULL;
    char *single = iq_path_join(dir, "model.safetensors"), *index = iq_path_join(dir, "model.safetensors.index.json");
    iq_status s = IQ_OK;
    if (iq_file_exists(single) || !iq_file_exists(index)) {
        *files = iq_xcalloc(1, sizeof **files);
        s = iq_st_open(single, &(*files)[0]);
        if (!s) *nf = 1;
        *src = single;
        single = NULL;
    } else {
        cJSON *j = NULL;
        s = iq_read_json(index, &j);
        const cJSON *wm = s ? NULL : cJSON_GetObjectItemCaseSensitive(j, "weight_map");
        if (!s && !cJSON_IsObject(wm)) s = iq_fail(IQ_EDATA, "%s: no \"weight_map\" object", index);
        int cap = 0;
        const char **names = NULL;
        for (const cJSON *e = s ? NULL : wm->child; e && !s; e = e->next) {
            /* a plain file name in the folder: no path, no "..", no hidden file */
            if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || e->valuestring[0] == '.' || !e->valuestring[0]) {
                s = iq_fail(IQ_EDATA, "%s: tensor %.*s maps to an invalid file name %s%.*s%s (a file in the folder expected)",
                            index, NAME_SHOW, e->string, cJSON_IsString(e) ? "'" : "", NAME_SHOW,
                            cJSON_IsString(e) ? e->valuestring : "(not a string)", cJSON_IsString(e) ? "'" : "");
                break;
            }
            bool seen = false;
            for (int f = 0; f < *nf && !seen; f++) seen = strcmp(names[f], e->valuestring) == 0;
            if (seen) continue;
            if (*nf == cap) {
                cap = cap ? 2 * cap : 8;
                *files = iq_xrealloc(*files, (size_t)cap * sizeof **files);
                names = iq_xrealloc(names, (size_t)cap * sizeof *names);
            }
            names[*nf] = e->valuestring;
            char *p = iq_path_join(dir, e->valuestring);
            s = iq_st_open(p, &(*files)[*nf]);
            free(p);
            if (!s) (*nf)++;
        }
        if (!s && *nf == 0) s = iq_fail(IQ_EDATA, "%s: the weight map is empty", index);
        free(names);
        cJSON_Delete(j);
        *src = index;
        index = NULL;
    }
    free(single);
    free(index);
    if (s) {
        for (int f = 0; f < *nf; f++) iq_st_close((*files)[f]);
        free(*files);
        *files = NULL;
        *nf = 0;
        free(*src);
        *src = NULL;
    }
    return s;
}

iq_status iq_model_load_folder(const char *dir, int max_batch, int max_seq, iq_model **out, cJSON **iqtrain_section) {
    *out = NULL;
    if (iqtrain_section) *iqtrain_section = NULL;
    if (!iq_is_dir(dir)) return iq_fail(IQ_ENOINPUT, "%s: not a model folder (no such directory)", dir);
    iq_model_config c;
    iq_status s = iq_model_config_read(dir, &c, iqtrain_section);
    if (s) return s;
    iq_safetensors **files = NULL;
    int nf = 0;
    char *src = NULL;
    iq_model *m = NULL;
    int n = wanted_tensors(&c, NULL);
    wanted_tensor *w = iq_xcalloc((size_t)n, sizeof *w);
    wanted_tensors(&c, w);
    s = open_weight_files(dir, &files, &nf, &src);
    if (!s) s = check_weights(files, nf, src, w, n); /* before the model (sized by config.json) is allocated */
    if (!s) s = iq_model_create(&c, max_batch, max_seq > 0 ? max_seq : c.ctx, &m);
    if (!s) s = read_weights(m, files, nf, w, n);
    for (int f = 0; f < nf; f++) iq_st_close(files[f]);
    free(files);
    free(src);
    free(w);
    if (s) {
        iq_model_free(m);
        if (iqtrain_section && *iqtrain_section) {
            cJSON_Delete(*iqtrain_section);
            *iqtrain_section = NULL;
        }
        return s;
    }
    *out = m;
    return IQ_OK;
}

static iq_status save_weights(iq_model *m, const char *path, iq_dtype dtype) {
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_st_entry *e = iq_xcalloc((size_t)n, sizeof *e);
    iq_model_tensor_refs(m, refs);
    size_t np;
    float *P = iq_model_param_memory(m, &np);
    for (int i = 0; i < n; i++) {
        e[i].name = refs[i].name;
        e[i].dtype = dtype;
        e[i].ndim = refs[i].ndim;
        e[i].shape[0] = refs[i].shape[0];
        e[i].shape[1] = refs[i].shape[1];
        e[i].data = P + refs[i].offset;
    }
    const char *meta[2] = {"format", "pt"};
    iq_status s = iq_st_write(path, e, n, meta, 1);
    free(e);
    free(refs);
    return s;
}

iq_status iq_model_save_folder(iq_model *m, const iq_tokenizer *tok, const char *dir, iq_dtype dtype,
                               const cJSON *iqtrain_section) {
    const iq_model_config *c = iq_model_cfg(m);
    cJSON *cfg = config_json(c, iqtrain_section);
    if (dtype == IQ_DT_BF16) cJSON_ReplaceItemInObject(cfg, "torch_dtype", cJSON_CreateString("bfloat16"));
    if (dtype == IQ_DT_F16) cJSON_ReplaceItemInObject(cfg, "torch_dtype", cJSON_CreateString("float16"));
    char *p = iq_path_join(dir, "config.json");
    iq_status s = write_json(p, cfg);
    free(p);
    cJSON_Delete(cfg);
    if (!s) {
        cJSON *g = cJSON_CreateObject();
        cJSON_AddNumberToObject(g, "bos_token_id", c->vocab - 1);
        cJSON_AddNumberToObject(g, "eos_token_id", c->vocab - 1);
        cJSON_AddNumberToObject(g, "max_length", c->ctx);
        p = iq_path_join(dir, "generation_config.json");
        s = write_json(p, g);
        free(p);
        cJSON_Delete(g);
    }
    if (!s) {
        p = iq_path_join(dir, "model.safetensors");
        s = save_weights(m, p, dtype);
        free(p);
    }
    if (!s && tok) s = iq_tok_save(tok, dir, c->ctx);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// checkpoints

static iq_status file_crc(const char *path, uint32_t *crc) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return iq_fail(IQ_ENOINPUT, "%s: %s", path, strerror(errno));
    uLong c = crc32(0L, Z_NULL, 0);
    unsigned char buf[1 << 16];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) c = crc32(c, buf, (uInt)r);
    int e = errno;
    close(fd);
    if (r < 0) return iq_fail(IQ_ENOINPUT, "%s: read error: %s", path, strerror(e));
    *crc = (uint32_t)c;
    return IQ_OK;
}

static const char *const CKPT_FILES[] = {"config.json", "generation_config.json", "model.safetensors", "optimizer.safetensors",
                                         "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                         "special_tokens_map.json"};
#define N_CKPT_FILES ((int)(sizeof CKPT_FILES / sizeof *CKPT_FILES))

static void fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static iq_status save_optimizer(iq_model *m, iq_adamw *opt, const char *path) {
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    iq_st_entry *e = iq_xcalloc(2 * (size_t)n, sizeof *e);
    char (*names)[80] = iq_xmalloc(2 * (size_t)n * sizeof *names);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n; i++) {
            iq_st_entry *x = &e[k * n + i];
            snprintf(names[k * n + i], sizeof names[0], "%s.%s", k == 0 ? "exp_avg" : "exp_avg_sq", refs[i].name);
            x->name = names[k * n + i];
            x->dtype = IQ_DT_F32;
            x->ndim = refs[i].ndim;
            x->shape[0] = refs[i].shape[0];
            x->shape[1] = refs[i].shape[1];
            x->data = (k == 0 ? iq_adamw_m(opt) : iq_adamw_v(opt)) + refs[i].offset;
        }
    char steps[32];
    snprintf(steps, sizeof steps, "%ld", iq_adamw_steps(opt));
    const char *meta[4] = {"format", "pt", "step", steps};
    iq_status s = iq_st_write(path, e, 2 * n, meta, 2);
    free(names);
    free(e);
    free(refs);
    return s;
}

iq_status iq_checkpoint_load_optimizer(const char *dir, iq_model *m, iq_adamw *opt) {
    char *path = iq_path_join(dir, "optimizer.safetensors");
    iq_safetensors *st = NULL;
    iq_status s = iq_st_open(path, &st);
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    char name[96];
    for (int k = 0; k < 2 && !s; k++)
        for (int i = 0; i < n && !s; i++) {
            snprintf(name, sizeof name, "%s.%s", k == 0 ? "exp_avg" : "exp_avg_sq", refs[i].name);
            const iq_st_tensor *t = iq_st_find(st, name);
            if (!t || t->dtype != IQ_DT_F32 || (size_t)iq_st_numel(t) != refs[i].numel)
                s = iq_fail(IQ_EDATA, "%s: tensor %s is missing or has the wrong shape", path, name);
            else
                s = iq_st_read_f32(st, t, (k == 0 ? iq_adamw_m(opt) : iq_adamw_v(opt)) + refs[i].offset);
        }
    if (!s) {
        const char *stp = iq_st_metadata(st, "step");
        if (!stp) s = iq_fail(IQ_EDATA, "%s: no step in the metadata", path);
        else iq_adamw_set_steps(opt, strtol(stp, NULL, 10));
    }
    free(refs);
    iq_st_close(st);
    free(path);
    return s;
}

iq_status iq_checkpoint_save(const char *out_dir, long step, iq_model *m, iq_adamw *opt, const iq_tokenizer *tok,
                             const cJSON *iqtrain_section, const cJSON *state, char **path_out) {
    char name[64], tmpname[96];
    snprintf(name, sizeof name, "checkpoint-%ld", step);
    snprintf(tmpname, sizeof tmpname, ".%s.tmp-%ld", name, (long)getpid());
    char *final_dir = iq_path_join(out_dir, name), *tmp = iq_path_join(out_dir, tmpname);
    iq_remove_tree(tmp);
    iq_fault_point("ckpt-begin");
    iq_status s = IQ_OK;
    if (mkdir(tmp, 0755) != 0) s = iq_fail(IQ_ECANTCREAT, "%s: cannot create: %s", tmp, strerror(errno));
    if (!s) s = iq_model_save_folder(m, tok, tmp, IQ_DT_F32, iqtrain_section);
    if (!s) {
        char *p = iq_path_join(tmp, "optimizer.safetensors");
        s = save_optimizer(m, opt, p);
        free(p);
    }
    cJSON *ts = state ? cJSON_Duplicate(state, 1) : cJSON_CreateObject();
    cJSON *files = cJSON_CreateObject();
    for (int i = 0; i < N_CKPT_FILES && !s; i++) {
        char *p = iq_path_join(tmp, CKPT_FILES[i]);
        uint32_t crc;
        s = file_crc(p, &crc);
        if (s) s = IQ_EIO;
        else cJSON_AddNumberToObject(files, CKPT_FILES[i], (double)crc);
        iq_fault_point("ckpt-file");
        free(p);
    }
    cJSON_DeleteItemFromObject(ts, "files");
    cJSON_AddItemToObject(ts, "files", files);
    if (!s) {
        char *p = iq_path_join(tmp, "trainer_state.json");
        s = write_json(p, ts);
        free(p);
    }
    cJSON_Delete(ts);
    if (!s) {
        fsync_path(tmp);
        iq_fault_point("ckpt-before-rename");
        if (iq_is_dir(final_dir)) { /* re-saving a step (after a resume): replace the old folder */
            char old[128];
            snprintf(old, sizeof old, ".%s.old-%ld", name, (long)getpid());
            char *oldp = iq_path_join(out_dir, old);
            if (rename(final_dir, oldp) != 0) s = iq_fail(IQ_EIO, "%s: cannot replace: %s", final_dir, strerror(errno));
            if (!s && rename(tmp, final_dir) != 0) s = iq_fail(IQ_EIO, "%s: rename failed: %s", final_dir, strerror(errno));
            if (!s) iq_remove_tree(oldp);
            free(oldp);
        } else if (rename(tmp, final_dir) != 0) {
            s = iq_fail(IQ_EIO, "%s: rename failed: %s", final_dir, strerror(errno));
        }
        if (!s) fsync_path(out_dir);
        if (!s) iq_fault_point("ckpt-after-rename");
    }
    if (s) iq_remove_tree(tmp);
    free(tmp);
    if (!s && path_out) *path_out = final_dir;
    else free(final_dir);
    return s;
}

/* trainer_state.json is not covered by a CRC: the numbers resuming converts to integers (step, tokens_seen,
 * build.threads) must be in range, or the conversion is undefined (found by tests/fuzz). */
static iq_status check_state_numbers(const char *dir, const cJSON *ts) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(ts, "step");
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble < 9007199254740992.0) ||
        x->valuedouble != floor(x->valuedouble))
        return iq_fail(IQ_EDATA, "%s/trainer_state.json: \"step\" is not an integer >= 0", dir);
    x = cJSON_GetObjectItemCaseSensitive(ts, "tokens_seen");
    if (cJSON_IsNumber(x) && !(x->valuedouble >= 0 && x->valuedouble < 9007199254740992.0))
        return iq_fail(IQ_EDATA, "%s/trainer_state.json: \"tokens_seen\" is out of range", dir);
    x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ts, "build"), "threads");
    if (cJSON_IsNumber(x) && !(x->valuedouble >= 0 && x->valuedouble <= 1e6))
        return iq_fail(IQ_EDATA, "%s/trainer_state.json: \"build.threads\" is out of range", dir);
    return IQ_OK;
}

iq_status iq_checkpoint_verify(const char *dir, cJSON **state) {
    *state = NULL;
    if (!iq_is_dir(dir)) return iq_fail(IQ_ENOINPUT, "%s: no such checkpoint folder", dir);
    char *p = iq_path_join(dir, "trainer_state.json");
    cJSON *ts = NULL;
    iq_status s = iq_read_json(p, &ts);
    free(p);
    if (s) return s == IQ_ENOINPUT ? iq_fail(IQ_EDATA, "%s: trainer_state.json is missing", dir) : s;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(ts, "files");
    if (!cJSON_IsObject(files)) s = iq_fail(IQ_EDATA, "%s/trainer_state.json: no \"files\" checksums", dir);
    for (int i = 0; i < N_CKPT_FILES && !s; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(files, CKPT_FILES[i]);
        char *fp = iq_path_join(dir, CKPT_FILES[i]);
        uint32_t crc;
        if (!cJSON_IsNumber(c)) s = iq_fail(IQ_EDATA, "%s/trainer_state.json: no checksum for %s", dir, CKPT_FILES[i]);
        else if ((s = file_crc(fp, &crc)) != IQ_OK) s = iq_fail(IQ_EDATA, "%s: missing or unreadable", fp);
        else if ((double)crc != c->valuedouble) s = iq_fail(IQ_EDATA, "%s: CRC-32 mismatch (the file is corrupt)", fp);
        free(fp);
    }
    if (!s) s = check_state_numbers(dir, ts);
    if (s) {
        cJSON_Delete(ts);
        return s;
    }
    *state = ts;
    return IQ_OK;
}

int iq_checkpoint_list(const char *out_dir, char ***paths, long **steps) {
    *paths = NULL;
    *steps = NULL;
    DIR *d = opendir(out_dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, "checkpoint-", 11) != 0) continue;
        char *end;
        long s = strtol(nm + 11, &end, 10);
        if (end == nm + 11 || *end || s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            *paths = iq_xrealloc(*paths, (size_t)cap * sizeof **paths);
            *steps = iq_xrealloc(*steps, (size_t)cap * sizeof **steps);
        }
        (*paths)[n] = iq_path_join(out_dir, nm);
        (*steps)[n] = s;
        n++;
    }
    closedir(d);
    /* newest first */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
            long ts = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = ts;
            char *tp = (*paths)[j];
            (*paths)[j] = (*paths)[j - 1];
            (*paths)[j - 1] = tp;
        }
    return n;
}

// ----------------------------------------------------------------------------------------------------
// folder helpers

iq_status iq_remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return IQ_OK;
    if (!S_ISDIR(sb.st_mode)) return unlink(path) == 0 ? IQ_OK : iq_fail(IQ_EIO, "%s: %s", path, strerror(errno));
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char *p = iq_path_join(path, e->d_name);
            iq_remove_tree(p);
            free(p);
        }
        closedir(d);
    }
    return rmdir(path) == 0 ? IQ_OK : iq_fail(IQ_EIO, "%s: %s", path, strerror(errno));
}
