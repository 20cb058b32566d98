#!/usr/bin/env bash
# tests/cli/test_cli.sh — end-to-end checks of the command line (DESIGN §5) and of the demonstration
# loader (DESIGN §3), run through the iqtrain binary.
#
#   usage: tests/cli/test_cli.sh IQTRAIN_BINARY REPO_ROOT
#
# Every check asserts an exit code and a part of stderr or stdout, prints one line ("ok" or "FAIL" with
# the reasons), and the script ends with "N passed, M failed" (exit status 1 when any failed; harness in
# tests/lib/harness.sh). Any AddressSanitizer / UndefinedBehaviorSanitizer report on stderr fails the
# check that produced it, so the script also serves the sanitizer build.
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init cli "$@"
TOK=$ROOT/tests/fixtures/gpt2
SAMPLES=$ROOT/data/samples
EOS=50256
require "setup: $TOK/encoder.json and $PY exist" test -f "$TOK/encoder.json" -a -x "$PY"
# the ids of `iqtrain tokenize` are compared with GPT-2's encoder.py below, which needs python3-regex
# (scripts/setup.sh installs it): without it the script fails, it never passes without the comparison
require "setup: $PY has the regex module (python3-regex, scripts/setup.sh)" py_has regex
: >"$W/enc.err"

# jget FILE KEY: a key of the JSON object in FILE, printed as JSON ("" when absent or not JSON)
jget() { "$PY" -c 'import json,sys
try: print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))
except Exception: print("")' "$1" "$2"; }

# dryget FILE KEY: an option of the resolved options that --dry-run prints (at the top level, or under
# "options"); KEY "data" gives the data files when printed as a list, else the row count of the summary
dryget() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    if sys.argv[2] == "data":
        v = d["data"]
        print(json.dumps(v if isinstance(v, list) else v["rows"]))
    else:
        o = d["options"] if isinstance(d.get("options"), dict) else d
        print(json.dumps(o[sys.argv[2]]))
except Exception:
    print("")
EOF
}
# want_data FILES_JSON ROWS: the data of a --dry-run, as a file list or as its row count
want_data() {
    local v
    v=$(dryget "$W/out" data)
    [ "$v" = "$1" ] || [ "$v" = "$2" ] || WHY+=("data: got '$v', expected '$1' (or $2 rows)")
}

# JSON string literal of a bash string (the texts here need only \\, \" and \n escaped)
jstr() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    printf '"%s"' "$s"
}
# ids of ordinary text, through `iqtrain tokenize` (checked against the Python oracle below); its stderr
# is checked for sanitizer reports at the end
enc() { printf %s "$1" | "$BIN" tokenize --tokenizer "$TOK" 2>>"$W/enc.err"; }
# the ids as --show-mask prints supervised ones: [a] [b] ...
sup() {
    local out="" i
    for i in $1; do out+=" [$i]"; done
    printf %s "${out# }"
}
tokenize_data() { run "$BIN" tokenize --tokenizer "$TOK" --data "$@"; }

GOOD_ROW='{"prompt": "2 + 2 =", "completion": " 4"}'

# ---------------------------------------------------------------------------------------------------
# A tokenizer of the 256 bytes and <|endoftext|> (GPT-2's file format, no merges). It loads in a few ms
# where GPT-2's takes ~60 ms (~250 ms under ASan): the many bad-row runs, where the tokenizer plays no
# part, use it, and so does --dry-run, whose model it keeps small.
BYTETOK=$W/bytetok
mkdir -p "$BYTETOK"
"$PY" - "$BYTETOK" <<'EOF'
import json, sys
bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
enc = dict(sorted(((chr(c), b) for b, c in zip(bs, cs)), key=lambda kv: kv[1]))
enc["<|endoftext|>"] = 256
with open(sys.argv[1] + "/encoder.json", "w", encoding="utf-8") as f:
    json.dump(enc, f, ensure_ascii=False)
with open(sys.argv[1] + "/vocab.bpe", "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n")
EOF
printf 'hi \xff<|endoftext|>' >"$W/hi.txt"
run --in "$W/hi.txt" "$BIN" tokenize --tokenizer "$BYTETOK"
want_rc 0
want_out_line "104 105 32 255 60 124 101 110 100 111 102 116 101 120 116 124 62"
run --in "$W/hi.txt" "$BIN" tokenize --tokenizer "$BYTETOK" --allow-special
want_out_line "104 105 32 255 256"
done_check "a GPT-2-format tokenizer without merges encodes bytes"


# ---------------------------------------------------------------------------------------------------
# data loader: bad rows (DESIGN §3) — FILE:LINE: reason and exit 65; with --skip-bad-rows exit 0 and
# the row counted as bad. Each case file holds the bad row on line 1 and a good row on line 2.

N_BAD=0
BAD_NAMES=()
BAD_REASONS=()
bad_row() { # NAME ROW(printf format: \xNN bytes, \\ for a backslash) REASON
    N_BAD=$((N_BAD + 1))
    local f=$W/bad$N_BAD.jsonl
    BAD_NAMES[N_BAD]=$1
    BAD_REASONS[N_BAD]=$3
    # shellcheck disable=SC2059
    printf "$2\n" >"$f"
    printf '%s\n' "$GOOD_ROW" >>"$f"
    # shellcheck disable=SC2059
    printf "$2\n" >>"$W/allbad.jsonl"
    spawn "bad$N_BAD" "$BIN" tokenize --tokenizer "$BYTETOK" --data "$f"
    spawn "skip$N_BAD" "$BIN" tokenize --tokenizer "$BYTETOK" --data "$f" --skip-bad-rows --json
}
check_bad_rows() {
    local k f
    for ((k = 1; k <= N_BAD; k++)); do
        f=$W/bad$k.jsonl
        collect "bad$k"
        want_rc 65
        want_err "$f:1: ${BAD_REASONS[$k]}"
        done_check "bad row: ${BAD_NAMES[$k]}"
        collect "skip$k"
        want_rc 0
        want_out '"rows":1,'
        want_out '"bad":1,'
        want_err "$f:1: ${BAD_REASONS[$k]}"
        done_check "bad row skipped: ${BAD_NAMES[$k]}"
    done
}

