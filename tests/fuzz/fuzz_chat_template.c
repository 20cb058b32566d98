/* fuzz_chat_template.c — chat templates (untrusted: they come with a downloaded model folder) ->
 * iq_chat_template_parse and iq_chat_template_render (DESIGN §10, include/iqtrain/chat_template.h).
 *
 * Input: the template text, optionally followed by a NUL and a JSON messages array (otherwise a fixed
 * conversation with two assistant turns, one with an empty content, is used). Rendered with small bounds
 * (1 MiB output, 64 MiB memory, 100 000 iterations, 20 MB of string work) so that every input finishes fast.
 * Properties: parse and render return only 0 or 65, with a message; an accepted render is NUL-terminated,
 * within the output bound, and renders the same text again and without spans; there is one span per
 * assistant message, in message order, inside the text and pairwise disjoint. */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "iqtrain/chat_template.h"

static const char *DEFAULT_MESSAGES =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\" hi \\n\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>\\nr\\n</think>\\n\\nhello é\"},{\"role\":\"user\",\"content\":\"x\"},"
    "{\"role\":\"assistant\",\"content\":\"\"}]";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

static void check_spans(const cJSON *msgs, const iq_chat_render *r) {
    size_t want = 0, k = 0, i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        want += cJSON_IsString(role) && !strcmp(role->valuestring, "assistant");
    }
    FUZZ_CHECK(r->n_spans == want, "%zu spans for %zu assistant messages", r->n_spans, want);
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role) || strcmp(role->valuestring, "assistant") != 0) continue;
        FUZZ_CHECK(k < r->n_spans && r->spans[k].message == i, "span %zu is not for message %zu", k, i);
        const iq_chat_span *s = &r->spans[k++];
        FUZZ_CHECK(s->start <= s->end && s->end <= r->len, "span [%zu, %zu) of %zu bytes", s->start, s->end, r->len);
        for (size_t j = 0; j < r->n_spans; j++) {
            const iq_chat_span *o = &r->spans[j];
            if (o == s || o->start == o->end || s->start == s->end) continue;
            FUZZ_CHECK(o->end <= s->start || s->end <= o->start, "spans of messages %zu and %zu overlap", s->message, o->message);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    cJSON *msgs = nul ? cJSON_ParseWithLength((const char *)nul + 1, size - tlen - 1) : cJSON_Parse(DEFAULT_MESSAGES);
    if (!cJSON_IsArray(msgs)) {
        cJSON_Delete(msgs);
        msgs = cJSON_Parse(DEFAULT_MESSAGES);
    }
    iq_chat_template *t = NULL;
    iq_status st = iq_chat_template_parse(src, tlen, "fuzz", &t);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "parse status %d: %s", (int)st, iq_last_error());
    FUZZ_CHECK(st == IQ_OK ? t != NULL : (t == NULL && strlen(iq_last_error()) > 0), "parse result inconsistent");
    if (st != IQ_OK) {
        cJSON_Delete(msgs);
        return 0;
    }
    iq_chat_vars v = {.bos_token = "<s>", .eos_token = "</s>", .add_generation_prompt = size & 1, .now = 1700000000,
                      .limits = {.max_output = 1 << 20, .max_memory = 64 << 20, .max_iterations = 100000, .max_work = 20000000}};
    iq_chat_render r, r2, r3;
    st = iq_chat_template_render(t, msgs, &v, &r);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "render status %d: %s", (int)st, iq_last_error());
    if (st == IQ_OK) {
        FUZZ_CHECK(r.text && r.text[r.len] == 0 && r.len <= v.limits.max_output, "bad text (%zu bytes)", r.len);
        check_spans(msgs, &r);
        FUZZ_CHECK(iq_chat_template_render(t, msgs, &v, &r2) == IQ_OK, "second render failed: %s", iq_last_error());
        FUZZ_CHECK(r2.len == r.len && !memcmp(r.text, r2.text, r.len), "renders differ");
        iq_chat_render_free(&r2);
    } else FUZZ_CHECK(strlen(iq_last_error()) > 0 && r.text == NULL && r.spans == NULL, "failure without a message");
    v.no_spans = true;
    iq_status st3 = iq_chat_template_render(t, msgs, &v, &r3);
    FUZZ_CHECK(st3 == IQ_OK || st3 == IQ_EDATA, "render status %d", (int)st3);
    if (st == IQ_OK) FUZZ_CHECK(st3 == IQ_OK && r3.len == r.len && !memcmp(r.text, r3.text, r.len), "no_spans render differs");
    if (st3 == IQ_OK) iq_chat_render_free(&r3);
    if (st == IQ_OK) iq_chat_render_free(&r);
    iq_chat_template_free(t);
    cJSON_Delete(msgs);
    return 0;
}
