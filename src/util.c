/* util.c — status and error messages, containers, file helpers. */
#include "iqtrain/util.h"

#include "iqtrain/fault.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ----------------------------------------------------------------------------------------------------
// errors

static _Thread_local char g_err[2048];

iq_status iq_fail(iq_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}

const char *iq_last_error(void) { return g_err; }

void iq_error_prefix(const char *fmt, ...) {
    char pre[1024], old[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_err, sizeof old);
    size_t lp = strlen(pre);
    if (lp > sizeof g_err - 3) lp = sizeof g_err - 3;
    memcpy(g_err, pre, lp);
    g_err[lp] = ':';
    g_err[lp + 1] = ' ';
    size_t lo = strlen(old);
    if (lo > sizeof g_err - lp - 3) lo = sizeof g_err - lp - 3;
    memcpy(g_err + lp + 2, old, lo);
    g_err[lp + 2 + lo] = 0;
}

const char *iq_status_name(iq_status st) {
    switch (st) {
    case IQ_OK: return "ok";
    case IQ_EUSAGE: return "usage error";
    case IQ_EDATA: return "bad data";
    case IQ_ENOINPUT: return "cannot open input";
    case IQ_EINTERNAL: return "internal error";
    case IQ_ECANTCREAT: return "cannot create output";
    case IQ_EIO: return "I/O error";
    case IQ_EDIVERGED: return "diverged";
    }
    return "error";
}

// ----------------------------------------------------------------------------------------------------
// allocation

_Noreturn void iq_oom(size_t n) {
    fprintf(stderr, "iqtrain: out of memory allocating %zu bytes\n", n);
    exit(IQ_EINTERNAL);
}

void *iq_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) iq_oom(n);
    return p;
}

void *iq_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) iq_oom(n * size);
    return p;
}

void iq_zero_bytes(void *p, size_t n) {
#pragma omp parallel if (n >= (1u << 18))
    {
        size_t nt = (size_t)omp_get_num_threads(), it = (size_t)omp_get_thread_num();
        size_t i0 = n * it / nt, i1 = n * (it + 1) / nt;
        memset((char *)p + i0, 0, i1 - i0);
    }
}

void *iq_arena_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size > 0 ? n * size : 1;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    iq_zero_bytes(p, bytes); /* zeroed, and every page mapped, by all the threads: a few GB take a second on one */
    return p;
}

void *iq_arena_xcalloc(size_t n, size_t size) {
    void *p = iq_arena_calloc(n, size);
    if (!p) iq_oom(n * size);
    return p;
}

void *iq_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) iq_oom(n);
    return q;
}

char *iq_xstrdup(const char *s) { return iq_xstrndup(s, strlen(s)); }

