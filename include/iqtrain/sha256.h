/* sha256.h — SHA-256 (FIPS 180-4) for the data fingerprints in run.json. */
#ifndef IQTRAIN_SHA256_H
#define IQTRAIN_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "iqtrain/util.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} iq_sha256;

void iq_sha256_init(iq_sha256 *s);
void iq_sha256_update(iq_sha256 *s, const void *data, size_t n);
void iq_sha256_final(iq_sha256 *s, uint8_t out[32]);
/* SHA-256 of a file's bytes as 64 lowercase hex characters (+ NUL). 66 when it cannot be read. */
iq_status iq_sha256_file(const char *path, char hex[65]);

#endif
