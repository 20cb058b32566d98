/* chat_format.h — `messages` rows through a model's chat template (DESIGN §10, issue 15).
 *
 * Where the template comes from, as transformers loads it: `--chat-template FILE` when given (a Jinja file,
 * or a JSON object with a "chat_template" string such as a tokenizer_config.json); else the tokenizer's
 * folder: chat_template.jinja when present (newer transformers save it there, and it wins), else
 * tokenizer_config.json's "chat_template" (a string, or a list of {name, template} whose "default" is used).
 * No template, or iqtrain's own plain-text template (IQ_CHAT_TEMPLATE, which GPT-2 folders written by
 * iqtrain carry), means DESIGN §3's "<role>: <content>\n" format (data.h).
 *
 * A row is rendered as transformers' apply_chat_template(messages, tokenize=True) renders it: no
 * generation prompt, `bos_token`/`eos_token` from tokenizer_config.json, strftime_now fixed at
 * 2024-07-26 00:00 UTC (transformers reads the clock; a fixed date keeps runs reproducible and is the
 * default date the Llama 3.1 template prints), and the whole text encoded with every added token's text
 * as its id (encode(text, add_special_tokens=False)). Supervised: the tokens that hold a byte of an
 * assistant message's content (the renderer's spans, chat_template.h), and the token right after them,
 * which must be a special token (<|eot_id|>, <|im_end|>): the turn's end, terminal (d = 1). Everything
 * else is context. Refused (IQ_ROW_BAD, with a reason): a render error, a message content holding a
 * special token's text (it would become that token, as in transformers: say so rather than train on it),
 * an assistant turn the template ends with no special token, and a rendering that does not survive the
 * tokenizer byte for byte (for NFC tokenizers, message contents are normalized to NFC first, which is
 * what the tokenizer would do to them). */
#ifndef IQTRAIN_CHAT_FORMAT_H
#define IQTRAIN_CHAT_FORMAT_H

#include <stdint.h>

#include "iqtrain/data.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

struct cJSON;

typedef struct iq_chat_format iq_chat_format;

/* Loads the chat format of `tok` (template_path = --chat-template or NULL). *out = NULL when messages rows
 * keep DESIGN §3's format. 66 when template_path cannot be read, 65 for a template that does not parse
 * (naming the file and line) or a tokenizer_config.json that is not valid JSON. */
iq_status iq_chat_format_load(const iq_tokenizer *tok, const char *template_path, iq_chat_format **out);
void iq_chat_format_free(iq_chat_format *f);

/* The file the template was read from, the template's text, and the SHA-256 (hex) of the text (run.json). */
const char *iq_chat_format_source(const iq_chat_format *f);
const char *iq_chat_format_text(const iq_chat_format *f);
const char *iq_chat_format_sha256(const iq_chat_format *f);

/* The end-of-turn token of the template: the terminal token of [{"role": "user", "content": "Hi"},
 * {"role": "assistant", "content": "Hello"}] as encoded below; -1 when that conversation does not encode. */
int32_t iq_chat_format_end_of_turn(const iq_chat_format *f, const iq_tokenizer *tok);

/* Encodes a validated messages array into ids and one IQ_TOK_* flag byte per id (appended). IQ_ROW_OK, or
 * IQ_ROW_BAD with the reason in *reason (without a FILE:LINE prefix). */
iq_row_result iq_chat_format_encode(const iq_chat_format *f, const iq_tokenizer *tok, const struct cJSON *messages,
                                    iq_ids *ids, iq_buf *flags, iq_buf *reason);

#endif
