#!/usr/bin/env bash
# Runs every test of Rampart, from a fresh clone:
#   1. installs the pinned third-party MCP clients into tests/clients (Node 22, the
#      official conformance suite and MCP Inspector from npm; the Python SDK into a venv);
#   2. cargo nextest: unit tests and the end-to-end tests that drive the real binary with
#      rmcp's client, the Python SDK and the Inspector CLI, and the examples' tests; then
#      the doctests (the crates' examples and docs/toolbox-guide.md);
#   3. a short soak (bench/soak.py: 20,000 calls with tokens, policy and audit, memory and
#      descriptors flat, every call recorded once, the audit log verifying);
#   4. the official MCP conformance suite (active server scenarios) against
#      `rampart serve --profile conformance`, then the tasks extension's scenarios from
#      the suite's next release (tests/clients/conformance-next);
#   5. the same suite (--suite all) directly and through the gateway (a front Rampart
#      whose only upstream is that server): the results must be identical;
#   6. the suite's client scenarios against Rampart's own MCP client (the CLI's and the
#      gateway's), in a loopback-only network namespace.
# Third-party clients are required here (MCP_TEST_REQUIRE_CLIENTS=1): a test that cannot
# find one fails instead of skipping.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

export MCP_TEST_REQUIRE_CLIENTS="${MCP_TEST_REQUIRE_CLIENTS:-1}"

echo "== installing test clients" >&2
if [[ ! -x tests/clients/node_modules/.bin/conformance || tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]]; then
  npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error >&2
fi
MCP_TEST_PYTHON="$(scripts/setup-python-clients.sh | tail -n 1)"
export MCP_TEST_PYTHON

echo "== cargo nextest" >&2
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  echo "cargo-nextest not found; falling back to cargo test" >&2
  cargo test --workspace --no-fail-fast
fi

echo "== doctests (crate examples and docs/toolbox-guide.md)" >&2
cargo test --doc --workspace

echo "== soak, short (bench/soak.py; the million-call run is a script, see bench/README.md)" >&2
cargo build -q -p rampart-cli
# A leak of 32 MiB over 20,000 calls (1.6 KiB a call) fails it; smaller swings are the
# allocator and the audit queue (bench/README.md, "Soak").
python3 bench/soak.py --bin "$root/target/debug/rampart" --calls 20000 --chunk 2 --sample 1 --rss-slack 32

echo "== MCP conformance suite" >&2
cargo build -q -p rampart-cli
log="$(mktemp "${TMPDIR:-/tmp}/rampart-conformance-server.XXXXXX")"
# The server stops by itself after 10 minutes even if this script dies.
RAMPART_DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rampart-conformance-data.XXXXXX")" \
  timeout 600 "$root/target/debug/rampart" serve --listen 127.0.0.1:0 --insecure-no-auth --profile conformance --log warn 2>"$log" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/.*streamable HTTP at \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)"
  [[ -n "$url" ]] && break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "the conformance server did not start:" >&2
  cat "$log" >&2
  exit 1
fi
scripts/conformance.sh "$url"
echo "== MCP conformance suite: the tasks extension (SEP-2663)" >&2
scripts/conformance-tasks.sh "$url"

echo "== MCP conformance suite through the gateway" >&2
scripts/conformance-gateway.sh "$root/target/debug/rampart"

echo "== MCP conformance suite: Rampart's client" >&2
scripts/conformance-client.sh
