#!/usr/bin/env bash
# iqtrain against the PyTorch program a user would run instead (tests/reference/bench_torch.py: the same
# GPT-2, IQLearn loss, AdamW and clipping), in one run on this machine, and a table with the ratios.
#
#   scripts/bench.sh [--quick] [--repeat N] [--out DIR]
#
# Training (tokens/s, ms/step, step 0, GFLOP/s, fraction of the best fp32 GEMM peak, peak RSS):
#   S: L4 H4 C256, vocab 8192, B=8, T=128      G: GPT-2 124M (L12 H12 C768, vocab 50257), B=4, T=64
# iqtrain fp32 (--matmul-backend auto: oneDNN where built in), fp32 on OpenBLAS, --matmul-precision bf16
# (oneDNN; fp32 with a notice where there is no bf16 matmul), PyTorch fp32 and bf16 autocast; iqtrain at
# lambda 0 (the cost of the TD term) and on 1 thread (scaling). IQTRAIN_BEFORE=BIN adds the rows of an older
# build (as it runs out of the box) for a before/after table. Every row runs --repeat times (default 3,
# interleaved): the table shows the median and the spread (min-max) of tokens/s.
# PyTorch's fp32 matmuls use Debian's OpenBLAS, which runs its generic "Prescott" kernels on CPUs it does not
# know: OPENBLAS_CORETYPE is set to SkylakeX (AVX-512) or Haswell (AVX2 + FMA), unless already set, so that
# PyTorch runs on the right kernels (iqtrain sets it for itself, src/matmul.h).
# "% of best fp32 peak": GFLOP/s over the best fp32 GEMM rate measured in the run (1024^3, OpenBLAS on its
# right kernels or oneDNN, whichever is faster: each iqtrain bench measures its backend's at start-up).
# Generation: greedy with a KV cache, batch 1 and 8, config S, iqtrain fp32 and bf16 against the PyTorch loop.
# Tokenizer: scripts/bench_tokenizer.sh (iqtrain against js-tiktoken).
# Everything on all the CPUs of this process (2 here); results in DIR (default data/results/bench):
# bench.jsonl (one JSON object per measurement) and bench.md (machine, settings, table).
# --quick: fewer steps and 1 repeat (a smoke run, numbers noisier). Run it on a quiet machine: other processes
# on the same cores change the numbers far more than anything measured here.
# --llama adds the Llama-family rows (--llama-only: only them): SmolLM2-135M-shaped (llama L30 H9 KV3 C576, MLP
# 1536, vocab 49152) and Qwen2.5-0.5B-shaped (qwen2 L24 H14 KV2 C896, MLP 4864, q/k/v biases, vocab 151936)
# models, random weights (`iqtrain bench --model DIR` reads the shape from the config.json that
# tests/reference/make_llama_folder.py writes), B=1 T=512, one run each: iqtrain fp32 and bf16 against
# bench_torch.py --config (the same shape from the equations: RMSNorm, rotate-half RoPE, repeat_kv, SiLU-gated
# MLP; the same IQLearn loss, AdamW and clipping) in fp32 and bf16 autocast; tokens/s, peak RSS, and the
# 1-minute load average next to each row. Needs ~12 GB of RAM for the 0.5B model (iqtrain ~11 GB, PyTorch more).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${IQTRAIN:-build/release/iqtrain}
PY=/usr/bin/python3
OUT=data/results/bench
STEPS_S=10
STEPS_G=5
REPS_GEN=5
TOK=1
REPEAT=3
LLAMA=0
GPT2=1
STEPS_L=4
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) STEPS_S=3; STEPS_G=2; REPS_GEN=2; TOK=0; REPEAT=1; STEPS_L=3; shift ;;
    --llama) LLAMA=1; shift ;;
    --llama-only) LLAMA=1; GPT2=0; TOK=0; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; exit 64 ;;
  esac
done
[ -x "$BIN" ] || { echo "bench: $BIN is not built (scripts/test.sh or scripts/demo.sh builds it)" >&2; exit 66; }
mkdir -p "$OUT"
RES="$OUT/bench.jsonl"
: > "$RES"
NT=$("$BIN" bench --what generate --n-layer 1 --n-head 1 --n-embd 8 --vocab-size 16 --ctx 32 --prompt-len 1 \
  --new-tokens 1 --steps 1 --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["threads"])')

