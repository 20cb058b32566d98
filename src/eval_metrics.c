/* eval_metrics.c — answer extraction, NLTK-exact BLEU / Self-BLEU, Spearman correlation. */
#include "iqtrain/eval_metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/unicode.h"
#include "iqtrain/util.h"

// ----------------------------------------------------------------------------------------------------
// answers

bool iq_extract_answer(const char *s, char *buf, size_t bufsize) {
    const char *last = NULL, *p = s;
    while ((p = strstr(p, "####")) != NULL) {
        last = p;
        p += 4;
    }
    if (!last) return false;
    p = last + 4;
    while (*p == ' ' || *p == '\t' || *p == '#') p++;
    size_t n = 0;
    bool digits = false;
    if (*p == '-' || *p == '+') {
        if (n + 1 < bufsize && *p == '-') buf[n++] = '-';
        p++;
    }
    bool dot = false;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits = true;
            if (n + 1 < bufsize) buf[n++] = *p;
        } else if (*p == ',' && digits) {
            continue;
        } else if (*p == '.' && !dot && p[1] >= '0' && p[1] <= '9') {
            dot = true;
            if (n + 1 < bufsize) buf[n++] = '.';
        } else {
            break;
        }
    }
    if (bufsize) buf[n < bufsize ? n : bufsize - 1] = 0;
    return digits;
}

bool iq_answers_match(const char *completion, const char *reference) {
    char a[128], b[128];
    if (!iq_extract_answer(completion, a, sizeof a) || !iq_extract_answer(reference, b, sizeof b)) return false;
    return strtod(a, NULL) == strtod(b, NULL);
}

// ----------------------------------------------------------------------------------------------------
// BLEU

static bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static void split_words(const char *s, iq_strmap *vocab, iq_words *w) {
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s), i = 0;
    w->n = 0;
    w->id = NULL;
    int cap = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = iq_utf8_decode(p + i, n - i, &cp);
        if (py_isspace(cp)) {
            i += l;
            continue;
        }
        size_t j = i;
        while (j < n) {
            size_t l2 = iq_utf8_decode(p + j, n - j, &cp);
            if (py_isspace(cp)) break;
            j += l2;
        }
        int32_t id;
        if (!iq_strmap_get(vocab, p + i, j - i, &id)) {
            id = (int32_t)iq_strmap_size(vocab);
            iq_strmap_put(vocab, p + i, j - i, id);
        }
        if (w->n == cap) {
            cap = cap ? 2 * cap : 16;
            w->id = iq_xrealloc(w->id, (size_t)cap * sizeof *w->id);
        }
        w->id[w->n++] = id;
        i = j;
    }
}

/* clipped n-gram matches of hyp against the max counts over refs, and the hypothesis n-gram count */
static void modified_precision(const iq_words *refs, int n_refs, const iq_words *hyp, int n, long *num, long *den) {
    *num = 0;
    long total = hyp->n >= n ? hyp->n - n + 1 : 0;
    *den = total > 1 ? total : 1;
    if (total <= 0) return;
    iq_strmap *hc = iq_strmap_new((size_t)total);
    int32_t *cnt = iq_xcalloc((size_t)total, sizeof *cnt), *maxref = iq_xcalloc((size_t)total, sizeof *maxref);
    size_t key = (size_t)n * sizeof(int);
    int distinct = 0;
    for (long i = 0; i < total; i++) {
        int32_t k;
        if (!iq_strmap_get(hc, hyp->id + i, key, &k)) {
            k = distinct++;
            iq_strmap_put(hc, hyp->id + i, key, k);
        }
        cnt[k]++;
    }
    int32_t *rc = iq_xcalloc((size_t)distinct, sizeof *rc);
    for (int r = 0; r < n_refs; r++) {
        memset(rc, 0, (size_t)distinct * sizeof *rc);
        for (int i = 0; i + n <= refs[r].n; i++) {
            int32_t k;
            if (iq_strmap_get(hc, refs[r].id + i, key, &k)) rc[k]++;
        }
        for (int k = 0; k < distinct; k++)
            if (rc[k] > maxref[k]) maxref[k] = rc[k];
    }
    for (int k = 0; k < distinct; k++) *num += cnt[k] < maxref[k] ? cnt[k] : maxref[k];
    free(rc);
    free(cnt);
    free(maxref);
    iq_strmap_free(hc);
}

double iq_sentence_bleu(const iq_words *refs, int n_refs, const iq_words *hyp) {
    long num[5], den[5];
    for (int n = 1; n <= 4; n++) modified_precision(refs, n_refs, hyp, n, &num[n], &den[n]);
    if (num[1] == 0) return 0.0;
    int hl = hyp->n, best = -1;
    for (int r = 0; r < n_refs; r++) {
        int rl = refs[r].n;
        if (best < 0 || abs(rl - hl) < abs(best - hl) || (abs(rl - hl) == abs(best - hl) && rl < best)) best = rl;
    }
    double bp = hl > best ? 1.0 : hl == 0 ? 0.0 : exp(1.0 - (double)best / (double)hl);
    double s = 0.0;
    for (int n = 1; n <= 4; n++) {
        double p = num[n] == 0 ? 0.1 / (double)den[n] : (double)num[n] / (double)den[n];
        s += 0.25 * log(p);
    }
    return bp * exp(s);
}

double iq_self_bleu(const char *const *texts, int k) {
    if (k < 2) return NAN;
    iq_strmap *vocab = iq_strmap_new(256);
    iq_words *w = iq_xcalloc((size_t)k, sizeof *w), *refs = iq_xcalloc((size_t)k, sizeof *refs);
    for (int i = 0; i < k; i++) split_words(texts[i], vocab, &w[i]);
    double sum = 0.0;
    for (int i = 0; i < k; i++) {
        int nr = 0;
        for (int j = 0; j < k; j++)
            if (j != i) refs[nr++] = w[j];
        sum += iq_sentence_bleu(refs, nr, &w[i]);
    }
    for (int i = 0; i < k; i++) free(w[i].id);
    free(w);
    free(refs);
    iq_strmap_free(vocab);
    return sum / k;
}

// ----------------------------------------------------------------------------------------------------
// Spearman

static const double *g_rank_x;
static int cmp_idx(const void *a, const void *b) {
    double x = g_rank_x[*(const int *)a], y = g_rank_x[*(const int *)b];
    if (x != y) return x < y ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

static void ranks(const double *x, int n, double *r) {
    int *idx = iq_xmalloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    g_rank_x = x;
    qsort(idx, (size_t)n, sizeof *idx, cmp_idx);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[idx[j + 1]] == x[idx[i]]) j++;
        double avg = 0.5 * (i + j) + 1.0;
        for (int k = i; k <= j; k++) r[idx[k]] = avg;
        i = j + 1;
    }
    free(idx);
}

double iq_spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double *rx = iq_xmalloc((size_t)n * sizeof *rx), *ry = iq_xmalloc((size_t)n * sizeof *ry);
    ranks(x, n, rx);
    ranks(y, n, ry);
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    if (sxx <= 0 || syy <= 0) return NAN;
    return sxy / sqrt(sxx * syy);
}
