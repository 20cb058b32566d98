#!/usr/bin/python3
"""Hugging Face GPT-2 model folders in and out: import, export, and hostile folders.

    /usr/bin/python3 tests/reference/test_hf_models.py --iqtrain PATH --dump PATH [--keep DIR] [--only PATTERNS] [-v]

--iqtrain  the iqtrain binary;  --dump  tests' test_reference_dump (MODEL_DIR BATCH.json OUT_DIR -> logits).
--keep     keep the work folder as DIR (default: a temp folder, removed at the end).
--only     run only the checks whose name matches one of the comma-separated fnmatch patterns.
--list     print the check names;  -v  print every command with its exit code, time, RSS and stderr tail.

Every model is a tiny GPT-2 (2 layers, 2 heads, 32-dim, 64 positions) with GPT-2's real vocabulary (50257:
the folders carry vocab.json + merges.txt copied from tests/fixtures/gpt2), written the way Hugging Face
writes GPT2LMHeadModel: a full HF config.json, names with the `transformer.` prefix, the attention-mask
buffers h.N.attn.bias / h.N.attn.masked_bias, a tied lm_head.weight stored too, the data buffer in name
order (so it is not in header order), F32, F16 or BF16, one file or model-0000K-of-00002.safetensors shards
with model.safetensors.index.json. The safetensors writer here follows the published format
(8-byte little-endian header length, JSON header, data buffer); F16 / BF16 conversions use torch's
round-to-nearest-even.

Checks (one line each; the script ends with `N passed, M failed` and exits 1 on any failure):
  logits_*       test_reference_dump's logits on an imported folder vs gpt2_iqlearn.forward in float64 on the
                 same weights (F16 / BF16 converted to float32 first): max |diff| / max |ref| <= 1e-5
  roundtrip_*    `iqtrain --model HF --max-steps 0 --out R DATA`: R/final/model.safetensors holds exactly the
                 HF GPT-2 names (no prefix, buffers or lm_head), bit-identical F32 data, __metadata__
                 {"format": "pt"}; config.json is a GPT2LMHeadModel config with an "iqtrain" section;
                 --save-dtype bf16 / f16 give torch's round-to-nearest-even bytes (ties, subnormals and
                 overflow included); R/final loads back with the same logits
  cmd_*          score / eval / generate on an imported HF folder: rewards, log-probs, nll, td, accuracy
                 and the greedy completion against PyTorch
  extra_*        an unknown tensor is refused (65) unless --allow-extra-tensors, which warns
  hostile_*      corrupt or hostile folders and files: exit 65 (66 for a missing file), a message naming
                 the file (and the tensor), no sanitizer report, max RSS < 200 MB (measured by /usr/bin/time);
                 this includes a config.json claiming a model of terabytes over small tensors (the files are
                 checked against the config before the model is allocated) and a tensor stored twice
Every iqtrain run also fails its check on any AddressSanitizer / UBSan / LeakSanitizer report on stderr, so
the script serves the sanitizer build too.
"""
import argparse
import fnmatch
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import gpt2_iqlearn as ref  # noqa: E402

GPT2_DIR = os.path.join(ROOT, "tests", "fixtures", "gpt2")
VOCAB = 50257
EOS = 50256
CFG = ref.make_config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=VOCAB)
TOL_LOGITS = 1e-5
RSS_LIMIT_MB = 200
TIMEOUT_S = 180
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "ERROR: MemorySanitizer",
               "ERROR: ThreadSanitizer", "runtime error:", "SUMMARY: AddressSanitizer",
               "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: LeakSanitizer")

ARGS = None
WORK = None


# --------------------------------------------------------------------------------------------------
# dtypes: torch does the conversions (round to nearest even), numpy reads them back

def encode(arr, dtype):
    """float32 array -> raw little-endian bytes of F32 / F16 / BF16 (torch's round-to-nearest-even)."""
    a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32)).reshape(-1)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    t = torch.from_numpy(a.copy())
    tt = t.to(torch.float16 if dtype == "F16" else torch.bfloat16)
    return tt.view(torch.int16).numpy().astype("<i2").tobytes()


def decode(raw, dtype, shape):
    """raw bytes of F32 / F16 / BF16 -> float32 array (exact)."""
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        raise ValueError(dtype)
    return a.reshape(shape).astype(np.float32)


def roundtrip(arr, dtype):
    return decode(encode(arr, dtype), dtype, np.shape(arr))


# --------------------------------------------------------------------------------------------------
# safetensors, written and read byte by byte (the published format)

def st_build(entries, metadata=None, data_order=None, header_edit=None, header_len=None):
    """entries: [(name, dtype, shape, raw bytes)] in header order. The data buffer holds them in data_order
    (names; default: header order). header_edit(header dict) may change the header before it is written;
    header_len overrides the 8-byte length. Returns the file's bytes."""
    by_name = {e[0]: e for e in entries}
    order = data_order if data_order is not None else [e[0] for e in entries]
    offs, pos, blobs = {}, 0, []
    for n in order:
        raw = by_name[n][3]
        offs[n] = [pos, pos + len(raw)]
        pos += len(raw)
        blobs.append(raw)
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    for n, dt, shape, _ in entries:
        header[n] = {"dtype": dt, "shape": list(shape), "data_offsets": offs[n]}
    if header_edit:
        header_edit(header)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)
    data = b"".join(blobs)
    if header_len == "past_end":            # one byte more than the file holds after the length field
        header_len = len(hb) + len(data) + 1
    n = len(hb) if header_len is None else header_len
    return struct.pack("<Q", n) + hb + data


