# tests/lib/harness.sh — the shared harness of the shell tests (sourced, not run).
#
#   source "$(dirname "$0")/../lib/harness.sh"
#   harness_init NAME "$@"        # usage: SCRIPT IQTRAIN_BINARY REPO_ROOT
#   ... checks ...
#   finish                        # last line: "N passed, M failed[, K skipped]"; exit 1 when any failed
#
# harness_init sets BIN and ROOT (absolute), PY (/usr/bin/python3), W (a fresh temp folder, the current
# directory, removed on exit; IQTRAIN_KEEP_TMP=1 keeps it) and OMP_WAIT_POLICY=passive unless set.
#
# Two ways to write a check, both printing one line "ok    NAME" or "FAIL  NAME":
#   check NAME CMD...         passes when CMD exits 0
#   (assertions) + done_check NAME
#                             assertions (want_rc, want_err, ...) append reasons to WHY; done_check passes
#                             when none did, else prints the reasons and the start of the last stderr
# require NAME CMD...         like check, but a failure ends the script at once (for setup steps the rest
#                             depends on, e.g. train-tokenizer)
# skip_check NAME REASON      a check that cannot run here: counted and printed as "skip  NAME: REASON"
# skip REASON                 the whole script cannot run here: prints the reason and the closing line,
#                             exits 77 (ctest SKIP_RETURN_CODE; exit 1 instead if a check already failed)
#
# A script that ends without calling finish or skip (a stray exit, a crash of bash) fails, and so does one
# that ran no check at all: a test that cannot fail must not pass.
#
# run [--in FILE] CMD...      stdout -> $W/out, stderr -> $W/err, exit code -> RC; a sanitizer report on
#                             stderr becomes a failure reason of the current check
# spawn ID [--in FILE] CMD... like run, in the background (IQTRAIN_TEST_JOBS at once, default the CPUs);
# collect ID                  then makes job ID's output the current one (RC, $W/out, $W/err)
# track_pid PID               a background process killed (-9) on exit if still running

PASS=0
FAIL=0
SKIP=0
WHY=()
RC=0
PY=/usr/bin/python3
_HARNESS_DONE=0
_HARNESS_PIDS=()

