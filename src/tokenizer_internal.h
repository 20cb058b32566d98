/* tokenizer_internal.h — the tokenizer object and its builder, shared by the loaders (tokenizer.c) and
 * the BPE trainer (tokenizer_train.c). Not part of the public API. */
#ifndef IQTRAIN_TOKENIZER_INTERNAL_H
#define IQTRAIN_TOKENIZER_INTERNAL_H

#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

/* IQ_TOK_SPECIAL: an added token (matched as its text, kept out of BPE); IQ_TOK_NONSPECIAL: an added token
 * that tokenizer.json marks "special": false, which transformers splits out of any text. */
enum { IQ_TOK_DEFINED = 1, IQ_TOK_SPECIAL = 2, IQ_TOK_NONSPECIAL = 4 };

struct iq_tokenizer {
    int32_t vocab_size;
    uint32_t *tok_off;    /* (V) offset of each token's bytes in pool */
    uint32_t *tok_len;    /* (V) length of each token's bytes */
    uint8_t *tok_flags;   /* (V) IQ_TOK_* */
    iq_buf pool;          /* all token bytes */
    iq_strmap *bytes_map; /* ordinary token bytes -> id */
    int32_t byte_id[256]; /* the single-byte token of each byte */
    int32_t (*merges)[3]; /* (n_merges) left id, right id, merged id, in rank order */
    int32_t n_merges, merges_cap;
    uint64_t *merge_keys; /* hash (left << 32 | right) -> rank, 2^merge_bits slots */
    int32_t *merge_vals;
    int merge_bits;
    int32_t *special_ids; /* added/special tokens, matched as text only by iq_tok_encode_special */
    int n_special;
    int32_t eos;
    char *source;
    /* tokenizer.json features beyond GPT-2's files (tokenizer_json.c) */
    iq_pretok_kind pretok; /* the Split regex (GPT-2's for the ByteLevel pre-tokenizer) */
    bool nfc;              /* NFC normalizer */
    bool ignore_merges;    /* a piece that is itself in the vocabulary is that one token */
    int32_t bos;           /* the post-processor's leading special token, or -1 */
    int n_nonspecial;      /* added tokens with IQ_TOK_NONSPECIAL */
    uint8_t first_all[32], first_ns[32]; /* bitmaps of the first bytes of all / non-special added tokens */
    char *raw_json, *raw_config, *raw_stm; /* tokenizer.json, and the tokenizer_config.json and
                                              special_tokens_map.json beside it, as read: iq_tok_save writes
                                              them back (NULL for GPT-2's files, which are regenerated) */
    size_t raw_json_len, raw_config_len, raw_stm_len;
    int32_t eot;      /* the chat template's end-of-turn token (iq_tok_set_end_of_turn), or -1 */
    char *chat_jinja; /* chat_template.jinja as read beside the tokenizer, or as set (written back), or NULL */
};

iq_tokenizer *iq_tok_new(int32_t vocab_size, const char *source);
/* Defines token `id` with its bytes; special tokens are kept out of BPE. */
iq_status iq_tok_set_token(iq_tokenizer *t, int32_t id, const void *bytes, size_t len, bool special);
/* Appends the merge (a, b) with the next rank; the merged bytes must already be a token. */
iq_status iq_tok_add_merge(iq_tokenizer *t, int32_t a, int32_t b);
/* Builds the lookup tables; every byte must have a token. */
iq_status iq_tok_finish(iq_tokenizer *t);

/* tokenizer.c, for the loaders */
/* Token string (UTF-8 of byte-level characters) -> raw bytes; false when a character is not in the map. */
bool iq_tok_string_to_bytes(const char *s, size_t n, iq_buf *out);
/* A new tokenizer holding the vocabulary object {"token": id, ...} and the added_tokens array (or NULL). */
iq_status iq_tok_load_vocab(const char *path, const struct cJSON *vocab, const struct cJSON *added, iq_tokenizer **out);
/* One merge given as two token strings. */
iq_status iq_tok_add_merge_strings(iq_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, iq_buf *tmp);

/* tokenizer_json.c: loads a tokenizer.json (and the tokenizer_config.json beside it, for the new kinds). */
iq_status iq_tok_load_json(const char *path, iq_tokenizer **out);

#endif
