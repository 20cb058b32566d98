"""PyTorch reference for iqtrain: GPT-2 (HF names and layouts) and IQLearn as TD-regularized MLE.

Importable module, no command line. Used by test_reference.py (the driver) and dump_standin.py.
Everything here follows DESIGN.md section 1 (the loss) and section 2 (the model); run it with Debian's
/usr/bin/python3 (python3-torch, python3-numpy). The reference is meant to be run in float64.

Contents
  safetensors      save_safetensors / load_safetensors (numpy; F32, F64, F16, BF16, ints)
  model folder     make_config, param_names, init_params, save_model, load_model
  model            forward(params, ids, cfg) -> logits [B, T, V]   (params: dict name -> torch tensor)
  batch            pad_batch(rows), steps_of(rows, truncation)     (rows: [{"ids": [..], "flags": [..]}])
  loss             iqlearn_loss(...)  (autograd),  analytic_dlogits(...)  (DESIGN section 1 formula),
                   cross_entropy_loss(...)  (plain CE over supervised tokens, for the lambda = 0 check),
                   value_mean(...) / analytic_value_dlogits(...)  (online IQLearn's value term, issue #17)
  optimizer        is_decayed(name), make_adamw(...), clip_grad_norm(...)
  reference_run    the whole reference: loss, logits, gradients at the initial weights, and the losses of
                   `steps` AdamW steps on the same batch, in float64

Token flags: bit 0 = supervised, bit 1 = terminal (a real EOS: d_t = 1).
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

FLAG_SUPERVISED = 1
FLAG_TERMINAL = 2

# --------------------------------------------------------------------------------------------------
# safetensors

_ST_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_NP_TO_ST = {v: k for k, v in _ST_DTYPES.items()}


def save_safetensors(path, tensors, metadata=None):
    """Write {name: np.ndarray} as safetensors, tensors contiguous in the dict's order.
    The header is padded with spaces so that the data starts at a multiple of 8."""
    header = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dt not in _NP_TO_ST:
            raise ValueError("safetensors: unsupported dtype %s for %s" % (arr.dtype, name))
        data = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NP_TO_ST[dt], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = dict(metadata if metadata is not None else {"format": "pt"})
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def load_safetensors(path, with_dtypes=False):
    """Read a safetensors file -> ({name: np.ndarray}, metadata) [, {name: dtype string}].
    BF16 is widened to float32. Checks the offsets cover the data buffer exactly."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d beyond the end of the file" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out, dtypes, spans = {}, {}, []
    for name, info in header.items():
        dts = info["dtype"]
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(x) for x in info["data_offsets"])
        if not (0 <= b <= e <= len(data)):
            raise ValueError("%s: %s: data_offsets %r outside the buffer (%d bytes)" % (path, name, (b, e), len(data)))
        count = int(np.prod(shape)) if shape else 1
        if dts == "BF16":
            if e - b != 2 * count:
                raise ValueError("%s: %s: %d bytes for shape %r BF16" % (path, name, e - b, shape))
            u = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).reshape(shape)
        else:
            if dts not in _ST_DTYPES:
                raise ValueError("%s: %s: unsupported dtype %s" % (path, name, dts))
            dt = _ST_DTYPES[dts]
            if e - b != dt.itemsize * count:
                raise ValueError("%s: %s: %d bytes for shape %r %s" % (path, name, e - b, shape, dts))
            arr = np.frombuffer(data[b:e], dtype=dt).reshape(shape).copy()
        out[name] = arr
        dtypes[name] = dts
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            raise ValueError("%s: data buffer has a gap or overlap at byte %d" % (path, pos))
        pos = e
    if pos != len(data):
        raise ValueError("%s: %d trailing bytes after the last tensor" % (path, len(data) - pos))
    if with_dtypes:
        return out, meta, dtypes
    return out, meta


# --------------------------------------------------------------------------------------------------
# model folder

