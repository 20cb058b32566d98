/* tokenizer_train.c — learning a byte-level BPE with GPT-2's pre-tokenizer (`train-tokenizer`).
 *
 * Classic BPE training over the distinct pre-tokenizer pieces weighted by their counts: pair counts in a
 * hash table, a max-heap with lazy deletion (stale entries only ever overstate a count, so the first
 * entry that matches its pair's current count is the true maximum), and an index from each pair to the
 * words that contain it so a merge only revisits those words. Ties go to the smallest (left, right) ids,
 * which makes the result independent of input order. */
#include <stdlib.h>
#include <string.h>

#include "iqtrain/tokenizer.h"
#include "tokenizer_internal.h"

struct iq_bpe_trainer {
    iq_strmap *pieces;  /* piece bytes -> word index */
    iq_buf piece_bytes; /* concatenated piece bytes, in word order */
    size_t *piece_off;  /* (n_words + 1) */
    int64_t *counts;    /* (n_words) */
    size_t n_words, cap_words;
};

iq_bpe_trainer *iq_bpe_trainer_new(void) {
    iq_bpe_trainer *tr = iq_xcalloc(1, sizeof *tr);
    tr->pieces = iq_strmap_new(1024);
    tr->cap_words = 1024;
    tr->piece_off = iq_xmalloc((tr->cap_words + 1) * sizeof *tr->piece_off);
    tr->counts = iq_xmalloc(tr->cap_words * sizeof *tr->counts);
    tr->piece_off[0] = 0;
    return tr;
}

void iq_bpe_trainer_free(iq_bpe_trainer *tr) {
    if (!tr) return;
    iq_strmap_free(tr->pieces);
    iq_buf_free(&tr->piece_bytes);
    free(tr->piece_off);
    free(tr->counts);
    free(tr);
}

void iq_bpe_trainer_add(iq_bpe_trainer *tr, const void *text, size_t len) {
    const uint8_t *s = text;
    size_t i = 0;
    while (i < len) {
        size_t j = iq_pretok_next(s, len, i);
        int32_t w;
        if (iq_strmap_get(tr->pieces, s + i, j - i, &w)) {
            tr->counts[w]++;
        } else {
            if (tr->n_words == tr->cap_words) {
                tr->cap_words *= 2;
                tr->piece_off = iq_xrealloc(tr->piece_off, (tr->cap_words + 1) * sizeof *tr->piece_off);
                tr->counts = iq_xrealloc(tr->counts, tr->cap_words * sizeof *tr->counts);
            }
            w = (int32_t)tr->n_words++;
            iq_strmap_put(tr->pieces, s + i, j - i, w);
            iq_buf_append(&tr->piece_bytes, s + i, j - i);
            tr->piece_off[w + 1] = tr->piece_bytes.len;
            tr->counts[w] = 1;
        }
        i = j;
    }
}

// ----------------------------------------------------------------------------------------------------
// pair table: (left << 32 | right) -> slot with count and the words that may contain the pair

typedef struct {
    int64_t count;
    int32_t *words; /* word indices, possibly repeated or stale */
    size_t n, cap;
} pair_info;

typedef struct {
    uint64_t *keys; /* UINT64_MAX = empty */
    int32_t *idx;   /* index into infos */
    size_t cap;
    pair_info *infos;
    uint64_t *info_key;
    size_t n_infos, cap_infos;
} pair_table;

static size_t ptab_hash(uint64_t k, size_t cap) { return (size_t)((k * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1); }

static void ptab_grow(pair_table *t) {
    size_t ncap = t->cap ? t->cap * 2 : 1 << 10;
    uint64_t *nk = iq_xmalloc(ncap * sizeof *nk);
    int32_t *ni = iq_xmalloc(ncap * sizeof *ni);
    for (size_t i = 0; i < ncap; i++) nk[i] = UINT64_MAX;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == UINT64_MAX) continue;
        size_t j = ptab_hash(t->keys[i], ncap);
        while (nk[j] != UINT64_MAX) j = (j + 1) & (ncap - 1);
        nk[j] = t->keys[i];
        ni[j] = t->idx[i];
    }
    free(t->keys);
    free(t->idx);
    t->keys = nk;
    t->idx = ni;
    t->cap = ncap;
}

static pair_info *ptab_get(pair_table *t, int32_t a, int32_t b, bool create) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    if (t->cap == 0 || (t->n_infos + 1) * 2 > t->cap) {
        if (!create && t->cap == 0) return NULL;
        if (create) ptab_grow(t);
    }
    size_t i = ptab_hash(k, t->cap);
    while (t->keys[i] != UINT64_MAX) {
        if (t->keys[i] == k) return &t->infos[t->idx[i]];
        i = (i + 1) & (t->cap - 1);
    }
    if (!create) return NULL;
    if (t->n_infos == t->cap_infos) {
        t->cap_infos = t->cap_infos ? t->cap_infos * 2 : 1 << 9;
        t->infos = iq_xrealloc(t->infos, t->cap_infos * sizeof *t->infos);
        t->info_key = iq_xrealloc(t->info_key, t->cap_infos * sizeof *t->info_key);
    }
    t->keys[i] = k;
    t->idx[i] = (int32_t)t->n_infos;
    t->info_key[t->n_infos] = k;
    pair_info *p = &t->infos[t->n_infos++];
    memset(p, 0, sizeof *p);
    return p;
}