bad_row "invalid JSON" '{"prompt": "a", "completion": }' "invalid JSON"
bad_row "invalid JSON (trailing comma)" '{"text": "a",}' "invalid JSON"
bad_row "invalid JSON (two objects)" '{"text": "a"} {"text": "b"}' "invalid JSON"
bad_row "invalid JSON (single quotes)" "{'text': 'a'}" "invalid JSON"
bad_row "invalid JSON (bad escape)" '{"text": "a\\qb"}' "invalid JSON"
bad_row "invalid JSON (raw control character in a string)" '{"text": "a\x01b"}' "invalid JSON"
bad_row "invalid JSON (raw tab in a string)" '{"text": "a\tb"}' "invalid JSON"
bad_row "invalid JSON (leading zero)" '{"text": "a", "n": 01}' "invalid JSON"
bad_row "invalid JSON (number 1.)" '{"text": "a", "n": 1.}' "invalid JSON"
bad_row "invalid JSON (control character between tokens)" '{"text": "a",\x0c"n": 1}' "invalid JSON"
bad_row "not an object: array" '[{"text": "a"}]' "row is not a JSON object"
bad_row "not an object: string" '"text"' "row is not a JSON object"
bad_row "not an object: number" '42' "row is not a JSON object"
bad_row "not an object: null" 'null' "row is not a JSON object"
bad_row "missing completion" '{"prompt": "a"}' 'missing "completion"'
bad_row "missing prompt" '{"completion": "a"}' 'missing "prompt"'
bad_row "prompt is a number" '{"prompt": 1, "completion": "a"}' '"prompt" is not a string'
bad_row "completion is null" '{"prompt": "a", "completion": null}' '"completion" is not a string'
bad_row "completion is an object" '{"prompt": "a", "completion": {"x": "y"}}' '"completion" is not a string'
bad_row "text is an object" '{"text": {"a": "b"}}' '"text" is not a string'
bad_row "text is null" '{"text": null}' '"text" is not a string'
bad_row "content is a number" '{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}' '"content" of message 0 is not a string'
bad_row "content is null" '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null}]}' '"content" of message 1 is not a string'
bad_row "role is null" '{"messages": [{"role": null, "content": "q"}, {"role": "assistant", "content": "x"}]}' '"role" of message 0 is not a string'
bad_row "role is an object" '{"messages": [{"role": {}, "content": "q"}, {"role": "assistant", "content": "x"}]}' '"role" of message 0 is not a string'
bad_row "mixed formats: prompt+text" '{"prompt": "a", "completion": "b", "text": "c"}' "mixed formats"
bad_row "mixed formats: text+messages" '{"text": "a", "messages": [{"role": "assistant", "content": "b"}]}' "mixed formats"
bad_row "mixed formats: completion+messages" '{"completion": "a", "messages": [{"role": "assistant", "content": "b"}]}' "mixed formats"
bad_row "no known field" '{"question": "a", "answer": "b"}' 'no "prompt"/"completion", "text" or "messages" field'
bad_row "empty object" '{}' 'no "prompt"/"completion", "text" or "messages" field'
bad_row "field names are case-sensitive" '{"Text": "a"}' 'no "prompt"/"completion", "text" or "messages" field'
bad_row "unknown role" '{"messages": [{"role": "bot", "content": "q"}, {"role": "assistant", "content": "x"}]}' 'unknown role "bot"'
bad_row "messages not an array" '{"messages": {"role": "assistant", "content": "x"}}' '"messages" is not an array'
bad_row "messages is a string" '{"messages": "hi"}' '"messages" is not an array'
bad_row "a message not an object" '{"messages": ["hi", {"role": "assistant", "content": "x"}]}' "message 0 is not an object"
bad_row "message missing role" '{"messages": [{"content": "q"}, {"role": "assistant", "content": "x"}]}' 'message 0 has no "role"'
bad_row "message missing content" '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}' 'message 1 has no "content"'
bad_row "no assistant turn" '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}' "no assistant turn"
bad_row "empty messages" '{"messages": []}' "no assistant turn"
bad_row "duplicate key (top level)" '{"prompt": "a", "completion": "b", "prompt": "c"}' 'duplicate key "prompt"'
bad_row "duplicate unknown key (top level)" '{"text": "a", "id": 1, "id": 2}' 'duplicate key "id"'
bad_row "duplicate key in a message" '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x", "content": "y"}]}' 'duplicate key "content" in message 1'
bad_row "duplicate key among 20 keys" '{"text": "a", "k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9, "k10": 10, "k11": 11, "k12": 12, "k13": 13, "k14": 14, "k15": 15, "k16": 16, "k17": 17, "k18": 18, "k9": 19}' 'duplicate key "k9"'
bad_row "invalid UTF-8: 0xFF" '{"text": "a\xffb"}' "invalid UTF-8"
bad_row "invalid UTF-8: overlong C0 AF" '{"text": "a\xc0\xafb"}' "invalid UTF-8"
bad_row "invalid UTF-8: encoded surrogate ED A0 80" '{"text": "a\xed\xa0\x80b"}' "invalid UTF-8"
bad_row "invalid UTF-8: truncated sequence E2 82" '{"text": "a\xe2\x82"}' "invalid UTF-8"
bad_row "invalid UTF-8: above U+10FFFF" '{"text": "a\xf4\x90\x80\x80"}' "invalid UTF-8"
bad_row "invalid UTF-8: stray continuation byte" '{"text": "a\x80"}' "invalid UTF-8"
bad_row "invalid UTF-8 in a key" '{"text": "a", "\xfe": 1}' "invalid UTF-8"
bad_row "raw NUL byte in a string" '{"text": "a\x00b"}' "NUL byte"
bad_row "raw NUL byte after the object" '{"text": "a"}\x00' "NUL byte"
bad_row "escaped \\u0000" '{"text": "a\\u0000b"}' 'NUL character (\u0000)'
bad_row "escaped \\u0000 in a key" '{"text": "a", "x\\u0000y": 1}' 'NUL character (\u0000)'
bad_row "lone high surrogate \\ud800" '{"text": "a\\ud800b"}' 'lone surrogate \uD800'
bad_row "lone low surrogate \\udc00" '{"text": "a\\udc00b"}' 'lone surrogate \uDC00'
bad_row "high surrogate at the end of a string" '{"text": "a\\uD83D"}' 'lone surrogate \uD83D'
bad_row "two high surrogates" '{"text": "\\ud83d\\ud83d"}' 'lone surrogate \uD83D'
bad_row "reversed surrogate pair" '{"text": "\\ude00\\ud83d"}' 'lone surrogate \uDE00'
check_bad_rows

# every bad row together in one file, plus two good rows: --skip-bad-rows counts them all
printf '%s\n%s\n' "$GOOD_ROW" '{"text": "fine"}' >>"$W/allbad.jsonl"
tokenize_data "$W/allbad.jsonl" --skip-bad-rows --json
want_rc 0
want_eq "$(jget "$W/out" bad)" "$N_BAD" "bad"
want_eq "$(jget "$W/out" rows)" 2 "rows"
done_check "--skip-bad-rows counts all $N_BAD bad rows of one file"

tokenize_data "$W/allbad.jsonl"
want_rc 65
want_err "$W/allbad.jsonl:1: invalid JSON"
done_check "without --skip-bad-rows the first bad row stops the run"

# no usable rows
head -n 3 "$W/allbad.jsonl" >"$W/onlybad.jsonl"
tokenize_data "$W/onlybad.jsonl" --skip-bad-rows --json
want_rc 65
want_err "no usable rows"
done_check "only bad rows + --skip-bad-rows: exit 65 (no usable rows)"

: >"$W/empty.jsonl"
tokenize_data "$W/empty.jsonl"
want_rc 65
want_err "no usable rows"
done_check "empty file: exit 65"

printf '\n  \n\t\r\n' >"$W/blankonly.jsonl"
tokenize_data "$W/blankonly.jsonl" --skip-bad-rows
want_rc 65
want_err "no usable rows"
done_check "only blank lines: exit 65"

# valid surrogate pair and escaped backslashes that only look like escapes
printf '{"text": "\\ud83d\\ude00"}\n' >"$W/pair.jsonl"
tokenize_data "$W/pair.jsonl" --show-mask
want_rc 0
want_out_line "$EOS $(sup "$(enc $'\U0001F600')") [$EOS]\$"
done_check "valid surrogate pair \\ud83d\\ude00 is accepted as U+1F600"

printf '{"text": "a\\\\ud800 \\\\u0000"}\n' >"$W/bs.jsonl"
tokenize_data "$W/bs.jsonl" --show-mask
want_rc 0
want_out_line "$EOS $(sup "$(enc 'a\ud800 \u0000')") [$EOS]\$"
done_check "escaped backslash before ud800/u0000 is ordinary text"

# line numbers
printf '%s\n\n%s\n%s\n' "$GOOD_ROW" '{"text": }' "$GOOD_ROW" >"$W/line3.jsonl"
tokenize_data "$W/line3.jsonl"
want_rc 65
want_err "$W/line3.jsonl:3: invalid JSON"
done_check "bad row on line 3 after a blank line: reported as line 3"

printf '%s\r\n\r\n   \r\n{"text": 1}\r\n' "$GOOD_ROW" >"$W/line4crlf.jsonl"
tokenize_data "$W/line4crlf.jsonl"
want_rc 65
want_err "$W/line4crlf.jsonl:4: \"text\" is not a string"
done_check "CRLF file: bad row reported as line 4"

