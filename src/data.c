/* data.c — demonstrations: reading JSONL/gzip lines, validating rows, building ids and supervision flags.
 *
 * Sections: line reader · row validation (what cJSON does not check) · the three row formats ·
 * loading whole files. */
#include "iqtrain/data.h"


#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "iqtrain/chat_format.h"
#include "iqtrain/log.h"
#include "iqtrain/unicode.h"

const char *iq_row_format_name(iq_row_format f) {
    switch (f) {
    case IQ_FMT_PROMPT: return "prompt/completion";
    case IQ_FMT_TEXT: return "text";
    case IQ_FMT_MESSAGES: return "messages";
    }
    return "?";
}

// ----------------------------------------------------------------------------------------------------
// byte source: a plain file, or gzip (by its magic bytes) decompressed member after member. zlib's gzread
// is not used because it silently ignores anything after the last gzip member that is not another
// member ("trailing garbage"): rows appended to a .gz file would vanish without a word.

typedef struct {
    int fd;
    const char *path;
    bool gzip;
    bool member_done; /* inflate reached the end of a member: what follows must be another member or EOF */
    bool in_eof;
    bool zs_init;
    z_stream zs;
    uint8_t *in;      /* compressed input (gzip) or the sniffed first bytes (plain) */
    size_t in_cap;
    size_t pending;   /* plain: sniffed bytes not yet handed out */
    uint64_t raw_pos; /* bytes of the file read so far (progress, messages) */
} byte_source;

static ssize_t read_full(int fd, void *buf, size_t n) {
    for (;;) {
        ssize_t k = read(fd, buf, n);
        if (k >= 0 || errno != EINTR) return k;
    }
}

static iq_status src_read_error(const byte_source *s) {
    return iq_fail(IQ_ENOINPUT, "%s: read error: %s", s->path, strerror(errno));
}

static iq_status src_open(byte_source *s, int fd, const char *path) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->path = path;
    s->in_cap = 1 << 17;
    s->in = iq_xmalloc(s->in_cap);
    size_t got = 0;
    while (got < 2) { /* the magic bytes: 1f 8b */
        ssize_t k = read_full(fd, s->in + got, 2 - got);
        if (k < 0) return src_read_error(s);
        if (k == 0) break;
        got += (size_t)k;
    }
    s->raw_pos = got;
    if (got == 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
        s->gzip = true;
        if (inflateInit2(&s->zs, 15 + 16) != Z_OK) return iq_fail(IQ_EINTERNAL, "%s: cannot initialize zlib", path);
        s->zs_init = true;
        s->zs.next_in = s->in;
        s->zs.avail_in = (uInt)got;
    } else {
        s->pending = got;
        s->in_eof = got < 2;
    }
    return IQ_OK;
}

static void src_close(byte_source *s) {
    if (s->zs_init) inflateEnd(&s->zs);
    free(s->in);
    close(s->fd);
}

/* Reads up to n bytes of (decompressed) data: > 0 bytes, 0 at the end, -1 on error (message set, *st). */
static ssize_t src_read(byte_source *s, uint8_t *buf, size_t n, iq_status *st) {
    if (!s->gzip) {
        if (s->pending) {
            size_t k = s->pending < n ? s->pending : n;
            memcpy(buf, s->in, k);
            memmove(s->in, s->in + k, s->pending - k);
            s->pending -= k;
            return (ssize_t)k;
        }
        if (s->in_eof) return 0;
        ssize_t k = read_full(s->fd, buf, n);
        if (k < 0) {
            *st = src_read_error(s);
            return -1;
        }
        if (k == 0) s->in_eof = true;
        s->raw_pos += (uint64_t)k;
        return k;
    }
    if (n > UINT_MAX) n = UINT_MAX;
    for (;;) {
        if (s->zs.avail_in == 0 && !s->in_eof) {
            ssize_t k = read_full(s->fd, s->in, s->in_cap);
            if (k < 0) {
                *st = src_read_error(s);
                return -1;
            }
            if (k == 0) s->in_eof = true;
            s->raw_pos += (uint64_t)k;
            s->zs.next_in = s->in;
            s->zs.avail_in = (uInt)k;
        }
        if (s->member_done) {
            if (s->zs.avail_in == 0) {
                if (s->in_eof) return 0;
                continue;
            }
            /* another member (inflate checks its whole header) or data that does not belong there */
            if (s->zs.next_in[0] != 0x1f) {
                *st = iq_fail(IQ_EDATA, "%s: data after the end of the gzip stream at byte %llu (not a gzip member)",
                              s->path, (unsigned long long)(s->raw_pos - s->zs.avail_in));
                return -1;
            }
            inflateReset(&s->zs);
            s->member_done = false;
        }
        if (s->zs.avail_in == 0 && s->in_eof) {
            *st = iq_fail(IQ_EDATA, "%s: truncated gzip stream (unexpected end of file)", s->path);
            return -1;
        }
        s->zs.next_out = buf;
        s->zs.avail_out = (uInt)n;
        int ret = inflate(&s->zs, Z_NO_FLUSH);
        size_t produced = n - s->zs.avail_out;
        if (ret == Z_STREAM_END) s->member_done = true;
        else if (ret == Z_MEM_ERROR) iq_oom(0);
        else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            *st = iq_fail(IQ_EDATA, "%s: corrupt gzip stream: %s (near byte %llu)", s->path,
                          s->zs.msg ? s->zs.msg : "invalid data", (unsigned long long)(s->raw_pos - s->zs.avail_in));
            return -1;
        }
        if (produced > 0) return (ssize_t)produced;
    }
}

