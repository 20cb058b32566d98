/* util.h — status codes, error messages, small containers and file helpers.
 *
 * Every library function that can fail returns an iq_status and leaves a human-readable message in a
 * thread-local buffer (iq_last_error()). The status values are the sysexits-style codes of DESIGN §5,
 * so the CLI can exit with them unchanged; nothing in the library calls exit() except iq_oom(). */
#ifndef IQTRAIN_UTIL_H
#define IQTRAIN_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    IQ_OK = 0,
    IQ_EUSAGE = 64,      /* usage error or conflicting options */
    IQ_EDATA = 65,       /* bad data or corrupt input file */
    IQ_ENOINPUT = 66,    /* cannot open an input */
    IQ_EINTERNAL = 70,   /* internal error */
    IQ_ECANTCREAT = 73,  /* cannot create output */
    IQ_EIO = 74,         /* I/O error while writing */
    IQ_EDIVERGED = 75,   /* NaN/Inf during training */
} iq_status;

/* Sets the thread's last error message (printf-style) and returns `st`, so callers can write
 * `return iq_fail(IQ_EDATA, "%s:%zu: bad row", path, line);`. */
iq_status iq_fail(iq_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message of the last iq_fail on this thread ("" if none). */
const char *iq_last_error(void);
/* Prepends "prefix: " to the current message (used to add context on the way up). */
void iq_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Name of a status for messages ("bad data", ...). */
const char *iq_status_name(iq_status st);

/* Allocation that cannot fail: on out-of-memory prints a message and exits 70. Use for bounded sizes
 * computed by the program; sizes read from untrusted files are checked before they get here. */
void *iq_xmalloc(size_t n);
void *iq_xcalloc(size_t n, size_t size);
/* p[0..n) = 0 (n bytes), split across the threads from 256 KB (one thread's memset is a few % of a small
 * model's step); iq_zero (kernels.h) is the same for floats. */
void iq_zero_bytes(void *p, size_t n);
/* An arena of n x size zeroed bytes, aligned to a 64-byte cache line, every page written now (the first
 * training step pays no page faults); NULL when out of memory or n x size overflows; free() releases it.
 * malloc and calloc put large blocks 16 bytes past a page, so that every 64-byte AVX-512 load straddles two
 * cache lines: dnnl_sgemm measured 10-12% slower on such operands in some of the models' shapes (cold
 * caches, medians of 60: M 256 N 2304 K 768; the transposed-A products of config S). */
void *iq_arena_calloc(size_t n, size_t size);
/* The same, exiting 70 with the out-of-memory message on failure (sizes computed by the program). */
void *iq_arena_xcalloc(size_t n, size_t size);
/* n floats rounded up to whole 64-byte lines: the size of one entry of an arena, so that the next starts aligned */
static inline size_t iq_line_floats(size_t n) { return (n + 15) & ~(size_t)15; }
void *iq_xrealloc(void *p, size_t n);
char *iq_xstrdup(const char *s);
char *iq_xstrndup(const char *s, size_t n);
_Noreturn void iq_oom(size_t n);

/* ---------------------------------------------------------------- growable byte buffer */
typedef struct {
    char *data;  /* NUL-terminated when len > 0 or after iq_buf_cstr */
    size_t len;
    size_t cap;
} iq_buf;

void iq_buf_reserve(iq_buf *b, size_t extra);
void iq_buf_append(iq_buf *b, const void *p, size_t n);
void iq_buf_putc(iq_buf *b, char c);
void iq_buf_printf(iq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *iq_buf_cstr(iq_buf *b);
void iq_buf_free(iq_buf *b);

/* ---------------------------------------------------------------- growable id vector */
typedef struct {
    int32_t *v;
    size_t len;
    size_t cap;
} iq_ids;

void iq_ids_push(iq_ids *a, int32_t x);
void iq_ids_reserve(iq_ids *a, size_t extra);
void iq_ids_free(iq_ids *a);

/* ---------------------------------------------------------------- byte-string -> int map */
/* Open-addressing hash map from byte strings (copied in) to int32 values. */
typedef struct iq_strmap iq_strmap;
iq_strmap *iq_strmap_new(size_t expected);
void iq_strmap_free(iq_strmap *m);
/* Inserts or replaces; returns true if the key was new. */
bool iq_strmap_put(iq_strmap *m, const void *key, size_t len, int32_t value);
/* Returns true and sets *value when found. */
bool iq_strmap_get(const iq_strmap *m, const void *key, size_t len, int32_t *value);
size_t iq_strmap_size(const iq_strmap *m);

uint64_t iq_hash_bytes(const void *p, size_t n);

/* ---------------------------------------------------------------- files */
/* Reads a whole file. 66 when it cannot be opened or is a directory, 74 on read errors. */
iq_status iq_read_file(const char *path, char **data, size_t *len);
/* Reads and parses a JSON file (strict: nothing but whitespace after the value). 66 when it cannot be read,
 * 65 "PATH: invalid JSON near byte N". Free *out with cJSON_Delete. */
struct cJSON;
iq_status iq_read_json(const char *path, struct cJSON **out);
/* Writes a whole file atomically: temp file in the same folder, fsync, rename. 73/74 on failure. */
iq_status iq_write_file_atomic(const char *path, const void *data, size_t len);
/* A file written atomically piece by piece: iq_atomic_begin creates PATH.tmp-PID (73 on failure),
 * iq_atomic_write appends (the first error sticks), iq_atomic_commit fsyncs, renames onto PATH and fsyncs the
 * folder (74 on any error, the temp file removed). */
typedef struct {
    char *path, *tmp;
    int fd;
    int err; /* errno of the first failed write */
} iq_atomic_file;
iq_status iq_atomic_begin(iq_atomic_file *f, const char *path);
void iq_atomic_write(iq_atomic_file *f, const void *data, size_t n);
iq_status iq_atomic_commit(iq_atomic_file *f);
/* Writes a JSON document (formatted, with a final newline) atomically. */
iq_status iq_write_json(const char *path, const struct cJSON *j);
/* fsync of a file or folder by path (errors ignored: used after the data itself was fsynced). */
void iq_fsync_path(const char *path);
/* fsync of the folder holding path (after a rename into it). 74 when the folder cannot be synced. */
iq_status iq_fsync_parent(const char *path);
/* mkdir -p. 73 on failure. */
iq_status iq_mkdirs(const char *path);
bool iq_is_dir(const char *path);
bool iq_file_exists(const char *path);
/* path join into a malloc'd string */
char *iq_path_join(const char *a, const char *b);
/* The path of `name` in the folder that holds `file` ("dir/tokenizer.json" -> "dir/name"), malloc'd. */
char *iq_path_beside(const char *file, const char *name);

/* Monotonic seconds. */
double iq_now(void);

/* The shortest decimal that reads back as f, as a double (for JSON: 0.1f is written 0.1, not
 * 0.10000000149011612). */
double iq_short_float(float f);

/* Version and build facts, e.g. "0.1.0", "abc1234", "Release". */
const char *iq_version(void);
const char *iq_git_commit(void);
const char *iq_build_type(void);

#endif