printf '%s\n' "$GOOD_ROW" "$GOOD_ROW" >"$W/good1.jsonl"
printf '%s\n%s\n' "$GOOD_ROW" '{"prompt": "x"}' >"$W/bad2nd.jsonl"
tokenize_data "$W/good1.jsonl" "$W/bad2nd.jsonl"
want_rc 65
want_err "$W/bad2nd.jsonl:2: missing \"completion\""
done_check "several files: the message names the second file and its line"

tokenize_data "$W/good1.jsonl,$W/bad2nd.jsonl"
want_rc 65
want_err "$W/bad2nd.jsonl:2: missing \"completion\""
done_check "several files as --data A,B: same message"

printf '%s\n' "$GOOD_ROW" | gzip -c >"$W/bad2nd.jsonl.gz"
printf '%s\n' '[1]' | gzip -c >>"$W/bad2nd.jsonl.gz"
tokenize_data "$W/good1.jsonl" "$W/bad2nd.jsonl.gz"
want_rc 65
want_err "$W/bad2nd.jsonl.gz:2: row is not a JSON object"
done_check "bad row in the second member of a gzip file: FILE:LINE counts decompressed lines"

tokenize_data "$SAMPLES/text.jsonl" --data "$SAMPLES/messages.jsonl" "$SAMPLES/prompt_completion.jsonl" --json
want_rc 0
want_eq "$(jget "$W/out" rows)" 22 "rows"
done_check "--data A --data B C: a repeated --data adds files (8 + 6 + 8 rows)"

LIST=""
for k in $(seq 1 70); do
    cp "$W/good1.jsonl" "$W/many$k.jsonl"
    LIST+="${LIST:+,}$W/many$k.jsonl"
done
tokenize_data "$LIST" --json
want_rc 0
want_eq "$(jget "$W/out" rows)" 140 "rows"
done_check "--data with 70 comma-separated files reads all of them"

# ---------------------------------------------------------------------------------------------------
# data loader: accepted inputs

printf '%s\n' '{"text": "one"}' '{"prompt": "p", "completion": "c"}' \
    '{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}' >"$W/lf.jsonl"
sed 's/$/\r/' "$W/lf.jsonl" >"$W/crlf.jsonl"
tokenize_data "$W/lf.jsonl"
cp "$W/out" "$W/lf.ids"
tokenize_data "$W/crlf.jsonl"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
want_eq "$(wc -l <"$W/out")" 3 "rows printed"
done_check "CRLF line ends: same ids as LF"

printf '\n%s\n   \n\t\n\r\n%s\n\n%s\n\n' '{"text": "one"}' '{"prompt": "p", "completion": "c"}' \
    '{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}' >"$W/blanks.jsonl"
tokenize_data "$W/blanks.jsonl"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
tokenize_data "$W/blanks.jsonl" --json
want_eq "$(jget "$W/out" blank)" 6 "blank"
want_eq "$(jget "$W/out" rows)" 3 "rows"
done_check "blank and whitespace-only lines are skipped and counted"

printf '\xef\xbb\xbf' >"$W/bom.jsonl"
cat "$W/lf.jsonl" >>"$W/bom.jsonl"
tokenize_data "$W/bom.jsonl"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
done_check "UTF-8 BOM at the start of the file"

printf '\xef\xbb\xbf' >"$W/bomcrlf.jsonl"
cat "$W/crlf.jsonl" >>"$W/bomcrlf.jsonl"
gzip -c "$W/bomcrlf.jsonl" >"$W/bomcrlf.jsonl.gz"
tokenize_data "$W/bomcrlf.jsonl.gz"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
done_check "UTF-8 BOM + CRLF inside a gzip file"

tokenize_data "$W/lf.jsonl" "$W/bom.jsonl"
want_rc 0
want_eq "$(wc -l <"$W/out")" 6 "rows printed"
done_check "UTF-8 BOM at the start of the second file"

printf '%s\n' '{"text": "one", "id": 7, "meta": {"source": "x", "tags": [1, 2]}}' \
    '{"prompt": "p", "completion": "c", "score": null}' \
    '{"messages": [{"role": "user", "content": "u", "name": "bob"}, {"role": "assistant", "content": "a", "weight": 1}], "id": "r3"}' \
    >"$W/extra.jsonl"
tokenize_data "$W/extra.jsonl"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
done_check "unknown extra keys (top level and inside messages) are ignored"

printf '%s' '{"text": "one"}' >"$W/nonl.jsonl"
tokenize_data "$W/nonl.jsonl"
want_rc 0
want_out_line "$(head -n 1 "$W/lf.ids")"
done_check "last line without a trailing newline is read"

printf '%s\r' '{"text": "one"}' >"$W/nonlcr.jsonl"
tokenize_data "$W/nonlcr.jsonl"
want_rc 0
want_out_line "$(head -n 1 "$W/lf.ids")"
done_check "last line ending in a lone CR without LF is read"

# gzip
head -n 2 "$W/lf.jsonl" | gzip -c >"$W/multi.jsonl.gz"
tail -n 1 "$W/lf.jsonl" | gzip -c >>"$W/multi.jsonl.gz"
tokenize_data "$W/multi.jsonl.gz"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
done_check "multi-member gzip: the rows of both members"

: | gzip -c >"$W/emptymember.jsonl.gz"
cat "$W/multi.jsonl.gz" >>"$W/emptymember.jsonl.gz"
: | gzip -c >>"$W/emptymember.jsonl.gz"
tokenize_data "$W/emptymember.jsonl.gz"
want_rc 0
want_same_file "$W/out" "$W/lf.ids"
done_check "multi-member gzip with empty members"

for s in messages prompt_completion text; do cat "$SAMPLES/$s.jsonl"; done >"$W/samples.jsonl"
gzip -c "$W/samples.jsonl" >"$W/samples.jsonl.gz"
tokenize_data "$W/samples.jsonl"
cp "$W/out" "$W/samples.ids"
tokenize_data "$W/samples.jsonl.gz"
want_rc 0
want_same_file "$W/out" "$W/samples.ids"
want_eq "$(wc -l <"$W/out")" "$(grep -c . "$W/samples.jsonl")" "rows printed"
done_check "plain and gzip files of the same rows give identical ids"

# a row of several MB: "hello hello ... hello " -> hello, N-1 x " hello", " "
N_HELLO=900000
"$PY" -c 'import sys; n=int(sys.argv[1]); sys.stdout.write("{\"text\": \"" + "hello " * n + "\"}\n")' "$N_HELLO" >"$W/big.jsonl"
tokenize_data "$W/big.jsonl" --json
want_rc 0
want_eq "$(jget "$W/out" rows)" 1 "rows"
want_eq "$(jget "$W/out" tokens)" $((N_HELLO + 3)) "tokens"
done_check "a 5.4 MB row is accepted ($(($(stat -c %s "$W/big.jsonl") / 1000)) kB)"

# truncated and corrupt gzip
"$PY" - "$W/arith.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        f.write(json.dumps({"prompt": "Question: what is %d + %d?\nAnswer:" % (i, 7 * i % 101),
                            "completion": " %d" % (i + 7 * i % 101)}) + "\n")
EOF
gzip -c "$W/arith.jsonl" >"$W/arith.jsonl.gz"
GZ_SIZE=$(stat -c %s "$W/arith.jsonl.gz")
head -c $((GZ_SIZE / 2)) "$W/arith.jsonl.gz" >"$W/half.jsonl.gz"
tokenize_data "$W/half.jsonl.gz"
want_rc 65
want_err "$W/half.jsonl.gz"
want_err "truncated"
done_check "gzip cut in half: exit 65, names the file and 'truncated'"

tokenize_data "$W/half.jsonl.gz" --skip-bad-rows
want_rc 65
want_err "truncated"
done_check "gzip cut in half with --skip-bad-rows: still exit 65"

