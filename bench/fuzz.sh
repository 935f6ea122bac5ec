#!/usr/bin/env bash
# Property-based fuzzing for a given time (issue #19): the property tests of the JSON-RPC
# check in front of rmcp (rampart-server), path resolution in `fs` (rampart-fs), the SQL
# analyser against a real SQLite (rampart-sql) and the audit redactor (rampart-audit), run
# again and again in rounds of FUZZ_CASES cases per property, each round with fresh random
# seeds, until DURATION is over. The normal test run runs the same properties with 256
# cases each.
#
#   bench/fuzz.sh [DURATION]     DURATION: seconds, or with s/m/h (default 1h)
#   FUZZ_CASES=N bench/fuzz.sh   cases per property and round (default 2000)
#
# A hang fails its test after 3 minutes (.config/nextest.toml). Prints, per round and in
# total, the cases run, the failures and the elapsed time; a failing round's output is kept
# in target/fuzz/ (proptest prints the shrunk failing input). Exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration="${1:-1h}"
case "$duration" in
  *h) seconds=$(( ${duration%h} * 3600 )) ;;
  *m) seconds=$(( ${duration%m} * 60 )) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$duration ;;
esac
cases="${FUZZ_CASES:-2000}"
packages=(-p rampart-server -p rampart-fs -p rampart-sql -p rampart-audit)
filter='test(/props::/) - test(/regression/)'
logs=target/fuzz
mkdir -p "$logs"

echo "== building" >&2
cargo nextest run --no-run "${packages[@]}" >&2
properties=$(cargo nextest list "${packages[@]}" -E "$filter" --message-format oneline 2>/dev/null | wc -l)
echo "== $properties properties, $cases cases each per round, for ${seconds} s" >&2

start=$(date +%s)
round=0 total_cases=0 failed=0
while (( $(date +%s) - start < seconds )); do
  round=$((round + 1))
  log="$logs/round-$round.log"
  status=0
  PROPTEST_CASES="$cases" cargo nextest run "${packages[@]}" -E "$filter" --no-fail-fast \
    --success-output final --failure-output final --status-level fail --hide-progress-bar >"$log" 2>&1 || status=$?
  run=$(grep -o 'proptest: [0-9]* cases' "$log" | awk '{n += $2} END {print n + 0}')
  failures=$(grep -Eo '[0-9]+ failed' "$log" | tail -n 1 | awk '{print $1 + 0}')
  failures=${failures:-0}
  if (( status != 0 && failures == 0 )); then failures=1; fi
  total_cases=$((total_cases + run)) failed=$((failed + failures))
  elapsed=$(( $(date +%s) - start ))
  printf 'round %d: %d cases, %d failed; total %d cases, %d failed, %d s\n' \
    "$round" "$run" "$failures" "$total_cases" "$failed" "$elapsed"
  if (( failures > 0 )); then
    echo "   failures in $log:" >&2
    grep -E 'FAIL \[|Test failed|minimal failing input' -A3 "$log" | head -n 40 >&2 || true
  else
    rm -f "$log"
  fi
done
elapsed=$(( $(date +%s) - start ))
echo "fuzz: $round rounds, $total_cases cases, $failed failures, ${elapsed} s ($(( elapsed / 60 )) min), $properties properties, FUZZ_CASES=$cases"
(( failed == 0 ))
