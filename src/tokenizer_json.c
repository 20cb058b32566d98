/* tokenizer_json.c — loading a Hugging Face tokenizer.json: GPT-2's (a ByteLevel pre-tokenizer) and the
 * Llama 3 / Qwen2 kind (a Sequence of a Split regex and a ByteLevel without regex, an NFC normalizer,
 * added tokens, ignore_merges, a TemplateProcessing post-processor that adds BOS, and the EOS of the
 * tokenizer_config.json beside it). Anything else the file asks for is refused by name (IQ_EDATA), so a
 * tokenizer iqtrain loads encodes as transformers does.
 *
 * Sections: helpers · refusing SentencePiece · pre-tokenizer · normalizer · post-processor ·
 * tokenizer_config.json and special_tokens_map.json · added-token flags · loading. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/tokenizer.h"
#include "tokenizer_internal.h"

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *type_of(const cJSON *o) {
    const cJSON *t = item(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static bool is_type(const cJSON *o, const char *type) {
    const char *t = type_of(o);
    return t && strcmp(t, type) == 0;
}

/* True when some object in the tree has "type": name. */
static bool has_type(const cJSON *j, const char *name) {
    if (!j) return false;
    if (cJSON_IsObject(j) && is_type(j, name)) return true;
    for (const cJSON *c = j->child; c; c = c->next)
        if (has_type(c, name)) return true;
    return false;
}

// ----------------------------------------------------------------------------------------------------
// refusing SentencePiece-style BPE

/* Llama 2, TinyLlama and Mistral v0.1: BPE over "▁"-joined text with byte_fallback (a Metaspace
 * pre-tokenizer, or a Prepend/Replace normalizer, and a ByteFallback decoder). */
static iq_status refuse_sentencepiece(const char *path, const cJSON *root) {
    const cJSON *model = item(root, "model"), *norm = item(root, "normalizer");
    const cJSON *pre = item(root, "pre_tokenizer"), *dec = item(root, "decoder");
    const char *why = NULL;
    if (cJSON_IsTrue(item(model, "byte_fallback"))) why = "model.byte_fallback is true";
    else if (has_type(pre, "Metaspace") || has_type(dec, "Metaspace")) why = "it uses the Metaspace pre-tokenizer";
    else if (has_type(norm, "Prepend") || has_type(norm, "Replace")) why = "its normalizer prepends/replaces \"▁\"";
    else if (has_type(dec, "ByteFallback")) why = "its decoder is ByteFallback";
    if (!why) return IQ_OK;
    return iq_fail(IQ_EDATA,
                   "%s: SentencePiece-style BPE is not supported (%s; this is the tokenizer of Llama 2, TinyLlama, "
                   "Mistral v0.1): iqtrain reads byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2/2.5/3)",
                   path, why);
}

// ----------------------------------------------------------------------------------------------------
// pre-tokenizer

/* GPT-2's: a ByteLevel pre-tokenizer (use_regex), or none (accepted as GPT-2's, as before). */
static iq_status read_bytelevel(const char *path, const cJSON *pre) {
    const char *pt = type_of(pre);
    if (!pt || strcmp(pt, "ByteLevel") != 0)
        return iq_fail(IQ_EDATA, "%s: pre_tokenizer %s is not supported (byte-level BPE needs ByteLevel, or a Sequence of "
                       "a Split with a known regex and a ByteLevel)", path, pt ? pt : "(without a type)");
    if (cJSON_IsTrue(item(pre, "add_prefix_space")))
        return iq_fail(IQ_EDATA, "%s: add_prefix_space=true is not supported (GPT-2 uses false)", path);
    return IQ_OK;
}

