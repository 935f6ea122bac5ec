#!/usr/bin/env bash
# Run the tasks extension's scenarios (io.modelcontextprotocol/tasks, SEP-2663) of the
# official MCP conformance suite against a running `rampart serve --profile conformance`.
#
# Usage: scripts/conformance-tasks.sh URL
#
# The stable suite pinned in tests/clients (0.1.x) has no tasks scenarios; they come from
# the suite's next release, pinned apart in tests/clients/conformance-next (installed with
# `npm ci` if missing) so that its `conformance` command does not shadow the stable one.
# Node 22 comes from tests/clients. Every check must pass; the scenarios left out, and
# why, are listed below.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 URL" >&2; exit 2; }
url="$1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clients_dir="$repo_root/tests/clients"
next_dir="$clients_dir/conformance-next"
if [[ ! -x "$clients_dir/node_modules/.bin/node" ]]; then
  npm ci --prefix "$clients_dir" --no-audit --no-fund --loglevel=error >&2
fi
if [[ ! -x "$next_dir/node_modules/.bin/conformance" || "$next_dir/package-lock.json" -nt "$next_dir/node_modules/.package-lock.json" ]]; then
  npm ci --prefix "$next_dir" --no-audit --no-fund --loglevel=error >&2
fi
node="$clients_dir/node_modules/.bin/node"
suite="$next_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"

scenarios=(
  tasks-lifecycle
  tasks-capability-negotiation
  tasks-wire-fields
  tasks-request-state-removal
  tasks-mrtr-input
  tasks-request-headers
  tasks-dispatch-and-envelope
  tasks-required-task-error
)
# Left out:
# - tasks-mrtr-composition: escalates a SEP-2322 multi-round-trip call (InputRequiredResult)
#   into a task; Rampart does not answer tools/call with InputRequiredResult (its
#   server-to-client requests go over the session, or, in a task, through tasks/update).
# - tasks-status-notifications: the suite itself skips it (pending its rewrite onto
#   subscriptions/listen).

out_dir="$(mktemp -d "${TMPDIR:-/tmp}/rampart-conformance-tasks.XXXXXX")"
passed=0
failed=0
for scenario in "${scenarios[@]}"; do
  log="$out_dir/$scenario.log"
  if ! "$node" "$suite" server --url "$url" --scenario "$scenario" -o "$out_dir" >"$log" 2>&1; then
    echo "conformance-tasks: FAILED $scenario" >&2
    grep -E 'FAILURE|Error' "$log" >&2 || tail -n 20 "$log" >&2
    failed=$((failed + 1))
    continue
  fi
  line="$(grep -E '^Passed: ' "$log" | tail -n 1)"
  echo "conformance-tasks: $scenario: $line"
  passed=$((passed + 1))
done
echo "conformance-tasks: $passed of ${#scenarios[@]} scenarios passed; results in $out_dir"
[[ "$failed" -eq 0 ]]
