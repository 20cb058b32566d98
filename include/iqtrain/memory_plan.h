/* memory_plan.h — what a training run will hold in memory, predicted before its first step (--dry-run's
 * "memory_mb"), item by item, and the process's resident memory now.
 *
 * The items are the allocations the run makes once and keeps (model.h's arenas, AdamW's moments, the loss
 * head's workspace, the batch), what the matmuls add on the first step (bf16 copies of the weights and
 * operands: matmul.h; OpenBLAS's and oneDNN's per-thread buffers), and what the process held before the model
 * (libraries, tokenizer, data: measured). Peak RSS = before_model + the items, or the peak reached before the
 * model if higher (a large tokenizer's parse). Only the matmul libraries' share is an allowance (memory_plan.c);
 * the prediction was within 0.2% of /usr/bin/time's maximum resident set size for a Qwen2.5-0.5B-shaped model
 * (9.6 and 10.6 GB) and within 2.4% for 0.5 GB runs (tests/train/test_memory_plan.sh checks 15%). */
#ifndef IQTRAIN_MEMORY_PLAN_H
#define IQTRAIN_MEMORY_PLAN_H

#include <stddef.h>

#include "iqtrain/iqlearn.h"
#include "iqtrain/model.h"

typedef struct {
    double before_model;     /* resident when the model was about to be built (libraries, tokenizer, data) */
    double parameters, gradients, adamw; /* the weights (fp32; a bf16 base's matrices in bf16), their gradients (none
                                          * for a frozen base under LoRA), AdamW's m and v (of what it trains: the
                                          * LoRA adapters when attached) */
    double lora;             /* LoRA adapters: parameters, gradients and the saved A x products (0 without) */
    double activations;      /* the forward pass's saved activations (every layer) */
    double activation_grads; /* their gradients (one layer for the Llama families, every layer for GPT-2) */
    double loss_head;        /* the fused LM head: gathered hidden states, their gradients, a chunk of logits */
    double batch;            /* token ids and flags */
    double bf16_weights;     /* --matmul-precision bf16: a bf16 copy of every fp32 weight matrix and the LM head */
    double bf16_operands;    /* bf16: rounded operands (activations, gradients, logits) of the largest products */
    double widened_weight;   /* a bf16 base at fp32 precision: the largest matrix widened to fp32 for its products */
    double matmul_runtime;   /* OpenBLAS's and oneDNN's buffers and JIT code, per thread */
    double peak_before_model; /* the peak reached before the model (parsing files) */
    double peak;             /* the prediction: max(peak_before_model, before_model + every item) */
} iq_memory_plan;

/* The plan of training `m` (created for its max batch and length) with the loss head `h` on `threads` threads,
 * the matmuls at the configured precision (matmul.h); before_model and peak_before_model in bytes. */
void iq_memory_plan_training(iq_model *m, const iq_head *h, int threads, double before_model, double peak_before_model,
                             iq_memory_plan *out);

/* The plan of a full fine-tune of the same model and run (no adapters, every parameter fp32 and trained): what
 * LoRA saves (--dry-run's "memory_mb_without_lora"). */
void iq_memory_plan_full(iq_model *m, const iq_head *h, int threads, double before_model, double peak_before_model,
                         iq_memory_plan *out);

/* The process's resident set now, and its peak so far (bytes). */
double iq_rss_now(void);
double iq_rss_peak(void);

#endif