def st_read_raw(path):
    """-> (header dict without __metadata__, metadata or None, {name: raw bytes})."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    data = raw[8 + n:]
    return header, meta, {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}


# --------------------------------------------------------------------------------------------------
# Hugging Face GPT-2 folders

def hf_config(**over):
    """GPT2LMHeadModel's config.json as transformers writes it (tiny dims). A value None removes the key,
    except for n_inner whose HF default is null."""
    c = {
        "_name_or_path": "gpt2-tiny", "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": EOS, "embd_pdrop": 0.1, "eos_token_id": EOS,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": CFG["n_positions"],
        "n_embd": CFG["n_embd"], "n_head": CFG["n_head"], "n_inner": None, "n_layer": CFG["n_layer"],
        "n_positions": CFG["n_positions"], "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True, "summary_activation": None,
        "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
        "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "torch_dtype": "float32", "transformers_version": "4.40.2", "use_cache": True, "vocab_size": VOCAB,
    }
    for k, v in over.items():
        if v is None and k != "n_inner":
            c.pop(k, None)
        else:
            c[k] = v
    return c


def make_params(seed, weight_std=0.1):
    return ref.init_params(CFG, seed, weight_std=weight_std)


def hf_entries(params, dtype="F32", prefix=True, buffers=True, lm_head=True, dtypes=None):
    """[(name, dtype, shape, bytes)] in GPT2LMHeadModel.state_dict() order, and {bare name: float32 weights
    as stored}. dtypes: per-bare-name dtype overrides (mixed files)."""
    pre = "transformer." if prefix else ""
    P = CFG["n_positions"]
    entries, eff = [], {}
    buf_dt = {"F32": "F32", "F16": "BOOL", "BF16": "U8"}[dtype]     # old checkpoints: float, bool or uint8 masks

    def add(bare):
        dt = (dtypes or {}).get(bare, dtype)
        a = params[bare]
        entries.append((pre + bare, dt, a.shape, encode(a, dt)))
        eff[bare] = roundtrip(a, dt)

    add("wte.weight")
    add("wpe.weight")
    for i in range(CFG["n_layer"]):
        h = "h.%d." % i
        add(h + "ln_1.weight")
        add(h + "ln_1.bias")
        if buffers:
            mask = np.tril(np.ones((P, P))).reshape(1, 1, P, P)
            raw = encode(mask, "F32") if buf_dt == "F32" else mask.astype(np.uint8).tobytes()
            entries.append((pre + h + "attn.bias", buf_dt, (1, 1, P, P), raw))
            entries.append((pre + h + "attn.masked_bias", "F32", (), encode(np.float32(-1e4), "F32")))
        for n in ("attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                  "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                  "mlp.c_proj.bias"):
            add(h + n)
    add("ln_f.weight")
    add("ln_f.bias")
    if lm_head:
        dt = (dtypes or {}).get("wte.weight", dtype)
        entries.append(("lm_head.weight", dt, params["wte.weight"].shape, encode(params["wte.weight"], dt)))
    return entries, eff


def write_tokenizer(d):
    shutil.copyfile(os.path.join(GPT2_DIR, "encoder.json"), os.path.join(d, "vocab.json"))
    shutil.copyfile(os.path.join(GPT2_DIR, "vocab.bpe"), os.path.join(d, "merges.txt"))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_hf_folder(d, params, dtype="F32", prefix=True, buffers=True, lm_head=True, shards=1, config=None,
                    dtypes=None, edit_entries=None, st_kwargs=None, tokenizer=True):
    """Writes an HF GPT-2 folder; returns {bare name: float32 weights as stored}. The data buffer is in
    name order (as the safetensors package writes it), not in header order."""
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "config.json"), config if config is not None else
               hf_config(torch_dtype={"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]))
    write_json(os.path.join(d, "generation_config.json"),
               {"bos_token_id": EOS, "eos_token_id": EOS, "transformers_version": "4.40.2"})
    if tokenizer:
        write_tokenizer(d)
    entries, eff = hf_entries(params, dtype, prefix, buffers, lm_head, dtypes)
    if edit_entries:
        entries = edit_entries(entries)
    kw = dict(st_kwargs or {})
    if shards == 1:
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(st_build(entries, {"format": "pt"}, data_order=sorted(e[0] for e in entries), **kw))
    else:
        # shard 1: embeddings and the first block; shard 2: the rest (HF splits by size, in state_dict order)
        cut = next(i for i, e in enumerate(entries) if ".h.1." in "." + e[0] or e[0].startswith("h.1."))
        parts = [entries[:cut], entries[cut:]]
        names = ["model-%05d-of-%05d.safetensors" % (k + 1, 2) for k in range(2)]
        wmap = {}
        for part, fn in zip(parts, names):
            with open(os.path.join(d, fn), "wb") as f:
                f.write(st_build(part, {"format": "pt"}, data_order=sorted(e[0] for e in part), **kw))
            for e in part:
                wmap[e[0]] = fn
        total = sum(len(e[3]) for e in entries)
        write_json(os.path.join(d, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))})
    return eff


# --------------------------------------------------------------------------------------------------
# running the programs

class Run:
    def __init__(self, rc, out, err, rss_mb, secs):
        self.rc, self.out, self.err, self.rss_mb, self.secs = rc, out, err, rss_mb, secs

    def san(self):
        for line in self.err.splitlines():
            if any(m in line for m in SAN_MARKERS):
                return line.strip()
        return None


def run(args, stdin_bytes=None):
    """Runs a command under /usr/bin/time: exit code, stdout, stderr and the command's own max RSS (a
    process forked from this Python would report the Python's RSS as its maximum)."""
    d = tempfile.mkdtemp(dir=WORK, prefix="run-")
    po, pe, pi, pm = (os.path.join(d, x) for x in ("out", "err", "in", "rss"))
    with open(pi, "wb") as f:
        f.write(stdin_bytes or b"")
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "passive")
    t0 = time.time()
    with open(po, "wb") as fo, open(pe, "wb") as fe, open(pi, "rb") as fi:
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", pm] + [str(a) for a in args],
                             stdin=fi, stdout=fo, stderr=fe, env=env, start_new_session=True)
        try:
            rc = p.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)     # time and the program under it
            rc = p.wait()
            fe.write(b"\n[test] killed after %d s\n" % TIMEOUT_S)
    secs = time.time() - t0
    with open(po, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    with open(pe, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    rss_kb, signal_line = 0.0, ""
    with open(pm) as f:
        for line in f:
            line = line.strip()
            if line.isdigit():
                rss_kb = float(line)
            elif "signal" in line:
                signal_line = line
    if signal_line:
        err += "\n[test] " + signal_line + "\n"
    shutil.rmtree(d, ignore_errors=True)
    if ARGS.verbose:
        print("    $ %s -> %d (%.2fs, %.0f MB)" % (" ".join(str(a) for a in args), rc, secs, rss_kb / 1024))
        for line in err.strip().splitlines()[-4:]:
            print("      | " + line)
    return Run(rc, out, err, rss_kb / 1024.0, secs)


def iqtrain(*args, stdin_bytes=None):
    return run([ARGS.iqtrain] + list(args), stdin_bytes)


class Check:
    """Collects the reasons a check fails."""

    def __init__(self):
        self.why = []
        self.notes = []

    def that(self, cond, msg):
        if not cond:
            self.why.append(msg)
        return cond

    def ran(self, r, rc=0, what="run"):
        """Exit code and no sanitizer report."""
        s = r.san()
        if s:
            self.why.append("%s: sanitizer report: %s" % (what, s))
        if r.rc != rc:
            tail = " | ".join(r.err.strip().splitlines()[-3:])
            self.why.append("%s: exit %d, expected %d (stderr: %s)" % (what, r.rc, rc, tail[:400]))
            return False
        return True


RESULTS = {"pass": 0, "fail": 0}
STATS = {"logit_err": {}, "times": {}}
CHECKS = []


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn
    return deco


def selected(name):
    if not ARGS.only:
        return True
    return any(fnmatch.fnmatch(name, p) for p in ARGS.only.split(","))


def run_check(name, fn):
    c = Check()
    t0 = time.time()
    try:
        fn(c)
    except Exception as e:  # a crash of the harness is a failure of that check, not of the script
        import traceback
        c.why.append("exception: %r" % (e,))
        if ARGS.verbose:
            traceback.print_exc()
    dt = time.time() - t0
    STATS["times"][name] = dt
    note = (" (" + "; ".join(c.notes) + ")") if c.notes else ""
    if c.why:
        RESULTS["fail"] += 1
        print("FAIL %s%s [%.1fs]" % (name, note, dt))
        for w in c.why:
            print("     - " + w)
    else:
        RESULTS["pass"] += 1
        print("ok   %s%s [%.1fs]" % (name, note, dt))
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------------
# shared fixtures: data, the reference forward, tokenization through iqtrain

ROWS_TEXT = [
    {"prompt": "Question: what is 12 + 30?\nAnswer:", "completion": " 42 #### 42"},
    {"prompt": "The capital of France is", "completion": " Paris, of course."},
    {"text": "Hello world, this is a tiny GPT-2 model reading some text."},
]


def data_file():
    p = os.path.join(WORK, "data.jsonl")
    if not os.path.exists(p):
        with open(p, "w") as f:
            for r in ROWS_TEXT:
                f.write(json.dumps(r) + "\n")
    return p


def ref_logits(eff, ids):
    """float64 reference logits [B, T, V] for a list of equal-length id lists."""
    p = ref.to_torch(eff, dtype=torch.float64, requires_grad=False)
    with torch.no_grad():
        return ref.forward(p, torch.tensor(ids, dtype=torch.long), CFG).numpy()


def logit_batch():
    """3 rows: the full context (64), 17 and 5 tokens; ids over the whole vocabulary, EOS included."""
    rng = np.random.default_rng(1234)
    rows = []
    for L in (64, 17, 5):
        ids = [int(x) for x in rng.integers(0, VOCAB, L)]
        ids[min(3, L - 1)] = EOS
        ids[0] = VOCAB - 2
        flags = [0] + [1] * (L - 1)
        flags[-1] = 3
        rows.append({"ids": ids, "flags": flags})
    return {"rows": rows, "lambda": 0.1, "gamma": 0.99, "td_grad": "full", "truncation": "bootstrap", "steps": 1}


def dump_logits(c, model_dir, tag):
    """Runs test_reference_dump on model_dir; -> logits [B, T, V] (or None)."""
    bj = os.path.join(WORK, "batch.json")
    if not os.path.exists(bj):
        write_json(bj, logit_batch())
    out = os.path.join(WORK, "dump-" + tag)
    r = run([ARGS.dump, model_dir, bj, out])
    if not c.ran(r, 0, "test_reference_dump"):
        return None
    t, _ = ref.load_safetensors(os.path.join(out, "logits.safetensors"))
    shutil.rmtree(out, ignore_errors=True)
    return t["logits"]


def compare_logits(c, got, eff, tag):
    batch = logit_batch()
    err = 0.0
    for b, row in enumerate(batch["rows"]):
        L = len(row["ids"])
        want = ref_logits(eff, [row["ids"]])[0]
        g = got[b, :L].astype(np.float64)
        if not np.all(np.isfinite(g)):
            c.that(False, "%s: row %d: non-finite logits" % (tag, b))
            return None
        err = max(err, float(np.max(np.abs(g - want)) / np.max(np.abs(want))))
    c.notes.append("max|diff|/max|ref| %.2e" % err)
    c.that(err <= TOL_LOGITS, "%s: logits error %.3e > %g" % (tag, err, TOL_LOGITS))
    return err


def show_mask_rows(c, tok_dir, data):
    """`iqtrain tokenize --data --show-mask` -> [(ids, flags)] exactly as training sees the rows
    (flags: bit 0 supervised, bit 1 terminal)."""
    r = iqtrain("tokenize", "--tokenizer", tok_dir, "--data", data, "--show-mask")
    if not c.ran(r, 0, "tokenize"):
        return []
    rows = []
    lines = r.out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and " tokens" in line and i + 2 < len(lines):
            ids, flags = [], []
            for tok in lines[i + 2].split():
                f = 0
                if tok.endswith("$"):
                    f |= 2
                    tok = tok[:-1]
                if tok.endswith("~"):
                    tok = tok[:-1]
                if tok.startswith("["):
                    f |= 1
                    tok = tok[1:-1]
                ids.append(int(tok))
                flags.append(f)
            rows.append((ids, flags))
    return rows


def lse(z):
    m = z.max()
    return m + math.log(np.exp(z - m).sum())


def row_reference(eff, ids, flags, gamma):
    """Per supervised token: log pi(a_t|s_t), r_t = z_t[a_t] - gamma (1 - d_t) V(s_{t+1}) (float64), argmax."""
    z = ref_logits(eff, [ids])[0]
    out = []
    for i in range(1, len(ids)):
        if not flags[i] & 1:
            continue
        a = ids[i]
        d = 1 if flags[i] & 2 else 0
        zt = z[i - 1]
        logp = zt[a] - lse(zt)
        r = zt[a] - gamma * (1 - d) * lse(z[i])
        out.append({"logp": logp, "r": r, "correct": int(np.argmax(zt)) == a})
    return out


def bytes_decoder():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(cc): b for b, cc in zip(bs, cs)}


def decode_ids(ids):
    with open(os.path.join(GPT2_DIR, "encoder.json")) as f:
        enc = json.load(f)
    inv = {v: k for k, v in enc.items()}
    bd = bytes_decoder()
    return b"".join(bytes(bd[ch] for ch in inv[i]) for i in ids)


# --------------------------------------------------------------------------------------------------
# folders shared by several checks (built on first use)

_FOLDERS = {}


def folder(kind):
    """Named HF folders: (path, {bare name: float32 weights as stored})."""
    if kind in _FOLDERS:
        return _FOLDERS[kind]
    d = os.path.join(WORK, "hf-" + kind)
    seed = {"f32": 11, "f16": 12, "bf16": 13, "sharded": 14, "mixed": 15, "plain": 16, "sharded_bf16": 17}[kind]
    params = make_params(seed)
    if kind == "f32":
        eff = write_hf_folder(d, params, "F32")
    elif kind == "f16":
        eff = write_hf_folder(d, params, "F16")
    elif kind == "bf16":
        eff = write_hf_folder(d, params, "BF16")
    elif kind == "sharded":
        eff = write_hf_folder(d, params, "F32", shards=2)
    elif kind == "sharded_bf16":
        eff = write_hf_folder(d, params, "BF16", shards=2)
    elif kind == "mixed":
        dts = {n: ("F16", "BF16", "F32")[i % 3] for i, n in enumerate(ref.param_names(CFG))}
        eff = write_hf_folder(d, params, "F32", dtypes=dts)
    elif kind == "plain":       # iqtrain's own layout: no prefix, no buffers, no lm_head
        eff = write_hf_folder(d, params, "F32", prefix=False, buffers=False, lm_head=False)
    _FOLDERS[kind] = (d, eff)
    return _FOLDERS[kind]


# --------------------------------------------------------------------------------------------------
# logits against PyTorch

def logits_check(kind, label):
    def fn(c):
        d, eff = folder(kind)
        got = dump_logits(c, d, kind)
        if got is not None:
            err = compare_logits(c, got, eff, kind)
            if err is not None:
                STATS["logit_err"][label] = max(err, STATS["logit_err"].get(label, 0.0))
    return fn


for _kind, _label in (("f32", "F32"), ("f16", "F16"), ("bf16", "BF16"), ("sharded", "F32"),
                      ("sharded_bf16", "BF16"), ("mixed", "mixed"), ("plain", "F32")):
    check("logits_hf_" + _kind)(logits_check(_kind, _label))


@check("logits_f16_bf16_differ_from_f32")
def _(c):
    """The F16 / BF16 folders really hold converted weights (the test would not notice a loader that
    ignored the dtype otherwise): the effective weights differ from float32, and bf16 differs from f16."""
    p = make_params(12)
    _, eff = folder("f16")
    c.that(np.any(eff["wte.weight"] != p["wte.weight"]), "F16 weights equal the float32 ones")
    p = make_params(13)
    _, eff = folder("bf16")
    c.that(np.any(eff["wte.weight"] != p["wte.weight"]), "BF16 weights equal the float32 ones")
    c.that(np.any(roundtrip(p["wte.weight"], "F16") != roundtrip(p["wte.weight"], "BF16")), "F16 == BF16")


# --------------------------------------------------------------------------------------------------
# round trip: import -> final/

SPECIAL_F32_BITS = [
    0x3F808000, 0x3F818000, 0xBF808000, 0xBF818000,     # bf16 ties: to even (down), to even (up), negatives
    0x3F801000, 0x3F803000, 0xBF801000, 0xBF803000,     # f16 ties
    0x3F807FFF, 0x3F808001, 0x3F800FFF, 0x3F801001,     # just below / above the ties
    0x477FEFFF, 0x477FF000, 0x47800000, 0x4B189680,     # 65519.99.. -> 65504, 65520 -> inf (f16), 65536, 1e7
    0x33000000, 0x33400000, 0x33800000, 0x35800000,     # 2^-25 (-> 0 in f16), 1.5*2^-25, 2^-24, f16 subnormal
    0x38800000, 0x387FE000, 0x34200000, 0x34600000,     # smallest f16 normal, just below (rounds up to it),
                                                        # f16 subnormal ties 2.5 and 3.5 units (-> 2, -> 4)
    0x00000001, 0x007FFFFF, 0x80000001, 0x00400000,     # f32 subnormals (-> 0 in f16, kept in bf16)
    0x80000000, 0x00000000, 0x7F7FFFFF, 0xFF7FFFFF,     # -0, +0, f32 max (-> inf in both), -max
    0x3EAAAAAB, 0xC0490FDB, 0x3DCCCCCD, 0x42F6E979,     # 1/3, -pi, 0.1, 123.456
]


def roundtrip_params():
    """Random weights with the special values (repeated) in wpe's last two rows, which the training data
    never reaches."""
    p = make_params(21)
    sp = np.array(SPECIAL_F32_BITS, dtype=np.uint32).view(np.float32)
    assert sp.size <= 2 * CFG["n_embd"]
    p["wpe.weight"][-2:, :] = np.resize(sp, (2, CFG["n_embd"]))
    return p


_RT = {}


def roundtrip_run(c, save_dtype):
    """iqtrain --model HF --max-steps 0 --out R DATA [--save-dtype T] -> R/final (cached per dtype)."""
    if save_dtype in _RT:
        return _RT[save_dtype]
    src = os.path.join(WORK, "rt-src")
    if not os.path.isdir(src):
        write_hf_folder(src, roundtrip_params(), "F32")
    out = os.path.join(WORK, "rt-out-" + save_dtype)
    dt = [] if save_dtype == "f32" else ["--save-dtype", save_dtype]     # f32 is the default
    r = iqtrain(*(["--model", src, "--max-steps", "0", "--out", out, "--threads", "2"] + dt + [data_file()]))
    ok = c.ran(r, 0, "iqtrain --max-steps 0 --save-dtype " + save_dtype)
    _RT[save_dtype] = (os.path.join(out, "final") if ok else None, r)
    return _RT[save_dtype]


def expected_names():
    return set(ref.param_names(CFG))


@check("roundtrip_f32_bit_exact")
def _(c):
    final, _ = roundtrip_run(c, "f32")
    if not final:
        return
    p = roundtrip_params()
    header, meta, raw = st_read_raw(os.path.join(final, "model.safetensors"))
    c.that(meta == {"format": "pt"}, "__metadata__ is %r, expected {'format': 'pt'}" % (meta,))
    names = set(header)
    c.that(names == expected_names(), "names: extra %s, missing %s" % (sorted(names - expected_names())[:5],
                                                                       sorted(expected_names() - names)[:5]))
    c.that(not any(n.startswith("transformer.") for n in names), "a name keeps the transformer. prefix")
    c.that("lm_head.weight" not in names, "lm_head.weight is stored")
    c.that(not any(n.endswith((".attn.bias", ".attn.masked_bias")) for n in names), "an attention buffer is stored")
    bad = []
    for n in sorted(names & expected_names()):
        h = header[n]
        if h["dtype"] != "F32" or tuple(h["shape"]) != p[n].shape or raw[n] != encode(p[n], "F32"):
            bad.append(n)
    c.that(not bad, "tensors not bit-identical to the source: %s" % bad[:5])
    c.notes.append("%d tensors bit-identical" % (len(names & expected_names()) - len(bad)))


@check("roundtrip_config")
def _(c):
    final, _ = roundtrip_run(c, "f32")
    if not final:
        return
    with open(os.path.join(final, "config.json")) as f:
        cfg = json.load(f)
    c.that(cfg.get("model_type") == "gpt2", "model_type %r" % cfg.get("model_type"))
    c.that(cfg.get("architectures") == ["GPT2LMHeadModel"], "architectures %r" % cfg.get("architectures"))
    c.that(cfg.get("activation_function") == "gelu_new", "activation_function %r" % cfg.get("activation_function"))
    c.that(isinstance(cfg.get("iqtrain"), dict), "no \"iqtrain\" section")
    for k in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size"):
        want = CFG[k]
        c.that(cfg.get(k) == want, "%s is %r, expected %r" % (k, cfg.get(k), want))
    c.that(cfg.get("n_inner") is None, "n_inner %r" % cfg.get("n_inner"))
    c.that(cfg.get("tie_word_embeddings", True) is True, "tie_word_embeddings %r" % cfg.get("tie_word_embeddings"))
    c.that(cfg.get("scale_attn_weights", True) is True and not cfg.get("scale_attn_by_inverse_layer_idx", False)
           and not cfg.get("reorder_and_upcast_attn", False), "attention flags changed")
    c.that(abs(cfg.get("layer_norm_epsilon", 1e-5) - 1e-5) < 1e-12, "layer_norm_epsilon %r" % cfg.get("layer_norm_epsilon"))
    for fn in ("vocab.json", "merges.txt", "generation_config.json"):
        c.that(os.path.exists(os.path.join(final, fn)), "final/ lacks " + fn)


@check("roundtrip_reimport_same_logits")
def _(c):
    """final/ is itself an importable folder and gives bit-identical logits to the HF source."""
    final, _ = roundtrip_run(c, "f32")
    if not final:
        return
    a = dump_logits(c, os.path.join(WORK, "rt-src"), "rt-src")
    b = dump_logits(c, final, "rt-final")
    if a is not None and b is not None:
        c.that(a.tobytes() == b.tobytes(), "logits differ: max |diff| %.3e" % float(np.nanmax(np.abs(a - b))))


def save_dtype_check(save_dtype, st_dtype, torch_dtype):
    def fn(c):
        final, _ = roundtrip_run(c, save_dtype)
        if not final:
            return
        p = roundtrip_params()
        header, meta, raw = st_read_raw(os.path.join(final, "model.safetensors"))
        c.that(meta == {"format": "pt"}, "__metadata__ %r" % (meta,))
        c.that(set(header) == expected_names(), "names differ from the HF GPT-2 names")
        bad, nvals = [], 0
        for n in sorted(set(header) & expected_names()):
            want = encode(p[n], st_dtype)
            nvals += p[n].size
            if header[n]["dtype"] != st_dtype or tuple(header[n]["shape"]) != p[n].shape or raw[n] != want:
                bad.append(n)
        c.that(not bad, "tensors differ from torch's round-to-nearest-even %s: %s" % (st_dtype, bad[:5]))
        # the special values, one by one, so a failure says which
        got = np.frombuffer(raw.get("wpe.weight", b""), dtype="<u2")[-2 * CFG["n_embd"]:]
        want = np.frombuffer(encode(p["wpe.weight"], st_dtype), dtype="<u2")[-2 * CFG["n_embd"]:]
        for k, bits in enumerate(SPECIAL_F32_BITS):
            if k < got.size and got[k] != want[k]:
                c.that(False, "f32 0x%08X -> 0x%04X, expected 0x%04X" % (bits, got[k], want[k]))
        # and numpy agrees with torch on f16 (two references)
        if st_dtype == "F16":
            for n in sorted(expected_names()):
                with np.errstate(over="ignore"):
                    np_f16 = p[n].astype("<f2").tobytes()
                if encode(p[n], "F16") != np_f16:
                    c.that(False, "torch and numpy disagree on f16 of %s" % n)
        with open(os.path.join(final, "config.json")) as f:
            cfg = json.load(f)
        c.that(cfg.get("torch_dtype") == torch_dtype, "torch_dtype %r, expected %r" % (cfg.get("torch_dtype"), torch_dtype))
        c.notes.append("%d values" % nvals)
        # and it loads back: logits equal the reference on the converted weights
        eff = {n: roundtrip(p[n], st_dtype) for n in expected_names()}
        if np.all([np.all(np.isfinite(eff[n])) for n in eff if n != "wpe.weight"]):
            got_l = dump_logits(c, final, "rt-" + save_dtype)
            if got_l is not None:
                # wpe's last rows hold inf after conversion; the batch's 64-token row reads them, so compare
                # the shorter rows only
                batch = logit_batch()
                err = 0.0
                for b, row in enumerate(batch["rows"]):
                    L = len(row["ids"])
                    if L > CFG["n_positions"] - 2:
                        continue
                    want_l = ref_logits(eff, [row["ids"]])[0]
                    err = max(err, float(np.max(np.abs(got_l[b, :L] - want_l)) / np.max(np.abs(want_l))))
                c.that(err <= TOL_LOGITS, "reloaded %s final/: logits error %.3e" % (st_dtype, err))
    return fn


check("roundtrip_save_dtype_bf16")(save_dtype_check("bf16", "BF16", "bfloat16"))
check("roundtrip_save_dtype_f16")(save_dtype_check("f16", "F16", "float16"))


# --------------------------------------------------------------------------------------------------
# generate / eval / score on an imported folder

GAMMA = 0.9
LAMBDA = 0.5


@check("cmd_score_f16_folder")
def _(c):
    d, eff = folder("f16")
    rows = show_mask_rows(c, d, data_file())
    if not c.that(len(rows) == len(ROWS_TEXT), "tokenize --show-mask gave %d rows" % len(rows)):
        return
    r = iqtrain("score", "--model", d, "--data", data_file(), "--gamma", str(GAMMA), "--threads", "2")
    if not c.ran(r, 0, "score"):
        return
    got = [json.loads(x) for x in r.out.splitlines() if x.strip()]
    if not c.that(len(got) == len(rows), "score printed %d rows for %d" % (len(got), len(rows))):
        return
    worst = 0.0
    for k, ((ids, flags), g) in enumerate(zip(rows, got)):
        want = row_reference(eff, ids, flags, GAMMA)
        lp = sum(w["logp"] for w in want)
        rw = [w["r"] for w in want]
        e1 = abs(g["logprob"] - lp) / max(1.0, abs(lp))
        e2 = abs(g["reward"] - sum(rw)) / max(1.0, abs(sum(rw)))
        worst = max(worst, e1, e2)
        c.that(e1 <= 1e-5, "row %d: logprob %.9g, reference %.9g" % (k, g["logprob"], lp))
        c.that(e2 <= 1e-5, "row %d: reward %.9g, reference %.9g" % (k, g["reward"], sum(rw)))
        gr = g.get("rewards", [])
        if c.that(len(gr) == len(rw), "row %d: %d rewards, reference %d" % (k, len(gr), len(rw))):
            e3 = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(gr, rw))
            worst = max(worst, e3)
            c.that(e3 <= 1e-5, "row %d: per-token rewards differ by %.3e" % (k, e3))
    c.notes.append("worst rel. error %.1e" % worst)


