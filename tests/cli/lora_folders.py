#!/usr/bin/python3
"""Adapter folders for tests/cli/test_lora_io.sh, made from a good one (standard library and numpy only).

    lora_folders.py bad GOOD_DIR OUT_ROOT     writes OUT_ROOT/NAME/ for each bad case and prints one line per
                                              case: NAME|the words the refusal must contain
    lora_folders.py variant GOOD_DIR OUT KIND  an equivalent folder: KIND regex (target_modules as PEFT's regex
                                              string), bf16 (tensors stored as BF16), shuffled (tensors in another
                                              order, PEFT's extra bookkeeping keys)
    lora_folders.py nll METRICS.jsonl STEP     prints the eval nll logged at STEP
    lora_folders.py close A B REL              exit 0 when |a - b| <= REL |b|
    lora_folders.py scores A.jsonl B.jsonl REL exit 0 when every row's logprob and rewards agree within REL
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

PRE = "base_model.model."


def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    meta = h.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for k, v in h.items():
        b, e = v["data_offsets"]
        dt = {"F32": "<f4", "BF16": "<u2"}[v["dtype"]]
        out[k] = (v["dtype"], np.frombuffer(data[b:e], dtype=dt).reshape(v["shape"]))
    return out, meta


def shapes(path):
    """a safetensors file's tensor names -> shapes (lists)"""
    return {k: list(a.shape) for k, (_, a) in read_st(path)[0].items()}


def train_losses(metrics):
    """the loss of every train row of a metrics.jsonl, in order"""
    return [json.loads(line)["loss"] for line in open(metrics) if '"train"' in line and '"loss"' in line]


