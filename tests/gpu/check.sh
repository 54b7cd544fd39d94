#!/usr/bin/env bash
# The GPU check of the swapper: real CUDA builds of the llama.cpp and stable-diffusion.cpp
# workers, under the real swapper, on a lent GPU machine, with models of real size made there
# (random weights: the machine reaches no model hub and at most 64 MiB travel). Figures:
# generation speed through the swapper next to the worker alone, time to first token, load
# times, vision with a CLIP ViT-L/14-336 projector, SD 1.5-sized image generation, footprints
# measured through NVML next to nvidia-smi, memory given back after an unload, and swaps under a
# one-model budget. tests/gpu/drive.py takes the measurements.
#
# Prepare here (no GPU needed):  bash tests/gpu/build.sh   (.gpu/llama.tar.xz, .gpu/sd.tar.xz)
# Run there, one device call per pack (each call may carry 64 MiB):
#   run(command="bash tests/gpu/check.sh", carry=[".gpu/llama.tar.xz"], timeout_s=540)
#   run(command="bash tests/gpu/check.sh", carry=[".gpu/sd.tar.xz"], timeout_s=300)
# Dry run on a CPU:              GPU_CHECK_SMALL=1 GPU_CHECK_PYTHON=<a python with numpy> \
#   GPU_CHECK_LD_PATH=/var/cache/daarion/cuda-13.0/lib:/var/cache/daarion/cuda-13.0/lib/stubs bash tests/gpu/check.sh
# (the same CUDA builds, which find no GPU through the stub driver and run on the CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PACKS=${GPU_PACKS:-$ROOT/.gpu}
OUT=${OUT:-/tmp/daarion-gpu-out}
WORK=${GPU_WORK:-/tmp/daarion-gpu}
SMALL=${GPU_CHECK_SMALL:-0}
# The GPU machine's python3 has numpy; elsewhere name one that has (GPU_CHECK_PYTHON).
PY=${GPU_CHECK_PYTHON:-python3}
PACK=$WORK/pack
rm -rf "$WORK"
mkdir -p "$OUT" "$PACK" "$WORK/models" "$WORK/manifests" "$WORK/data"
log() { printf '[gpu-check %s] %s\n' "$(date +%T)" "$*"; }

# The workers this run has: the packs that came (llama.tar.xz, sd.tar.xz), or GPU_CHECK_PARTS.
PARTS=${GPU_CHECK_PARTS:-$(for p in llama sd; do [ ! -f "$PACKS/$p.tar.xz" ] || printf '%s ' "$p"; done)}
[ -n "$PARTS" ] || { echo "no packs in $PACKS: run tests/gpu/build.sh first and carry them" >&2; exit 2; }
export PARTS
has() { [[ " $PARTS " == *" $1 "* ]]; }
for part in $PARTS; do
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
    "$PACKS/$part.tar.xz" "$PACK"
done
log "parts: $PARTS"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1 || log "no nvidia-smi: a CPU run"

# --- Libraries: the pack's llama.cpp; CUDA 13's runtime and cuBLAS from this machine -----------
cuda_libs=""
for dir in $(ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13/ {print $NF}' | xargs -r -n1 dirname) \
  /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13", "lib") for p in nvidia.__path__))' 2>/dev/null); do
  [ -e "$dir/libcublas.so.13" ] && [ -e "$dir/libcudart.so.13" ] && { cuda_libs=$dir; break; }
done
# The driver's libcuda.so.1 may sit outside the loader's cache (e.g. /usr/local/nvidia/lib64).
driver_libs=""
for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -e "$dir/libcuda.so.1" ] && driver_libs="${driver_libs:+$driver_libs:}$dir"
done
export LD_LIBRARY_PATH="$PACK/lib${cuda_libs:+:$cuda_libs}${driver_libs:+:$driver_libs}${GPU_CHECK_LD_PATH:+:$GPU_CHECK_LD_PATH}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "CUDA libraries: ${cuda_libs:-none found}"
for part in $PARTS; do
  bin=daarion-$part-worker
  if ldd "$PACK/bin/$bin" | grep 'not found'; then
    echo "$bin: libraries missing (above); LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >&2
    exit 3
  fi
done

