/* data.h — demonstrations: JSONL (optionally gzip) rows -> token ids with supervision flags (DESIGN §3).
 *
 * Row formats and their ids (E = <|endoftext|>, enc = the tokenizer on ordinary text):
 *   {"prompt": p, "completion": c}  enc(p) ++ enc(c) ++ [E]    supervised: enc(c) and E;  E terminal.
 *                                    With p == "": [E] ++ enc(c) ++ [E] (E as BOS).
 *   {"text": x}                      [E] ++ enc(x) ++ [E]       supervised: all but the first; last E terminal.
 *   {"messages": [...]}              "<role>: <content>\n" for system/user turns, "assistant: " before each
 *                                    assistant turn, whose content is followed by E. Text between assistant
 *                                    contents is encoded as one string, each assistant content separately.
 *                                    Every assistant content + E is supervised, and each E is terminal.
 *                                    With a chat template (chat_format.h), the template's rendering instead.
 * Tokens after the last supervised token are dropped (they cannot change the loss). With max_seq_len,
 * longer rows keep their start and are marked truncated; their last token is then supervised but not
 * terminal (the trainer bootstraps it). A row with no supervised token left is skipped and counted. */
#ifndef IQTRAIN_DATA_H
#define IQTRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/tokenizer.h"
#include "iqtrain/util.h"

enum { IQ_TOK_SUPERVISED = 1, IQ_TOK_TERMINAL = 2 };
enum { IQ_ROW_TRUNCATED = 1 };
typedef enum { IQ_FMT_PROMPT = 0, IQ_FMT_TEXT = 1, IQ_FMT_MESSAGES = 2 } iq_row_format;

struct iq_chat_format;

typedef struct {
    int32_t max_seq_len; /* 0 = no limit */
    const struct iq_chat_format *chat; /* messages rows through this chat template; NULL: DESIGN §3's format */
    bool skip_bad_rows;  /* count bad rows instead of failing */
    bool warn_every_bad_row; /* with skip_bad_rows: a warning for each (default: the first 5) */
    bool progress;       /* progress lines on stderr for large inputs */
} iq_data_opts;

typedef struct {
    size_t rows;          /* usable rows kept */
    size_t tokens;        /* ids in kept rows */
    size_t supervised;    /* supervised ids in kept rows */
    size_t truncated;     /* kept rows cut by max_seq_len */
    size_t skipped;       /* rows whose prompt left no room for a supervised token */
    size_t bad;           /* bad rows skipped (--skip-bad-rows) */
    size_t blank;         /* blank lines */
    size_t by_format[3];  /* kept rows per iq_row_format */
    size_t max_len;       /* longest kept row */
} iq_data_stats;

typedef struct {
    size_t n_rows;
    int32_t *ids;        /* all kept rows' ids, concatenated */
    uint8_t *tok_flags;  /* per id: IQ_TOK_* */
    size_t *row_off;     /* (n_rows + 1) offsets into ids */
    uint8_t *row_flags;  /* (n_rows) IQ_ROW_* */
    uint8_t *row_format; /* (n_rows) iq_row_format */
    uint32_t *row_file;  /* (n_rows) index into files */
    uint64_t *row_line;  /* (n_rows) 1-based line in its file */
    char **files;
    int n_files;
    iq_data_stats stats;
} iq_dataset;

/* One row's ids and flags (for iq_data_encode_row). */
typedef struct {
    iq_ids ids;
    iq_buf flags; /* one byte per id */
    iq_row_format format;
    bool truncated;
} iq_row;

typedef enum { IQ_ROW_OK = 0, IQ_ROW_BLANK = 1, IQ_ROW_SKIPPED = 2, IQ_ROW_BAD = 3 } iq_row_result;

/* Encodes one JSONL line (without its '\n'; a trailing '\r' and, when first_line, a UTF-8 BOM are
 * accepted; chat may be NULL, see iq_data_opts). The line must be followed by a NUL byte at line[len] (cJSON
 * needs it). On IQ_ROW_BAD,
 * `reason` (if not NULL) receives the reason, without the FILE:LINE prefix. */
iq_row_result iq_data_encode_row(const iq_tokenizer *tok, const struct iq_chat_format *chat, char *line, size_t len,
                                 bool first_line, int32_t max_seq_len, iq_row *row, iq_buf *reason);
void iq_row_free(iq_row *row);

/* Reads and tokenizes every row of the files (JSONL, or gzip by magic bytes, multi-member accepted).
 * 66 when a file cannot be opened; 65 for a bad row ("FILE:LINE: reason") unless skip_bad_rows, for a
 * truncated or corrupt gzip stream, and when no usable row is left. */
iq_status iq_data_load(const char *const *paths, int n_paths, const iq_tokenizer *tok, const iq_data_opts *opts,
                       iq_dataset **out);
void iq_data_free(iq_dataset *d);

/* Validates the rows of the files like iq_data_load and calls fn for each text segment a row would
 * encode (prompt, completion, text, template strings, assistant contents); used to train tokenizers.
 * Fills stats.rows, bad, blank and by_format. */
iq_status iq_data_scan_text(const char *const *paths, int n_paths, const iq_data_opts *opts,
                            void (*fn)(void *ctx, const char *s, size_t len), void *ctx, iq_data_stats *stats);

static inline size_t iq_data_row_len(const iq_dataset *d, size_t r) { return d->row_off[r + 1] - d->row_off[r]; }
const char *iq_row_format_name(iq_row_format f);

#endif
