/* lora_io.c — reading a PEFT LoRA adapter folder (lora_io.h): adapter_config.json's options and the checks of
 * the keys that would change the computation, then adapter_model.safetensors's tensors against the adapters'
 * own table (iq_lora_tensor_refs), each bad tensor refused by name.
 *
 * Sections: adapter_config.json · tensor names · loading. */
#include "iqtrain/lora_io.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/safetensors.h"

// ----------------------------------------------------------------------------------------------------
// adapter_config.json

/* Whether item is absent, null, false, "", [] or {}: a key at its neutral value. */
static bool neutral(const cJSON *v) {
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return true;
    if (cJSON_IsString(v)) return v->valuestring[0] == '\0';
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child == NULL;
    return false;
}

/* The keys that change what the adapter computes, refused unless at their neutral values. */
static const char *const MUST_BE_NEUTRAL[] = {"fan_in_fan_out", "use_rslora", "use_dora", "lora_bias", "rank_pattern",
                                              "alpha_pattern", "modules_to_save", "layers_to_transform",
                                              "exclude_modules", "target_parameters", "trainable_token_indices",
                                              "layer_replication", "use_qalora", "alora_invocation_tokens",
                                              "velora_config", "monteclora_config", "use_bdlora"};

/* init_lora_weights values whose adapters go with a changed base (PEFT changes the base weights): refused. */
static const char *const BASE_CHANGING_INIT[] = {"pissa", "olora", "corda", "loftq", "lora_ga"};

/* target_modules: a list of known names into a mask; a string (a regex in PEFT) gives 0 (the tensors tell),
 * but "all-linear" every target. */
static iq_status config_targets(const cJSON *tm, const char *path, unsigned *mask) {
    *mask = 0;
    if (cJSON_IsString(tm)) {
        if (strcmp(tm->valuestring, "all-linear") == 0) *mask = (1u << IQ_LORA_NUM_TARGETS) - 1;
        return IQ_OK;
    }
    if (!cJSON_IsArray(tm) || !tm->child) return iq_fail(IQ_EDATA, "%s: target_modules must be a non-empty list or a string", path);
    for (const cJSON *e = tm->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return iq_fail(IQ_EDATA, "%s: target_modules holds a non-string", path);
        int t = 0;
        while (t < IQ_LORA_NUM_TARGETS && strcmp(e->valuestring, iq_lora_target_name(t)) != 0) t++;
        if (t == IQ_LORA_NUM_TARGETS)
            return iq_fail(IQ_EDATA, "%s: unknown target module '%s' in target_modules (known: q_proj, k_proj, v_proj, "
                                     "o_proj, gate_proj, up_proj, down_proj)", path, e->valuestring);
        *mask |= 1u << t;
    }
    return IQ_OK;
}

static iq_status config_from_json(const cJSON *j, const char *path, iq_lora_opts *o) {
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "peft_type");
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA") != 0)
        return iq_fail(IQ_EDATA, "%s: peft_type is %s, not \"LORA\"", path, cJSON_IsString(pt) ? pt->valuestring : "missing");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "r"), *a = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "lora_dropout"), *b = cJSON_GetObjectItemCaseSensitive(j, "bias");
    if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble > 65536 || r->valuedouble != (double)(int)r->valuedouble)
        return iq_fail(IQ_EDATA, "%s: r must be an integer >= 1", path);
    if (a && (!cJSON_IsNumber(a) || !(a->valuedouble > 0)))
        return iq_fail(IQ_EDATA, "%s: lora_alpha must be a number > 0", path);
    if (d && !cJSON_IsNull(d) && (!cJSON_IsNumber(d) || !(d->valuedouble >= 0 && d->valuedouble < 1)))
        return iq_fail(IQ_EDATA, "%s: lora_dropout must be in [0, 1)", path);
    if (b && !(cJSON_IsString(b) && strcmp(b->valuestring, "none") == 0))
        return iq_fail(IQ_EDATA, "%s: bias must be \"none\" (trained biases are not supported)", path);
    for (size_t i = 0; i < sizeof MUST_BE_NEUTRAL / sizeof *MUST_BE_NEUTRAL; i++)
        if (!neutral(cJSON_GetObjectItemCaseSensitive(j, MUST_BE_NEUTRAL[i])))
            return iq_fail(IQ_EDATA, "%s: %s is set: not supported (it must be null, false or empty)", path, MUST_BE_NEUTRAL[i]);
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(j, "init_lora_weights");
    for (size_t i = 0; cJSON_IsString(init) && i < sizeof BASE_CHANGING_INIT / sizeof *BASE_CHANGING_INIT; i++)
        if (strncmp(init->valuestring, BASE_CHANGING_INIT[i], strlen(BASE_CHANGING_INIT[i])) == 0)
            return iq_fail(IQ_EDATA, "%s: init_lora_weights \"%s\" goes with a base whose weights PEFT changed: not "
                                     "supported (convert it with save_pretrained(path_initial_model_for_weight_conversion=...))",
                           path, init->valuestring);
    *o = (iq_lora_opts){(int)r->valuedouble, a ? (float)a->valuedouble : IQ_LORA_DEFAULT_ALPHA,
                        cJSON_IsNumber(d) ? (float)d->valuedouble : 0.0f, 0};
    return config_targets(cJSON_GetObjectItemCaseSensitive(j, "target_modules"), path, &o->targets);
}