harness_init() {
    local name=$1
    shift
    if [ $# -ne 2 ]; then
        echo "usage: $0 IQTRAIN_BINARY REPO_ROOT" >&2
        exit 2
    fi
    BIN=$(realpath "$1")
    ROOT=$(realpath "$2")
    # Waiting OpenMP threads sleep instead of spinning: with --threads 2 on a 2-core machine that also runs
    # other tests, spinning workers slow the runs down ~10x. The results do not depend on it.
    export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
    W=$(mktemp -d "${TMPDIR:-/tmp}/iqtrain-$name.XXXXXX") || exit 2
    trap _harness_exit EXIT
    cd "$W" || exit 2
    if [ ! -x "$BIN" ]; then
        bad "setup: $BIN is not an executable"
        finish
    fi
}

_harness_exit() {
    local rc=$? p
    for p in "${_HARNESS_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ "${IQTRAIN_KEEP_TMP:-0}" = 1 ]; then
        echo "(kept $W)"
    else
        chmod -R u+rwX "$W" 2>/dev/null
        rm -rf "$W"
    fi
    if [ "$_HARNESS_DONE" = 0 ]; then
        echo "FAIL  the script ended (exit $rc) before its closing line"
        echo "$PASS passed, $((FAIL + 1)) failed"
        [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] || rc=1
        exit "$rc"
    fi
}

# ---------------------------------------------------------------------------------------------------
# verdicts

ok() {
    PASS=$((PASS + 1))
    echo "ok    $1"
}
# bad NAME [REASON...]
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL  $1"
    shift
    local w
    for w in "$@"; do echo "        $w"; done
}
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
require() {
    local name=$1
    shift
    if "$@"; then
        ok "$name"
    else
        bad "$name" "a setup step failed: the checks that depend on it cannot run"
        finish
    fi
}
# done_check NAME: the verdict of the assertions made since the last done_check
done_check() {
    if [ ${#WHY[@]} -eq 0 ]; then
        ok "$1"
    else
        bad "$1" "${WHY[@]}"
        if [ -s "$W/err" ]; then
            echo "        stderr: $(grep -v '^step ' "$W/err" | head -c 400 | tr '\n' ' ')"
        fi
    fi
    WHY=()
}
skip_check() {
    SKIP=$((SKIP + 1))
    echo "skip  $1${2:+: $2}"
}
skip() {
    SKIP=$((SKIP + 1))
    echo "SKIP  $1"
    _harness_summary
    _HARNESS_DONE=1
    [ "$FAIL" -eq 0 ] || exit 1
    exit 77
}
_harness_summary() {
    local line="$PASS passed, $FAIL failed"
    [ "$SKIP" -eq 0 ] || line+=", $SKIP skipped"
    echo "$line"
}
finish() {
    wait_all
    if [ $((PASS + FAIL)) -eq 0 ]; then
        bad "no check ran"
    fi
    _harness_summary
    _HARNESS_DONE=1
    [ "$FAIL" -eq 0 ] || exit 1
    exit 0
}

# ---------------------------------------------------------------------------------------------------
# running the binary

run() {
    local in=/dev/null
    if [ "$1" = --in ]; then
        in=$2
        shift 2
    fi
    "$@" <"$in" >"$W/out" 2>"$W/err"
    RC=$?
    san_check
}
san_check() {
    if grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$W/err"; then
        WHY+=("sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error:' "$W/err")")
    fi
}
NPAR=${IQTRAIN_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
NJOBS=0
spawn() {
    local id=$1 in=/dev/null
    shift
    if [ "$1" = --in ]; then
        in=$2
        shift 2
    fi
    ("$@" <"$in" >"$W/job.$id.out" 2>"$W/job.$id.err"; echo $? >"$W/job.$id.rc") &
    NJOBS=$((NJOBS + 1))
    if [ "$NJOBS" -ge "$NPAR" ]; then
        wait -n
        NJOBS=$((NJOBS - 1))
    fi
}
collect() {
    wait_all
    cp "$W/job.$1.out" "$W/out"
    cp "$W/job.$1.err" "$W/err"
    RC=$(cat "$W/job.$1.rc")
    san_check
}
wait_all() {
    if [ "$NJOBS" -gt 0 ]; then
        wait
        NJOBS=0
    fi
}
track_pid() { _HARNESS_PIDS+=("$1"); }
# kill -9 at a chosen moment: runs "$@" in the background (stdout/stderr to $W/out, $W/err) and kills it once
# DIR/metrics.jsonl holds K train rows (or the run exits; 60 s at most); a run that finished first fails the check.
kill_after_rows() { # $1 = K, $2 = the run's folder (--out), rest = the command
    local k=$1 dir=$2 pid i
    shift 2
    "$@" </dev/null >"$W/out" 2>"$W/err" &
    pid=$!
    track_pid "$pid"
    for ((i = 0; i < 1200; i++)); do
        [ "$(grep -c '"type":"train"' "$dir/metrics.jsonl" 2>/dev/null)" -ge "$k" ] 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ ! -d "$dir/final" ] || WHY+=("the run had finished before the kill")
}

# ---------------------------------------------------------------------------------------------------
# assertions (each appends a reason to WHY when it does not hold)

want_rc() { [ "$RC" = "$1" ] || WHY+=("exit $RC, expected $1"); }
want_err() { grep -qF -- "$1" "$W/err" || WHY+=("stderr lacks: $1"); }
not_err() { ! grep -qF -- "$1" "$W/err" || WHY+=("stderr should not contain: $1"); }
want_out() { grep -qF -- "$1" "$W/out" || WHY+=("stdout lacks: $1"); }
want_out_line() { grep -qxF -- "$1" "$W/out" || WHY+=("stdout has no line: $1"); }
not_out() { ! grep -qF -- "$1" "$W/out" || WHY+=("stdout should not contain: $1"); }
want_eq() { [ "$1" = "$2" ] || WHY+=("${3:-value}: got '$1', expected '$2'"); }
want_file() { [ -f "$1" ] || WHY+=("missing file: $1"); }
want_dir() { [ -d "$1" ] || WHY+=("missing folder: $1"); }
want_no() { [ ! -e "$1" ] || WHY+=("should not exist: $1"); }
want_same_file() { cmp -s "$1" "$2" || WHY+=("files differ: $1 $2"); }

# faults_compiled_in: the binary was built with fault injection (IQTRAIN_FAULTS=ON; `iqtrain --version`
# says so)
faults_compiled_in() { "$BIN" --version 2>/dev/null | grep -q "fault injection"; }
# py_has MODULE: $PY can import MODULE
py_has() { "$PY" -c "import $1" 2>/dev/null; }
