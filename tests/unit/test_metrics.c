/* test_metrics — answer extraction edge cases and Spearman; with arguments IN.json OUT.json it computes
 * Self-BLEU for each group of IN.json ([[text, ...], ...]) into OUT.json (a list of numbers or null), for
 * tests/reference/test_self_bleu.py to compare against NLTK. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "iqtrain/eval_metrics.h"
#include "iqtrain/util.h"

static int dump_self_bleu(const char *in, const char *out) {
    char *text;
    size_t len;
    if (iq_read_file(in, &text, &len)) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    cJSON *groups = cJSON_Parse(text), *res = cJSON_CreateArray();
    free(text);
    for (const cJSON *g = groups ? groups->child : NULL; g; g = g->next) {
        int k = cJSON_GetArraySize(g), i = 0;
        const char **t = calloc((size_t)k + 1, sizeof *t);
        for (const cJSON *s = g->child; s; s = s->next) t[i++] = s->valuestring;
        double b = iq_self_bleu(t, k);
        cJSON_AddItemToArray(res, isnan(b) ? cJSON_CreateNull() : cJSON_CreateNumber(b));
        free(t);
    }
    char *s = cJSON_PrintUnformatted(res);
    int rc = iq_write_file_atomic(out, s, strlen(s)) ? 2 : 0;
    free(s);
    cJSON_Delete(res);
    cJSON_Delete(groups);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3) return dump_self_bleu(argv[1], argv[2]);
    char b[64];
    CHECK(iq_extract_answer(" 3 + 4 = 7.\n#### 7", b, sizeof b) && strcmp(b, "7") == 0);
    CHECK(iq_extract_answer("#### -12", b, sizeof b) && strcmp(b, "-12") == 0);
    CHECK(iq_extract_answer("#### 1,234,567", b, sizeof b) && strcmp(b, "1234567") == 0);
    CHECK(iq_extract_answer("#### 3.25", b, sizeof b) && strcmp(b, "3.25") == 0);
    CHECK(iq_extract_answer("#### 7.", b, sizeof b) && strcmp(b, "7") == 0);
    CHECK(iq_extract_answer("#### 5\nmore text #### 9 apples", b, sizeof b) && strcmp(b, "9") == 0); /* the last */
    CHECK(!iq_extract_answer("#### 5 then ####", b, sizeof b)); /* nothing after the last #### */
    CHECK(!iq_extract_answer("the answer is 7", b, sizeof b));  /* none = wrong */
    CHECK(!iq_extract_answer("#### seven", b, sizeof b));
    CHECK(iq_answers_match("x\n#### 1,000", "#### 1000"));
    CHECK(iq_answers_match("#### 3.50", "#### 3.5"));
    CHECK(!iq_answers_match("#### 7", "#### 8"));
    CHECK(!iq_answers_match("no answer", "#### 8"));
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {2, 4, 6, 8, 10}, z[5] = {5, 4, 3, 2, 1}, c[5] = {1, 1, 1, 1, 1};
    CHECK(fabs(iq_spearman(x, y, 5) - 1.0) < 1e-12);
    CHECK(fabs(iq_spearman(x, z, 5) + 1.0) < 1e-12);
    CHECK(isnan(iq_spearman(x, c, 5))); /* constant: undefined */
    CHECK(isnan(iq_spearman(x, y, 1)));
    double t1[4] = {1, 0, 1, 0}, t2[4] = {0.9, 0.1, 0.8, 0.2};
    CHECK(fabs(iq_spearman(t1, t2, 4) - 0.894427191) < 1e-8); /* ties averaged: ranks 3.5 1.5 3.5 1.5 */
    const char *same[3] = {"a b c d e", "a b c d e", "a b c d e"};
    CHECK(fabs(iq_self_bleu(same, 3) - 1.0) < 1e-12);
    const char *one[1] = {"a b"};
    CHECK(isnan(iq_self_bleu(one, 1)));
    CHECK_DONE();
}
