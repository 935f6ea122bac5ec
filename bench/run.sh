#!/usr/bin/env bash
# Builds the release binary and the load client, then runs both benchmarks and prints
# the figures. Honours CARGO_TARGET_DIR (default: ./target of the workspace).
#
#   bench/run.sh                      # defaults: 30 cold starts; 8 sessions x 10 s
#   bench/run.sh -- --auth-key K      # flags after -- go to `rampart serve` (HTTP run only)
#
# Knobs (environment): RUNS (cold starts, 30), CONCURRENCY (8), DURATION (10 s),
# WARMUP (2 s), REPEAT (HTTP runs, median reported; 3), CLIENT (rust | python).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if [[ "${1:-}" == "--" ]]; then shift; fi

echo "== building (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
cargo build --release -p rampart-cli >&2
cargo build --release --manifest-path bench/loadgen/Cargo.toml >&2

bin="$CARGO_TARGET_DIR/release/rampart"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

status=0
echo "== cold start" >&2
python3 bench/cold_start.py --bin "$bin" -n "${RUNS:-30}" | tee -a "$out" || status=1

echo "== calls per second" >&2
python3 bench/calls_per_second.py --bin "$bin" --client "${CLIENT:-rust}" \
  -c "${CONCURRENCY:-8}" -d "${DURATION:-10}" -w "${WARMUP:-2}" -r "${REPEAT:-3}" -- "$@" | tee -a "$out" || status=1

echo
echo "== results ($(date -u +%F), $(nproc) CPUs, $("$bin" --version 2>/dev/null || echo rampart))"
grep -E '^[a-z0-9_]+=' "$out"
if grep -q WARNING "$out"; then echo "(noisy: other processes were busy during a run, see WARNING above)"; fi
if [[ $status != 0 ]]; then echo "a benchmark FAILED (see above)"; fi
exit "$status"