# PyTorch's OpenBLAS on the kernels of this CPU (the rule of src/matmul.h)
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  fl=$(grep -m1 '^flags' /proc/cpuinfo)
  if [[ " $fl " == *" avx512f "* && " $fl " == *" avx512bw "* && " $fl " == *" avx512vl "* && " $fl " == *" avx512dq "* && " $fl " == *" avx512cd "* ]]; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif [[ " $fl " == *" avx2 "* && " $fl " == *" fma "* ]]; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi
BEFORE=${IQTRAIN_BEFORE:-}

S=(--n-layer 4 --n-head 4 --n-embd 256 --ctx 1024 --vocab-size 8192 --batch-size 8 --seq-len 128)
G=(--n-layer 12 --n-head 12 --n-embd 768 --ctx 1024 --vocab-size 50257 --batch-size 4 --seq-len 64)

# record NAME CONFIG IMPL COMMAND...: runs the command, tags its JSON line (and the load average before and
# after it), appends it to bench.jsonl
record() {
  local name=$1 cfg=$2 impl=$3
  shift 3
  echo "bench: $name" >&2
  local line load0
  load0=$(cut -d' ' -f1 /proc/loadavg)
  line=$("$@" --json)
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(name=sys.argv[2], config=sys.argv[3], impl=sys.argv[4], load_before=float(sys.argv[5]), load_after=float(open("/proc/loadavg").read().split()[0])); print(json.dumps(r))' \
    "$line" "$name" "$cfg" "$impl" "$load0" >> "$RES"
}

for cfg in $([ $GPT2 = 1 ] && echo S G); do
  if [ $cfg = S ]; then args=("${S[@]}"); steps=$STEPS_S; else args=("${G[@]}"); steps=$STEPS_G; fi
  for rep in $(seq "$REPEAT"); do
    record "train-$cfg-iqtrain-fp32" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0.1
    record "train-$cfg-iqtrain-fp32-openblas" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" \
      --lambda 0.1 --matmul-backend openblas
    record "train-$cfg-iqtrain-bf16" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0.1 \
      --matmul-precision bf16
    [ -z "$BEFORE" ] || record "train-$cfg-before-fp32" $cfg iqtrain env -u OPENBLAS_CORETYPE "$BEFORE" bench --what train \
      "${args[@]}" --steps "$steps" --lambda 0.1
    record "train-$cfg-pytorch-fp32" $cfg pytorch $PY tests/reference/bench_torch.py "${args[@]}" --steps "$steps" \
      --lambda 0.1 --threads "$NT"
    # bf16 autocast without avx512_bf16 hardware is 20x slower than fp32 in PyTorch 1.13: few steps (median of the rest)
    bsteps=$steps
    grep -qw avx512_bf16 /proc/cpuinfo || bsteps=$((steps < 3 ? steps : 3))
    record "train-$cfg-pytorch-bf16" $cfg pytorch $PY tests/reference/bench_torch.py "${args[@]}" --steps "$bsteps" \
      --lambda 0.1 --threads "$NT" --precision bf16
    # in the repeats too: single runs of these landed in different phases of a VM whose speed drifts by +-20%
    record "train-$cfg-iqtrain-lambda0" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0
    record "train-$cfg-iqtrain-1thread" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" \
      --lambda 0.1 --threads 1
  done
done
# the Llama families: SmolLM2-135M- and Qwen2.5-0.5B-shaped, iqtrain against PyTorch, one run each
if [ $LLAMA = 1 ]; then
  for shape in smollm2-135m qwen2.5-0.5b; do
    mkdir -p "$OUT/$shape"
    $PY tests/reference/make_llama_folder.py --shape $shape --print-config > "$OUT/$shape/config.json"
    la=(--model "$OUT/$shape" --batch-size 1 --seq-len 512 --steps "$STEPS_L" --lambda 0.1)
    lt=(--config "$OUT/$shape" --batch-size 1 --seq-len 512 --steps "$STEPS_L" --lambda 0.1 --threads "$NT")
    record "train-$shape-iqtrain-fp32" $shape iqtrain "$BIN" bench --what train "${la[@]}"
    record "train-$shape-iqtrain-bf16" $shape iqtrain "$BIN" bench --what train "${la[@]}" --matmul-precision bf16
    record "train-$shape-pytorch-fp32" $shape pytorch $PY tests/reference/bench_torch.py "${lt[@]}"
    record "train-$shape-pytorch-bf16" $shape pytorch $PY tests/reference/bench_torch.py "${lt[@]}" --precision bf16
  done
