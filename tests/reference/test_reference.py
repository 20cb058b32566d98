#!/usr/bin/python3
"""Reference tests of iqtrain's model, IQLearn loss, gradients and AdamW against PyTorch (float64).

    /usr/bin/python3 tests/reference/test_reference.py --dump PATH [--only PATTERNS] [--keep DIR]
                                                        [--timeout S] [--list] [-v] [--precision bf16]

--dump PATH   the program under test, run as `PATH MODEL_DIR BATCH_JSON OUT_DIR`; PATH may be a command with
              arguments, e.g. "/usr/bin/python3 tests/reference/dump_standin.py" (split like a shell would).
--only P      run only the cases whose name matches one of the comma-separated fnmatch patterns.
--keep DIR    keep each case's folder (model/, batch.json, out/) as DIR/CASE instead of a temp folder.

Per case it writes model/ (config.json, model.safetensors: random tiny GPT-2, vocab 97, biases and
LayerNorms perturbed) and batch.json (4 rows: multi-turn, truncated, EOS-ended, long prompt; padded), runs the
program, and compares its logits.safetensors / grads.safetensors / result.json with the reference
(gpt2_iqlearn.reference_run in float64):
  logits (valid positions)           max |diff| / max |ref|                 <= 1e-5
  loss, nll, td, reward stats        |diff| <= max(1e-5 |ref|, 1e-7)
  n_supervised                       equal
  every parameter gradient           ||g - g_ref|| / ||g_ref|| <= 1e-4  (||g|| <= 1e-7 if ||g_ref|| < 1e-12)
  losses of the AdamW steps          |diff| <= 1e-4 |ref|
The online_* cases (online IQLearn, issue #17) add "online": {"mix", "rows"} to batch.json: 3 policy rows the
program injects as fixed samples; the loss adds mix (value mean of the policy rows - value mean of the batch rows)
and result.json's online_value_gap is compared like the scalars. With "label_smoothing" / "entropy_coef" too, those
are terms of the batch rows' loss only (never of the policy rows').
It also asserts the reference against itself: DESIGN section 1's analytic dL/dlogits equals autograd's, and
lambda = 0 equals torch's cross-entropy (F.cross_entropy(label_smoothing=eps) in the label-smoothing cases); the case `selfcheck` checks the model against
nn.TransformerEncoderLayer, the analytic gradient against finite differences, and AdamW/clipping against
the formulas. Prints one line per case and finally `N passed, M failed`; exit 1 on any failure.

--precision bf16 runs the program as `PATH --precision bf16 ...` (matmul operands rounded to bf16, fp32
accumulation, fp32 weights, loss and AdamW) against the same float64 reference, with tolerances from bf16's
unit roundoff u = 2^-8 (8 significant bits, relative rounding error <= u):
  every product of the model rounds its two operands once: relative error <= 2u per product term. Rounding
  errors have random signs, so along a chain of n products they add in quadrature: sqrt(n) * 2u. Forward to
  the logits: 4 products per layer x 2 layers + the head = 9 -> 6u = 2.3e-2 max-norm relative; loss, nll,
  td and the reward stats (reductions of the logits): the same 6u; gradients (the backward pass adds the
  same chain again, n = 18): 9u = 3.5e-2 in relative norm; losses after AdamW steps: 6u. n_supervised
  stays exact. Measured here (avx512_core_bf16): logits <= 1.0u, gradients <= 4.9u, losses <= 0.03u.
  The selfcheck case (no program) is skipped. A program that exits 77 (no bf16 matmul here) makes the whole run exit 77.
"""
import argparse
import fnmatch
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_iqlearn as ref  # noqa: E402

VOCAB = 97
EOS = 96
TOL_LOGITS = 1e-5
TOL_SCALAR = 1e-5
ATOL_SCALAR = 1e-7
TOL_GRAD = 1e-4
TOL_LOSSES = 1e-4
TOL_SELF = 1e-10          # analytic vs autograd (float64)
BF16_U = 2.0 ** -8        # bf16's unit roundoff (module docstring: the bf16 tolerances)
BF16_TOLS = {"TOL_LOGITS": 6 * BF16_U, "TOL_SCALAR": 6 * BF16_U, "TOL_GRAD": 9 * BF16_U, "TOL_LOSSES": 6 * BF16_U}
OPTIM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0}
SCALARS = ("loss", "nll", "td", "reward_mean", "reward_abs_mean", "reward_abs_max")


