#!/usr/bin/python3
"""Compares llama.cpp's outputs (tests/gguf/llama_cpp.mjs) with iqtrain's (standard library only).

  compare.py gen MODEL_DIR SAMPLES.jsonl MIN_TOKENS EXACT FLOOR DTYPE=NODE.jsonl...
      SAMPLES.jsonl: `iqtrain generate --temperature 0` rows (completion text, rewards = one per generated token,
      EOS included, eos). Each NODE.jsonl: llama.cpp's greedy ids for the same prompts from the GGUF of that
      dtype, decoded with the folder's tokenizer.json. A prompt agrees when the decoded text, the number of tokens
      and the EOS flag are equal. Prints one line per dtype: prompts that agree, and tokens that agree with
      llama.cpp's run of the first dtype (f32) up to each sequence's first difference. Fails (exit 1) when a
      dtype in EXACT (comma-separated) has a prompt that does not agree, when a reference continuation is
      shorter than MIN_TOKENS, or when a dtype's token agreement is below FLOOR.
  compare.py tok IQTRAIN_IDS.txt NODE.jsonl CORPUS.jsonl
      IQTRAIN_IDS.txt: `iqtrain tokenize --data CORPUS.jsonl` (one line per {"text"} row: EOS, the text's ids,
      EOS). Fails (exit 1) listing the documents whose ids differ from llama.cpp's.
"""
import json
import sys


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def decoder(model_dir):
    with open(f"{model_dir}/tokenizer.json", encoding="utf-8") as f:
        tj = json.load(f)
    byte_of = bytes_to_unicode()
    table = {i: bytes(byte_of[c] for c in s) for s, i in tj["model"]["vocab"].items()}
    table.update({a["id"]: a["content"].encode() for a in tj.get("added_tokens", [])})
    return lambda ids: b"".join(table[i] for i in ids).decode("utf-8", errors="surrogateescape")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compare_gen(model_dir, samples, min_tokens, exact, floor, runs):
    decode, ref = decoder(model_dir), read_jsonl(samples)
    bad, base = [], None
    short = [i for i, r in enumerate(ref) if len(r["rewards"]) - r["eos"] < min_tokens]
    if short:
        bad.append(f"iqtrain's greedy continuations of prompts {short} are shorter than {min_tokens} tokens")
    for dtype, path in runs:
        got = read_jsonl(path)
        base = base or got
        agree = [len(g["ids"]) + g["eos"] == len(r["rewards"]) and g["eos"] == r["eos"] and decode(g["ids"]) == r["completion"]
                 for g, r in zip(got, ref)]
        same = total = 0
        for g, b in zip(got, base):
            k = 0
            while k < min(len(g["ids"]), len(b["ids"])) and g["ids"][k] == b["ids"][k]:
                k += 1
            same, total = same + k, total + len(b["ids"])
        rate = same / max(total, 1)
        print(f"    {dtype:5s} {sum(agree)}/{len(ref)} prompts equal iqtrain's greedy continuation; "
              f"token agreement with llama.cpp f32 {same}/{total} = {rate:.4f}")
        if len(got) != len(ref) or (dtype in exact and not all(agree)):
            bad.append(f"{dtype}: prompts {[i for i, a in enumerate(agree) if not a]} differ from iqtrain's")
        if rate < floor:
            bad.append(f"{dtype}: token agreement {rate:.4f} below {floor}")
    return bad


def compare_tok(iq_path, node_path, corpus_path):
    with open(iq_path, encoding="utf-8") as f:
        iq = [[int(x) for x in line.split()][1:-1] for line in f if line.strip()]
    node, docs = read_jsonl(node_path), read_jsonl(corpus_path)
    if len(iq) != len(docs) or len(node) != len(docs):
        return [f"{len(docs)} documents, iqtrain tokenized {len(iq)}, llama.cpp {len(node)}"]
    diff = [i for i in range(len(docs)) if iq[i] != node[i]["ids"]]
    n_tok = sum(len(x) for x in iq)
    print(f"    {len(docs) - len(diff)}/{len(docs)} documents ({n_tok} tokens) tokenized alike")
    return [f"document {i} {docs[i]['text'][:60]!r}: iqtrain {iq[i][:12]}... llama.cpp {node[i]['ids'][:12]}..." for i in diff[:5]]


if __name__ == "__main__":
    a = sys.argv
    if len(a) >= 8 and a[1] == "gen":
        runs = [tuple(x.split("=", 1)) for x in a[7:]]
        problems = compare_gen(a[2], a[3], int(a[4]), set(a[5].split(",")), float(a[6]), runs)
    elif len(a) == 5 and a[1] == "tok":
        problems = compare_tok(a[2], a[3], a[4])
    else:
        sys.exit(__doc__)
    for p in problems:
        print("    MISMATCH " + p)
    sys.exit(1 if problems else 0)
