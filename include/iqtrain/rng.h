/* rng.h — deterministic random numbers: xoshiro256** seeded through splitmix64 from (seed, stream).
 * The state is four words, so it can be saved in trainer_state.json and restored exactly. */
#ifndef IQTRAIN_RNG_H
#define IQTRAIN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} iq_rng;

void iq_rng_seed(iq_rng *r, uint64_t seed, uint64_t stream);
uint64_t iq_rng_u64(iq_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable in fp32). */
float iq_rng_uniform(iq_rng *r);
/* Uniform integer in [0, n) without modulo bias. */
uint64_t iq_rng_below(iq_rng *r, uint64_t n);
/* Standard normal (Box-Muller in double, rounded to float). */
float iq_rng_normal(iq_rng *r);
/* Fisher-Yates shuffle of an index array. */
void iq_rng_shuffle_u32(iq_rng *r, uint32_t *a, size_t n);

#endif
