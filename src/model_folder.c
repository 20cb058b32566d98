/* model_folder.c — Hugging Face model folders: config.json by family, the weights checked against the family's
 * parameter table before anything is allocated, and the files' CRC-32s that checkpoints record.
 *
 * Sections: config.json · checking and reading weights · loading · saving · CRC-32s. */
#include "iqtrain/model_folder.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "iqtrain/log.h"
#include "iqtrain/lora_merge.h"
#include "iqtrain/matmul.h"
#include "model_arch.h"

// ----------------------------------------------------------------------------------------------------
// config.json

/* The family named by config.json's model_type (absent: gpt2, as HF GPT-2 folders of old may omit it). */
static const iq_arch *folder_family(const cJSON *j, const char *path, iq_status *st) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (!x) return &iq_arch_gpt2;
    const iq_arch *a = cJSON_IsString(x) ? iq_arch_find(x->valuestring) : NULL;
    if (a) return a;
    *st = iq_fail(IQ_EDATA, "%s: unsupported model_type %.60s (iqtrain reads: %s)", path,
                  cJSON_IsString(x) ? x->valuestring : "(not a string)", iq_arch_names());
    return NULL;
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
    iq_model_config c;
    memset(&c, 0, sizeof c);
    const iq_arch *a = NULL;
    if (!cJSON_IsObject(j)) st = iq_fail(IQ_EDATA, "%s: not a JSON object", path);
    else a = folder_family(j, path, &st);
    if (a) {
        snprintf(c.arch, sizeof c.arch, "%s", a->name);
        st = a->config_from_json(j, path, &c);
    }
    if (!st && iq_model_config_check(&c)) {
        iq_error_prefix("%s", path);
        st = IQ_EDATA;
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

static cJSON *config_json(const iq_model *m, int32_t bos, int32_t eos, const cJSON *iqtrain_section) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model_type", m->arch->name);
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(m->arch->hf_class));
    m->arch->config_to_json(&m->cfg, j);
    cJSON_AddBoolToObject(j, "use_cache", 1);
    if (bos >= 0) cJSON_AddNumberToObject(j, "bos_token_id", bos);
    if (eos >= 0) cJSON_AddNumberToObject(j, "eos_token_id", eos);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    if (iqtrain_section) cJSON_AddItemToObject(j, "iqtrain", cJSON_Duplicate(iqtrain_section, 1));
    return j;
}

// ----------------------------------------------------------------------------------------------------
// checking and reading weights


/* HF's causal-mask buffers: h.{i}.attn.bias and h.{i}.attn.masked_bias */
static bool g_allow_extra = false;
void iq_model_folder_allow_extra_tensors(bool allow) { g_allow_extra = allow; }

static const char *g_adapter; /* iq_model_folder_set_adapter */
void iq_model_folder_set_adapter(const char *dir) { g_adapter = dir; }

/* How much of a (possibly hostile) tensor or file name goes into a message. */
#define NAME_SHOW 120

/* A tensor of the family's table and where it was found. */
typedef struct {
    iq_tensor_ref ref;
    int file;
    const iq_st_tensor *t;
} wanted_tensor;

/* "[2, 3]" into buf */
static const char *dims_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* Finds w->ref.name, bare or with the family's prefix, across the files. A second copy is refused: which
 * one would be loaded would depend on the order of the files and of the header. */
static iq_status find_wanted(iq_safetensors *const *files, int nf, const char *src, const char *prefix, wanted_tensor *w) {
    char pre[96];
    snprintf(pre, sizeof pre, "%s%s", prefix ? prefix : "", w->ref.name);
    const char *names[2] = {w->ref.name, pre};
    w->t = NULL;
    for (int f = 0; f < nf; f++)
        for (int k = 0; k < (prefix ? 2 : 1); k++) {
            const iq_st_tensor *t = iq_st_find(files[f], names[k]);
            if (!t) continue;
            if (w->t)
                return iq_fail(IQ_EDATA, "%s: tensor %s is stored twice: as %s in %s and as %s in %s", src, w->ref.name,
                               w->t->name, iq_st_path(files[w->file]), t->name, iq_st_path(files[f]));
            w->t = t;
            w->file = f;
        }
    return IQ_OK;
}

/* Checks the files against the config before the model is allocated: every wanted tensor once, with its
 * shape and a float dtype; everything else a known buffer, an lm_head.weight of the tied embedding's shape
 * (its values are compared after loading), or an extra tensor allowed by --allow-extra-tensors. src names
 * the folder's weights in messages (model.safetensors or the shard index). */