def make_config(n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=97, layer_norm_epsilon=1e-5):
    return {"model_type": "gpt2", "n_layer": n_layer, "n_head": n_head, "n_embd": n_embd,
            "n_positions": n_positions, "n_ctx": n_positions, "vocab_size": vocab_size,
            "layer_norm_epsilon": layer_norm_epsilon, "activation_function": "gelu_new",
            "tie_word_embeddings": True}


def param_shapes(cfg):
    """[(name, shape)] in the canonical order (HF GPT-2 names without the `transformer.` prefix)."""
    C, V, P, L = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"], cfg["n_layer"]
    out = [("wte.weight", (V, C)), ("wpe.weight", (P, C))]
    for i in range(L):
        h = "h.%d." % i
        out += [(h + "ln_1.weight", (C,)), (h + "ln_1.bias", (C,)),
                (h + "attn.c_attn.weight", (C, 3 * C)), (h + "attn.c_attn.bias", (3 * C,)),
                (h + "attn.c_proj.weight", (C, C)), (h + "attn.c_proj.bias", (C,)),
                (h + "ln_2.weight", (C,)), (h + "ln_2.bias", (C,)),
                (h + "mlp.c_fc.weight", (C, 4 * C)), (h + "mlp.c_fc.bias", (4 * C,)),
                (h + "mlp.c_proj.weight", (4 * C, C)), (h + "mlp.c_proj.bias", (C,))]
    out += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    return out


def param_names(cfg):
    return [n for n, _ in param_shapes(cfg)]


def is_decayed(name):
    """AdamW weight decay applies to the 2-D matmul weights only (not biases, LayerNorm, wte, wpe)."""
    return name.endswith((".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight",
                          ".mlp.c_proj.weight"))


def init_params(cfg, seed, weight_std=0.02, ln_std=0.1, bias_std=0.1):
    """Random test weights (float32): N(0, weight_std) matrices and embeddings; LayerNorm weights
    1 + N(0, ln_std), LayerNorm biases and all linear biases N(0, bias_std), so that every gradient is
    exercised (GPT-2's real init has LN 1/0 and zero biases)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in param_shapes(cfg):
        if "ln_" in name and name.endswith(".weight"):
            a = 1.0 + ln_std * rng.standard_normal(shape)
        elif "ln_" in name:
            a = ln_std * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            a = bias_std * rng.standard_normal(shape)
        else:
            a = weight_std * rng.standard_normal(shape)
        out[name] = a.astype(np.float32)
    return out


def save_model(folder, cfg, params):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(folder, "model.safetensors"),
                     {n: np.asarray(params[n], dtype=np.float32) for n in param_names(cfg)},
                     {"format": "pt"})


def load_model(folder):
    """-> (cfg, {name: np.ndarray}). Strips a `transformer.` prefix and ignores attention-mask buffers."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("layer_norm_epsilon", 1e-5)
    tensors, _ = load_safetensors(os.path.join(folder, "model.safetensors"))
    params = {}
    for k, v in tensors.items():
        if k.startswith("transformer."):
            k = k[len("transformer."):]
        params[k] = v
    missing = [n for n in param_names(cfg) if n not in params]
    if missing:
        raise ValueError("%s: missing tensors %s" % (folder, missing))
    return cfg, {n: params[n] for n in param_names(cfg)}


def to_torch(params, dtype=torch.float64, requires_grad=True):
    return {n: torch.tensor(np.asarray(a), dtype=dtype, requires_grad=requires_grad) for n, a in params.items()}


# --------------------------------------------------------------------------------------------------
# model

