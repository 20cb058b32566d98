#!/usr/bin/env bash
# The README's test command: installs what is missing, builds Release and ASan+UBSan (warnings as
# errors, both with MPI), and runs ctest on both (C unit tests, CLI/data tests, MPI, the Python and
# js-tiktoken references). demo.sh's build is the one without MPI.
# The Release build is configured as users build it, without fault injection: its ctest proves that
# IQTRAIN_FAULT changes nothing (fault_injection_absent) and skips tests/faults (shown as skipped). The
# ASan+UBSan build is the test build (-DIQTRAIN_FAULTS=ON): tests/faults and the killed MPI rank run there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

bash scripts/setup.sh
# ctest runs tests in parallel on a 2-core machine: OpenMP threads that spin while waiting would fight each
# other (10x slower). Sleeping waits cost nothing here; benchmarks leave the default.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

echo "== Release build" >&2
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DIQTRAIN_WERROR=ON -DIQTRAIN_MPI=ON -DIQTRAIN_FAULTS=OFF >/dev/null
cmake --build build/release -j"$JOBS"
echo "== Release tests" >&2
(cd build/release && ctest --output-on-failure -j"$JOBS")

echo "== ASan+UBSan build" >&2
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DIQTRAIN_SANITIZE=ON -DIQTRAIN_WERROR=ON -DIQTRAIN_MPI=ON \
  -DIQTRAIN_FAULTS=ON >/dev/null
cmake --build build/asan -j"$JOBS"
echo "== ASan+UBSan tests" >&2
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
# the js-tiktoken comparison and the script tests do not exercise more of our code: once (above) is enough
# (tests/mpi adds OpenMPI's own leak suppressions, tests/mpi/lsan_mpi.supp). The label "faults" must stay
# in this pass: it is the only build with fault injection.
(cd build/asan && ctest --output-on-failure -j"$JOBS" -LE "js|scripts|fuzz")
echo "== all tests passed (Release and ASan+UBSan)" >&2
