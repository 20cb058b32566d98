#!/usr/bin/env bash
# bf16 against fp32 on the demo's training (scripts/demo.sh, step 6, lambda 0.1): the same run with
# --matmul-precision fp32 and bf16 (oneDNN), then the issue-14 checks: training loss within 2% at every
# logged step, final eval nll within 1%. Writes DIR/bf16_numerics.md and exits 1 if a check fails.
#
#   scripts/bf16_numerics.sh [--steps N] [--out DIR]      (defaults: 300, data/results/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${IQTRAIN:-build/release/iqtrain}
STEPS=300
OUT=data/results/bench
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "bf16_numerics: unknown argument $1" >&2; exit 64 ;;
  esac
done
WORK=${WORK:-runs/bf16-numerics}
mkdir -p "$WORK" "$OUT"
[ -f "$WORK/tokenizer/tokenizer.json" ] || [ -d "$WORK/tokenizer" ] ||
  "$BIN" train-tokenizer --vocab-size 1024 --out "$WORK/tokenizer" data/arith/train.jsonl.gz
for p in fp32 bf16; do
  rm -rf "$WORK/$p"
  "$BIN" --lambda 0.1 --tokenizer "$WORK/tokenizer" --preset small --max-steps "$STEPS" --warmup 30 --lr 1e-3 \
    --min-lr 1e-4 --batch-size 16 --log-every 25 --eval-every "$STEPS" --save-every 100000 \
    --eval-data data/arith/eval.jsonl.gz --matmul-precision $p --out "$WORK/$p" data/arith/train.jsonl.gz
done
/usr/bin/python3 - "$WORK" "$OUT/bf16_numerics.md" "$STEPS" <<'PY'
import json, sys
work, md, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rows(p):
    return [json.loads(l) for l in open(f"{work}/{p}/metrics.jsonl")]
f32, b16 = rows("fp32"), rows("bf16")
tr = lambda rs: {r["step"]: r["loss"] for r in rs if r.get("type") == "train" and "loss" in r}
ev = lambda rs: [r for r in rs if r.get("type") == "eval"]
t32, t16 = tr(f32), tr(b16)
out = [f"# bf16 against fp32 matmuls: the demo's training ({steps} steps, lambda 0.1, preset small)", "",
       "| step | loss fp32 | loss bf16 | relative difference |", "|---:|---:|---:|---:|"]
worst, ok = 0.0, True
for s in sorted(t32):
    if s not in t16: ok = False; continue
    d = abs(t16[s] - t32[s]) / abs(t32[s]); worst = max(worst, d)
    out.append(f"| {s} | {t32[s]:.4f} | {t16[s]:.4f} | {100 * d:.2f}% |")
e32, e16 = ev(f32)[-1], ev(b16)[-1]
dn = abs(e16["nll"] - e32["nll"]) / abs(e32["nll"])
ok = ok and worst <= 0.02 and dn <= 0.01 and len(t32) > 0
out += ["", f"Training loss: worst relative difference {100 * worst:.2f}% over {len(t32)} logged steps (limit 2%).",
        f"Final eval nll: fp32 {e32['nll']:.5f}, bf16 {e16['nll']:.5f}, relative difference {100 * dn:.3f}% (limit 1%).",
        "", "PASS" if ok else "FAIL"]
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
sys.exit(0 if ok else 1)
PY
