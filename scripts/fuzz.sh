#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] — builds the libFuzzer targets of tests/fuzz (clang, ASan+UBSan, in build/fuzz)
# and runs each for SECONDS (default 60) on its corpus, after replaying its regression inputs
# (tests/fuzz/regressions/<target>/: every crash ever found). Prints the executions per target; exits 1
# if any target crashed (naming the saved input) or ran no input at all, 2 if the build failed.
#
# Environment: FUZZ_TARGETS="row safetensors ..." runs only those; FUZZ_PARALLEL=N runs N targets at a
# time (default: the number of CPUs); FUZZ_ARGS adds libFuzzer flags (e.g. "-max_len=65536");
# FUZZ_BUILD_DIR builds elsewhere than build/fuzz (its parent folders are made as needed).
# The seed corpus (tests/fuzz/corpus/<target>/) is copied into build/fuzz/corpus-<target>/, which keeps
# growing from run to run; the repository is not modified. Crash inputs land in build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-60}
# (0 would mean "no time limit" to libFuzzer)
case "$SECS" in '' | *[!0-9]* | 0) echo "usage: scripts/fuzz.sh [SECONDS >= 1]" >&2; exit 64 ;; esac
B=${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}
mkdir -p "$B"
B=$(cd "$B" && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
PAR=${FUZZ_PARALLEL:-$JOBS}

command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/setup.sh installs it)" >&2; exit 2; }
t0=$(date +%s)
echo "== fuzz build (clang, libFuzzer + ASan + UBSan) in $B" >&2
if ! { CC=clang cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DIQTRAIN_FUZZ=ON -DIQTRAIN_TESTS=OFF >"$B/configure.log" 2>&1 \
       || { cat "$B/configure.log" >&2; false; }; } ||
   ! cmake --build "$B" --target fuzz_targets -j"$JOBS" >"$B/build.log" 2>&1; then
  tail -n 40 "$B/build.log" >&2 2>/dev/null || true
  echo "fuzz: build failed (log: $B/build.log)" >&2
  exit 2
fi
echo "fuzz: built in $(($(date +%s) - t0)) s" >&2

if [ -n "${FUZZ_TARGETS:-}" ]; then
  TARGETS=$FUZZ_TARGETS
else
  TARGETS=$(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//' | sort)
fi

# libFuzzer flags shared by every run: memory limits make huge allocations from small inputs show up
# as crashes; a single input may take 30 s at most (quadratic behaviour is a finding too)
COMMON=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=30)
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$B/logs"
# the targets' scratch folders (one per process; left behind by a crashing one): all under one folder that
# goes away with this script, in /dev/shm when possible (many small writes and fsyncs)
TMPROOT=$B
if [ -d /dev/shm ] && [ -w /dev/shm ]; then TMPROOT=/dev/shm; fi
IQ_FUZZ_TMP=$(mktemp -d "$TMPROOT/iqtrain-fuzz-run.XXXXXX")
export IQ_FUZZ_TMP
trap 'rm -rf "$IQ_FUZZ_TMP"' EXIT

# one target: regressions, then fuzzing; writes $B/logs/<t>.result ("ok EXECS REGRESSIONS", "crash FILE" or
# "noexec WHY": libFuzzer exited 0 without running an input, e.g. a flag that only prints help)
run_one() {
  local t=$1 bin=$B/tests/fuzz/fuzz_$1 corpus=$B/corpus-$1 art=$B/artifacts/$1 log=$B/logs/$1.log
  local res=$B/logs/$1.result
  rm -f "$res"
  if [ ! -x "$bin" ]; then echo "crash (no binary $bin)" >"$res"; return; fi
  mkdir -p "$corpus" "$art"
  [ -d "tests/fuzz/corpus/$t" ] && cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  local regs=()
  if [ -d "tests/fuzz/regressions/$t" ]; then
    while IFS= read -r -d '' f; do regs+=("$f"); done < <(find "tests/fuzz/regressions/$t" -type f ! -name '*.md' -print0 | sort -z)
  fi
  if [ "${#regs[@]}" -gt 0 ]; then
    if ! "$bin" "${COMMON[@]}" "${regs[@]}" >"$B/logs/$t.regressions.log" 2>&1; then
      local which
      which=$(grep -o 'Running: .*' "$B/logs/$t.regressions.log" | tail -n 1 | sed 's/^Running: //' || true)
      echo "crash regression ${which:-?} (log: $B/logs/$t.regressions.log)" >"$res"
      return
    fi
  fi
  local rc=0
  # shellcheck disable=SC2086
  "$bin" "${COMMON[@]}" -max_total_time="$SECS" -print_final_stats=1 -close_fd_mask=3 \
    -artifact_prefix="$art/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)
  if [ "$rc" -ne 0 ]; then
    local file
    file=$(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/^Test unit written to //' || true)
    echo "crash ${file:-?} (exit $rc, ${execs:-?} execs; log: $log)" >"$res"
  elif [ "${execs:-0}" -eq 0 ]; then
    echo "noexec (exit 0 but ${execs:-no} executions reported; log: $log)" >"$res"
  else
    echo "ok $execs ${#regs[@]}" >"$res"
  fi
}

echo "== fuzzing $(echo $TARGETS | wc -w) targets, ${SECS} s each, $PAR at a time" >&2
running=0
for t in $TARGETS; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$PAR" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
total=0
for t in $TARGETS; do
  r=$(cat "$B/logs/$t.result" 2>/dev/null || echo "crash (no result)")
  case "$r" in
    ok*)
      set -- $r
      printf 'fuzz %-18s ok     %10d execs  (%d regression inputs replayed)\n' "$t" "$2" "$3"
      total=$((total + $2))
      ;;
    noexec*)
      printf 'fuzz %-18s NO RUN %s\n' "$t" "${r#noexec }"
      failed=1
      ;;
    *)
      printf 'fuzz %-18s CRASH  %s\n' "$t" "${r#crash }"
      failed=1
      ;;
  esac
done
echo "fuzz: $total executions in $(($(date +%s) - t0)) s (build included)"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: a target crashed or ran nothing: reproduce a crash with build/fuzz/tests/fuzz/fuzz_TARGET FILE; add FILE to tests/fuzz/regressions/TARGET/" >&2
  exit 1
fi