head -c $((GZ_SIZE - 4)) "$W/arith.jsonl.gz" >"$W/notrailer.jsonl.gz"
tokenize_data "$W/notrailer.jsonl.gz"
want_rc 65
want_err "$W/notrailer.jsonl.gz"
want_err "truncated"
done_check "gzip missing the last 4 bytes of its trailer: exit 65 'truncated'"

head -c 10 "$W/arith.jsonl.gz" >"$W/header.jsonl.gz"
tokenize_data "$W/header.jsonl.gz"
want_rc 65
want_err "$W/header.jsonl.gz"
done_check "gzip cut inside its header: exit 65"

cp "$W/arith.jsonl.gz" "$W/corrupt.jsonl.gz"
printf '\x55\xaa\x55\xaa\x55\xaa\x55\xaa' | dd of="$W/corrupt.jsonl.gz" bs=1 seek=$((GZ_SIZE / 2)) conv=notrunc status=none
tokenize_data "$W/corrupt.jsonl.gz"
want_rc 65
want_err "$W/corrupt.jsonl.gz"
done_check "gzip with bytes flipped in the middle: exit 65 naming the file"

cp "$W/arith.jsonl.gz" "$W/badcrc.jsonl.gz"
printf '\xff' | dd of="$W/badcrc.jsonl.gz" bs=1 seek=$((GZ_SIZE - 8)) conv=notrunc status=none
tokenize_data "$W/badcrc.jsonl.gz"
want_rc 65
want_err "$W/badcrc.jsonl.gz"
want_err "corrupt"
done_check "gzip with a wrong CRC: exit 65 'corrupt'"

cp "$W/multi.jsonl.gz" "$W/garbage.jsonl.gz"
printf '%s\n' '{"text": "after the gzip stream"}' >>"$W/garbage.jsonl.gz"
tokenize_data "$W/garbage.jsonl.gz"
want_rc 65
want_err "$W/garbage.jsonl.gz"
done_check "plain text appended after a gzip stream: exit 65 (not silently dropped)"

cp "$W/multi.jsonl.gz" "$W/zeros.jsonl.gz"
head -c 512 /dev/zero >>"$W/zeros.jsonl.gz"
tokenize_data "$W/zeros.jsonl.gz"
want_rc 65
want_err "$W/zeros.jsonl.gz"
done_check "zero bytes appended after a gzip stream: exit 65"

printf '\x1f\x8b' >"$W/magic.jsonl.gz"
tokenize_data "$W/magic.jsonl.gz"
want_rc 65
want_err "$W/magic.jsonl.gz"
want_err "truncated"
done_check "a file holding only the gzip magic bytes: exit 65 'truncated'"

printf '{"text": "x"}\n' >"$W/notgz.jsonl.gz"
tokenize_data "$W/notgz.jsonl.gz"
want_rc 0
done_check "a plain file named .gz is read as plain JSONL (gzip is detected by magic bytes)"

# files that cannot be opened
tokenize_data "$W/does-not-exist.jsonl"
want_rc 66
want_err "$W/does-not-exist.jsonl"
done_check "missing data file: exit 66 naming the path"

tokenize_data "$W/good1.jsonl" "$W/missing2.jsonl"
want_rc 66
want_err "$W/missing2.jsonl"
done_check "second data file missing: exit 66 naming it"

mkdir -p "$W/adir"
tokenize_data "$W/adir"
want_rc 66
want_err "$W/adir"
done_check "a directory as data: exit 66"

if [ "$(id -u)" -eq 0 ]; then
    # root reads a file whatever its mode bits, so chmod 000 cannot make it unreadable here
    skip_check "unreadable data file (chmod 000)" "running as root, which can read it anyway"
else
    cp "$W/good1.jsonl" "$W/noread.jsonl"
    chmod 000 "$W/noread.jsonl"
    tokenize_data "$W/noread.jsonl"
    want_rc 66
    want_err "$W/noread.jsonl"
    done_check "unreadable data file: exit 66"
fi

# ---------------------------------------------------------------------------------------------------
# token-level semantics (DESIGN §3), via --show-mask; expected ids from `iqtrain tokenize` on stdin,
# which is checked against the Python oracle first

P1="Answer: "
C1="42"
TX="Hello, world!"$'\n'"Second line."
S1="system: Be brief."$'\n'"user: What is 2+2?"$'\n'"assistant: "
A1="4"
S2="user: And 3+3?"$'\n'"assistant: "
A2=" 6, of course."$'\n'
EOT="<|endoftext|>"
TEXTS=("$P1" "$C1" "$P1$C1" "$TX" "$S1" "$A1" "$S2" "$A2" "$EOT" " $EOT" "Stop." "Hi there"
    "a b c d e" "one two three" " four" $'\U0001F600' "hi" "hi"$'\n')
declare -A ENC
for k in "${!TEXTS[@]}"; do
    printf %s "${TEXTS[$k]}" >"$W/text$k.txt"
    spawn "enc$k" --in "$W/text$k.txt" "$BIN" tokenize --tokenizer "$TOK"
done
for k in "${!TEXTS[@]}"; do
    collect "enc$k"
    want_rc 0
    ENC[${TEXTS[$k]}]=$(cat "$W/out")
done
done_check "tokenize (stdin) encodes ${#TEXTS[@]} texts"

: >"$W/oracle.hex"
for t in "${TEXTS[@]}"; do printf %s "$t" | od -An -v -tx1 | tr -d ' \n' >>"$W/oracle.hex"; echo >>"$W/oracle.hex"; done
run "$PY" "$ROOT/tests/reference/gpt2_oracle.py" --in "$W/oracle.hex" --out "$W/oracle.ids"
want_rc 0
k=0
while IFS= read -r line; do
    t=${TEXTS[$k]}
    want_eq "${ENC[$t]}" "$line" "ids of $(jstr "$t")"
    k=$((k + 1))
done <"$W/oracle.ids"
want_eq "$k" "${#TEXTS[@]}" "oracle cases"
done_check "tokenize (stdin) matches the Python oracle on ${#TEXTS[@]} texts"

run --in /dev/null "$BIN" tokenize --tokenizer "$TOK"
want_rc 0
want_eq "$(cat "$W/out")" "" "ids of empty input"
done_check "tokenize: empty stdin gives an empty line"

want_eq "${ENC[hi]}" "5303" "ids of hi"
want_eq "${ENC[hi$'\n']}" "5303 198" "ids of hi\\n"
done_check "tokenize encodes stdin exactly: a trailing newline is text ('hi' vs 'hi\\n')"

want_eq "${ENC[$EOT]}" "27 91 437 1659 5239 91 29" "ids of <|endoftext|> as text"
done_check "tokenize without --allow-special: <|endoftext|> is ordinary text"

[ "${ENC[$P1$C1]}" != "${ENC[$P1]} ${ENC[$C1]}" ] || WHY+=("enc(p+c) equals enc(p) ++ enc(c)")
done_check "test premise: encoding '$P1' and '$C1' separately differs from encoding them joined"

printf '{"prompt": %s, "completion": %s}\n' "$(jstr "$P1")" "$(jstr "$C1")" >"$W/pc.jsonl"
tokenize_data "$W/pc.jsonl" --show-mask
want_rc 0
want_out_line "${ENC[$P1]} $(sup "${ENC[$C1]}") [$EOS]\$"
want_out "prompt/completion, $(($(wc -w <<<"${ENC[$P1]} ${ENC[$C1]}") + 1)) tokens, $(($(wc -w <<<"${ENC[$C1]}") + 1)) supervised"
done_check "prompt/completion: enc(prompt) ++ [enc(completion)] ++ [EOS]\$, encoded separately, no BOS"

tokenize_data "$W/pc.jsonl"
want_rc 0
want_out_line "${ENC[$P1]} ${ENC[$C1]} $EOS"
done_check "prompt/completion: plain ids output"