@check("cmd_eval_bf16_sharded_folder")
def _(c):
    d, eff = folder("sharded_bf16")
    rows = show_mask_rows(c, d, data_file())
    if not rows:
        return
    r = iqtrain("eval", "--model", d, "--data", data_file(), "--lambda", str(LAMBDA), "--gamma", str(GAMMA),
                "--json", "--threads", "2")
    if not c.ran(r, 0, "eval"):
        return
    res = json.loads(r.out)
    allv = [w for ids, flags in rows for w in row_reference(eff, ids, flags, GAMMA)]
    n = len(allv)
    nll = -sum(w["logp"] for w in allv) / n
    td = sum(w["r"] ** 2 for w in allv) / n
    acc = sum(w["correct"] for w in allv) / n
    c.that(res.get("tokens") == n, "tokens %r, reference %d" % (res.get("tokens"), n))
    for key, want in (("nll", nll), ("td", td), ("loss", nll + LAMBDA * td), ("ppl", math.exp(nll))):
        g = res.get(key)
        c.that(isinstance(g, (int, float)) and abs(g - want) <= 1e-5 * max(1.0, abs(want)),
               "%s %r, reference %.9g" % (key, g, want))
    c.that(abs(res.get("token_accuracy", -1) - acc) < 1e-9, "token_accuracy %r, reference %r" % (res.get("token_accuracy"), acc))
    c.notes.append("nll %.4f td %.2f over %d tokens" % (nll, td, n))


