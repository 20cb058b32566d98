/* gen_io.c — what the generate, score and eval-generation commands share (gen_io.h): loading a model folder
 * and data sized for the command, prompts and texts of rows, JSON numbers, output lines. */
#include "gen_io.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/chat_format.h"
#include "iqtrain/log.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/unicode.h"


/* Appends bytes as valid UTF-8 (invalid bytes become U+FFFD) so that JSON output stays valid. */
static void utf8_lossy(iq_buf *out, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = iq_utf8_decode(s + i, n - i, &cp);
        if (cp >= 0xDC80 && cp <= 0xDCFF && l == 1) iq_buf_append(out, "\xEF\xBF\xBD", 3);
        else iq_buf_append(out, s + i, l);
        i += l;
    }
}

char *iq_gen_decode_text(const iq_tokenizer *tok, const int32_t *ids, size_t n) {
    iq_buf raw = {0}, out = {0};
    iq_tok_decode(tok, ids, n, &raw);
    utf8_lossy(&out, (const uint8_t *)raw.data, raw.len);
    iq_buf_free(&raw);
    iq_buf_cstr(&out);
    return out.data;
}

/* A dataset row's prompt: the ids before its last supervised run (the last assistant turn, the completion,
 * or everything after the BOS of a text row); *comp_start receives that run's start. */
size_t iq_gen_row_prompt_len(const iq_dataset *d, size_t r) {
    size_t a = d->row_off[r], n = iq_data_row_len(d, r), s = n;
    while (s > 0 && (d->tok_flags[a + s - 1] & IQ_TOK_SUPERVISED)) s--;
    return s;
}

float iq_gen_model_gamma(const char *dir, float given) {
    if (given >= 0) return given;
    iq_model_config cfg;
    cJSON *sec = NULL;
    float g = 0.99f;
    if (iq_model_config_read(dir, &cfg, &sec) == IQ_OK) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(sec, "gamma");
        if (cJSON_IsNumber(x)) g = (float)x->valuedouble;
    }
    cJSON_Delete(sec);
    return g;
}

cJSON *iq_gen_float_array(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.9g", (double)x[i]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(buf));
    }
    return a;
}

cJSON *iq_gen_num9(double x) {
    char buf[32];
    if (!isfinite(x)) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.9g", x);
    return cJSON_CreateRaw(buf);
}

iq_status iq_gen_open_out(const char *dir, const char *name, FILE **f) {
    *f = NULL;
    if (!dir) return IQ_OK;
    iq_status st = iq_mkdirs(dir);
    if (st) return st;
    char *p = iq_path_join(dir, name);
    *f = fopen(p, "wb");
    st = *f ? IQ_OK : iq_fail(IQ_ECANTCREAT, "%s: cannot create", p);
    free(p);
    return st;
}

iq_status iq_gen_put_line(FILE *f, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    bool ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    free(s);
    return ok ? IQ_OK : iq_fail(IQ_EIO, "write failed");
}


void iq_gen_loaded_free(iq_gen_loaded *L) {
    iq_tok_free(L->tok);
    iq_model_free(L->m);
    iq_head_free(L->head);
    iq_data_free(L->d);
}

/* Loads the tokenizer, the data and then the model, sized for what this command needs (never for a whole
 * huge context that no row uses). */
iq_status iq_gen_load_all(const char *model_dir, const char *const *data, int n_data, bool skip_bad, const char *prompt,
                          int max_new, iq_gen_loaded *L) {
    memset(L, 0, sizeof *L);
    iq_model_config cfg;
    iq_status st = iq_model_config_read(model_dir, &cfg, NULL);
    if (!st) st = iq_tok_load(model_dir, &L->tok);
    if (!st && iq_tok_eos(L->tok) < 0) st = iq_fail(IQ_EDATA, "%s: the tokenizer has no %s", model_dir, IQ_EOS_TEXT);
    if (!st && iq_tok_vocab_size(L->tok) > cfg.vocab)
        st = iq_fail(IQ_EDATA, "%s: the tokenizer has more ids than the model", model_dir);
    long longest = 1;
    if (!st && n_data > 0) {
        iq_chat_format *chat = NULL;
        st = iq_chat_format_load(L->tok, NULL, &chat);
        iq_data_opts dopt = {.max_seq_len = cfg.ctx, .chat = chat, .skip_bad_rows = skip_bad, .progress = true};
        if (!st) st = iq_data_load(data, n_data, L->tok, &dopt, &L->d);
        if (chat) iq_tok_set_end_of_turn(L->tok, iq_chat_format_end_of_turn(chat, L->tok));
        iq_chat_format_free(chat);
        if (!st) longest = (long)L->d->stats.max_len;
    } else if (!st && prompt) {
        iq_ids ids = {0};
        iq_tok_encode(L->tok, prompt, strlen(prompt), &ids);
        longest = ids.len > 0 ? (long)ids.len : 1;
        iq_ids_free(&ids);
    }
    if (!st) {
        long need = longest + (max_new > 0 ? max_new : 0);
        L->len = need < cfg.ctx ? (int)need : cfg.ctx;
        st = iq_model_load_folder(model_dir, IQ_MODEL_INFER, 1, L->len, &L->m, NULL);
    }
    if (!st) L->head = iq_head_create(L->len, cfg.n_embd, cfg.vocab, 0);
    return st;
}