static void info_add_word(pair_info *p, int32_t w) {
    if (p->n && p->words[p->n - 1] == w) return;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4;
        p->words = iq_xrealloc(p->words, p->cap * sizeof *p->words);
    }
    p->words[p->n++] = w;
}

// ----------------------------------------------------------------------------------------------------
// max-heap of (count, key): larger count first, then smaller key (= smaller left id, then right id)

typedef struct {
    int64_t count;
    uint64_t key;
} cand;

static bool cand_before(cand x, cand y) { return x.count > y.count || (x.count == y.count && x.key < y.key); }

typedef struct {
    cand *h;
    size_t n, cap;
} cand_heap;

static void cheap_push(cand_heap *q, cand x) {
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 1 << 9;
        q->h = iq_xrealloc(q->h, q->cap * sizeof *q->h);
    }
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(x, q->h[p])) break;
        q->h[i] = q->h[p];
        i = p;
    }
    q->h[i] = x;
}

static cand cheap_pop(cand_heap *q) {
    cand top = q->h[0], x = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand best = x;
        if (l < q->n && cand_before(q->h[l], best)) {
            m = l;
            best = q->h[l];
        }
        if (r < q->n && cand_before(q->h[r], best)) m = r;
        if (m == i) break;
        q->h[i] = q->h[m];
        i = m;
    }
    if (q->n) q->h[i] = x;
    return top;
}

// ----------------------------------------------------------------------------------------------------
// training

/* The words rewritten by one merge, and the pairs they gained (which enter the heap afterwards). */
typedef struct {
    int32_t *sym;
    size_t *wlen;
    uint32_t *stamp;
    uint32_t merge_no;
    pair_table *pt;
    uint64_t *touched;
    size_t n_touched, cap_touched;
} merge_ctx;

/* Rewrites word w with the merge (a, b) -> nid, once per merge, and moves its pair counts. */
static void merge_word(const iq_bpe_trainer *tr, merge_ctx *x, int32_t w, int32_t a, int32_t b, int32_t nid) {
    if (x->stamp[w] == x->merge_no) return;
    x->stamp[w] = x->merge_no;
    int32_t *s = x->sym + tr->piece_off[w];
    size_t m = x->wlen[w];
    bool has = false;
    for (size_t i = 0; i + 1 < m; i++)
        if (s[i] == a && s[i + 1] == b) has = true;
    if (!has) return;
    int64_t cnt = tr->counts[w];
    for (size_t i = 0; i + 1 < m; i++) ptab_get(x->pt, s[i], s[i + 1], false)->count -= cnt;
    size_t o = 0;
    for (size_t i = 0; i < m;) {
        if (i + 1 < m && s[i] == a && s[i + 1] == b) {
            s[o++] = nid;
            i += 2;
        } else {
            s[o++] = s[i++];
        }
    }
    x->wlen[w] = m = o;
    for (size_t i = 0; i + 1 < m; i++) {
        pair_info *pp = ptab_get(x->pt, s[i], s[i + 1], true);
        pp->count += cnt;
        if (s[i] == nid || s[i + 1] == nid) {
            info_add_word(pp, w);
            if (x->n_touched == x->cap_touched) {
                x->cap_touched = x->cap_touched ? x->cap_touched * 2 : 256;
                x->touched = iq_xrealloc(x->touched, x->cap_touched * sizeof *x->touched);
            }
            x->touched[x->n_touched++] = ((uint64_t)(uint32_t)s[i] << 32) | (uint32_t)s[i + 1];
        }
    }
}