char *iq_xstrndup(const char *s, size_t n) {
    char *p = iq_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

// ----------------------------------------------------------------------------------------------------
// buffers

void iq_buf_reserve(iq_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = iq_xrealloc(b->data, cap);
    b->cap = cap;
}

void iq_buf_append(iq_buf *b, const void *p, size_t n) {
    iq_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void iq_buf_putc(iq_buf *b, char c) { iq_buf_append(b, &c, 1); }

void iq_buf_printf(iq_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        iq_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

const char *iq_buf_cstr(iq_buf *b) {
    iq_buf_reserve(b, 0);
    b->data[b->len] = 0;
    return b->data;
}

void iq_buf_free(iq_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void iq_ids_reserve(iq_ids *a, size_t extra) {
    if (a->len + extra <= a->cap) return;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < a->len + extra) cap *= 2;
    a->v = iq_xrealloc(a->v, cap * sizeof *a->v);
    a->cap = cap;
}

void iq_ids_push(iq_ids *a, int32_t x) {
    if (a->len == a->cap) iq_ids_reserve(a, 1);
    a->v[a->len++] = x;
}

void iq_ids_free(iq_ids *a) {
    free(a->v);
    a->v = NULL;
    a->len = a->cap = 0;
}

// ----------------------------------------------------------------------------------------------------
// string map: open addressing, linear probing, keys copied into one growing pool

struct iq_strmap {
    size_t *slot_off;   /* (cap) offset+1 into pool of the key record, 0 = empty */
    size_t cap, size;
    char *pool;          /* records: [u32 len][i32 value][u64 hash][len bytes] */
    size_t pool_len, pool_cap;
};

typedef struct {
    uint32_t len;
    int32_t value;
    uint64_t hash;
} strmap_rec;

uint64_t iq_hash_bytes(const void *p, size_t n) {
    /* FNV-1a 64 with a final avalanche; fast enough for short keys */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

iq_strmap *iq_strmap_new(size_t expected) {
    iq_strmap *m = iq_xcalloc(1, sizeof *m);
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->cap = cap;
    m->slot_off = iq_xcalloc(cap, sizeof *m->slot_off);
    return m;
}

void iq_strmap_free(iq_strmap *m) {
    if (!m) return;
    free(m->slot_off);
    free(m->pool);
    free(m);
}

static strmap_rec *strmap_rec_at(const iq_strmap *m, size_t off) { return (strmap_rec *)(m->pool + off); }

static size_t strmap_find(const iq_strmap *m, const void *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        size_t off = m->slot_off[i];
        if (!off) return i;
        strmap_rec *r = strmap_rec_at(m, off - 1);
        if (r->hash == h && r->len == len && memcmp(r + 1, key, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

static void strmap_grow(iq_strmap *m) {
    size_t ncap = m->cap * 2;
    size_t *ns = iq_xcalloc(ncap, sizeof *ns);
    for (size_t i = 0; i < m->cap; i++) {
        size_t off = m->slot_off[i];
        if (!off) continue;
        strmap_rec *r = strmap_rec_at(m, off - 1);
        size_t j = r->hash & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = off;
    }
    free(m->slot_off);
    m->slot_off = ns;
    m->cap = ncap;
}

bool iq_strmap_put(iq_strmap *m, const void *key, size_t len, int32_t value) {
    uint64_t h = iq_hash_bytes(key, len);
    size_t i = strmap_find(m, key, len, h);
    if (m->slot_off[i]) {
        strmap_rec_at(m, m->slot_off[i] - 1)->value = value;
        return false;
    }
    size_t need = (sizeof(strmap_rec) + len + 7) & ~(size_t)7;
    if (m->pool_len + need > m->pool_cap) {
        size_t cap = m->pool_cap ? m->pool_cap : 4096;
        while (cap < m->pool_len + need) cap *= 2;
        m->pool = iq_xrealloc(m->pool, cap);
        m->pool_cap = cap;
    }
    strmap_rec *r = (strmap_rec *)(m->pool + m->pool_len);
    r->len = (uint32_t)len;
    r->value = value;
    r->hash = h;
    memcpy(r + 1, key, len);
    m->slot_off[i] = m->pool_len + 1;
    m->pool_len += need;
    m->size++;
    if (m->size * 2 > m->cap) strmap_grow(m);
    return true;
}

bool iq_strmap_get(const iq_strmap *m, const void *key, size_t len, int32_t *value) {
    uint64_t h = iq_hash_bytes(key, len);
    size_t i = strmap_find(m, key, len, h);
    if (!m->slot_off[i]) return false;
    if (value) *value = strmap_rec_at(m, m->slot_off[i] - 1)->value;
    return true;
}

size_t iq_strmap_size(const iq_strmap *m) { return m->size; }

// ----------------------------------------------------------------------------------------------------
// files

bool iq_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool iq_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *iq_path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    bool slash = la > 0 && a[la - 1] != '/';
    char *p = iq_xmalloc(la + lb + 2);
    memcpy(p, a, la);
    if (slash) p[la++] = '/';
    memcpy(p + la, b, lb + 1);
    return p;
}

char *iq_path_beside(const char *file, const char *name) {
    const char *slash = strrchr(file, '/');
    char *dir = slash ? iq_xstrndup(file, (size_t)(slash - file) + (slash == file)) : iq_xstrdup(".");
    char *path = iq_path_join(dir, name);
    free(dir);
    return path;
}

iq_status iq_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    if (iq_is_dir(path)) return iq_fail(IQ_ENOINPUT, "%s: is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f) return iq_fail(IQ_ENOINPUT, "%s: %s", path, strerror(errno));
    iq_buf b = {0};
    char tmp[1 << 16];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) iq_buf_append(&b, tmp, n);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        iq_buf_free(&b);
        return iq_fail(IQ_ENOINPUT, "%s: read error: %s", path, strerror(e));
    }
    fclose(f);
    iq_buf_reserve(&b, 0);
    b.data[b.len] = 0; /* always NUL-terminated, so text parsers can rely on it */
    *data = b.data;
    *len = b.len;
    return IQ_OK;
}

iq_status iq_read_json(const char *path, cJSON **out) {
    *out = NULL;
    char *data;
    size_t len;
    iq_status st = iq_read_file(path, &data, &len);
    if (st) return st;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len + 1, &end, 1); /* + the NUL iq_read_file adds */
    size_t off = end ? (size_t)(end - data) : 0;
    free(data);
    if (!j) return iq_fail(IQ_EDATA, "%s: invalid JSON near byte %zu", path, off);
    *out = j;
    return IQ_OK;
}

void iq_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

iq_status iq_fsync_parent(const char *path) {
    char *dir = iq_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) slash[1] = 0;
    else *slash = 0;
    iq_status rc = IQ_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
            rc = iq_fail(IQ_EIO, "%s: fsync of directory %s failed: %s", path, dir, strerror(errno));
        close(fd);
    }
    free(dir);
    return rc;
}

iq_status iq_atomic_begin(iq_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    size_t pl = strlen(path);
    f->path = iq_xstrdup(path);
    f->tmp = iq_xmalloc(pl + 32);
    snprintf(f->tmp, pl + 32, "%s.tmp-%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd >= 0) return IQ_OK;
    iq_status st = iq_fail(IQ_ECANTCREAT, "%s: cannot create %s: %s", path, f->tmp, strerror(errno));
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    return st;
}

void iq_atomic_write(iq_atomic_file *f, const void *data, size_t n) {
    if (f->err || n == 0) return;
    if (iq_fault_write()) {
        f->err = ENOSPC;
        return;
    }
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            f->err = errno ? errno : EIO;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

iq_status iq_atomic_commit(iq_atomic_file *f) {
    int e = f->err;
    if (!e && fsync(f->fd) != 0) e = errno;
    if (close(f->fd) != 0 && !e) e = errno;
    if (!e && rename(f->tmp, f->path) != 0) e = errno;
    iq_status st;
    if (e) {
        unlink(f->tmp);
        st = iq_fail(IQ_EIO, "%s: write failed: %s", f->path, strerror(e));
    } else {
        st = iq_fsync_parent(f->path);
    }
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    return st;
}

iq_status iq_write_file_atomic(const char *path, const void *data, size_t len) {
    iq_atomic_file f;
    iq_status st = iq_atomic_begin(&f, path);
    if (st) return st;
    if (len == 0 && iq_fault_write()) f.err = ENOSPC; /* an empty file is a write too (fault injection counts it) */
    iq_atomic_write(&f, data, len);
    return iq_atomic_commit(&f);
}

iq_status iq_write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) return iq_fail(IQ_EINTERNAL, "out of memory printing %s", path);
    iq_buf b = {0};
    iq_buf_append(&b, s, strlen(s));
    iq_buf_putc(&b, '\n');
    free(s);
    iq_status st = iq_write_file_atomic(path, b.data, b.len);
    iq_buf_free(&b);
    return st;
}

iq_status iq_mkdirs(const char *path) {
    char *p = iq_xstrdup(path);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == 0) {
            char c = p[i];
            p[i] = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                iq_status st = iq_fail(IQ_ECANTCREAT, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return st;
            }
            p[i] = c;
        }
    }
    free(p);
    if (!iq_is_dir(path)) return iq_fail(IQ_ECANTCREAT, "%s: exists and is not a directory", path);
    return IQ_OK;
}

double iq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *iq_version(void) { return IQ_VERSION; }
const char *iq_git_commit(void) { return IQ_GIT; }
const char *iq_build_type(void) {
#ifdef IQ_SANITIZE
    return IQ_BUILD_TYPE "+asan+ubsan";
#else
    return IQ_BUILD_TYPE;
#endif
}

double iq_short_float(float f) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}
