/* fuzz_model_config.c — a model folder's config.json: iq_model_config_read (include/iqtrain/model_folder.h).
 *
 * The input is DIR/config.json. Properties: only 0 / 65 come back, with a message; an accepted config
 * passes iq_model_config_check (the sizes the model would be built with are sane) and hands out the
 * "iqtrain" section exactly when it is an object. */
#include "fuzz_common.h"
#include "iqtrain/model_folder.h"
#include "iqtrain/model.h"

static char g_dir[600], g_file[700];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_path(g_dir, sizeof g_dir, "model");
    fuzz_mkdir(g_dir);
    snprintf(g_file, sizeof g_file, "%s/config.json", g_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(g_file, data, size);
    iq_model_config c;
    memset(&c, 0xA5, sizeof c);
    cJSON *section = (cJSON *)1;
    iq_status st = iq_model_config_read(g_dir, &c, (size & 1) ? &section : NULL);
    FUZZ_CHECK(st == IQ_OK || st == IQ_EDATA, "status %d: %s", (int)st, iq_last_error());
    if (st) {
        FUZZ_CHECK(strlen(iq_last_error()) > 0, "a failure without a message");
        if (size & 1) FUZZ_CHECK(section == NULL, "a section handed out on failure");
        return 0;
    }
    FUZZ_CHECK(iq_model_config_check(&c) == IQ_OK, "accepted config fails the check: %s", iq_last_error());
    if (size & 1) {
        FUZZ_CHECK(section == NULL || cJSON_IsObject(section), "section is not an object");
        cJSON_Delete(section);
    }
    return 0;
}
