#!/usr/bin/env bash
# tests/mpi/test_mpi.sh — data-parallel training over MPI (issue: scale-out; DESIGN §5, §7), through mpirun
# and the iqtrain binary of an -DIQTRAIN_MPI=ON build.
#
#   usage: tests/mpi/test_mpi.sh IQTRAIN_BINARY REPO_ROOT
#
# 2 ranks give the same per-step losses as 1 process with the same global batch (1e-5 relative) for
# lambda 0 and 0.1; a 2-rank checkpoint resumes on 1 rank and a 1-rank checkpoint on 2 (with the warning);
# a rank killed mid-step ends the job within seconds with a non-zero exit, the survivor saves nothing, and
# --resume auto continues from the last complete checkpoint to the same losses as an uninterrupted run.
# Online IQLearn: 2 ranks sample what 1 process samples, and a 2-rank resume between refreshes is bit-exact.
# Tiny preset and 8-row batches: about a minute on 2 cores.
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init mpi "$@"
# CI runs as root in a container: OpenMPI refuses root unless told, and its shared-memory single-copy
# mechanism (CMA) needs ptrace rights a container lacks
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1
# under ASan: OpenMPI keeps allocations until exit; keep its plugins loaded and unwind fully so that the
# suppressions in lsan_mpi.supp can name the library every such allocation comes from
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$ROOT/tests/mpi/lsan_mpi.supp:fast_unwind_on_malloc=0"
MPIRUN=(mpirun -np 2 --bind-to none)

# data and tokenizer: 400 rows of data/arith, a 300-id tokenizer
zcat "$ROOT/data/arith/train.jsonl.gz" | head -400 > train.jsonl
"$BIN" train-tokenizer --vocab-size 300 --out tok train.jsonl 2>/dev/null
require "setup: train-tokenizer exits 0 and writes tok/tokenizer.json" test $? -eq 0 -a -f tok/tokenizer.json
COMMON=(--tokenizer tok --preset tiny --batch-size 8 --warmup 2 --lr 3e-3 --log-every 1 --eval-every 1000
        --threads 1 train.jsonl)

# losses A B TOL [FROM]: every train row of metrics A and B (steps >= FROM) agrees to TOL relative
losses() {
    $PY - "$1" "$2" "$3" "${4:-0}" <<'PY' || WHY+=("losses of $1 and $2 differ beyond $3 (see above)")
import json, sys
a, b, tol, frm = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
def rows(p):
    return {r["step"]: r for r in map(json.loads, open(p)) if r["type"] == "train" and r["step"] >= frm}
A, B = rows(a), rows(b)
assert A and sorted(A) == sorted(B), f"steps differ: {sorted(A)} vs {sorted(B)}"
worst = 0.0
for s in A:
    for k in ("loss", "nll", "td", "grad_norm"):
        x, y = A[s][k], B[s][k]
        worst = max(worst, abs(x - y) / max(abs(x), 1e-12))
print(f"      {len(A)} steps, worst relative difference {worst:.2e}")
assert worst <= tol, worst
PY
}

for lam in 0 0.1; do
    "$BIN" "${COMMON[@]}" --lambda $lam --max-steps 8 --save-every 4 --out "one-$lam" 2>/dev/null
    rc1=$?
    "${MPIRUN[@]}" "$BIN" "${COMMON[@]}" --lambda $lam --max-steps 8 --save-every 4 --out "two-$lam" 2> "two-$lam.err"
    rc2=$?
    [ $rc1 = 0 ] && [ $rc2 = 0 ] || WHY+=("exit codes $rc1 (1 process) and $rc2 (2 ranks)")
    [ -f "two-$lam/final/model.safetensors" ] || WHY+=("no final/ from the 2-rank run")
    grep -q '"world_size":[[:space:]]*2' "two-$lam/run.json" 2>/dev/null || WHY+=("run.json does not record world_size 2")
    grep -q '"world_size":[[:space:]]*2' "two-$lam/checkpoint-4/trainer_state.json" 2>/dev/null ||
        WHY+=("the checkpoint does not record world_size 2")
    n=$(grep -c '"type":"train"' "two-$lam/metrics.jsonl" 2>/dev/null)
    [ "$n" = 8 ] || WHY+=("metrics.jsonl has $n train rows, not 8 (one writer: rank 0)")
    losses "one-$lam/metrics.jsonl" "two-$lam/metrics.jsonl" 1e-5
    done_check "lambda $lam: 2 ranks = 1 process with the same global batch (8 steps, to 1e-5)"
