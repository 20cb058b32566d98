/* check.h — a tiny test harness: CHECK(cond) records a failure with file:line and keeps going; every
 * test program ends with CHECK_DONE(), which prints "N passed, M failed" and returns non-zero on failure. */
#ifndef IQTRAIN_TEST_CHECK_H
#define IQTRAIN_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed = 0, check_failed = 0;

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        if (cond) check_passed++;                                                                                  \
        else {                                                                                                     \
            check_failed++;                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                               \
        }                                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                       \
    do {                                                                                                           \
        if (cond) check_passed++;                                                                                  \
        else {                                                                                                     \
            check_failed++;                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                               \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fputc('\n', stderr);                                                                                   \
        }                                                                                                          \
    } while (0)

#define CHECK_DONE()                                                                                               \
    do {                                                                                                           \
        printf("%d passed, %d failed\n", check_passed, check_failed);                                              \
        return check_failed ? 1 : 0;                                                                               \
    } while (0)

#endif