def write_st(path, tensors, meta=None):
    """tensors: [(name, dtype, array)] in order."""
    h, blobs, off = {}, [], 0
    if meta:
        h["__metadata__"] = meta
    for name, dt, a in tensors:
        b = np.ascontiguousarray(a).tobytes()
        h[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(h, separators=(",", ":")).encode()
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


def copy(good, out):
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(good, out)
    with open(os.path.join(out, "adapter_config.json")) as f:
        cfg = json.load(f)
    t, meta = read_st(os.path.join(out, "adapter_model.safetensors"))
    return cfg, [(k, dt, a.copy()) for k, (dt, a) in t.items()], meta


def save(out, cfg, tensors, meta):
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_st(os.path.join(out, "adapter_model.safetensors"), tensors, meta)


def bad(good, root):
    cases = []

    def case(name, want, edit):
        out = os.path.join(root, name)
        cfg, t, meta = copy(good, out)
        r = edit(cfg, t)
        save(out, cfg, r if r is not None else t, meta)
        cases.append("%s|%s" % (name, want))

    a0 = PRE + "model.layers.0.self_attn.q_proj.lora_A.weight"
    b1 = PRE + "model.layers.1.mlp.down_proj.lora_B.weight"
    case("rank", "rank mismatch", lambda c, t: c.update(r=c["r"] * 2))
    case("unknown_target", "unknown target module 'qkv_proj'", lambda c, t: c["target_modules"].append("qkv_proj"))
    case("unknown_tensor_module", "target module 'c_attn' is not a module of the Llama family",
         lambda c, t: t + [(PRE + "model.layers.0.attn.c_attn.lora_A.weight", "F32", t[0][2])])
    case("not_targeted", "not in adapter_config.json's target_modules", lambda c, t: c.update(target_modules=["q_proj"]))
    case("shape", "wrong shape", lambda c, t: [(k, d, a[:, :-1] if k == a0 else a) for k, d, a in t])
    case("rank_tensor", "rank mismatch", lambda c, t: [(k, d, a[:-1] if k == a0 else a) for k, d, a in t])
    case("missing", "missing tensor " + b1, lambda c, t: [x for x in t if x[0] != b1])
    case("extra", "extra tensor " + PRE + "lm_head.weight", lambda c, t: t + [(PRE + "lm_head.weight", "F32", t[0][2])])
    case("layer_beyond", "layer 7 is beyond the model (2 layers)",
         lambda c, t: t + [(a0.replace("layers.0", "layers.7"), "F32", t[0][2])])
    case("peft_type", "peft_type is IA3", lambda c, t: c.update(peft_type="IA3"))
    case("rslora", "use_rslora is set", lambda c, t: c.update(use_rslora=True))
    case("dora", "use_dora is set", lambda c, t: c.update(use_dora=True))
    case("unknown_tensor_module2", "unknown target module 'qkv_proj'",
         lambda c, t: t + [(PRE + "model.layers.0.self_attn.qkv_proj.lora_A.weight", "F32", t[0][2])])
    case("fan_in_fan_out", "fan_in_fan_out is true, which is for Conv1D layers", lambda c, t: c.update(fan_in_fan_out=True))
    case("rank_pattern", "rank_pattern is set", lambda c, t: c.update(rank_pattern={"q_proj": 2}))
    case("modules_to_save", "modules_to_save is set: only", lambda c, t: c.update(modules_to_save=["embed_tokens"]))
    case("tied_head", "modules_to_save [\"lm_head\"] on a model whose LM head is tied",
         lambda c, t: c.update(modules_to_save=["lm_head"]))
    case("bias", "bias must be \"none\"", lambda c, t: c.update(bias="lora_only"))
    case("r_zero", "r must be an integer", lambda c, t: c.update(r=0))
    case("pissa", "init_lora_weights \"pissa_niter_4\"", lambda c, t: c.update(init_lora_weights="pissa_niter_4"))
    # a corrupt file: the safetensors reader's checks
    out = os.path.join(root, "truncated")
    copy(good, out)
    p = os.path.join(out, "adapter_model.safetensors")
    raw = open(p, "rb").read()
    open(p, "wb").write(raw[:-4])
    cases.append("truncated|adapter_model.safetensors")
    out = os.path.join(root, "pickle_only")
    copy(good, out)
    os.rename(os.path.join(out, "adapter_model.safetensors"), os.path.join(out, "adapter_model.bin"))
    cases.append("pickle_only|adapter_model.bin, a pickle, is not read")
    print("\n".join(cases))


def variant(good, out, kind):
    cfg, t, meta = copy(good, out)
    if kind == "regex":
        cfg["target_modules"] = r".*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    elif kind == "all_linear":
        cfg["target_modules"] = "all-linear"
    elif kind == "bf16":
        t = [(k, "BF16", (a.astype("<f4").view("<u4") >> 16).astype("<u2")) for k, d, a in t]
    elif kind == "shuffled":
        t = t[::-1]
        cfg.update(revision=None, peft_version="0.17.1", layers_pattern=None, exclude_modules=None, lora_bias=False,
                   rank_pattern={}, alpha_pattern={}, megatron_config=None, loftq_config={}, task_type="CAUSAL_LM",
                   init_lora_weights="gaussian")
    save(out, cfg, t, meta)


def main(argv):
    if argv[1] == "bad":
        bad(argv[2], argv[3])
    elif argv[1] == "variant":
        variant(argv[2], argv[3], argv[4])
    elif argv[1] == "nll":
        rows = [json.loads(line) for line in open(argv[2])]
        print([r["nll"] for r in rows if r.get("type") == "eval" and r["step"] == int(argv[3])][-1])
    elif argv[1] == "json_nll":
        print(json.load(open(argv[2]))["nll"])
    elif argv[1] == "close":
        a, b, rel = float(argv[2]), float(argv[3]), float(argv[4])
        return 0 if abs(a - b) <= rel * abs(b) else 1
    elif argv[1] == "scores":
        ra = [json.loads(line) for line in open(argv[2])]
        rb = [json.loads(line) for line in open(argv[3])]
        rel = float(argv[4])
        ok = len(ra) == len(rb) > 0
        for x, y in zip(ra, rb):
            vals = [(x["logprob"], y["logprob"])] + list(zip(x["rewards"], y["rewards"]))
            ok = ok and len(x["rewards"]) == len(y["rewards"])
            ok = ok and all(abs(p - q) <= rel * max(abs(q), 1.0) for p, q in vals)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
