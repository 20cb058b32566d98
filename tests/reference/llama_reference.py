"""PyTorch reference of the Llama families (llama, mistral, qwen2, qwen3), written from the published
equations, for tests/reference/test_llama.py. Importable module, no command line; run in float64.

  RMSNorm          x / sqrt(mean(x^2) + eps) * w
  RoPE             rotate-half: x * cos(t f) + rotate_half(x) * sin(t f), rotate_half(x1, x2) = (-x2, x1),
                   f_i = theta^(-2i/D), i < D/2, with rope_scaling llama3 applied to f (Llama 3.1)
  attention        q = x Wq^T (+ bq), k, v likewise with num_key_value_heads heads, repeated to the query
                   heads (query head h uses key/value head h // (H / Hkv)); qwen3: per-head RMSNorm of q and k
                   before RoPE; causal softmax(q k^T / sqrt(D)) v; o = y Wo^T (+ bo)
  MLP              down(silu(gate(x)) * up(x))
  block            x += attn(rmsnorm(x)); x += mlp(rmsnorm(x)); logits = rmsnorm(x) head^T, head = embedding
                   (tied) or lm_head.weight
Folders are written as Hugging Face writes them: config.json and model.safetensors (F32 or BF16, round to
nearest even), or two shards with model.safetensors.index.json.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

import gpt2_iqlearn as ref

CLASSES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
           "qwen3": "Qwen3ForCausalLM"}


def make_config(model_type="llama", n_layer=2, hidden=64, heads=4, kv_heads=2, head_dim=None, inner=96, ctx=128,
                vocab=97, eps=1e-5, theta=10000.0, tied=True, attention_bias=False, rope_scaling=None, **extra):
    cfg = {"model_type": model_type, "architectures": [CLASSES[model_type]], "vocab_size": vocab,
           "hidden_size": hidden, "intermediate_size": inner, "num_hidden_layers": n_layer,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "max_position_embeddings": ctx,
           "rms_norm_eps": eps, "rope_theta": theta, "rope_scaling": rope_scaling, "tie_word_embeddings": tied,
           "hidden_act": "silu", "torch_dtype": "float32"}
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    if model_type in ("llama", "qwen3"):
        cfg["attention_bias"] = attention_bias
    cfg.update(extra)
    return cfg


def dims(cfg):
    H, C = cfg["num_attention_heads"], cfg["hidden_size"]
    D = cfg.get("head_dim") or C // H
    return H, cfg.get("num_key_value_heads") or H, D


def biases(cfg):
    """-> (q/k/v biases, o bias)"""
    t = cfg["model_type"]
    if t == "qwen2":
        return True, False
    if t == "mistral":
        return False, False
    b = bool(cfg.get("attention_bias", False))
    return b, b


def param_shapes(cfg):
    """[(name, shape)] with the HF names."""
    C, V, L, I = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    H, K, D = dims(cfg)
    qkv_b, o_b = biases(cfg)
    out = [("model.embed_tokens.weight", (V, C))]
    for i in range(L):
        p = "model.layers.%d." % i
        out.append((p + "input_layernorm.weight", (C,)))
        for n, rows in (("q", H * D), ("k", K * D), ("v", K * D)):
            out.append((p + "self_attn.%s_proj.weight" % n, (rows, C)))
            if qkv_b:
                out.append((p + "self_attn.%s_proj.bias" % n, (rows,)))
        out.append((p + "self_attn.o_proj.weight", (C, H * D)))
        if o_b:
            out.append((p + "self_attn.o_proj.bias", (C,)))
        if cfg["model_type"] == "qwen3":
            out += [(p + "self_attn.q_norm.weight", (D,)), (p + "self_attn.k_norm.weight", (D,))]
        out += [(p + "post_attention_layernorm.weight", (C,)), (p + "mlp.gate_proj.weight", (I, C)),
                (p + "mlp.up_proj.weight", (I, C)), (p + "mlp.down_proj.weight", (C, I))]
    out.append(("model.norm.weight", (C,)))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, C)))
    return out


def init_params(cfg, seed, weight_std=0.05, norm_std=0.1, bias_std=0.1):
    """Random test weights: N(0, weight_std) matrices, norms 1 + N(0, norm_std), biases N(0, bias_std)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in param_shapes(cfg):
        if name.endswith("norm.weight"):
            a = 1.0 + norm_std * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            a = bias_std * rng.standard_normal(shape)
        else:
            a = weight_std * rng.standard_normal(shape)
        out[name] = a.astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------------
# folders

def _bf16_bytes(a):
    """float32 -> BF16 bytes, round to nearest even (torch's conversion)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().astype("<i2").tobytes()


def _write_st(path, entries):
    """entries: [(name, dtype string, shape, bytes)] -> a safetensors file."""
    header, off = {}, 0
    for name, dt, shape, data in entries:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for e in entries:
            f.write(e[3])


def save_folder(folder, cfg, params, dtype="F32", shards=1, drop=None):
    """config.json + model.safetensors (or `shards` files and the index); `drop` leaves a tensor out."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    entries = []
    for name, shape in param_shapes(cfg):
        if name == drop:
            continue
        a = params[name]
        data = _bf16_bytes(a) if dtype == "BF16" else np.ascontiguousarray(a, dtype="<f4").tobytes()
        entries.append((name, dtype, shape, data))
    if shards == 1:
        _write_st(os.path.join(folder, "model.safetensors"), entries)
        return
    per = (len(entries) + shards - 1) // shards
    wmap = {}
    for k in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
        part = entries[k * per:(k + 1) * per]
        _write_st(os.path.join(folder, fn), part)
        for e in part:
            wmap[e[0]] = fn
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wmap}, f, indent=2)