@check("cmd_generate_greedy_bf16_folder")
def _(c):
    d, eff = folder("bf16")
    prompt = "The capital of France is"
    pf = os.path.join(WORK, "prompt.jsonl")
    with open(pf, "w") as f:
        f.write(json.dumps({"prompt": prompt, "completion": "x"}) + "\n")
    rows = show_mask_rows(c, d, pf)
    if not rows:
        return
    ids, flags = rows[0]
    pids = ids[:next(i for i, f in enumerate(flags) if f & 1)]
    n_new = 12
    seq, margins = list(pids), []
    for _ in range(n_new):
        z = ref_logits(eff, [seq])[0][-1]
        top = np.argsort(z)[-2:]
        margins.append(z[top[1]] - z[top[0]])
        seq.append(int(top[1]))
        if seq[-1] == EOS:
            break
    new = seq[len(pids):]
    out = os.path.join(WORK, "gen-out")
    r = iqtrain("generate", "--model", d, "--prompt", prompt, "--temperature", "0", "--max-new-tokens", str(n_new),
                "--out", out, "--threads", "2")
    if not c.ran(r, 0, "generate"):
        return
    with open(os.path.join(out, "samples.jsonl")) as f:
        s = [json.loads(x) for x in f if x.strip()]
    if not c.that(len(s) == 1, "%d samples" % len(s)):
        return
    want_text = decode_ids([i for i in new if i != EOS]).decode("utf-8", "replace")
    if min(margins) > 1e-3:
        c.that(s[0]["completion"] == want_text, "greedy completion %r, PyTorch %r" % (s[0]["completion"], want_text))
        lp = 0.0
        full = ref_logits(eff, [seq])[0]
        for i in range(len(pids), len(seq)):
            lp += full[i - 1][seq[i]] - lse(full[i - 1])
        c.that(abs(s[0]["logprob"] - lp) <= 1e-5 * max(1.0, abs(lp)), "logprob %r, PyTorch %.9g" % (s[0]["logprob"], lp))
    else:
        c.notes.append("top-2 margin %.1e too small to compare the text" % min(margins))
    # the plain-text form on stdout too
    r2 = iqtrain("generate", "--model", d, "--prompt", prompt, "--temperature", "0", "--max-new-tokens", str(n_new),
                 "--threads", "2")
    if c.ran(r2, 0, "generate (stdout)"):
        c.that(want_text in r2.out or min(margins) <= 1e-3, "stdout %r lacks the completion" % r2.out[:200])
    c.notes.append("%d new tokens" % len(new))


