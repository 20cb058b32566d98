#!/usr/bin/env bash
# tests/cli/test_option_ranges.sh — numeric ranges are declared once, in each command's option table, and
# enforced when parsed: from the command line and from --config alike, exit 64 naming the option and its
# range; --help shows them; the edges of a range are accepted.
#
#   usage: tests/cli/test_option_ranges.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init ranges "$@"

# command, option, a value outside, the range as the table states it
while read -r cmd opt val range; do
    [ "$cmd" = train ] && args=(--dry-run --tokenizer x data.jsonl) || args=()
    [ "$cmd" = eval ] && args=(--model m --data d)
    [ "$cmd" = generate ] && args=(--model m --prompt x)
    [ "$cmd" = train-tokenizer ] && args=(--out o d)
    run "$BIN" "$cmd" "--$opt" "$val" "${args[@]}"
    want_rc 64
    want_err "--$opt must be in $range, got $val"
    done_check "$cmd --$opt $val is refused: must be in $range"
done <<'T'
train threads 0 [1,1024]
train threads 1025 [1,1024]
train batch-size 0 [1,inf)
train gamma 1.5 [0,1]
train beta2 1 [0,1)
train eps 0 (0,inf)
train eval-split 1 [0,1)
train n-layer 300 [1,256]
eval batch-size 0 [1,inf)
eval beam 65 [0,64]
generate top-p 0 (0,1]
generate num-samples 0 [1,4096]
tokenize max-seq-len -1 [0,inf)
train-tokenizer vocab-size 256 [257,1000000]
bench threads 0 [1,1024]
T

printf '{"batch-size": 0}\n' >cfg.json
run "$BIN" train --config cfg.json --dry-run --tokenizer x data.jsonl
want_rc 64
want_err "--batch-size must be in [1,inf)"
done_check "a --config value outside its range is refused the same way"

run "$BIN" train --help
want_rc 0
want_out "(in [1,1024])"
done_check "--help shows the ranges"

# the edges are inside: these fail later (no such tokenizer: 66), not on the range
run "$BIN" train --dry-run --gamma 1 --beta1 0 --eval-split 0 --threads 1 --tokenizer "$W/none" data.jsonl
[ "$RC" != 64 ] || WHY+=("an edge value was refused: $(head -c 200 "$W/err")")
done_check "values at the closed edges of a range are accepted"

finish
