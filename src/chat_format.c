/* chat_format.c — `messages` rows through a model's chat template: find the template, render a row,
 * tokenize the rendering, supervise the assistant turns (chat_format.h). */
#include "iqtrain/chat_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include "iqtrain/chat_template.h"
#include "iqtrain/sha256.h"
#include "iqtrain/unicode.h"

/* strftime_now's "now": 2024-07-26 00:00:00 UTC (chat_format.h says why). */
#define CHAT_FIXED_NOW 1721952000

struct iq_chat_format {
    iq_chat_template *tpl;
    char *source;     /* the file the template text came from */
    char *text;       /* the template */
    char *bos, *eos;  /* tokenizer_config.json's bos_token and eos_token, or NULL */
    char sha256[65];  /* of the template text */
};

// ----------------------------------------------------------------------------------------------------
// loading

/* A special token entry of tokenizer_config.json: a string, or {"content": ...}; NULL otherwise. */
static char *token_text(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? iq_xstrdup(v->valuestring) : NULL;
}

/* The template of a JSON config: "chat_template" as a string, or the "default" of a list of
 * {name, template}. NULL (no error) when there is none. */
static iq_status config_template(const char *path, const cJSON *cfg, char **text) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    *text = NULL;
    if (!ct || cJSON_IsNull(ct)) return IQ_OK;
    if (cJSON_IsString(ct)) {
        *text = iq_xstrdup(ct->valuestring);
        return IQ_OK;
    }
    if (cJSON_IsArray(ct)) {
        for (const cJSON *e = ct->child; e; e = e->next) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(name) && strcmp(name->valuestring, "default") == 0 && cJSON_IsString(tmpl)) {
                *text = iq_xstrdup(tmpl->valuestring);
                return IQ_OK;
            }
        }
        return iq_fail(IQ_EDATA, "%s: chat_template is a list without a \"default\" template", path);
    }
    return iq_fail(IQ_EDATA, "%s: chat_template is neither a string nor a list of named templates", path);
}

/* Reads a file whose bytes are a template: a Jinja file, or JSON with a chat_template. */
static iq_status read_template_file(const char *path, char **text) {
    char *bytes = NULL;
    size_t len = 0;
    iq_status st = iq_read_file(path, &bytes, &len);
    if (st) return st;
    cJSON *j = cJSON_ParseWithLength(bytes, len);
    if (cJSON_IsObject(j)) {
        st = config_template(path, j, text);
        if (!st && !*text) st = iq_fail(IQ_EDATA, "%s: a JSON object without a chat_template", path);
        free(bytes);
    } else {
        *text = bytes;
    }
    cJSON_Delete(j);
    return st;
}

/* tokenizer_config.json beside the tokenizer: its bos/eos texts and template (any of them may be absent). */
static iq_status read_tokenizer_config(const char *tok_source, iq_chat_format *f, char **text, char **from) {
    char *path = iq_path_beside(tok_source, "tokenizer_config.json");
    iq_status st = IQ_OK;
    if (iq_file_exists(path)) {
        char *bytes = NULL;
        size_t len = 0;
        st = iq_read_file(path, &bytes, &len);
        cJSON *cfg = st ? NULL : cJSON_ParseWithLength(bytes, len);
        if (!st && !cJSON_IsObject(cfg)) st = iq_fail(IQ_EDATA, "%s: not a JSON object", path);
        if (!st) {
            f->bos = token_text(cfg, "bos_token");
            f->eos = token_text(cfg, "eos_token");
            st = config_template(path, cfg, text);
        }
        cJSON_Delete(cfg);
        free(bytes);
    }
    if (!st && *text) *from = path;
    else free(path);
    return st;
}