printf '{"prompt": "", "completion": %s}\n' "$(jstr "Hi there")" >"$W/emptyprompt.jsonl"
tokenize_data "$W/emptyprompt.jsonl" --show-mask
want_rc 0
want_out_line "$EOS $(sup "${ENC[Hi there]}") [$EOS]\$"
done_check "empty prompt: EOS prepended as an unsupervised BOS"

printf '{"prompt": "Stop.", "completion": ""}\n' >"$W/emptycompl.jsonl"
tokenize_data "$W/emptycompl.jsonl" --show-mask
want_rc 0
want_out_line "${ENC[Stop.]} [$EOS]\$"
want_out "1 supervised"
done_check "empty completion: supervises EOS alone"

printf '{"prompt": "", "completion": ""}\n' >"$W/bothempty.jsonl"
tokenize_data "$W/bothempty.jsonl" --show-mask
want_rc 0
want_out_line "$EOS [$EOS]\$"
done_check "empty prompt and completion: BOS then a supervised EOS"

printf '{"text": %s}\n' "$(jstr "$TX")" >"$W/text.jsonl"
tokenize_data "$W/text.jsonl" --show-mask
want_rc 0
want_out_line "$EOS $(sup "${ENC[$TX]}") [$EOS]\$"
done_check "text: [EOS as BOS] ++ [enc(text)] ++ [EOS]\$, BOS unsupervised"

printf '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": %s}, {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": %s}, {"role": "user", "content": "Thanks!"}]}\n' \
    "$(jstr "$A1")" "$(jstr "$A2")" >"$W/msgs.jsonl"
tokenize_data "$W/msgs.jsonl" --show-mask
want_rc 0
want_out_line "${ENC[$S1]} $(sup "${ENC[$A1]}") [$EOS]\$ ${ENC[$S2]} $(sup "${ENC[$A2]}") [$EOS]\$"
done_check "messages: template unsupervised, each assistant content + EOS supervised, each EOS terminal, tail dropped"

printf '{"messages": [{"role": "assistant", "content": "4"}]}\n' >"$W/msgs1.jsonl"
tokenize_data "$W/msgs1.jsonl" --show-mask
want_rc 0
want_out_line "$(enc "assistant: ") $(sup "${ENC[$A1]}") [$EOS]\$"
done_check "messages starting with the assistant: 'assistant: ' then the content, no BOS"

printf '{"prompt": %s, "completion": %s}\n' "$(jstr "$EOT")" "$(jstr " $EOT")" >"$W/eot.jsonl"
tokenize_data "$W/eot.jsonl" --show-mask
want_rc 0
want_out_line "27 91 437 1659 5239 91 29 $(sup "${ENC[ $EOT]}") [$EOS]\$"
done_check "<|endoftext|> in prompt/completion is ordinary text (27 91 437 1659 5239 91 29), never $EOS"

printf '{"text": %s}\n{"messages": [{"role": "user", "content": %s}, {"role": "assistant", "content": %s}]}\n' \
    "$(jstr "x$EOT")" "$(jstr "$EOT")" "$(jstr "$EOT")" >"$W/eot2.jsonl"
tokenize_data "$W/eot2.jsonl"
want_rc 0
want_eq "$(grep -o "\b$EOS\b" "$W/out" | wc -l)" 3 "count of $EOS in text + messages rows"
want_out "27 91 437 1659 5239 91 29"
done_check "<|endoftext|> in text and messages content is ordinary text"

printf '%s\n' '{"text": "a b c d e"}' '{"prompt": "one two three", "completion": " four"}' '{"prompt": "", "completion": "a b c d e"}' >"$W/trunc.jsonl"
read -r -a ABC <<<"${ENC[a b c d e]}"
tokenize_data "$W/trunc.jsonl" --show-mask --max-seq-len 4
want_rc 0
want_out_line "$EOS [${ABC[0]:-}] [${ABC[1]:-}] [${ABC[2]:-}]~"
want_out_line "${ENC[one two three]} [${ENC[ four]}]~"
want_out "text, 4 tokens, 3 supervised, truncated"
want_out "truncated 3"
done_check "--max-seq-len 4: rows keep their start, marked truncated, last token flagged ~"

tokenize_data "$W/trunc.jsonl" --json --max-seq-len 4
want_rc 0
want_eq "$(jget "$W/out" truncated)" 3 "truncated"
want_eq "$(jget "$W/out" skipped)" 0 "skipped"
done_check "--max-seq-len 4: JSON summary counts truncated rows"

tokenize_data "$W/trunc.jsonl" --show-mask --max-seq-len 5
want_rc 0
want_out_line "${ENC[one two three]} [${ENC[ four]}] [$EOS]\$"
want_out "truncated 2"
done_check "--max-seq-len equal to the row length: not truncated, EOS terminal"

tokenize_data "$W/trunc.jsonl" --json --max-seq-len 3
want_rc 0
want_eq "$(jget "$W/out" skipped)" 1 "skipped"
want_eq "$(jget "$W/out" rows)" 2 "rows"
want_eq "$(jget "$W/out" truncated)" 2 "truncated"
done_check "a row whose prompt alone fills --max-seq-len is skipped and counted"

tokenize_data "$W/trunc.jsonl" --json --max-seq-len 1
want_rc 65
want_err "no usable rows"
want_err "3 skipped"
done_check "every row skipped by --max-seq-len: exit 65"

printf '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "and then a much longer question"}, {"role": "assistant", "content": "b"}]}\n' >"$W/msgtrunc.jsonl"
Q1=$(enc "user: q"$'\n'"assistant: ")
NQ=$(wc -w <<<"$Q1")
tokenize_data "$W/msgtrunc.jsonl" --show-mask --max-seq-len $((NQ + 4))
want_rc 0
want_out_line "$Q1 [$(enc a)] [$EOS]\$"
want_out ", truncated"
done_check "messages cut inside a later turn's template: ends at the previous terminal EOS"

# data with a tokenizer whose EOS is not 50256 is checked after train-tokenizer below

# ---------------------------------------------------------------------------------------------------
# command line (DESIGN §5)

DRY=("$BIN" --dry-run --preset tiny --threads 1 --tokenizer "$BYTETOK")
run "$BIN" --dry-run --preset tiny --threads 1 --tokenizer "$TOK" --lambda=0.5 "$SAMPLES/text.jsonl"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.5 "lambda"
done_check "--dry-run --tokenizer tests/fixtures/gpt2 --lambda=0.5: resolved lambda 0.5"

run "${DRY[@]}" --lamda=0.5 "$SAMPLES/text.jsonl"
want_rc 64
want_err "unknown option '--lamda'"
want_err "did you mean '--lambda'"
done_check "unknown option --lamda: exit 64 with did-you-mean --lambda"

run "${DRY[@]}" --frobnicate "$SAMPLES/text.jsonl"
want_rc 64
want_err "unknown option '--frobnicate'"
done_check "unknown option without a close match: exit 64 naming it"

run "$BIN" tokenize --tokenizer "$TOK" --shw-mask --data "$SAMPLES/text.jsonl"
want_rc 64
want_err "did you mean '--show-mask'"
done_check "unknown option of tokenize: exit 64 with did-you-mean"

run "${DRY[@]}" --lambda=0.5 "$SAMPLES/text.jsonl"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.5 "lambda"
done_check "--lambda=0.5 resolves to 0.5"

run "${DRY[@]}" --lambda 0.25 --td-grad semi --batch-size 3 "$SAMPLES/text.jsonl"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.25 "lambda"
want_eq "$(dryget "$W/out" td-grad)" '"semi"' "td-grad"
want_eq "$(dryget "$W/out" batch-size)" 3 "batch-size"
want_data "[\"$SAMPLES/text.jsonl\"]" 8
done_check "--opt value form resolves the same way"

