#!/usr/bin/python3
"""LoRA adapters (issue #19) on the Llama families and GPT-2 against a PyTorch reference written from the formula
y = W x + b + (alpha/r) B (A x), A (r, in), B (out, r), the base frozen (GPT-2's Conv1D: y = x W + b + the same path,
W (in, out); PEFT's fan_in_fan_out leaves A and B as they are and transposes only the merged delta).

    /usr/bin/python3 tests/reference/test_lora.py --dump PATH [--iqtrain PATH] [--only PATTERNS] [--keep DIR] [--list]

Each case builds a tiny random model folder (llama_reference.py; gpt2_iqlearn.py for the gpt2 cases), runs test_reference_dump with a "lora" object
(rank, alpha, targets; B drawn nonzero so the adapters matter) and compares, in float64, at test_llama.py's
tolerances:
  logits (valid positions)        max |diff| / max |ref| <= 1e-5
  loss, nll, td, rewards          |diff| <= max(1e-5 |ref|, 1e-7)
  the gradients of every A and B  ||g - g_ref|| / ||g_ref|| <= 1e-4 (the dump holds no other gradient)
  the losses of AdamW steps on the adapters only (weight decay on A and B, as torch.optim.AdamW over the
  adapters' parameters, clip_grad_norm_ over them) within 1e-4 relative.
The adapter folder the program writes (adapter_config.json, adapter_model.safetensors) is checked against PEFT's
documented layout: peft_type LORA, r, lora_alpha, target_modules, fan_in_fan_out (true for GPT-2), and tensors named
base_model.model.model.layers.N.{self_attn,mlp}.MODULE.lora_A.weight (r, in) / lora_B.weight (out, r), F32 (GPT-2:
base_model.model.transformer.h.N.{attn,mlp}.MODULE...., c_proj adapting both attn.c_proj and mlp.c_proj).
A fresh adapter (B = 0) gives the base model's logits exactly (the b_std 0 case). With --iqtrain, `iqtrain merge` of the
base and the adapter folder gives a model folder whose logits (PyTorch, plain Llama or GPT-2 forward) equal the unmerged formula's
within 1e-5 relative.
Prints one line per case, then `N passed, M failed`; exit 1 on any failure.
"""
import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt2_iqlearn as ref  # noqa: E402
import llama_reference as lr  # noqa: E402
import test_reference as tr  # noqa: E402

ALL = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
BLOCK = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
         "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