# --- Models of real size, random weights, made here in parallel ---------------------------------
if [ -d "$PACK/wheels" ]; then
  "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" "$PACK"/wheels/*.whl
  export PYTHONPATH="$WORK/site"
fi
if [ "$SMALL" = 1 ]; then
  llm=small text_embd=128 vit="" sd=""
else
  llm=1b text_embd=2048 vit=vit-l-336 sd=sd15
fi
log "making the models"
pids=()
if has llama; then
  "$PY" tests/gpu/random_llama.py "$PACK/models/tokenizer.gguf" "$WORK/models/llm.gguf" $llm & pids+=($!)
  "$PY" tests/fixtures/tiny_mmproj.py "$WORK/models/mmproj.gguf" $text_embd $vit >/dev/null & pids+=($!)
fi
if has sd; then
  "$PY" tests/fixtures/tiny_sd.py "$WORK/models/sd.safetensors" $sd & pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid" || { echo "a model generator failed" >&2; exit 5; }; done
ls -la "$WORK/models"

if has llama; then
cat >"$WORK/manifests/llm.toml" <<EOF
id = "llm"
kind = "chat"
file = "llm.gguf"
context = 4096
gpu_layers = 999
estimate_mb = 3000
EOF
cat >"$WORK/manifests/vision.toml" <<EOF
id = "vision"
kind = "vision"
file = "llm.gguf"
mmproj = "mmproj.gguf"
context = 4096
gpu_layers = 999
estimate_mb = 3800
EOF
fi
if has sd; then
cat >"$WORK/manifests/sd.toml" <<EOF
id = "sd"
kind = "image"
file = "sd.safetensors"
estimate_mb = 4000

[image]
steps = 20
cfg_scale = 7.0
width = 512
height = 512
EOF
fi
token="root-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
echo "$token" >"$WORK/admin.token"

# --- The swapper, as the supervisor would run it ---------------------------------------------
swapper_pid=""
# The swapper will not start without a llama.cpp worker; an sd-only run names the sd worker
# there, which no chat manifest then uses.
start_swapper() { # $1: phase name, $2: budget in MiB (0: free VRAM less the reserve)
  DAARION__GENERAL__DATA_DIR="$WORK/data" DAARION__GENERAL__MODELS_DIR="$WORK/models" \
  DAARION__MODELS__MANIFESTS_DIR="$WORK/manifests" DAARION__MODELS__BUDGET_MB="$2" \
  DAARION__MODELS__LLAMA_WORKER="$PACK/bin/daarion-$(has llama && echo llama || echo sd)-worker" \
  DAARION__MODELS__SD_WORKER="$PACK/bin/daarion-sd-worker" \
  DAARION__SUPERVISOR__ADMIN_TOKEN_FILE="$WORK/admin.token" \
  DAARION__SWAPPER__LISTEN=127.0.0.1:18890 \
    "$PACK/bin/daarion" service swapper >"$OUT/swapper-$1.log" 2>&1 &
  swapper_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS http://127.0.0.1:18890/health >/dev/null 2>&1 && return 0
    kill -0 "$swapper_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$OUT/swapper-$1.log" >&2
  echo "the swapper did not start" >&2
  exit 4
}
stop_swapper() { kill -TERM "$swapper_pid" 2>/dev/null && wait "$swapper_pid" || true; }
trap stop_swapper EXIT

export SWAPPER_URL=http://127.0.0.1:18890 SWAPPER_TOKEN="$token"
export LLAMA_WORKER="$PACK/bin/daarion-llama-worker" LLM_FILE="$WORK/models/llm.gguf"
[ "$SMALL" = 1 ] && export GEN_TOKENS=32 IMAGE_SIZE=64 IMAGE_STEPS=2
rm -f "$OUT/report.md"

log "phase 1: reference, chat, vision, image generation, unload"
start_swapper main 0
"$PY" tests/gpu/drive.py "$OUT"
stop_swapper

budget=$(cat "$OUT/budget_mb")
log "phase 2: swaps under a ${budget} MiB budget (the measured footprints persist in the ledger)"
start_swapper swaps "$budget"
"$PY" tests/gpu/drive.py "$OUT" swaps
stop_swapper
trap - EXIT

log "done"
cat "$OUT/report.md"
