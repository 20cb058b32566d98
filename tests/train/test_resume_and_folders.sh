#!/usr/bin/env bash
# tests/train/test_resume_and_folders.sh — the holes issue #13 found, each a check that failed before its fix:
#   1. resuming refuses a checkpoint of another model (same parameter count), naming the field;
#   2. the checkpoint of the last step records its eval loss (so --keep-best can keep it);
#   4. final/ is renamed and then its parent folder fsynced (strace);
#   5. eval and generate build an inference-only model (no gradient arenas: peak RSS well under 2x the
#      weights), and resuming builds no second model (peak RSS no higher than a fresh run's);
#   6. config.json and generation_config.json carry the tokenizer's end-of-text id as bos/eos, not vocab - 1;
#   8. eval, generate, score and --model verify a checkpoint folder's CRC-32s (a flipped byte: exit 65);
#   9. a run.json from before an option existed resumes when the option is at its default.
#
#   usage: tests/train/test_resume_and_folders.sh IQTRAIN_BINARY REPO_ROOT
set -u
source "$(dirname "$0")/../lib/harness.sh"
harness_init folders "$@"

DATA=$W/data.jsonl
zcat "$ROOT/data/arith/train.jsonl.gz" | head -n 200 >"$DATA"
run "$BIN" train-tokenizer --vocab-size 300 --out "$W/tok" "$DATA"
want_rc 0
done_check "setup: train-tokenizer"
TRAIN=("$BIN" --tokenizer "$W/tok" --preset tiny --batch-size 4 --threads 1 --log-every 1 --lr 1e-3 --warmup 0)

# peak resident set of a command in MB (GNU time's %M is in KB); stdout/stderr as run leaves them. Under ASan a
# small quarantine: oneDNN's sgemm mallocs and frees its packing buffers on every call, which glibc reuses but
# ASan's default 256 MB quarantine holds back (eval: 285 MB against 141 with 8 MB; Release 125)
peak_mb() {
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8" /usr/bin/time -f "%M" -o "$W/rss" "$@" >"$W/out" 2>"$W/err"
    RC=$?
    echo $(( $(tail -n 1 "$W/rss") / 1024 ))
}

# ---- 1. another model's checkpoint (n_head 2 vs 4: the same parameter count) is refused by field
run "${TRAIN[@]}" --n-head 2 --max-steps 2 --save-every 2 --out A "$DATA"
want_rc 0
mkdir -p lone && cp -r A/checkpoint-2 lone/ # no run.json beside it: only the model itself can tell
run "${TRAIN[@]}" --n-head 4 --max-steps 4 --resume lone/checkpoint-2 --out B "$DATA"
want_rc 64
want_err "n_head"
want_no B/checkpoint-4
done_check "resume refuses a checkpoint of another model of the same size, naming n_head"

# ---- 2. eval at the last step (not a multiple of --eval-every) is in that step's trainer state
run "${TRAIN[@]}" --max-steps 5 --eval-every 3 --save-every 5 --eval-split 0.1 --out E "$DATA"
want_rc 0
want_eq "$("$PY" -c 'import json,sys; print("eval_loss" in json.load(open(sys.argv[1])))' E/checkpoint-5/trainer_state.json 2>&1)" \
    True "checkpoint-5 has eval_loss"
done_check "the last step's eval loss is in its checkpoint (keep-best can keep it)"

# ---- 4. final/ is renamed into place and then OUT is fsynced
if command -v strace >/dev/null; then
    # (LeakSanitizer cannot run under ptrace: off for this one run of a sanitizer build)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -qq -e trace=rename,renameat,renameat2,openat,fsync -o "$W/trace" "${TRAIN[@]}" --max-steps 1 --out F "$DATA" \
        >"$W/out" 2>"$W/err"
    RC=$?
    want_rc 0
    want_eq "$("$PY" - "$W/trace" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
ren = [i for i, l in enumerate(lines) if "rename" in l and '"F/final"' in l]
if not ren:
    print("no rename onto F/final"); sys.exit()
fds = {}
ok = False
for l in lines[ren[-1]:]:
    m = re.search(r'openat\(AT_FDCWD, "F/?", [^)]*\) = (\d+)', l)
    if m: fds[m.group(1)] = True
    m = re.search(r'fsync\((\d+)\)', l)
    if m and m.group(1) in fds: ok = True
print("ok" if ok else "F not fsynced after the rename of final/")
PY
)" ok "fsync of OUT after final/"
    done_check "final/ is renamed and its parent folder fsynced"
else
    skip_check "final/ is renamed and its parent folder fsynced" "strace is not installed"
fi