def load_folder(folder):
    """-> (cfg, {name: float32 np}) from model.safetensors or the shards (BF16 widened exactly)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    idx = os.path.join(folder, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if not os.path.exists(os.path.join(folder, "model.safetensors")) and os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    params = {}
    for fn in files:
        t, _ = ref.load_safetensors(os.path.join(folder, fn))
        params.update({k: v.astype(np.float32) for k, v in t.items()})
    return cfg, params


# --------------------------------------------------------------------------------------------------
# model

def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def inv_freq(cfg, D):
    f = 1.0 / (float(cfg.get("rope_theta", 10000.0)) ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        orig = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / f
        scaled = torch.where(wavelen > orig / lo, f / factor, f)
        smooth = (orig / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= orig / hi) & (wavelen <= orig / lo)
        f = torch.where(medium, smoothed, scaled)
    return f


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(x, positions, f):
    """x [B, heads, T, D]"""
    ang = positions.to(torch.float64)[:, None] * f[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def linear(x, p, name):
    y = x @ p[name + ".weight"].t()
    return y + p[name + ".bias"] if name + ".bias" in p else y


def attention(x, p, pre, cfg, f):
    B, T, _ = x.shape
    H, K, D = dims(cfg)
    eps = cfg.get("rms_norm_eps", 1e-6)
    q = linear(x, p, pre + "q_proj").view(B, T, H, D)
    k = linear(x, p, pre + "k_proj").view(B, T, K, D)
    v = linear(x, p, pre + "v_proj").view(B, T, K, D)
    if cfg["model_type"] == "qwen3":
        q = rms_norm(q, p[pre + "q_norm.weight"], eps)
        k = rms_norm(k, p[pre + "k_norm.weight"], eps)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    pos = torch.arange(T)
    q, k = rope(q, pos, f), rope(k, pos, f)
    k = k.repeat_interleave(H // K, dim=1)     # repeat_kv: query head h reads key/value head h // (H / K)
    v = v.repeat_interleave(H // K, dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    y = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * D)
    return linear(y, p, pre + "o_proj")


def forward(p, ids, cfg):
    """ids [B, T] -> logits [B, T, V]"""
    eps = cfg.get("rms_norm_eps", 1e-6)
    f = inv_freq(cfg, dims(cfg)[2])
    x = p["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        x = x + attention(rms_norm(x, p[pre + "input_layernorm.weight"], eps), p, pre + "self_attn.", cfg, f)
        m = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        x = x + linear(F.silu(linear(m, p, pre + "mlp.gate_proj")) * linear(m, p, pre + "mlp.up_proj"), p,
                       pre + "mlp.down_proj")
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else p["lm_head.weight"]
    return x @ head.t()


def is_decayed(name):
    """AdamW weight decay on the blocks' matrices only (not the embedding, lm_head, norms or biases)."""
    return name.startswith("model.layers.") and name.endswith("proj.weight")


def controls(batch):
    """The label smoothing and entropy bonus of a batch.json (0 when absent)."""
    return {"label_smoothing": float(batch.get("label_smoothing", 0.0)),
            "entropy_coef": float(batch.get("entropy_coef", 0.0))}


def later_losses(cfg, tp, ids, batch, steps):
    """The losses of AdamW steps 2..steps on the same batch (gradients of step 1 already in tp)."""
    o = batch["optim"]
    groups = [{"params": [t for n, t in tp.items() if is_decayed(n)], "weight_decay": o["weight_decay"]},
              {"params": [t for n, t in tp.items() if not is_decayed(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    out = []
    for _ in range(steps - 1):
        ref.clip_grad_norm(list(tp.values()), o["grad_clip"])
        opt.step()
        for t in tp.values():
            t.grad = None
        res = ref.iqlearn_loss(forward(tp, ids, cfg), batch["rows"], float(batch["lambda"]), float(batch["gamma"]),
                               batch["td_grad"], batch["truncation"], **controls(batch))
        res["loss"].backward()
        out.append(float(res["loss"].detach()))
    return out


def reference_run(cfg, params, batch):
    """Step 1's logits (padding zeroed), loss terms and every parameter gradient, and the losses of
    batch["steps"] AdamW steps, float64."""
    rows = batch["rows"]
    tp = ref.to_torch(params)
    ids, lengths = ref.pad_batch(rows)
    logits = forward(tp, ids, cfg)
    res = ref.iqlearn_loss(logits, rows, float(batch["lambda"]), float(batch["gamma"]), batch["td_grad"],
                           batch["truncation"], **controls(batch))
    res["loss"].backward()
    grads = {n: t.grad.numpy().copy() for n, t in tp.items()}
    losses = [float(res["loss"].detach())] + later_losses(cfg, tp, ids, batch, int(batch.get("steps", 1)))
    lg = logits.detach().numpy().copy()
    for b, L in enumerate(lengths):
        lg[b, L:] = 0.0
    out = {"logits": lg, "lengths": lengths, "grads": grads, "losses": losses}
    for key in ("loss", "nll", "td"):
        out[key] = float(res[key].detach())
    for key in ("n_supervised", "reward_mean", "reward_abs_mean", "reward_abs_max"):
        out[key] = res[key]
    return out
