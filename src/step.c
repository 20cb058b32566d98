/* step.c — the training step and the evaluation step (step.h). */
#include "iqtrain/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iqtrain/dist.h"
#include "iqtrain/fault.h"
#include "iqtrain/lora.h"

void iq_eval_batch(iq_model *m, iq_head *h, const iq_batch *b, const iq_loss_opts *lo, float inv_n, iq_loss_stats *st,
                   float *logits_out) {
    iq_model_forward(m, b->ids, b->B, b->T);
    iq_head_loss(h, iq_model_lnf(m), iq_model_head(m), b->ids, b->flags, b->lens, b->B, b->T, lo, inv_n, NULL, NULL, st,
                 NULL, logits_out);
}

void iq_eval_rows(iq_model *m, iq_head *h, const iq_dataset *d, const uint32_t *rows, size_t n, const iq_loss_opts *lo,
                  int batch_size, iq_loss_stats *st) {
    uint32_t *order = iq_xmalloc((n ? n : 1) * sizeof *order);
    memcpy(order, rows, n * sizeof *order);
    iq_sort_rows_by_length(d, order, n);
    iq_batch b;
    iq_batch_init(&b, batch_size, iq_model_max_seq(m));
    memset(st, 0, sizeof *st);
    for (size_t s = 0; s < n; s += (size_t)batch_size) {
        int k = (int)(n - s < (size_t)batch_size ? n - s : (size_t)batch_size);
        iq_batch_fill(&b, d, order + s, k);
        iq_eval_batch(m, h, &b, lo, 1.0f, st, NULL);
    }
    iq_batch_free(&b);
    free(order);
}

bool iq_step_one_batch(void *ctx, iq_batch *b) {
    bool *given = ctx;
    (void)b;
    if (*given) return false;
    *given = true;
    return true;
}

/* Loss statistics summed over MPI ranks (max for r_abs_max). */
static void sum_loss_stats(iq_loss_stats *ls) {
    double v[9] = {ls->nll_sum, ls->td_sum, (double)ls->n_sup, (double)ls->n_td, (double)ls->n_correct, ls->r_sum, ls->r_abs_sum,
                   ls->v_sum, ls->ctl_sum};
    iq_dist_sum_f64(v, 9);
    ls->nll_sum = v[0];
    ls->td_sum = v[1];
    ls->n_sup = (int64_t)v[2];
    ls->n_td = (int64_t)v[3];
    ls->n_correct = (int64_t)v[4];
    ls->r_sum = v[5];
    ls->r_abs_sum = v[6];
    ls->v_sum = v[7];
    ls->ctl_sum = v[8];
    ls->r_abs_max = iq_dist_max_f64(ls->r_abs_max);
}

iq_status iq_train_step(iq_model *m, iq_head *h, iq_adamw *opt, iq_batch *batch, const iq_step_source *src,
                        const iq_step_opts *o, iq_step_result *r) {
    memset(r, 0, sizeof *r);
    float inv_n = 1.0f / (float)(src->n_sup > 0 ? src->n_sup : 1);
    float *logits = o->logits_out;
    iq_loss_stats pol = {0};
    iq_head_set_value_term(h, o->online ? -iq_online_mix(o->online) : 0.0f, false); /* minus alpha x the expert mean */
    iq_model_zero_grad(m);
    struct iq_lora *lora = iq_model_get_lora(m);
    uint64_t micro = 0;
    while (src->next(src->ctx, batch)) {
        iq_lora_set_pass(lora, (uint64_t)iq_adamw_steps(opt) * 65536u + micro++); /* LoRA dropout's masks */
        iq_model_forward(m, batch->ids, batch->B, batch->T);
        iq_head_loss(h, iq_model_lnf(m), iq_model_head(m), batch->ids, batch->flags, batch->lens, batch->B, batch->T,
                     &o->loss, inv_n, iq_model_dlnf(m), iq_model_head_grad(m), &r->stats, NULL, logits);
        iq_model_backward(m, batch->ids, batch->B, batch->T);
        logits = NULL;
    }
    iq_lora_set_pass(lora, IQ_LORA_NO_DROPOUT);
    if (o->online) iq_online_backward(o->online, m, h, &o->loss, &pol); /* plus alpha x the policy mean */
    iq_head_set_value_term(h, 0.0f, false);
    if (iq_dist_world() > 1) {
        /* the sums over ranks (the same bits on every rank): gradients, then the loss statistics */
        size_t ng;
        float *grads;
        iq_model_trainable(m, &grads, &ng);
        iq_dist_sum_f32(grads, ng);
        sum_loss_stats(&r->stats);
        if (o->online) iq_dist_sum_f64(&pol.v_sum, 1);
    }
    r->loss = iq_loss_value(&r->stats, o->loss.lambda, &r->nll, &r->td);
    if (o->online) {
        r->online_value_gap = iq_online_value_gap(o->online, &r->stats, pol.v_sum, &r->online_sample_len);
        r->loss += (double)iq_online_mix(o->online) * r->online_value_gap;
    }
    r->grad_norm = iq_grad_norm(opt, m);
    if (!isfinite(r->loss) || !isfinite(r->grad_norm)) return IQ_EDIVERGED;
    iq_fault_point("step-mid");
    iq_adamw_step(opt, m, &o->adamw, o->lr, iq_clip_coef(r->grad_norm, o->grad_clip));
    return IQ_OK;
}
