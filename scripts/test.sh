#!/usr/bin/env bash
# Runs every test of Moat: unit tests, integration tests (real sandboxes running busybox,
# the host's programs and compiled C programs) and the syscall-test suite with its score.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --bins
cargo test --workspace -- --test-threads=2 --show-output
