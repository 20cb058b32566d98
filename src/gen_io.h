/* gen_io.h — what the generate, score and eval-generation commands share (internal to the library). */
#ifndef IQTRAIN_GEN_IO_H
#define IQTRAIN_GEN_IO_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "iqtrain/data.h"
#include "iqtrain/iqlearn.h"
#include "iqtrain/model.h"
#include "iqtrain/tokenizer.h"

typedef struct iq_gen_loaded_s {
    iq_tokenizer *tok;
    iq_model *m;
    iq_head *head;
    iq_dataset *d;
    int len; /* positions the buffers hold: the longest prompt or row + the generation budget, <= ctx */
} iq_gen_loaded;

/* Loads the tokenizer, the data (or encodes the prompt) and then an inference-only model, sized for what the
 * command needs (never for a whole huge context that no row uses). */
iq_status iq_gen_load_all(const char *model_dir, const char *const *data, int n_data, bool skip_bad, const char *prompt,
                          int max_new, iq_gen_loaded *L);
void iq_gen_loaded_free(iq_gen_loaded *L);
/* Text of ids, invalid UTF-8 replaced (malloc'd). */
char *iq_gen_decode_text(const iq_tokenizer *tok, const int32_t *ids, size_t n);
/* Ids of row r before its first supervised token (its prompt). */
size_t iq_gen_row_prompt_len(const iq_dataset *d, size_t r);
/* gamma: given (>= 0), else the model's "iqtrain" section, else 0.99. */
float iq_gen_model_gamma(const char *dir, float given);
/* JSON numbers printed with %.9g (null when not finite), and arrays of them. */
cJSON *iq_gen_num9(double x);
cJSON *iq_gen_float_array(const float *x, int n);
/* DIR/NAME opened for writing (DIR created); *f = NULL when dir is NULL. */
iq_status iq_gen_open_out(const char *dir, const char *name, FILE **f);
/* One JSON object as a line. */
iq_status iq_gen_put_line(FILE *f, cJSON *j);

#endif