fi
# MPI: 2 ranks x 1 thread against 1 process x 1 thread on config S (scaling efficiency)
if [ $GPT2 = 1 ] && "$BIN" --version | grep -q "MPI: built in" && command -v mpirun > /dev/null; then
  export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
  if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
  record "train-S-mpi-2ranks-1thread" S iqtrain mpirun -np 2 --bind-to core "$BIN" bench --what train "${S[@]}" \
    --steps "$STEPS_S" --lambda 0.1 --threads 1
fi
for b in $([ $GPT2 = 1 ] && echo 1 8); do
  g=(--n-layer 4 --n-head 4 --n-embd 256 --ctx 1024 --vocab-size 8192 --batch-size $b --prompt-len 16 --new-tokens 64)
  record "generate-S-b$b-iqtrain" S iqtrain "$BIN" bench --what generate "${g[@]}" --steps $REPS_GEN
  record "generate-S-b$b-iqtrain-bf16" S iqtrain "$BIN" bench --what generate "${g[@]}" --steps $REPS_GEN \
    --matmul-precision bf16
  record "generate-S-b$b-pytorch" S pytorch $PY tests/reference/bench_torch.py --what generate "${g[@]}" \
    --steps $REPS_GEN --threads "$NT"
done
if [ $TOK = 1 ]; then
  echo "bench: tokenizer" >&2
  scripts/bench_tokenizer.sh --json | $PY -c 'import json,sys; r=json.load(sys.stdin); r.update(name="tokenizer", what="tokenizer"); print(json.dumps(r))' >> "$RES"
fi

$PY - "$RES" "$OUT/bench.md" "$NT" <<'PY'
import json, os, platform, statistics, sys, time
res, md, nt = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {}
for r in map(json.loads, open(res)):
    runs.setdefault(r["name"], []).append(r)
def med(rs):  # the run with the median tokens/s, and the spread
    rs = sorted(rs, key=lambda r: r.get("tokens_per_s", 0))
    r = dict(rs[len(rs) // 2])
    r["lo"], r["hi"], r["n"] = rs[0].get("tokens_per_s", 0), rs[-1].get("tokens_per_s", 0), len(rs)
    return r
R = {k: med(v) for k, v in runs.items()}
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0].split()
isa = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in flags)
gpt2 = "train-S-iqtrain-fp32" in R
base = "train-S" if gpt2 else "train-smollm2-135m"
f32, b16, pt = R[base + "-iqtrain-fp32"], R[base + "-iqtrain-bf16"], R[base + "-pytorch-fp32"]
out = [f"# iqtrain benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
       f"Machine: {cpu()} ({isa}), {os.cpu_count()} CPUs, {nt} threads; iqtrain: backend {f32.get('backend')} "
       f"(oneDNN {f32.get('onednn_version')}, fp32 ISA {f32.get('onednn_isa')}, bf16 ISA "
       f"{b16.get('onednn_isa')}), OpenBLAS core {f32.get('openblas_core')}; PyTorch "
       f"{pt.get('torch', '?')} with OPENBLAS_CORETYPE="
       f"{pt.get('openblas_coretype')}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
       f"medians of {f32['n']} interleaved repeats, spread = min-max tokens/s.", ""]
# the arithmetic peaks every iqtrain train run measures (registers only, no memory): the best of the run
fma = max((r.get("fp32_fma_peak_gflops") or 0 for k, r in R.items() if k.startswith("train-")), default=0)
dot = max((r.get("bf16_dot_peak_gflops") or 0 for k, r in R.items() if k.startswith("train-")), default=0)
if fma:
    gemm = max((r.get("peak_gflops") or 0 for k, r in R.items() if k.startswith("train-") and r.get("precision") == "fp32"),
               default=0)
    out += [f"Arithmetic peaks ({nt} threads, registers only, `iqtrain bench`): fp32 FMA {fma:.0f} GFLOP/s"
            + (f", bf16 dot products (vdpbf16ps) {dot:.0f} GFLOP/s = {dot / fma:.2f}x fp32's" if dot else
               ", no bf16 dot-product instruction")
            + (f"; the best fp32 GEMM of the run (1024^3) reached {gemm:.0f} = {100 * gemm / fma:.0f}% of the FMA peak."
               if gemm else "."), ""]