iq_status iq_bpe_trainer_train(iq_bpe_trainer *tr, int32_t vocab_size, iq_tokenizer **out) {
    *out = NULL;
    if (vocab_size < 257)
        return iq_fail(IQ_EUSAGE, "--vocab-size must be at least 257 (256 bytes + <|endoftext|>), got %d", vocab_size);

    /* token bytes, ids 0..255 the bytes in GPT-2's order */
    iq_buf tok_pool = {0};
    size_t tok_cap = (size_t)vocab_size;
    size_t *tok_off = iq_xmalloc((tok_cap + 1) * sizeof *tok_off);
    iq_strmap *tok_map = iq_strmap_new(tok_cap);
    int32_t id_of_byte[256];
    tok_off[0] = 0;
    for (int i = 0; i < 256; i++) {
        uint8_t b = iq_byte_order(i);
        id_of_byte[b] = i;
        iq_buf_append(&tok_pool, &b, 1);
        tok_off[i + 1] = tok_pool.len;
        iq_strmap_put(tok_map, &b, 1, i);
    }
    int32_t n_tokens = 256;
    int32_t (*merges)[2] = iq_xmalloc(((size_t)vocab_size + 1) * sizeof *merges);
    int32_t n_merges = 0;

    /* words as symbol sequences */
    size_t total = tr->piece_bytes.len, nw = tr->n_words;
    int32_t *sym = iq_xmalloc((total ? total : 1) * sizeof *sym);
    size_t *wlen = iq_xmalloc((nw ? nw : 1) * sizeof *wlen);
    for (size_t w = 0; w < nw; w++) {
        size_t o = tr->piece_off[w];
        wlen[w] = tr->piece_off[w + 1] - o;
        for (size_t i = 0; i < wlen[w]; i++) sym[o + i] = id_of_byte[(uint8_t)tr->piece_bytes.data[o + i]];
    }

    pair_table pt = {0};
    for (size_t w = 0; w < nw; w++) {
        const int32_t *s = sym + tr->piece_off[w];
        for (size_t i = 0; i + 1 < wlen[w]; i++) {
            pair_info *p = ptab_get(&pt, s[i], s[i + 1], true);
            p->count += tr->counts[w];
            info_add_word(p, (int32_t)w);
        }
    }
    cand_heap q = {0};
    for (size_t k = 0; k < pt.n_infos; k++)
        if (pt.infos[k].count > 0) cheap_push(&q, (cand){pt.infos[k].count, pt.info_key[k]});

    uint32_t *stamp = iq_xcalloc(nw ? nw : 1, sizeof *stamp);
    uint32_t merge_no = 0;
    iq_buf cat = {0};
    uint64_t *touched = NULL;
    size_t n_touched = 0, cap_touched = 0;

    while (n_tokens < vocab_size - 1 && q.n > 0) {
        cand c = cheap_pop(&q);
        int32_t a = (int32_t)(c.key >> 32), b = (int32_t)(c.key & 0xFFFFFFFFu);
        pair_info *p = ptab_get(&pt, a, b, false);
        if (!p || p->count <= 0) continue;
        if (p->count != c.count) {
            cheap_push(&q, (cand){p->count, c.key});
            continue;
        }
        /* the new token (or an existing one with the same bytes) */
        cat.len = 0;
        iq_buf_append(&cat, tok_pool.data + tok_off[a], tok_off[a + 1] - tok_off[a]);
        iq_buf_append(&cat, tok_pool.data + tok_off[b], tok_off[b + 1] - tok_off[b]);
        int32_t nid;
        if (!iq_strmap_get(tok_map, cat.data, cat.len, &nid)) {
            nid = n_tokens++;
            iq_buf_append(&tok_pool, cat.data, cat.len);
            tok_off[nid + 1] = tok_pool.len;
            iq_strmap_put(tok_map, cat.data, cat.len, nid);
        }
        merges[n_merges][0] = a;
        merges[n_merges][1] = b;
        n_merges++;
        merge_no++;

        /* rewrite every word holding the pair; pair counts are updated by removing the word's pairs
         * before and adding them after, which is obviously right for overlaps like "a a a" */
        size_t nwords = p->n;
        int32_t *words = iq_xmalloc((nwords ? nwords : 1) * sizeof *words);
        memcpy(words, p->words, nwords * sizeof *words);
        merge_ctx x = {sym, wlen, stamp, merge_no, &pt, touched, 0, cap_touched};
        for (size_t k = 0; k < nwords; k++) merge_word(tr, &x, words[k], a, b, nid);
        touched = x.touched;
        n_touched = x.n_touched;
        cap_touched = x.cap_touched;
        free(words);
        /* the merged pair has no occurrences left; new pairs enter the heap with exact counts */
        for (size_t k = 0; k < n_touched; k++) {
            pair_info *pp = ptab_get(&pt, (int32_t)(touched[k] >> 32), (int32_t)(touched[k] & 0xFFFFFFFFu), false);
            if (pp->count > 0) cheap_push(&q, (cand){pp->count, touched[k]});
        }
    }

    /* build the tokenizer: bytes, merged tokens, then <|endoftext|> last */
    iq_tokenizer *t = iq_tok_new(n_tokens + 1, "(trained)");
    iq_status st = IQ_OK;
    for (int32_t id = 0; id < n_tokens && !st; id++)
        st = iq_tok_set_token(t, id, tok_pool.data + tok_off[id], tok_off[id + 1] - tok_off[id], false);
    if (!st) st = iq_tok_set_token(t, n_tokens, IQ_EOS_TEXT, strlen(IQ_EOS_TEXT), true);
    for (int32_t r = 0; r < n_merges && !st; r++) st = iq_tok_add_merge(t, merges[r][0], merges[r][1]);
    if (!st) st = iq_tok_finish(t);

    for (size_t k = 0; k < pt.n_infos; k++) free(pt.infos[k].words);
    free(pt.infos);
    free(pt.info_key);
    free(pt.keys);
    free(pt.idx);
    free(q.h);
    free(touched);
    free(stamp);
    iq_buf_free(&cat);
    free(sym);
    free(wlen);
    free(merges);
    free(tok_off);
    iq_strmap_free(tok_map);
    iq_buf_free(&tok_pool);
    if (st) {
        iq_tok_free(t);
        return st;
    }
    *out = t;
    return IQ_OK;
}
