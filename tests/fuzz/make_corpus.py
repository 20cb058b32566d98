#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (small valid and invalid
examples of each input). Deterministic; re-run after changing it:
    python3 tests/fuzz/make_corpus.py
The tokenizer seeds are built from tests/fuzz/seed_tokenizer/ (a 264-id tokenizer written by
`iqtrain train-tokenizer --vocab-size 264 data/samples/*.jsonl`)."""
import gzip
import io
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data, mtime=0):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=mtime) as g:
        g.write(data)
    return buf.getvalue()


def sample_lines():
    lines = []
    for name in ("prompt_completion.jsonl", "text.jsonl", "messages.jsonl"):
        with open(os.path.join(ROOT, "data", "samples", name), "rb") as f:
            lines += [l for l in f.read().split(b"\n") if l.strip()]
    return lines


# ---------------------------------------------------------------- rows
def rows():
    lines = sample_lines()
    picks = [lines[i] for i in (0, 3, 4, 6)] + [l for l in lines if b'"text"' in l][:2] + \
            [l for l in lines if b'"messages"' in l][:3]
    for i, l in enumerate(picks):
        put("row", f"valid-{i:02d}", l)
    bad = {
        "bom": b"\xef\xbb\xbf" + b'{"text": "with a BOM"}',
        "crlf": b'{"prompt": "a", "completion": "b"}\r',
        "blank": b"  \t ",
        "dup-key": b'{"text": "a", "text": "b"}',
        "nul-escape": b'{"text": "a\\u0000b"}',
        "lone-surrogate": b'{"text": "\\ud800x"}',
        "pair-surrogate": b'{"text": "\\ud83c\\udf70 cake"}',
        "mixed": b'{"text": "a", "prompt": "b", "completion": "c"}',
        "not-object": b'["text", "a"]',
        "bad-number": b'{"text": "a", "n": 01}',
        "unknown-role": b'{"messages": [{"role": "bot", "content": "hi"}]}',
        "no-assistant": b'{"messages": [{"role": "user", "content": "hi"}]}',
        "eos-text": b'{"prompt": "<|endoftext|>", "completion": "x<|endoftext|>"}',
        "empty-prompt": b'{"prompt": "", "completion": ""}',
        "invalid-utf8": b'{"text": "caf\xe9"}',
        "control": b'{"text": "tab\there"}',
        "escapes": b'{"text": "\\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9"}',
        "extra-keys": b'{"prompt": "p", "completion": "c", "meta": {"a": [1, 2.5e3, -0.5, true, null]}}',
        "long-word": b'{"text": "' + b"a" * 200 + b'"}',
    }
    for k, v in bad.items():
        put("row", k, v)


# ---------------------------------------------------------------- whole data files
def data_files():
    lines = sample_lines()
    put("data_file", "samples", b"\n".join(lines[:6]) + b"\n")
    put("data_file", "no-final-newline", b"\n".join(lines[6:9]))
    put("data_file", "bom-crlf-blank", b"\xef\xbb\xbf" + b"\r\n".join(lines[9:12]) + b"\r\n\r\n  \n")
    put("data_file", "bad-row", lines[0] + b"\n{\"text\": 5}\n" + lines[1] + b"\n")
    put("data_file", "gzip", gz(b"\n".join(lines[:4]) + b"\n"))
    put("data_file", "gzip-multi", gz(lines[0] + b"\n") + gz(lines[1] + b"\n"))
    put("data_file", "gzip-trailing", gz(lines[0] + b"\n") + b"junk")
    put("data_file", "gzip-truncated", gz(b"\n".join(lines[:3]) + b"\n")[:-6])
    put("data_file", "empty", b"")


# ---------------------------------------------------------------- tokenizer: arbitrary bytes
def tokenizer_encode():
    texts = {
        "english": "The quick brown fox jumps over the lazy dog. It's 3:45pm, isn't it? We'll see, they'd say.",
        "unicode": "naïve café → résumé ☕ 🍰 日本語のテキスト Ελληνικά кириллица ١٢٣ ½ Ⅻ",
        "whitespace": "a\u0085b\ufeffc\u180ed\u00a0e\u2028f\u3000g  \t\n\n  h \r\n",
        "contractions": "'s 't 're 've 'm 'll 'd 'S 'T ''s x's",
        "eos": "before<|endoftext|>after <|endoftext|><|endoftext|>",
        "digits": "123456789 0.5 1e10 -42 ٣٤٥ ①②",
        "long-letters": "a" * 100 + " " + "ab" * 80,
        "long-spaces": " " * 90 + "x" + "\n" * 70,
        "long-symbols": "!?" * 60 + "=" * 70,
        "code": "def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n",
    }
    for k, v in texts.items():
        put("tokenizer_encode", k, v)
    put("tokenizer_encode", "invalid-utf8", b"caf\xe9 \xff\xfe \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 ok")
    put("tokenizer_encode", "nul-split", b"first text\x00second text, first text")
    put("tokenizer_encode", "empty", b"")


# ---------------------------------------------------------------- tokenizer files
def tokenizer_files():
    src = os.path.join(HERE, "seed_tokenizer")
    tj = open(os.path.join(src, "tokenizer.json"), "rb").read()
    vj = open(os.path.join(src, "vocab.json"), "rb").read()
    mt = open(os.path.join(src, "merges.txt"), "rb").read()
    put("tokenizer_files", "tokenizer-json", tj)
    put("tokenizer_files", "t-tokenizer-json", b"t" + tj)
    put("tokenizer_files", "f-tokenizer-json", b"f" + tj)
    put("tokenizer_files", "v-vocab-merges", b"v" + vj + b"\x00" + mt)
    put("tokenizer_files", "e-encoder-bpe", b"e" + vj + b"\x00" + mt.replace(b"#version: 0.2\n", b""))
    put("tokenizer_files", "j-vocab-path", b"j" + vj + b"\x00" + mt.replace(b"\n", b"\r\n"))
    j = json.loads(tj)
    # merges as pairs, an extra added token, pre_tokenizer variants
    j2 = json.loads(tj)
    j2["model"]["merges"] = [m.split(" ") for m in j["model"]["merges"]]
    n = max(j2["model"]["vocab"].values()) + 1
    j2["added_tokens"].append({"id": n, "content": "<|im_start|>", "special": True})
    j2["model"]["vocab"]["<|im_start|>"] = n
    put("tokenizer_files", "pairs-added", json.dumps(j2, ensure_ascii=False))
    j3 = json.loads(tj)
    j3["pre_tokenizer"]["add_prefix_space"] = True
    put("tokenizer_files", "bad-prefix-space", json.dumps(j3))
    j4 = json.loads(tj)
    del j4["model"]["vocab"]["Ā"]  # byte 0x00: not a byte-level BPE any more
    put("tokenizer_files", "bad-missing-byte", json.dumps(j4, ensure_ascii=False))
    j5 = json.loads(tj)
    j5["model"]["merges"].append("Ġ zz")
    put("tokenizer_files", "bad-merge", json.dumps(j5, ensure_ascii=False))
    # the Llama 3 / Qwen2 shape (#15): Split regex + ByteLevel, NFC, a non-special added token, BOS
    split = lambda digits: {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": (
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}%s| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" % digits)}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j6 = json.loads(json.dumps(j2))
    j6["pre_tokenizer"], j6["model"]["ignore_merges"] = split("{1,3}"), True
    j6["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                                                    {"Sequence": {"id": "A", "type_id": 0}}]}
    put("tokenizer_files", "split-llama3", json.dumps(j6, ensure_ascii=False))
    j7 = json.loads(json.dumps(j2))
    j7["pre_tokenizer"], j7["normalizer"] = split(""), {"type": "NFC"}
    j7["added_tokens"][-1]["special"] = False
    put("tokenizer_files", "split-qwen2-nfc", json.dumps(j7, ensure_ascii=False))
    put("tokenizer_files", "bad-merges-line", b"v" + vj + b"\x00" + "#version: 0.2\nĠ a b\n".encode())
    put("tokenizer_files", "bad-json", tj[: len(tj) // 2])


# ---------------------------------------------------------------- safetensors
def st_file(tensors, meta=None, pad=True, raw_header=None):
    """tensors: list of (name, dtype, shape, bytes)"""
    header = {}
    if meta is not None:
        header["__metadata__"] = meta
    off = 0
    blobs = []
    for name, dt, shape, b in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors():
    f32 = struct.pack("<6f", 1.0, -2.5, 0.0, float("inf"), 3.25e-39, 65504.0)
    f16 = struct.pack("<4H", 0x3C00, 0x8001, 0x7C00, 0x7E01)
    bf16 = struct.pack("<3H", 0x3F80, 0xFF80, 0x0001)
    f64 = struct.pack("<2d", 1e300, -1.5)
    put("safetensors", "f32-meta", st_file([("h.0.attn.c_attn.weight", "F32", [2, 3], f32)], {"format": "pt"}))
    put("safetensors", "mixed", st_file([("a", "F16", [4], f16), ("b", "BF16", [3], bf16), ("c", "F64", [2], f64),
                                         ("d", "I64", [1], struct.pack("<q", -7)), ("e", "U8", [3], b"xyz"),
                                         ("f", "BOOL", [2], b"\x00\x01"), ("g", "I32", [], struct.pack("<i", 5))]))
    put("safetensors", "empty-tensor", st_file([("z", "F32", [0, 4], b""), ("s", "I8", [1], b"\x80")], {}))
    put("safetensors", "no-tensors", st_file([], {"k": "v", "k2": ""}))
    put("safetensors", "bad-overlap", st_file([], raw_header=b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                                                             b'"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}')
        + b"abc")
    put("safetensors", "bad-gap", st_file([], raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}') + b"ab")
    put("safetensors", "bad-dtype", st_file([("a", "F8", [1], b"x")]))
    put("safetensors", "bad-shape", st_file([("a", "F32", [2, 2], f32[:12])]))
    put("safetensors", "bad-len", struct.pack("<Q", 1 << 40) + b"{}")
    put("safetensors", "bad-dup", st_file([], raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                                         b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}') + b"ab")


# ---------------------------------------------------------------- config.json
# a config.json as iqtrain writes it (runs/.../final/config.json)
SEED_CONFIG = json.loads(
    '{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 1024, "n_positions": 256, "n_ctx": 256, "n_embd": 256, "n_layer": 4, "n_head": 4, "n_inner": null, "activation_function": "gelu_new", "resid_pdrop": 0, "embd_pdrop": 0, "attn_pdrop": 0, "layer_norm_epsilon": 9.99999974737875e-06, "initializer_range": 0.02, "scale_attn_weights": true, "scale_attn_by_inverse_layer_idx": false, "reorder_and_upcast_attn": false, "tie_word_embeddings": true, "use_cache": true, "bos_token_id": 1023, "eos_token_id": 1023, "torch_dtype": "float32", "iqtrain": {"lambda": 0, "gamma": 0.990000009536743, "td_grad": "full", "truncation": "bootstrap", "lambda_schedule": "constant", "version": "0.1.0"}}')


def model_config():
    cfg = SEED_CONFIG
    put("model_config", "valid", json.dumps(cfg, indent="\t"))
    c2 = {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "vocab_size", "n_ctx")}
    put("model_config", "minimal", json.dumps(c2))
    for k, v in {"n_inner": 1024, "activation_function": "relu", "scale_attn_weights": False,
                 "tie_word_embeddings": False, "layer_norm_epsilon": 0, "model_type": "llama", "n_head": 3,
                 "n_embd": 1e9, "vocab_size": 2.5}.items():
        c = dict(cfg)
        c[k] = v
        put("model_config", f"bad-{k}", json.dumps(c))
    put("model_config", "bad-array", "[1, 2]")


# ---------------------------------------------------------------- trainer_state.json
CKPT_FILES = ["config.json", "generation_config.json", "model.safetensors", "optimizer.safetensors",
              "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]


def trainer_state():
    # the fuzz target writes "<name>\n" into each file
    files = {n: zlib.crc32((n + "\n").encode()) for n in CKPT_FILES}
    state = {"step": 10, "epoch": 0, "data_position": {"epoch": 0, "step_in_epoch": 10}, "tokens_seen": 4096,
             "elapsed_s": 1.5, "seed": 42, "rng": "xoshiro256** seeded per epoch", "lambda": 0.1, "lr": 0.0003,
             "total_steps": 100, "best_eval_loss": 2.5, "eval_loss": 2.5,
             "build": {"backend": "openblas", "threads": 2}, "files": files}
    put("trainer_state", "valid", json.dumps(state, indent="\t"))
    s2 = dict(state)
    s2["files"] = dict(files)
    s2["files"]["merges.txt"] = 12345
    put("trainer_state", "bad-crc", json.dumps(s2))
    s3 = dict(state)
    del s3["files"]
    put("trainer_state", "bad-no-files", json.dumps(s3))
    s4 = dict(state)
    s4["step"] = 1e300
    s4["build"] = {"threads": -1e20}
    put("trainer_state", "huge-step", json.dumps(s4))
    put("trainer_state", "bad-json", json.dumps(state)[:50])


# ---------------------------------------------------------------- --config
def cli_config():
    put("cli_config", "plain", json.dumps({"lambda": 0.5, "gamma": 0.9, "batch-size": 8, "lambda-schedule": "cosine",
                                           "dry-run": True, "data": ["a.jsonl", "b.jsonl.gz"],
                                           "temperatures": [0.5, 1, "1.5"], "out": "runs/x", "max-steps": None}))
    put("cli_config", "run-json", json.dumps({"options": {"lambda": 0, "seed": 7, "unknown-new-option": 3,
                                                          "json": None}, "data": ["d.jsonl"], "version": "0.1.0",
                                              "build": {"threads": 2}}))
    put("cli_config", "bad-choice", json.dumps({"lambda-schedule": "exp"}))
    put("cli_config", "bad-type", json.dumps({"batch-size": [1, 2]}))
    put("cli_config", "bad-int", json.dumps({"batch-size": 1.5, "seed": 1e300}))
    put("cli_config", "bad-nested", json.dumps({"config": "other.json"}))
    put("cli_config", "bad-unknown", json.dumps({"lamda": 0.1}))
    put("cli_config", "bad-data", json.dumps({"data": [1, 2]}))
    put("cli_config", "string-data", json.dumps({"data": "one.jsonl", "dry-run": "true"}))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    rows()
    data_files()
    tokenizer_encode()
    tokenizer_files()
    safetensors()
    model_config()
    trainer_state()
    cli_config()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"corpus: {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