done

# a 2-rank checkpoint resumed on 1 rank, a 1-rank checkpoint resumed on 2 ranks
"$BIN" "${COMMON[@]}" --lambda 0.1 --max-steps 8 --save-every 4 --out ref 2>/dev/null
cp -r two-0.1 a && rm -rf a/checkpoint-8 a/final && $PY - a/metrics.jsonl <<'PY'
import json, sys
rows = [l for l in open(sys.argv[1]) if json.loads(l)["step"] <= 4]
open(sys.argv[1], "w").writelines(rows)
PY
"$BIN" "${COMMON[@]}" --lambda 0.1 --max-steps 8 --save-every 4 --out a --resume auto 2> a.err
rc=$?
[ $rc = 0 ] || WHY+=("exit $rc")
grep -q "no longer bit-exact" a.err || WHY+=("no warning about the world size change")
losses ref/metrics.jsonl a/metrics.jsonl 1e-5 5
done_check "a 2-rank checkpoint resumes on 1 process: warns, same losses (steps 5-8, to 1e-5)"

cp -r ref b && rm -rf b/checkpoint-8 b/final && $PY - b/metrics.jsonl <<'PY'
import json, sys
rows = [l for l in open(sys.argv[1]) if json.loads(l)["step"] <= 4]
open(sys.argv[1], "w").writelines(rows)
PY
"${MPIRUN[@]}" "$BIN" "${COMMON[@]}" --lambda 0.1 --max-steps 8 --save-every 4 --out b --resume auto 2> b.err
rc=$?
[ $rc = 0 ] || WHY+=("exit $rc")
grep -q "no longer bit-exact" b.err || WHY+=("no warning about the world size change")
losses ref/metrics.jsonl b/metrics.jsonl 1e-5 5
done_check "a 1-process checkpoint resumes on 2 ranks: warns, same losses (steps 5-8, to 1e-5)"

# online IQLearn (issue #17): each rank samples for its own rows with per-row generators, so 2 ranks draw the samples
# 1 process draws; the samples of every rank are in rank 0's checkpoint: a resume between refreshes is bit-exact
ONL=(--lambda 0.1 --online-mix 0.5 --online-every 3 --online-max-new-tokens 24 --max-steps 8 --save-every 4)
"$BIN" "${COMMON[@]}" "${ONL[@]}" --out on1 2>/dev/null
rc1=$?
"${MPIRUN[@]}" "$BIN" "${COMMON[@]}" "${ONL[@]}" --out on2 2> on2.err
rc2=$?
[ $rc1 = 0 ] && [ $rc2 = 0 ] || WHY+=("exit codes $rc1 (1 process) and $rc2 (2 ranks)")
losses on1/metrics.jsonl on2/metrics.jsonl 1e-5
cp -r on2 onr && rm -rf onr/final onr/checkpoint-8
"${MPIRUN[@]}" "$BIN" "${COMMON[@]}" "${ONL[@]}" --out onr --resume onr/checkpoint-4 2> onr.err
rc=$?
[ $rc = 0 ] || WHY+=("resume: exit $rc: $(tail -2 onr.err)")
cmp <(grep '"type":"train"' on2/metrics.jsonl | sed 's/"elapsed_s":[^,]*,//; s/,"tokens_per_s":[^,}]*//') \
    <(grep '"type":"train"' onr/metrics.jsonl | sed 's/"elapsed_s":[^,]*,//; s/,"tokens_per_s":[^,}]*//') >/dev/null ||
    WHY+=("the resumed 2-rank online run's train rows differ from the uninterrupted one")
