/* fuzz_common.h — helpers shared by the libFuzzer targets of tests/fuzz (see tests/fuzz/README.md).
 *
 * Each fuzzer process works in its own scratch folder (under /dev/shm when it exists, so the many small
 * writes and fsyncs cost little), removed at exit. A violated property prints a line and abort()s, which
 * libFuzzer reports as a crash and saves the input. */
#ifndef IQTRAIN_FUZZ_COMMON_H
#define IQTRAIN_FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz check failed (%s:%d): %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

static char fuzz_scratch_dir[512];

static inline void fuzz_rm_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                fuzz_rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline void fuzz_cleanup(void) {
    if (fuzz_scratch_dir[0]) fuzz_rm_tree(fuzz_scratch_dir);
}

/* The process's scratch folder (created on first use). */
static inline const char *fuzz_scratch(void) {
    if (!fuzz_scratch_dir[0]) {
        const char *base = getenv("IQ_FUZZ_TMP");
        struct stat sb;
        if (!base) base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_scratch_dir, sizeof fuzz_scratch_dir, "%s/iqtrain-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_scratch_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_scratch_dir;
}

/* scratch/<name> (a static buffer per call site is not needed: callers copy or use it at once) */
static inline void fuzz_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", fuzz_scratch(), name); }

static inline void fuzz_write(const char *path, const void *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        abort();
    }
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror(path);
            abort();
        }
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

static inline void fuzz_mkdir(const char *path) {
    if (mkdir(path, 0755) != 0) {
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            perror(path);
            abort();
        }
    }
}

/* The GPT-2 fixture (tests/fixtures/gpt2): IQ_FUZZ_GPT2 overrides the path compiled in. */
static inline const char *fuzz_gpt2_dir(void) {
    const char *e = getenv("IQ_FUZZ_GPT2");
#ifdef IQ_FUZZ_SOURCE_DIR
    return e ? e : IQ_FUZZ_SOURCE_DIR "/tests/fixtures/gpt2";
#else
    return e ? e : "tests/fixtures/gpt2";
#endif
}

/* memcmp == 0 that accepts NULL pointers for n == 0 (empty containers have no buffer) */
static inline bool fuzz_eq(const void *a, const void *b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

/* A small deterministic hash of the input, to derive options without spending input bytes on them. */
static inline uint32_t fuzz_hash(const uint8_t *d, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 16777619u;
    return h;
}

#endif
