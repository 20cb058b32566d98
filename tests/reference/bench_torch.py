#!/usr/bin/python3
"""The PyTorch program a user would run instead of iqtrain, timed the way `iqtrain bench` times itself.

    /usr/bin/python3 tests/reference/bench_torch.py [--what train|generate] [--n-layer 4 --n-head 4 --n-embd 256]
        [--config CONFIG.json|DIR]
        [--ctx 1024] [--vocab-size 8192] [--batch-size 8] [--seq-len 128] [--steps 10] [--lambda 0.1]
        [--threads N] [--precision fp32|bf16] [--prompt-len 16] [--new-tokens 64] [--json]
        [--lora-rank R --lora-alpha A --lora-targets M,... --base-dtype fp32|bf16] [--gradient-checkpointing]

train: a random-init GPT-2 (the same model as gpt2_iqlearn.py, as an nn.Module in float32) on random tokens, or
with --config a Llama-family model of that config.json's shape (llama, mistral, qwen2, qwen3: RMSNorm, rotate-half
RoPE, repeat_kv, SiLU-gated MLP, q/k/v biases, q/k norm, tied or untied head; written from the equations like
llama_reference.py, as an nn.Module in float32);
each step is forward, the IQLearn loss of DESIGN section 1 (vectorized: every token but the first supervised,
the last terminal), backward, clip_grad_norm_(1.0) and torch.optim.AdamW (foreach) with weight decay on
the matmul weights. bf16 = torch.autocast("cpu", torch.bfloat16) around the forward, the loss in float32.
Reports the median step after step 0, like iqtrain.
--lora-rank (with --config): PEFT's LoRA on the target linear layers (y = W x + (alpha/r) B A x, A kaiming-uniform, B
zero), every base parameter frozen, AdamW and clip_grad_norm_ over the adapters only; --base-dtype bf16 casts the
frozen linear layers to bfloat16 and runs the forward under autocast. --gradient-checkpointing: torch.utils.checkpoint
per block. (The RoPE here ignores rope_scaling: the same cost.)

generate: greedy decoding with a KV cache (batch of --batch-size prompts of --prompt-len random tokens,
--new-tokens new tokens each), under torch.inference_mode; tokens/s counts new tokens.
Run with Debian's /usr/bin/python3 (python3-torch). PyTorch's fp32 matmuls go through Debian's OpenBLAS, which
falls back to its generic "Prescott" kernels on CPUs it does not know (e.g. a Sapphire Rapids Xeon): for a fair
comparison set OPENBLAS_CORETYPE (SkylakeX with AVX-512, Haswell with AVX2) as scripts/bench.sh does; the
output records the variable and the core torch reports."""
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def attn(self, x, cache=None):
        B, T, C = x.shape
        D = C // self.H
        q, k, v = self.c_attn(x).split(C, dim=-1)
        q = q.view(B, T, self.H, D).transpose(1, 2)
        k = k.view(B, T, self.H, D).transpose(1, 2)
        v = v.view(B, T, self.H, D).transpose(1, 2)
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0], k], dim=2)
                v = torch.cat([cache[1], v], dim=2)
            cache[0], cache[1] = k, v
        S = k.shape[2]
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D))
        if T > 1:
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            att = att.masked_fill(~mask, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, L, H, C, ctx, V):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(ctx, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        for n, p in self.named_parameters():
            if n.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" not in n:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, pos0=0, caches=None):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(pos0, pos0 + T))
        for i, blk in enumerate(self.h):
            x = blk(x, caches[i] if caches is not None else None)
        return self.ln_f(x) @ self.wte.weight.t()


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaBlock(nn.Module):
    """Pre-RMSNorm block: grouped-query attention with rotate-half RoPE (keys and values repeated to the query
    heads), q/k/v biases for qwen2 or attention_bias, per-head q/k RMSNorm for qwen3, SiLU-gated MLP."""

    def __init__(self, cfg):
        super().__init__()
        C, I, eps = cfg["hidden_size"], cfg["intermediate_size"], cfg["rms_norm_eps"]
        self.H = cfg["num_attention_heads"]
        self.K = cfg.get("num_key_value_heads") or self.H
        self.D = cfg.get("head_dim") or C // self.H
        qkv_bias = cfg["model_type"] == "qwen2" or bool(cfg.get("attention_bias"))
        o_bias = cfg["model_type"] != "qwen2" and bool(cfg.get("attention_bias"))
        self.input_layernorm = RMSNorm(C, eps)
        self.q_proj = nn.Linear(C, self.H * self.D, bias=qkv_bias)
        self.k_proj = nn.Linear(C, self.K * self.D, bias=qkv_bias)
        self.v_proj = nn.Linear(C, self.K * self.D, bias=qkv_bias)
        self.o_proj = nn.Linear(self.H * self.D, C, bias=o_bias)
        self.qk_norm = cfg["model_type"] == "qwen3"
        if self.qk_norm:
            self.q_norm, self.k_norm = RMSNorm(self.D, eps), RMSNorm(self.D, eps)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.gate_proj = nn.Linear(C, I, bias=False)
        self.up_proj = nn.Linear(C, I, bias=False)
        self.down_proj = nn.Linear(I, C, bias=False)

    def attn(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D)
        k = self.k_proj(x).view(B, T, self.K, self.D)
        v = self.v_proj(x).view(B, T, self.K, self.D).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.H // self.K, dim=1)  # repeat_kv: query head h reads key head h // (H/K)
        v = v.repeat_interleave(self.H // self.K, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.D))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = torch.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(B, T, self.H * self.D))

    def forward(self, x, cos, sin):
        x = x + self.attn(self.input_layernorm(x), cos, sin)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    """The Llama families (llama, mistral, qwen2, qwen3) from a config.json, tied or untied head, HF's init."""

    def __init__(self, cfg):
        super().__init__()
        C, V = cfg["hidden_size"], cfg["vocab_size"]
        self.embed_tokens = nn.Embedding(V, C)
        self.layers = nn.ModuleList(LlamaBlock(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(C, cfg["rms_norm_eps"])
        self.lm_head = None if cfg.get("tie_word_embeddings", True) else nn.Linear(C, V, bias=False)
        self.checkpointing = False
        blk = self.layers[0]
        self.inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, blk.D, 2, dtype=torch.float64) / blk.D))
        for n, p in self.named_parameters():
            if n.endswith("bias"):
                nn.init.zeros_(p)
            elif "norm" not in n:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        T = ids.shape[1]
        f = torch.outer(torch.arange(T, dtype=torch.float64), self.inv_freq)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos().float(), emb.sin().float()
        x = self.embed_tokens(ids)
        for blk in self.layers:
            if self.checkpointing and torch.is_grad_enabled():  # transformers' gradient checkpointing: per block
                x = torch.utils.checkpoint.checkpoint(blk, x, cos, sin, use_reentrant=False)
            else:
                x = blk(x, cos, sin)
        head = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return self.norm(x) @ head.t()


class LoRALinear(nn.Module):
    """PEFT's LoRA Linear: y = W x + b + (alpha/r) B (A x), the base frozen, A ~ kaiming_uniform(a=sqrt(5)), B = 0."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scale = base, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x):
        return self.base(x) + self.scale * ((x @ self.lora_A.t()) @ self.lora_B.t())


def add_lora(m, r, alpha, targets):
    """Freezes every parameter of the Llama m and wraps its target linear layers; returns the adapters' parameters."""
    for p in m.parameters():
        p.requires_grad_(False)
    for blk in m.layers:
        for t in targets:
            setattr(blk, t, LoRALinear(getattr(blk, t), r, alpha))
    return [p for n, p in m.named_parameters() if "lora_" in n]


def read_config(path):
    """config.json, or a folder holding one."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path) as f:
        return json.load(f)


def iqlearn_loss(logits, ids, lam, gamma):
    """DESIGN section 1 with every token but the first supervised and the last one terminal."""
    logits = logits.float()
    v = torch.logsumexp(logits, dim=-1)                                  # [B, T]
    za = logits[:, :-1].gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)    # [B, T-1]
    nll = -(za - v[:, :-1]).mean()
    not_done = torch.ones_like(za)
    not_done[:, -1] = 0.0
    r = za - gamma * not_done * v[:, 1:]
    return nll + lam * (r * r).mean()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def block_matrix_params(m):
    """The blocks' 2-D weights (the tensors iqtrain decays): everything 2-D but embeddings and the LM head."""
    return sum(p.numel() for n, p in m.named_parameters()
               if p.dim() == 2 and not any(k in n for k in ("wpe", "wte", "embed_tokens", "lm_head")))


def bench_train(a):
    torch.manual_seed(1)
    if a.config:
        cfg = read_config(a.config)
        m = Llama(cfg)
        a.vocab_size = cfg["vocab_size"]
        qw = m.layers[0].H * m.layers[0].D
    else:
        m = GPT2(a.n_layer, a.n_head, a.n_embd, a.ctx, a.vocab_size)
        qw = a.n_embd
    matrices = block_matrix_params(m)
    if a.lora_rank > 0:  # PEFT's LoRA: the base frozen (and in bf16 with --base-dtype bf16), AdamW on the adapters
        if not a.config:
            raise SystemExit("--lora-rank needs --config (a Llama-family model)")
        m.checkpointing = a.gradient_checkpointing
        trained = add_lora(m, a.lora_rank, a.lora_alpha, a.lora_targets.split(","))
        if a.base_dtype == "bf16":
            for n, mod in m.named_modules():
                if isinstance(mod, nn.Linear) and not isinstance(mod, LoRALinear):
                    mod.to(torch.bfloat16)
        opt = torch.optim.AdamW(trained, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=True)
    else:
        m.checkpointing = a.gradient_checkpointing
        decayed = {n: p.dim() == 2 and not any(k in n for k in ("wpe", "wte", "embed_tokens", "lm_head"))
                   for n, p in m.named_parameters()}
        dec = [p for n, p in m.named_parameters() if decayed[n]]
        nodec = [p for n, p in m.named_parameters() if not decayed[n]]
        opt = torch.optim.AdamW([{"params": dec, "weight_decay": 0.1}, {"params": nodec, "weight_decay": 0.0}],
                                lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)
        trained = list(m.parameters())
    ids = torch.randint(0, a.vocab_size, (a.batch_size, a.seq_len))
    times, losses = [], []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if a.precision == "bf16" or a.base_dtype == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = m(ids)
        else:
            logits = m(ids)
        loss = iqlearn_loss(logits, ids, a.lam, 0.99)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        times.append((time.perf_counter() - t0) * 1e3)
        losses.append(float(loss))
    ms = median(times[1:])
    tokens = a.batch_size * a.seq_len
    C = cfg["hidden_size"] if a.config else a.n_embd
    L = cfg["num_hidden_layers"] if a.config else a.n_layer
    # iqtrain bench's count: 6 x tokens x (block matrices + LM head) + causal attention's four products
    # (LoRA: 4 x for the frozen matrices, which get no weight gradient)
    flops = (4.0 if a.lora_rank > 0 else 6.0) * tokens * (matrices + a.vocab_size * C) + \
        6.0 * a.batch_size * a.seq_len ** 2 * qw * L
    return {"what": "train", "impl": "pytorch", "model_type": cfg["model_type"] if a.config else "gpt2",
            "parameters": sum(p.numel() for p in m.parameters()), "torch": torch.__version__, "precision": a.precision,
            "threads": torch.get_num_threads(), "tokens_per_s": tokens / (ms / 1e3), "ms_per_step": ms,
            "first_step_ms": times[0], "gflops": flops / (ms / 1e3) / 1e9, "loss_first": losses[0],
            "loss_last": losses[-1], "lora_rank": a.lora_rank, "base_dtype": a.base_dtype,
            "gradient_checkpointing": a.gradient_checkpointing, "steps": a.steps}


def bench_generate(a):
    torch.manual_seed(1)
    m = GPT2(a.n_layer, a.n_head, a.n_embd, a.ctx, a.vocab_size).eval()
    prompts = torch.randint(0, a.vocab_size, (a.batch_size, a.prompt_len))
    times = []
    with torch.inference_mode():
        for _ in range(max(2, a.steps)):
            caches = [[None, None] for _ in m.h]
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                logits = m(prompts, 0, caches)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                for i in range(a.new_tokens - 1):
                    logits = m(nxt, a.prompt_len + i, caches)
                    nxt = logits[:, -1].argmax(-1, keepdim=True)
            times.append(time.perf_counter() - t0)
    s = median(times[1:])
    return {"what": "generate", "impl": "pytorch", "torch": torch.__version__, "precision": a.precision,
            "threads": torch.get_num_threads(), "batch": a.batch_size, "prompt_len": a.prompt_len,
            "new_tokens": a.new_tokens, "seconds": s, "tokens_per_s": a.batch_size * a.new_tokens / s}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--what", default="train", choices=["train", "generate"])
    ap.add_argument("--config", help="train: a Llama-family model of this config.json (or folder) instead of GPT-2")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lambda", dest="lam", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--lora-rank", type=int, default=0, help="train: LoRA adapters of this rank (with --config)")
    ap.add_argument("--lora-alpha", type=float, default=8.0)
    ap.add_argument("--lora-targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--base-dtype", default="fp32", choices=["fp32", "bf16"],
                    help="LoRA: the frozen linear layers in bf16 (autocast runs their products in bf16)")
    ap.add_argument("--gradient-checkpointing", action="store_true", help="train with --config: recompute each block")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    r = bench_train(a) if a.what == "train" else bench_generate(a)
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    r["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE")
    if a.json:
        print(json.dumps(r))
    else:
        print(" ".join("%s=%s" % (k, ("%.4g" % v) if isinstance(v, float) else v) for k, v in r.items()))


if __name__ == "__main__":
    main()
