#!/usr/bin/env bash
# The project's test command (README, .ci/run): prepare the machine, then formatting, lints and
# every test of the workspace against the real PostgreSQL, Redis, NATS and a Qdrant server.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside the clone, so repeated runs on one machine reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/daarion/target}"
export DAARION_TEST_MODELS="${DAARION_TEST_MODELS:-/var/cache/daarion/test-models}"
export DAARION_TEST_FALKORDB="${DAARION_TEST_FALKORDB:-/var/cache/daarion/falkordb}"
export DAARION_TEST_FIXTURES="${DAARION_TEST_FIXTURES:-/var/cache/daarion/fixtures}"
# The Qdrant server tests/setup.sh starts (gRPC, what qdrant-client speaks).
export DAARION_TEST_QDRANT_URL="${DAARION_TEST_QDRANT_URL:-http://127.0.0.1:16334}"
mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || { export CARGO_TARGET_DIR="$HOME/.cache/daarion/target"; mkdir -p "$CARGO_TARGET_DIR"; }

# Outside CI a check whose tool or server is missing here skips (under CI=true it fails). cargo
# never shows a passing test's output, so each skip writes a line to this file, and the run ends
# by listing them: a green run by hand must not read as "everything was tested".
DAARION_TEST_SKIPS="$(mktemp "${TMPDIR:-/tmp}/daarion-skips.XXXXXX")"
export DAARION_TEST_SKIPS
skipped() { printf '%s\n' "$*" >>"$DAARION_TEST_SKIPS"; }
report_skips() {
  if [ -s "$DAARION_TEST_SKIPS" ]; then
    local n
    n=$(wc -l <"$DAARION_TEST_SKIPS")
    {
      printf '\n[run] ================================================================\n'
      printf '[run] %d CHECK(S) SKIPPED: this run did NOT test everything\n' "$n"
      sort "$DAARION_TEST_SKIPS" | uniq -c | sed -E 's/^ *([0-9]+) /[run]   \1 x /'
      printf '[run] CI=true fails instead of skipping; tests/setup.sh installs what they need.\n'
      printf '[run] ================================================================\n'
    } >&2
  fi
  rm -f "$DAARION_TEST_SKIPS"
}
trap report_skips EXIT

bash tests/setup.sh
# The supervisor's systemd and Chromium checks skip without a word of their own; the same
# conditions they test, read here.
if [ "${CI:-}" != "true" ]; then
  command -v systemd-analyze >/dev/null \
    || skipped "daarion-supervisor unit_file_verifies: systemd-analyze is not installed"
  { [ -f "${DAARION_E2E_CHROMIUM:-/usr/bin/chromium}" ] && [ -d web-ui/node_modules/playwright-core ]; } \
    || skipped "daarion-supervisor the_admin_ui_works_end_to_end_in_chromium: no Chromium or playwright-core"
fi

echo "[run] web UI unit tests (vitest)"
npm --prefix web-ui test --silent
echo "[run] monitoring: alert rules, their unit tests, Alertmanager config, dashboards"
bash tests/monitoring.sh
echo "[run] cargo fmt --check"
cargo fmt --all --check
echo "[run] cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "[run] cargo build (every binary: the tests run the llama.cpp worker as a process)"
cargo build --workspace --bins --locked
echo "[run] cargo test"
cargo test --workspace --locked --no-fail-fast
echo "[run] installer"
installer_log="$(mktemp "${TMPDIR:-/tmp}/daarion-installer.XXXXXX")"
bash tests/installer.sh | tee "$installer_log"
if grep -q '^installer tests skipped' "$installer_log"; then
  skipped "installer: $(grep '^installer tests skipped' "$installer_log")"
fi
rm -f "$installer_log"
