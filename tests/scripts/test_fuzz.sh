#!/usr/bin/env bash
# scripts/fuzz.sh on a fresh copy of the repository (its tracked files, no build/ folder): it builds the
# libFuzzer targets, replays the regression inputs and fuzzes every target for 10 s with executions > 0;
# a libFuzzer run that executes nothing is a failure, not a pass; SECONDS 0 (no limit to libFuzzer) is
# refused. The copy is what a fresh clone sees (the script once wrote its log into build/ before making it).
# usage: test_fuzz.sh IQTRAIN REPO_ROOT   (IQTRAIN is unused; harness: tests/lib/harness.sh)
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init fuzz "$@"
command -v clang >/dev/null || { bad "clang not found (scripts/setup.sh installs it)"; finish; }

C=$W/clone
mkdir -p "$C"
(cd "$ROOT" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$C"
require "setup: a copy of the tracked files without build/" test -f "$C/scripts/fuzz.sh" -a ! -e "$C/build"

run bash "$C/scripts/fuzz.sh" 0
want_rc 64
want_err "usage"
done_check "fuzz.sh 0: exit 64 (libFuzzer would read 0 s as no limit)"

run bash "$C/scripts/fuzz.sh" "${IQTRAIN_FUZZ_SECONDS:-10}"
cp "$W/out" "$W/smoke.out"
want_rc 0
want_file "$C/build/fuzz/configure.log"
targets=$(cd "$C/tests/fuzz" && ls fuzz_*.c | wc -l)
want_eq "$(grep -cE '^fuzz [a-z_]+ +ok +[1-9][0-9]* execs' "$W/smoke.out")" "$targets" "targets fuzzed with executions > 0"
done_check "fresh clone: fuzz.sh builds in build/fuzz and fuzzes all $targets targets (executions > 0 each)"
sed 's/^/        /' "$W/smoke.out"

# -help=1 makes libFuzzer print its flags and exit 0 without running an input
FUZZ_TARGETS=row FUZZ_ARGS=-help=1 run bash "$C/scripts/fuzz.sh" 1
want_rc 1
want_out "NO RUN"
done_check "a libFuzzer run with no executions (FUZZ_ARGS=-help=1): exit 1, not counted as a pass"

finish