// ----------------------------------------------------------------------------------------------------
// line reader over a byte source

typedef struct {
    byte_source src;
    char *buf;
    size_t cap, start, end, scan;
    bool eof;
    iq_status err; /* set when lr_next returns -1 */
} line_reader;

/* 1 = a line (NUL-terminated in place), 0 = end of file, -1 = read error (message set). */
static int lr_next(line_reader *r, char **line, size_t *len) {
    for (;;) {
        char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line);
            *nl = 0;
            r->start = r->scan = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        r->scan = r->end;
        if (r->eof) {
            if (r->start < r->end) {
                *line = r->buf + r->start;
                *len = r->end - r->start;
                r->buf[r->end] = 0; /* there is always room: reads leave one byte */
                r->start = r->scan = r->end;
                return 1;
            }
            return 0;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->scan -= r->start;
            r->start = 0;
        }
        if (r->cap - r->end < (1 << 16) + 1) {
            r->cap *= 2;
            r->buf = iq_xrealloc(r->buf, r->cap);
        }
        ssize_t n = src_read(&r->src, (uint8_t *)r->buf + r->end, r->cap - r->end - 1, &r->err);
        if (n < 0) return -1;
        if (n == 0) r->eof = true;
        r->end += (size_t)n;
    }
}

// ----------------------------------------------------------------------------------------------------
// row validation: what cJSON does not check

static int hex4(const char *s, unsigned *v) {
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *v = x;
    return 1;
}

/* Length of an RFC 8259 number at s (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), 0 if malformed. */
static size_t json_number_len(const char *s, size_t n) {
    size_t i = 0;
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')
    if (i < n && s[i] == '-') i++;
    if (!DIGIT(i)) return 0;
    if (s[i] == '0') i++;
    else
        while (DIGIT(i)) i++;
    if (i < n && s[i] == '.') {
        i++;
        if (!DIGIT(i)) return 0;
        while (DIGIT(i)) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!DIGIT(i)) return 0;
        while (DIGIT(i)) i++;
    }
    if (DIGIT(i) || (i < n && s[i] == '.')) return 0; /* "01", "1.2.3" */
#undef DIGIT
    return i;
}

/* What cJSON does not check (it is lenient where JSON is strict, and cuts strings at \u0000):
 * control characters (raw ones in strings; outside strings anything but space, tab and CR), the number
 * grammar ("01", "1." are not JSON), \u0000 and lone surrogates. Other malformed input is left for
 * cJSON to report. Returns false with a reason. */
