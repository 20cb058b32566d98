#!/usr/bin/env bash
# The shell-test harness and the checks that once could not fail (issue 13, hole 7): a skip exits 77 and
# says so in the closing line; a failed check exits 1; a script that ends early or runs no check fails;
# compare_ids.py fails on files with no compared line; test_cli.sh fails (never passes) without
# python3-regex.
# usage: test_harness.sh IQTRAIN REPO_ROOT
set -u
source "$(dirname "$0")/harness.sh"
harness_init harness "$@"
HARNESS=$ROOT/tests/lib/harness.sh

# script NAME BODY: a test script that sources the harness, then runs BODY
script() {
    printf 'set -u\nsource %q\nharness_init %q "$@"\n%s\n' "$HARNESS" "$1" "$2" > "$W/$1.sh"
}
# outcome NAME RC LAST_LINE: running script NAME exits RC and its last line is LAST_LINE
outcome() {
    run bash "$W/$1.sh" "$BIN" "$ROOT"
    want_rc "$2"
    want_eq "$(tail -n 1 "$W/out")" "$3" "last line"
}

script pass 'check "true is true" true
finish'
outcome pass 0 "1 passed, 0 failed"
done_check "a passing check: exit 0, '1 passed, 0 failed'"

script fail 'check "false is true" false
check "true is true" true
finish'
outcome fail 1 "1 passed, 1 failed"
want_out "FAIL  false is true"
done_check "a failing check: exit 1, 'FAIL  NAME' and '1 passed, 1 failed'"

script assert 'want_eq 1 2 "x"
done_check "1 = 2"
finish'
outcome assert 1 "0 passed, 1 failed"
want_out "x: got '1', expected '2'"
done_check "done_check with a failed assertion: exit 1 with the reason"

script skip 'skip "nothing to test here"
check "never reached" false'
outcome skip 77 "0 passed, 0 failed, 1 skipped"
want_out "SKIP  nothing to test here"
done_check "skip REASON: exit 77 (ctest SKIP_RETURN_CODE), the reason and '1 skipped'"

script skipfail 'check "false is true" false
skip "too late"'
outcome skipfail 1 "0 passed, 1 failed, 1 skipped"
done_check "skip after a failed check: exit 1, not 77"

script skipcheck 'check "true is true" true
skip_check "a check" "not here"
finish'
outcome skipcheck 0 "1 passed, 0 failed, 1 skipped"
want_out "skip  a check: not here"
done_check "skip_check: counted and shown in the closing line"

script early 'check "true is true" true
exit 0'
outcome early 1 "1 passed, 1 failed"
want_out "ended (exit 0) before its closing line"
done_check "a script that exits 0 before finish fails"

script none 'finish'
outcome none 1 "0 passed, 1 failed"
want_out "no check ran"
done_check "a script that ran no check fails"

script req 'require "setup step" false
check "never reached" true
finish'
outcome req 1 "0 passed, 1 failed"
not_out "never reached"
done_check "require: a failed setup step ends the script with exit 1"

script tmp 'echo "$W" > '"$W"'/tmpdir
check "true is true" true
finish'
outcome tmp 0 "1 passed, 0 failed"
[ -s "$W/tmpdir" ] && [ ! -e "$(cat "$W/tmpdir")" ] || WHY+=("the temp folder $(cat "$W/tmpdir") is still there")
done_check "the temp folder is removed on exit"

# ---- compare_ids.py: nothing compared is a failure
CMP=$ROOT/tests/tokenizer/compare_ids.py
: > "$W/empty"
printf '1 2 3\n4 5\n' > "$W/a.ids"
printf '1 2 3\n4 6\n' > "$W/b.ids"
printf 'SKIP\nSKIP\n' > "$W/skip.ids"
run "$PY" "$CMP" "$W/empty" "$W/empty" --corpus "$W/empty"
want_rc 1
want_out "no line was compared"
done_check "compare_ids.py on two empty files: exit 1"
run "$PY" "$CMP" "$W/a.ids" "$W/skip.ids" --corpus "$W/empty" --allow-skip
want_rc 1
done_check "compare_ids.py where every line is SKIP: exit 1"
printf '31\n32\n' > "$W/two.hex"
run "$PY" "$CMP" "$W/a.ids" "$W/a.ids" --corpus "$W/two.hex"
want_rc 0
want_out "compared 2, equal 2"
done_check "compare_ids.py on equal files: exit 0, 2 compared"
run "$PY" "$CMP" "$W/a.ids" "$W/b.ids" --corpus "$W/two.hex"
want_rc 1
want_out "MISMATCH at line 2"
done_check "compare_ids.py on a differing line: exit 1 naming it"

# ---- test_cli.sh without python3-regex: fails at once (a module named regex that cannot be imported
#      shadows the real one)
mkdir -p "$W/noregex"
echo 'raise ImportError("python3-regex hidden by test_harness.sh")' > "$W/noregex/regex.py"
PYTHONPATH=$W/noregex run bash "$ROOT/tests/cli/test_cli.sh" "$BIN" "$ROOT"
want_rc 1
want_out "FAIL  setup: /usr/bin/python3 has the regex module"
done_check "test_cli.sh without python3-regex: exit 1 (it used to skip the oracle comparison and pass)"

finish