# name -> (model overrides, lora {rank, alpha, targets, b_std}, AdamW steps)
CASES = {
    "lora_llama_gqa_qv_default": (dict(model_type="llama", kv_heads=2, tied=True),
                                  dict(rank=8, alpha=8, targets="q_proj,v_proj", b_std=0.05), 1),
    "lora_llama_all_r4_a16": (dict(model_type="llama", kv_heads=2, tied=False),
                              dict(rank=4, alpha=16, targets=ALL, b_std=0.05), 1),
    "lora_qwen2_bias_all": (dict(model_type="qwen2", kv_heads=2, tied=True, theta=1000000.0, eps=1e-6,
                                 use_sliding_window=False, sliding_window=32, max_window_layers=2),
                            dict(rank=2, alpha=4, targets=ALL, b_std=0.05), 1),
    "lora_qwen3_qknorm_o_down": (dict(model_type="qwen3", kv_heads=2, head_dim=32, tied=True, eps=1e-6),
                                 dict(rank=4, alpha=8, targets="o_proj,down_proj", b_std=0.05), 1),
    "lora_llama_adamw5": (dict(model_type="llama", kv_heads=1, tied=False, attention_bias=True),
                          dict(rank=4, alpha=8, targets=ALL, b_std=0.05), 5),
    "lora_fresh_b0_is_base": (dict(model_type="llama", kv_heads=2, tied=True),
                              dict(rank=8, alpha=8, targets=ALL, b_std=0.0), 1),
    # --base-dtype bf16: the reference runs on the base's matrices rounded to bf16 (the same tolerances), and the
    # adapters' gradients are compared with the fp32 base's too (TOL_BF16_BASE)
    # PEFT's lora_dropout (on the low-rank path's input) with lora.c's masks injected into the reference
    "lora_llama_dropout_all": (dict(model_type="llama", kv_heads=2, tied=True),
                               dict(rank=4, alpha=8, targets=ALL, b_std=0.05, dropout=0.25), 3),
    "lora_llama_base_bf16_all": (dict(model_type="llama", kv_heads=2, tied=True),
                                 dict(rank=4, alpha=8, targets=ALL, b_std=0.05, base_dtype="bf16"), 3),
    "lora_qwen2_base_bf16_bias": (dict(model_type="qwen2", kv_heads=1, tied=False, theta=1000000.0, eps=1e-6,
                                       use_sliding_window=False, sliding_window=32, max_window_layers=2),
                                  dict(rank=2, alpha=4, targets="q_proj,v_proj,down_proj", b_std=0.05,
                                       base_dtype="bf16"), 1),
    # GPT-2 (HF Conv1D layers): c_proj adapts attn.c_proj and mlp.c_proj both, as PEFT's name matching does
    "lora_gpt2_default_c_attn": (dict(model_type="gpt2"), dict(rank=8, alpha=8, targets="c_attn", b_std=0.05), 1),
    "lora_gpt2_all_r4_adamw3": (dict(model_type="gpt2"), dict(rank=4, alpha=16, targets="c_attn,c_proj,c_fc",
                                                              b_std=0.05), 3),
    "lora_gpt2_dropout_mlp": (dict(model_type="gpt2"), dict(rank=4, alpha=8, targets="mlp.c_proj,c_fc", b_std=0.05,
                                                            dropout=0.25), 3),
    "lora_gpt2_fresh_b0_is_base": (dict(model_type="gpt2"), dict(rank=4, alpha=8, targets="c_attn,c_proj,c_fc",
                                                                 b_std=0.0), 1),
    # --train-head (an untied lm_head): the head's gradient is the full model's, AdamW steps it with the adapters
    "lora_llama_train_head": (dict(model_type="llama", kv_heads=2, tied=False),
                              dict(rank=4, alpha=8, targets="q_proj,v_proj", b_std=0.05, train_head=True), 3),
}
HEAD = "base_model.model.lm_head.weight"
# GPT-2's targets: PEFT name -> the modules it adapts (block.module), their family index (the dropout key's)
GPT2_MODULES = {"c_attn": ["attn.c_attn"], "c_proj": ["attn.c_proj", "mlp.c_proj"], "c_fc": ["mlp.c_fc"],
                "attn.c_proj": ["attn.c_proj"], "mlp.c_proj": ["mlp.c_proj"]}
GPT2_INDEX = {"attn.c_attn": 0, "attn.c_proj": 1, "mlp.c_fc": 2, "mlp.c_proj": 3}


def is_gpt2(cfg):
    return cfg.get("model_type") == "gpt2"
# A bf16 base against the fp32 one: rounding to bf16 (8 significant bits, to nearest) moves each weight by at most
# 2^-8 of itself, about 2^-8/sqrt(3) ~ 2.3e-3 RMS, so each product's output moves by ~2.3e-3 relative; the adapters'
# gradients pass through ~10 such products of the tiny models (forward and backward): ||g - g_fp32|| / ||g_fp32||
# <= 2e-2 (measured: see the case lines).
TOL_BF16_BASE = 2e-2


def round_bf16(a):
    """float64/32 values rounded to bf16 (to nearest, ties to even), as float64."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def bf16_base(params):
    """The base as --base-dtype bf16 holds it: the layers' weight matrices rounded, the rest as it is."""
    return {n: round_bf16(v) if n.startswith("model.layers.") and np.ndim(v) == 2 else v for n, v in params.items()}


TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
M64 = (1 << 64) - 1


def splitmix64(z):
    """lora.c's splitmix64 on uint64 numpy arrays (or Python ints)."""
    if isinstance(z, int):
        z = (z + 0x9E3779B97F4A7C15) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def dropout_mask(seed, pas, layer, target, shape, p):
    """lora.h's mask: element i (row-major) kept when splitmix64(key ^ i) >> 40 >= ceil(p 2^24); kept ones scaled
    by 1/(1-p). key = splitmix64(splitmix64(splitmix64(seed) ^ pass) ^ (layer * 7 + target)), target the index in its
    family (TARGETS; GPT2_INDEX for GPT-2's block.module)."""
    index = GPT2_INDEX[target] if target in GPT2_INDEX else TARGETS.index(target)
    key = splitmix64(splitmix64(splitmix64(seed) ^ pas) ^ (layer * len(TARGETS) + index))
    i = np.arange(int(np.prod(shape)), dtype=np.uint64)
    keep = (splitmix64(np.uint64(key) ^ i) >> np.uint64(40)) >= np.uint64(int(np.ceil(p * 16777216.0)))
    return torch.from_numpy(keep.reshape(shape).astype(np.float64) / (1.0 - p))


