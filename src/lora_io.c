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
static const char *const MUST_BE_NEUTRAL[] = {"use_rslora", "use_dora", "lora_bias", "rank_pattern",
                                              "alpha_pattern", "layers_to_transform",
                                              "exclude_modules", "target_parameters", "trainable_token_indices",
                                              "layer_replication", "use_qalora", "alora_invocation_tokens",
                                              "velora_config", "monteclora_config", "use_bdlora"};

/* init_lora_weights values whose adapters go with a changed base (PEFT changes the base weights): refused. */
static const char *const BASE_CHANGING_INIT[] = {"pissa", "olora", "corda", "loftq", "lora_ga"};

/* target_modules "all-linear": every linear layer of the family but the LM head (resolved by iq_lora_load). */
#define ALL_LINEAR 0xFFFFFFFFu

/* target_modules: a list of known names into a mask (GPT-2's c_proj: both its modules); a string (a regex in
 * PEFT) gives 0 (the tensors tell), but "all-linear" every target of the family. */
static iq_status config_targets(const cJSON *tm, const char *path, unsigned *mask) {
    *mask = 0;
    if (cJSON_IsString(tm)) {
        if (strcmp(tm->valuestring, "all-linear") == 0) *mask = ALL_LINEAR;
        return IQ_OK;
    }
    if (!cJSON_IsArray(tm) || !tm->child) return iq_fail(IQ_EDATA, "%s: target_modules must be a non-empty list or a string", path);
    for (const cJSON *e = tm->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return iq_fail(IQ_EDATA, "%s: target_modules holds a non-string", path);
        unsigned found = 0;
        for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++)
            if (iq_lora_name_matches(e->valuestring, strlen(e->valuestring), t)) found |= 1u << t;
        if (!found)
            return iq_fail(IQ_EDATA, "%s: unknown target module '%s' in target_modules (known: q_proj, k_proj, v_proj, "
                                     "o_proj, gate_proj, up_proj, down_proj; c_attn, c_proj, c_fc for gpt2)", path,
                           e->valuestring);
        *mask |= found;
    }
    return IQ_OK;
}

static iq_status config_from_json(const cJSON *j, const char *path, iq_lora_opts *o, bool *fan_in_fan_out) {
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
    const cJSON *fifo = cJSON_GetObjectItemCaseSensitive(j, "fan_in_fan_out"); /* true: Conv1D layers (iq_lora_load) */
    if (fifo && !cJSON_IsBool(fifo)) return iq_fail(IQ_EDATA, "%s: fan_in_fan_out must be true or false", path);
    *fan_in_fan_out = cJSON_IsTrue(fifo);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "modules_to_save"); /* ["lm_head"]: --train-head's */
    bool head = cJSON_IsArray(ms) && cJSON_GetArraySize(ms) == 1 && cJSON_IsString(ms->child) &&
                strcmp(ms->child->valuestring, "lm_head") == 0;
    if (!head && !neutral(ms))
        return iq_fail(IQ_EDATA, "%s: modules_to_save is set: only [\"lm_head\"] (--train-head) is supported", path);
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
                        cJSON_IsNumber(d) ? (float)d->valuedouble : 0.0f, 0, head};
    return config_targets(cJSON_GetObjectItemCaseSensitive(j, "target_modules"), path, &o->targets);
}

/* iq_lora_read_config, and whether fan_in_fan_out is true. */
static iq_status read_config(const char *dir, iq_lora_opts *o, bool *fan_in_fan_out) {
    memset(o, 0, sizeof *o);
    *fan_in_fan_out = false;
    char *path = iq_path_join(dir, "adapter_config.json");
    cJSON *j = NULL;
    iq_status st = iq_file_exists(path) ? iq_read_json(path, &j)
                                        : iq_fail(IQ_ENOINPUT, "%s: not a LoRA adapter folder (no adapter_config.json)", dir);
    if (!st && !cJSON_IsObject(j)) st = iq_fail(IQ_EDATA, "%s: not a JSON object", path);
    if (!st) st = config_from_json(j, path, o, fan_in_fan_out);
    cJSON_Delete(j);
    free(path);
    return st;
}

