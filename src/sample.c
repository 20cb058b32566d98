/* sample.c — greedy, temperature, top-k and top-p decoding. */
#include "iqtrain/sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void iq_sample_rng(iq_rng *r, uint64_t seed, uint64_t row, uint64_t sample) {
    iq_rng_seed(r, seed ^ (row * 0x9E3779B97F4A7C15ULL), 0x5A3B1E00ULL + sample);
}

float iq_log_softmax_at(const float *z, int V, int32_t tok) {
    float mx = z[0];
    for (int v = 1; v < V; v++)
        if (z[v] > mx) mx = z[v];
    float s = 0.0f;
    for (int v = 0; v < V; v++) s += expf(z[v] - mx);
    return z[tok] - mx - logf(s);
}

static int cmp_desc(const void *a, const void *b) {
    const float *x = a, *y = b; /* pairs (prob, id) */
    if (x[0] != y[0]) return x[0] > y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

int32_t iq_sample_next(const float *z, int V, const iq_sampler *s, iq_rng *rng, float *scratch) {
    if (s->temperature <= 0.0f) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (z[v] > z[best]) best = v;
        return best;
    }
    float inv_t = 1.0f / s->temperature, mx = z[0];
    for (int v = 1; v < V; v++)
        if (z[v] > mx) mx = z[v];
    float u = iq_rng_uniform(rng);
    bool filter = (s->top_k > 0 && s->top_k < V) || s->top_p < 1.0f;
    if (!filter) {
        double sum = 0.0;
        for (int v = 0; v < V; v++) {
            scratch[v] = expf((z[v] - mx) * inv_t);
            sum += scratch[v];
        }
        double target = u * sum, acc = 0.0;
        for (int v = 0; v < V; v++) {
            acc += scratch[v];
            if (acc > target) return v;
        }
        return V - 1;
    }
    /* (prob, id) pairs sorted by probability, then cut */
    double sum = 0.0;
    for (int v = 0; v < V; v++) {
        scratch[2 * v] = expf((z[v] - mx) * inv_t);
        scratch[2 * v + 1] = (float)v;
        sum += scratch[2 * v];
    }
    qsort(scratch, (size_t)V, 2 * sizeof(float), cmp_desc);
    int n = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    if (s->top_p < 1.0f) {
        double acc = 0.0;
        int k = 0;
        while (k < n) {
            acc += scratch[2 * k] / sum;
            k++;
            if (acc >= s->top_p) break;
        }
        n = k;
    }
    double kept = 0.0;
    for (int k = 0; k < n; k++) kept += scratch[2 * k];
    double target = u * kept, acc = 0.0;
    for (int k = 0; k < n; k++) {
        acc += scratch[2 * k];
        if (acc > target) return (int32_t)scratch[2 * k + 1];
    }
    return (int32_t)scratch[2 * (n - 1) + 1];
}