def lora_linear(adapters, scale, base_linear, drop=None):
    """lr.linear with the adapters' low-rank path added on their targets; drop = {"p", "seed", "pass"}: PEFT's
    lora_dropout on the path's input with lora.c's masks."""
    def linear(x, p, name):
        y = base_linear(x, p, name)
        key = "base_model.model." + name
        if key + ".lora_A.weight" in adapters:
            xin = x
            if drop and drop["p"] > 0:
                parts = name.split(".")   # model.layers.N.block.target
                xin = x * dropout_mask(drop["seed"], drop["pass"], int(parts[2]), parts[4], tuple(x.shape), drop["p"])
            y = y + scale * ((xin @ adapters[key + ".lora_A.weight"].t()) @ adapters[key + ".lora_B.weight"].t())
        return y
    return linear


def gpt2_lora_forward(p, ids, cfg, adapters, scale, drop):
    """gpt2_iqlearn.forward with the adapters' path on their targets: x W + b + scale ((drop(x) A^T) B^T)."""
    B, T = ids.shape
    eps, H, C = cfg.get("layer_norm_epsilon", 1e-5), cfg["n_head"], cfg["n_embd"]
    D = C // H

    def conv1d(x, layer, module):
        name = "h.%d.%s" % (layer, module)
        y = x @ p[name + ".weight"] + p[name + ".bias"]
        key = "base_model.model.transformer." + name
        if key + ".lora_A.weight" in adapters:
            xin = x
            if drop and drop["p"] > 0:
                xin = x * dropout_mask(drop["seed"], drop["pass"], layer, module, tuple(x.shape), drop["p"])
            y = y + scale * ((xin @ adapters[key + ".lora_A.weight"].t()) @ adapters[key + ".lora_B.weight"].t())
        return y

    x = p["wte.weight"][ids] + p["wpe.weight"][:T].unsqueeze(0)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layer"]):
        h = "h.%d." % i
        a = ref.layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps)
        q, k, v = conv1d(a, i, "attn.c_attn").split(C, dim=-1)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        att = ((q @ k.transpose(-1, -2)) * (1.0 / np.sqrt(D))).masked_fill(~mask, float("-inf"))
        y = (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + conv1d(y, i, "attn.c_proj")
        m = ref.gelu_tanh(conv1d(ref.layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps), i, "mlp.c_fc"))
        x = x + conv1d(m, i, "mlp.c_proj")
    x = ref.layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], eps)
    return x @ p["wte.weight"].t()


def load_model(folder):
    """(cfg, params) of a Llama-family or GPT-2 folder."""
    with open(os.path.join(folder, "config.json")) as f:
        gpt2 = json.load(f).get("model_type") == "gpt2"
    return ref.load_model(folder) if gpt2 else lr.load_folder(folder)


def plain_forward(tp, ids, cfg):
    return ref.forward(tp, ids, cfg) if is_gpt2(cfg) else lr.forward(tp, ids, cfg)