static bool check_json_text(const char *s, size_t n, iq_buf *reason) {
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (!in_str) {
            if (c == '"') {
                in_str = true;
            } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\r') {
                iq_buf_printf(reason, "invalid JSON at column %zu (control character 0x%02X)", i + 1, c);
                return false;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                size_t k = json_number_len(s + i, n - i);
                if (k == 0) {
                    iq_buf_printf(reason, "invalid JSON at column %zu (malformed number)", i + 1);
                    return false;
                }
                i += k - 1;
            }
            continue;
        }
        if (c == '"') {
            in_str = false;
            continue;
        }
        if (c < 0x20) {
            iq_buf_printf(reason, "invalid JSON at column %zu (control character 0x%02X in a string: write it as \\u%04X)",
                          i + 1, c, c);
            return false;
        }
        if (c != '\\') continue;
        if (i + 1 >= n) return true;
        if (s[++i] != 'u') continue;
        unsigned v, w;
        if (i + 4 >= n || !hex4(s + i + 1, &v)) return true;
        i += 4;
        if (v == 0) {
            iq_buf_printf(reason, "NUL character (\\u0000) in a string");
            return false;
        }
        if (v >= 0xDC00 && v <= 0xDFFF) {
            iq_buf_printf(reason, "lone surrogate \\u%04X in a string", v);
            return false;
        }
        if (v >= 0xD800 && v <= 0xDBFF) {
            if (i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u' && hex4(s + i + 3, &w) && w >= 0xDC00 && w <= 0xDFFF) {
                i += 6;
            } else {
                iq_buf_printf(reason, "lone surrogate \\u%04X in a string", v);
                return false;
            }
        }
    }
    return true;
}

/* Duplicate keys in one object (cJSON keeps both silently). */
static bool check_duplicate_keys(const cJSON *obj, const char *where, iq_buf *reason) {
    int n = 0;
    for (const cJSON *a = obj->child; a; a = a->next) n++;
    if (n <= 16) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) {
                    iq_buf_printf(reason, "duplicate key \"%s\"%s", a->string, where);
                    return false;
                }
        return true;
    }
    iq_strmap *m = iq_strmap_new((size_t)n);
    bool ok = true;
    for (const cJSON *a = obj->child; a && ok; a = a->next) {
        if (!iq_strmap_put(m, a->string, strlen(a->string), 0)) {
            iq_buf_printf(reason, "duplicate key \"%s\"%s", a->string, where);
            ok = false;
        }
    }
    iq_strmap_free(m);
    return ok;
}

// ----------------------------------------------------------------------------------------------------
// the three row formats, as a sequence of segments: text to encode (ordinary text), or EOS

typedef struct {
    void (*text)(void *ctx, const char *s, size_t len, uint8_t flags);
    void (*eos)(void *ctx, uint8_t flags);
    /* NULL, or a messages row as a whole (a chat template renders it): called instead of text and eos */
    iq_row_result (*messages)(void *ctx, const cJSON *msgs, iq_buf *reason);
    void *ctx;
} seg_sink;

