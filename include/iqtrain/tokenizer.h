/* tokenizer.h — byte-level BPE: GPT-2's files and tokenizer.json (DESIGN §4, §10 "Tokenizers").
 *
 * GPT-2 (encoder.json + vocab.bpe, vocab.json + merges.txt, or a tokenizer.json whose pre-tokenizer is
 * ByteLevel with use_regex): *
 * Bit-compatible with GPT-2's encoder.py: the pre-tokenizer regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with the Unicode classes of Python's `regex` module, the byte-to-unicode map and merge ranks.
 * Input is raw bytes: invalid UTF-8 is handled like Python's errors='surrogateescape' (each bad byte
 * one code point that is neither letter, number nor space) and BPE runs on the raw bytes.
 *
 *
 * tokenizer.json of Llama 3 / 3.1 / 3.2 and Qwen2 / 2.5 / 3 (and any tokenizer.json built the same way):
 * byte-level BPE whose pre-tokenizer is a Sequence of a Split with the Llama 3 or the Qwen2 regex
 * (recognised by its exact string; another regex is refused, IQ_EDATA, quoting it) and a ByteLevel without
 * regex; an NFC normalizer (Qwen); added tokens; the model's ignore_merges (Llama 3); BOS from a
 * TemplateProcessing post-processor. The encoding equals transformers' encode(text,
 * add_special_tokens=False) on valid UTF-8 (see iq_tok_encode for added tokens). SentencePiece-style BPE
 * (Metaspace, byte_fallback: Llama 2, TinyLlama, Mistral v0.1) is refused with IQ_EDATA.
 *
 * A tokenizer is immutable after loading; encode/decode are thread-safe. */
#ifndef IQTRAIN_TOKENIZER_H
#define IQTRAIN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

typedef struct iq_tokenizer iq_tokenizer;

/* The pre-tokenizer regexes iqtrain implements. */
typedef enum { IQ_PRETOK_GPT2 = 0, IQ_PRETOK_LLAMA3 = 1, IQ_PRETOK_QWEN2 = 2 } iq_pretok_kind;

#define IQ_EOS_TEXT "<|endoftext|>"

/* Loads a tokenizer from PATH: a folder holding tokenizer.json, or vocab.json + merges.txt, or
 * encoder.json + vocab.bpe (tried in that order); or one of those files directly (a vocab file finds its
 * merges file beside it). Returns 66 when nothing can be opened, 65 when a file is malformed (the message
 * names the file, and the line for merges files). */
iq_status iq_tok_load(const char *path, iq_tokenizer **out);
void iq_tok_free(iq_tokenizer *t);

/* Number of ids (max id + 1, special tokens included). */
int32_t iq_tok_vocab_size(const iq_tokenizer *t);
/* The EOS id: for a tokenizer.json with a Split pre-tokenizer, tokenizer_config.json's eos_token when the
 * folder has one (what transformers' eos_token_id is: <|end_of_text|> for Llama 3, <|eot_id|> for Llama
 * 3.1 Instruct, <|im_end|> for Qwen Instruct); otherwise the id of <|endoftext|>; -1 when there is none. */
int32_t iq_tok_eos(const iq_tokenizer *t);
/* The BOS id the post-processor adds (a TemplateProcessing whose single template starts with a special
 * token, like Llama 3.1's <|begin_of_text|>), or -1 (GPT-2, Qwen, and Llama 3's ByteLevel post-processor).
 * encode never adds it: callers that want transformers' add_special_tokens=True prepend it. */
int32_t iq_tok_bos(const iq_tokenizer *t);
/* The id of the added token (special or not) whose text is exactly `text`, or -1. */
int32_t iq_tok_special_id(const iq_tokenizer *t, const char *text);
/* The pre-tokenizer regex; whether text is NFC-normalized before it. */
iq_pretok_kind iq_tok_pretok(const iq_tokenizer *t);
bool iq_tok_nfc(const iq_tokenizer *t);
int32_t iq_tok_n_merges(const iq_tokenizer *t);
/* The bytes an id decodes to (NULL for an id that is not defined). */
const uint8_t *iq_tok_token_bytes(const iq_tokenizer *t, int32_t id, size_t *len);
/* What an id is (for exporting the vocabulary): an ordinary BPE token, a special token (an added token
 * tokenizer.json marks special, or GPT-2's <|endoftext|>), an added token marked "special": false, or
 * none (an id the vocabulary leaves out). */