@check("cmd_generate_sampling_and_beam_hf_folder")
def _(c):
    d, _ = folder("f32")
    out = os.path.join(WORK, "gen-samp")
    r = iqtrain("generate", "--model", d, "--data", data_file(), "--num-samples", "2", "--temperature", "0.8",
                "--max-new-tokens", "6", "--out", out, "--threads", "2")
    if c.ran(r, 0, "generate sampling"):
        with open(os.path.join(out, "samples.jsonl")) as f:
            s = [json.loads(x) for x in f if x.strip()]
        c.that(len(s) == 2 * len(ROWS_TEXT), "%d samples, expected %d" % (len(s), 2 * len(ROWS_TEXT)))
        c.that(all(math.isfinite(x["logprob"]) and math.isfinite(x["reward"]) for x in s), "non-finite logprob/reward")
    r = iqtrain("generate", "--model", d, "--prompt", "Once upon a time", "--beam", "3", "--max-new-tokens", "6",
                "--threads", "2")
    c.ran(r, 0, "generate --beam 3")


# --------------------------------------------------------------------------------------------------
# --allow-extra-tensors

def extra_folder():
    d = os.path.join(WORK, "hf-extra")
    if not os.path.isdir(d):
        def add(entries):
            return entries + [("transformer.h.0.attn.rotary_emb.inv_freq", "F32", (4,), encode(np.arange(4), "F32")),
                              ("score.weight", "F16", (2, CFG["n_embd"]), encode(np.zeros((2, CFG["n_embd"])), "F16"))]
        write_hf_folder(d, make_params(31), "F32", edit_entries=add)
    return d


