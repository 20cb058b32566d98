/* cmd_export.c — `iqtrain export`: a model folder as a GGUF file for llama.cpp (export.h). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "iqtrain/export.h"
#include "iqtrain/model_folder.h"

static const opt_spec OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "model folder (required): final/, a checkpoint or an HF folder", NULL, NULL},
    {"format", OPT_STR, "gguf", "F", "file format", "gguf", NULL},
    {"out", OPT_STR, NULL, "FILE", "the file to write (required), e.g. model.gguf", NULL, NULL},
    {"dtype", OPT_STR, "f32", "T", "type of the weight matrices (norms, biases and 1-D tensors stay f32)",
     "f32|f16|bf16|q8_0", NULL},
    {"name", OPT_STR, NULL, "NAME", "general.name in the file (default: the folder's name; RUN-final for RUN/final)", NULL, NULL},
    OPT_SPEC_ALLOW_EXTRA_TENSORS,
    {"json", OPT_FLAG, NULL, NULL, "print a summary as one JSON object on stdout", NULL, NULL},
};

static void print_report(const iq_export_report *r, const char *out, const char *dtype, bool json) {
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "out", out);
        cJSON_AddStringToObject(j, "format", "gguf");
        cJSON_AddStringToObject(j, "dtype", dtype);
        cJSON_AddStringToObject(j, "architecture", r->arch);
        cJSON_AddStringToObject(j, "pre", r->pre);
        cJSON_AddNumberToObject(j, "tensors", r->n_tensors);
        cJSON_AddNumberToObject(j, "f32_kept", r->n_f32);
        cJSON_AddNumberToObject(j, "f16_fallback", r->n_f16_fallback);
        cJSON_AddNumberToObject(j, "vocab", r->n_vocab);
        cJSON_AddNumberToObject(j, "merges", r->n_merges);
        cJSON_AddNumberToObject(j, "keys", r->n_kv);
        cJSON_AddBoolToObject(j, "chat_template", r->chat_template);
        cJSON_AddNumberToObject(j, "bytes", (double)r->bytes);
        char *str = cJSON_PrintUnformatted(j);
        printf("%s\n", str);
        free(str);
        cJSON_Delete(j);
        return;
    }
    fprintf(stderr, "iqtrain: wrote %s (%.1f MB): GGUF %s, %s, %d tensors (%d kept f32", out, (double)r->bytes / 1e6, r->arch,
            dtype, r->n_tensors, r->n_f32);
    if (r->n_f16_fallback) fprintf(stderr, ", %d f16: rows not a multiple of 32", r->n_f16_fallback);
    fprintf(stderr, "), vocab %d (pre-tokenizer %s, %d merges)%s\n", r->n_vocab, r->pre, r->n_merges,
            r->chat_template ? ", chat template" : "");
}

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "model") || !opt_is_set(o, "out")) {
        cli_error("export needs --model DIR and --out FILE");
        return IQ_EUSAGE;
    }
    iq_export_opts eo = {.name = opt_str(o, "name")};
    iq_export_dtype_parse(opt_str(o, "dtype"), &eo.dtype); /* the option table checked the choice */
    iq_model_folder_allow_extra_tensors(opt_flag(o, "allow-extra-tensors"));
    iq_export_report rep;
    iq_status st = iq_export_gguf(opt_str(o, "model"), opt_str(o, "out"), &eo, &rep);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    print_report(&rep, opt_str(o, "out"), opt_str(o, "dtype"), opt_flag(o, "json"));
    if (fflush(stdout) != 0) {
        cli_error("writing stdout failed");
        return IQ_EIO;
    }
    return 0;
}

const cmd_spec cmd_export = {
    "export",
    "--model DIR --out FILE.gguf [--format gguf] [--dtype f32|f16|bf16|q8_0]",
    "Write a model folder as one GGUF file for llama.cpp, Ollama and LM Studio.",
    "The file has the metadata keys, tensor names and layouts that llama.cpp's convert_hf_to_gguf.py writes for "
    "the same folder (gpt2 -> gpt2; llama and mistral -> llama, q/k permuted for its RoPE; qwen2, qwen3), the "
    "tokenizer (tokens, merges, the pre-tokenizer, BOS/EOS) and the chat template. A model llama.cpp cannot "
    "represent is refused naming what (exit 65). The file is written atomically.",
    OPTS, N_OPTS(OPTS), 0, 0, run};
