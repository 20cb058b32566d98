#!/usr/bin/python3
"""The Llama families (llama, mistral, qwen2, qwen3) against a PyTorch reference written from the published
equations (llama_reference.py), and their Hugging Face folders in and out.

    /usr/bin/python3 tests/reference/test_llama.py --dump PATH --iqtrain PATH [--only PATTERNS] [--keep DIR] [--list]

Reference cases (tiny random models, vocab 97, the 4-row batch of test_reference.py): test_reference_dump runs
iq_train_step on the folder; its logits, loss, nll, td, reward statistics and every parameter gradient are
compared with llama_reference in float64, at GPT-2's tolerances:
  logits (valid positions)     max |diff| / max |ref| <= 1e-5
  loss, nll, td, rewards       |diff| <= max(1e-5 |ref|, 1e-7)
  every parameter gradient     ||g - g_ref|| / ||g_ref|| <= 1e-4
--precision bf16 runs only the reference cases, with test_reference_dump's matmuls at bf16 (the Llama layers take
the bf16 weight cache of iq_sgemm_w like GPT-2's), at test_reference.py's bf16 tolerances (exit 77 without a bf16
matmul). The fp32 cases:
for llama (tied GQA with rope_scaling llama3, untied MHA in BF16, q/k/v/o biases in two shards), mistral,
qwen2 (q/k/v biases) and qwen3 (q/k norm, head_dim != hidden/heads), each with lambda 0 and 0.1 (two of them
also with label smoothing 0.1 and entropy bonus 0.1); and the
losses of 10 AdamW steps (weight decay 10 on the blocks' matrices only) within 1e-4 relative for two of them.
Folder checks (iqtrain): `--max-steps 0` writes final/ whose config.json names the HF class and whose
weights reload to the same logits (bit for bit in F32); refusals exit 65 naming the file and the field or
tensor (rope_scaling type yarn, a sliding_window shorter than the context, a missing tensor, hidden_act); a
tied folder that also stores lm_head.weight loads when it equals the embedding and is refused otherwise;
`--arch llama --preset tiny --n-kv-head 1` trains from scratch (the loss falls); the config.json files of
SmolLM2-135M, Llama-3.2-1B, Qwen2.5-0.5B-Instruct, Qwen3-0.6B, TinyLlama-1.1B-Chat and Mistral-7B-v0.3 are
accepted (iqtrain gets past them).
Any sanitizer report on a program's stderr fails the case (the script serves the ASan build too). Prints one
line per case, then `N passed, M failed`; exit 1 on any failure.
"""
import argparse
import fnmatch
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import gpt2_iqlearn as ref  # noqa: E402
import llama_reference as lr  # noqa: E402
import test_reference as tr  # noqa: E402

GPT2_DIR = os.path.join(ROOT, "tests", "fixtures", "gpt2")
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}
# name -> (config overrides, folder dtype, shards)
VARIANTS = {
    "llama_tied_gqa_llama3": (dict(model_type="llama", kv_heads=2, tied=True, rope_scaling=LLAMA3), "F32", 1),
    "llama_untied_mha_bf16": (dict(model_type="llama", kv_heads=4, tied=False, theta=500000.0), "BF16", 1),
    "llama_bias_sharded": (dict(model_type="llama", kv_heads=1, tied=False, attention_bias=True), "F32", 2),
    "mistral": (dict(model_type="mistral", kv_heads=2, tied=False, sliding_window=None), "F32", 1),
    "qwen2_bias": (dict(model_type="qwen2", kv_heads=2, tied=True, theta=1000000.0, eps=1e-6,
                        use_sliding_window=False, sliding_window=32, max_window_layers=2), "F32", 1),
    "qwen3_qknorm": (dict(model_type="qwen3", kv_heads=2, head_dim=32, tied=True, eps=1e-6), "BF16", 1),
}


DUMP_ARGS = []   # ["--precision", "bf16"] with --precision bf16