# ---- 5. inference builds no training arenas; resuming builds no second model
run "${TRAIN[@]}" --n-layer 4 --n-embd 512 --n-head 8 --ctx 64 --max-seq-len 64 --max-steps 1 --save-every 1 --out G "$DATA"
want_rc 0
weights=$(( $(stat -c %s G/final/model.safetensors) / 1048576 ))
gen=$(peak_mb "$BIN" generate --model G/final --prompt "1 + 1 =" --max-new-tokens 4 --temperature 0 --threads 1)
want_rc 0
ev=$(peak_mb "$BIN" eval --model G/final --data "$DATA" --threads 1)
want_rc 0
[ "$gen" -lt $(( weights * 3 / 2 + 40 )) ] || WHY+=("generate peak RSS $gen MB with $weights MB of weights")
[ "$ev" -lt $(( weights * 3 / 2 + 80 )) ] || WHY+=("eval peak RSS $ev MB with $weights MB of weights")
echo "# weights $weights MB, generate $gen MB, eval $ev MB peak RSS"
done_check "generate and eval allocate no training memory (peak RSS < 1.5x the weights)"
fresh=$(peak_mb "${TRAIN[@]}" --n-layer 4 --n-embd 512 --n-head 8 --ctx 64 --max-seq-len 64 --max-steps 2 --out G2 "$DATA")
want_rc 0
res=$(peak_mb "${TRAIN[@]}" --n-layer 4 --n-embd 512 --n-head 8 --ctx 64 --max-seq-len 64 --max-steps 2 --save-every 1 \
    --resume auto --out G "$DATA")
want_rc 0
[ "$res" -le $(( fresh + 16 )) ] || WHY+=("resume peak RSS $res MB, a fresh run $fresh MB")
echo "# fresh run $fresh MB, resumed run $res MB peak RSS"
done_check "resuming needs no more memory than a fresh run"

# ---- 6. bos/eos: the tokenizer's end-of-text id, also when the model's vocabulary is larger
"$PY" - "$W/tok" G/final big <<'PY' >"$W/out" 2>"$W/err"
import json, os, shutil, struct, sys
tok, src, dst = sys.argv[1:]
shutil.copytree(src, dst)
cfg = json.load(open(os.path.join(dst, "config.json")))
V, C = cfg["vocab_size"], cfg["n_embd"]
path = os.path.join(dst, "model.safetensors")
b = open(path, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
out, blobs, off = {}, [], 0
for name, t in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
    if name == "__metadata__":
        out[name] = t
        continue
    raw = data[t["data_offsets"][0]:t["data_offsets"][1]]
    shape = t["shape"]
    if name == "wte.weight":  # 8 more ids than the tokenizer has
        raw += bytes(8 * C * 4)
        shape = [V + 8, C]
    out[name] = {"dtype": t["dtype"], "shape": shape, "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
hj = json.dumps(out).encode()
open(path, "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
cfg["vocab_size"] = V + 8
json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
print(V)
PY
RC=$?
want_rc 0
eos=$(head -n 1 "$W/out")
run "$BIN" --model big --max-steps 0 --threads 1 --out H "$DATA"
want_rc 0
want_eq "$("$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); g=json.load(open(sys.argv[2])); print(c["bos_token_id"], c["eos_token_id"], g["bos_token_id"], g["eos_token_id"])' H/final/config.json H/final/generation_config.json 2>&1)" \
    "$((eos - 1)) $((eos - 1)) $((eos - 1)) $((eos - 1))" "bos/eos ids (the tokenizer's end-of-text is id $((eos - 1)); the model has $((eos + 8)) ids)"
done_check "config.json and generation_config.json name the tokenizer's end-of-text id"

# ---- 8. a checkpoint read for eval, generate, score or --model is verified against its CRC-32s
cp -r A/checkpoint-2 C2
size=$(stat -c %s C2/model.safetensors)
printf '\x5a' | dd of=C2/model.safetensors bs=1 seek=$((size / 2)) conv=notrunc status=none
cmp -s A/checkpoint-2/model.safetensors C2/model.safetensors && WHY+=("the flip did not change the file")
for cmd in "eval --model C2 --data $DATA" "generate --model C2 --prompt x --max-new-tokens 2" "score --model C2 --data $DATA" \
    "--model C2 --max-steps 1 --out M $DATA"; do
    # shellcheck disable=SC2086
    run "$BIN" $cmd --threads 1
    [ "$RC" = 65 ] || WHY+=("iqtrain $cmd: exit $RC, expected 65")
    grep -qF "C2/model.safetensors" "$W/err" || WHY+=("iqtrain $cmd: the message does not name C2/model.safetensors")
done
done_check "a corrupt checkpoint is refused by eval, generate, score and --model (65, naming the file)"

# ---- 9. a run folder written before an option existed resumes (the option at its default is unchanged)
run "${TRAIN[@]}" --max-steps 2 --save-every 1 --out O "$DATA"
"$PY" - O/run.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("online-mix", "chat-template"):
    del j["options"][k]
json.dump(j, open(sys.argv[1], "w"))
PY
run "${TRAIN[@]}" --max-steps 3 --save-every 1 --out O --resume auto "$DATA"
want_rc 0
run "${TRAIN[@]}" --max-steps 4 --save-every 1 --out O --resume auto --online-mix 0.1 "$DATA"
want_rc 64
want_err "online-mix"
done_check "an option missing from an older run.json counts as unchanged at its default, and as changed otherwise"

finish