static const cJSON *get_key(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* The checks a messages row passes before anything is emitted: an array of objects without duplicate keys,
 * with an assistant turn. plain (DESIGN §3's format): each with a string "role" (system, user or assistant)
 * and a string "content"; with a chat template only a string "role" (the template decides what else it
 * accepts: other roles, tool calls). */
static iq_row_result check_messages(const cJSON *msgs, bool plain, iq_buf *reason) {
    if (!cJSON_IsArray(msgs)) {
        iq_buf_printf(reason, "\"messages\" is not an array");
        return IQ_ROW_BAD;
    }
    int k = 0, n_assistant = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, k++) {
        char where[64];
        snprintf(where, sizeof where, " in message %d", k);
        if (!cJSON_IsObject(m)) {
            iq_buf_printf(reason, "message %d is not an object", k);
            return IQ_ROW_BAD;
        }
        if (!check_duplicate_keys(m, where, reason)) return IQ_ROW_BAD;
        const cJSON *role = get_key(m, "role"), *content = get_key(m, "content");
        if (plain && (!role || !content)) {
            iq_buf_printf(reason, "message %d has no \"%s\"", k, role ? "content" : "role");
            return IQ_ROW_BAD;
        }
        if (plain && (!cJSON_IsString(role) || !cJSON_IsString(content))) {
            iq_buf_printf(reason, "\"%s\" of message %d is not a string", cJSON_IsString(role) ? "content" : "role", k);
            return IQ_ROW_BAD;
        }
        if (!cJSON_IsString(role)) {
            iq_buf_printf(reason, "message %d has no string \"role\"", k);
            return IQ_ROW_BAD;
        }
        const char *r = role->valuestring;
        if (strcmp(r, "assistant") == 0) n_assistant++;
        else if (plain && strcmp(r, "system") != 0 && strcmp(r, "user") != 0) {
            iq_buf_printf(reason, "unknown role \"%s\" in message %d (expected system, user or assistant)", r, k);
            return IQ_ROW_BAD;
        }
    }
    if (n_assistant == 0) {
        iq_buf_printf(reason, "no assistant turn in \"messages\"");
        return IQ_ROW_BAD;
    }
    return IQ_ROW_OK;
}

/* DESIGN §3's format of a checked messages row. */
static void emit_plain_messages(const cJSON *msgs, const seg_sink *out) {
    int n_assistant = 0;
    for (const cJSON *m = msgs->child; m; m = m->next) n_assistant += strcmp(get_key(m, "role")->valuestring, "assistant") == 0;
    iq_buf text = {0};
    for (const cJSON *m = msgs->child; m && n_assistant > 0; m = m->next) {
        const char *r = get_key(m, "role")->valuestring, *c = get_key(m, "content")->valuestring;
        if (strcmp(r, "assistant") == 0) {
            iq_buf_append(&text, "assistant: ", 11);
            out->text(out->ctx, text.data, text.len, 0);
            text.len = 0;
            out->text(out->ctx, c, strlen(c), IQ_TOK_SUPERVISED);
            out->eos(out->ctx, IQ_TOK_SUPERVISED | IQ_TOK_TERMINAL);
            n_assistant--;
        } else {
            iq_buf_printf(&text, "%s: %s\n", r, c);
        }
    }
    /* text after the last assistant turn supervises nothing: dropped */
    iq_buf_free(&text);
}

/* Validates one line and emits its segments. Returns OK, BLANK or BAD (with a reason). */
static iq_row_result parse_row(char *line, size_t len, bool first_line, const seg_sink *out, iq_row_format *format,
                               iq_buf *reason) {
    if (first_line && len >= 3 && (uint8_t)line[0] == 0xEF && (uint8_t)line[1] == 0xBB && (uint8_t)line[2] == 0xBF) {
        line += 3;
        len -= 3;
    }
    if (len > 0 && line[len - 1] == '\r') len--;
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (k == len) return IQ_ROW_BLANK;

    iq_row_result res = IQ_ROW_BAD;
    cJSON *root = NULL;
    size_t bad;
    const char *nul = memchr(line, 0, len);
    if (nul) {
        iq_buf_printf(reason, "NUL byte at column %zu", (size_t)(nul - line) + 1);
        goto done;
    }
    if (!iq_utf8_valid((const uint8_t *)line, len, &bad)) {
        iq_buf_printf(reason, "invalid UTF-8 at column %zu (byte 0x%02X)", bad + 1, (uint8_t)line[bad]);
        goto done;
    }
    if (!check_json_text(line, len, reason)) goto done;
    const char *end = NULL;
    char saved = line[len];
    line[len] = 0;
    root = cJSON_ParseWithLengthOpts(line, len + 1, &end, 1);
    line[len] = saved;
    if (!root) {
        iq_buf_printf(reason, "invalid JSON at column %zu", end ? (size_t)(end - line) + 1 : (size_t)1);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        iq_buf_printf(reason, "row is not a JSON object");
        goto done;
    }
    if (!check_duplicate_keys(root, "", reason)) goto done;

    const cJSON *prompt = get_key(root, "prompt"), *completion = get_key(root, "completion");
    const cJSON *text = get_key(root, "text"), *messages = get_key(root, "messages");
    int formats = (prompt || completion) + (text != NULL) + (messages != NULL);
    if (formats > 1) {
        iq_buf_printf(reason, "mixed formats in one row (use exactly one of prompt/completion, text, messages)");
        goto done;
    }
    if (formats == 0) {
        iq_buf_printf(reason, "no \"prompt\"/\"completion\", \"text\" or \"messages\" field");
        goto done;
    }
    if (prompt || completion) {
        *format = IQ_FMT_PROMPT;
        if (!prompt || !completion) {
            iq_buf_printf(reason, "missing \"%s\" field", prompt ? "completion" : "prompt");
            goto done;
        }
        if (!cJSON_IsString(prompt) || !cJSON_IsString(completion)) {
            iq_buf_printf(reason, "\"%s\" is not a string", cJSON_IsString(prompt) ? "completion" : "prompt");
            goto done;
        }
        if (prompt->valuestring[0] == 0) out->eos(out->ctx, 0); /* EOS as BOS */
        else out->text(out->ctx, prompt->valuestring, strlen(prompt->valuestring), 0);
        out->text(out->ctx, completion->valuestring, strlen(completion->valuestring), IQ_TOK_SUPERVISED);
        out->eos(out->ctx, IQ_TOK_SUPERVISED | IQ_TOK_TERMINAL);
    } else if (text) {
        *format = IQ_FMT_TEXT;
        if (!cJSON_IsString(text)) {
            iq_buf_printf(reason, "\"text\" is not a string");
            goto done;
        }
        out->eos(out->ctx, 0);
        out->text(out->ctx, text->valuestring, strlen(text->valuestring), IQ_TOK_SUPERVISED);
        out->eos(out->ctx, IQ_TOK_SUPERVISED | IQ_TOK_TERMINAL);
    } else {
        *format = IQ_FMT_MESSAGES;
        if (check_messages(messages, out->messages == NULL, reason) != IQ_ROW_OK) goto done;
        if (!out->messages) emit_plain_messages(messages, out);
        else if (out->messages(out->ctx, messages, reason) != IQ_ROW_OK) goto done;
    }
    res = IQ_ROW_OK;
done:
    cJSON_Delete(root);
    return res;
}

// ----------------------------------------------------------------------------------------------------
// rows -> ids

typedef struct {
    const iq_tokenizer *tok;
    const iq_chat_format *chat;
    iq_row *row;
} encode_ctx;

static void enc_text(void *ctx, const char *s, size_t len, uint8_t flags) {
    encode_ctx *c = ctx;
    size_t before = c->row->ids.len;
    iq_tok_encode(c->tok, s, len, &c->row->ids);
    for (size_t i = before; i < c->row->ids.len; i++) iq_buf_putc(&c->row->flags, (char)flags);
}

static void enc_eos(void *ctx, uint8_t flags) {
    encode_ctx *c = ctx;
    iq_ids_push(&c->row->ids, iq_tok_eos(c->tok));
    iq_buf_putc(&c->row->flags, (char)flags);
}

static iq_row_result enc_messages(void *ctx, const cJSON *msgs, iq_buf *reason) {
    encode_ctx *c = ctx;
    return iq_chat_format_encode(c->chat, c->tok, msgs, &c->row->ids, &c->row->flags, reason);
}

iq_row_result iq_data_encode_row(const iq_tokenizer *tok, const iq_chat_format *chat, char *line, size_t len,
                                 bool first_line, int32_t max_seq_len, iq_row *row, iq_buf *reason) {
    iq_buf dummy = {0};
    if (!reason) reason = &dummy;
    reason->len = 0;
    row->ids.len = 0;
    row->flags.len = 0;
    row->truncated = false;
    row->format = IQ_FMT_PROMPT;
    encode_ctx ctx = {tok, chat, row};
    seg_sink sink = {enc_text, enc_eos, chat ? enc_messages : NULL, &ctx};
    iq_row_result res = parse_row(line, len, first_line, &sink, &row->format, reason);
    iq_buf_free(&dummy);
    if (res != IQ_ROW_OK) {
        row->ids.len = row->flags.len = 0;
        return res;
    }
    /* truncation keeps the start; then drop tokens after the last supervised one */
    size_t n = row->ids.len;
    if (max_seq_len > 0 && n > (size_t)max_seq_len) {
        n = (size_t)max_seq_len;
        row->truncated = true;
    }
    while (n > 0 && !(row->flags.data[n - 1] & IQ_TOK_SUPERVISED)) n--;
    row->ids.len = row->flags.len = n;
    return n > 0 ? IQ_ROW_OK : IQ_ROW_SKIPPED;
}

void iq_row_free(iq_row *row) {
    iq_ids_free(&row->ids);
    iq_buf_free(&row->flags);
}

// ----------------------------------------------------------------------------------------------------
// loading whole files

typedef struct {
    iq_ids ids;
    iq_buf flags;
    size_t *off, n, cap;
    uint8_t *row_flags, *row_format;
    uint32_t *row_file;
    uint64_t *row_line;
} builder;

static void builder_add(builder *b, const iq_row *row, uint32_t file, uint64_t line) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->off = iq_xrealloc(b->off, (b->cap + 1) * sizeof *b->off);
        b->row_flags = iq_xrealloc(b->row_flags, b->cap);
        b->row_format = iq_xrealloc(b->row_format, b->cap);
        b->row_file = iq_xrealloc(b->row_file, b->cap * sizeof *b->row_file);
        b->row_line = iq_xrealloc(b->row_line, b->cap * sizeof *b->row_line);
    }
    if (b->n == 0) b->off[0] = 0;
    iq_ids_reserve(&b->ids, row->ids.len);
    memcpy(b->ids.v + b->ids.len, row->ids.v, row->ids.len * sizeof *row->ids.v);
    b->ids.len += row->ids.len;
    iq_buf_append(&b->flags, row->flags.data, row->flags.len);
    b->row_flags[b->n] = row->truncated ? IQ_ROW_TRUNCATED : 0;
    b->row_format[b->n] = (uint8_t)row->format;
    b->row_file[b->n] = file;
    b->row_line[b->n] = line;
    b->n++;
    b->off[b->n] = b->ids.len;
}

