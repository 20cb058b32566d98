/* tokenizer_internal.h — the tokenizer object and its builder, shared by the loaders (tokenizer.c) and
 * the BPE trainer (tokenizer_train.c). Not part of the public API. */
#ifndef IQTRAIN_TOKENIZER_INTERNAL_H
#define IQTRAIN_TOKENIZER_INTERNAL_H

#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

enum { IQ_TOK_DEFINED = 1, IQ_TOK_SPECIAL = 2 };

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
};

iq_tokenizer *iq_tok_new(int32_t vocab_size, const char *source);
/* Defines token `id` with its bytes; special tokens are kept out of BPE. */
iq_status iq_tok_set_token(iq_tokenizer *t, int32_t id, const void *bytes, size_t len, bool special);
/* Appends the merge (a, b) with the next rank; the merged bytes must already be a token. */
iq_status iq_tok_add_merge(iq_tokenizer *t, int32_t a, int32_t b);
/* Builds the lookup tables; every byte must have a token. */
iq_status iq_tok_finish(iq_tokenizer *t);

#endif