def gelu_tanh(x):
    """HF gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)   # biased variance, as torch/HF LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def attention(x, w_attn, b_attn, w_proj, b_proj, n_head):
    """Causal self-attention, HF Conv1D layout: qkv = x @ W + b, q|k|v along the output dim, head h is the
    contiguous block h*D..(h+1)*D-1 within each of q, k, v; scale 1/sqrt(D)."""
    B, T, C = x.shape
    D = C // n_head
    qkv = x @ w_attn + b_attn
    q, k, v = qkv.split(C, dim=-1)
    q = q.view(B, T, n_head, D).transpose(1, 2)
    k = k.view(B, T, n_head, D).transpose(1, 2)
    v = v.view(B, T, n_head, D).transpose(1, 2)
    att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D))
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf"))
    att = torch.softmax(att, dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)
    return y @ w_proj + b_proj


def forward(p, ids, cfg, return_hidden=False):
    """GPT-2 forward: ids LongTensor [B, T] -> logits [B, T, V] (tied head: ln_f(x) @ wte^T)."""
    B, T = ids.shape
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    H = cfg["n_head"]
    x = p["wte.weight"][ids] + p["wpe.weight"][:T].unsqueeze(0)
    for i in range(cfg["n_layer"]):
        h = "h.%d." % i
        a = layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps)
        x = x + attention(a, p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"],
                          p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"], H)
        m = layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps)
        m = gelu_tanh(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"])
        x = x + (m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"])
    x = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], eps)
    logits = x @ p["wte.weight"].t()
    return (logits, x) if return_hidden else logits


# --------------------------------------------------------------------------------------------------
# batch

def pad_batch(rows, pad_id=0):
    """-> (ids LongTensor [B, T], lengths). Padding positions get pad_id (never read: attention is causal
    and the loss only uses rows at valid positions)."""
    lengths = [len(r["ids"]) for r in rows]
    T = max(lengths)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    for b, r in enumerate(rows):
        if len(r["flags"]) != len(r["ids"]):
            raise ValueError("row %d: %d ids but %d flags" % (b, len(r["ids"]), len(r["flags"])))
        ids[b, :len(r["ids"])] = torch.tensor(r["ids"], dtype=torch.long)
    return ids, lengths


def is_truncated(row):
    """A row is truncated iff its last token is supervised and not terminal."""
    f = row["flags"][-1]
    return bool(f & FLAG_SUPERVISED) and not (f & FLAG_TERMINAL)


def steps_of(rows, truncation):
    """Every supervised token as a step, in row-major order. Each step is a dict:
    b (row), i (token index, >= 1), a (= ids[i]), zrow (= i - 1, logits row of s_t), vrow (= i, logits row of
    s_{t+1}), d (terminal), td (has a TD term), boot (it is the last token of a truncated row)."""
    if truncation not in ("bootstrap", "drop"):
        raise ValueError("truncation must be bootstrap or drop, not %r" % (truncation,))
    out = []
    for b, r in enumerate(rows):
        L = len(r["ids"])
        for i, f in enumerate(r["flags"]):
            if not (f & FLAG_SUPERVISED):
                if f & FLAG_TERMINAL:
                    raise ValueError("row %d token %d: terminal but not supervised" % (b, i))
                continue
            if i == 0:
                raise ValueError("row %d: token 0 cannot be supervised (nothing predicts it)" % b)
            d = 1 if (f & FLAG_TERMINAL) else 0
            boot = (i == L - 1) and not d
            out.append({"b": b, "i": i, "a": int(r["ids"][i]), "zrow": i - 1, "vrow": i, "d": d,
                        "td": not (boot and truncation == "drop"), "boot": boot})
    return out


# --------------------------------------------------------------------------------------------------
# loss

def _index(steps, key):
    return torch.tensor([s[key] for s in steps], dtype=torch.long)


def iqlearn_loss(logits, rows, lam, gamma, td_grad="full", truncation="bootstrap", label_smoothing=0.0,
                 entropy_coef=0.0):
    """DESIGN section 1, with autograd:
        r_t  = z_t[a_t] - gamma (1 - d_t) V(s_{t+1}),  V = logsumexp,  V(s_{t+1}) from logits row i
        nll  = (1/N) sum_t -(z_t[a_t] - V(s_t)),  td = (1/N) sum_{t with TD term} r_t^2,  loss = nll + lam td
    td_grad "semi" detaches V(s_{t+1}). The controls (DESIGN section 10), written out from their definitions
    (test_reference.py checks the first against torch's F.cross_entropy(label_smoothing=eps)):
        label_smoothing eps: the nll term becomes (1/N) sum_t [(1 - eps)(-log pi(a_t)) + eps mean_v(-log pi(v))]
        entropy_coef beta:   loss -= beta (1/N) sum_t H(pi_t),  H = -sum_v pi log pi Returns a dict of tensors (loss, nll, td: 0-d, r: the TD-term
    rewards) and python numbers (n_supervised, reward_mean, reward_abs_mean, reward_abs_max)."""
    if td_grad not in ("full", "semi"):
        raise ValueError("td_grad must be full or semi, not %r" % (td_grad,))
    steps = steps_of(rows, truncation)
    N = len(steps)
    if N == 0:
        raise ValueError("batch has no supervised token")
    bi = _index(steps, "b")
    z = logits[bi, _index(steps, "zrow")]                       # [N, V]  z_t
    zn = logits[bi, _index(steps, "vrow")]                      # [N, V]  row of s_{t+1}
    a = _index(steps, "a")
    d = torch.tensor([s["d"] for s in steps], dtype=logits.dtype)
    has_td = torch.tensor([s["td"] for s in steps], dtype=torch.bool)
    za = z.gather(1, a.unsqueeze(1)).squeeze(1)
    v_s = torch.logsumexp(z, dim=1)
    v_next = torch.logsumexp(zn, dim=1)
    if td_grad == "semi":
        v_next = v_next.detach()
    r_all = za - gamma * (1.0 - d) * v_next
    nll = -(za - v_s).sum() / N
    r = r_all[has_td]
    td = (r * r).sum() / N
    logp = z - v_s.unsqueeze(1)                                  # log pi(.|s_t)
    smoothed = nll if not label_smoothing else (
        (1.0 - label_smoothing) * nll + label_smoothing * (-logp.mean(1)).sum() / N)
    entropy = -(logp.exp() * logp).sum(1).sum() / N
    loss = smoothed + lam * td - entropy_coef * entropy
    rd = r.detach()
    n_td = int(rd.numel())
    return {"loss": loss, "nll": nll, "td": td, "entropy": entropy, "r": r_all, "has_td": has_td, "n_supervised": N, "n_td": n_td,
            "reward_mean": float(rd.mean()) if n_td else 0.0,
            "reward_abs_mean": float(rd.abs().mean()) if n_td else 0.0,
            "reward_abs_max": float(rd.abs().max()) if n_td else 0.0}


def value_mean(logits, rows, gamma, truncation="bootstrap"):
    """Online IQLearn's value term over one set of rows (issue #17), with autograd:
        (1/N) sum_{t with a TD term} [V(s_t) - gamma (1 - d_t) V(s_{t+1})],   N = supervised tokens of the rows
    V(s_{t+1}) is read from the same row as r_t's (the bootstrap row of a truncated row included) and is never
    detached (the value term has the gradient through both V whatever td_grad says). The online loss is
        nll + lam td + alpha (value_mean(policy logits, policy rows) - value_mean(expert logits, expert rows))."""
    steps = steps_of(rows, truncation)
    N = len(steps)
    bi = _index(steps, "b")
    z = logits[bi, _index(steps, "zrow")]
    zn = logits[bi, _index(steps, "vrow")]
    d = torch.tensor([s["d"] for s in steps], dtype=logits.dtype)
    has_td = torch.tensor([s["td"] for s in steps], dtype=torch.bool)
    v = torch.logsumexp(z, dim=1) - gamma * (1.0 - d) * torch.logsumexp(zn, dim=1)
    return v[has_td].sum() / N


def analytic_value_dlogits(logits, rows, coef, gamma, truncation="bootstrap"):
    """d/dlogits of coef * value_mean(logits, rows) from the formula (numpy):
        dL/dz_t += (coef/N) pi_t,   dL/dz_{row of s_{t+1}} -= (coef/N) gamma (1 - d_t) pi_{t+1}   (steps with a TD term)"""
    z_all = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    g = np.zeros_like(z_all)
    steps = steps_of(rows, truncation)
    N = len(steps)
    for s in steps:
        if not s["td"]:
            continue
        for row, c in ((s["zrow"], coef), (s["vrow"], -coef * gamma * (1 - s["d"]))):
            z = z_all[s["b"], row]
            e = np.exp(z - z.max())
            g[s["b"], row] += (c / N) * e / e.sum()
    return g


def cross_entropy_loss(logits, rows, label_smoothing=0.0):
    """Token cross-entropy over the supervised tokens (torch's F.cross_entropy, with its label_smoothing):
    lambda = 0 (without the entropy bonus) must equal it."""
    steps = steps_of(rows, "bootstrap")
    z = logits[_index(steps, "b"), _index(steps, "zrow")]
    return F.cross_entropy(z, _index(steps, "a"), reduction="mean", label_smoothing=label_smoothing)


def analytic_dlogits(logits, rows, lam, gamma, td_grad="full", truncation="bootstrap", label_smoothing=0.0,
                     entropy_coef=0.0):
    """dL/dlogits from DESIGN section 1's formula, as an array shaped like logits (numpy, logits' dtype):
        dL/dz_t += (1/N) [pi_t - e_a + 2 lam r_t e_a]              (the 2 lam r_t e_a part only if step t has a TD term)
        dL/dz_t += (1/N) [eps e_a - eps/V + beta pi_t (z_t - E_pi z_t)]   (label smoothing eps, entropy bonus beta)
        dL/dz_{row i} -= (1/N) 2 lam gamma (1 - d_t) r_t pi_{row i}  (if step t has a TD term and td_grad is full;
                                                                 row i is the next state's row, incl. the bootstrap row)
    Rows may receive both (consecutive supervised tokens) and contributions add."""
    z_all = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    g = np.zeros_like(z_all)
    steps = steps_of(rows, truncation)
    N = len(steps)
    for s in steps:
        b, a = s["b"], s["a"]
        z = z_all[b, s["zrow"]]
        zn = z_all[b, s["vrow"]]
        m = z.max()
        e = np.exp(z - m)
        pi = e / e.sum()
        mn = zn.max()
        en = np.exp(zn - mn)
        v_next = mn + np.log(en.sum())
        pin = en / en.sum()
        r = z[a] - gamma * (1 - s["d"]) * v_next
        gz = pi.copy()
        gz[a] -= 1.0 - label_smoothing
        gz -= label_smoothing / z.shape[0]
        gz += entropy_coef * pi * (z - (pi * z).sum())
        if s["td"]:
            gz[a] += 2.0 * lam * r
            if td_grad == "full" and not s["d"]:
                g[b, s["vrow"]] -= (2.0 * lam * gamma * r / N) * pin
        g[b, s["zrow"]] += gz / N
    return g


# --------------------------------------------------------------------------------------------------
# optimizer

def make_adamw(tparams, optim):
    """torch.optim.AdamW with weight decay on the 2-D matmul weights only (two parameter groups)."""
    dec = [t for n, t in tparams.items() if is_decayed(n)]
    nodec = [t for n, t in tparams.items() if not is_decayed(n)]
    return torch.optim.AdamW(
        [{"params": dec, "weight_decay": optim["weight_decay"]}, {"params": nodec, "weight_decay": 0.0}],
        lr=optim["lr"], betas=(optim["beta1"], optim["beta2"]), eps=optim["eps"])


def clip_grad_norm(tensors, grad_clip):
    """torch.nn.utils.clip_grad_norm_(tensors, grad_clip) when grad_clip > 0: coef = clip / (norm + 1e-6),
    scale when coef < 1. Returns the total norm before clipping."""
    total = torch.sqrt(sum((t.grad.detach() ** 2).sum() for t in tensors))
    if grad_clip and grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(tensors, grad_clip)
    return float(total)


# --------------------------------------------------------------------------------------------------
# the whole reference

def reference_run(cfg, params, batch, dtype=torch.float64):
    """The reference for one batch.json (dict) and one model (cfg, {name: np.float32 array}):
    -> dict with logits [B, T, V] (np, dtype; padding positions zeroed), grads {name: np} at the initial
    weights, the scalar results, lengths, losses (one per AdamW step; losses[0] = loss), and dlogits_autograd /
    dlogits_analytic (np) for the self-check.
    With batch["online"] = {"mix": alpha, "rows": policy rows} (issue #17): the loss adds
    alpha (value_mean(policy) - value_mean(expert)) with the policy rows fixed (the same each step), and the
    result has online_value_gap and the policy logits' dlogits (autograd and analytic) too. The controls
    (label_smoothing, entropy_coef) are terms of the expert rows' loss only: the policy rows' value term has none."""
    rows = batch["rows"]
    online = batch.get("online")
    lam, gamma = float(batch["lambda"]), float(batch["gamma"])
    td_grad, trunc = batch.get("td_grad", "full"), batch.get("truncation", "bootstrap")
    ctl = {"label_smoothing": float(batch.get("label_smoothing", 0.0)),
           "entropy_coef": float(batch.get("entropy_coef", 0.0))}
    steps = int(batch.get("steps", 1))
    optim = batch.get("optim", {})
    tp = to_torch(params, dtype=dtype)
    ids, lengths = pad_batch(rows)
    opt = make_adamw(tp, optim) if steps > 1 else None
    order = list(tp.values())
    out = {"losses": [], "lengths": lengths}
    for k in range(steps):
        for t in order:
            t.grad = None
        logits = forward(tp, ids, cfg)
        if k == 0:
            logits.retain_grad()
        res = iqlearn_loss(logits, rows, lam, gamma, td_grad, trunc, **ctl)
        loss = res["loss"]
        if online:
            pol_ids, _ = pad_batch(online["rows"])
            pol_logits = forward(tp, pol_ids, cfg)
            if k == 0:
                pol_logits.retain_grad()
            gap = value_mean(pol_logits, online["rows"], gamma, trunc) - value_mean(logits, rows, gamma, trunc)
            loss = loss + float(online["mix"]) * gap
            res["loss"] = loss
        loss.backward()
        out["losses"].append(float(res["loss"].detach()))
        if k == 0:
            lg = logits.detach().cpu().numpy().copy()
            for b, L in enumerate(lengths):
                lg[b, L:] = 0.0
            out["logits"] = lg
            out["grads"] = {n: t.grad.detach().cpu().numpy().copy() for n, t in tp.items()}
            out["dlogits_autograd"] = logits.grad.detach().cpu().numpy().copy()
            out["dlogits_analytic"] = analytic_dlogits(logits, rows, lam, gamma, td_grad, trunc, **ctl)
            if online:
                a = float(online["mix"])
                out["online_value_gap"] = float(gap.detach())
                out["dlogits_analytic"] = out["dlogits_analytic"] + analytic_value_dlogits(logits, rows, -a, gamma, trunc)
                out["pol_dlogits_autograd"] = pol_logits.grad.detach().cpu().numpy().copy()
                out["pol_dlogits_analytic"] = analytic_value_dlogits(pol_logits, online["rows"], a, gamma, trunc)
            for key in ("loss", "nll", "td"):
                out[key] = float(res[key].detach())
            for key in ("n_supervised", "n_td", "reward_mean", "reward_abs_mean", "reward_abs_max"):
                out[key] = res[key]
            if lam == 0.0 and ctl["entropy_coef"] == 0.0:
                leaf = logits.detach().clone().requires_grad_(True)
                ce = cross_entropy_loss(leaf, rows, ctl["label_smoothing"])
                ce.backward()
                out["cross_entropy"] = float(ce.detach())
                out["dlogits_cross_entropy"] = leaf.grad.numpy().copy()
        if k + 1 < steps:
            clip_grad_norm(order, float(optim.get("grad_clip", 0.0)))
            opt.step()
    return out
