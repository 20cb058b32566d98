#!/usr/bin/env bash
# Faults: a process killed (SIGKILL) at every named point of a checkpoint save and mid-step, and by real
# kill -9 at seeded moments, always continues with --resume auto to the same metrics rows as an
# uninterrupted run (DESIGN §7); a failed write (disk full) exits 74 with the previous checkpoint intact and
# no temp files; a corrupt or truncated checkpoint is refused naming the file.
# usage: test_faults.sh IQTRAIN REPO_ROOT   (needs a test build: fault points are compiled with IQ_FAULTS)
set -u
BIN=$1
ROOT=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }
check() { local n=$1; shift; if "$@"; then ok "$n"; else bad "$n"; fi; }
cd "$ROOT"
zcat data/arith/train.jsonl.gz | head -120 > "$T/train.jsonl"
"$BIN" train-tokenizer --vocab-size 300 --out "$T/tok" "$T/train.jsonl" 2>/dev/null
ARGS=(--preset tiny --tokenizer "$T/tok" --max-steps 12 --batch-size 4 --log-every 1 --save-every 3 --eval-every 6
      --eval-split 0.1 --threads 2 --seed 7)
train() { "$BIN" "${ARGS[@]}" "$@" "$T/train.jsonl"; }

# rows of metrics.jsonl without the timing fields
rows() {
  /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    j.pop("elapsed_s", None); j.pop("tokens_per_s", None)
    print(json.dumps(j, sort_keys=True))' "$1"
}
all_checkpoints_verify() { # every checkpoint-* folder of $1 loads (no half-written one)
  local d
  for d in "$1"/checkpoint-*; do
    [ -d "$d" ] || continue
    "$BIN" eval --model "$d" --data "$T/train.jsonl" --batch-size 8 --json > /dev/null 2>&1 || return 1
  done
  return 0
}

train --out "$T/ref" > /dev/null 2>&1 || bad "reference run"
rows "$T/ref/metrics.jsonl" > "$T/ref.rows"
check "reference run has 12 train rows" test "$(grep -c '"type": "train"' "$T/ref.rows")" -eq 12

# ---- SIGKILL at each named point, at a few hit counts, then --resume auto
for spec in ckpt-begin:1 ckpt-begin:3 ckpt-file:1 ckpt-file:9 ckpt-file:14 ckpt-before-rename:2 ckpt-after-rename:1 \
            ckpt-after-rename:4 step-mid:1 step-mid:5 step-mid:11 final-before-rename:1; do
  out="$T/k-${spec/:/-}"
  IQTRAIN_FAULT=$spec train --out "$out" > /dev/null 2> "$out.err"
  rc=$?
  if [ $rc -ne 137 ]; then bad "$spec: killed (exit $rc)"; continue; fi
  check "$spec: no temp folder is mistaken for a checkpoint" all_checkpoints_verify "$out"
  train --out "$out" --resume auto > /dev/null 2> "$out.err2"
  rc=$?
  check "$spec: --resume auto completes (exit $rc)" test $rc -eq 0
  rows "$out/metrics.jsonl" > "$out.rows"
  check "$spec: metrics rows equal the uninterrupted run's" cmp -s "$T/ref.rows" "$out.rows"
  check "$spec: no temp files left" test -z "$(find "$out" -name '*.tmp-*')"
done

# ---- real kill -9 at seeded moments
RANDOM=42
for i in 1 2 3; do
  out="$T/kill9-$i"
  delay=$(( (RANDOM % 20) + 3 ))   # tenths of a second
  train --out "$out" > /dev/null 2>&1 &
  pid=$!
  sleep "$(printf '0.%d' "$delay" 2>/dev/null || echo 0.5)"
  [ "$delay" -ge 10 ] && sleep "$((delay / 10))"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  train --out "$out" --resume auto > /dev/null 2>&1
  rc=$?
  check "kill -9 #$i after ~${delay}00 ms: resume completes (exit $rc)" test $rc -eq 0
  rows "$out/metrics.jsonl" > "$out.rows"
  check "kill -9 #$i: metrics rows equal the uninterrupted run's" cmp -s "$T/ref.rows" "$out.rows"
done

# ---- disk full: the N-th file write fails
for n in 1 5 14; do
  out="$T/full-$n"
  train --out "$out" --max-steps 6 > /dev/null 2>&1     # checkpoints 3 and 6 exist
  before=$(ls -d "$out"/checkpoint-* | sort)
  IQTRAIN_FAULT=write:$n train --out "$out" --resume auto --max-steps 12 > /dev/null 2> "$out.err"
  rc=$?
  check "write failure #$n: exit 74 (got $rc)" test $rc -eq 74
  check "write failure #$n: the message names the file and the reason" grep -qE "No space left on device" "$out.err"
  check "write failure #$n: no temp files left" test -z "$(find "$out" -name '*.tmp-*')"
  check "write failure #$n: the previous checkpoints still load" all_checkpoints_verify "$out"
  check "write failure #$n: checkpoint-6 survives" test -d "$out/checkpoint-6"
  train --out "$out" --resume auto --max-steps 12 > /dev/null 2>&1
  check "write failure #$n: a later --resume auto completes" test $? -eq 0
done

# ---- a real file-size limit (ulimit -f) with SIGXFSZ ignored: the write fails with EFBIG
out="$T/ulimit"
train --out "$out" --max-steps 3 > /dev/null 2>&1
( trap '' XFSZ; ulimit -f 64; "$BIN" "${ARGS[@]}" --out "$out" --resume auto --max-steps 6 "$T/train.jsonl" > /dev/null 2> "$out.err" )
rc=$?
check "ulimit -f: exit 74 (got $rc)" test $rc -eq 74
check "ulimit -f: checkpoint-3 intact" all_checkpoints_verify "$out"
check "ulimit -f: no temp files left" test -z "$(find "$out" -name '*.tmp-*')"

# ---- corrupt checkpoints are refused naming the file
cp -r "$T/ref/checkpoint-12" "$T/flip"
/usr/bin/python3 -c '
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)' "$T/flip/model.safetensors"
train --out "$T/r-flip" --resume "$T/flip" > /dev/null 2> "$T/flip.err"
rc=$?
check "flipped byte: exit 65 (got $rc)" test $rc -eq 65
check "flipped byte: the message names model.safetensors" grep -q "model.safetensors" "$T/flip.err"
cp -r "$T/ref/checkpoint-12" "$T/trunc"
truncate -s 100 "$T/trunc/optimizer.safetensors"
train --out "$T/r-trunc" --resume "$T/trunc" > /dev/null 2> "$T/trunc.err"
rc=$?
check "truncated file: exit 65 (got $rc)" test $rc -eq 65
check "truncated file: the message names optimizer.safetensors" grep -q "optimizer.safetensors" "$T/trunc.err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