run "${DRY[@]}" "$SAMPLES/text.jsonl"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.1 "lambda"
want_eq "$(dryget "$W/out" gamma)" 0.99 "gamma"
want_eq "$(dryget "$W/out" td-grad)" '"full"' "td-grad"
want_eq "$(dryget "$W/out" truncation)" '"bootstrap"' "truncation"
want_eq "$(dryget "$W/out" batch-size)" 16 "batch-size"
want_eq "$(dryget "$W/out" seed)" 42 "seed"
done_check "defaults of DESIGN §5 (lambda 0.1, gamma 0.99, td-grad full, truncation bootstrap, batch 16, seed 42)"

run "$BIN" train --dry-run --preset=tiny --threads=1 --tokenizer="$BYTETOK" --lambda=0 "$SAMPLES/text.jsonl"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0 "lambda"
done_check "explicit 'train' command and --tokenizer=PATH"

cat >"$W/cfg.json" <<EOF
{"lambda": 0.3, "lambda-schedule": "cosine", "batch-size": 8, "tokenizer": "$BYTETOK", "dry-run": true,
 "preset": "tiny", "threads": 1,
 "data": ["$SAMPLES/text.jsonl", "$SAMPLES/messages.jsonl"]}
EOF
run "$BIN" --config "$W/cfg.json"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.3 "lambda"
want_eq "$(dryget "$W/out" lambda-schedule)" '"cosine"' "lambda-schedule"
want_eq "$(dryget "$W/out" batch-size)" 8 "batch-size"
want_data "[\"$SAMPLES/text.jsonl\", \"$SAMPLES/messages.jsonl\"]" 14
done_check "--config FILE.json sets options and data"

run "$BIN" --config "$W/cfg.json" --lambda 0.7
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.7 "lambda"
want_eq "$(dryget "$W/out" batch-size)" 8 "batch-size"
done_check "a flag after --config overrides the config"

run "$BIN" --lambda=0.7 --config="$W/cfg.json"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.7 "lambda"
done_check "a flag before --config overrides it too"

run "$BIN" --config "$W/cfg.json" "$SAMPLES/prompt_completion.jsonl"
want_rc 0
want_data "[\"$SAMPLES/prompt_completion.jsonl\"]" 8
done_check "data files on the command line replace the config's"

printf '{"lamda": 0.3, "tokenizer": "%s", "data": ["%s"]}\n' "$BYTETOK" "$SAMPLES/text.jsonl" >"$W/cfg_unknown.json"
run "$BIN" --dry-run --config "$W/cfg_unknown.json"
want_rc 64
want_err "lamda"
want_err "did you mean '--lambda'"
done_check "unknown key in the config: exit 64"

printf '{"lambda": "abc", "tokenizer": "%s"}\n' "$BYTETOK" >"$W/cfg_badval.json"
run "$BIN" --dry-run --config "$W/cfg_badval.json" "$SAMPLES/text.jsonl"
want_rc 64
want_err "--lambda expects a number"
done_check "bad value in the config: exit 64"

printf '{"lambda": 0.3,\n' >"$W/cfg_invalid.json"
run "$BIN" --dry-run --config "$W/cfg_invalid.json"
want_rc 65
want_err "$W/cfg_invalid.json"
want_err "invalid JSON"
done_check "invalid JSON in the config: exit 65"

run "$BIN" --dry-run --config "$W/no-such-config.json"
want_rc 66
want_err "$W/no-such-config.json"
done_check "missing config file: exit 66"

cat >"$W/run.json" <<EOF
{"version": "x", "build": {"backend": "openblas", "threads": 2},
 "options": {"lambda": 0.25, "gamma": 0.9, "tokenizer": "$BYTETOK", "td-grad": "semi", "dry-run": true,
             "preset": "tiny", "threads": 1},
 "data": ["$SAMPLES/text.jsonl"], "seed": 42}
EOF
run "$BIN" --config "$W/run.json"
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.25 "lambda"
want_eq "$(dryget "$W/out" gamma)" 0.9 "gamma"
want_eq "$(dryget "$W/out" td-grad)" '"semi"' "td-grad"
want_data "[\"$SAMPLES/text.jsonl\"]" 8
done_check "a run.json-shaped config ({options, data, version, ...}) is accepted"

# a real run.json: a run of 0 steps writes it (and final/)
run "$BIN" --preset tiny --threads 1 --tokenizer "$BYTETOK" --max-steps 0 --lambda 0.3 --td-grad semi \
    --out "$W/run0" "$SAMPLES/text.jsonl"
want_rc 0
[ -s "$W/run0/run.json" ] || WHY+=("no $W/run0/run.json")
run "$BIN" --config "$W/run0/run.json" --dry-run
want_rc 0
want_eq "$(dryget "$W/out" lambda)" 0.3 "lambda"
want_eq "$(dryget "$W/out" td-grad)" '"semi"' "td-grad"
want_data "[\"$SAMPLES/text.jsonl\"]" 8
done_check "the run.json of a real run (--max-steps 0) is accepted by --config"

run "$BIN" --preset tiny --threads 1 --tokenizer "$BYTETOK" --max-steps 0 --out "$W/run0" "$SAMPLES/text.jsonl"
want_rc 73
want_err "$W/run0"
done_check "--out holding another run: exit 73"

: >"$W/regular-file0"
run "$BIN" --preset tiny --threads 1 --tokenizer "$BYTETOK" --max-steps 0 --out "$W/regular-file0/run" "$SAMPLES/text.jsonl"
want_rc 73
want_err "$W/regular-file0/run"
done_check "train --out under a regular file: exit 73"

for bad in "--lambda abc" "--batch-size 1.5" "--td-grad half" "--lambda nan" "--truncation none" "--lambda-schedule step" \
    "--batch-size 0" "--gamma 2" "--lambda -1"; do
    # shellcheck disable=SC2086
    run "${DRY[@]}" $bad "$SAMPLES/text.jsonl"
    want_rc 64
    want_err "${bad%% *}"
    done_check "bad value '$bad': exit 64 naming the option"
done

run "${DRY[@]}" "$SAMPLES/text.jsonl" --lambda
want_rc 64
want_err "--lambda needs a value"
done_check "option without its value: exit 64"

run "${DRY[@]}" --dry-run=maybe "$SAMPLES/text.jsonl"
want_rc 64
want_err "--dry-run"
done_check "flag with a non-boolean value: exit 64"

for c in train tokenize train-tokenizer bench; do
    run "$BIN" "$c" --help
    want_rc 0
    want_out "usage: iqtrain $c"
    want_out "options:"
    done_check "iqtrain $c --help: exit 0 with usage"
done

# ---- bench: the JSON fields scripts/bench.sh reads (tiny models: seconds, not a measurement)
run "$BIN" bench --what train --n-layer 1 --n-head 2 --n-embd 32 --ctx 64 --vocab-size 64 --batch-size 2 \
    --seq-len 16 --steps 3 --threads 1 --json
want_rc 0
for k in tokens_per_s ms_per_step first_step_ms gflops peak_fraction peak_rss_mb peak_gflops; do
    /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); v=r[sys.argv[2]]; assert isinstance(v,(int,float)) and v>0' \
        "$W/out" "$k" 2>/dev/null || WHY+=("bench train --json: $k missing or not positive")
done
done_check "bench --what train --json: the fields scripts/bench.sh reads, all positive"
# the arithmetic peaks (src/cpu_peak.c): measured where /proc/cpuinfo has the instructions, null where not (not
# compared with the sgemm peak: on a shared machine the two moments can differ by more than the margin)
/usr/bin/python3 - "$W/out" <<'PYEOF' 2>/dev/null || WHY+=("bench train --json: arithmetic peaks wrong: $(head -c 400 "$W/out")")
import json, sys
r = json.load(open(sys.argv[1]))
info = open("/proc/cpuinfo").read()
flags = info.split("flags", 1)[1].split("\n", 1)[0].split() if "flags" in info else []  # x86 only
fma, dot = r["fp32_fma_peak_gflops"], r["bf16_dot_peak_gflops"]
assert (fma is not None and fma > 0) == ("avx2" in flags and "fma" in flags), fma
assert (dot is not None and dot > 0) == ("avx512_bf16" in flags), dot
PYEOF
done_check "bench --what train --json: fp32 FMA and bf16 dot-product peaks where the CPU has them"

