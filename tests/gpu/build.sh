#!/usr/bin/env bash
# Builds, on a machine WITHOUT a GPU, everything the GPU check (tests/gpu/check.sh) runs on a
# lent GPU machine, and packs it into .gpu/ (git-ignored), which the device tool carries there:
#
#   llama.tar.xz   bin/daarion (the appliance: links no native backend, loads NVML at run time),
#                  bin/daarion-llama-worker (CUDA, linked against the shared libraries in lib/),
#                  lib/ (llama.cpp's libllama, libmtmd, libggml*, CUDA), models/tokenizer.gguf
#                  (SmolLM2's tokenizer for the random-weight model made there), wheels/ (gguf-py)
#   sd.tar.xz      bin/daarion, bin/daarion-sd-worker (stable-diffusion.cpp, CUDA, static)
#
# The GPU machine has CUDA 13 and no Rust toolchain, and what travels is limited to 64 MiB, so
# the CUDA builds are made here with NVIDIA's CUDA 13.0 compiler from PyPI (no GPU is needed to
# compile) for one architecture (sm_90: H100/H200), and llama.cpp is linked dynamically so that
# its kernels are carried once. This is also the only place the installer's CUDA build
# (`--features daarion-*-worker/cuda`) is compiled and linked before a GPU box sees it.
#
# Usage: bash tests/gpu/build.sh   (about an hour per worker on 2 cores; start it early)
#        GPU_BUILD_PARTS=llama bash tests/gpu/build.sh   (one worker only)
#        GPU_BUILD_PARTS=whisper bash tests/gpu/build.sh (the whisper.cpp worker's CUDA build,
#        compiled and linked only: the check runs no speech, so it gets no pack; ~12 min)
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=/var/cache/daarion
CUDA="$CACHE/cuda-13.0"
TARGET="$CACHE/target-cuda"
MAIN_TARGET="${CARGO_TARGET_DIR:-$CACHE/target}"
MODELS="${DAARION_TEST_MODELS:-$CACHE/test-models}"
PACK=.gpu
ARCH="${CUDA_ARCH:-90}"
log() { printf '[gpu-build] %s\n' "$*"; }