if gpt2:
    out += ["## Training steps (forward, IQLearn loss, backward, clip, AdamW)", "",
            "| config | implementation | tokens/s (spread) | ms/step | step 0 ms | GFLOP/s | % of best fp32 peak | peak RSS MB | vs PyTorch fp32 | vs PyTorch bf16 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for cfg in (("S", "G") if gpt2 else ()):
    t32 = R[f"train-{cfg}-pytorch-fp32"]["tokens_per_s"]
    t16 = R[f"train-{cfg}-pytorch-bf16"]["tokens_per_s"]
    peaks = [R[f"train-{cfg}-{k}"]["peak_gflops"] for k in ("iqtrain-fp32", "iqtrain-fp32-openblas")
             if f"train-{cfg}-{k}" in R]
    best = max(peaks)
    rows = (("before-fp32", "iqtrain before (fp32, as installed)"), ("iqtrain-fp32", "iqtrain fp32 (auto)"),
            ("iqtrain-fp32-openblas", "iqtrain fp32, OpenBLAS"), ("iqtrain-bf16", "iqtrain --matmul-precision bf16"),
            ("iqtrain-lambda0", "iqtrain fp32, lambda 0"), ("iqtrain-1thread", "iqtrain fp32, 1 thread"),
            ("pytorch-fp32", "PyTorch fp32"), ("pytorch-bf16", "PyTorch bf16 autocast"))
    for key, label in rows:
        if f"train-{cfg}-{key}" not in R:
            continue
        r = R[f"train-{cfg}-{key}"]
        if key.startswith("iqtrain") and r.get("backend"):
            label += f" [{r['backend']} {r.get('precision')}]"
        if key == "iqtrain-bf16" and r.get("precision") != "bf16":
            label += " (ran fp32: no bf16 matmul here)"
        if key == "before-fp32":
            label += " [OpenBLAS core as detected]"
        pf = f"{100 * r['gflops'] / best:.0f}% of {best:.0f}"
        if key == "iqtrain-bf16" and "peak_gflops" in r:
            pf += f" ({100 * r['gflops'] / r['peak_gflops']:.0f}% of bf16 {r['peak_gflops']:.0f})"
        spread = f" ({r['lo']:.0f}-{r['hi']:.0f})" if r["n"] > 1 else ""
        out.append(f"| {cfg} | {label} | {r['tokens_per_s']:.0f}{spread} | {r['ms_per_step']:.0f} | {r['first_step_ms']:.0f} | "
                   f"{r['gflops']:.1f} | {pf} | {r['peak_rss_mb']:.0f} | {r['tokens_per_s'] / t32:.2f}x | "
                   f"{r['tokens_per_s'] / t16:.2f}x |")
if gpt2:
    out += ["", "Checks against the targets (ratios of medians within this run):", ""]
for cfg in (("S", "G") if gpt2 else ()):
    f32 = R[f"train-{cfg}-iqtrain-fp32"]
    l0 = R[f"train-{cfg}-iqtrain-lambda0"]
    t1 = R[f"train-{cfg}-iqtrain-1thread"]
    out.append(f"- {cfg}: step 0 / steady step = {f32['first_step_ms'] / f32['ms_per_step']:.2f}; "
               f"lambda 0.1 vs 0 time per step = {f32['ms_per_step'] / l0['ms_per_step']:.3f}; "
               f"{nt} threads vs 1 = {t1['ms_per_step'] / f32['ms_per_step']:.2f}x; "
               f"peak RSS iqtrain {f32['peak_rss_mb']:.0f} MB vs PyTorch {R[f'train-{cfg}-pytorch-fp32']['peak_rss_mb']:.0f} MB")
    if dot and "amx_bf16" not in flags:  # what the bf16 target asks of the hardware: the step's FLOPs at 2x PyTorch bf16's tokens/s
        need = 2 * R[f"train-{cfg}-pytorch-bf16"]["tokens_per_s"] * f32["gflops"] / f32["tokens_per_s"]
        out.append(f"- {cfg}: bf16 at 2x PyTorch bf16 autocast needs {need:.0f} GFLOP/s for the whole step = "
                   f"{100 * need / dot:.0f}% of the bf16 dot-product peak ({dot:.0f})")
if "train-S-mpi-2ranks-1thread" in R:
    m, one = R["train-S-mpi-2ranks-1thread"], R["train-S-iqtrain-1thread"]
    out += ["", "## MPI data parallelism (config S, 1 thread per rank, mpirun --bind-to core)", "",
            f"1 process: {one['tokens_per_s']:.0f} tokens/s; 2 ranks: {m['tokens_per_s']:.0f} tokens/s; "
            f"scaling efficiency {m['tokens_per_s'] / (2 * one['tokens_per_s']):.0%} "
            f"(gradient all-reduce of {4 * (4 * 12 * 256 * 256 + 8192 * 256 + 1024 * 256) / 1e6:.1f} MB per step)."]
if "train-qwen2.5-0.5b-iqtrain-fp32" in R:
    out += ["", "## Llama families: training steps, B=1 T=512, random weights, one run each", "",
            "| shape | implementation | tokens/s | ms/step | step 0 ms | GFLOP/s | peak RSS MB | vs PyTorch same precision | load avg (before-after) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for shape, label in (("smollm2-135m", "SmolLM2-135M"), ("qwen2.5-0.5b", "Qwen2.5-0.5B")):
        for impl, prec, name in (("iqtrain", "fp32", "iqtrain fp32"), ("iqtrain", "bf16", "iqtrain --matmul-precision bf16"),
                                 ("pytorch", "fp32", "PyTorch fp32"), ("pytorch", "bf16", "PyTorch bf16 autocast")):
            r = R.get(f"train-{shape}-{impl}-{prec}")
            if not r:
                continue
            p = R.get(f"train-{shape}-pytorch-{prec}", {}).get("tokens_per_s")
            vs = f"{r['tokens_per_s'] / p:.2f}x" if p and impl == "iqtrain" else ""
            if impl == "iqtrain" and r.get("backend"):
                name += f" [{r['backend']} {r.get('precision')}]"
            out.append(f"| {label} ({r.get('parameters', 0) / 1e6:.0f}M) | {name} | {r['tokens_per_s']:.0f} | "
                       f"{r['ms_per_step']:.0f} | {r['first_step_ms']:.0f} | {r['gflops']:.1f} | {r['peak_rss_mb']:.0f} | {vs} | "
                       f"{r.get('load_before', float('nan')):.2f}-{r.get('load_after', float('nan')):.2f} |")
if gpt2:
    out += ["", "## Generation (greedy, KV cache, config S, prompts of 16 random tokens + 64 new tokens)", "",
            "| batch | iqtrain fp32 tokens/s | iqtrain bf16 tokens/s | PyTorch fp32 tokens/s | fp32 ratio |", "|---:|---:|---:|---:|---:|"]
for b in ((1, 8) if gpt2 else ()):
    a, p = R[f"generate-S-b{b}-iqtrain"], R[f"generate-S-b{b}-pytorch"]
    h = R.get(f"generate-S-b{b}-iqtrain-bf16", {}).get("tokens_per_s", float("nan"))
    out.append(f"| {b} | {a['tokens_per_s']:.0f} | {h:.0f} | {p['tokens_per_s']:.0f} | {a['tokens_per_s'] / p['tokens_per_s']:.2f}x |")
if "tokenizer" in R:
    t = R["tokenizer"]
    many = [k for k in t if k.startswith("iqtrain_") and k.endswith("threads_mb_s")]
    out += ["", "## Tokenizer (GPT-2 vocabulary)", "",
            f"{t['bytes']} bytes: iqtrain {t['iqtrain_1thread_mb_s']:.1f} MB/s on 1 thread"
            + (f", {t[many[0]]:.1f} MB/s on all threads" if many else "")
            + f"; js-tiktoken {t['js_tiktoken_mb_s']:.2f} MB/s; ratio {t['ratio_1thread']:.1f}x (1 thread)."]
# iqtrain bench samples /proc/stat before each run (cpu_busy_before; -1 or absent: not known, as for PyTorch's
# runs, the tokenizer script's and an IQTRAIN_BEFORE build older than the field); over 0.25 it warned
known = [r for rs in runs.values() for r in rs if r.get("cpu_busy_before", -1) >= 0]
busy = sorted({r["name"] for r in known if r["cpu_busy_before"] > 0.25})
out += ["", f"Quiet check ({len(known)} iqtrain runs sampled /proc/stat before starting): "
        + ("none found the CPUs over 25% busy." if not busy else "other processes kept the CPUs over 25% busy before "
           + ", ".join(busy) + ": those numbers are low and noisy; rerun on a quiet machine.")]
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
