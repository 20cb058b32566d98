#!/usr/bin/env bash
# A build without fault injection (IQTRAIN_FAULTS=OFF, as users build it) ignores IQTRAIN_FAULT: the
# binary does not even hold the variable's name, reports no fault injection, and a short training run with
# every fault point asked for (kill mid-step, at each checkpoint stage, before the final rename; fail the
# first write) completes with exit 0, its final/ folder and the same metrics rows as a run without it.
# usage: test_fault_free.sh IQTRAIN REPO_ROOT   (exit 77 on a build with fault injection: tests/faults)
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init fault-free "$@"
faults_compiled_in && skip "this binary is a test build with fault injection (IQTRAIN_FAULTS=ON)"

run "$BIN" --version
want_rc 0
not_out "fault injection"
done_check "iqtrain --version reports no fault injection"
check "the binary holds no 'IQTRAIN_FAULT' (the variable is never read)" test "$(grep -c IQTRAIN_FAULT "$BIN")" -eq 0

zcat "$ROOT/data/arith/train.jsonl.gz" | head -60 > "$W/train.jsonl"
"$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$W/train.jsonl" 2> "$W/err"
rc=$?
require "setup: train-tokenizer --vocab-size 300 exits 0 (got $rc)" test $rc -eq 0 -a -f "$W/tok/tokenizer.json"

ARGS=(--preset tiny --tokenizer "$W/tok" --max-steps 4 --batch-size 4 --log-every 1 --save-every 2 --threads 2
      --seed 3 "$W/train.jsonl")
FAULTS=step-mid:1,ckpt-begin:1,ckpt-file:1,ckpt-before-rename:1,ckpt-after-rename:1,final-before-rename:1,write:1
run env IQTRAIN_FAULT=$FAULTS "$BIN" "${ARGS[@]}" --out "$W/f"
want_rc 0
want_file "$W/f/final/model.safetensors"
want_dir "$W/f/checkpoint-4"
not_err "fault injection"
done_check "IQTRAIN_FAULT=$FAULTS: the run completes (exit 0) with final/ and checkpoint-4"

run "$BIN" "${ARGS[@]}" --out "$W/plain"
want_rc 0
strip() { sed 's/"elapsed_s":[^,]*,//; s/,"tokens_per_s":[^,}]*//' "$1"; }
[ "$(strip "$W/f/metrics.jsonl")" = "$(strip "$W/plain/metrics.jsonl")" ] || WHY+=("metrics rows differ")
[ -s "$W/plain/metrics.jsonl" ] || WHY+=("no metrics rows")
done_check "the same metrics rows as a run without IQTRAIN_FAULT"

finish
