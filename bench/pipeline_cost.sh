#!/usr/bin/env bash
# What the security pipeline costs (issue #3 target: at most 15% of throughput): builds the
# release binary and bench/loadgen, then runs bench/pipeline_cost.py, which starts the
# secure server (API token, policy, audit to SQLite: the defaults), the open one
# (--insecure-no-auth, audit off) and the secure one with synchronous audit side by side,
# and loads them in alternating short slices, so that the machine's drifts cancel.
#
#   bench/pipeline_cost.sh                 # ROUNDS=15 rounds of SLICE=3 s per server
#   ROUNDS=30 SLICE=2 CONCURRENCY=16 bench/pipeline_cost.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p rampart-cli >&2
cargo build --release --manifest-path bench/loadgen/Cargo.toml >&2
exec python3 bench/pipeline_cost.py --bin "$CARGO_TARGET_DIR/release/rampart" \
  --rounds "${ROUNDS:-15}" --slice "${SLICE:-3}" -c "${CONCURRENCY:-8}" "$@"
