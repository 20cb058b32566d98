/* eval_metrics.h — task measures for evaluation: GSM8k answer extraction, BLEU and Self-BLEU exactly as NLTK
 * computes them, and Spearman rank correlation. */
#ifndef IQTRAIN_EVAL_METRICS_H
#define IQTRAIN_EVAL_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* GSM8k rule: the number after the last "####" (optional '-', digits with commas, optional decimals), commas
 * removed. Returns false when there is none. The text of the number (commas removed) goes to buf. */
bool iq_extract_answer(const char *s, char *buf, size_t bufsize);
/* true when both texts have an answer and the answers are equal as numbers. */
bool iq_answers_match(const char *completion, const char *reference);

/* Words of a text as Python's str.split() makes them (runs of Unicode whitespace, str.isspace()). */
typedef struct {
    int *id;  /* interned word ids */
    int n;
} iq_words;

/* NLTK's sentence_bleu(references, hypothesis) with weights (0.25,)*4, SmoothingFunction().method1 and no
 * auto re-weighting. */
double iq_sentence_bleu(const iq_words *refs, int n_refs, const iq_words *hyp);

/* Self-BLEU-4 of k texts: the mean over i of sentence_bleu(others, text_i), words from str.split().
 * NaN when k < 2 (NLTK cannot score a single sample). */
double iq_self_bleu(const char *const *texts, int k);

/* Spearman rank correlation (average ranks for ties); NaN when undefined (fewer than 2 points or a constant
 * variable). */
double iq_spearman(const double *x, const double *y, int n);

#endif
