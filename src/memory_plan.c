/* memory_plan.c — the memory a training run will hold (memory_plan.h), item by item. */
#include "iqtrain/memory_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "iqtrain/lora.h"
#include "iqtrain/matmul.h"

double iq_rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

double iq_rss_peak(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

/* The weight matrices (the blocks' matrices, i.e. the decayed tensors): their floats, the largest one's, and those
 * held in fp32 — all of them but in a bf16 base (model.h), which holds them in bf16 only; `full`: as a full
 * fine-tune of the same model would hold them (fp32). */
static void weight_matrices(iq_model *m, bool full, double *fp32, double *largest) {
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    *fp32 = *largest = 0.0;
    for (int i = 0; i < n; i++) {
        if (!refs[i].decay) continue;
        if (full || !iq_model_tensor_bf16(m, i)) *fp32 += (double)refs[i].numel;
        if ((double)refs[i].numel > *largest) *largest = (double)refs[i].numel;
    }
    free(refs);
}

/* bf16 operands (matmul_onednn.c): the A scratch (outside groups: an MLP's down projection input), group memo 0
 * (a layer's output gradient, or a chunk of the head's logit gradients) and memo 1 (a layer's input, or the
 * chunk's hidden states). Each grows to the largest operand it converts and stays. */
static double bf16_operand_floats(const iq_model *m, const iq_head *h) {
    const iq_model_config *c = iq_model_cfg(m);
    double N = (double)iq_model_max_batch(m) * iq_model_max_seq(m), chunk = iq_head_chunk(h) + 1.0;
    double inner = c->n_inner ? c->n_inner : 4.0 * c->n_embd, qd = c->head_dim ? (double)c->n_head * c->head_dim : 0.0;
    double widest = inner > qd ? inner : qd;
    if (widest < c->n_embd) widest = c->n_embd;
    double rows = N * widest, logits = chunk * c->vocab;
    return (rows > logits ? rows : logits) + 2.0 * rows;
}

/* OpenBLAS's and oneDNN's resident buffers, JIT kernels and primitive caches after the first step: an
 * allowance, fixed plus per thread. With 40 MB on 2 threads the predictions came out 0.2% (a 0.5B Llama, fp32
 * and bf16) to 2.4% (17M-parameter Llama and GPT-2 models) above /usr/bin/time's peak on an AVX-512 Xeon. */
enum { RUNTIME_FIXED_MB = 24, RUNTIME_PER_THREAD_MB = 8 };

/* The plan; full: of a full fine-tune of the same model (no adapters, every parameter trained, fp32). */
static void plan(iq_model *m, const iq_head *h, int threads, bool full, double before_model, double peak_before_model,
                 iq_memory_plan *p) {
    const double F = sizeof(float), F16 = sizeof(uint16_t);
    double np = (double)iq_model_num_params(m);
    size_t n16, nt;
    iq_model_param_bf16(m, &n16);
    float *tg;
    iq_model_trainable(m, &tg, &nt); /* the adapters with LoRA */
    struct iq_lora *lora = full ? NULL : iq_model_get_lora(m);
    if (full) n16 = 0, nt = (size_t)np;
    memset(p, 0, sizeof *p);
    p->before_model = before_model;
    p->peak_before_model = peak_before_model;
    p->parameters = (np - (double)n16) * F + (double)n16 * F16;
    p->gradients = full || !iq_model_frozen(m) ? np * F : 0.0; /* a frozen base has no gradient arena */
    p->adamw = 2.0 * (double)nt * F;
    p->lora = lora ? (double)iq_lora_bytes(lora) : 0.0;
    p->activations = (double)iq_model_act_floats(m) * F;
    p->activation_grads = (double)iq_model_grad_act_floats(m) * F;
    p->loss_head = (double)iq_head_bytes(h);
    p->batch = (double)iq_model_max_batch(m) * iq_model_max_seq(m) * (sizeof(int32_t) + 1);
    bool bf16 = iq_matmul_precision() == IQ_MM_BF16;
    double fp32_matrices, largest;
    weight_matrices(m, full, &fp32_matrices, &largest);
    const iq_model_config *c = iq_model_cfg(m);
    /* bf16 copies of the fp32 matrices and of the LM head (matmul_onednn.c, param_bf16) */
    p->bf16_weights = bf16 ? 2.0 * (fp32_matrices + (double)c->vocab * c->n_embd) : 0.0;
    p->bf16_operands = bf16 ? 2.0 * bf16_operand_floats(m, h) : 0.0;
    /* a bf16 base at fp32 precision: its largest matrix widened to fp32 (matmul.c, iq_sgemm_bw) */
    p->widened_weight = n16 && !bf16 ? largest * F : 0.0;
    p->matmul_runtime = (RUNTIME_FIXED_MB + (double)RUNTIME_PER_THREAD_MB * (threads > 0 ? threads : 1)) * 1e6;
    double sum = p->before_model + p->parameters + p->gradients + p->adamw + p->lora + p->activations + p->activation_grads +
                 p->loss_head + p->batch + p->bf16_weights + p->bf16_operands + p->widened_weight + p->matmul_runtime;
    p->peak = sum > peak_before_model ? sum : peak_before_model;
}

void iq_memory_plan_training(iq_model *m, const iq_head *h, int threads, double before_model, double peak_before_model,
                             iq_memory_plan *p) {
    plan(m, h, threads, false, before_model, peak_before_model, p);
}

void iq_memory_plan_full(iq_model *m, const iq_head *h, int threads, double before_model, double peak_before_model,
                         iq_memory_plan *p) {
    plan(m, h, threads, true, before_model, peak_before_model, p);
}
