/* memory_plan.c — the memory a training run will hold (memory_plan.h), item by item. */
#include "iqtrain/memory_plan.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The weights the matmuls read through iq_sgemm_w (the blocks' matrices, i.e. the decayed tensors, and the LM
 * head): at bf16 each gets a bf16 copy (matmul_onednn.c, param_bf16). */
static double weight_matrix_floats(const iq_model *m) {
    int n = iq_model_tensor_refs(m, NULL);
    iq_tensor_ref *refs = iq_xmalloc((size_t)n * sizeof *refs);
    iq_model_tensor_refs(m, refs);
    double f = 0.0;
    for (int i = 0; i < n; i++)
        if (refs[i].decay) f += (double)refs[i].numel;
    free(refs);
    const iq_model_config *c = iq_model_cfg(m);
    return f + (double)c->vocab * c->n_embd;
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

void iq_memory_plan_training(iq_model *m, const iq_head *h, int threads, double before_model, double peak_before_model,
                             iq_memory_plan *p) {
    const double F = sizeof(float);
    double np = (double)iq_model_num_params(m);
    p->before_model = before_model;
    p->peak_before_model = peak_before_model;
    p->parameters = np * F;
    p->gradients = np * F;
    size_t nt;
    float *tg;
    iq_model_trainable(m, &tg, &nt); /* the adapters with LoRA (the base's gradient arena is still allocated) */
    p->adamw = 2.0 * (double)nt * F;
    p->lora = iq_model_get_lora(m) ? (double)iq_lora_bytes(iq_model_get_lora(m)) : 0.0;
    p->activations = (double)iq_model_act_floats(m) * F;
    p->activation_grads = (double)iq_model_grad_act_floats(m) * F;
    p->loss_head = (double)iq_head_bytes(h);
    p->batch = (double)iq_model_max_batch(m) * iq_model_max_seq(m) * (sizeof(int32_t) + 1);
    bool bf16 = iq_matmul_precision() == IQ_MM_BF16;
    p->bf16_weights = bf16 ? 2.0 * weight_matrix_floats(m) : 0.0;
    p->bf16_operands = bf16 ? 2.0 * bf16_operand_floats(m, h) : 0.0;
    p->matmul_runtime = (RUNTIME_FIXED_MB + (double)RUNTIME_PER_THREAD_MB * (threads > 0 ? threads : 1)) * 1e6;
    double sum = p->before_model + p->parameters + p->gradients + p->adamw + p->lora + p->activations + p->activation_grads +
                 p->loss_head + p->batch + p->bf16_weights + p->bf16_operands + p->matmul_runtime;
    p->peak = sum > peak_before_model ? sum : peak_before_model;
}