@check("extra_tensor_refused")
def _(c):
    d = extra_folder()
    r = iqtrain("eval", "--model", d, "--data", data_file(), "--json")
    c.ran(r, 65, "eval")
    c.that("model.safetensors" in r.err, "message does not name model.safetensors")
    c.that("rotary_emb.inv_freq" in r.err or "score.weight" in r.err, "message does not name the tensor")
    c.that("--allow-extra-tensors" in r.err, "message does not mention --allow-extra-tensors")


@check("extra_tensor_allowed_with_flag")
def _(c):
    d = extra_folder()
    for cmd in (["eval", "--model", d, "--data", data_file(), "--json"],
                ["score", "--model", d, "--data", data_file()],
                ["generate", "--model", d, "--prompt", "Hi", "--temperature", "0", "--max-new-tokens", "2"],
                ["--model", d, "--max-steps", "0", "--out", os.path.join(WORK, "extra-train"), data_file()]):
        r = iqtrain(*(cmd + ["--allow-extra-tensors"]))
        if c.ran(r, 0, cmd[0]):
            c.that("rotary_emb.inv_freq" in r.err and "score.weight" in r.err,
                   "%s: no warning naming both ignored tensors" % cmd[0])
    final = os.path.join(WORK, "extra-train", "final", "model.safetensors")
    if os.path.exists(final):
        header, _, _ = st_read_raw(final)
        c.that(set(header) == expected_names(), "the ignored tensors were exported")


# --------------------------------------------------------------------------------------------------
# hostile and corrupt folders

def hostile_folder(name, params_seed=41, **kw):
    d = os.path.join(WORK, "bad-" + name)
    shutil.rmtree(d, ignore_errors=True)
    write_hf_folder(d, make_params(params_seed), **kw)
    return d


def expect_refusal(c, d, rc=65, needles=(), cmd="eval"):
    """Loads d with iqtrain (eval by default) and checks the exit code, that stderr names every needle,
    the sanitizers and the RSS."""
    if cmd == "eval":
        r = iqtrain("eval", "--model", d, "--data", data_file(), "--json")
    elif cmd == "train":
        r = iqtrain("--model", d, "--max-steps", "0", "--out", os.path.join(d, "train-out"), data_file())
    elif cmd == "generate":
        r = iqtrain("generate", "--model", d, "--prompt", "Hi", "--max-new-tokens", "2")
    elif cmd == "score":
        r = iqtrain("score", "--model", d, "--data", data_file())
    else:
        raise ValueError(cmd)
    c.ran(r, rc, cmd)
    for n in needles:
        c.that(n in r.err, "%s: stderr does not name %r: %s" % (cmd, n, r.err.strip()[-300:]))
    c.that(r.rss_mb < RSS_LIMIT_MB, "%s: max RSS %.0f MB" % (cmd, r.rss_mb))
    c.that(r.out.strip() == "", "%s: printed a result: %s" % (cmd, r.out[:100]))
    if not c.notes:     # the first refusal's message, shortened
        last = r.err.strip().splitlines()[-1] if r.err.strip() else ""
        last = last.replace(WORK + "/", "")
        c.notes.append("%d, %.0f MB: %s" % (r.rc, r.rss_mb, last if ARGS.verbose else last[:150]))
    return r


def drop(name):
    return lambda entries: [e for e in entries if e[0] != name]


def hostile(name, rc=65, needles=(), cmds=("eval",), **kw):
    def fn(c):
        d = hostile_folder(name, **kw)
        for cmd in cmds:
            expect_refusal(c, d, rc, needles, cmd)
    check("hostile_" + name)(fn)