iq_status iq_lora_read_config(const char *dir, iq_lora_opts *o) {
    bool fifo;
    return read_config(dir, o, &fifo);
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

/* A tensor name base_model.model.model.layers.N.BLOCK.MODULE.lora_X.weight (GPT-2: ...transformer.h.N....): *layer N
 * (-1 when the name has no layer index), returns the target (BLOCK.MODULE, else the first of that MODULE; -1 for a
 * module no family adapts, its name in module[]), or -2 when the name is not a LoRA A or B weight at all. */
static int parse_name(const char *name, int *layer, char *module, size_t cap) {
    *layer = -1;
    module[0] = '\0';
    const char *ab = strstr(name, ".lora_");
    if (!ab || (strcmp(ab, ".lora_A.weight") != 0 && strcmp(ab, ".lora_B.weight") != 0)) return -2;
    const char *m = ab;
    while (m > name && m[-1] != '.') m--;
    snprintf(module, cap, "%.*s", (int)(ab - m), m);
    static const char *const PRE[2] = {IQ_LORA_PEFT_PREFIX "model.layers.", IQ_LORA_PEFT_PREFIX "transformer.h."};
    for (int k = 0; k < 2; k++)
        if (strncmp(name, PRE[k], strlen(PRE[k])) == 0) {
            char *end;
            long l = strtol(name + strlen(PRE[k]), &end, 10);
            if (end != name + strlen(PRE[k]) && *end == '.' && l >= 0 && l < 1000000) *layer = (int)l;
        }
    const char *b = m > name ? m - 1 : m; /* the block: the component before the module */
    while (b > name && b[-1] != '.') b--;
    int any = -1;
    for (int t = IQ_LORA_NUM_TARGETS - 1; t >= 0; t--) {
        if (strcmp(module, iq_lora_target_name(t)) != 0) continue;
        any = t;
        if (iq_lora_name_matches(b, (size_t)(ab - b), t)) return t;
    }
    return any;
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
    bool gpt2 = (iq_lora_get_opts(lo)->targets & IQ_LORA_GPT2_TARGETS) != 0; /* the adapters' family */
    if (!((gpt2 ? IQ_LORA_GPT2_TARGETS : IQ_LORA_LLAMA_TARGETS) & (1u << target)))
        return iq_fail(IQ_EDATA, "%s: tensor %s: target module '%s' is not a module of the %s family", path, nm, module,
                       gpt2 ? "gpt2" : "Llama");
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
    bool is_a = strstr(ref->name, ".lora_A.") != NULL, is_lora = is_a || strstr(ref->name, ".lora_B.") != NULL;
    if (t->ndim == 2 && is_lora) { /* (not the trained head's copy) */
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

/* The targets against the family of cfg: all-linear resolved, a module of another family refused (65), and
 * fan_in_fan_out true only for GPT-2's Conv1D layers (PEFT sets it there itself; false is accepted too). */
static iq_status family_checks(const char *dir, const iq_model_config *cfg, bool fan_in_fan_out, bool head,
                                unsigned *targets) {
    unsigned fam = iq_lora_family_targets(cfg);
    if (*targets == ALL_LINEAR) *targets = fam;
    for (int t = 0; t < IQ_LORA_NUM_TARGETS; t++)
        if (*targets & ~fam & (1u << t))
            return iq_fail(IQ_EDATA, "%s: target module '%s' is not a module of the %s family", dir, iq_lora_target_name(t),
                           fam == IQ_LORA_GPT2_TARGETS ? "gpt2" : "Llama");
    if (head && !cfg->untied)
        return iq_fail(IQ_EDATA, "%s/adapter_config.json: modules_to_save [\"lm_head\"] on a model whose LM head is tied "
                                 "to its embedding: not supported (untied heads only)", dir);
    if (fan_in_fan_out && fam != IQ_LORA_GPT2_TARGETS)
        return iq_fail(IQ_EDATA, "%s/adapter_config.json: fan_in_fan_out is true, which is for Conv1D layers (GPT-2's); "
                                 "the %s family's are Linear", dir, iq_model_arch_name(cfg));
    return IQ_OK;
}

iq_status iq_lora_load(const char *dir, const iq_model_config *cfg, int max_rows, float dropout, iq_lora **out) {
    *out = NULL;
    iq_lora_opts o;
    bool fifo;
    iq_safetensors *st = NULL;
    iq_status s = read_config(dir, &o, &fifo);
    if (!s) s = open_tensors(dir, &st);
    unsigned from_tensors = 0;
    if (!s) s = tensor_targets(st, &from_tensors);
    if (!s && o.targets == 0) o.targets = from_tensors; /* a regex target_modules: the tensors name the targets */
    if (!s) s = family_checks(dir, cfg, fifo, o.train_head, &o.targets);
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
    bool named = o.targets && o.targets != ALL_LINEAR; /* a regex or all-linear: the tensors are checked below */
    if (!s && (o.rank != have->rank || o.alpha != have->alpha || (named && o.targets != have->targets) ||
               o.train_head != have->train_head))
        s = iq_fail(IQ_EDATA, "%s/adapter_config.json: r %d, lora_alpha %g and its targets differ from the run's adapters "
                              "(r %d, alpha %g)", dir, o.rank, (double)o.alpha, have->rank, (double)have->alpha);
    if (!s) s = open_tensors(dir, &st);
    if (!s) s = read_tensors(st, lo, n_layer);
    iq_st_close(st);
    return s;
}