# bench measures what other processes leave of the CPUs just before it runs (/proc/stat, every CPU of the
# machine): with a busy loop on each it says so on stderr and records cpu_busy_before > 0.25 (a quiet machine
# cannot be assumed here, so only the busy case is checked; not on machines of over 8 CPUs or in a cpuset that
# hides some, where the loops would not load every CPU /proc/stat counts)
NCPU=$(grep -c '^cpu[0-9]' /proc/stat)
USABLE=$("$PY" -c 'import os; print(len(os.sched_getaffinity(0)))')
if [ "$NCPU" -gt 8 ] || [ "$NCPU" != "$USABLE" ]; then
    skip_check "bench on a busy machine" "$NCPU CPUs in /proc/stat, $USABLE usable here: cannot load them all"
else
    HOGS=() # busy loops that end by themselves after 60 s (and are killed on exit) whatever stops this script
    for _ in $(seq "$NCPU"); do bash -c 'while [ $SECONDS -lt 60 ]; do :; done' & HOGS+=($!); track_pid $!; done
    sleep 0.5
    run "$BIN" bench --what train --n-layer 1 --n-head 2 --n-embd 32 --ctx 64 --vocab-size 64 --batch-size 2 \
        --seq-len 16 --steps 2 --threads 1 --json
    kill "${HOGS[@]}" 2>/dev/null
    wait "${HOGS[@]}" 2>/dev/null
    want_rc 0
    want_err "busy with other processes just before this run"
    /usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["cpu_busy_before"]; assert 0.25 < v <= 1, v' \
        "$W/out" 2>/dev/null || WHY+=("bench --json: cpu_busy_before missing or <= 0.25 with every CPU busy: $(head -c 300 "$W/out")")
    done_check "bench on a busy machine: a warning, and cpu_busy_before > 0.25 in the JSON"
fi

# matmul backends and precisions (src/matmul.h): oneDNN when built in; bf16 needs it (and a CPU it has bf16 for)
HAVE_DNNL=0
"$BIN" --version | grep -q "oneDNN: built in" && HAVE_DNNL=1
run "$BIN" bench --what generate --n-layer 1 --n-head 2 --n-embd 32 --ctx 64 --vocab-size 64 --batch-size 3 \
    --prompt-len 5 --new-tokens 7 --steps 2 --threads 1 --json --matmul-precision bf16
want_rc 0
want_out '"what":"generate"'
want_out '"new_tokens":7'
want_out '"openblas_core":'
if [ $HAVE_DNNL = 1 ]; then
    want_out '"backend":"onednn"'
    grep -q '"precision":"bf16"' "$W/out" || want_err "running in fp32"
else
    want_out '"precision":"fp32"'
    want_err "no bf16 matmul"
fi
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["tokens_per_s"]>0 and r["seconds"]>0' "$W/out" \
    2>/dev/null || WHY+=("bench generate --json: tokens_per_s/seconds")
done_check "bench --what generate --json --matmul-precision bf16: oneDNN bf16, or fp32 with a notice"

run "${DRY[@]}" --matmul-precision bf16 "$SAMPLES/text.jsonl"
want_rc 0
[ $HAVE_DNNL = 1 ] || want_err "running in fp32"
done_check "train --matmul-precision bf16: accepted (fp32 with a notice without oneDNN)"

run "${DRY[@]}" --matmul-backend onednn "$SAMPLES/text.jsonl"
if [ $HAVE_DNNL = 1 ]; then
    want_rc 0
else
    want_rc 64
    want_err "this build has no oneDNN"
fi
done_check "train --matmul-backend onednn: accepted where built in, exit 64 otherwise"

run "${DRY[@]}" --matmul-backend openblas --matmul-precision bf16 "$SAMPLES/text.jsonl"
want_rc 64
want_err "needs the oneDNN backend"
done_check "train --matmul-backend openblas --matmul-precision bf16: exit 64"

run "$BIN" bench --what generate --n-layer 1 --n-head 2 --n-embd 32 --ctx 16 --vocab-size 64 --prompt-len 10 --new-tokens 10
want_rc 64
want_err "exceed the context"
done_check "bench --what generate: prompt + new tokens beyond the context: exit 64"

run "$BIN" --help
want_rc 0
want_out "train-tokenizer"
done_check "iqtrain --help: exit 0 with the command list"

run "$BIN" --version
want_rc 0
want_out "iqtrain "
done_check "iqtrain --version: exit 0"

run "$BIN" tokenise --tokenizer "$TOK"
want_rc 64
want_err "unknown command 'tokenise'"
want_err "did you mean 'tokenize'"
done_check "misspelled command 'tokenise': exit 64 with did-you-mean"

run "$BIN"
want_rc 64
want_out "commands:"
want_out "train-tokenizer"
done_check "iqtrain without arguments: exit 64 with the command list"

run "$BIN" --dry-run "$SAMPLES/text.jsonl"
want_rc 64
want_err "--tokenizer"
done_check "training from scratch without --tokenizer: exit 64"

run "$BIN" --dry-run --tokenizer "$TOK"
want_rc 64
want_err "no data files"
done_check "train without data files: exit 64"

run "$BIN" tokenize
want_rc 64
want_err "--tokenizer"
done_check "tokenize without --tokenizer: exit 64"

run "$BIN" tokenize --tokenizer "$TOK" --show-mask
want_rc 64
want_err "need --data"
done_check "tokenize --show-mask without --data: exit 64"

run "${DRY[@]}" "$W/does-not-exist.jsonl"
want_rc 66
want_err "$W/does-not-exist.jsonl"
done_check "train --dry-run with a missing data file: exit 66"

run "${DRY[@]}" "$W/bad1.jsonl"
want_rc 65
want_err "$W/bad1.jsonl:1: invalid JSON"
done_check "train --dry-run with a bad row: FILE:LINE: reason, exit 65"

run "${DRY[@]}" --skip-bad-rows "$W/bad1.jsonl"
want_rc 0
grep -qE 'bad 1|1 bad' "$W/err" || WHY+=("stderr does not report 1 bad row")
done_check "train --dry-run --skip-bad-rows: reports 'bad 1'"

# ---------------------------------------------------------------------------------------------------
# tokenize: stdin, --decode, --allow-special

printf '\xff\xfe abc' >"$W/raw.bin"
run --in "$W/raw.bin" "$BIN" tokenize --tokenizer "$TOK"
cp "$W/out" "$W/raw.ids"
want_rc 0
run --in "$W/raw.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 0
cp "$W/out" "$W/raw.back"
want_same_file "$W/raw.back" "$W/raw.bin"
done_check "encode then --decode of invalid UTF-8 bytes round-trips byte-exactly"

cat "$W/samples.jsonl" "$W/raw.bin" "$W/bom.jsonl" >"$W/mixed.bin"
printf '\r\n\t  \xe2\x80\xa8 \xc2\x85 \xef\xbb\xbf end\n\n' >>"$W/mixed.bin"
run --in "$W/mixed.bin" "$BIN" tokenize --tokenizer "$TOK"
cp "$W/out" "$W/mixed.ids"
run --in "$W/mixed.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 0
cp "$W/out" "$W/mixed.back"
want_same_file "$W/mixed.back" "$W/mixed.bin"
done_check "encode then --decode round-trips a mixed text byte-exactly (newlines, BOM, U+2028, U+0085)"

printf 'a<|endoftext|>b' >"$W/special.txt"
run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$TOK" --allow-special
want_rc 0
want_out_line "64 $EOS 65"
done_check "--allow-special: <|endoftext|> becomes $EOS"