# --------------------------------------------------------------------------------------------------
# cases

def _toks(rng, n):
    return [int(x) for x in rng.integers(0, EOS, n)]    # ordinary tokens 0..95


def make_rows(rng, layout="standard"):
    """4 rows. standard (lengths 37, 20, 9, 29 -> padding):
      0 multi-turn: user 6 | assistant 7 + EOS (terminal) | user 8 | assistant 14 + EOS (terminal)
      1 truncated: prompt 5 | 15 supervised, the last one not terminal (bootstrap row 19, padding after it)
      2 EOS-ended prompt/completion: prompt 3 | completion 5 + EOS (terminal)
      3 long prompt, short completion: prompt 25 (contains an unsupervised id 96) | completion 3 + EOS
    edge (lengths 24, 11, 6, 2): the truncated row is the longest (its bootstrap row is T-1), supervision
      starts at token 1, a two-token row whose only supervised token is a terminal EOS, a truncated row whose
      second assistant turn is cut after one token."""
    rows = []

    def row(segments):
        ids, flags = [], []
        for kind, toks in segments:
            for j, t in enumerate(toks):
                ids.append(t)
                flags.append({"p": 0, "s": 1, "e": 3}[kind])
        return {"ids": ids, "flags": flags}

    if layout == "standard":
        rows.append(row([("p", _toks(rng, 6)), ("s", _toks(rng, 7)), ("e", [EOS]),
                         ("p", _toks(rng, 8)), ("s", _toks(rng, 14)), ("e", [EOS])]))
        rows.append(row([("p", _toks(rng, 5)), ("s", _toks(rng, 15))]))
        rows.append(row([("p", _toks(rng, 3)), ("s", _toks(rng, 5)), ("e", [EOS])]))
        prompt = _toks(rng, 25)
        prompt[11] = EOS
        rows.append(row([("p", prompt), ("s", _toks(rng, 3)), ("e", [EOS])]))
    elif layout == "edge":
        rows.append(row([("p", _toks(rng, 1)), ("s", _toks(rng, 23))]))
        rows.append(row([("p", _toks(rng, 2)), ("s", _toks(rng, 4)), ("e", [EOS]), ("p", _toks(rng, 3)),
                         ("s", _toks(rng, 1))]))
        rows.append(row([("p", _toks(rng, 2)), ("s", _toks(rng, 3)), ("e", [EOS])]))
        rows.append(row([("p", _toks(rng, 1)), ("e", [EOS])]))
    else:
        raise ValueError(layout)
    return rows


def make_policy_rows(rng):
    """3 sampled completions (the injected policy samples of the online cases; padded, T = 15):
      0 prompt 4 | 9 sampled tokens + EOS (terminal)
      1 prompt 6 | 9 sampled tokens cut at the length limit (the last one not terminal: bootstraps)
      2 prompt 2 | EOS sampled at once (terminal)"""
    def row(p, s, eos):
        ids = _toks(rng, p) + _toks(rng, s) + ([EOS] if eos else [])
        flags = [0] * p + [1] * s + ([3] if eos else [])
        return {"ids": ids, "flags": flags}
    return [row(4, 9, True), row(6, 9, False), row(2, 0, True)]