iq_status iq_lora_read_config(const char *dir, iq_lora_opts *o) {
    memset(o, 0, sizeof *o);
    char *path = iq_path_join(dir, "adapter_config.json");
    cJSON *j = NULL;
    iq_status st = iq_file_exists(path) ? iq_read_json(path, &j)
                                        : iq_fail(IQ_ENOINPUT, "%s: not a LoRA adapter folder (no adapter_config.json)", dir);
    if (!st && !cJSON_IsObject(j)) st = iq_fail(IQ_EDATA, "%s: not a JSON object", path);
    if (!st) st = config_from_json(j, path, o);
    cJSON_Delete(j);
    free(path);
    return st;
}

/* base_model_name_or_path, "" when absent. */
static void read_base(const char *dir, iq_lora *lo) {
    char *path = iq_path_join(dir, "adapter_config.json");
    cJSON *j = NULL;
    if (iq_read_json(path, &j) == IQ_OK) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "base_model_name_or_path");
        iq_lora_set_base(lo, cJSON_IsString(b) ? b->valuestring : "");
    }
    cJSON_Delete(j);
    free(path);
}

// ----------------------------------------------------------------------------------------------------
// tensor names

/* A tensor name base_model.model.model.layers.N.BLOCK.MODULE.lora_X.weight: *layer N (-1 when the name has no
 * layer index), returns the target (-1 for a module this family does not adapt, its name in module[]), or -2 when
 * the name is not a LoRA A or B weight at all. */
static int parse_name(const char *name, int *layer, char *module, size_t cap) {
    *layer = -1;
    module[0] = '\0';
    const char *pre = IQ_LORA_PEFT_PREFIX "model.layers.";
    const char *ab = strstr(name, ".lora_");
    if (!ab || (strcmp(ab, ".lora_A.weight") != 0 && strcmp(ab, ".lora_B.weight") != 0)) return -2;
    const char *m = ab;
    while (m > name && m[-1] != '.') m--;
    snprintf(module, cap, "%.*s", (int)(ab - m), m);
    if (strncmp(name, pre, strlen(pre)) == 0) {
        char *end;
        long l = strtol(name + strlen(pre), &end, 10);
        if (end != name + strlen(pre) && *end == '.' && l >= 0 && l < 1000000) *layer = (int)l;
    }
    for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++)
        if (strcmp(module, iq_lora_target_name(t)) == 0) return t;
    return -1;
}

/* The targets the tensors of st adapt (for a regex target_modules); 65 naming an unknown module. */
static iq_status tensor_targets(const iq_safetensors *st, unsigned *mask) {
    *mask = 0;
    for (int i = 0; i < iq_st_count(st); i++) {
        const char *nm = iq_st_tensor_at(st, i)->name;
        char module[64];
        int layer, t = parse_name(nm, &layer, module, sizeof module);
        if (t == -1) return iq_fail(IQ_EDATA, "%s: tensor %s: unknown target module '%s'", iq_st_path(st), nm, module);
        if (t >= 0) *mask |= 1u << t;
    }
    if (!*mask) return iq_fail(IQ_EDATA, "%s: no LoRA tensors", iq_st_path(st));
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// loading

/* Why tensor t of st is not one of the adapters' (refs): the most specific reason, as a 65. */
static iq_status refuse_tensor(const iq_safetensors *st, const iq_st_tensor *t, const iq_lora *lo, int n_layer) {
    const char *path = iq_st_path(st), *nm = t->name;
    char module[64];
    int layer, target = parse_name(nm, &layer, module, sizeof module);
    if (target == -2) return iq_fail(IQ_EDATA, "%s: extra tensor %s (not a LoRA A or B weight)", path, nm);
    if (target == -1) return iq_fail(IQ_EDATA, "%s: tensor %s: unknown target module '%s'", path, nm, module);
    if (layer >= n_layer)
        return iq_fail(IQ_EDATA, "%s: tensor %s: layer %d is beyond the model (%d layers)", path, nm, layer, n_layer);
    if (!iq_lora_has(lo, target))
        return iq_fail(IQ_EDATA, "%s: tensor %s adapts %s, which is not in adapter_config.json's target_modules", path, nm,
                       module);
    return iq_fail(IQ_EDATA, "%s: extra tensor %s (not a name PEFT gives this model's modules)", path, nm);
}

/* Checks t's shape against ref (rank from the config) and reads it into dst. */
static iq_status read_tensor(const iq_safetensors *st, const iq_st_tensor *t, const iq_tensor_ref *ref, int rank, float *dst) {
    const char *path = iq_st_path(st);
    bool is_a = strstr(ref->name, ".lora_A.") != NULL;
    if (t->ndim == 2) {
        int64_t tr = is_a ? t->shape[0] : t->shape[1];
        if (tr != rank)
            return iq_fail(IQ_EDATA, "%s: tensor %s has rank %lld but adapter_config.json says r = %d (rank mismatch)", path,
                           t->name, (long long)tr, rank);
    }
    if (t->ndim != 2 || t->shape[0] != ref->shape[0] || t->shape[1] != ref->shape[1])
        return iq_fail(IQ_EDATA, "%s: tensor %s has the wrong shape (%d dims: %lld x %lld), the model wants %lld x %lld",
                       path, t->name, t->ndim, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0),
                       (long long)ref->shape[0], (long long)ref->shape[1]);
    return iq_st_read_f32(st, t, dst);
}