done_check "online: 2 ranks = 1 process (to 1e-5); a 2-rank resume between refreshes is bit-exact"

# a rank killed in the middle of step 6 (after its backward pass): the job ends within seconds (needs fault injection: IQTRAIN_FAULTS=ON builds)
if faults_compiled_in; then
    t0=$(date +%s)
    IQTRAIN_FAULT=step-mid:6 IQTRAIN_FAULT_RANK=1 timeout 60 "${MPIRUN[@]}" "$BIN" "${COMMON[@]}" --lambda 0.1 \
        --max-steps 10 --save-every 2 --out k 2> k.err
    rc=$?
    dt=$(($(date +%s) - t0))
    [ $rc != 0 ] && [ $rc != 124 ] || WHY+=("exit $rc (124 = hung until the timeout)")
    [ $dt -le 20 ] || WHY+=("took $dt s")
    [ -d k/checkpoint-4 ] || WHY+=("checkpoint-4 is gone")
    [ ! -d k/checkpoint-6 ] || WHY+=("a checkpoint-6 was saved after the failure")
    ls -a k | grep -q '\.tmp-' && WHY+=("a temp folder was left: $(ls -a k | tr '\n' ' ')")
    echo "      exit $rc after $dt s"
    done_check "a rank killed mid-step: the job exits non-zero within 20 s, no save after the failure"

    "${MPIRUN[@]}" "$BIN" "${COMMON[@]}" --lambda 0.1 --max-steps 10 --save-every 2 --out k --resume auto 2> k2.err
    rc=$?
    [ $rc = 0 ] || WHY+=("exit $rc: $(tail -2 k2.err)")
    grep -q "resuming .*checkpoint-4" k2.err || WHY+=("did not resume checkpoint-4: $(grep resum k2.err)")
    "${MPIRUN[@]}" "$BIN" "${COMMON[@]}" --lambda 0.1 --max-steps 10 --save-every 2 --out kref 2>/dev/null
    cmp <(grep '"type":"train"' kref/metrics.jsonl | sed 's/"elapsed_s":[^,]*,//; s/,"tokens_per_s":[^,}]*//') \
        <(grep '"type":"train"' k/metrics.jsonl | sed 's/"elapsed_s":[^,]*,//; s/,"tokens_per_s":[^,}]*//') >/dev/null ||
        WHY+=("the resumed run's train rows differ from an uninterrupted 2-rank run")
    done_check "--resume auto after the failure: continues from checkpoint-4, bit-exact with an uninterrupted 2-rank run"
else
    skip_check "a rank killed mid-step" "no fault injection in this build (IQTRAIN_FAULTS=OFF)"
    skip_check "--resume auto after the failure" "no fault injection in this build (IQTRAIN_FAULTS=OFF)"
fi

# SIGTERM to the ranks themselves: they finish the step, agree to stop, rank 0 saves, all exit 143
"${MPIRUN[@]}" "$BIN" "${COMMON[@]}" --lambda 0.1 --max-steps 100000 --save-every 100000 --out sig > /dev/null 2> sig.err &
MP=$!
for _ in $(seq 100); do grep -q "^step" sig.err 2>/dev/null && break; sleep 0.1; done
pkill -TERM -f "^$BIN .*--out sig"
wait $MP
rc=$?
[ $rc = 143 ] || WHY+=("mpirun exit $rc, expected 143")
n=$(ls -d sig/checkpoint-* 2>/dev/null | wc -l)
[ "$n" = 1 ] || WHY+=("$n checkpoints after the stop, expected 1")
grep -q "terminated: saved checkpoint-" sig.err || WHY+=("no 'saved checkpoint' message: $(tail -3 sig.err)")
ck=$(ls -d sig/checkpoint-* 2>/dev/null | head -1)
"$BIN" eval --model "$ck" --data train.jsonl --limit 8 > /dev/null 2>&1 || WHY+=("$ck does not load")
done_check "SIGTERM to every rank: the step finishes, rank 0 saves one checkpoint, the job exits 143"

finish
