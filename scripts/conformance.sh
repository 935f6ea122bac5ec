#!/usr/bin/env bash
# Run the official MCP conformance suite (server side, "active" suite) against a
# running Streamable HTTP endpoint.
#
# Usage: scripts/conformance.sh URL [extra conformance args...]
#   e.g. scripts/conformance.sh http://127.0.0.1:8080/mcp
#        scripts/conformance.sh http://127.0.0.1:8080/mcp --scenario tools-list
#
# The suite sends no auth headers: run the server under test without auth, on
# loopback. Tools (Node 22, the conformance CLI) come from tests/clients, pinned
# in its package-lock.json; they are installed with `npm ci` if missing.
#
# Environment:
#   CONFORMANCE_OUT  parent directory for results (default: $TMPDIR or /tmp);
#                    each run writes a fresh rampart-conformance.XXXXXX inside it,
#                    with conformance.log and server-<scenario>-<ts>/checks.json
#
# If tests/clients/conformance-expected-failures.yml exists and is non-empty it
# is passed as --expected-failures (format: `server: [scenario, ...]`); the
# suite then fails on unexpected failures and on stale entries.
set -euo pipefail

usage() {
  echo "usage: $0 URL [extra conformance args...]" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
case "$1" in
  -h | --help) usage ;;
esac
url="$1"
shift

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clients_dir="$repo_root/tests/clients"
bin_dir="$clients_dir/node_modules/.bin"

if [[ ! -x "$bin_dir/conformance" || ! -x "$bin_dir/node" ]]; then
  echo "conformance.sh: installing test clients into $clients_dir/node_modules" >&2
  npm ci --prefix "$clients_dir" --no-audit --no-fund >&2
fi
export PATH="$bin_dir:$PATH"

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [[ "$node_major" -lt 22 ]]; then
  echo "conformance.sh: need Node >= 22, got $(node --version)" >&2
  exit 1
fi

out_base="${CONFORMANCE_OUT:-${TMPDIR:-/tmp}}"
mkdir -p "$out_base"
out_dir="$(mktemp -d "$out_base/rampart-conformance.XXXXXX")"

args=(server --url "$url" --suite active -o "$out_dir")
expected="$clients_dir/conformance-expected-failures.yml"
if [[ -s "$expected" ]]; then
  args+=(--expected-failures "$expected")
fi
args+=("$@")

log="$out_dir/conformance.log"
set +e
conformance "${args[@]}" 2>&1 | tee "$log"
status="${PIPESTATUS[0]}"
set -e

# Summary from the per-scenario checks.json files (a check is SUCCESS, FAILURE,
# WARNING or INFO; only SUCCESS and FAILURE are counted, as the suite does).
summary="$(
  node - "$out_dir" <<'EOF'
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
let passed = 0, failed = 0, warnings = 0, scenarios = 0;
const failedScenarios = [];
for (const entry of fs.readdirSync(dir).sort()) {
  const file = path.join(dir, entry, 'checks.json');
  if (!entry.startsWith('server-') || !fs.existsSync(file)) continue;
  // Directory name: server-<scenario>-<ISO timestamp with : and . as ->
  const scenario = entry.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
  const checks = JSON.parse(fs.readFileSync(file, 'utf8'));
  scenarios++;
  const bad = checks.filter((c) => c.status === 'FAILURE');
  passed += checks.filter((c) => c.status === 'SUCCESS').length;
  failed += bad.length;
  warnings += checks.filter((c) => c.status === 'WARNING').length;
  if (bad.length > 0) {
    failedScenarios.push(`${scenario} (${bad.map((c) => c.id).join(', ')})`);
  }
}
console.log(`conformance: ran ${scenarios} scenarios, ${warnings} warning checks`);
console.log(`checks: ${passed} passed, ${failed} failed`);
for (const s of failedScenarios) console.log(`conformance: FAILED ${s}`);
EOF
)"

echo
echo "$summary"
echo "conformance: results in $out_dir"

if [[ "$status" -ne 0 ]]; then
  echo "conformance: suite exited with status $status" >&2
  exit "$status"
fi
if grep -q 'FAILED ' <<<"$summary" && [[ ! -s "$expected" ]]; then
  # Defensive: the CLI already exits 1 on any failed check.
  exit 1
fi
exit 0
