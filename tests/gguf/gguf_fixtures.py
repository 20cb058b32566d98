#!/usr/bin/python3
"""Fixtures of tests/gguf/test_gguf.sh (standard library only).

  gguf_fixtures.py data REPO OUTDIR
      OUTDIR/train_tok.jsonl  rows to train a small tokenizer on (bundled data/arith rows)
      OUTDIR/mem.jsonl        16 rows to memorise: prompt = the start of an arith question up to its first
                              number, completion = the rest of the row (so greedy continuations of the prompts
                              run for more than 40 tokens with clear margins)
      OUTDIR/corpus.jsonl     {"text": ...} documents for the tokenization check: arith rows, data/samples,
                              llama.cpp's pre-tokenizer check string, hand-written edge cases and a quarter of
                              tests/tokenizer/corpus_hf.hex (see hf_cases)
  gguf_fixtures.py qwen SRC DST qwen2|qwen3|qwen3-bias SEED
      DST = the llama folder SRC turned into a Qwen2 (q/k/v biases added) or Qwen3 (q/k RMSNorm weights added)
      model folder, to be fine-tuned again by iqtrain before the comparison; qwen3-bias: a Qwen3 folder with
      attention_bias (q/k/v/o biases), which llama.cpp cannot hold
  gguf_fixtures.py rope SRC DST FACTOR ORIGINAL_CONTEXT
      DST = the llama folder SRC with Llama 3 rope scaling (low/high frequency factors 1 and 4), to be fine-tuned
      again before the comparison
"""
import gzip
import json
import os
import random
import re
import shutil
import struct
import sys
import unicodedata

# llama.cpp's convert_hf_to_gguf.py hashes the tokens of this string to name a pre-tokenizer
CHKTXT = ("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 "
          "333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
          "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you "
          "sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL")

EDGE = [
    "Hello world", " Hello  world ", "I'm sure you're right, they'll see; we'd known. IT'S FINE, She'S here.",
    "1 12 123 1234 12345 123456 3.14159 1,000,000 2024-01-31", "tabs\tand\nnewlines\r\nand\n\n\nblank lines",
    "trailing spaces   ", "   leading spaces", "a    b     c\t\t d", "naïve café résumé Ångström façade",
    "我想在apple工作 東京 서울 Москва القاهرة नमस्ते", "emoji 🚀 😶\u200d🌫️ 🦙🦙 👍🏽 🇫🇷", "<|endoftext|> is text here",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(3))", "!!!???... --- === *** ((()))", "e-mail: a.b@c.de, https://x.y/z?q=1",
    "ALL CAPS AND MiXeD cAsE", "’curly quotes’ and “double” — dashes – too", "x\u00a0y\u2009z\u3000w",
]


def arith_rows(repo):
    with gzip.open(os.path.join(repo, "data", "arith", "train.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def hf_cases(repo, stride):
    """Every stride-th case of tests/tokenizer/corpus_hf.hex that llama.cpp's tokenizers can be held to: valid
    UTF-8, no NUL, unchanged by NFC (llama.cpp does not apply Qwen's NFC normalizer) and without "<|" (the
    converter marks Qwen's non-special added tokens that look special as control tokens, which llama.cpp does
    not split out of plain text while transformers does)."""
    cases = []
    with open(os.path.join(repo, "tests", "tokenizer", "corpus_hf.hex"), encoding="ascii") as f:
        for i, line in enumerate(f):
            try:
                s = bytes.fromhex(line.strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            if i % stride == 0 and s and "\0" not in s and "<|" not in s and unicodedata.normalize("NFC", s) == s:
                cases.append(s)
    return cases


def make_data(repo, out):
    rows = arith_rows(repo)
    write_jsonl(os.path.join(out, "train_tok.jsonl"), rows[:4000])
    mem, seen = [], set()
    for r in rows:
        if len(r["completion"]) < 70:
            continue
        m = re.search(r"\d+", r["prompt"])
        if not m or r["prompt"][: m.end()] in seen:
            continue
        cut = m.end()
        seen.add(r["prompt"][:cut])
        mem.append({"prompt": r["prompt"][:cut], "completion": r["prompt"][cut:] + r["completion"]})
        if len(mem) == 16:
            break
    write_jsonl(os.path.join(out, "mem.jsonl"), mem)
    docs = [r["prompt"] + r["completion"] for r in rows[4000:4200]]
    for name in ("text.jsonl", "prompt_completion.jsonl", "messages.jsonl"):
        with open(os.path.join(repo, "data", "samples", name), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                docs += [r[k] for k in ("text", "prompt", "completion") if r.get(k)]
                docs += [m["content"] for m in r.get("messages", []) if m["content"]]
    docs += [CHKTXT] + EDGE + hf_cases(repo, 4)
    write_jsonl(os.path.join(out, "corpus.jsonl"), [{"text": d} for d in docs])


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (shape, blob) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_qwen(src, dst, kind, seed):
    rng = random.Random(seed)
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        if name not in ("config.json", "model.safetensors", "generation_config.json", "trainer_state.json",
                        "optimizer.safetensors") and os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), dst)
    with open(os.path.join(src, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.pop("iqtrain", None)
    cfg["model_type"] = kind.split("-")[0]
    cfg["architectures"] = ["Qwen2ForCausalLM" if kind == "qwen2" else "Qwen3ForCausalLM"]
    cfg["attention_bias"] = kind == "qwen3-bias"
    with open(os.path.join(dst, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
    tensors = read_safetensors(os.path.join(src, "model.safetensors"))
    hd, out = cfg["head_dim"], {}
    for name, (shape, blob) in tensors.items():
        out[name] = (shape, blob)
        m = re.match(r"model\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.weight$", name)
        if not m:
            continue
        if kind in ("qwen2", "qwen3-bias"):
            vals = [rng.gauss(0.0, 0.05) for _ in range(shape[0])]
            out[name[:-len("weight")] + "bias"] = ([shape[0]], struct.pack(f"<{shape[0]}f", *vals))
        if kind == "qwen3-bias" and m.group(2) == "q":  # llama.cpp's qwen3 has no o_proj bias
            c = cfg["hidden_size"]
            out[f"model.layers.{m.group(1)}.self_attn.o_proj.bias"] = ([c], struct.pack(f"<{c}f", *([0.0] * c)))
        if kind.startswith("qwen3") and m.group(2) in "qk":
            vals = [1.0 + rng.gauss(0.0, 0.1) for _ in range(hd)]
            out[f"model.layers.{m.group(1)}.self_attn.{m.group(2)}_norm.weight"] = ([hd], struct.pack(f"<{hd}f", *vals))
    write_safetensors(os.path.join(dst, "model.safetensors"), out)


def make_rope(src, dst, factor, orig_ctx):
    shutil.copytree(src, dst)
    for name in ("trainer_state.json", "optimizer.safetensors"):
        if os.path.exists(os.path.join(dst, name)):
            os.remove(os.path.join(dst, name))
    with open(os.path.join(dst, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.pop("iqtrain", None)
    cfg["rope_scaling"] = {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": orig_ctx}
    with open(os.path.join(dst, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "data":
        make_data(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "qwen":
        make_qwen(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) == 6 and sys.argv[1] == "rope":
        make_rope(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
