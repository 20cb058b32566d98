/* chat_render.c — the C side of the chat-template oracle comparison (tests/chat/run_oracle.sh).
 *
 * usage: chat_render TEMPLATES_DIR CORPUS.jsonl > OUT.jsonl
 * Each corpus line is {"template": NAME, "messages": [...], "add_generation_prompt": bool, "extra": {...},
 * "now": SECONDS (what strftime_now formats)};
 * TEMPLATES_DIR/NAME.json holds the template ("chat_template", "bos_token", "eos_token"); a line may instead
 * carry its own template text in "chat_template" (tests/chat/random_vs_jinja2.py). Each output line
 * is {"text": RENDERED, "spans": [[message, start, end], ...]} (byte offsets), or {"error": MESSAGE} when
 * the template fails; a render whose spans are refused still gives its text, with "span_error". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "iqtrain/chat_template.h"
#include "iqtrain/util.h"

typedef struct {
    char name[64];
    iq_chat_template *t;
    cJSON *cfg;
} loaded;

static loaded cache[16];
static int ncache;

static loaded *get_template(const char *dir, const char *name) {
    for (int i = 0; i < ncache; i++)
        if (!strcmp(cache[i].name, name)) return &cache[i];
    if (ncache == 16 || strlen(name) >= sizeof cache[0].name) return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    cJSON *cfg;
    if (iq_read_json(path, &cfg) != IQ_OK) return NULL;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    loaded *l = &cache[ncache];
    if (!cJSON_IsString(src) || iq_chat_template_parse(src->valuestring, strlen(src->valuestring), path, &l->t) != IQ_OK) {
        fprintf(stderr, "chat_render: %s: %s\n", path, iq_last_error());
        exit(1);
    }
    snprintf(l->name, sizeof l->name, "%s", name);
    l->cfg = cfg;
    ncache++;
    return l;
}

static const char *str_or_null(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* a line with its own template: parse errors are results too */
static cJSON *render_inline(const cJSON *c, const char *src) {
    cJSON *res = cJSON_CreateObject();
    iq_chat_template *t;
    if (iq_chat_template_parse(src, strlen(src), "inline", &t) != IQ_OK) {
        cJSON_AddStringToObject(res, "error", iq_last_error());
        return res;
    }
    iq_chat_vars v = {.bos_token = "<s>", .eos_token = "</s>", .no_spans = true,
                      .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt")),
                      .extra = cJSON_GetObjectItemCaseSensitive(c, "extra")};
    iq_chat_render r;
    if (iq_chat_template_render(t, cJSON_GetObjectItemCaseSensitive(c, "messages"), &v, &r) != IQ_OK)
        cJSON_AddStringToObject(res, "error", iq_last_error());
    else {
        cJSON_AddStringToObject(res, "text", r.text);
        iq_chat_render_free(&r);
    }
    iq_chat_template_free(t);
    return res;
}

static cJSON *render_case(const char *dir, const cJSON *c) {
    if (str_or_null(c, "chat_template")) return render_inline(c, str_or_null(c, "chat_template"));
    cJSON *res = cJSON_CreateObject();
    loaded *l = get_template(dir, str_or_null(c, "template") ? str_or_null(c, "template") : "");
    if (!l) {
        cJSON_AddStringToObject(res, "error", "no such template");
        return res;
    }
    iq_chat_vars v = {.bos_token = str_or_null(l->cfg, "bos_token"), .eos_token = str_or_null(l->cfg, "eos_token"),
                      .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt")),
                      .extra = cJSON_GetObjectItemCaseSensitive(c, "extra")};
    const cJSON *now = cJSON_GetObjectItemCaseSensitive(c, "now");
    if (cJSON_IsNumber(now)) v.now = (int64_t)now->valuedouble;
    iq_chat_render r;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(c, "messages");
    if (iq_chat_template_render(l->t, msgs, &v, &r) != IQ_OK) {
        cJSON_AddStringToObject(res, "span_error", iq_last_error());
        v.no_spans = true;
        if (iq_chat_template_render(l->t, msgs, &v, &r) != IQ_OK) {
            cJSON_DeleteItemFromObject(res, "span_error");
            cJSON_AddStringToObject(res, "error", iq_last_error());
            return res;
        }
    }
    cJSON_AddStringToObject(res, "text", r.text);
    cJSON *spans = cJSON_AddArrayToObject(res, "spans");
    for (size_t i = 0; i < r.n_spans; i++) {
        cJSON *s = cJSON_CreateArray();
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)r.spans[i].message));
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)r.spans[i].start));
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)r.spans[i].end));
        cJSON_AddItemToArray(spans, s);
    }
    iq_chat_render_free(&r);
    return res;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: chat_render TEMPLATES_DIR CORPUS.jsonl\n");
        return 64;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 66;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        cJSON *c = cJSON_ParseWithLength(line, (size_t)n);
        cJSON *res = c ? render_case(argv[1], c) : cJSON_CreateObject();
        if (!c) cJSON_AddStringToObject(res, "error", "bad corpus line");
        char *out = cJSON_PrintUnformatted(res);
        puts(out);
        free(out);
        cJSON_Delete(res);
        cJSON_Delete(c);
    }
    free(line);
    fclose(f);
    for (int i = 0; i < ncache; i++) {
        iq_chat_template_free(cache[i].t);
        cJSON_Delete(cache[i].cfg);
    }
    return 0;
}