def reference(cfg, params, adapters, scale, batch, steps):
    """Step 1's logits, loss terms and the adapters' gradients (base frozen), and the losses of `steps` AdamW steps
    on the adapters, float64."""
    rows = batch["rows"]
    tp = ref.to_torch(params, requires_grad=False)
    ta = ref.to_torch(adapters)
    if HEAD in ta:   # --train-head: the head is the adapter folder's copy, trained (no weight decay, as iqtrain's)
        tp["lm_head.weight"] = ta[HEAD]
    ids, lengths = ref.pad_batch(rows)
    base_linear = lr.linear
    lo = batch["lora"]
    drop = {"p": lo.get("dropout", 0.0), "seed": lo["seed"], "pass": 0}
    lr.linear = lora_linear(ta, scale, base_linear, drop)
    forward = (lambda tp_, ids_, cfg_: gpt2_lora_forward(tp_, ids_, cfg_, ta, scale, drop)) if is_gpt2(cfg) else lr.forward
    try:
        o = batch["optim"]
        groups = [{"params": [t for n, t in ta.items() if n != HEAD]}]
        if HEAD in ta:
            groups.append({"params": [ta[HEAD]], "weight_decay": 0.0})
        opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                weight_decay=o["weight_decay"])
        losses, out = [], {}
        for s in range(steps):
            for t in ta.values():
                t.grad = None
            drop["pass"] = s * 65536   # iq_train_step: AdamW steps so far x 65536 + the micro-batch
            logits = forward(tp, ids, cfg)
            res = ref.iqlearn_loss(logits, rows, float(batch["lambda"]), float(batch["gamma"]), batch["td_grad"],
                                   batch["truncation"])
            res["loss"].backward()
            losses.append(float(res["loss"].detach()))
            if s == 0:
                lg = logits.detach().numpy().copy()
                for b, L in enumerate(lengths):
                    lg[b, L:] = 0.0
                out = {"logits": lg, "lengths": lengths, "grads": {n: t.grad.numpy().copy() for n, t in ta.items()}}
                for key in ("loss", "nll", "td"):
                    out[key] = float(res[key].detach())
                for key in ("n_supervised", "reward_mean", "reward_abs_mean", "reward_abs_max"):
                    out[key] = res[key]
            ref.clip_grad_norm(list(ta.values()), o["grad_clip"])
            opt.step()
        out["losses"] = losses
        return out
    finally:
        lr.linear = base_linear


def check_layout(d, cfg, lo):
    """adapter_config.json and adapter_model.safetensors against PEFT's documented layout."""
    fails = []
    with open(os.path.join(d, "adapter_config.json")) as f:
        ac = json.load(f)
    want = {"peft_type": "LORA", "r": lo["rank"], "lora_alpha": lo["alpha"], "task_type": "CAUSAL_LM",
            "bias": "none", "lora_dropout": lo.get("dropout", 0), "fan_in_fan_out": is_gpt2(cfg),
            "modules_to_save": ["lm_head"] if lo.get("train_head") else None}
    for k, v in want.items():
        if ac.get(k) != v:
            fails.append("adapter_config.json: %s = %r, want %r" % (k, ac.get(k), v))
    targets = lo["targets"].split(",")
    if sorted(ac.get("target_modules", [])) != sorted(targets):
        fails.append("adapter_config.json: target_modules %r" % ac.get("target_modules"))
    t, _, dt = ref.load_safetensors(os.path.join(d, "adapter_model.safetensors"), with_dtypes=True)
    r = lo["rank"]
    want_t = {}
    if is_gpt2(cfg):
        C = cfg["n_embd"]
        io = {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C), "mlp.c_fc": (C, 4 * C), "mlp.c_proj": (4 * C, C)}
        for layer in range(cfg["n_layer"]):
            for m in sorted({x for name in targets for x in GPT2_MODULES[name]}):
                pre = "base_model.model.transformer.h.%d.%s." % (layer, m)
                want_t[pre + "lora_A.weight"] = (r, io[m][0])
                want_t[pre + "lora_B.weight"] = (io[m][1], r)
    else:
        H, K, D = lr.dims(cfg)
        C, I = cfg["hidden_size"], cfg["intermediate_size"]
        io = {"q_proj": (C, H * D), "k_proj": (C, K * D), "v_proj": (C, K * D), "o_proj": (H * D, C),
              "gate_proj": (C, I), "up_proj": (C, I), "down_proj": (I, C)}
        for layer in range(cfg["num_hidden_layers"]):
            for m in targets:
                pre = "base_model.model.model.layers.%d.%s.%s." % (layer, BLOCK[m], m)
                want_t[pre + "lora_A.weight"] = (r, io[m][0])
                want_t[pre + "lora_B.weight"] = (io[m][1], r)
    if lo.get("train_head"):   # PEFT's ModulesToSaveWrapper saves the module's weight under its own name
        want_t[HEAD] = (cfg["vocab_size"], cfg["hidden_size"])
    if sorted(t) != sorted(want_t):
        fails.append("adapter tensors: extra %s, missing %s" % (sorted(set(t) - set(want_t))[:3],
                                                               sorted(set(want_t) - set(t))[:3]))
    for n, shape in want_t.items():
        if n in t and (tuple(t[n].shape) != shape or dt[n] != "F32"):
            fails.append("%s: %s %s, want F32 %s" % (n, dt[n], t[n].shape, shape))
    # PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_, a = sqrt(5))
    for n, a in t.items():
        if n.endswith("lora_A.weight"):
            bound = 1.0 / np.sqrt(a.shape[1])
            if not (np.abs(a).max() <= bound and np.abs(a).max() > 0.5 * bound):
                fails.append("%s: max |A| %.4g outside PEFT's init bound %.4g" % (n, np.abs(a).max(), bound))
    return t, fails