/* The Llama 3 / Qwen2 shape: Sequence [Split {Regex, Isolated, invert false}, ByteLevel {use_regex false}]. */
static iq_status read_split_sequence(const char *path, const cJSON *pre, iq_pretok_kind *kind) {
    const cJSON *list = item(pre, "pretokenizers");
    const cJSON *split = cJSON_IsArray(list) ? list->child : NULL, *bl = split ? split->next : NULL;
    if (!split || !bl || bl->next || !is_type(split, "Split") || !is_type(bl, "ByteLevel"))
        return iq_fail(IQ_EDATA, "%s: pre_tokenizer Sequence is supported only as [Split, ByteLevel]", path);
    const cJSON *regex = item(item(split, "pattern"), "Regex"), *behavior = item(split, "behavior");
    if (!cJSON_IsString(regex))
        return iq_fail(IQ_EDATA, "%s: pre_tokenizer Split without a Regex pattern is not supported", path);
    if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") != 0 || cJSON_IsTrue(item(split, "invert")))
        return iq_fail(IQ_EDATA, "%s: pre_tokenizer Split is supported only with behavior Isolated and invert false", path);
    if (!iq_pretok_from_regex(regex->valuestring, kind))
        return iq_fail(IQ_EDATA, "%s: pre_tokenizer Split regex \"%s\" is not supported (iqtrain implements GPT-2's, "
                       "Llama 3's and Qwen2's)", path, regex->valuestring);
    if (cJSON_IsTrue(item(bl, "use_regex")) || cJSON_IsTrue(item(bl, "add_prefix_space")))
        return iq_fail(IQ_EDATA, "%s: the ByteLevel after a Split must have use_regex and add_prefix_space false", path);
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// normalizer: none, NFC, or a Sequence of NFC

static iq_status read_normalizer(const char *path, const cJSON *norm, bool *nfc) {
    *nfc = false;
    if (!norm || cJSON_IsNull(norm)) return IQ_OK;
    if (is_type(norm, "NFC")) {
        *nfc = true;
        return IQ_OK;
    }
    if (is_type(norm, "Sequence")) {
        const cJSON *list = item(norm, "normalizers");
        bool ok = cJSON_IsArray(list);
        for (const cJSON *n = ok ? list->child : NULL; n; n = n->next) ok = ok && is_type(n, "NFC");
        if (ok && cJSON_GetArraySize(list) > 0) {
            *nfc = true;
            return IQ_OK;
        }
    }
    const char *nt = type_of(norm);
    return iq_fail(IQ_EDATA, "%s: normalizer %s is not supported (only NFC)", path, nt ? nt : "(without a type)");
}

// ----------------------------------------------------------------------------------------------------
// post-processor: ByteLevel (nothing added), TemplateProcessing that adds one leading special token (BOS)

static iq_status read_template(const char *path, const cJSON *pp, iq_tokenizer *t) {
    const cJSON *single = item(pp, "single");
    if (!cJSON_IsArray(single))
        return iq_fail(IQ_EDATA, "%s: post_processor TemplateProcessing has no \"single\" template", path);
    int n_lead = 0, n_seq = 0, n_trail = 0;
    const char *lead = NULL;
    for (const cJSON *e = single->child; e; e = e->next) {
        const cJSON *sp = item(e, "SpecialToken"), *sq = item(e, "Sequence");
        if (sq) {
            n_seq++;
        } else if (sp && n_seq) {
            n_trail++;
        } else if (sp && cJSON_IsString(item(sp, "id"))) {
            lead = item(sp, "id")->valuestring;
            n_lead++;
        } else {
            return iq_fail(IQ_EDATA, "%s: post_processor TemplateProcessing: an unknown template piece", path);
        }
    }
    if (n_seq != 1 || n_trail || n_lead > 1)
        return iq_fail(IQ_EDATA, "%s: post_processor TemplateProcessing adds %d leading and %d trailing special "
                       "tokens: only one leading (BOS) is supported", path, n_lead, n_trail);
    if (!lead) return IQ_OK;
    const cJSON *ids = item(item(item(pp, "special_tokens"), lead), "ids");
    int32_t id = cJSON_IsArray(ids) && cJSON_IsNumber(ids->child) ? (int32_t)ids->child->valuedouble : iq_tok_special_id(t, lead);
    if (id < 0 || id >= t->vocab_size || !(t->tok_flags[id] & IQ_TOK_DEFINED))
        return iq_fail(IQ_EDATA, "%s: post_processor: the BOS token \"%s\" is not in the vocabulary", path, lead);
    t->bos = id;
    return IQ_OK;
}

static iq_status read_post_processor(const char *path, const cJSON *pp, iq_tokenizer *t, int depth) {
    if (!pp || cJSON_IsNull(pp) || is_type(pp, "ByteLevel")) return IQ_OK;
    if (is_type(pp, "TemplateProcessing")) return read_template(path, pp, t);
    if (is_type(pp, "Sequence") && depth < 4) {
        const cJSON *list = item(pp, "processors");
        iq_status st = cJSON_IsArray(list) ? IQ_OK : iq_fail(IQ_EDATA, "%s: post_processor Sequence without processors", path);
        for (const cJSON *p = st ? NULL : list->child; p && !st; p = p->next) st = read_post_processor(path, p, t, depth + 1);
        return st;
    }
    const char *ty = type_of(pp);
    return iq_fail(IQ_EDATA, "%s: post_processor %s is not supported (ByteLevel and TemplateProcessing are)", path,
                   ty ? ty : "(without a type)");
}

// ----------------------------------------------------------------------------------------------------
// tokenizer_config.json (its eos_token) and special_tokens_map.json: their bytes, to write back

/* The id of a token given as its text: an added token's, else an ordinary token's (in byte-level form). */
static int32_t token_id_of(const iq_tokenizer *t, const char *s) {
    int32_t id = iq_tok_special_id(t, s);
    if (id >= 0) return id;
    iq_buf b = {0};
    if (!iq_tok_string_to_bytes(s, strlen(s), &b) || !iq_strmap_get(t->bytes_map, b.data, b.len, &id)) id = -1;
    iq_buf_free(&b);
    return id;
}


static iq_status read_config(const char *json_path, iq_tokenizer *t) {
    char *path = iq_path_beside(json_path, "special_tokens_map.json");
    iq_status st = iq_file_exists(path) ? iq_read_file(path, &t->raw_stm, &t->raw_stm_len) : IQ_OK;
    free(path);
    path = iq_path_beside(json_path, "tokenizer_config.json");
    if (st || !iq_file_exists(path)) goto done;
    st = iq_read_file(path, &t->raw_config, &t->raw_config_len);
    cJSON *cfg = st ? NULL : cJSON_ParseWithLength(t->raw_config, t->raw_config_len);
    if (!st && !cfg) st = iq_fail(IQ_EDATA, "%s: invalid JSON", path);
    const cJSON *eos = cfg ? item(cfg, "eos_token") : NULL;
    if (cJSON_IsObject(eos)) eos = item(eos, "content"); /* {"__type": "AddedToken", "content": ...} */
    if (!st && cJSON_IsString(eos)) {
        int32_t id = token_id_of(t, eos->valuestring);
        if (id < 0) st = iq_fail(IQ_EDATA, "%s: eos_token \"%s\" is not a token of the tokenizer", path, eos->valuestring);
        else t->eos = id;
    }
    cJSON_Delete(cfg);
done:
    free(path);
    return st;
}

// ----------------------------------------------------------------------------------------------------
// added tokens: the flags iqtrain does not implement

static iq_status check_added_flags(const char *path, const cJSON *added) {
    static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next)
        for (int k = 0; k < 3; k++)
            if (cJSON_IsTrue(item(a, flags[k])))
                return iq_fail(IQ_EDATA, "%s: added token \"%s\" has %s=true, which is not supported", path,
                               cJSON_IsString(item(a, "content")) ? item(a, "content")->valuestring : "?", flags[k]);
    return IQ_OK;
}

