#!/usr/bin/env bash
# tests/structure/test_structure.sh — the structure the code promises (issue #13): no function in src/ longer
# than 150 lines, and every public header compiles when included twice (whole include guards, no
# declarations outside them).
#
#   usage: tests/structure/test_structure.sh IQTRAIN_BINARY REPO_ROOT   (the binary is not used)
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init structure "$@"

run "$PY" "$ROOT/tests/structure/function_lengths.py" "$ROOT/src" --max 150
want_rc 0
cat "$W/out"
done_check "no function in src/ is longer than 150 lines"

CC=${CC:-cc}
CJSON=$(pkg-config --cflags libcjson 2>/dev/null)
n=0
for h in "$ROOT"/include/iqtrain/*.h; do
    name=$(basename "$h")
    printf '#include "iqtrain/%s"\n#include "iqtrain/%s"\nint main(void) { return 0; }\n' "$name" "$name" >"$W/twice.c"
    # shellcheck disable=SC2086
    if ! "$CC" -std=c11 -D_GNU_SOURCE -Wall -Werror -fsyntax-only -I "$ROOT/include" $CJSON "$W/twice.c" 2>"$W/err"; then
        WHY+=("$name does not compile when included twice: $(head -c 300 "$W/err")")
    fi
    n=$((n + 1))
done
[ "$n" -ge 20 ] || WHY+=("only $n public headers found")
echo "# $n public headers"
done_check "every public header compiles when included twice"

finish