def run_case(name, work, dump, iqtrain=None):
    over, lo, steps = CASES[name]
    seed = zlib.crc32(name.encode())
    gpt2 = over.get("model_type") == "gpt2"
    cfg = ref.make_config() if gpt2 else lr.make_config(**over)
    params = ref.init_params(cfg, seed) if gpt2 else lr.init_params(cfg, seed)
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    if gpt2:
        ref.save_model(os.path.join(d, "model"), cfg, params)
    else:
        lr.save_folder(os.path.join(d, "model"), cfg, params, "F32", 1)
    rng = np.random.default_rng(seed + 7)
    batch = {"rows": tr.make_rows(rng), "lambda": 0.1, "gamma": 0.99, "td_grad": "full", "truncation": "bootstrap",
             "steps": steps, "optim": dict(tr.OPTIM, weight_decay=1.0 if steps > 1 else 0.1),
             "lora": dict(lo, seed=seed % 1000)}
    with open(os.path.join(d, "batch.json"), "w") as f:
        json.dump(batch, f)
    p = subprocess.run([dump, os.path.join(d, "model"), os.path.join(d, "batch.json"), os.path.join(d, "out")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        return False, "program exited %d" % p.returncode, [p.stderr.decode(errors="replace")[-2000:]]
    adapters, fails = check_layout(os.path.join(d, "out", "adapter"), cfg, lo)
    cfg_r, params_r = load_model(os.path.join(d, "model"))
    half = lo.get("base_dtype") == "bf16"
    r = reference(cfg_r, bf16_base(params_r) if half else params_r, adapters, lo["alpha"] / lo["rank"], batch, steps)
    with open(os.path.join(d, "out", "result.json")) as f:
        res = json.load(f)
    worst_s = 0.0
    for key in tr.SCALARS:
        ok, err = tr.scalar_ok(res.get(key), r[key])
        worst_s = max(worst_s, err)
        if not ok:
            fails.append("%s: got %r, reference %.10g" % (key, res.get(key), r[key]))
    lg = ref.load_safetensors(os.path.join(d, "out", "logits.safetensors"))[0]["logits"]
    scale = float(np.abs(r["logits"]).max())
    e_logits = max(float(np.abs(lg[b, :L] - r["logits"][b, :L]).max()) for b, L in enumerate(r["lengths"])) / scale
    if not e_logits <= tr.TOL_LOGITS:
        fails.append("logits: max |diff| / max |ref| = %.3g" % e_logits)
    g = {"base_model.model." + n: a for n, a in ref.load_safetensors(os.path.join(d, "out", "grads.safetensors"))[0].items()}
    if sorted(g) != sorted(adapters):
        fails.append("gradient names differ from the adapter's tensors")
    worst, wname = 0.0, ""
    for n in adapters:
        if n not in g:
            continue
        e = rel_grad(g[n], r["grads"][n]) if np.isfinite(g[n]).all() else float("inf")
        if e > worst or e != e:
            worst, wname = e, n.replace("base_model.model.model.", "").replace("base_model.model.transformer.", "")
        if not e <= tr.TOL_GRAD:
            fails.append("grad %s: rel err %.3g" % (n, e))
    line = "grad %.1e (%s)  logits %.1e  scalars %.1e  loss %.5f" % (worst, wname, e_logits, worst_s, r["loss"])
    if HEAD in g:   # --train-head: the head's gradient against the full model's (autograd through the same loss)
        line += "  head grad %.1e" % rel_grad(g[HEAD], r["grads"][HEAD])
    if lo["b_std"] == 0.0:   # a fresh adapter: the base model's logits, B's gradient nonzero, A's zero
        tb = ref.to_torch(params_r, requires_grad=False)
        base = plain_forward(tb, ref.pad_batch(batch["rows"])[0], cfg_r).detach().numpy()
        e_base = max(float(np.abs(lg[b, :L] - base[b, :L]).max()) for b, L in enumerate(r["lengths"])) / scale
        nb = sum(float(np.abs(v).sum()) for k, v in g.items() if "lora_B" in k)
        na = sum(float(np.abs(v).sum()) for k, v in g.items() if "lora_A" in k)
        if not (e_base <= tr.TOL_LOGITS and nb > 0 and na == 0):
            fails.append("fresh adapter: logits vs base %.3g, |dB| %.3g, |dA| %.3g" % (e_base, nb, na))
        line += "  base %.1e" % e_base
    if iqtrain:   # `iqtrain merge` of the folder the program wrote: the merged weights' logits are the adapter model's
        # (merge reads the fp32 base folder and applies no dropout: compare with that model, not the training step's)
        rm = r
        if half or lo.get("dropout", 0.0) > 0:
            rm = reference(cfg_r, params_r, adapters, lo["alpha"] / lo["rank"],
                           dict(batch, steps=1, lora=dict(batch["lora"], dropout=0.0)), 1)
        e_merged = check_merged(iqtrain, d, batch, rm, scale, fails)
        line += "  merged %.1e" % e_merged
    if half:   # the fp32 base's gradients: within what rounding the weights explains
        r32 = reference(cfg_r, params_r, adapters, lo["alpha"] / lo["rank"], dict(batch, steps=1), 1)
        e32 = max(rel_grad(g[n], r32["grads"][n]) for n in adapters if n in g)
        moved = max(rel_grad(g[n], r["grads"][n]) for n in adapters if n in g)
        if not (e32 <= TOL_BF16_BASE and e32 > moved):
            fails.append("bf16 base vs fp32 base: adapter gradients rel err %.3g (bound %.0e)" % (e32, TOL_BF16_BASE))
        line += "  vs fp32 base %.1e" % e32
    if steps > 1:
        got = res.get("losses", [])
        e = max((abs(a - b) / abs(b) for a, b in zip(got, r["losses"])), default=float("inf"))
        if len(got) != steps or not e <= tr.TOL_LOSSES:
            fails.append("AdamW losses %r, reference %r" % (got, r["losses"]))
        line += "  %d AdamW steps %.1e (%.4f -> %.4f)" % (steps, e, r["losses"][0], r["losses"][-1])
    return not fails, line, fails


def check_merged(iqtrain, d, batch, r, scale, fails):
    """iqtrain merge --model d/model --adapter d/out/adapter: the merged folder's logits (PyTorch, no adapters) against
    the unmerged formula's, max |diff| / max |ref| <= 1e-5."""
    merged = os.path.join(d, "merged")
    shutil.rmtree(merged, ignore_errors=True)
    p = subprocess.run([iqtrain, "merge", "--model", os.path.join(d, "model"), "--adapter", os.path.join(d, "out", "adapter"),
                        "--out", merged], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        fails.append("iqtrain merge exited %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-500:]))
        return float("inf")
    cfg_m, params_m = load_model(merged)
    tm = ref.to_torch(params_m, requires_grad=False)
    lg = plain_forward(tm, ref.pad_batch(batch["rows"])[0], cfg_m).detach().numpy()
    e = max(float(np.abs(lg[b, :L] - r["logits"][b, :L]).max()) for b, L in enumerate(r["lengths"])) / scale
    if not e <= tr.TOL_LOGITS:
        fails.append("merged logits: max |diff| / max |ref| = %.3g against the unmerged formula" % e)
    return e


def rel_grad(gc, gr):
    nr = float(np.linalg.norm(gr))
    if nr < 1e-12:
        return float(np.linalg.norm(gc))
    return float(np.linalg.norm(gc.astype(np.float64) - gr)) / nr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", required=True)
    ap.add_argument("--iqtrain", help="the iqtrain binary: also check `iqtrain merge`'s folder")
    ap.add_argument("--only")
    ap.add_argument("--keep")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    todo = list(CASES)
    if args.list:
        print("\n".join(todo))
        return 0
    if args.only:
        pats = args.only.split(",")
        todo = [c for c in todo if any(fnmatch.fnmatchcase(c, p) for p in pats)]
    work = args.keep or tempfile.mkdtemp(prefix="iqtrain-lora-")
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    passed = failed = 0
    try:
        for name in todo:
            try:
                ok, line, det = run_case(name, work, args.dump, args.iqtrain)
            except Exception as ex:  # noqa: BLE001
                ok, line, det = False, "driver error: %s: %s" % (type(ex).__name__, ex), []
            print("%s %-30s %s" % ("PASS" if ok else "FAIL", name, line), flush=True)
            for x in det:
                print("       " + x, flush=True)
            passed += ok
            failed += not ok
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