typedef iq_status (*line_fn)(void *ctx, const char *path, uint32_t file_index, char *line, size_t len,
                              uint64_t lineno);

/* Calls fn for every line of a file (plain or gzip). */
static iq_status for_each_line(const char *path, uint32_t file_index, bool progress, line_fn fn, void *ctx) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return iq_fail(IQ_ENOINPUT, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
        close(fd);
        return iq_fail(IQ_ENOINPUT, "%s: is a directory or cannot be read", path);
    }
    line_reader r = {0};
    iq_status st = src_open(&r.src, fd, path);
    if (st) {
        src_close(&r.src);
        return st;
    }
    r.cap = 1 << 18;
    r.buf = iq_xmalloc(r.cap);
    uint64_t lineno = 0;
    double t_last = iq_now();
    bool big = progress && sb.st_size > (16 << 20);
    char *line;
    size_t len;
    int got;
    while ((got = lr_next(&r, &line, &len)) == 1) {
        lineno++;
        st = fn(ctx, path, file_index, line, len, lineno);
        if (st) break;
        if (big && (lineno & 1023) == 0 && iq_now() - t_last > 1.0) {
            t_last = iq_now();
            iq_progress("reading %s: %llu lines, %.1f/%.1f MB", path, (unsigned long long)lineno,
                        (double)r.src.raw_pos / 1e6, (double)sb.st_size / 1e6);
        }
    }
    if (got < 0) st = r.err;
    if (big) iq_progress_end();
    src_close(&r.src);
    free(r.buf);
    return st;
}