class NoBf16(Exception):
    """test_reference_dump exited 77: no bf16 matmul in this build or on this CPU."""


SANITIZER_HITS = []   # stderr lines of AddressSanitizer / UBSan / LeakSanitizer reports (the ASan build)


def run(cmd, timeout=300):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    SANITIZER_HITS.extend(l for l in p.stderr.decode(errors="replace").splitlines()
                          if "runtime error:" in l or "Sanitizer" in l)
    return p


def rel_grad(gc, gr):
    nr = float(np.linalg.norm(gr))
    if nr < 1e-12:
        return float(np.linalg.norm(gc))
    return float(np.linalg.norm(gc.astype(np.float64) - gr)) / nr


# --------------------------------------------------------------------------------------------------
# reference cases

def reference_case(name, variant, lam, work, dump, steps=1, ctl=None):
    over, dtype, shards = VARIANTS[variant]
    seed = zlib.crc32(name.encode())
    cfg = lr.make_config(**over)
    params = lr.init_params(cfg, seed)
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    lr.save_folder(os.path.join(d, "model"), cfg, params, dtype, shards)
    rng = np.random.default_rng(seed + 7)
    batch = {"rows": tr.make_rows(rng), "lambda": lam, "gamma": 0.99, "td_grad": "full",
             "truncation": "bootstrap", "steps": steps,
             "optim": dict(tr.OPTIM, weight_decay=10.0 if steps > 1 else 0.1)}   # strong decay: visible in the losses
    batch.update(ctl or {})   # label_smoothing, entropy_coef
    with open(os.path.join(d, "batch.json"), "w") as f:
        json.dump(batch, f)
    cfg_r, params_r = lr.load_folder(os.path.join(d, "model"))   # the weights as written (BF16 rounded)
    r = lr.reference_run(cfg_r, params_r, batch)
    p = run([dump] + DUMP_ARGS + [os.path.join(d, "model"), os.path.join(d, "batch.json"), os.path.join(d, "out")])
    if p.returncode == 77 and DUMP_ARGS:
        raise NoBf16(p.stderr.decode(errors="replace").strip())
    if p.returncode != 0:
        return False, "program exited %d" % p.returncode, [p.stderr.decode(errors="replace")[-2000:]]
    fails = []
    with open(os.path.join(d, "out", "result.json")) as f:
        res = json.load(f)
    worst_s = 0.0
    for key in ("loss", "nll", "td", "reward_mean", "reward_abs_mean", "reward_abs_max"):
        ok, err = tr.scalar_ok(res.get(key), r[key])
        worst_s = max(worst_s, err)
        if not ok:
            fails.append("%s: got %r, reference %.10g" % (key, res.get(key), r[key]))
    if res.get("n_supervised") != r["n_supervised"]:
        fails.append("n_supervised %r != %r" % (res.get("n_supervised"), r["n_supervised"]))
    lg = ref.load_safetensors(os.path.join(d, "out", "logits.safetensors"))[0]["logits"]
    scale = float(np.abs(r["logits"]).max())
    e_logits = max(float(np.abs(lg[b, :L] - r["logits"][b, :L]).max()) for b, L in enumerate(r["lengths"])) / scale
    if not e_logits <= tr.TOL_LOGITS:
        fails.append("logits: max |diff| / max |ref| = %.3g" % e_logits)
    g = ref.load_safetensors(os.path.join(d, "out", "grads.safetensors"))[0]
    names = [n for n, _ in lr.param_shapes(cfg)]
    if sorted(g) != sorted(names):
        fails.append("gradient names differ: extra %s, missing %s" % (sorted(set(g) - set(names)),
                                                                      sorted(set(names) - set(g))))
    worst, wname = 0.0, ""
    for n in names:
        if n not in g:
            continue
        e = rel_grad(g[n], r["grads"][n]) if np.isfinite(g[n]).all() else float("inf")
        if e > worst or e != e:
            worst, wname = e, n
        if not e <= tr.TOL_GRAD:
            fails.append("grad %s: rel err %.3g" % (n, e))
    line = "grad %.1e (%s)  logits %.1e  scalars %.1e  loss %.5f" % (worst, wname, e_logits, worst_s, r["loss"])
    if steps > 1:
        got = res.get("losses", [])
        e = max((abs(a - b) / abs(b) for a, b in zip(got, r["losses"])), default=float("inf"))
        if len(got) != steps or not e <= tr.TOL_LOSSES:
            fails.append("AdamW losses %r, reference %r" % (got, r["losses"]))
        line += "  %d AdamW steps %.1e (%.4f -> %.4f)" % (steps, e, r["losses"][0], r["losses"][-1])
    return not fails, line, fails


