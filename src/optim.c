/* optim.c — AdamW, clipping, learning-rate schedules. */
#include "iqtrain/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/matmul.h"

/* A run of the parameter arena with or without weight decay. */
typedef struct {
    size_t begin, end;
    bool decay;
} span;

struct iq_adamw {
    size_t n;
    float *m, *v;      /* (n) first and second moments */
    span *spans;       /* the arena cut where weight decay starts or stops (a few: tensors are stacked) */
    int n_spans;
    long steps;
    double *norm_parts; /* iq_grad_norm's partial sums, one per block of NORM_BLOCK gradients */
};

enum { NORM_BLOCK = 1 << 14 };

static int cmp_span(const void *x, const void *y) {
    const span *a = x, *b = y;
    return (a->begin > b->begin) - (a->begin < b->begin);
}

/* The arena [0, n) as alternating runs without and with weight decay, from the tensor table: the decayed
 * tensors sorted and merged where they touch, the gaps between them undecayed. */
static void decay_spans(iq_adamw *a, iq_model *model) {
    int nt = iq_model_trainable_refs(model, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)nt * sizeof *refs);
    iq_model_trainable_refs(model, refs);
    span *dec = iq_xmalloc(((size_t)nt + 1) * sizeof *dec);
    int nd = 0;
    for (int i = 0; i < nt; i++)
        if (refs[i].decay && refs[i].numel) dec[nd++] = (span){refs[i].offset, refs[i].offset + refs[i].numel, true};
    free(refs);
    qsort(dec, (size_t)nd, sizeof *dec, cmp_span);
    a->spans = iq_xmalloc((2 * (size_t)nd + 1) * sizeof *a->spans);
    a->n_spans = 0;
    size_t at = 0;
    for (int i = 0; i < nd; i++) {
        span *last = a->n_spans ? &a->spans[a->n_spans - 1] : NULL;
        if (last && last->decay && dec[i].begin <= last->end) { /* touches the previous decayed run */
            if (dec[i].end > last->end) last->end = at = dec[i].end;
            continue;
        }
        if (dec[i].begin > at) a->spans[a->n_spans++] = (span){at, dec[i].begin, false};
        a->spans[a->n_spans++] = dec[i];
        at = dec[i].end;
    }
    if (at < a->n) a->spans[a->n_spans++] = (span){at, a->n, false};
    free(dec);
}

iq_adamw *iq_adamw_create(iq_model *model) {
    iq_adamw *a = iq_xcalloc(1, sizeof *a);
    float *g;
    iq_model_trainable(model, &g, &a->n); /* the adapters when LoRA adapters are attached */
    a->m = iq_arena_xcalloc(a->n, sizeof *a->m);
    a->v = iq_arena_xcalloc(a->n, sizeof *a->v);
    decay_spans(a, model);
    a->norm_parts = iq_xcalloc(a->n / NORM_BLOCK + 1, sizeof *a->norm_parts);
    return a;
}

void iq_adamw_free(iq_adamw *a) {
    if (!a) return;
    free(a->m);
    free(a->v);
    free(a->spans);
    free(a->norm_parts);
    free(a);
}

long iq_adamw_steps(const iq_adamw *a) { return a->steps; }
void iq_adamw_set_steps(iq_adamw *a, long k) { a->steps = k; }
float *iq_adamw_m(iq_adamw *a) { return a->m; }
float *iq_adamw_v(iq_adamw *a) { return a->v; }

void iq_adamw_step(iq_adamw *a, iq_model *model, const iq_adamw_opts *o, float lr, float grad_scale) {
    size_t n;
    float *g, *p = iq_model_trainable(model, &g, &n);
    a->steps++;
    double bc1 = 1.0 - pow((double)o->beta1, (double)a->steps);
    double bc2 = 1.0 - pow((double)o->beta2, (double)a->steps);
    float step_size = (float)((double)lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps, decay = 1.0f - lr * o->weight_decay;
    float *m = a->m, *v = a->v;
    for (int s = 0; s < a->n_spans; s++) {
        bool dm = a->spans[s].decay;
#pragma omp parallel for simd
        for (size_t i = a->spans[s].begin; i < a->spans[s].end; i++) {
            float gi = g[i] * grad_scale; /* the clipped gradient, as clip_grad_norm_ leaves it in .grad */
            if (dm) p[i] *= decay;
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
        }
    }
    (void)n;
    iq_matmul_params_changed(); /* bf16 copies of the weights are stale */
}

double iq_grad_norm(iq_adamw *opt, iq_model *model) {
    size_t n;
    float *g;
    iq_model_trainable(model, &g, &n);
    /* fixed blocks summed in order: the same result for any thread count */
    size_t nb = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    double *part = opt->norm_parts; /* sized once: nothing is allocated in the step */
#pragma omp parallel for
    for (size_t b = 0; b < nb; b++) {
        size_t e = (b + 1) * NORM_BLOCK < n ? (b + 1) * NORM_BLOCK : n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (size_t i = b * NORM_BLOCK; i < e; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double s = 0.0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    return sqrt(s);
}

float iq_clip_coef(double norm, float max_norm) {
    if (max_norm <= 0.0f) return 1.0f;
    double coef = (double)max_norm / (norm + 1e-6);
    return coef >= 1.0 ? 1.0f : (float)coef;
}

float iq_lr_at(iq_lr_schedule s, float lr, float min_lr, long warmup, long total_steps, long step) {
    if (warmup > 0 && step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (s == IQ_LR_CONSTANT || total_steps <= warmup) return lr;
    double f = (double)(step - warmup) / (double)(total_steps - warmup);
    if (f > 1.0) f = 1.0;
    double k = s == IQ_LR_COSINE ? 0.5 * (1.0 + cos(M_PI * f)) : 1.0 - f;
    return (float)((double)min_lr + k * ((double)lr - (double)min_lr));
}