def build_cases():
    cases = [{"name": "selfcheck", "kind": "selfcheck"}]
    grid = []
    for lam in (0.0, 0.1, 1.0):
        for gamma in (1.0, 0.9):
            for td_grad in ("full", "semi"):
                for trunc in ("bootstrap", "drop"):
                    grid.append({"name": "lam%g_g%g_%s_%s" % (lam, gamma, td_grad, trunc),
                                 "lambda": lam, "gamma": gamma, "td_grad": td_grad, "truncation": trunc})
    cases += grid
    cases.append({"name": "adamw10_lam0.1_g0.99", "lambda": 0.1, "gamma": 0.99, "td_grad": "full",
                  "truncation": "bootstrap", "steps": 10})
    cases.append({"name": "adamw10_mle", "lambda": 0.0, "gamma": 0.99, "td_grad": "full",
                  "truncation": "bootstrap", "steps": 10})
    # strong weight decay (lr * wd = 1e-2 per step): with the settings above, decay on all tensors or on none
    # moves the 10th loss by only ~3e-4 / ~4e-5; here by ~3e-2 / ~1.5e-3. Also semi/drop through the optimizer.
    cases.append({"name": "adamw10_strong_wd", "lambda": 1.0, "gamma": 0.9, "td_grad": "semi",
                  "truncation": "drop", "steps": 10,
                  "optim": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 10.0,
                            "grad_clip": 1.0}})
    # large logits: wte x10 (as the brief) and ln_f.weight x12 -> |logits| up to ~100, past float32's
    # exp overflow (88.7), so an lse without max subtraction gives inf; r_t is large and td dominates.
    cases.append({"name": "large_logits", "lambda": 1.0, "gamma": 0.9, "td_grad": "full",
                  "truncation": "bootstrap", "scale": {"wte.weight": 10.0, "ln_f.weight": 12.0}})
    cases.append({"name": "edge_trunc_at_T", "lambda": 1.0, "gamma": 0.9, "td_grad": "full",
                  "truncation": "bootstrap", "layout": "edge"})
    # online IQLearn (issue #17) on fixed injected policy samples: the value term's mean over the policy rows
    # minus its mean over the expert rows, times alpha; semi and drop change td and the truncated sample
    for name, lam, gamma, td_grad, trunc, mix in (("online_a0.5_g0.9_full_bootstrap", 0.1, 0.9, "full", "bootstrap", 0.5),
                                                  ("online_a2_g1_semi_drop", 1.0, 1.0, "semi", "drop", 2.0),
                                                  ("online_a1_lam0_g0.99_full_bootstrap", 0.0, 0.99, "full", "bootstrap", 1.0)):
        cases.append({"name": name, "lambda": lam, "gamma": gamma, "td_grad": td_grad, "truncation": trunc,
                      "online_mix": mix})
    cases.append({"name": "online_adamw10_a0.3", "lambda": 0.1, "gamma": 0.99, "td_grad": "full",
                  "truncation": "bootstrap", "steps": 10, "online_mix": 0.3})
    # the controls (DESIGN section 10): label smoothing eps (torch's cross_entropy(label_smoothing=eps)) and the
    # entropy bonus beta, alone, with the TD term in every mode, together, through AdamW and with large logits
    for name, lam, gamma, td_grad, trunc, eps, beta in (
            ("ls0.1_mle", 0.0, 0.99, "full", "bootstrap", 0.1, 0.0),
            ("ls0.3_lam0.1_g0.9_full_bootstrap", 0.1, 0.9, "full", "bootstrap", 0.3, 0.0),
            ("ent0.5_mle", 0.0, 0.99, "full", "bootstrap", 0.0, 0.5),
            ("ent0.2_lam1_g0.9_semi_drop", 1.0, 0.9, "semi", "drop", 0.0, 0.2),
            ("ls0.1_ent0.1_lam0.1_g0.99_full_bootstrap", 0.1, 0.99, "full", "bootstrap", 0.1, 0.1),
            ("ls0.2_ent0.3_lam1_g1_full_drop", 1.0, 1.0, "full", "drop", 0.2, 0.3)):
        cases.append({"name": name, "lambda": lam, "gamma": gamma, "td_grad": td_grad, "truncation": trunc,
                      "label_smoothing": eps, "entropy_coef": beta})
    cases.append({"name": "adamw10_ls0.1_ent0.1_lam0.1", "lambda": 0.1, "gamma": 0.99, "td_grad": "full",
                  "truncation": "bootstrap", "steps": 10, "label_smoothing": 0.1, "entropy_coef": 0.1})
    cases.append({"name": "large_logits_ls0.1_ent0.1", "lambda": 1.0, "gamma": 0.9, "td_grad": "full",
                  "truncation": "bootstrap", "scale": {"wte.weight": 10.0, "ln_f.weight": 12.0},
                  "label_smoothing": 0.1, "entropy_coef": 0.1})
    # online IQLearn with the controls: label smoothing and the entropy bonus are terms of the expert rows only,
    # the policy rows' value term has neither (dump_standin.py --bug online_controls puts them there too)
    cases.append({"name": "online_a0.5_ls0.2_ent0.3_lam0.1_g0.9", "lambda": 0.1, "gamma": 0.9, "td_grad": "full",
                  "truncation": "bootstrap", "online_mix": 0.5, "label_smoothing": 0.2, "entropy_coef": 0.3})
    cases.append({"name": "online_adamw10_a1_ls0.1_ent0.1_semi_drop", "lambda": 1.0, "gamma": 0.99,
                  "td_grad": "semi", "truncation": "drop", "steps": 10, "online_mix": 1.0, "label_smoothing": 0.1,
                  "entropy_coef": 0.1})
    for c in cases:
        c["seed"] = zlib.crc32(c["name"].encode())    # per case, stable when cases are added
        c.setdefault("kind", "dump")
    return cases


