/* tokenizer.h — GPT-2 byte-level BPE (DESIGN §4).
 *
 * Bit-compatible with GPT-2's encoder.py: the pre-tokenizer regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with the Unicode classes of Python's `regex` module, the byte-to-unicode map and merge ranks.
 * Input is raw bytes: invalid UTF-8 is handled like Python's errors='surrogateescape' (each bad byte
 * one code point that is neither letter, number nor space) and BPE runs on the raw bytes.
 *
 * A tokenizer is immutable after loading; encode/decode are thread-safe. */
#ifndef IQTRAIN_TOKENIZER_H
#define IQTRAIN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

typedef struct iq_tokenizer iq_tokenizer;

#define IQ_EOS_TEXT "<|endoftext|>"

/* Loads a tokenizer from PATH: a folder holding tokenizer.json, or vocab.json + merges.txt, or
 * encoder.json + vocab.bpe (tried in that order); or one of those files directly (a vocab file finds its
 * merges file beside it). Returns 66 when nothing can be opened, 65 when a file is malformed (the message
 * names the file, and the line for merges files). */
iq_status iq_tok_load(const char *path, iq_tokenizer **out);
void iq_tok_free(iq_tokenizer *t);

/* Number of ids (max id + 1, special tokens included). */
int32_t iq_tok_vocab_size(const iq_tokenizer *t);
/* Id of <|endoftext|>, or -1 when the vocabulary has none. */
int32_t iq_tok_eos(const iq_tokenizer *t);
int32_t iq_tok_n_merges(const iq_tokenizer *t);
/* The bytes an id decodes to (NULL for an id that is not defined). */
const uint8_t *iq_tok_token_bytes(const iq_tokenizer *t, int32_t id, size_t *len);
/* The path the tokenizer was loaded from (or "(trained)"). */
const char *iq_tok_source(const iq_tokenizer *t);

/* Encodes bytes as ordinary text (special-token text is just text) and appends the ids to *out. */
void iq_tok_encode(const iq_tokenizer *t, const void *text, size_t len, iq_ids *out);
/* Like iq_tok_encode, but occurrences of special tokens' text (<|endoftext|>) become their ids. */
void iq_tok_encode_special(const iq_tokenizer *t, const void *text, size_t len, iq_ids *out);
/* Appends the bytes of the ids to *out. 65 for an id outside the vocabulary. */
iq_status iq_tok_decode(const iq_tokenizer *t, const int32_t *ids, size_t n, iq_buf *out);

/* Writes tokenizer.json, vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json into
 * `dir` (which must exist), each atomically. model_max_length goes to tokenizer_config.json. */
iq_status iq_tok_save(const iq_tokenizer *t, const char *dir, int model_max_length);

/* The pre-tokenizer: given that a piece starts at s[i] (i < n), returns the end of that piece. */
size_t iq_pretok_next(const uint8_t *s, size_t n, size_t i);

/* GPT-2's byte-to-unicode map: the code point that stands for byte b in token strings. */
uint32_t iq_byte_to_unicode(uint8_t b);
/* The i-th byte in GPT-2's id order (ids 0..255 of GPT-2's vocabulary are these bytes). */
uint8_t iq_byte_order(int i);

/* The plain-text chat template of DESIGN §3, as a Jinja string for tokenizer_config.json. */
extern const char *const IQ_CHAT_TEMPLATE;

/* ---------------------------------------------------------------- training (tokenizer_train.c) */
typedef struct iq_bpe_trainer iq_bpe_trainer;
iq_bpe_trainer *iq_bpe_trainer_new(void);
void iq_bpe_trainer_free(iq_bpe_trainer *tr);
/* Pre-tokenizes a text and counts its pieces. */
void iq_bpe_trainer_add(iq_bpe_trainer *tr, const void *text, size_t len);
/* Learns merges until the vocabulary has vocab_size ids: 256 byte ids (GPT-2 order), the merges, then
 * <|endoftext|> last. Deterministic: the most frequent pair wins, ties go to the smallest
 * (left id, right id). Fewer merges are learned when no pair is left. 64 when vocab_size < 257. */
iq_status iq_bpe_trainer_train(iq_bpe_trainer *tr, int32_t vocab_size, iq_tokenizer **out);

#endif