run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$TOK"
want_rc 0
want_out_line "64 27 91 437 1659 5239 91 29 65"
done_check "without --allow-special: <|endoftext|> is ordinary text"

echo "64 $EOS 65" >"$W/special.ids"
run --in "$W/special.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 0
want_eq "$(cat "$W/out")" "a<|endoftext|>b" "decoded"
done_check "--decode of $EOS gives <|endoftext|>"

echo "64 50257" >"$W/oob.ids"
run --in "$W/oob.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 65
want_err "50257"
done_check "--decode of an out-of-range id: exit 65"

echo "-1" >"$W/neg.ids"
run --in "$W/neg.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 65
want_err "-1"
done_check "--decode of a negative id: exit 65"

echo "99999999999999999999" >"$W/huge.ids"
run --in "$W/huge.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 65
want_err "99999999999999999999"
done_check "--decode of an id that overflows: exit 65 quoting it"

echo "64 abc" >"$W/word.ids"
run --in "$W/word.ids" "$BIN" tokenize --tokenizer "$TOK" --decode
want_rc 65
want_err "--decode"
done_check "--decode of a non-number: exit 65"

run "$BIN" tokenize --tokenizer "$TOK" --decode --data "$SAMPLES/text.jsonl"
want_rc 64
want_err "--decode"
done_check "tokenize --data with --decode: exit 64"

# ---------------------------------------------------------------------------------------------------
# train-tokenizer

TK1=$W/tk1
TK2=$W/tk2
TK_FILES="tokenizer.json vocab.json merges.txt tokenizer_config.json special_tokens_map.json"
run "$BIN" train-tokenizer --vocab-size 400 --out "$TK1" "$SAMPLES"/*.jsonl
want_rc 0
for f in $TK_FILES; do [ -s "$TK1/$f" ] || WHY+=("missing $TK1/$f"); done
want_err "400-id tokenizer"
done_check "train-tokenizer --vocab-size 400 writes the five files"

run "$BIN" train-tokenizer --vocab-size 400 --out "$TK2" "$SAMPLES"/*.jsonl
want_rc 0
for f in $TK_FILES; do want_same_file "$TK1/$f" "$TK2/$f"; done
done_check "train-tokenizer twice: byte-identical files"

SAMPLE_TEXT="The quick brown fox, 42 apples"$'\n'"and a café ☕ <|endoftext|> end"
printf %s "$SAMPLE_TEXT" >"$W/sample.txt"
run --in "$W/sample.txt" "$BIN" tokenize --tokenizer "$TK1"
want_rc 0
cp "$W/out" "$W/tk_dir.ids"
run --in "$W/sample.txt" "$BIN" tokenize --tokenizer "$TK1/vocab.json"
want_rc 0
want_same_file "$W/out" "$W/tk_dir.ids"
run --in "$W/sample.txt" "$BIN" tokenize --tokenizer "$TK1/tokenizer.json"
want_rc 0
want_same_file "$W/out" "$W/tk_dir.ids"
[ "$(wc -w <"$W/tk_dir.ids")" -lt "$(printf %s "$SAMPLE_TEXT" | wc -c)" ] || WHY+=("no merge was used")
done_check "trained tokenizer loads from DIR, DIR/vocab.json (+ merges.txt) and DIR/tokenizer.json with identical ids"

mkdir -p "$W/tk_vm"
cp "$TK1/vocab.json" "$TK1/merges.txt" "$W/tk_vm/"
run --in "$W/sample.txt" "$BIN" tokenize --tokenizer "$W/tk_vm"
want_rc 0
want_same_file "$W/out" "$W/tk_dir.ids"
done_check "a folder with only vocab.json + merges.txt gives the same ids"

run --in "$W/tk_dir.ids" "$BIN" tokenize --tokenizer "$TK1" --decode
want_rc 0
cp "$W/out" "$W/tk.back"
want_same_file "$W/tk.back" "$W/sample.txt"
done_check "trained tokenizer: decode(encode(x)) == x"

run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$TK1" --allow-special
want_rc 0
read -r -a SP <<<"$(cat "$W/out")"
want_eq "${SP[1]:-}" 399 "id of <|endoftext|>"
done_check "trained tokenizer: <|endoftext|> is the last id (vocab size - 1 = 399)"

echo 400 >"$W/400.ids"
run --in "$W/400.ids" "$BIN" tokenize --tokenizer "$TK1" --decode
want_rc 65
want_err "400"
done_check "trained tokenizer: id 400 is out of range"

run "$BIN" tokenize --tokenizer "$TK1" --data "$W/emptyprompt.jsonl" --show-mask
want_rc 0
want_out "399 ["
want_out "[399]\$"
not_out "$EOS"
done_check "the data loader uses the tokenizer's EOS (399), not a fixed $EOS"

run "$BIN" train-tokenizer --vocab-size 100 --out "$W/tk_small" "$SAMPLES"/*.jsonl
want_rc 64
want_err "--vocab-size"
done_check "train-tokenizer --vocab-size 100: exit 64"

: >"$W/regular-file"
run "$BIN" train-tokenizer --vocab-size 400 --out "$W/regular-file/sub" "$SAMPLES"/*.jsonl
want_rc 73
want_err "$W/regular-file/sub"
done_check "train-tokenizer --out under a regular file: exit 73"

run "$BIN" train-tokenizer --vocab-size 400 --out "$W/tk_bad" "$W/bad1.jsonl"
want_rc 65
want_err "$W/bad1.jsonl:1: invalid JSON"
done_check "train-tokenizer on a file with a bad row: FILE:LINE: reason, exit 65"

run "$BIN" train-tokenizer --vocab-size 400 --out "$W/tk_missing" "$W/does-not-exist.jsonl"
want_rc 66
want_err "$W/does-not-exist.jsonl"
done_check "train-tokenizer on a missing file: exit 66"

# ---------------------------------------------------------------------------------------------------
# tokenizer files that cannot be used

run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$W/no-such-tokenizer"
want_rc 66
want_err "$W/no-such-tokenizer"
done_check "tokenizer path that does not exist: exit 66"

mkdir -p "$W/emptydir"
run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$W/emptydir"
want_rc 66
want_err "$W/emptydir"
done_check "a folder without tokenizer files: exit 66"

mkdir -p "$W/tk_corrupt"
TKJ_SIZE=$(stat -c %s "$TK1/tokenizer.json" 2>/dev/null || echo 2000)
head -c $((TKJ_SIZE / 2)) "$TK1/tokenizer.json" >"$W/tk_corrupt/tokenizer.json" 2>/dev/null
run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$W/tk_corrupt"
want_rc 65
want_err "$W/tk_corrupt/tokenizer.json"
done_check "truncated tokenizer.json: exit 65 naming the file"

mkdir -p "$W/tk_merges"
cp "$TK1/vocab.json" "$W/tk_merges/"
awk 'NR == 5 { $0 = $0 " x" } { print }' "$TK1/merges.txt" >"$W/tk_merges/merges.txt"
run --in "$W/special.txt" "$BIN" tokenize --tokenizer "$W/tk_merges"
want_rc 65
want_err "$W/tk_merges/merges.txt:5:"
done_check "merges.txt line with three tokens: exit 65 naming file and line"

run "$BIN" --dry-run --preset tiny --threads 1 --tokenizer "$W/tk_corrupt" "$SAMPLES/text.jsonl"
want_rc 65
want_err "$W/tk_corrupt/tokenizer.json"
done_check "train with a corrupt tokenizer: exit 65"

# ---------------------------------------------------------------------------------------------------
cp "$W/enc.err" "$W/err"
san_check
want_eq "$(wc -c <"$W/err")" 0 "bytes on stderr"
done_check "helper runs of 'iqtrain tokenize' (enc) printed nothing on stderr"

finish
