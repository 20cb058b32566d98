/* fuzz_trainer_state.c — a checkpoint folder with a fuzzed trainer_state.json: iq_checkpoint_verify, which
 * verifies the CRCs and converts the file into the typed iq_trainer_state (src/checkpoint.c).
 *
 * The folder holds the other checkpoint files with fixed contents ("<name>\n"), whose CRC-32s the seed
 * corpus's valid states carry. Properties: only 0 / 65 come back, with a message; the conversion of every
 * number runs without undefined behaviour (UBSan's float-cast-overflow), and a verified state makes sense
 * (step, tokens_seen, threads >= 0, at least one MPI rank). */
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
    iq_trainer_state s;
    iq_status st = iq_checkpoint_verify(g_dir, &s);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "status %d: %s", (int)st, iq_last_error());
    if (st) {
        FUZZ_CHECK(strlen(iq_last_error()) > 0, "a failure without a message");
        return 0;
    }
    FUZZ_CHECK(s.step >= 0 && s.tokens_seen >= 0 && s.threads >= 0 && s.world_size >= 1,
               "step %ld, tokens_seen %ld, threads %d, world_size %d", s.step, s.tokens_seen, s.threads, s.world_size);
    return 0;
}
