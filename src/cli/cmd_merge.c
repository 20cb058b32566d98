/* cmd_merge.c — `iqtrain merge`: a base model folder with a LoRA adapter merged in, as a model folder (lora_merge.h). */
#include <stdio.h>

#include "commands.h"
#include "iqtrain/lora_merge.h"
#include "iqtrain/model_folder.h"

static const opt_spec OPTS[] = {
    {"model", OPT_STR, NULL, "DIR", "the base model folder the adapter was trained on (required)", NULL, NULL},
    {"adapter", OPT_STR, NULL, "DIR", "the LoRA adapter folder (PEFT's layout, e.g. a LoRA run's final/) (required)", NULL,
     NULL},
    {"out", OPT_STR, NULL, "DIR", "the merged model folder to create (required; must not exist)", NULL, NULL},
    {"dtype", OPT_STR, "f32", "T", "type of the merged weights in model.safetensors", "f32|bf16|f16", NULL},
    OPT_SPEC_ALLOW_EXTRA_TENSORS,
};

static int run(const cmd_spec *cmd, opt_set *o) {
    (void)cmd;
    if (!opt_is_set(o, "model") || !opt_is_set(o, "adapter") || !opt_is_set(o, "out")) {
        cli_error("merge needs --model DIR --adapter DIR --out DIR");
        return IQ_EUSAGE;
    }
    const char *d = opt_str(o, "dtype");
    iq_dtype dt = d[0] == 'b' ? IQ_DT_BF16 : d[1] == '1' ? IQ_DT_F16 : IQ_DT_F32; /* the table checked the choice */
    iq_model_folder_allow_extra_tensors(opt_flag(o, "allow-extra-tensors"));
    iq_status st = iq_merge_command(opt_str(o, "model"), opt_str(o, "adapter"), opt_str(o, "out"), dt);
    if (st) {
        cli_error("%s", iq_last_error());
        return st;
    }
    fprintf(stderr, "iqtrain: wrote %s (%s with %s merged)\n", opt_str(o, "out"), opt_str(o, "model"), opt_str(o, "adapter"));
    return 0;
}

const cmd_spec cmd_merge = {
    "merge",
    "--model BASE --adapter DIR --out DIR [--dtype f32|bf16|f16]",
    "Merge a LoRA adapter into its base model's weights and write an ordinary model folder.",
    "Each adapted weight W becomes W + (lora_alpha/r) B A (PEFT's merge_and_unload), in fp32. The folder holds "
    "config.json, generation_config.json, model.safetensors and the base's tokenizer files and chat template; eval, "
    "generate, score and export read it like any model folder. A bad adapter folder (rank mismatch, unknown target "
    "module, wrong shapes, a missing or extra tensor, a layer beyond the model) is refused naming it (exit 65).",
    OPTS, N_OPTS(OPTS), 0, 0, run};
