#!/usr/bin/env bash
# What the security pipeline costs: tool calls per second with everything on (API-token
# authentication, policy, hash-chained audit to the embedded SQLite store) against the
# same server with --insecure-no-auth and audit off, interleaved, in one run.
# Target (issue #3): at most 15% of throughput, with the defaults (asynchronous audit
# commit). Also measured and printed, not part of the target: the same secure server with
# `audit.synchronous = true` (every result waits for its record to be stored).
#
#   bench/pipeline_cost.sh            # REPEAT=3 rounds of each, DURATION=10 s, CONCURRENCY=8
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p rampart-cli >&2
cargo build --release --manifest-path bench/loadgen/Cargo.toml >&2
bin="$CARGO_TARGET_DIR/release/rampart"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '[audit]\nenabled = false\n' > "$work/no-audit.toml"
printf '[audit]\nsynchronous = true\n' > "$work/sync-audit.toml"

run() { # label, server flags...
  local label="$1"; shift
  python3 bench/calls_per_second.py --bin "$bin" -c "${CONCURRENCY:-8}" -d "${DURATION:-10}" -w 2 -r 1 -- "$@" \
    | sed -n 's/^calls_per_second=\([0-9.]*\).*/\1/p' | sed "s/^/$label /"
}

for _ in $(seq 1 "${REPEAT:-3}"); do
  run secure >>"$work/results"
  run open --insecure-no-auth --config "$work/no-audit.toml" >>"$work/results"
  run secure_synchronous --config "$work/sync-audit.toml" >>"$work/results"
done
cat "$work/results" >&2
python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, value = line.split()
    runs.setdefault(label, []).append(float(value))
secure, open_ = statistics.median(runs["secure"]), statistics.median(runs["open"])
print(f"calls_per_second_secure={secure:.0f}")
print(f"calls_per_second_open={open_:.0f}")
sync = statistics.median(runs["secure_synchronous"])
print(f"calls_per_second_secure_synchronous={sync:.0f}")
print(f"pipeline_cost_percent={100 * (1 - secure / open_):.1f}")
print(f"pipeline_cost_percent_synchronous={100 * (1 - sync / open_):.1f}")
PY