static iq_status bad_row(const iq_data_opts *o, iq_data_stats *stats, const char *path, uint64_t lineno, iq_buf *reason) {
    if (!o->skip_bad_rows) return iq_fail(IQ_EDATA, "%s:%llu: %s", path, (unsigned long long)lineno, iq_buf_cstr(reason));
    if (stats->bad < 5 || o->warn_every_bad_row) iq_warn("%s:%llu: %s (skipped)", path, (unsigned long long)lineno, iq_buf_cstr(reason));
    stats->bad++;
    return IQ_OK;
}

typedef struct {
    const iq_tokenizer *tok;
    const iq_data_opts *o;
    builder *b;
    iq_data_stats *stats;
    iq_row row;
    iq_buf reason;
} load_ctx;

static iq_status load_line(void *vctx, const char *path, uint32_t file_index, char *line, size_t len, uint64_t lineno) {
    load_ctx *c = vctx;
    iq_data_stats *stats = c->stats;
    iq_row_result res = iq_data_encode_row(c->tok, c->o->chat, line, len, lineno == 1, c->o->max_seq_len, &c->row, &c->reason);
    if (res == IQ_ROW_BLANK) {
        stats->blank++;
    } else if (res == IQ_ROW_SKIPPED) {
        stats->skipped++;
    } else if (res == IQ_ROW_BAD) {
        return bad_row(c->o, stats, path, lineno, &c->reason);
    } else {
        builder_add(c->b, &c->row, file_index, lineno);
        size_t sup = 0;
        for (size_t i = 0; i < c->row.flags.len; i++) sup += (c->row.flags.data[i] & IQ_TOK_SUPERVISED) != 0;
        stats->rows++;
        stats->tokens += c->row.ids.len;
        stats->supervised += sup;
        stats->truncated += c->row.truncated;
        stats->by_format[c->row.format]++;
        if (c->row.ids.len > stats->max_len) stats->max_len = c->row.ids.len;
    }
    return IQ_OK;
}

