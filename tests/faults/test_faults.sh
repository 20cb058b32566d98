#!/usr/bin/env bash
# Faults: a process killed (SIGKILL) at every named point of a checkpoint save and mid-step, and by real
# kill -9 at seeded moments, always continues with --resume auto to the same metrics rows as an
# uninterrupted run (DESIGN §7); a failed write (disk full) exits 74 with the previous checkpoint intact and
# no temp files; a corrupt or truncated checkpoint is refused naming the file.
# usage: test_faults.sh IQTRAIN REPO_ROOT   (needs a build configured with -DIQTRAIN_FAULTS=ON; else exit 77)
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init faults "$@"
# The fault points exist only in a build configured with -DIQTRAIN_FAULTS=ON. Elsewhere this script skips
# (exit 77), unless ctest says the build was configured with them (IQTRAIN_EXPECT_FAULTS=ON): then a
# binary without them is a failure.
if ! faults_compiled_in; then
  if [ "${IQTRAIN_EXPECT_FAULTS:-OFF}" = ON ]; then
    bad "fault injection: configured with IQTRAIN_FAULTS=ON but 'iqtrain --version' does not report it"
    finish
  fi
  skip "no fault injection in this build (configure with -DIQTRAIN_FAULTS=ON, as scripts/test.sh's ASan build does)"
fi
zcat "$ROOT/data/arith/train.jsonl.gz" | head -120 > "$W/train.jsonl"
"$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$W/train.jsonl" > "$W/tok.log" 2>&1
rc=$?
require "setup: train-tokenizer exits 0 (got $rc) and writes tok/tokenizer.json" test $rc -eq 0 -a -f "$W/tok/tokenizer.json"
ARGS=(--preset tiny --tokenizer "$W/tok" --max-steps 12 --batch-size 4 --log-every 1 --save-every 3 --eval-every 6
      --eval-split 0.1 --threads 2 --seed 7)
train() { "$BIN" "${ARGS[@]}" "$@" "$W/train.jsonl"; }

# rows of metrics.jsonl without the timing fields
rows() {
  /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    j.pop("elapsed_s", None); j.pop("tokens_per_s", None)
    print(json.dumps(j, sort_keys=True))' "$1"
}
# checkpoints_are DIR "STEP..." : the complete checkpoints of DIR are exactly checkpoint-STEP... (none when
# the list is empty: said, not assumed) and every one of them loads; prints what differs
checkpoints_are() {
  local have want d
  have=$(cd "$1" && ls -d checkpoint-* 2>/dev/null | sed 's/^checkpoint-//' | sort -n | tr '\n' ' ')
  want=$(printf '%s\n' $2 | sort -n | tr '\n' ' ')
  if [ "${have% }" != "${want% }" ]; then
    echo "        checkpoints: [${have% }], expected [${want% }]"
    return 1
  fi
  for d in $2; do
    "$BIN" eval --model "$1/checkpoint-$d" --data "$W/train.jsonl" --batch-size 8 --json > /dev/null 2>&1 ||
      { echo "        checkpoint-$d does not load"; return 1; }
  done
}

train --out "$W/ref" > /dev/null 2>&1
require "reference run exits 0" test $? -eq 0
rows "$W/ref/metrics.jsonl" > "$W/ref.rows"
check "reference run has 12 train rows" test "$(grep -c '"type": "train"' "$W/ref.rows")" -eq 12

# ---- SIGKILL at each named point, at a few hit counts, then --resume auto. After each kill the complete
# checkpoints are exactly those saved before it (--save-every 3, the newest 3 kept; a killed save leaves a
# temp folder that must not count)
while read -r spec want; do
  out="$W/k-${spec/:/-}"
  IQTRAIN_FAULT=$spec train --out "$out" > /dev/null 2> "$out.err"
  rc=$?
  if [ $rc -ne 137 ]; then bad "$spec: killed (exit $rc)"; continue; fi
  check "$spec: the complete checkpoints are [$want] and load; no temp folder counts" checkpoints_are "$out" "$want"
  train --out "$out" --resume auto > /dev/null 2> "$out.err2"
  rc=$?
  check "$spec: --resume auto completes (exit $rc)" test $rc -eq 0
  rows "$out/metrics.jsonl" > "$out.rows"
  check "$spec: metrics rows equal the uninterrupted run's" cmp -s "$W/ref.rows" "$out.rows"
  check "$spec: no temp files left" test -z "$(find "$out" -name '*.tmp-*')"
done <<'EOF_SPECS'
ckpt-begin:1
ckpt-begin:3 3 6
ckpt-file:1
ckpt-file:9
ckpt-file:14 3
ckpt-before-rename:2 3
ckpt-after-rename:1 3
ckpt-after-rename:4 3 6 9 12
step-mid:1
step-mid:5 3
step-mid:11 3 6 9
final-before-rename:1 6 9 12
EOF_SPECS