# --------------------------------------------------------------------------------------------------
# the reference against other formulations

def selfcheck():
    """Rotate-half RoPE = rotation of the complex pairs (x_i, x_{i+D/2}) by t f_i, and <q_m, k_n> depends on m - n
    only; llama3 frequencies in their three regimes; GQA = MHA with each key/value head's weights repeated."""
    fails, g = [], torch.Generator().manual_seed(3)
    D, T = 16, 9
    cfg = lr.make_config(rope_scaling=LLAMA3)
    f = lr.inv_freq(cfg, D)
    x = torch.randn(1, 2, T, D, generator=g)
    got = lr.rope(x, torch.arange(T), f)
    z = torch.complex(x[..., :D // 2], x[..., D // 2:]) * torch.exp(1j * torch.arange(T)[:, None] * f[None, :])
    e1 = float((got - torch.cat((z.real, z.imag), -1)).abs().max())
    q, k = torch.randn(D, generator=g), torch.randn(D, generator=g)
    dots = [float((lr.rope(q.view(1, 1, 1, D), torch.tensor([m]), f) * lr.rope(k.view(1, 1, 1, D), torch.tensor([m - 3]), f)).sum())
            for m in (3, 5, 8)]
    e2 = max(abs(dd - dots[0]) for dd in dots)
    base = 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    wl = 2 * math.pi / base
    e3 = 0.0
    for i in range(D // 2):
        want = base[i] if wl[i] < 16 else base[i] / 8 if wl[i] > 64 else None
        if want is None:
            s = (64 / wl[i] - 1) / 3
            want = (1 - s) * base[i] / 8 + s * base[i]
        e3 = max(e3, abs(float(f[i] - want)) / float(want))
    regimes = (int((wl < 16).sum()), int(((wl >= 16) & (wl <= 64)).sum()), int((wl > 64).sum()))
    gq = lr.make_config(kv_heads=2)
    mh = lr.make_config(kv_heads=4)
    pg = lr.init_params(gq, 1)
    pm = dict(pg)
    for i in range(2):
        for n in ("k", "v"):
            w = pg["model.layers.%d.self_attn.%s_proj.weight" % (i, n)].reshape(2, 16, 64)
            pm["model.layers.%d.self_attn.%s_proj.weight" % (i, n)] = np.repeat(w, 2, axis=0).reshape(64, 64)
    ids = torch.tensor([[1, 5, 9, 2, 7, 3]])
    e4 = float((lr.forward(ref.to_torch(pg, requires_grad=False), ids, gq) -
                lr.forward(ref.to_torch(pm, requires_grad=False), ids, mh)).abs().max())
    for what, e, tol in (("rope vs complex rotation", e1, 1e-12), ("rope relative position", e2, 1e-12),
                         ("llama3 frequencies", e3, 1e-12), ("GQA vs repeated-weight MHA", e4, 1e-12)):
        if not e <= tol:
            fails.append("%s: %.3g" % (what, e))
    if min(regimes) < 1:
        fails.append("llama3 case does not cover the three regimes: %r" % (regimes,))
    return not fails, "rope %.1e  relative %.1e  llama3 %.1e (regimes %s)  gqa %.1e" % (e1, e2, e3, regimes, e4), fails


# --------------------------------------------------------------------------------------------------
# folders through iqtrain

def data_file(work):
    p = os.path.join(work, "data.jsonl")
    with open(p, "w") as f:
        for i in range(4):
            f.write(json.dumps({"prompt": "Question %d: what is %d + %d?" % (i, i, 2 * i),
                                "completion": " It is %d." % (3 * i)}) + "\n")
    return p


def hf_folder(d, over, dtype="F32", shards=1, drop=None, seed=5):
    cfg = lr.make_config(vocab=50257, hidden=32, heads=4, inner=64, **over)
    lr.save_folder(d, cfg, lr.init_params(cfg, seed), dtype, shards, drop)
    shutil.copyfile(os.path.join(GPT2_DIR, "encoder.json"), os.path.join(d, "vocab.json"))
    shutil.copyfile(os.path.join(GPT2_DIR, "vocab.bpe"), os.path.join(d, "merges.txt"))
    return cfg


def roundtrip_case(variant, work, iqtrain, dump):
    over = dict(VARIANTS[variant][0])
    src, out = os.path.join(work, "rt-" + variant), os.path.join(work, "rt-" + variant + "-run")
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    cfg = hf_folder(src, over, VARIANTS[variant][1], VARIANTS[variant][2])
    p = run([iqtrain, "--model", src, "--max-steps", "0", "--out", out, "--threads", "2", data_file(work)])
    if p.returncode != 0:
        return False, "iqtrain exited %d" % p.returncode, [p.stderr.decode(errors="replace")[-2000:]]
    fails = []
    final = os.path.join(out, "final")
    with open(os.path.join(final, "config.json")) as f:
        fc = json.load(f)
    if fc.get("architectures") != [lr.CLASSES[cfg["model_type"]]] or fc.get("model_type") != cfg["model_type"]:
        fails.append("config.json: model_type %r architectures %r" % (fc.get("model_type"), fc.get("architectures")))
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "max_position_embeddings", "tie_word_embeddings", "rope_scaling", "vocab_size"):
        if fc.get(k) != cfg.get(k):
            fails.append("config.json: %s = %r, source %r" % (k, fc.get(k), cfg.get(k)))
    for k in ("rms_norm_eps", "rope_theta"):
        if not math.isclose(fc.get(k, -1), cfg[k], rel_tol=1e-6):
            fails.append("config.json: %s = %r, source %r" % (k, fc.get(k), cfg[k]))
    _, src_p = lr.load_folder(src)
    _, fin_p = lr.load_folder(final)
    if sorted(src_p) != sorted(fin_p):
        fails.append("tensor names differ: %s" % sorted(set(src_p) ^ set(fin_p)))
    elif any(not np.array_equal(src_p[n], fin_p[n]) for n in src_p):
        fails.append("final/ weights differ from the source's")
    batch = {"rows": [{"ids": [464, 3290, 318, 257, 1332, 13], "flags": [0, 0, 1, 1, 1, 3]}], "lambda": 0.1,
             "gamma": 0.99, "td_grad": "full", "truncation": "bootstrap", "steps": 1, "optim": dict(tr.OPTIM)}
    bp = os.path.join(work, "rt-batch.json")
    with open(bp, "w") as f:
        json.dump(batch, f)
    logits = []
    for k, m in enumerate((src, final)):
        o = os.path.join(work, "rt-%s-dump%d" % (variant, k))
        p = run([dump, m, bp, o])
        if p.returncode != 0:
            return False, "dump exited %d" % p.returncode, [p.stderr.decode(errors="replace")[-2000:]]
        logits.append(ref.load_safetensors(os.path.join(o, "logits.safetensors"))[0]["logits"])
    diff = float(np.abs(logits[0] - logits[1]).max())
    if diff != 0.0:
        fails.append("final/ logits differ from the source's by %.3g" % diff)
    return not fails, "final/ %s, %d tensors, logits diff %g" % (fc.get("architectures"), len(fin_p), diff), fails


REFUSALS = {
    "refuse_rope_yarn": (dict(model_type="llama", rope_scaling={"rope_type": "yarn", "factor": 4.0}), None,
                         ("config.json", "rope_scaling", "yarn")),
    "refuse_sliding_window": (dict(model_type="mistral", sliding_window=64), None,
                              ("config.json", "sliding_window", "64")),
    "refuse_qwen_sliding_window": (dict(model_type="qwen2", use_sliding_window=True, sliding_window=16), None,
                                   ("config.json", "sliding_window")),
    "refuse_hidden_act": (dict(model_type="qwen3", hidden_act="gelu"), None, ("config.json", "hidden_act", "gelu")),
    "refuse_unknown_key": (dict(model_type="llama", logit_scale=2.0), None, ("config.json", "logit_scale")),
    "refuse_rope_interleaved": (dict(model_type="llama", rope_interleaved=True), None, ("config.json", "rope_interleaved")),
    "refuse_missing_tensor": (dict(model_type="llama"), "model.layers.1.self_attn.k_proj.weight",
                              ("model.safetensors", "model.layers.1.self_attn.k_proj.weight", "missing")),
    "refuse_missing_lm_head": (dict(model_type="qwen2", tied=False), "lm_head.weight",
                               ("model.safetensors", "lm_head.weight", "missing")),
}


def refusal_case(name, work, iqtrain):
    over, drop, needles = REFUSALS[name]
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    hf_folder(d, over, drop=drop)
    p = run([iqtrain, "--model", d, "--max-steps", "0", "--out", os.path.join(work, name + "-run"), data_file(work)])
    err = p.stderr.decode(errors="replace")
    fails = []
    if p.returncode != 65:
        fails.append("exit %d, expected 65" % p.returncode)
    for n in needles:
        if n not in err:
            fails.append("message lacks %r" % n)
    msg = err.strip().splitlines()[-1] if err.strip() else ""
    return not fails, "exit %d: %s" % (p.returncode, msg[:150]), fails + ([] if not fails else ["stderr: " + err[-800:]])


# config.json of published checkpoints (keys and values as their model cards' files have them)
PUBLISHED = {
    "SmolLM2-135M": {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                     "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 576,
                     "initializer_range": 0.041666666666666664, "intermediate_size": 1536, "is_llama_config": True,
                     "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9,
                     "num_hidden_layers": 30, "num_key_value_heads": 3, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
                     "rope_interleaved": False, "rope_scaling": None, "rope_theta": 100000, "tie_word_embeddings": True,
                     "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": True, "vocab_size": 49152},
    "Llama-3.2-1B": {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                     "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
                     "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
                     "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
                     "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
                     "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                                                             "low_freq_factor": 1.0,
                                                             "original_max_position_embeddings": 8192,
                                                             "rope_type": "llama3"},
                     "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                     "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256},
    "Qwen2.5-0.5B-Instruct": {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
                              "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
                              "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
                              "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
                              "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                              "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                              "transformers_version": "4.43.1", "use_cache": True, "use_sliding_window": False,
                              "vocab_size": 151936},
    "Qwen3-0.6B": {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                   "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
                   "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
                   "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
                   "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
                   "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
                   "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True,
                   "use_sliding_window": False, "vocab_size": 151936},
    "TinyLlama-1.1B-Chat-v1.0": {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1,
                                 "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048,
                                 "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 2048,
                                 "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
                                 "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
                                 "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False,
                                 "torch_dtype": "bfloat16", "transformers_version": "4.35.0", "use_cache": True,
                                 "vocab_size": 32000},
    "Mistral-7B-v0.3": {"architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
                        "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
                        "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
                        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
                        "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": None,
                        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.42.0.dev0",
                        "use_cache": True, "vocab_size": 32768},
}


def published_case(name, work, iqtrain):
    """Published configs are accepted: with config.json alone, iqtrain stops after the config, at the missing
    weights (66 naming model.safetensors) or at the test's GPT-2 tokenizer being larger than the vocabulary."""
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(PUBLISHED[name[len("published_"):]], f)
    shutil.copyfile(os.path.join(GPT2_DIR, "encoder.json"), os.path.join(d, "vocab.json"))
    shutil.copyfile(os.path.join(GPT2_DIR, "vocab.bpe"), os.path.join(d, "merges.txt"))
    p = run([iqtrain, "--model", d, "--max-steps", "0", "--out", d + "-run", data_file(work)])
    err = p.stderr.decode(errors="replace")
    fails = []
    past_config = (p.returncode == 66 and "model.safetensors" in err) or (
        p.returncode == 65 and "the tokenizer has 50257 ids" in err)    # GPT-2's tokenizer > the model's vocab
    if not past_config or "config.json" in err:
        fails.append("exit %d (66 at the missing weights, or 65 at the tokenizer, expected): %s" % (p.returncode, err[-600:]))
    return not fails, "exit %d: %s" % (p.returncode, err.strip().splitlines()[-1][:110] if err.strip() else ""), fails


def tied_head_case(name, work, iqtrain):
    """A tied folder that also stores lm_head.weight loads when it equals the embedding, and is refused (65)
    when it differs."""
    fails, notes = [], []
    for differ in (False, True):
        d = os.path.join(work, "%s-%d" % (name, differ))
        shutil.rmtree(d, ignore_errors=True)
        cfg = hf_folder(d, dict(model_type="qwen2", tied=True))
        _, params = lr.load_folder(d)
        head = params["model.embed_tokens.weight"].copy()
        if differ:
            head[7, 3] += 0.5
        params["lm_head.weight"] = head
        cfg2 = dict(cfg, tie_word_embeddings=False)       # param_shapes with lm_head, the config stays tied
        lr.save_folder(d + "-tmp", cfg2, params)
        shutil.move(os.path.join(d + "-tmp", "model.safetensors"), os.path.join(d, "model.safetensors"))
        shutil.rmtree(d + "-tmp")
        p = run([iqtrain, "--model", d, "--max-steps", "0", "--out", d + "-run", data_file(work)])
        err = p.stderr.decode(errors="replace")
        want = 65 if differ else 0
        notes.append("exit %d" % p.returncode)
        if p.returncode != want:
            fails.append("lm_head %s the embedding: exit %d, expected %d: %s" % (
                "differs from" if differ else "equals", p.returncode, want, err[-400:]))
        if differ and "lm_head.weight" not in err:
            fails.append("the refusal does not name lm_head.weight")
    return not fails, "equal: %s, differing: %s" % tuple(notes), fails


def scratch_case(work, iqtrain):
    """--arch llama --preset tiny --n-kv-head 1 trains from scratch (the loss falls) and writes a LlamaForCausalLM
    folder with one key/value head; --n-kv-head with --arch gpt2 is refused (64)."""
    out = os.path.join(work, "scratch-run")
    shutil.rmtree(out, ignore_errors=True)
    p = run([iqtrain, "--arch", "llama", "--preset", "tiny", "--n-kv-head", "1", "--tokenizer", GPT2_DIR, "--max-steps",
             "30", "--batch-size", "4", "--lr", "3e-3", "--warmup", "5", "--threads", "2", "--json", "--out", out,
             data_file(work)])
    fails = []
    if p.returncode != 0:
        return False, "exit %d" % p.returncode, [p.stderr.decode(errors="replace")[-1500:]]
    losses = []
    with open(os.path.join(out, "metrics.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            if "loss" in j and j.get("type") == "train":
                losses.append(j["loss"])
    with open(os.path.join(out, "final", "config.json")) as f:
        fc = json.load(f)
    if fc.get("architectures") != ["LlamaForCausalLM"] or fc.get("num_key_value_heads") != 1:
        fails.append("final/config.json: %r %r" % (fc.get("architectures"), fc.get("num_key_value_heads")))
    if len(losses) < 2 or not losses[-1] < 0.8 * losses[0]:
        fails.append("the loss did not fall: %r" % losses)
    q = run([iqtrain, "--arch", "gpt2", "--n-kv-head", "2", "--tokenizer", GPT2_DIR, "--max-steps", "0", "--out",
             out + "-gpt2", data_file(work)])
    if q.returncode != 64:
        fails.append("--arch gpt2 --n-kv-head 2: exit %d, expected 64" % q.returncode)
    return not fails, "loss %s -> %s, KV heads %r" % (losses[0] if losses else "?", losses[-1] if losses else "?",
                                                     fc.get("num_key_value_heads")), fails


# --------------------------------------------------------------------------------------------------

def cases():
    out = [("selfcheck", "self", ())]
    for v in VARIANTS:
        for lam in (0.0, 0.1):
            out.append(("ref_%s_lam%g" % (v, lam), "ref", (v, lam, 1)))
    for v in ("llama_bias_sharded", "qwen3_qknorm"):
        out.append(("adamw10_%s" % v, "ref", (v, 0.1, 10)))
    # the controls: label smoothing and the entropy bonus with the TD term
    for v in ("llama_tied_gqa_llama3", "qwen3_qknorm"):
        out.append(("ref_%s_ls0.1_ent0.1_lam0.1" % v, "ref", (v, 0.1, 1, {"label_smoothing": 0.1, "entropy_coef": 0.1})))
    for v in ("llama_tied_gqa_llama3", "llama_untied_mha_bf16", "qwen2_bias", "qwen3_qknorm", "llama_bias_sharded"):
        out.append(("roundtrip_" + v, "roundtrip", (v,)))
    for n in REFUSALS:
        out.append((n, "refusal", ()))
    out.append(("tied_lm_head_stored", "tied", ()))
    for n in PUBLISHED:
        out.append(("published_" + n, "published", ()))
    out.append(("scratch_arch_llama", "scratch", ()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", required=True)
    ap.add_argument("--iqtrain", required=True)
    ap.add_argument("--only")
    ap.add_argument("--keep")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: only the reference cases, the program's matmuls at bf16, test_reference.py's bf16 "
                         "tolerances; exit 77 where there is no bf16 matmul")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    todo = cases()
    if args.precision == "bf16":
        DUMP_ARGS[:] = ["--precision", "bf16"]
        for k, v in tr.BF16_TOLS.items():
            setattr(tr, k, v)
        todo = [c for c in todo if c[1] == "ref"]
    if args.list:
        print("\n".join(c[0] for c in todo))
        return 0
    if args.only:
        pats = args.only.split(",")
        todo = [c for c in todo if any(fnmatch.fnmatchcase(c[0], p) for p in pats)]
    work = args.keep or tempfile.mkdtemp(prefix="iqtrain-llama-")
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    passed = failed = 0
    try:
        for name, kind, a in todo:
            try:
                if kind == "self":
                    ok, line, det = selfcheck()
                elif kind == "ref":
                    ok, line, det = reference_case(name, a[0], a[1], work, args.dump, *a[2:])
                elif kind == "roundtrip":
                    ok, line, det = roundtrip_case(a[0], work, args.iqtrain, args.dump)
                elif kind == "published":
                    ok, line, det = published_case(name, work, args.iqtrain)
                elif kind == "tied":
                    ok, line, det = tied_head_case(name, work, args.iqtrain)
                elif kind == "scratch":
                    ok, line, det = scratch_case(work, args.iqtrain)
                else:
                    ok, line, det = refusal_case(name, work, args.iqtrain)
            except NoBf16 as ex:
                print("SKIP %s: %s" % (name, ex), flush=True)
                return 77
            except Exception as ex:  # noqa: BLE001
                ok, line, det = False, "driver error: %s: %s" % (type(ex).__name__, ex), []
            if SANITIZER_HITS:
                ok, det = False, det + ["sanitizer: " + l for l in SANITIZER_HITS[:10]]
                del SANITIZER_HITS[:]
            print("%s %-36s %s" % ("PASS" if ok else "FAIL", name, line), flush=True)
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