def reshape(name, shape):
    def edit(entries):
        out = []
        for e in entries:
            if e[0] == name:
                nb = int(np.prod(shape)) * 4
                e = (e[0], e[1], shape, (e[3] * (nb // len(e[3]) + 1))[:nb])
            out.append(e)
        return out
    return edit


def header_edit(fn):
    return {"st_kwargs": {"header_edit": fn}}


def set_offsets(name, b, e):
    def edit(h):
        h[name]["data_offsets"] = [b, e]
    return edit


def set_field(name, key, value):
    def edit(h):
        h[name][key] = value
    return edit


hostile("missing_tensor", needles=("model.safetensors", "h.1.mlp.c_fc.bias"), cmds=("eval", "train"),
        edit_entries=drop("transformer.h.1.mlp.c_fc.bias"))
hostile("wrong_shape", needles=("model.safetensors", "wpe.weight", "[63, 32]"), cmds=("eval", "generate"),
        edit_entries=reshape("transformer.wpe.weight", (63, 32)))
hostile("wrong_shape_transposed", needles=("model.safetensors", "h.0.attn.c_attn.weight"),
        edit_entries=reshape("transformer.h.0.attn.c_attn.weight", (96, 32)))
hostile("wrong_ndim", needles=("model.safetensors", "ln_f.weight"),
        edit_entries=reshape("transformer.ln_f.weight", (1, 32)))
hostile("header_len_beyond_file", needles=("model.safetensors", "header length"),
        st_kwargs={"header_len": "past_end"})
hostile("header_len_terabytes", needles=("model.safetensors", "header length"), cmds=("eval", "score"),
        st_kwargs={"header_len": 1 << 42})
hostile("header_len_2_64_minus_1", needles=("model.safetensors",), st_kwargs={"header_len": (1 << 64) - 1})
hostile("overlapping_offsets", needles=("model.safetensors", "overlap"),
        **header_edit(set_offsets("transformer.ln_f.bias", 0, 128)))
hostile("offsets_out_of_range", needles=("model.safetensors", "transformer.ln_f.bias"),
        **header_edit(set_offsets("transformer.ln_f.bias", 10 ** 9, 10 ** 9 + 128)))
hostile("offsets_reversed", needles=("model.safetensors", "transformer.ln_f.bias"),
        **header_edit(lambda h: h["transformer.ln_f.bias"].update(data_offsets=h["transformer.ln_f.bias"]["data_offsets"][::-1])))
hostile("offsets_negative", needles=("model.safetensors", "transformer.ln_f.bias"),
        **header_edit(set_offsets("transformer.ln_f.bias", -128, 0)))
hostile("shape_terabytes", needles=("model.safetensors", "transformer.wte.weight"),
        **header_edit(set_field("transformer.wte.weight", "shape", [1 << 30, 1 << 12])))
hostile("shape_overflows_u64", needles=("model.safetensors", "transformer.wte.weight"),
        **header_edit(set_field("transformer.wte.weight", "shape", [1 << 40, 1 << 40, 1 << 40])))
hostile("shape_negative", needles=("model.safetensors", "transformer.wte.weight"),
        **header_edit(set_field("transformer.wte.weight", "shape", [-50257, -32])))
hostile("unknown_dtype", needles=("model.safetensors", "transformer.h.0.ln_1.weight", "F8_E4M3"),
        **header_edit(set_field("transformer.h.0.ln_1.weight", "dtype", "F8_E4M3")))
hostile("unsupported_weight_dtype_i32", needles=("model.safetensors", "h.0.ln_1.weight", "I32"),
        **header_edit(set_field("transformer.h.0.ln_1.weight", "dtype", "I32")))
hostile("weight_dtype_f64", needles=("model.safetensors", "ln_f.weight", "F64"),
        edit_entries=lambda es: [(e[0], "F64", e[2], np.frombuffer(e[3], "<f4").astype("<f8").tobytes())
                                 if e[0] == "transformer.ln_f.weight" else e for e in es])
hostile("untied_lm_head", needles=("model.safetensors", "lm_head.weight"), cmds=("eval", "train", "generate"),
        edit_entries=lambda es: [(e[0], e[1], e[2], encode(np.ones(e[2]), e[1])) if e[0] == "lm_head.weight" else e
                                 for e in es])
hostile("lm_head_wrong_shape", needles=("model.safetensors", "lm_head.weight"),
        edit_entries=lambda es: [(e[0], e[1], (VOCAB, 16), e[3][:VOCAB * 16 * 4]) if e[0] == "lm_head.weight"
                                 else e for e in es])
hostile("not_json_header", needles=("model.safetensors", "JSON"),
        **header_edit(lambda h: h.update({"__metadata__": float("nan")})))
# wte twice (and no lm_head to tell them apart): which copy a loader takes is arbitrary, so it is refused
hostile("duplicate_with_and_without_prefix", needles=("model.safetensors", "transformer.wte.weight", "twice"),
        lm_head=False, edit_entries=lambda es: es + [("wte.weight", "F32", (VOCAB, CFG["n_embd"]),
                                       encode(np.zeros((VOCAB, CFG["n_embd"])), "F32"))])


def _truncated(c):
    d = hostile_folder("truncated_file")
    p = os.path.join(d, "model.safetensors")
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(size - 1000)
    expect_refusal(c, d, 65, ("model.safetensors",))


def _no_weights(c):
    d = hostile_folder("no_weights")
    os.remove(os.path.join(d, "model.safetensors"))
    expect_refusal(c, d, 66, ("model.safetensors",))


def _sparse_huge_header(c):
    """A 1.5 GB sparse file whose header claims 1 GB: refused before the header is allocated or read."""
    d = hostile_folder("sparse_huge_header")
    p = os.path.join(d, "model.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", 1 << 30) + b"{")
        f.truncate(3 << 29)
    expect_refusal(c, d, 65, ("model.safetensors", "header length"))


def _empty_file(c):
    d = hostile_folder("empty_file")
    open(os.path.join(d, "model.safetensors"), "wb").close()
    expect_refusal(c, d, 65, ("model.safetensors",))


def _config_missing(c):
    d = hostile_folder("no_config")
    os.remove(os.path.join(d, "config.json"))
    expect_refusal(c, d, 66, ("config.json",))


def _config_not_json(c):
    d = hostile_folder("config_not_json")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"model_type": "gpt2", "n_layer": 2,')
    expect_refusal(c, d, 65, ("config.json",))


check("hostile_truncated_file")(_truncated)
check("hostile_no_weights")(_no_weights)
check("hostile_sparse_huge_header")(_sparse_huge_header)
check("hostile_empty_file")(_empty_file)
check("hostile_no_config")(_config_missing)
check("hostile_config_not_json")(_config_not_json)

# each unsupported config variant, refused by name
for _name, _over, _needle in (
        ("n_inner", {"n_inner": 100}, "n_inner"),
        ("scale_attn_weights", {"scale_attn_weights": False}, "scale_attn_weights"),
        ("scale_attn_by_inverse_layer_idx", {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ("reorder_and_upcast_attn", {"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn"),
        ("activation_relu", {"activation_function": "relu"}, "activation_function"),
        ("activation_gelu_exact", {"activation_function": "gelu"}, "activation_function"),
        ("tie_word_embeddings_false", {"tie_word_embeddings": False}, "tie_word_embeddings"),
        ("model_type_llama", {"model_type": "llama"}, "model_type")):
    def _cfg_fn(c, over=_over, needle=_needle, name=_name):
        d = hostile_folder("config_" + name, config=hf_config(**over))
        for cmd in ("eval", "train", "generate", "score"):
            expect_refusal(c, d, 65, ("config.json", needle), cmd)
    check("hostile_config_" + _name)(_cfg_fn)


@check("hostile_config_claims_huge_model")
def _(c):
    """config.json claims a model far larger than the tensors (3.5 TB of parameters, 16 GB for the second):
    the files are checked against the config before anything that size is allocated."""
    for name, over in (("huge", dict(vocab_size=4000000, n_embd=16384, n_head=16, n_positions=65536, n_ctx=65536,
                                     n_layer=256)),
                       ("16gb", dict(vocab_size=4000000, n_embd=1024, n_head=2))):
        d = hostile_folder("config_" + name, config=hf_config(**over))
        for cmd in ("eval", "generate"):
            expect_refusal(c, d, 65, ("model.safetensors", "wte.weight"), cmd)


@check("config_accepted_variants")
def _(c):
    """What HF writes for the supported model is accepted: n_inner = 4 n_embd, gelu_pytorch_tanh, no
    optional keys at all."""
    for name, over in (("n_inner_4c", {"n_inner": 4 * CFG["n_embd"]}),
                       ("gelu_pytorch_tanh", {"activation_function": "gelu_pytorch_tanh"}),
                       ("minimal", {k: None for k in ("activation_function", "scale_attn_weights",
                                                      "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
                                                      "architectures", "n_ctx", "layer_norm_epsilon",
                                                      "task_specific_params", "torch_dtype")})):
        d = os.path.join(WORK, "ok-" + name)
        write_hf_folder(d, make_params(51), config=hf_config(**over))
        r = iqtrain("eval", "--model", d, "--data", data_file(), "--json")
        c.ran(r, 0, name)


# shard indexes
def shard_case(name, edit, rc, needles, delete=None):
    def fn(c):
        d = hostile_folder("index_" + name, shards=2)
        ip = os.path.join(d, "model.safetensors.index.json")
        with open(ip) as f:
            idx = json.load(f)
        edit(idx)
        with open(ip, "w") as f:
            if isinstance(idx, dict) and idx.get("__raw__"):
                f.write(idx["__raw__"])
            else:
                json.dump(idx, f)
        if delete:
            os.remove(os.path.join(d, delete))
        expect_refusal(c, d, rc, needles)
        # other commands refuse the same way
        expect_refusal(c, d, rc, needles, "generate")
    check("hostile_index_" + name)(fn)


def _point(key, value):
    def edit(idx):
        idx["weight_map"][key] = value
    return edit


shard_case("missing_shard", lambda idx: None, 66, ("model-00002-of-00002.safetensors",),
           delete="model-00002-of-00002.safetensors")
shard_case("dotdot", _point("transformer.ln_f.bias", "../x"), 65, ("model.safetensors.index.json", "../x"))
shard_case("dotdot_nested", _point("transformer.ln_f.bias", "sub/../../x.safetensors"), 65,
           ("model.safetensors.index.json",))
shard_case("absolute", _point("transformer.ln_f.bias", "/etc/passwd"), 65, ("model.safetensors.index.json",))
shard_case("points_at_missing_file", _point("transformer.ln_f.bias", "model-00003-of-00002.safetensors"), 66,
           ("model-00003-of-00002.safetensors",))
shard_case("not_a_string", _point("transformer.ln_f.bias", 7), 65, ("model.safetensors.index.json",))
shard_case("empty_name", _point("transformer.ln_f.bias", ""), 65, ("model.safetensors.index.json",))
shard_case("no_weight_map", lambda idx: idx.pop("weight_map"), 65, ("model.safetensors.index.json", "weight_map"))
shard_case("not_json", lambda idx: idx.update({"__raw__": '{"weight_map": {'}), 65, ("model.safetensors.index.json",))


def _tensor_in_no_shard(c):
    """The index lists a tensor no shard holds: the loader names it."""
    d = hostile_folder("index_tensor_in_no_shard", shards=2,
                       edit_entries=drop("transformer.h.1.ln_2.bias"))
    ip = os.path.join(d, "model.safetensors.index.json")
    with open(ip) as f:
        idx = json.load(f)
    idx["weight_map"]["transformer.h.1.ln_2.bias"] = "model-00002-of-00002.safetensors"
    write_json(ip, idx)
    expect_refusal(c, d, 65, ("h.1.ln_2.bias",))


def _shard_hostile_header(c):
    """A hostile header in the second shard is named with that shard's file."""
    d = hostile_folder("index_shard2_terabytes", shards=2)
    p = os.path.join(d, "model-00002-of-00002.safetensors")
    with open(p, "r+b") as f:
        f.write(struct.pack("<Q", 1 << 42))
    expect_refusal(c, d, 65, ("model-00002-of-00002.safetensors", "header length"))


def _shard_duplicate(c):
    """The same tensor in both shards with different data: ambiguous, refused (naming both files)."""
    d = hostile_folder("index_duplicate", shards=2, lm_head=False)
    p2 = os.path.join(d, "model-00002-of-00002.safetensors")
    header, meta, raw = st_read_raw(p2)
    entries = [(n, h["dtype"], tuple(h["shape"]), raw[n]) for n, h in header.items()]
    entries.append(("transformer.wte.weight", "F32", (VOCAB, CFG["n_embd"]), encode(np.zeros((VOCAB, CFG["n_embd"])), "F32")))
    with open(p2, "wb") as f:
        f.write(st_build(entries, meta))
    expect_refusal(c, d, 65, ("wte.weight", "twice", "model-00001-of-00002.safetensors",
                              "model-00002-of-00002.safetensors"))


check("hostile_index_tensor_in_no_shard")(_tensor_in_no_shard)
check("hostile_index_shard2_terabytes")(_shard_hostile_header)
check("hostile_index_duplicate_across_shards")(_shard_duplicate)


# --------------------------------------------------------------------------------------------------

def main():
    global ARGS, WORK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iqtrain", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--keep", default=None)
    ap.add_argument("--only", default=None)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ARGS = ap.parse_args()
    if ARGS.list:
        for n, _ in CHECKS:
            print(n)
        return 0
    for p in (ARGS.iqtrain, ARGS.dump):
        if not os.access(p, os.X_OK):
            print("not executable: %s" % p)
            print("0 passed, 1 failed")
            return 1
    ARGS.iqtrain = os.path.abspath(ARGS.iqtrain)
    ARGS.dump = os.path.abspath(ARGS.dump)
    if ARGS.keep:
        shutil.rmtree(ARGS.keep, ignore_errors=True)
        os.makedirs(ARGS.keep)
        WORK = os.path.abspath(ARGS.keep)
    else:
        WORK = tempfile.mkdtemp(prefix="iqtrain-hf.")
    torch.set_num_threads(2)
    t0 = time.time()
    try:
        for name, fn in CHECKS:
            if selected(name):
                run_check(name, fn)
    finally:
        if not ARGS.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    if STATS["logit_err"]:
        print("# worst logit error (max |diff| / max |ref|): " +
              ", ".join("%s %.2e" % kv for kv in sorted(STATS["logit_err"].items())))
    print("# %.1f s" % (time.time() - t0))
    print("%d passed, %d failed" % (RESULTS["pass"], RESULTS["fail"]))
    return 1 if RESULTS["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
