/* vecmath.h — exp written so that loops calling it vectorize (internal to the library).
 *
 * libm's expf is a call the compiler cannot vectorize; iq_vexp is branch-free arithmetic with the same
 * accuracy class (relative error ~2.5e-7 against the correctly rounded result), so softmax, logsumexp and
 * GELU loops run 8 lanes wide under AVX2. Defined for every float: x < -87.3 gives 0 (expf underflows to
 * denormals there: below 1.2e-38, nothing a float sum can see), x > 88.3 saturates at e^88.3 (2.2e38, finite),
 * NaN gives NaN. */
#ifndef IQTRAIN_VECMATH_H
#define IQTRAIN_VECMATH_H

#include <stdint.h>
#include <string.h>

static inline float iq_vexp(float x) {
    float xc = x > -87.3f ? (x < 88.3f ? x : 88.3f) : -87.3f; /* NaN -> -87.3: the exponent stays in range */
    /* 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2]; round to nearest through the 1.5 * 2^23 trick */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693145751953125f; /* ln 2 split in two: n * hi is exact */
    r = r - n * 1.42860682030941723212e-6f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float e = p * scale;
    return x < -87.3f ? 0.0f : (x != x ? x : e); /* NaN in, NaN out: a diverged run stays visible */
}

#endif