/* Every tensor of st into lo: each one of the adapters' table exactly once, nothing else. */
static iq_status read_tensors(const iq_safetensors *st, iq_lora *lo, int n_layer) {
    int n = iq_lora_tensor_refs(lo, NULL);
    iq_tensor_ref *refs = iq_xcalloc((size_t)n, sizeof *refs);
    bool *seen = iq_xcalloc((size_t)n, sizeof *seen);
    iq_lora_tensor_refs(lo, refs);
    size_t np;
    float *P = iq_lora_params(lo, &np);
    const size_t plen = strlen(IQ_LORA_PEFT_PREFIX);
    iq_status s = IQ_OK;
    for (int i = 0; i < iq_st_count(st) && !s; i++) {
        const iq_st_tensor *t = iq_st_tensor_at(st, i);
        int k = -1;
        if (strncmp(t->name, IQ_LORA_PEFT_PREFIX, plen) == 0)
            for (int j = 0; j < n && k < 0; j++)
                if (strcmp(t->name + plen, refs[j].name) == 0) k = j;
        if (k < 0) s = refuse_tensor(st, t, lo, n_layer);
        else s = read_tensor(st, t, &refs[k], iq_lora_get_opts(lo)->rank, P + refs[k].offset), seen[k] = true;
    }
    for (int j = 0; j < n && !s; j++)
        if (!seen[j]) s = iq_fail(IQ_EDATA, "%s: missing tensor %s%s", iq_st_path(st), IQ_LORA_PEFT_PREFIX, refs[j].name);
    free(seen), free(refs);
    return s;
}

/* DIR/adapter_model.safetensors, opened; 65 naming the pickle when only adapter_model.bin is there. */
static iq_status open_tensors(const char *dir, iq_safetensors **st) {
    *st = NULL;
    char *path = iq_path_join(dir, "adapter_model.safetensors"), *bin = iq_path_join(dir, "adapter_model.bin");
    iq_status s = iq_file_exists(path) ? iq_st_open(path, st)
                                       : iq_fail(IQ_EDATA, "%s: missing%s", path, iq_file_exists(bin) ? " (adapter_model.bin, a "
                                                 "pickle, is not read: save with safe_serialization=True)" : "");
    free(path), free(bin);
    return s;
}

iq_status iq_lora_load(const char *dir, const iq_model_config *cfg, int max_rows, float dropout, iq_lora **out) {
    *out = NULL;
    iq_lora_opts o;
    iq_safetensors *st = NULL;
    iq_status s = iq_lora_read_config(dir, &o);
    if (!s) s = open_tensors(dir, &st);
    unsigned from_tensors = 0;
    if (!s) s = tensor_targets(st, &from_tensors);
    if (!s && o.targets == 0) o.targets = from_tensors; /* a regex target_modules: the tensors name the targets */
    o.dropout = dropout;
    iq_lora *lo = NULL;
    if (!s) s = iq_lora_create(cfg, &o, max_rows > 0 ? max_rows : 1, 0, &lo);
    if (!s) s = read_tensors(st, lo, cfg->n_layer);
    if (!s) read_base(dir, lo);
    if (s) iq_lora_free(lo);
    else *out = lo;
    iq_st_close(st);
    return s;
}

iq_status iq_lora_load_into(iq_lora *lo, const char *dir, int n_layer) {
    iq_lora_opts o;
    iq_safetensors *st = NULL;
    iq_status s = iq_lora_read_config(dir, &o);
    const iq_lora_opts *have = iq_lora_get_opts(lo);
    if (!s && (o.rank != have->rank || o.alpha != have->alpha || (o.targets && o.targets != have->targets)))
        s = iq_fail(IQ_EDATA, "%s/adapter_config.json: r %d, lora_alpha %g and its targets differ from the run's adapters "
                              "(r %d, alpha %g)", dir, o.rank, (double)o.alpha, have->rank, (double)have->alpha);
    if (!s) s = open_tensors(dir, &st);
    if (!s) s = read_tensors(st, lo, n_layer);
    iq_st_close(st);
    return s;
}
