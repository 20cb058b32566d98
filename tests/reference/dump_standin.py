#!/usr/bin/python3
"""Python stand-in for the C program `test_reference_dump`; it documents the file contract.

    dump_standin.py [--bug NAME] MODEL_DIR BATCH_JSON OUT_DIR

Reads MODEL_DIR/{config.json, model.safetensors} and BATCH_JSON, and writes into OUT_DIR:
  grads.safetensors   F32 gradient of the loss at the initial weights, every parameter, HF names
                      (wte.weight = the tied total: input embedding + LM head)
  logits.safetensors  one tensor "logits" F32 [B, T, V] at the initial weights (padding positions zero)
  result.json         {"loss", "nll", "td", "n_supervised", "reward_mean", "reward_abs_mean",
                       "reward_abs_max", "losses": [the loss of each of `steps` steps, before its update]}
                      (+ "online_value_gap" when the batch has "online": {"mix", "rows"}: online IQLearn with
                      the policy rows as fixed samples, issue #17)
Each step: forward + loss on the same batch, backward, global-norm clip, AdamW update (constant lr).

It works like the C code, in float32: the model forward/backward is autograd on gpt2_iqlearn.forward, but
the loss and dL/dlogits are computed here, token by token with max-subtracted logsumexp, from DESIGN
section 1's formula (not autograd), and AdamW is written out by hand. So it is a second implementation
of the loss and the optimizer, checked by test_reference.py against the float64 autograd reference.

--bug NAME injects a deliberate mistake, to show which check of the driver catches it:
  no_bootstrap      bootstrap mode ignores V of the bootstrap row (truncated row's last step as if terminal)
  bootstrap_no_grad the bootstrap row does not get its -2 lam gamma r pi term (forward right, gradient wrong)
  semi_as_full      td_grad semi gets the full gradient (V(s_{t+1}) not detached)
  gamma_terminal    gamma V(s_{t+1}) is subtracted on terminal steps too (d ignored)
  td_over_ntd       td divided by the number of TD terms instead of N
  pad_bootstrap     the bootstrap V read one row too far (a padding position when the row is shorter than T)
  lse_nomax         logsumexp without max subtraction (float32 overflow with large logits)
  untied_wte        wte gradient from the input embedding only (LM head use dropped)
  decay_all         AdamW weight decay on every parameter
  decay_none        no weight decay at all
  l2_decay          weight decay as L2 in the gradient (Adam + L2, not AdamW)
  no_clip           no gradient clipping
  no_bias_correct   AdamW without bias correction
  online_semi       the online value term's V(s_{t+1}) gets no gradient (td_grad semi's rule applied to it)
  online_controls   label smoothing and the entropy bonus also on the policy rows (the online policy pass)
  ls_no_uniform     label smoothing without its -eps/V gradient term (the loss stays right)
  entropy_sign      the entropy bonus's gradient with the wrong sign (the loss stays right)
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_iqlearn as ref  # noqa: E402

BUGS = ("no_bootstrap", "bootstrap_no_grad", "semi_as_full", "gamma_terminal", "td_over_ntd",
        "pad_bootstrap", "lse_nomax", "untied_wte", "decay_all", "decay_none", "l2_decay", "no_bias_correct",
        "no_clip", "online_semi", "ls_no_uniform", "entropy_sign",
        "online_controls")


def lse_softmax(z, bug):
    """float32 logsumexp and softmax of one logits row."""
    z = z.astype(np.float32)
    if bug == "lse_nomax":
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(z)
            s = e.sum(dtype=np.float32)
            return np.float32(np.log(s)), (e / s).astype(np.float32)
    m = z.max()
    e = np.exp(z - m)
    s = e.sum(dtype=np.float32)
    return np.float32(m + np.log(s)), (e / s).astype(np.float32)


def loss_and_dlogits(logits, rows, lam, gamma, td_grad, trunc, bug, eps=0.0, beta=0.0):
    """Token loop over the batch, float32; eps and beta are the label smoothing and the entropy bonus.
    Returns (scalars dict, dlogits [B, T, V] float32)."""
    B, T, V = logits.shape
    g = np.zeros_like(logits, dtype=np.float32)
    N = sum(1 for r in rows for f in r["flags"] if f & 1)
    nll = 0.0
    ctl = 0.0      # sum of eps (mean_v -log pi(v) - (-log pi(a))) - beta H
    tdsum = 0.0
    rewards = []
    lam, gamma = np.float32(lam), np.float32(gamma)
    pending = []   # (b, row, coef) second-term contributions: coef * pi_row
    for b, r in enumerate(rows):
        L = len(r["ids"])
        for i in range(1, L):
            f = r["flags"][i]
            if not (f & 1):
                continue
            a = r["ids"][i]
            d = 1 if (f & 2) else 0
            boot = (i == L - 1) and not d
            has_td = not (boot and trunc == "drop")
            if bug == "gamma_terminal":
                d = 0
            z = logits[b, i - 1]
            v_s, pi = lse_softmax(z, bug)
            vrow = i
            if bug == "pad_bootstrap" and boot and i + 1 < T:
                vrow = i + 1
            v_next, pin = lse_softmax(logits[b, vrow], bug)
            dd = d
            if bug == "no_bootstrap" and boot:
                dd = 1
            rt = np.float32(z[a] - gamma * (1 - dd) * v_next)
            nll += float(v_s - z[a])
            logp = z - v_s
            ent = float(-(pi * logp).sum(dtype=np.float32))
            ctl += eps * (float(-logp.mean(dtype=np.float32)) - float(v_s - z[a])) - beta * ent
            gz = pi.copy()
            gz[a] -= 1.0 - eps
            if bug != "ls_no_uniform":
                gz -= np.float32(eps / V)
            gz += np.float32(beta if bug != "entropy_sign" else -beta) * pi * (z - (pi * z).sum(dtype=np.float32))
            if has_td:
                rewards.append(float(rt))
                tdsum += float(rt) * float(rt)
                gz[a] += 2.0 * lam * rt
                full = td_grad == "full" or bug == "semi_as_full"
                if full and not dd and not (bug == "bootstrap_no_grad" and boot):
                    pending.append((b, vrow, -2.0 * lam * gamma * rt, pin))
            g[b, i - 1] += gz / N
    for b, row, coef, pin in pending:
        g[b, row] += (coef / N) * pin
    n_td = len(rewards)
    td = tdsum / (n_td if bug == "td_over_ntd" else N)
    nll /= N
    rw = np.array(rewards, dtype=np.float64)
    out = {"loss": nll + float(lam) * td + ctl / N, "nll": nll, "td": td, "n_supervised": N,
           "reward_mean": float(rw.mean()) if n_td else 0.0,
           "reward_abs_mean": float(np.abs(rw).mean()) if n_td else 0.0,
           "reward_abs_max": float(np.abs(rw).max()) if n_td else 0.0}
    return out, g.astype(np.float32)


def value_and_dlogits(logits, rows, coef, gamma, trunc, bug):
    """Online IQLearn's value term, float32 token loop: (1/N) sum_{t with a TD term} V(s_t) - gamma (1 - d_t) V(s_{t+1})
    and the gradient of coef times it: (coef/N) pi_t on row t, -(coef/N) gamma (1 - d_t) pi_{t+1} on the next."""
    g = np.zeros_like(logits, dtype=np.float32)
    N = sum(1 for r in rows for f in r["flags"] if f & 1)
    total = 0.0
    gamma = np.float32(gamma)
    for b, r in enumerate(rows):
        L = len(r["ids"])
        for i in range(1, L):
            f = r["flags"][i]
            if not (f & 1):
                continue
            d = 1 if (f & 2) else 0
            if (i == L - 1) and not d and trunc == "drop":
                continue
            v_s, pi = lse_softmax(logits[b, i - 1], bug)
            v_next, pin = lse_softmax(logits[b, i], bug)
            total += float(v_s - gamma * (1 - d) * v_next)
            g[b, i - 1] += (coef / N) * pi
            if not d and bug != "online_semi":
                g[b, i] -= (coef * float(gamma) / N) * pin
    return total / N, g


def main(argv):
    bug = None
    if len(argv) >= 2 and argv[0] == "--bug":
        bug = argv[1]
        argv = argv[2:]
        if bug not in BUGS:
            print("dump_standin: unknown --bug %r (one of %s)" % (bug, ", ".join(BUGS)), file=sys.stderr)
            return 64
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    model_dir, batch_path, out_dir = argv
    torch.set_num_threads(1)
    cfg, params = ref.load_model(model_dir)
    with open(batch_path) as f:
        batch = json.load(f)
    rows = batch["rows"]
    lam, gamma = float(batch["lambda"]), float(batch["gamma"])
    td_grad, trunc = batch["td_grad"], batch["truncation"]
    steps = int(batch.get("steps", 1))
    o = batch["optim"]
    tp = ref.to_torch(params, dtype=torch.float32)
    names = list(tp.keys())
    ids, lengths = ref.pad_batch(rows)
    online = batch.get("online")
    if online:
        mix, prows = float(online["mix"]), online["rows"]
        pids, _ = ref.pad_batch(prows)
    m = {n: torch.zeros_like(t) for n, t in tp.items()}
    v = {n: torch.zeros_like(t) for n, t in tp.items()}
    losses = []
    os.makedirs(out_dir, exist_ok=True)
    for k in range(steps):
        for t in tp.values():
            t.grad = None
        if bug == "untied_wte":
            _, hidden = ref.forward(tp, ids, cfg, return_hidden=True)
            logits = hidden @ tp["wte.weight"].detach().t()
        else:
            logits = ref.forward(tp, ids, cfg)
        lg = logits.detach().numpy()
        eps, beta = float(batch.get("label_smoothing", 0.0)), float(batch.get("entropy_coef", 0.0))
        res, dl = loss_and_dlogits(lg, rows, lam, gamma, td_grad, trunc, bug, eps, beta)
        if online:   # minus alpha x the expert mean, plus alpha x the policy mean (samples fixed); no controls there
            ve, dve = value_and_dlogits(lg, rows, -mix, gamma, trunc, bug)
            plogits = ref.forward(tp, pids, cfg)
            plg = plogits.detach().numpy()
            vp, dvp = value_and_dlogits(plg, prows, mix, gamma, trunc, bug)
            if bug == "online_controls":   # the controls' terms alone: with them minus without them
                rc, gc = loss_and_dlogits(plg, prows, 0.0, gamma, td_grad, trunc, None, eps, beta)
                r0, g0 = loss_and_dlogits(plg, prows, 0.0, gamma, td_grad, trunc, None, 0.0, 0.0)
                dvp = dvp + (gc - g0)
                res["loss"] += rc["loss"] - r0["loss"]
            plogits.backward(torch.from_numpy(dvp))
            dl = dl + dve
            res["online_value_gap"] = vp - ve
            res["loss"] += mix * (vp - ve)
        logits.backward(torch.from_numpy(dl))
        losses.append(res["loss"])
        if k == 0:
            lz = lg.copy()
            for b, L in enumerate(lengths):
                lz[b, L:] = 0.0
            ref.save_safetensors(os.path.join(out_dir, "logits.safetensors"), {"logits": lz.astype(np.float32)})
            ref.save_safetensors(os.path.join(out_dir, "grads.safetensors"),
                                 {n: tp[n].grad.numpy().astype(np.float32) for n in names})
            first = res
        # global-norm clip (torch.nn.utils.clip_grad_norm_ semantics), then AdamW
        with torch.no_grad():
            if o.get("grad_clip", 0.0) > 0 and bug != "no_clip":
                total = math.sqrt(sum(float((tp[n].grad.double() ** 2).sum()) for n in names))
                coef = o["grad_clip"] / (total + 1e-6)
                if coef < 1.0:
                    for n in names:
                        tp[n].grad.mul_(coef)
            step = k + 1
            b1, b2 = o["beta1"], o["beta2"]
            bc1 = 1.0 - b1 ** step
            bc2 = 1.0 - b2 ** step
            if bug == "no_bias_correct":
                bc1 = bc2 = 1.0
            for n in names:
                p, gr = tp[n], tp[n].grad
                if bug == "l2_decay":
                    if ref.is_decayed(n):
                        gr = gr + o["weight_decay"] * p
                elif (ref.is_decayed(n) and bug != "decay_none") or bug == "decay_all":
                    p.mul_(1.0 - o["lr"] * o["weight_decay"])
                m[n].mul_(b1).add_((1.0 - b1) * gr)
                v[n].mul_(b2).add_((1.0 - b2) * gr * gr)
                p.sub_((o["lr"] / bc1) * m[n] / (v[n].sqrt() / math.sqrt(bc2) + o["eps"]))
    result = dict(first)
    result["losses"] = losses
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