iq_status iq_data_load(const char *const *paths, int n_paths, const iq_tokenizer *tok, const iq_data_opts *opts,
                       iq_dataset **out) {
    *out = NULL;
    if (iq_tok_eos(tok) < 0) return iq_fail(IQ_EDATA, "%s: the tokenizer has no %s token", iq_tok_source(tok), IQ_EOS_TEXT);
    if (n_paths <= 0) return iq_fail(IQ_EUSAGE, "no data files given");
    iq_data_opts o = opts ? *opts : (iq_data_opts){0};
    builder b = {0};
    iq_data_stats stats = {0};
    iq_status st = IQ_OK;
    load_ctx ctx = {.tok = tok, .o = &o, .b = &b, .stats = &stats};
    for (int i = 0; i < n_paths && !st; i++) st = for_each_line(paths[i], (uint32_t)i, o.progress, load_line, &ctx);
    iq_row_free(&ctx.row);
    iq_buf_free(&ctx.reason);
    if (!st && stats.rows == 0)
        st = iq_fail(IQ_EDATA, "no usable rows in the data (%zu bad, %zu skipped as too long, %zu blank lines)", stats.bad,
                     stats.skipped, stats.blank);
    if (st) {
        iq_ids_free(&b.ids);
        iq_buf_free(&b.flags);
        free(b.off);
        free(b.row_flags);
        free(b.row_format);
        free(b.row_file);
        free(b.row_line);
        return st;
    }
    iq_dataset *d = iq_xcalloc(1, sizeof *d);
    d->n_rows = b.n;
    d->ids = b.ids.v;
    d->tok_flags = (uint8_t *)b.flags.data;
    d->row_off = b.off;
    d->row_flags = b.row_flags;
    d->row_format = b.row_format;
    d->row_file = b.row_file;
    d->row_line = b.row_line;
    d->n_files = n_paths;
    d->files = iq_xcalloc((size_t)n_paths, sizeof *d->files);
    for (int i = 0; i < n_paths; i++) d->files[i] = iq_xstrdup(paths[i]);
    d->stats = stats;
    *out = d;
    return IQ_OK;
}

void iq_data_free(iq_dataset *d) {
    if (!d) return;
    free(d->ids);
    free(d->tok_flags);
    free(d->row_off);
    free(d->row_flags);
    free(d->row_format);
    free(d->row_file);
    free(d->row_line);
    for (int i = 0; i < d->n_files; i++) free(d->files[i]);
    free(d->files);
    free(d);
}

// ----------------------------------------------------------------------------------------------------
// text segments only (tokenizer training)

typedef struct {
    const iq_data_opts *o;
    iq_data_stats *stats;
    void (*fn)(void *ctx, const char *s, size_t len);
    void *ctx;
    iq_buf reason;
} scan_ctx;

static void scan_text(void *ctx, const char *s, size_t len, uint8_t flags) {
    (void)flags;
    scan_ctx *c = ctx;
    if (len) c->fn(c->ctx, s, len);
}

static void scan_eos(void *ctx, uint8_t flags) {
    (void)ctx;
    (void)flags;
}

static iq_status scan_line(void *vctx, const char *path, uint32_t file_index, char *line, size_t len, uint64_t lineno) {
    (void)file_index;
    scan_ctx *c = vctx;
    c->reason.len = 0;
    /* parse_row validates the whole row before it emits anything, so bad rows add no text */
    iq_row_format fmt;
    seg_sink sink = {scan_text, scan_eos, NULL, c};
    iq_row_result res = parse_row(line, len, lineno == 1, &sink, &fmt, &c->reason);
    if (res == IQ_ROW_BLANK) c->stats->blank++;
    else if (res == IQ_ROW_BAD) return bad_row(c->o, c->stats, path, lineno, &c->reason);
    else {
        c->stats->rows++;
        c->stats->by_format[fmt]++;
    }
    return IQ_OK;
}

iq_status iq_data_scan_text(const char *const *paths, int n_paths, const iq_data_opts *opts,
                            void (*fn)(void *ctx, const char *s, size_t len), void *ctx, iq_data_stats *stats) {
    iq_data_opts o = opts ? *opts : (iq_data_opts){0};
    memset(stats, 0, sizeof *stats);
    scan_ctx c = {.o = &o, .stats = stats, .fn = fn, .ctx = ctx};
    iq_status st = IQ_OK;
    for (int i = 0; i < n_paths && !st; i++) st = for_each_line(paths[i], (uint32_t)i, o.progress, scan_line, &c);
    iq_buf_free(&c.reason);
    if (!st && stats->rows == 0) st = iq_fail(IQ_EDATA, "no usable rows in the data (%zu bad)", stats->bad);
    return st;
}