# ---- real kill -9 at seeded moments: after the K-th metrics row (K seeded) and a seeded 0-40 ms more.
# The kill must land on a live run (exit status 137, no final/): a run that had already finished proves
# nothing, so it is tried again from an earlier row, and fails if no kill ever hit.
# rows_reached FILE K PID: wait until FILE has K lines or PID has ended
rows_reached() {
  local i
  for ((i = 0; i < 6000; i++)); do # up to 60 s
    [ "$(wc -l 2>/dev/null < "$1")" -ge "$2" ] 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.01
  done
}
RANDOM=42
for i in 1 2 3; do
  out="$W/kill9-$i"
  k=$(( (RANDOM % 9) + 1 ))
  ms=$(( RANDOM % 5 ))0
  for attempt in 1 2 3; do
    rm -rf "$out"
    train --out "$out" > /dev/null 2>&1 &
    pid=$!
    track_pid $pid
    rows_reached "$out/metrics.jsonl" "$k" $pid
    sleep "0.0$ms"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    [ $rc -eq 137 ] || [ $attempt -eq 3 ] && break
    echo "      (kill -9 #$i after row $k: the run had ended, exit $rc; again from row 1)"
    k=1 ms=0
  done
  check "kill -9 #$i after metrics row $k + ${ms} ms: the run was alive when killed (exit $rc, no final/)" \
    test $rc -eq 137 -a ! -d "$out/final"
  train --out "$out" --resume auto > /dev/null 2>&1
  rc=$?
  check "kill -9 #$i: resume completes (exit $rc)" test $rc -eq 0
  rows "$out/metrics.jsonl" > "$out.rows"
  check "kill -9 #$i: metrics rows equal the uninterrupted run's" cmp -s "$W/ref.rows" "$out.rows"
done

# ---- disk full: the N-th file write fails
for n in 1 5 14; do
  out="$W/full-$n"
  train --out "$out" --max-steps 6 > /dev/null 2>&1
  check "write failure #$n: the 6-step run before it exits 0" test $? -eq 0
  IQTRAIN_FAULT=write:$n train --out "$out" --resume auto --max-steps 12 > /dev/null 2> "$out.err"
  rc=$?
  check "write failure #$n: exit 74 (got $rc)" test $rc -eq 74
  check "write failure #$n: the message names the file and the reason" grep -qE "No space left on device" "$out.err"
  check "write failure #$n: no temp files left" test -z "$(find "$out" -name '*.tmp-*')"
  check "write failure #$n: the previous checkpoints still load, no other is complete" checkpoints_are "$out" "3 6"
  check "write failure #$n: checkpoint-6 survives" test -d "$out/checkpoint-6"
  train --out "$out" --resume auto --max-steps 12 > /dev/null 2>&1
  check "write failure #$n: a later --resume auto completes" test $? -eq 0
done

# ---- a real file-size limit (ulimit -f) with SIGXFSZ ignored: the write fails with EFBIG
out="$W/ulimit"
train --out "$out" --max-steps 3 > /dev/null 2>&1
check "ulimit -f: the 3-step run before it exits 0" test $? -eq 0
( trap '' XFSZ; ulimit -f 64; "$BIN" "${ARGS[@]}" --out "$out" --resume auto --max-steps 6 "$W/train.jsonl" > /dev/null 2> "$out.err" )
rc=$?
check "ulimit -f: exit 74 (got $rc)" test $rc -eq 74
check "ulimit -f: checkpoint-3 intact (the only complete one) and loads" checkpoints_are "$out" "3"
check "ulimit -f: no temp files left" test -z "$(find "$out" -name '*.tmp-*')"

# ---- corrupt checkpoints are refused naming the file
cp -r "$W/ref/checkpoint-12" "$W/flip"
/usr/bin/python3 -c '
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)' "$W/flip/model.safetensors"
train --out "$W/r-flip" --resume "$W/flip" > /dev/null 2> "$W/flip.err"
rc=$?
check "flipped byte: exit 65 (got $rc)" test $rc -eq 65
check "flipped byte: the message names model.safetensors" grep -q "model.safetensors" "$W/flip.err"
cp -r "$W/ref/checkpoint-12" "$W/trunc"
truncate -s 100 "$W/trunc/optimizer.safetensors"
train --out "$W/r-trunc" --resume "$W/trunc" > /dev/null 2> "$W/trunc.err"
rc=$?
check "truncated file: exit 65 (got $rc)" test $rc -eq 65
check "truncated file: the message names optimizer.safetensors" grep -q "optimizer.safetensors" "$W/trunc.err"

finish