iq_status iq_chat_format_load(const iq_tokenizer *tok, const char *template_path, iq_chat_format **out) {
    *out = NULL;
    iq_chat_format *f = iq_xcalloc(1, sizeof *f);
    char *text = NULL, *from = NULL;
    const char *src = iq_tok_source(tok);
    bool on_disk = iq_file_exists(src); /* not a tokenizer trained in memory */
    iq_status st = on_disk ? read_tokenizer_config(src, f, &text, &from) : IQ_OK;
    char *jinja = iq_path_beside(src, "chat_template.jinja");
    const char *file = template_path ? template_path : on_disk && iq_file_exists(jinja) ? jinja : NULL;
    if (!st && file) {
        free(text);
        free(from);
        text = NULL;
        from = iq_xstrdup(file);
        st = read_template_file(file, &text);
    }
    free(jinja);
    if (!st && text && strcmp(text, IQ_CHAT_TEMPLATE) != 0) {
        st = iq_chat_template_parse(text, strlen(text), from, &f->tpl);
        uint8_t h[32];
        iq_sha256 s;
        iq_sha256_init(&s);
        iq_sha256_update(&s, text, strlen(text));
        iq_sha256_final(&s, h);
        for (int i = 0; i < 32; i++) snprintf(f->sha256 + 2 * i, 3, "%02x", h[i]);
    }
    f->text = text;
    f->source = from;
    if (st || !f->tpl) iq_chat_format_free(f);
    else *out = f;
    return st;
}

void iq_chat_format_free(iq_chat_format *f) {
    if (!f) return;
    iq_chat_template_free(f->tpl);
    free(f->source);
    free(f->text);
    free(f->bos);
    free(f->eos);
    free(f);
}

const char *iq_chat_format_source(const iq_chat_format *f) { return f->source; }
const char *iq_chat_format_sha256(const iq_chat_format *f) { return f->sha256; }
const char *iq_chat_format_text(const iq_chat_format *f) { return f->text; }

// ----------------------------------------------------------------------------------------------------
// one row

/* Refuses a message string holding a special token's text; NFC-normalizes contents for NFC tokenizers.
 * Returns the messages to render (`msgs`, or a normalized copy in *copy). */
static const cJSON *prepare_messages(const iq_tokenizer *tok, const cJSON *msgs, cJSON **copy, iq_buf *reason) {
    *copy = NULL;
    int k = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, k++) {
        for (const cJSON *v = m->child; v; v = v->next) {
            if (!cJSON_IsString(v)) continue;
            size_t at;
            int32_t id = iq_tok_find_special(tok, v->valuestring, strlen(v->valuestring), &at);
            if (id < 0) continue;
            size_t tl;
            const uint8_t *tb = iq_tok_token_bytes(tok, id, &tl);
            iq_buf_printf(reason, "\"%s\" of message %d holds the special token text \"%.*s\" at byte %zu (the "
                          "template's rendering would encode it as that token)", v->string, k, (int)tl,
                          (const char *)tb, at);
            return NULL;
        }
    }
    if (!iq_tok_nfc(tok)) return msgs;
    for (const cJSON *m = msgs->child; m; m = m->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(c) || iq_nfc_quick_check((const uint8_t *)c->valuestring, strlen(c->valuestring))) continue;
        if (!*copy) *copy = cJSON_Duplicate(msgs, 1);
    }
    if (!*copy) return msgs;
    for (cJSON *m = (*copy)->child; m; m = m->next) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(c)) continue;
        iq_buf n = {0};
        iq_nfc((const uint8_t *)c->valuestring, strlen(c->valuestring), &n);
        iq_buf_putc(&n, 0);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(n.data)); /* keeps key and place */
        iq_buf_free(&n);
    }
    return *copy;
}

static bool is_special(const iq_tokenizer *tok, int32_t id) {
    size_t tl, at;
    const uint8_t *tb = iq_tok_token_bytes(tok, id, &tl);
    return tb && iq_tok_find_special(tok, tb, tl, &at) == id && at == 0;
}

/* Flags the tokens of each assistant span and the end-of-turn token after it. off[i] is token i's first
 * byte in the rendering (off[n] its length). */