def case_inputs(case):
    cfg = ref.make_config(n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=VOCAB)
    params = ref.init_params(cfg, case["seed"])
    for name, s in case.get("scale", {}).items():
        params[name] = (params[name] * np.float32(s)).astype(np.float32)
    rng = np.random.default_rng(case["seed"] + 7)
    batch = {"rows": make_rows(rng, case.get("layout", "standard")), "lambda": case["lambda"],
             "gamma": case["gamma"], "td_grad": case["td_grad"], "truncation": case["truncation"],
             "steps": case.get("steps", 1), "optim": dict(case.get("optim", OPTIM))}
    if "online_mix" in case:
        batch["online"] = {"mix": case["online_mix"], "rows": make_policy_rows(rng)}
    for key in ("label_smoothing", "entropy_coef"):
        if case.get(key):
            batch[key] = case[key]
    return cfg, params, batch


# --------------------------------------------------------------------------------------------------
# reference self-checks

def check_reference_case(r, batch):
    """Per case: the analytic dL/dlogits (the formula the C code implements) equals autograd's, and
    lambda = 0 (without the entropy bonus) equals torch's cross-entropy, with the case's label smoothing.
    -> (relative error, list of failure messages)."""
    fails = []
    ag, an = r["dlogits_autograd"], r["dlogits_analytic"]
    err = float(np.abs(ag - an).max() / max(np.abs(ag).max(), 1e-300))
    if not err <= TOL_SELF:
        fails.append("REFERENCE: analytic dL/dlogits != autograd (max rel %.3g)" % err)
    if "pol_dlogits_autograd" in r:
        pg, pa = r["pol_dlogits_autograd"], r["pol_dlogits_analytic"]
        e = float(np.abs(pg - pa).max() / max(np.abs(pg).max(), 1e-300))
        err = max(err, e)
        if not e <= TOL_SELF:
            fails.append("REFERENCE: analytic dL/dlogits of the policy rows != autograd (max rel %.3g)" % e)
    if batch["lambda"] == 0.0 and "online" not in batch and not batch.get("entropy_coef"):
        e1 = abs(r["loss"] - r["cross_entropy"]) / abs(r["cross_entropy"])
        e2 = float(np.abs(ag - r["dlogits_cross_entropy"]).max() / np.abs(ag).max())
        if not (e1 <= 1e-13 and e2 <= 1e-12):
            fails.append("REFERENCE: lambda 0 != cross-entropy (label smoothing %g) (loss %.3g, dlogits %.3g)"
                         % (batch.get("label_smoothing", 0.0), e1, e2))
    return err, fails