static iq_status check_weights(const iq_arch *a, iq_safetensors *const *files, int nf, const char *src, wanted_tensor *w,
                               int n) {
    size_t np = a->hf_prefix ? strlen(a->hf_prefix) : 0;
    char sh[160], want[64];
    for (int i = 0; i < n; i++) {
        iq_status s = find_wanted(files, nf, src, a->hf_prefix, &w[i]);
        if (s) return s;
        const iq_st_tensor *t = w[i].t;
        if (!t) return iq_fail(IQ_EDATA, "%s: tensor %s is missing", src, w[i].ref.name);
        const char *path = iq_st_path(files[w[i].file]);
        if (t->ndim != w[i].ref.ndim || t->shape[0] != w[i].ref.shape[0] || (w[i].ref.ndim == 2 && t->shape[1] != w[i].ref.shape[1]))
            return iq_fail(IQ_EDATA, "%s: tensor %s has shape %s, expected %s (config.json)", path, t->name,
                           dims_str(t->ndim, t->shape, sh, sizeof sh), dims_str(w[i].ref.ndim, w[i].ref.shape, want, sizeof want));
        if (t->dtype != IQ_DT_F32 && t->dtype != IQ_DT_F16 && t->dtype != IQ_DT_BF16)
            return iq_fail(IQ_EDATA, "%s: tensor %s has dtype %s (F32, F16 or BF16 expected)", path, t->name,
                           iq_dtype_name(t->dtype));
    }
    iq_strmap *known = iq_strmap_new((size_t)n);
    for (int i = 0; i < n; i++) iq_strmap_put(known, w[i].ref.name, strlen(w[i].ref.name), i);
    iq_status s = IQ_OK;
    for (int f = 0; f < nf && !s; f++)
        for (int k = 0; k < iq_st_count(files[f]) && !s; k++) {
            const iq_st_tensor *t = iq_st_tensor_at(files[f], k);
            const char *nm = t->name, *path = iq_st_path(files[f]);
            const char *bare = np && strncmp(nm, a->hf_prefix, np) == 0 ? nm + np : nm;
            int32_t idx;
            if (iq_strmap_get(known, bare, strlen(bare), &idx) || (a->hf_buffer && a->hf_buffer(bare))) continue;
            if (strcmp(nm, "lm_head.weight") == 0) {
                if (t->ndim != 2 || t->shape[0] != w[0].ref.shape[0] || t->shape[1] != w[0].ref.shape[1])
                    s = iq_fail(IQ_EDATA, "%s: lm_head.weight has shape %s, not %s's %s (config.json ties the head to the embedding)",
                                path, dims_str(t->ndim, t->shape, sh, sizeof sh), w[0].ref.name,
                                dims_str(2, w[0].ref.shape, want, sizeof want));
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

/* Reads the checked tensors into the model (whose table they were checked against), then, for a tied head,
 * compares every stored lm_head.weight with the embedding (the first tensor). */
static iq_status read_weights(iq_model *m, iq_safetensors *const *files, int nf, const wanted_tensor *w, int n) {
    size_t np, nh, widest = 0;
    float *P = iq_model_param_memory(m, &np), *wide = NULL;
    uint16_t *H = iq_model_param_bf16(m, &nh);
    iq_tensor_ref *mr = iq_xmalloc((size_t)n * sizeof *mr); /* the model's offsets (a bf16 base splits the arena) */
    iq_model_tensor_refs(m, mr);
    for (int i = 0; i < n; i++)
        if (iq_model_tensor_bf16(m, i) && mr[i].numel > widest) widest = mr[i].numel;
    if (widest) wide = iq_xmalloc(widest * sizeof *wide);
    iq_status s = IQ_OK;
    for (int i = 0; i < n && !s; i++) {
        if (!iq_model_tensor_bf16(m, i)) {
            s = iq_st_read_f32(files[w[i].file], w[i].t, P + mr[i].offset);
            continue;
        }
        s = iq_st_read_f32(files[w[i].file], w[i].t, wide); /* a bf16 base: rounded (BF16 files exactly) */
        for (size_t k = 0; !s && k < mr[i].numel; k++) H[mr[i].offset + k] = iq_f32_to_bf16(wide[k]);
    }
    free(wide);
    const iq_tensor_ref *head = &mr[0];
    bool untied = strcmp(w[n - 1].ref.name, "lm_head.weight") == 0; /* the family's own head tensor: read above */
    for (int f = 0; f < nf && !s && !untied; f++) {
        const iq_st_tensor *t = iq_st_find(files[f], "lm_head.weight");
        if (!t) continue;
        size_t vc = head->numel;
        float *tmp = iq_xmalloc(vc * sizeof *tmp);
        s = iq_st_read_f32(files[f], t, tmp);
        if (!s && memcmp(tmp, P + head->offset, vc * sizeof *tmp) != 0)
            s = iq_fail(IQ_EDATA, "%s: lm_head.weight differs from %s (config.json ties the head to the embedding)",
                        iq_st_path(files[f]), head->name);
        free(tmp);
    }
    free(mr);
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

/* The weight files of a folder, opened and checked against a config's parameter table. */
typedef struct {
    iq_safetensors **files;
    int nf, n;
    char *src;
    wanted_tensor *w;
} folder_weights;

static void weights_close(folder_weights *fw) {
    for (int f = 0; f < fw->nf; f++) iq_st_close(fw->files[f]);
    free(fw->files);
    free(fw->src);
    free(fw->w);
    memset(fw, 0, sizeof *fw);
}

/* Opens the weights of DIR and checks every tensor against cfg's table (before anything that size is
 * allocated). */
static iq_status weights_open(const char *dir, const iq_model_config *cfg, folder_weights *fw) {
    memset(fw, 0, sizeof *fw);
    fw->n = iq_model_config_tensors(cfg, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)fw->n * sizeof *refs);
    iq_model_config_tensors(cfg, refs);
    fw->w = iq_xcalloc((size_t)fw->n, sizeof *fw->w);
    for (int i = 0; i < fw->n; i++) fw->w[i].ref = refs[i];
    free(refs);
    iq_status s = open_weight_files(dir, &fw->files, &fw->nf, &fw->src);
    if (!s) s = check_weights(iq_arch_find(iq_model_arch_name(cfg)), fw->files, fw->nf, fw->src, fw->w, fw->n);
    if (s) weights_close(fw);
    return s;
}

/* Reads checked weights into m (whose config they were checked against) and closes them. */
static iq_status weights_read(folder_weights *fw, iq_model *m) {
    iq_status s = read_weights(m, fw->files, fw->nf, fw->w, fw->n);
    if (!s) iq_matmul_params_changed(); /* bf16 copies of the old weights are stale */
    weights_close(fw);
    return s;
}

// ----------------------------------------------------------------------------------------------------
// loading

/* A checkpoint folder (one with a trainer_state.json) is verified against its CRC-32s before use. */
static iq_status verify_if_checkpoint(const char *dir) {
    char *p = iq_path_join(dir, "trainer_state.json");
    iq_status s = IQ_OK;
    if (iq_file_exists(p)) {
        cJSON *ts = NULL;
        s = iq_read_json(p, &ts);
        const cJSON *files = s ? NULL : cJSON_GetObjectItemCaseSensitive(ts, "files");
        if (!s && !cJSON_IsObject(files)) s = iq_fail(IQ_EDATA, "%s: no \"files\" checksums", p);
        if (!s) s = iq_folder_verify_crcs(dir, files, "optimizer.safetensors");
        cJSON_Delete(ts);
    }
    free(p);
    return s;
}

iq_status iq_model_load_folder(const char *dir, iq_model_mode mode, int max_batch, int max_seq, iq_model **out,
                               cJSON **iqtrain_section) {
    *out = NULL;
    if (iqtrain_section) *iqtrain_section = NULL;
    if (!iq_is_dir(dir)) return iq_fail(IQ_ENOINPUT, "%s: not a model folder (no such directory)", dir);
    iq_status s = verify_if_checkpoint(dir);
    iq_model_config c;
    cJSON *section = NULL;
    if (!s) s = iq_model_config_read(dir, &c, &section);
    folder_weights fw;
    if (!s) s = weights_open(dir, &c, &fw); /* before the model (sized by config.json) is allocated */
    iq_model *m = NULL;
    if (!s) {
        s = iq_model_create(&c, mode, max_batch, max_seq > 0 ? max_seq : c.ctx, &m);
        if (s) weights_close(&fw);
        else s = weights_read(&fw, m);
    }
    if (!s && g_adapter) s = iq_lora_merge_folder(m, g_adapter); /* --adapter DIR: merged in memory */
    if (s) {
        iq_model_free(m);
        cJSON_Delete(section);
        return s;
    }
    if (iqtrain_section) *iqtrain_section = section;
    else cJSON_Delete(section);
    *out = m;
    return IQ_OK;
}

iq_status iq_model_load_weights(iq_model *m, const char *dir) {
    iq_model_config c;
    iq_status s = iq_model_config_read(dir, &c, NULL);
    if (s) return s;
    const char *field = iq_model_config_diff(&c, iq_model_cfg(m));
    if (field) {
        char have[192], want[192];
        iq_model_config_describe(&c, have, sizeof have);
        iq_model_config_describe(iq_model_cfg(m), want, sizeof want);
        return iq_fail(IQ_EUSAGE, "%s: the folder's model differs in %s (%s) from the one the options build (%s)", dir,
                       field, have, want);
    }
    folder_weights fw;
    s = weights_open(dir, &c, &fw);
    return s ? s : weights_read(&fw, m);
}

// ----------------------------------------------------------------------------------------------------
// saving

/* A bf16 base: its matrices stored as BF16 (their values, exactly), the other tensors as F32. */
static iq_status save_weights_bf16_base(iq_model *m, const char *path) {
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_st_raw_entry *e = iq_xcalloc((size_t)n, sizeof *e);
    iq_model_tensor_refs(m, refs);
    size_t np, nh;
    float *P = iq_model_param_memory(m, &np);
    uint16_t *H = iq_model_param_bf16(m, &nh);
    for (int i = 0; i < n; i++) {
        bool half = iq_model_tensor_bf16(m, i);
        e[i].name = refs[i].name;
        e[i].dtype = half ? IQ_DT_BF16 : IQ_DT_F32;
        e[i].ndim = refs[i].ndim;
        e[i].shape[0] = refs[i].shape[0];
        e[i].shape[1] = refs[i].shape[1];
        e[i].bytes = half ? (const void *)(H + refs[i].offset) : (const void *)(P + refs[i].offset); /* little-endian host */
    }
    const char *meta[2] = {"format", "pt"};
    iq_status s = iq_st_write_raw(path, e, n, meta, 1);
    free(e);
    free(refs);
    return s;
}

static iq_status save_weights(iq_model *m, const char *path, iq_dtype dtype) {
    if (iq_model_param_bf16(m, &(size_t){0})) return save_weights_bf16_base(m, path);
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
    /* the tokenizer's ids: its end of text, and its BOS (GPT-2's files have none: end of text doubles as BOS) */
    int32_t eos = tok ? iq_tok_eos(tok) : -1, bos = tok && iq_tok_bos(tok) >= 0 ? iq_tok_bos(tok) : eos;
    cJSON *cfg = config_json(m, bos, eos, iqtrain_section);
    if (dtype == IQ_DT_BF16) cJSON_ReplaceItemInObject(cfg, "torch_dtype", cJSON_CreateString("bfloat16"));
    if (dtype == IQ_DT_F16) cJSON_ReplaceItemInObject(cfg, "torch_dtype", cJSON_CreateString("float16"));
    char *p = iq_path_join(dir, "config.json");
    iq_status s = iq_write_json(p, cfg);
    free(p);
    cJSON_Delete(cfg);
    if (!s) {
        cJSON *g = cJSON_CreateObject();
        if (bos >= 0) cJSON_AddNumberToObject(g, "bos_token_id", bos);
        int32_t eot = tok ? iq_tok_end_of_turn(tok) : -1;
        if (eos >= 0 && eot >= 0 && eot != eos) { /* transformers' generate stops at either, as iqtrain's does */
            int32_t both[2] = {eos, eot};
            cJSON_AddItemToObject(g, "eos_token_id", cJSON_CreateIntArray(both, 2));
        } else if (eos >= 0) {
            cJSON_AddNumberToObject(g, "eos_token_id", eos);
        }
        cJSON_AddNumberToObject(g, "max_length", c->ctx);
        p = iq_path_join(dir, "generation_config.json");
        s = iq_write_json(p, g);
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
// CRC-32s

static const char *const CRC_FILES[] = {"config.json", "generation_config.json", "model.safetensors", "optimizer.safetensors",
                                        "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                        "special_tokens_map.json"};

const char *const *iq_folder_crc_files(int *n) {
    *n = (int)(sizeof CRC_FILES / sizeof *CRC_FILES);
    return CRC_FILES;
}

iq_status iq_file_crc32(const char *path, uint32_t *crc) {
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

iq_status iq_folder_verify_crcs(const char *dir, const cJSON *files, const char *skip) {
    iq_status s = IQ_OK;
    for (const cJSON *c = files ? files->child : NULL; c && !s; c = c->next) {
        if (skip && strcmp(c->string, skip) == 0) continue;
        if (c->string[0] == '.' || c->string[0] == '/' || strstr(c->string, "..") || strstr(c->string, "//") ||
            (strchr(c->string, '/') && strncmp(c->string, "adapter/", 8) != 0)) /* only LoRA's adapter/ below */
            return iq_fail(IQ_EDATA, "%s/trainer_state.json: invalid file name in \"files\"", dir);
        char *fp = iq_path_join(dir, c->string);
        uint32_t crc;
        if (!cJSON_IsNumber(c)) s = iq_fail(IQ_EDATA, "%s/trainer_state.json: the checksum of %s is not a number", dir, c->string);
        else if (iq_file_crc32(fp, &crc) != IQ_OK) s = iq_fail(IQ_EDATA, "%s: missing or unreadable", fp);
        else if ((double)crc != c->valuedouble) s = iq_fail(IQ_EDATA, "%s: CRC-32 mismatch (the file is corrupt)", fp);
        free(fp);
    }
    return s;
}