static iq_row_result supervise(const iq_tokenizer *tok, const iq_chat_render *r, const int32_t *ids,
                               const size_t *off, size_t n, uint8_t *fl, iq_buf *reason) {
    size_t i = 0;
    for (size_t s = 0; s < r->n_spans; s++) {
        const iq_chat_span *sp = &r->spans[s];
        while (i < n && off[i + 1] <= sp->start) i++; /* context before the content */
        for (; i < n && off[i] < sp->end; i++)
            if (sp->end > sp->start) fl[i] |= IQ_TOK_SUPERVISED; /* an empty content supervises no token */
        if (i == n || !is_special(tok, ids[i])) {
            size_t tl = 0;
            const uint8_t *tb = i < n ? iq_tok_token_bytes(tok, ids[i], &tl) : NULL;
            iq_buf_printf(reason, "the template follows assistant message %zu with %s%.*s%s, not a special "
                          "end-of-turn token", sp->message, tb ? "\"" : "the end of the text", (int)tl,
                          tb ? (const char *)tb : "", tb ? "\"" : "");
            return IQ_ROW_BAD;
        }
        fl[i] |= IQ_TOK_SUPERVISED | IQ_TOK_TERMINAL;
        i++;
    }
    return IQ_ROW_OK;
}

/* Tokenizes a rendering; the byte offset of each token in off (n + 1 entries). False when the tokens do
 * not decode to the rendering byte for byte. */
static bool tokenize_rendering(const iq_tokenizer *tok, const iq_chat_render *r, iq_ids *ids, size_t **off) {
    iq_tok_encode_special(tok, r->text, r->len, ids);
    *off = iq_xmalloc((ids->len + 1) * sizeof **off);
    size_t pos = 0;
    for (size_t i = 0; i < ids->len; i++) {
        size_t tl;
        const uint8_t *tb = iq_tok_token_bytes(tok, ids->v[i], &tl);
        if (!tb || tl > r->len - pos || memcmp(tb, r->text + pos, tl) != 0) return false;
        (*off)[i] = pos;
        pos += tl;
    }
    (*off)[ids->len] = pos;
    return pos == r->len;
}

int32_t iq_chat_format_end_of_turn(const iq_chat_format *f, const iq_tokenizer *tok) {
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]");
    iq_ids ids = {0};
    iq_buf flags = {0}, reason = {0};
    int32_t eot = -1;
    if (iq_chat_format_encode(f, tok, msgs, &ids, &flags, &reason) == IQ_ROW_OK)
        for (size_t i = 0; i < ids.len; i++)
            if (flags.data[i] & IQ_TOK_TERMINAL) eot = ids.v[i];
    cJSON_Delete(msgs);
    iq_ids_free(&ids);
    iq_buf_free(&flags);
    iq_buf_free(&reason);
    return eot;
}

iq_row_result iq_chat_format_encode(const iq_chat_format *f, const iq_tokenizer *tok, const cJSON *messages,
                                    iq_ids *ids, iq_buf *flags, iq_buf *reason) {
    cJSON *copy = NULL;
    const cJSON *msgs = prepare_messages(tok, messages, &copy, reason);
    if (!msgs) return IQ_ROW_BAD;
    iq_chat_vars vars = {.bos_token = f->bos, .eos_token = f->eos, .now = CHAT_FIXED_NOW};
    iq_chat_render r = {0};
    iq_status st = iq_chat_template_render(f->tpl, msgs, &vars, &r);
    cJSON_Delete(copy);
    if (st) {
        iq_buf_printf(reason, "%s", iq_last_error());
        return IQ_ROW_BAD;
    }
    iq_ids row = {0};
    size_t *off = NULL;
    iq_row_result res = IQ_ROW_OK;
    if (!tokenize_rendering(tok, &r, &row, &off)) {
        iq_buf_printf(reason, "the rendered conversation does not survive tokenization byte for byte");
        res = IQ_ROW_BAD;
    }
    uint8_t *fl = iq_xcalloc(row.len + 1, 1);
    if (!res) res = supervise(tok, &r, row.v, off, row.len, fl, reason);
    if (!res) {
        for (size_t i = 0; i < row.len; i++) iq_ids_push(ids, row.v[i]);
        iq_buf_append(flags, fl, row.len);
    }
    free(fl);
    free(off);
    iq_ids_free(&row);
    iq_chat_render_free(&r);
    return res;
}
