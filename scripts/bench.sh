#!/usr/bin/env bash
# iqtrain against the PyTorch program a user would run instead (tests/reference/bench_torch.py: the same
# GPT-2, IQLearn loss, AdamW and clipping), in one run on this machine, and a table with the ratios.
#
#   scripts/bench.sh [--quick] [--out DIR]
#
# Training (tokens/s, ms/step, step 0, GFLOP/s, fraction of the sgemm peak measured at start-up, peak RSS):
#   S: L4 H4 C256, vocab 8192, B=8, T=128      G: GPT-2 124M (L12 H12 C768, vocab 50257), B=4, T=64
# iqtrain fp32 (and --matmul-precision bf16, which falls back to fp32 where the build or CPU has no bf16
# matmul), PyTorch fp32 and bf16 autocast; iqtrain at lambda 0 (the cost of the TD term) and on 1 thread
# (scaling). Generation: greedy with a KV cache, batch 1 and 8, config S, against the PyTorch loop.
# Tokenizer: scripts/bench_tokenizer.sh (iqtrain against js-tiktoken).
# Everything on all the CPUs of this process (2 here); results in DIR (default data/results/bench):
# bench.jsonl (one JSON object per measurement) and bench.md (machine, settings, table).
# --quick: fewer steps (a smoke run, numbers noisier). Run it on a quiet machine: other processes on
# the same cores change the numbers far more than anything measured here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${IQTRAIN:-build/release/iqtrain}
PY=/usr/bin/python3
OUT=data/results/bench
STEPS_S=10
STEPS_G=5
REPS_GEN=5
TOK=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) STEPS_S=3; STEPS_G=2; REPS_GEN=2; TOK=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; exit 64 ;;
  esac
done
[ -x "$BIN" ] || { echo "bench: $BIN is not built (scripts/test.sh or scripts/demo.sh builds it)" >&2; exit 66; }
mkdir -p "$OUT"
RES="$OUT/bench.jsonl"
: > "$RES"
NT=$("$BIN" bench --what generate --n-layer 1 --n-head 1 --n-embd 8 --vocab-size 16 --ctx 32 --prompt-len 1 \
  --new-tokens 1 --steps 1 --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["threads"])')

S=(--n-layer 4 --n-head 4 --n-embd 256 --ctx 1024 --vocab-size 8192 --batch-size 8 --seq-len 128)
G=(--n-layer 12 --n-head 12 --n-embd 768 --ctx 1024 --vocab-size 50257 --batch-size 4 --seq-len 64)

# record NAME CONFIG IMPL COMMAND...: runs the command, tags its JSON line, appends it to bench.jsonl
record() {
  local name=$1 cfg=$2 impl=$3
  shift 3
  echo "bench: $name" >&2
  local line
  line=$("$@" --json)
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(name=sys.argv[2], config=sys.argv[3], impl=sys.argv[4]); print(json.dumps(r))' \
    "$line" "$name" "$cfg" "$impl" >> "$RES"
}

for cfg in S G; do
  if [ $cfg = S ]; then args=("${S[@]}"); steps=$STEPS_S; else args=("${G[@]}"); steps=$STEPS_G; fi
  record "train-$cfg-iqtrain-fp32" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0.1
  record "train-$cfg-iqtrain-bf16" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0.1 \
    --matmul-precision bf16
  record "train-$cfg-iqtrain-lambda0" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0
  record "train-$cfg-iqtrain-1thread" $cfg iqtrain "$BIN" bench --what train "${args[@]}" --steps "$steps" --lambda 0.1 \
    --threads 1
  record "train-$cfg-pytorch-fp32" $cfg pytorch $PY tests/reference/bench_torch.py "${args[@]}" --steps "$steps" \
    --lambda 0.1 --threads "$NT"
  # bf16 autocast without avx512_bf16 hardware is 20x slower than fp32 in PyTorch 1.13: few steps (median of the rest)
  bsteps=$steps
  grep -qw avx512_bf16 /proc/cpuinfo || bsteps=$((steps < 3 ? steps : 3))
  record "train-$cfg-pytorch-bf16" $cfg pytorch $PY tests/reference/bench_torch.py "${args[@]}" --steps "$bsteps" \
    --lambda 0.1 --threads "$NT" --precision bf16
done
# MPI: 2 ranks x 1 thread against 1 process x 1 thread on config S (scaling efficiency)
if "$BIN" --version | grep -q "MPI: built in" && command -v mpirun > /dev/null; then
  export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
  if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
  record "train-S-mpi-2ranks-1thread" S iqtrain mpirun -np 2 --bind-to core "$BIN" bench --what train "${S[@]}" \
    --steps "$STEPS_S" --lambda 0.1 --threads 1
fi
for b in 1 8; do
  g=(--n-layer 4 --n-head 4 --n-embd 256 --ctx 1024 --vocab-size 8192 --batch-size $b --prompt-len 16 --new-tokens 64)
  record "generate-S-b$b-iqtrain" S iqtrain "$BIN" bench --what generate "${g[@]}" --steps $REPS_GEN
  record "generate-S-b$b-pytorch" S pytorch $PY tests/reference/bench_torch.py --what generate "${g[@]}" \
    --steps $REPS_GEN --threads "$NT"