// ----------------------------------------------------------------------------------------------------
// loading

/* The pre-tokenizer, normalizer and model options; *hf is true for the non-GPT-2 kind. */
static iq_status read_shape(const char *path, const cJSON *root, iq_pretok_kind *kind, bool *nfc, bool *hf) {
    const cJSON *model = item(root, "model"), *pre = item(root, "pre_tokenizer");
    const cJSON *type = item(model, "type");
    *kind = IQ_PRETOK_GPT2;
    *nfc = *hf = false;
    if (!cJSON_IsObject(model)) return iq_fail(IQ_EDATA, "%s: no \"model\" object (not a tokenizer.json)", path);
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "BPE") == 0))
        return iq_fail(IQ_EDATA, "%s: model type is not BPE", path);
    iq_status st = refuse_sentencepiece(path, root);
    if (st) return st;
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const cJSON *a = item(model, affixes[k]);
        if (cJSON_IsString(a) && a->valuestring[0])
            return iq_fail(IQ_EDATA, "%s: model.%s \"%s\" is not supported", path, affixes[k], a->valuestring);
    }
    if (is_type(pre, "Sequence")) {
        st = read_split_sequence(path, pre, kind);
        *hf = true;
    } else if (cJSON_IsObject(pre)) {
        st = read_bytelevel(path, pre);
    }
    if (!st) st = read_normalizer(path, item(root, "normalizer"), nfc);
    if (*nfc) *hf = true;
    if (!st && *hf) st = check_added_flags(path, item(root, "added_tokens"));
    return st;
}