# --- CUDA 13.0 from PyPI: compiler, runtime and cuBLAS, unpacked into one toolkit root --------
# 13.0 is what driver 580 (the lent machines') supports; the wheels all unpack to nvidia/cu13/.
if [ ! -x "$CUDA/bin/nvcc" ]; then
  log "fetching the CUDA 13.0 toolkit from PyPI into $CUDA"
  wheels=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$wheels" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14
  unpacked=$(mktemp -d)
  for w in "$wheels"/*.whl; do python3 -m zipfile -e "$w" "$unpacked"; done
  mkdir -p "$CUDA"
  cp -a "$unpacked/nvidia/cu13/." "$CUDA/"
  rm -rf "$wheels" "$unpacked"
  chmod +x "$CUDA"/bin/* "$CUDA"/nvvm/bin/*
  # CMake's FindCUDAToolkit wants lib64 and unversioned names; the wheels ship only sonames.
  ln -sfn lib "$CUDA/lib64"
  for l in cudart cublas cublasLt; do ln -sf "lib$l.so.13" "$CUDA/lib/lib$l.so"; done
fi
# The driver library (libcuda.so.1) comes with the NVIDIA driver, which this machine has not:
# link against a stub that names every driver entry point cuda.h declares. Its functions
# return CUDA_ERROR_STUB_LIBRARY; the GPU machine's real driver replaces it at run time.
if [ ! -f "$CUDA/lib/stubs/libcuda.so" ]; then
  mkdir -p "$CUDA/lib/stubs"
  grep -ohE '\bcu[A-Z][A-Za-z0-9_]*' "$CUDA/include/cuda.h" | sort -u \
    | awk '{ printf "int %s(void) { return 34; }\n", $1 }' >"$CUDA/lib/stubs/libcuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA/lib/stubs/libcuda.so" "$CUDA/lib/stubs/libcuda.c"
  ln -sf libcuda.so "$CUDA/lib/stubs/libcuda.so.1"
fi
# diffusion-rs-sys asks for culibos, which only static CUDA libraries need; these are dynamic.
[ -f "$CUDA/lib/libculibos.a" ] || ar rcs "$CUDA/lib/libculibos.a"

# --- The CUDA workers, in their own target dir (the features differ from the CPU build) ------
export PATH="$CUDA/bin:$PATH"
export CUDACXX="$CUDA/bin/nvcc" CUDAToolkit_ROOT="$CUDA" CUDA_PATH="$CUDA"
export CUDAARCHS="$ARCH" CUDA_COMPUTE_CAP="$ARCH"
# FlashAttention's kernels are most of ggml's CUDA compile time (two copies of ggml here); the
# check measures without them unless GPU_CHECK_FA=1. llama.cpp then runs attention unfused.
[ "${GPU_CHECK_FA:-0}" = 1 ] || export CUDAFLAGS="-DGGML_CUDA_NO_FA"
export LIBRARY_PATH="$CUDA/lib:$CUDA/lib/stubs"
# llama.cpp as shared libraries: one copy of its CUDA kernels for the worker.
export LLAMA_BUILD_SHARED_LIBS=1
# GPU_BUILD_PARTS: "llama", "sd" or both (the default), and "whisper"; each ggml copy is up to
# an hour here.
PARTS=${GPU_BUILD_PARTS:-llama sd}
packs=() packages=() features=()
for part in $PARTS; do
  [ "$part" != whisper ] || continue
  packs+=("$part")
  packages+=(-p "daarion-$part-worker")
  features+=("daarion-$part-worker/cuda")
done
export RUSTFLAGS="-L native=$CUDA/lib -L native=$CUDA/lib/stubs"
if [ ${#packages[@]} -gt 0 ]; then
  log "building the CUDA workers (${packages[*]}) for sm_$ARCH in $TARGET"
  CARGO_TARGET_DIR="$TARGET" cargo build --locked "${packages[@]}" --features "$(IFS=,; echo "${features[*]}")"
fi
if [[ " $PARTS " == *" whisper "* ]]; then
  # whisper-rs-sys sets CMAKE_CUDA_FLAGS itself, so CUDAFLAGS never reaches it; it passes on
  # every CMAKE_* variable of the environment, which come after its own.
  log "building the CUDA whisper.cpp worker for sm_$ARCH in $TARGET (compiled and linked only)"
  CARGO_TARGET_DIR="$TARGET" CMAKE_CUDA_FLAGS="-Xcompiler=-fPIC ${CUDAFLAGS:-}" \
    cargo build --locked -p daarion-whisper-worker --features daarion-whisper-worker/cuda
fi
unset RUSTFLAGS
[ ${#packs[@]} -gt 0 ] || { log "nothing to pack"; exit 0; }

log "building the appliance binary"
CARGO_TARGET_DIR="$MAIN_TARGET" cargo build --locked -p daarion

# --- The packs: one xz-compressed tarball per worker, each with the daarion binary, because
# what one device call carries is limited to 64 MiB and the two CUDA builds together exceed it.
mkdir -p "$PACK"
for part in "${packs[@]}"; do
  rm -f "$PACK/$part.tar.xz"
  stage="$CACHE/gpu-stage-$part"
  rm -rf "$stage"
  mkdir -p "$stage/bin"
  cp "$MAIN_TARGET/debug/daarion" "$TARGET/debug/daarion-$part-worker" "$stage/bin/"
  if [ "$part" = llama ]; then
    # The shared libraries the llama worker was linked against.
    mkdir -p "$stage/lib" "$stage/models" "$stage/wheels"
    find "$TARGET/debug/build" -path '*llama-cpp-sys-2-*/out/lib/*' -name 'lib*.so*' -exec cp -P {} "$stage/lib/" \;
    # The tokenizer and chat template of a small real GGUF, without its tensors.
    "$CACHE/fixtures/.venv/bin/python3" tests/gpu/random_llama.py \
      "$MODELS/tiny-random-llama.gguf" "$stage/models/tokenizer.gguf" tokenizer
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$stage/wheels" gguf==0.19.0
  fi
  find "$stage" -type f \( -path '*/bin/*' -o -name '*.so*' \) -exec strip --strip-unneeded {} \; 2>/dev/null || true
  tar -C "$stage" -cf - . | xz -T0 -6 >"$PACK/$part.tar.xz"
done
ls -la "$PACK"
log "packed $PACK; on the GPU machine, one device call per pack:"
log "  run(command=\"bash tests/gpu/check.sh\", carry=[\".gpu/PART.tar.xz\"], timeout_s=540)"
