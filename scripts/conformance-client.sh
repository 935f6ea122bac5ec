#!/usr/bin/env bash
# Rampart's MCP client (rampart_mcp::McpClient, the client of the CLI and of the gateway)
# against the official MCP conformance suite's client scenarios: the suite starts a test
# server per scenario and runs crates/rampart-mcp/examples/conformance_client.rs against
# it, then checks what the client did. Every scenario that applies to this client must
# pass with no failed check and no warning (in client mode a warning is a failure).
#
# Usage: scripts/conformance-client.sh
# The suite's test servers listen on all interfaces, so the scenarios run inside a
# network namespace of their own that has only loopback (`unshare -rn`: an unprivileged
# user namespace). Results and logs are kept in a fresh $TMPDIR/rampart-conformance-client.*.
# With MCP_TEST_REQUIRE_CLIENTS=1 (scripts/test.sh, CI) a missing suite or namespace
# fails; otherwise the run is skipped with a message.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
bin_dir="$root/tests/clients/node_modules/.bin"
self="$root/scripts/$(basename "${BASH_SOURCE[0]}")"
client="$root/target/debug/examples/conformance_client"

# The client scenarios of the suite (0.1.16) that Rampart's client takes part in.
applies=(
  initialize
  tools_call
  elicitation-sep1034-client-defaults
  sse-retry
  auth/client-credentials-basic
)
# Those it does not, and why. A scenario of the suite in neither list (a new suite
# version) fails this script until it is put in one.
authorization_code="an OAuth authorization-code flow (PKCE, a redirect, and dynamic or CIMD client registration or a pre-registered client): Rampart's client has none; the CLI takes a bearer token, the gateway a bearer token or client credentials"
not_applicable=(
  "auth/metadata-default|$authorization_code"
  "auth/metadata-var1|$authorization_code"
  "auth/metadata-var2|$authorization_code"
  "auth/metadata-var3|$authorization_code"
  "auth/basic-cimd|$authorization_code"
  "auth/scope-from-www-authenticate|$authorization_code"
  "auth/scope-from-scopes-supported|$authorization_code"
  "auth/scope-omitted-when-undefined|$authorization_code"
  "auth/scope-step-up|$authorization_code"
  "auth/scope-retry-limit|$authorization_code"
  "auth/token-endpoint-auth-basic|$authorization_code"
  "auth/token-endpoint-auth-post|$authorization_code"
  "auth/token-endpoint-auth-none|$authorization_code"
  "auth/pre-registration|$authorization_code"
  "auth/2025-03-26-oauth-metadata-backcompat|$authorization_code"
  "auth/2025-03-26-oauth-endpoint-fallback|$authorization_code"
  "auth/resource-mismatch|$authorization_code"
  "auth/offline-access-scope|$authorization_code"
  "auth/offline-access-not-supported|$authorization_code"
  "auth/client-credentials-jwt|private_key_jwt client authentication (RFC 7523): the gateway's client credentials authenticate with a client secret only"
  "auth/cross-app-access-complete-flow|the identity assertion grant of SEP-990 (token exchange, then JWT bearer): not implemented"
)

# skip_or_fail MESSAGE: the suite cannot run here.
skip_or_fail() {
  if [[ "${MCP_TEST_REQUIRE_CLIENTS:-}" == 1 ]]; then
    echo "conformance-client: FAILED: $1 (required: MCP_TEST_REQUIRE_CLIENTS=1)" >&2
    exit 1
  fi
  echo "conformance-client: SKIPPED: $1" >&2
  exit 0
}

if [[ "${RAMPART_CONFORMANCE_CLIENT_NETNS:-}" != 1 ]]; then
  if [[ ! -x "$bin_dir/conformance" || ! -x "$bin_dir/node" ]]; then
    skip_or_fail "the conformance suite is not installed (npm ci --prefix tests/clients)"
  fi
  if ! unshare -rn true 2>/dev/null; then
    skip_or_fail "cannot make a loopback-only network namespace (unshare -rn)"
  fi
  cargo build -q --example conformance_client -p rampart-mcp
  # The runner splits its --command on spaces.
  if [[ "$client" == *[[:space:]]* ]]; then
    echo "conformance-client: the client's path has a space: $client" >&2
    exit 1
  fi
  known=" ${applies[*]} "
  for entry in "${not_applicable[@]}"; do known+="${entry%%|*} "; done
  unclassified=()
  while read -r scenario; do
    [[ "$known" == *" $scenario "* ]] || unclassified+=("$scenario")
  done < <(PATH="$bin_dir:$PATH" conformance list --client | sed -n 's/^ *- \([^ ]*\).*/\1/p')
  if [[ ${#unclassified[@]} -gt 0 ]]; then
    echo "conformance-client: scenarios of the suite in neither list of $self: ${unclassified[*]}" >&2
    exit 1
  fi
  RAMPART_CONFORMANCE_CLIENT_NETNS=1 exec unshare -rn "$self" "$@"
fi

# From here on: inside the namespace. Bring loopback up, and make sure it is all there is.
python3 - <<'EOF'
import fcntl, socket, struct
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack('16sh', fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack('16sh22x', b'lo', 0))[:18])[1]
fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack('16sh22x', b'lo', flags | IFF_UP))
names = [name for _, name in socket.if_nameindex()]
if names != ['lo']:
    raise SystemExit(f'conformance-client: the namespace has interfaces besides lo: {names}')
EOF
export PATH="$bin_dir:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-conformance-client.XXXXXX")"

passed=0 failed=0 warnings=0 bad=()
for scenario in "${applies[@]}"; do
  name="${scenario//\//-}"
  set +e
  conformance client --command "$client" --scenario "$scenario" -o "$work/$name" >"$work/$name.log" 2>&1
  status=$?
  set -e
  checks="$(find "$work/$name" -name checks.json 2>/dev/null | head -n 1)"
  # "passed failed warnings" and the ids of the checks that did not pass.
  read -r p f w ids < <(
    node - "$checks" <<'EOF'
const fs = require('fs');
const file = process.argv[2];
const checks = file && fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : [];
const count = (status) => checks.filter((c) => c.status === status).length;
const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').map((c) => c.id);
console.log(`${count('SUCCESS')} ${count('FAILURE')} ${count('WARNING')} ${bad.join(',')}`);
EOF
  )
  passed=$((passed + p)) failed=$((failed + f)) warnings=$((warnings + w))
  line="$scenario: $p passed, $f failed, $w warnings"
  [[ -n "$ids" ]] && line+=" ($ids)"
  if [[ "$status" -ne 0 || "$f" -ne 0 || "$w" -ne 0 || "$p" -eq 0 ]]; then
    [[ "$status" -ne 0 ]] && line+=" (the runner exited $status)"
    bad+=("$scenario")
    echo "conformance-client: FAILED $line; log: $work/$name.log" >&2
  else
    echo "conformance-client: ok $line" >&2
  fi
done

echo "conformance-client: ${#applies[@]} scenarios run, ${#bad[@]} failed; ${#not_applicable[@]} not applicable to this client (listed in $self)" >&2
echo "conformance-client: results in $work" >&2
# Warnings count as failed checks here, as they do in the suite's client mode.
echo "conformance-client: $passed passed, $((failed + warnings)) failed"
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "conformance-client: FAILED: ${bad[*]}" >&2
  exit 1
fi
