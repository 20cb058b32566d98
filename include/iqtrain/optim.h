/* optim.h — AdamW with decoupled weight decay, global-norm clipping and the learning-rate schedule.
 *
 * The update is torch.optim.AdamW's, element for element:
 *   p *= 1 - lr*wd (decayed tensors only: the blocks' 2-D matrices, not biases, LayerNorm or embeddings)
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr/(1-b1^k) * m / (sqrt(v)/sqrt(1-b2^k) + eps)
 * Clipping is torch.nn.utils.clip_grad_norm_'s: coef = clip / (norm + 1e-6), applied when < 1. */
#ifndef IQTRAIN_OPTIM_H
#define IQTRAIN_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqtrain/model.h"

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} iq_adamw_opts;

typedef struct iq_adamw iq_adamw;
/* State for what the model trains (iq_model_trainable: the parameter arena, or the LoRA adapters attached
 * before this call): m and v (zeroed), and a decay mask from its tensor table. */
iq_adamw *iq_adamw_create(iq_model *model);
void iq_adamw_free(iq_adamw *a);
/* One update with learning rate lr (the schedule's value) from the gradients times grad_scale (the clip
 * coefficient, folded in to save a pass over the arena; the gradients themselves are left unscaled);
 * increments the step count. */
void iq_adamw_step(iq_adamw *a, iq_model *model, const iq_adamw_opts *o, float lr, float grad_scale);
long iq_adamw_steps(const iq_adamw *a);
void iq_adamw_set_steps(iq_adamw *a, long k);
float *iq_adamw_m(iq_adamw *a);
float *iq_adamw_v(iq_adamw *a);

/* Global L2 norm of the trainable gradient arena (in double, deterministic order); opt (created for this model)
 * holds the workspace: nothing is allocated. */
double iq_grad_norm(iq_adamw *opt, iq_model *model);
/* clip_grad_norm_(max_norm)'s coefficient: max_norm / (norm + 1e-6) when below 1, else 1 (and 1 when
 * max_norm <= 0). */
float iq_clip_coef(double norm, float max_norm);

typedef enum { IQ_LR_COSINE = 0, IQ_LR_LINEAR = 1, IQ_LR_CONSTANT = 2 } iq_lr_schedule;
/* Linear warmup from 0 to lr over `warmup` steps, then decay to min_lr at total_steps. */
float iq_lr_at(iq_lr_schedule s, float lr, float min_lr, long warmup, long total_steps, long step);

#endif