done
if [ $TOK = 1 ]; then
  echo "bench: tokenizer" >&2
  scripts/bench_tokenizer.sh --json | $PY -c 'import json,sys; r=json.load(sys.stdin); r.update(name="tokenizer", what="tokenizer"); print(json.dumps(r))' >> "$RES"
fi

$PY - "$RES" "$OUT/bench.md" "$NT" <<'PY'
import json, os, platform, subprocess, sys, time
res, md, nt = sys.argv[1], sys.argv[2], int(sys.argv[3])
R = {r["name"]: r for r in map(json.loads, open(res))}
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0].split()
isa = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)
blas = os.environ.get("OPENBLAS_CORETYPE", "unset")
out = [f"# iqtrain benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
       f"Machine: {cpu()} ({isa}), {os.cpu_count()} CPUs, {nt} threads; OPENBLAS_CORETYPE={blas}; "
       f"PyTorch {R['train-S-pytorch-fp32'].get('torch', '?')}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}.", "",
       "## Training steps (forward, IQLearn loss, backward, clip, AdamW)", "",
       "| config | implementation | tokens/s | ms/step | step 0 ms | GFLOP/s | % of sgemm peak | peak RSS MB | vs PyTorch fp32 | vs PyTorch bf16 |",
       "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for cfg in ("S", "G"):
    t32 = R[f"train-{cfg}-pytorch-fp32"]["tokens_per_s"]
    t16 = R[f"train-{cfg}-pytorch-bf16"]["tokens_per_s"]
    for key, label in (("iqtrain-fp32", "iqtrain fp32"), ("iqtrain-bf16", "iqtrain --matmul-precision bf16"),
                       ("iqtrain-lambda0", "iqtrain fp32, lambda 0"), ("iqtrain-1thread", "iqtrain fp32, 1 thread"),
                       ("pytorch-fp32", "PyTorch fp32"), ("pytorch-bf16", "PyTorch bf16 autocast")):
        r = R[f"train-{cfg}-{key}"]
        prec = r.get("precision", "")
        if key == "iqtrain-bf16" and prec != "bf16":
            label += f" (ran {prec}: no bf16 matmul here)"
        pf = f"{100 * r['peak_fraction']:.0f}% of {r['peak_gflops']:.0f}" if "peak_fraction" in r else ""
        out.append(f"| {cfg} | {label} | {r['tokens_per_s']:.0f} | {r['ms_per_step']:.0f} | {r['first_step_ms']:.0f} | "
                   f"{r['gflops']:.1f} | {pf} | {r['peak_rss_mb']:.0f} | {r['tokens_per_s'] / t32:.2f}x | "
                   f"{r['tokens_per_s'] / t16:.2f}x |")
out += ["", "Checks against the targets (ratios within this run):", ""]
for cfg in ("S", "G"):
    f32 = R[f"train-{cfg}-iqtrain-fp32"]
    l0 = R[f"train-{cfg}-iqtrain-lambda0"]
    t1 = R[f"train-{cfg}-iqtrain-1thread"]
    out.append(f"- {cfg}: step 0 / steady step = {f32['first_step_ms'] / f32['ms_per_step']:.2f}; "
               f"lambda 0.1 vs 0 time per step = {f32['ms_per_step'] / l0['ms_per_step']:.3f}; "
               f"{nt} threads vs 1 = {t1['ms_per_step'] / f32['ms_per_step']:.2f}x; "
               f"peak RSS iqtrain {f32['peak_rss_mb']:.0f} MB vs PyTorch {R[f'train-{cfg}-pytorch-fp32']['peak_rss_mb']:.0f} MB")
if "train-S-mpi-2ranks-1thread" in R:
    m, one = R["train-S-mpi-2ranks-1thread"], R["train-S-iqtrain-1thread"]
    out += ["", "## MPI data parallelism (config S, 1 thread per rank, mpirun --bind-to core)", "",
            f"1 process: {one['tokens_per_s']:.0f} tokens/s; 2 ranks: {m['tokens_per_s']:.0f} tokens/s; "
            f"scaling efficiency {m['tokens_per_s'] / (2 * one['tokens_per_s']):.0%} "
            f"(gradient all-reduce of {4 * (4 * 12 * 256 * 256 + 8192 * 256 + 1024 * 256) / 1e6:.1f} MB per step)."]
out += ["", "## Generation (greedy, KV cache, config S, prompts of 16 random tokens + 64 new tokens)", "",
        "| batch | iqtrain tokens/s | PyTorch tokens/s | ratio |", "|---:|---:|---:|---:|"]
for b in (1, 8):
    a, p = R[f"generate-S-b{b}-iqtrain"], R[f"generate-S-b{b}-pytorch"]
    out.append(f"| {b} | {a['tokens_per_s']:.0f} | {p['tokens_per_s']:.0f} | {a['tokens_per_s'] / p['tokens_per_s']:.2f}x |")
if "tokenizer" in R:
    t = R["tokenizer"]
    many = [k for k in t if k.startswith("iqtrain_") and k.endswith("threads_mb_s")]
    out += ["", "## Tokenizer (GPT-2 vocabulary)", "",
            f"{t['bytes']} bytes: iqtrain {t['iqtrain_1thread_mb_s']:.1f} MB/s on 1 thread"
            + (f", {t[many[0]]:.1f} MB/s on all threads" if many else "")
            + f"; js-tiktoken {t['js_tiktoken_mb_s']:.2f} MB/s; ratio {t['ratio_1thread']:.1f}x (1 thread)."]
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