def selfcheck():
    """Reference against independent implementations. -> (summary, failures)."""
    fails = []
    notes = []
    torch.manual_seed(0)
    # GELU and LayerNorm against torch's
    x = torch.randn(1000, dtype=torch.float64) * 4
    e = float((ref.gelu_tanh(x) - F.gelu(x, approximate="tanh")).abs().max())
    if e > 1e-14:
        fails.append("gelu_tanh != F.gelu(approximate='tanh'): %.3g" % e)
    w, b = torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    x = torch.randn(5, 64, dtype=torch.float64)
    e = float((ref.layer_norm(x, w, b, 1e-5) - F.layer_norm(x, (64,), w, b, 1e-5)).abs().max())
    if e > 1e-13:
        fails.append("layer_norm != F.layer_norm: %.3g" % e)

    # the model against nn.TransformerEncoderLayer (norm_first, tanh GELU, causal mask) + tied head
    cfg = ref.make_config(n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=VOCAB)
    params = ref.init_params(cfg, 99)
    tp = ref.to_torch(params, requires_grad=False)
    rows = make_rows(np.random.default_rng(5))
    ids, lengths = ref.pad_batch(rows)
    T, C, H = ids.shape[1], cfg["n_embd"], cfg["n_head"]
    with torch.no_grad():
        mine = ref.forward(tp, ids, cfg)
        xx = tp["wte.weight"][ids] + tp["wpe.weight"][:T]
        mask = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), diagonal=1)
        for i in range(cfg["n_layer"]):
            h = "h.%d." % i
            layer = torch.nn.TransformerEncoderLayer(
                C, H, dim_feedforward=4 * C, dropout=0.0, activation=lambda t: F.gelu(t, approximate="tanh"),
                layer_norm_eps=1e-5, batch_first=True, norm_first=True).double()
            layer.self_attn.in_proj_weight.copy_(tp[h + "attn.c_attn.weight"].t())
            layer.self_attn.in_proj_bias.copy_(tp[h + "attn.c_attn.bias"])
            layer.self_attn.out_proj.weight.copy_(tp[h + "attn.c_proj.weight"].t())
            layer.self_attn.out_proj.bias.copy_(tp[h + "attn.c_proj.bias"])
            layer.linear1.weight.copy_(tp[h + "mlp.c_fc.weight"].t())
            layer.linear1.bias.copy_(tp[h + "mlp.c_fc.bias"])
            layer.linear2.weight.copy_(tp[h + "mlp.c_proj.weight"].t())
            layer.linear2.bias.copy_(tp[h + "mlp.c_proj.bias"])
            layer.norm1.weight.copy_(tp[h + "ln_1.weight"])
            layer.norm1.bias.copy_(tp[h + "ln_1.bias"])
            layer.norm2.weight.copy_(tp[h + "ln_2.weight"])
            layer.norm2.bias.copy_(tp[h + "ln_2.bias"])
            xx = layer(xx, src_mask=mask)
        theirs = F.layer_norm(xx, (C,), tp["ln_f.weight"], tp["ln_f.bias"], 1e-5) @ tp["wte.weight"].t()
        e = float((mine - theirs).abs().max() / theirs.abs().max())
        notes.append("model vs nn.TransformerEncoderLayer %.1e" % e)
        if e > 1e-12:
            fails.append("forward != nn.TransformerEncoderLayer model: %.3g" % e)
        # causality and padding: each row alone gives the same logits as in the padded batch
        for bi, r in enumerate(rows):
            alone = ref.forward(tp, torch.tensor([r["ids"]]), cfg)[0]
            e = float((alone - mine[bi, :lengths[bi]]).abs().max())
            if e > 1e-12:
                fails.append("row %d alone != row %d in the padded batch: %.3g" % (bi, bi, e))

    # analytic dL/dlogits against central finite differences of the loss (td_grad full: a true gradient)
    z0 = mine.detach().clone()
    worst = 0.0
    g = torch.Generator().manual_seed(1)
    for trunc in ("bootstrap", "drop"):
        for lam, gamma, eps, beta in ((1.0, 0.9, 0.0, 0.0), (0.1, 1.0, 0.0, 0.0), (0.0, 0.9, 0.2, 0.0),
                                      (0.0, 0.9, 0.0, 0.5), (1.0, 0.9, 0.2, 0.5)):
            an = torch.from_numpy(ref.analytic_dlogits(z0, rows, lam, gamma, "full", trunc, eps, beta))
            for _ in range(3):
                u = torch.randn(z0.shape, generator=g, dtype=torch.float64)
                hstep = 1e-5
                lp = float(ref.iqlearn_loss(z0 + hstep * u, rows, lam, gamma, "full", trunc, eps, beta)["loss"])
                lm = float(ref.iqlearn_loss(z0 - hstep * u, rows, lam, gamma, "full", trunc, eps, beta)["loss"])
                fd = (lp - lm) / (2 * hstep)
                dd = float((an * u).sum())
                worst = max(worst, abs(fd - dd) / max(abs(dd), 1e-12))
    notes.append("analytic vs finite differences %.1e" % worst)
    if worst > 1e-7:
        fails.append("analytic dL/dlogits != finite differences: %.3g" % worst)

    # AdamW (torch.optim.AdamW, two groups) and clipping against the formulas, 3 steps
    names = ["h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "wte.weight"]
    rng = np.random.default_rng(3)
    init = {n: rng.standard_normal((4, 3)) for n in names}
    tps = {n: torch.tensor(a, requires_grad=True) for n, a in init.items()}
    opt = ref.make_adamw(tps, OPTIM)
    man = {n: a.copy() for n, a in init.items()}
    m = {n: np.zeros_like(a) for n, a in init.items()}
    v = {n: np.zeros_like(a) for n, a in init.items()}
    o = OPTIM
    for k in range(1, 4):
        grads = {n: rng.standard_normal((4, 3)) * (0.2 if k == 2 else 3.0) for n in names}
        for n in names:
            tps[n].grad = torch.tensor(grads[n])
        ref.clip_grad_norm(list(tps.values()), o["grad_clip"])
        opt.step()
        total = math.sqrt(sum(float((gg ** 2).sum()) for gg in grads.values()))
        coef = o["grad_clip"] / (total + 1e-6)
        for n in names:
            gg = grads[n] * coef if coef < 1 else grads[n]
            if ref.is_decayed(n):
                man[n] *= 1 - o["lr"] * o["weight_decay"]
            m[n] = o["beta1"] * m[n] + (1 - o["beta1"]) * gg
            v[n] = o["beta2"] * v[n] + (1 - o["beta2"]) * gg * gg
            man[n] -= (o["lr"] / (1 - o["beta1"] ** k)) * m[n] / (
                np.sqrt(v[n]) / math.sqrt(1 - o["beta2"] ** k) + o["eps"])
    e = max(float(np.abs(tps[n].detach().numpy() - man[n]).max()) for n in names)
    notes.append("AdamW+clip vs formula %.1e" % e)
    if e > 1e-13:
        fails.append("torch AdamW/clip != the formula: %.3g" % e)
    return "  ".join(notes), fails


# --------------------------------------------------------------------------------------------------
# comparing the program's output

def scalar_ok(c, r, rtol=None, atol=ATOL_SCALAR):
    rtol = TOL_SCALAR if rtol is None else rtol
    if not (isinstance(c, (int, float)) and math.isfinite(c)):
        return False, float("inf")
    diff = abs(c - r)
    return diff <= max(rtol * abs(r), atol), diff / max(abs(r), atol)


def compare(out_dir, r, cfg, batch):
    """-> (summary dict, list of failure messages)."""
    fails = []
    summ = {}
    B = len(batch["rows"])
    T = max(r["lengths"])
    # result.json
    try:
        with open(os.path.join(out_dir, "result.json")) as f:
            res = json.load(f)
    except Exception as ex:   # noqa: BLE001
        return summ, ["result.json unreadable: %s" % ex]
    for key in SCALARS + (("online_value_gap",) if "online" in batch else ()):
        if key not in res:
            fails.append("result.json: no %r" % key)
            continue
        ok, err = scalar_ok(res[key], r[key])
        summ[key] = err
        if not ok:
            fails.append("%s: got %r, reference %.10g (rel %.3g)" % (key, res[key], r[key], err))
    if res.get("n_supervised") != r["n_supervised"]:
        fails.append("n_supervised: got %r, reference %d" % (res.get("n_supervised"), r["n_supervised"]))
    losses = res.get("losses")
    if not isinstance(losses, list) or len(losses) != len(r["losses"]):
        fails.append("losses: expected a list of %d, got %r" % (len(r["losses"]), losses))
    else:
        worst, wk = 0.0, 0
        for k, (c, rr) in enumerate(zip(losses, r["losses"])):
            ok, err = scalar_ok(c, rr, TOL_LOSSES, 0.0)
            if err > worst or not ok:
                worst, wk = max(err, worst), k
            if not ok:
                fails.append("losses[%d]: got %r, reference %.10g (rel %.3g)" % (k, c, rr, err))
        summ["losses"] = (worst, wk)
    # logits
    try:
        t, _, dts = ref.load_safetensors(os.path.join(out_dir, "logits.safetensors"), with_dtypes=True)
        lg = t["logits"]
        if dts["logits"] != "F32":
            fails.append("logits: dtype %s, expected F32" % dts["logits"])
        if lg.shape != (B, T, cfg["vocab_size"]):
            fails.append("logits: shape %r, expected %r" % (lg.shape, (B, T, cfg["vocab_size"])))
        else:
            worst = 0.0
            scale = max(float(np.abs(r["logits"]).max()), 1e-7)
            for b, L in enumerate(r["lengths"]):
                c = lg[b, :L].astype(np.float64)
                if not np.isfinite(c).all():
                    worst = float("inf")
                    break
                worst = max(worst, float(np.abs(c - r["logits"][b, :L]).max()) / scale)
            summ["logits"] = worst
            if not worst <= TOL_LOGITS:
                fails.append("logits: max |diff| / max |ref| = %.3g" % worst)
    except Exception as ex:   # noqa: BLE001
        fails.append("logits.safetensors unreadable: %s" % ex)
    # gradients
    try:
        g, _, dts = ref.load_safetensors(os.path.join(out_dir, "grads.safetensors"), with_dtypes=True)
        names = ref.param_names(cfg)
        extra = sorted(set(g) - set(names))
        if extra:
            fails.append("grads: unexpected tensors %s" % extra)
        worst, wname = 0.0, ""
        for n in names:
            if n not in g:
                fails.append("grads: missing %s" % n)
                continue
            if dts[n] != "F32":
                fails.append("grads: %s dtype %s, expected F32" % (n, dts[n]))
            gr = r["grads"][n]
            gc = g[n].astype(np.float64)
            if gc.shape != gr.shape:
                fails.append("grads: %s shape %r, expected %r" % (n, gc.shape, gr.shape))
                continue
            nr = float(np.linalg.norm(gr))
            if not np.isfinite(gc).all():
                err = float("inf")
            elif nr < 1e-12:
                err = float(np.linalg.norm(gc))
                if err > 1e-7:
                    fails.append("grad %s: |g| = %.3g where the reference is 0" % (n, err))
                    err = float("inf")
                else:
                    continue
            else:
                err = float(np.linalg.norm(gc - gr)) / nr
            if err > worst or (err != err):
                worst, wname = err, n
            if not err <= TOL_GRAD:
                fails.append("grad %s: rel err %.3g (|g_ref| %.3g)" % (n, err, nr))
        summ["grad"] = (worst, wname)
    except Exception as ex:   # noqa: BLE001
        fails.append("grads.safetensors unreadable: %s" % ex)
    return summ, fails


class SkipRun(Exception):
    """The program exited 77: it cannot run this precision here."""


PRECISION = "fp32"


def run_case(case, dump_cmd, base_dir, timeout, verbose):
    """-> (ok, line, detail lines)."""
    t0 = time.perf_counter()
    if case["kind"] == "selfcheck":
        notes, fails = selfcheck()
        return not fails, "%-26s %s" % (case["name"], notes), fails
    cfg, params, batch = case_inputs(case)
    case_dir = os.path.join(base_dir, case["name"])
    if os.path.exists(case_dir):
        shutil.rmtree(case_dir)
    model_dir, out_dir = os.path.join(case_dir, "model"), os.path.join(case_dir, "out")
    os.makedirs(out_dir)
    ref.save_model(model_dir, cfg, params)
    batch_path = os.path.join(case_dir, "batch.json")
    with open(batch_path, "w") as f:
        json.dump(batch, f)
    # the reference starts from the float32 weights that were written
    cfg_r, params_r = ref.load_model(model_dir)
    r = ref.reference_run(cfg_r, params_r, batch)
    self_err, fails = check_reference_case(r, batch)
    t_ref = time.perf_counter() - t0
    cmd = list(dump_cmd) + [model_dir, batch_path, out_dir]
    if PRECISION != "fp32":
        cmd = list(dump_cmd) + ["--precision", PRECISION, model_dir, batch_path, out_dir]
    t1 = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "%-26s program timed out after %g s" % (case["name"], timeout), fails
    except OSError as ex:
        return False, "%-26s cannot run %s: %s" % (case["name"], cmd[0], ex), fails
    t_dump = time.perf_counter() - t1
    if p.returncode == 77:
        raise SkipRun(p.stderr.decode("utf-8", "replace").strip())
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()[-40:]
        return False, "%-26s program exited %d" % (case["name"], p.returncode), fails + ["stderr: " + l for l in err]
    summ, cfails = compare(out_dir, r, cfg, batch)
    fails += cfails
    gw, gn = summ.get("grad", (float("nan"), "?"))
    line = "%-26s grad %.1e (%s)  loss %.1e  logits %.1e  td %.1e  an/ag %.0e" % (
        case["name"], gw, gn, summ.get("loss", float("nan")), summ.get("logits", float("nan")),
        summ.get("td", float("nan")), self_err)
    if "losses" in summ and len(r["losses"]) > 1:
        line += "  steps %.1e (#%d)" % summ["losses"]
    if case.get("scale"):
        line += "  max|logit| %.0f" % float(np.abs(r["logits"]).max())
    if verbose:
        line += "  [ref %.2fs, program %.2fs]" % (t_ref, t_dump)
    return not fails, line, fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", help="the program (or command) run as DUMP MODEL_DIR BATCH_JSON OUT_DIR")
    ap.add_argument("--only", help="comma-separated fnmatch patterns of case names")
    ap.add_argument("--keep", metavar="DIR", help="keep the case folders under DIR")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per program run (default 300)")
    ap.add_argument("--list", action="store_true", help="list the case names and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print the time of each case")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="matmul precision of the program (bf16: the tolerances of the module docstring)")
    args = ap.parse_args()
    global PRECISION
    PRECISION = args.precision
    if PRECISION == "bf16":
        globals().update(BF16_TOLS)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    cases = build_cases()
    if args.list:
        for c in cases:
            print(c["name"])
        return 0
    if args.only:
        pats = [p.strip() for p in args.only.split(",") if p.strip()]
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c["name"], p) for p in pats)]
        if not cases:
            print("test_reference: no case matches --only %r (see --list)" % args.only, file=sys.stderr)
            return 2
    if PRECISION == "bf16":
        cases = [c for c in cases if c["kind"] == "dump"]
    if any(c["kind"] == "dump" for c in cases) and not args.dump:
        print("test_reference: --dump PATH is required", file=sys.stderr)
        return 2
    dump_cmd = shlex.split(args.dump) if args.dump else []
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        base = args.keep
    else:
        base = tempfile.mkdtemp(prefix="iqtrain-reference-")
    passed = failed = 0
    try:
        for c in cases:
            try:
                ok, line, details = run_case(c, dump_cmd, base, args.timeout, args.verbose)
            except SkipRun as ex:
                print("SKIP all cases: %s" % ex, flush=True)
                return 77
            except Exception as ex:   # noqa: BLE001  (a crash in one case fails that case only)
                ok, line, details = False, "%-26s driver error: %s: %s" % (c["name"], type(ex).__name__, ex), []
            print("%s %s" % ("PASS" if ok else "FAIL", line), flush=True)
            for d in details:
                print("       " + d, flush=True)
            if ok:
                passed += 1
            else:
                failed += 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
