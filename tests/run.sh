#!/usr/bin/env bash
# The project's test command (README, .ci/run): prepare the machine, then formatting, lints and
# every test of the workspace against the real PostgreSQL, Redis and NATS.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside the clone, so repeated runs on one machine reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/daarion/target}"
export DAARION_TEST_MODELS="${DAARION_TEST_MODELS:-/var/cache/daarion/test-models}"
export DAARION_TEST_FALKORDB="${DAARION_TEST_FALKORDB:-/var/cache/daarion/falkordb}"
export DAARION_TEST_FIXTURES="${DAARION_TEST_FIXTURES:-/var/cache/daarion/fixtures}"
mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || { export CARGO_TARGET_DIR="$HOME/.cache/daarion/target"; mkdir -p "$CARGO_TARGET_DIR"; }

bash tests/setup.sh

echo "[run] web UI unit tests (vitest)"
npm --prefix web-ui test --silent
echo "[run] cargo fmt --check"
cargo fmt --all --check
echo "[run] cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "[run] cargo build (every binary: the tests run the llama.cpp worker as a process)"
cargo build --workspace --bins --locked
echo "[run] cargo test"
cargo test --workspace --locked --no-fail-fast
echo "[run] installer"
bash tests/installer.sh
