/* fuzz_trainer_state.c — a checkpoint folder with a fuzzed trainer_state.json: iq_checkpoint_verify,
 * then what resuming reads from the state (src/train.c).
 *
 * The folder holds the other checkpoint files with fixed contents ("<name>\n"), whose CRC-32s the seed
 * corpus's valid states carry. Properties: only 0 / 65 come back, with a message; a verified state is
 * the object handed out, and the values train.c converts (step, tokens_seen, build.threads) convert
 * without undefined behaviour (UBSan's float-cast-overflow) and make sense (a step >= 0). */
#include "fuzz_common.h"
#include "iqtrain/checkpoint.h"

static char g_dir[600], g_state[700];

static const char *const FILES[] = {"config.json",    "generation_config.json", "model.safetensors",
                                    "optimizer.safetensors", "tokenizer.json", "vocab.json",
                                    "merges.txt",     "tokenizer_config.json", "special_tokens_map.json"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_path(g_dir, sizeof g_dir, "checkpoint-10");
    fuzz_mkdir(g_dir);
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
        char p[800], content[100];
        snprintf(p, sizeof p, "%s/%s", g_dir, FILES[i]);
        snprintf(content, sizeof content, "%s\n", FILES[i]);
        fuzz_write(p, content, strlen(content));
    }
    snprintf(g_state, sizeof g_state, "%s/trainer_state.json", g_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(g_state, data, size);
    cJSON *s = (cJSON *)1;
    iq_status st = iq_checkpoint_verify(g_dir, &s);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "status %d: %s", (int)st, iq_last_error());
    if (st) {
        FUZZ_CHECK(s == NULL && strlen(iq_last_error()) > 0, "a failure without a message, or with a state");
        return 0;
    }
    FUZZ_CHECK(s != NULL, "no state");
    /* what train.c does with a verified state when resuming (keep in step with src/train.c) */
    const cJSON *stp = cJSON_GetObjectItemCaseSensitive(s, "step");
    if (cJSON_IsNumber(stp)) {
        long start = (long)stp->valuedouble;
        FUZZ_CHECK(start >= 0, "step %ld", start);
    }
    const cJSON *x;
    volatile double elapsed0 = 0, best = 0;
    volatile long tokens_seen = 0;
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "elapsed_s")) && cJSON_IsNumber(x)) elapsed0 = x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "tokens_seen")) && cJSON_IsNumber(x)) tokens_seen = (long)x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "best_eval_loss")) && cJSON_IsNumber(x)) best = x->valuedouble;
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(s, "build");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(bf, "threads");
    volatile int threads = 0;
    if (cJSON_IsNumber(th)) threads = (int)th->valuedouble;
    (void)elapsed0;
    (void)best;
    (void)tokens_seen;
    (void)threads;
    cJSON_Delete(s);
    return 0;
}