typedef enum { IQ_TOKEN_NONE = 0, IQ_TOKEN_NORMAL = 1, IQ_TOKEN_SPECIAL = 2, IQ_TOKEN_ADDED = 3 } iq_token_kind;
iq_token_kind iq_tok_token_kind(const iq_tokenizer *t, int32_t id);
/* Appends the token's string as vocab.json spells it (bytes through GPT-2's byte-to-unicode map; an added
 * token's own text) to out; nothing for IQ_TOKEN_NONE. */
void iq_tok_token_string(const iq_tokenizer *t, int32_t id, iq_buf *out);
/* The merge of rank i (0 <= i < iq_tok_n_merges): the ids of its left and right parts. */
void iq_tok_merge(const iq_tokenizer *t, int32_t i, int32_t *left, int32_t *right);
/* The path the tokenizer was loaded from (or "(trained)"). */
const char *iq_tok_source(const iq_tokenizer *t);

/* Encodes bytes as ordinary text and appends the ids to *out: the text of special tokens (<|endoftext|>,
 * <|eot_id|>, <|im_end|>, ...) is just text (DESIGN §4), while added tokens that tokenizer.json marks
 * "special": false (Qwen's <think>, <tool_call>, ...) become their ids, as transformers always does.
 * Equals transformers' encode(text, add_special_tokens=False) on valid UTF-8 holding no special token's
 * text. Between added tokens: NFC when the file asks for it, the pre-tokenizer, then BPE. */
void iq_tok_encode(const iq_tokenizer *t, const void *text, size_t len, iq_ids *out);
/* Like iq_tok_encode, but the text of every added token, special or not, becomes its id (leftmost match,
 * the longest at one position): transformers' encode(text, add_special_tokens=False) on any valid UTF-8
 * (--allow-special). */
void iq_tok_encode_special(const iq_tokenizer *t, const void *text, size_t len, iq_ids *out);
/* The id of the first special added token (not one marked "special": false) whose text occurs in `text`,
 * its byte offset in *at; -1 when there is none. */
int32_t iq_tok_find_special(const iq_tokenizer *t, const void *text, size_t len, size_t *at);
/* Appends the bytes of the ids to *out. 65 for an id outside the vocabulary. */
iq_status iq_tok_decode(const iq_tokenizer *t, const int32_t *ids, size_t n, iq_buf *out);

/* Writes tokenizer.json, vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json (and
 * chat_template.jinja when the tokenizer has one, below) into
 * `dir` (which must exist), each atomically. model_max_length goes to tokenizer_config.json.
 * A tokenizer loaded from a tokenizer.json with a Split pre-tokenizer or a normalizer writes tokenizer.json
 * back as the bytes it was loaded from, and so tokenizer_config.json and special_tokens_map.json when its
 * folder had them (else they are generated: PreTrainedTokenizerFast, its BOS and EOS, model_max_length), so
 * transformers loads the same tokenizer; vocab.json + merges.txt are its ordinary tokens and merges (what
 * Qwen folders ship), which iqtrain reads only when tokenizer.json is absent. */
iq_status iq_tok_save(const iq_tokenizer *t, const char *dir, int model_max_length);
/* The chat template iq_tok_save writes as chat_template.jinja (transformers prefers that file to
 * tokenizer_config.json's chat_template): set from --chat-template; iq_tok_load reads the file when the
 * tokenizer's folder has one. NULL writes none. */
void iq_tok_set_chat_template(iq_tokenizer *t, const char *text);
/* The token the chat template ends an assistant turn with (iq_chat_format_end_of_turn), which generation
 * stops at besides the EOS; -1 (the default) when there is none. */
int32_t iq_tok_end_of_turn(const iq_tokenizer *t);
void iq_tok_set_end_of_turn(iq_tokenizer *t, int32_t id);

/* The pre-tokenizer: given that a piece starts at s[i] (i < n), returns the end of that piece. */
size_t iq_pretok_next(const uint8_t *s, size_t n, size_t i);
/* The same for any of the regexes (IQ_PRETOK_GPT2 is iq_pretok_next). */
size_t iq_pretok_split(iq_pretok_kind kind, const uint8_t *s, size_t n, size_t i);
/* Recognises a tokenizer.json Split regex by its exact string; false for one iqtrain does not implement. */
bool iq_pretok_from_regex(const char *regex, iq_pretok_kind *kind);
const char *iq_pretok_name(iq_pretok_kind kind);

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
