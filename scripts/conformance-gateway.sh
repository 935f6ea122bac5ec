#!/usr/bin/env bash
# The gateway is transparent: run the official MCP conformance suite (server scenarios,
# --suite all) twice, side by side —
#   1. directly against `rampart serve --profile conformance` (the upstream), and
#   2. against a second Rampart whose only upstream is that server, mounted without a
#      prefix ([upstreams.conformance] url = ..., prefix = ""),
# and fail unless every check of every scenario ends the same way in both runs.
#
# Usage: scripts/conformance-gateway.sh [path/to/rampart]   (default: target/debug/rampart)
# Both servers bind 127.0.0.1 on OS-chosen ports, run without auth (the suite sends
# none), and stop by themselves after 10 minutes even if this script dies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
bin="${1:-$root/target/debug/rampart}"
bin_dir="$root/tests/clients/node_modules/.bin"
export PATH="$bin_dir:$PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-conformance-gateway.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME ARGS...: starts `rampart serve` and sets `url` once the banner is out (no
# command substitution: the server must belong to this shell, whose trap stops it).
start() {
  local name="$1"
  shift
  mkdir -p "$work/$name"
  RAMPART_DATA_DIR="$work/$name/data" timeout 600 "$bin" serve --listen 127.0.0.1:0 --insecure-no-auth \
    --log warn,rampart=info "$@" 2>"$work/$name/log" &
  pids+=("$!")
  url=""
  for _ in $(seq 1 300); do
    url="$(sed -n 's/.*streamable HTTP at \(http:[^ ]*\).*/\1/p' "$work/$name/log" | head -n 1)"
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "conformance-gateway: the $name server did not start:" >&2
    cat "$work/$name/log" >&2
    exit 1
  fi
}

start upstream --profile conformance
direct="$url"
cat >"$work/front.toml" <<EOF
# The front server: no toolbox of its own but admin (always there), and one upstream,
# the conformance server, mounted without a prefix. The upstream's admin tools would
# collide with the front's (and are not part of the suite): excluded.
[tools]
enabled = []

[upstreams.conformance]
url = "$direct"
prefix = ""
start = "eager"
tools.exclude = ["admin_*"]
EOF
start front --config "$work/front.toml"
front="$url"
echo "conformance-gateway: direct $direct, through the gateway $front" >&2

# run NAME URL: the suite's results as sorted `scenario check status` lines.
run() {
  local out="$work/results-$1"
  mkdir -p "$out"
  set +e
  conformance server --url "$2" --suite all -o "$out" >"$work/$1.log" 2>&1
  set -e
  node - "$out" <<'EOF'
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const lines = [];
for (const entry of fs.readdirSync(dir)) {
  const file = path.join(dir, entry, 'checks.json');
  if (!entry.startsWith('server-') || !fs.existsSync(file)) continue;
  const scenario = entry.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
  for (const check of JSON.parse(fs.readFileSync(file, 'utf8'))) {
    if (check.status === 'SUCCESS' || check.status === 'FAILURE') lines.push(`${scenario} ${check.id} ${check.status}`);
  }
}
console.log(lines.sort().join('\n'));
EOF
}

run direct "$direct" >"$work/direct.txt"
run gateway "$front" >"$work/gateway.txt"
passed_direct="$(grep -c ' SUCCESS$' "$work/direct.txt" || true)"
passed_gateway="$(grep -c ' SUCCESS$' "$work/gateway.txt" || true)"
failed_direct="$(grep -c ' FAILURE$' "$work/direct.txt" || true)"
echo "conformance-gateway: direct: $passed_direct checks passed, $failed_direct failed" >&2
echo "conformance-gateway: through the gateway: $passed_gateway checks passed, $(grep -c ' FAILURE$' "$work/gateway.txt" || true) failed" >&2
if [[ "$passed_direct" -eq 0 ]]; then
  echo "conformance-gateway: no check passed directly; see $work/direct.log" >&2
  exit 1
fi
if ! diff -u "$work/direct.txt" "$work/gateway.txt" >"$work/diff.txt"; then
  echo "conformance-gateway: the gateway changes the results (- direct, + through the gateway):" >&2
  grep '^[-+][a-z]' "$work/diff.txt" >&2 || true
  echo "conformance-gateway: logs in $work" >&2
  exit 1
fi
echo "conformance-gateway: identical results through the gateway ($work)" >&2