/* The merges, as "a b" strings or ["a", "b"] pairs. */
static iq_status read_merges(const char *path, const cJSON *merges, iq_tokenizer *t) {
    if (!cJSON_IsArray(merges)) return iq_fail(IQ_EDATA, "%s: model.merges is not an array", path);
    iq_buf tmp = {0};
    iq_status st = IQ_OK;
    size_t k = 0;
    for (const cJSON *m = merges->child; m && !st; m = m->next, k++) {
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ') || sp == s || !sp[1])
                st = iq_fail(IQ_EDATA, "expected two tokens separated by one space");
            else
                st = iq_tok_add_merge_strings(t, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), &tmp);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            const char *a = m->child->valuestring, *b = m->child->next->valuestring;
            st = iq_tok_add_merge_strings(t, a, strlen(a), b, strlen(b), &tmp);
        } else {
            st = iq_fail(IQ_EDATA, "a merge is neither \"a b\" nor [\"a\", \"b\"]");
        }
        if (st) iq_error_prefix("%s: merge %zu", path, k);
    }
    iq_buf_free(&tmp);
    return st;
}

iq_status iq_tok_load_json(const char *path, iq_tokenizer **out) {
    cJSON *root;
    iq_status st = iq_read_json(path, &root);
    if (st) return st;
    iq_pretok_kind kind;
    bool nfc, hf;
    st = read_shape(path, root, &kind, &nfc, &hf);
    const cJSON *model = item(root, "model");
    iq_tokenizer *t = NULL;
    if (!st) st = iq_tok_load_vocab(path, item(model, "vocab"), item(root, "added_tokens"), &t);
    if (!st) st = read_merges(path, item(model, "merges"), t);
    if (!st) {
        st = iq_tok_finish(t);
        if (st) iq_error_prefix("%s", path);
    }
    if (!st) t->ignore_merges = cJSON_IsTrue(item(model, "ignore_merges"));
    if (!st && hf) {
        t->pretok = kind;
        t->nfc = nfc;
        st = read_post_processor(path, item(root, "post_processor"), t, 0);
        if (!st) st = read_config(path, t);
        if (!st) st = iq_read_file(path, &t->raw_json, &t->raw_json_len);
    }
    cJSON_Delete(root);
    if (st) {
        iq_tok_free(t);
        return st;
    }
    *out = t;
    return IQ_OK;
}
