#!/usr/bin/env python3
"""What the security pipeline costs, measured in one run with the servers side by side.

Starts, once and together, the same `rampart serve` binary in the configurations below,
each on 127.0.0.1:0 with its own temporary data directory:

  secure              the defaults: API-token authentication (a `reader` token created
                      first), deny-by-default policy, hash-chained audit to the embedded
                      SQLite store, asynchronous commit;
  open                `--insecure-no-auth` and `[audit] enabled = false`;
  secure_synchronous  the defaults with `[audit] synchronous = true` (every result waits
                      for its record to be stored; printed, not part of the target).

Then it loads them in turns: one round is a short slice on each server (bench/loadgen:
C closed-loop MCP sessions calling `tools/call get_current_time`, every response
checked), the order reversed every other round (ABC CBA ...), so a slow drift of the
machine's speed weighs the same on each configuration. Only one server is loaded at a
time; the others idle. The cost of a round is 1 - secure/open calls per second, from
slices a few seconds apart: the drifts of a shared VM (+-30% over minutes on the 2-core
machine this was written on) mostly cancel, where separate runs minutes apart did not.

Prints every round, then:
  calls_per_second_{secure,open,secure_synchronous}   medians over the rounds
  pipeline_cost_percent            median of the rounds' costs (issue #3 target: <= 15)
  pipeline_cost_percent_iqr        its interquartile range (the spread between rounds)
  pipeline_cost_percent_by_cpu     from the server CPU per call: 1 - open/secure, median
                                   over the rounds (capacity once CPU-bound)
  target_met                       yes | no (pipeline_cost_percent <= 15)

    python3 bench/pipeline_cost.py [--rounds 15] [--slice 3] [--warmup 0.5] [-c 8] [--no-synchronous]
                                   [--baseline-bin OTHER/rampart]

With --baseline-bin, the secure and open configurations of a second binary (an earlier
commit's release build) run in the same rounds, labelled *_baseline, and it also prints
  pipeline_cost_percent_baseline   the baseline's own cost, the same way
  throughput_ratio_{secure,open}   this binary's calls per second over the baseline's,
                                   median of the rounds' ratios (1.0: as fast)
  cpu_ratio_{secure,open}          this binary's server CPU per call over the baseline's
so a change is judged against the code before it under the same machine conditions.

Needs the release binary (`cargo build --release -p rampart-cli`, or --bin) and bench/loadgen
(built on first use). Every server is stopped by its PID at the end, and its directory
removed. A slice with any failed call makes the whole run invalid (exit 1).
"""

import argparse
import os
import statistics
import subprocess
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calls_per_second as cps  # noqa: E402  (the server and load-client helpers)

TARGET_PERCENT = 15.0


class Server(cps.BenchServer):
    """One `rampart serve` under load in turns, with its rounds."""

    def __init__(self, label, binary, flags, config_toml, api_token):
        super().__init__(label, binary, flags, config_toml, api_token)
        self.rounds = []  # (calls/s, server CPU µs per call)


def run_slice(server, args):
    """Loads one server for warm-up + slice seconds (calls_per_second's load client); returns
    (calls/s, server µs of CPU per measured call, cores used by processes other than server and client)."""
    load = types.SimpleNamespace(concurrency=args.concurrency, warmup=args.warmup, duration=args.slice,
                                 client_threads=1, build_loadgen=False)
    cpu0, busy0 = cps.proc_cpu_seconds(server.proc.pid), cps.system_busy_seconds()
    summary, client_cpu, wall = cps.run_rust_client(server.url, load, server.token, server.proc.pid)
    server_cpu = cps.proc_cpu_seconds(server.proc.pid) - cpu0
    others = max(0.0, cps.system_busy_seconds() - busy0 - server_cpu - client_cpu) / max(wall, 1e-9)
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.label}: server exited ({server.proc.returncode}); see {server.log_path}")
    if summary.get("errors") or not summary.get("calls"):
        raise RuntimeError(f"{server.label}: {summary.get('errors')} failed call(s); first: {summary.get('first_error')}")
    return summary["calls_per_second"], summary["server_cpu_measured"] / summary["calls"] * 1e6, others


def quartiles(values):
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or cps.default_bin(),
                    help="rampart binary (default: $RAMPART_BIN or $CARGO_TARGET_DIR/release/rampart)")
    ap.add_argument("--rounds", type=int, default=15, help="rounds, one slice per server each (default 15)")
    ap.add_argument("--slice", type=float, default=3.0, help="measured seconds per slice (default 3)")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each slice (default 0.5)")
    ap.add_argument("-c", "--concurrency", type=int, default=8, help="MCP sessions per slice (default 8)")
    ap.add_argument("--no-synchronous", action="store_true", help="leave out the secure_synchronous server")
    ap.add_argument("--baseline-bin", help="a second rampart binary whose secure and open servers run in the same rounds")
    args = ap.parse_args()
    if not (2 <= args.rounds <= 200):
        ap.error("--rounds must be in 2..200")
    if not (0 < args.slice <= 60 and 0 <= args.warmup <= 10):
        ap.error("--slice must be in (0, 60] s and --warmup in [0, 10] s")
    if not (1 <= args.concurrency <= 1024):
        ap.error("--concurrency must be in 1..1024")
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found: {args.bin} (cargo build --release -p rampart-cli)")
    if not os.access(cps.loadgen_path(), os.X_OK):
        cps.build_loadgen()
    binary = os.path.abspath(args.bin)
    if args.baseline_bin and not os.access(args.baseline_bin, os.X_OK):
        ap.error(f"baseline binary not found: {args.baseline_bin}")

    configs = [
        ("secure", binary, [], None, True),
        ("open", binary, ["--insecure-no-auth"], "[audit]\nenabled = false\n", False),
    ]
    if not args.no_synchronous:
        configs.append(("secure_synchronous", binary, [], "[audit]\nsynchronous = true\n", True))
    if args.baseline_bin:
        baseline = os.path.abspath(args.baseline_bin)
        configs.append(("secure_baseline", baseline, [], None, True))
        configs.append(("open_baseline", baseline, ["--insecure-no-auth"], "[audit]\nenabled = false\n", False))
    servers = []
    try:
        for label, server_binary, flags, config, token in configs:
            servers.append(Server(label, server_binary, flags, config, token))
        print(f"servers: {', '.join(f'{s.label} {s.url}' for s in servers)}; {args.concurrency} sessions, "
              f"{args.warmup:g} s + {args.slice:g} s per slice, {args.rounds} rounds, {os.cpu_count()} CPUs")
        for s in servers:  # one unrecorded slice each: caches, allocator, first pages of the store
            run_slice(s, args)
        noisy = 0
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            figures = {}
            for s in order:
                calls_per_second, cpu_us, others = run_slice(s, args)
                s.rounds.append((calls_per_second, cpu_us))
                figures[s.label] = (calls_per_second, cpu_us)
                noisy += others > 0.15  # as calls_per_second.py's WARNING
            secure, open_ = figures["secure"], figures["open"]
            line = (f"round {r + 1:>2}: secure {secure[0]:>6.0f}/s {secure[1]:5.1f} µs  open {open_[0]:>6.0f}/s "
                    f"{open_[1]:5.1f} µs  cost {100 * (1 - secure[0] / open_[0]):5.1f}%")
            if "secure_synchronous" in figures:
                line += f"  synchronous {figures['secure_synchronous'][0]:>6.0f}/s"
            if "secure_baseline" in figures:
                base_secure, base_open = figures["secure_baseline"], figures["open_baseline"]
                line += (f"  baseline secure {base_secure[0]:>6.0f}/s {base_secure[1]:5.1f} µs open {base_open[0]:>6.0f}/s "
                         f"{base_open[1]:5.1f} µs cost {100 * (1 - base_secure[0] / base_open[0]):5.1f}%")
            print(line, flush=True)
    finally:
        for s in servers:
            s.stop()

    by = {s.label: s.rounds for s in servers}
    costs = [100 * (1 - s[0] / o[0]) for s, o in zip(by["secure"], by["open"])]
    costs_cpu = [100 * (1 - o[1] / s[1]) for s, o in zip(by["secure"], by["open"])]
    low, high = quartiles(costs)
    cost = statistics.median(costs)
    for s in servers:
        print(f"calls_per_second_{s.label}={statistics.median(r[0] for r in s.rounds):.0f}")
    for s in servers:
        print(f"server_cpu_us_per_call_{s.label}={statistics.median(r[1] for r in s.rounds):.1f}")
    print(f"pipeline_cost_percent={cost:.1f}")
    print(f"pipeline_cost_percent_iqr={low:.1f}..{high:.1f}")
    print(f"pipeline_cost_percent_by_cpu={statistics.median(costs_cpu):.1f}")
    if "secure_synchronous" in by:
        sync = [100 * (1 - y[0] / o[0]) for y, o in zip(by["secure_synchronous"], by["open"])]
        print(f"pipeline_cost_percent_synchronous={statistics.median(sync):.1f}")
    if "secure_baseline" in by:
        base = [100 * (1 - s[0] / o[0]) for s, o in zip(by["secure_baseline"], by["open_baseline"])]
        print(f"pipeline_cost_percent_baseline={statistics.median(base):.1f}")
        for label in ("secure", "open"):
            pairs = list(zip(by[label], by[f"{label}_baseline"]))
            print(f"throughput_ratio_{label}={statistics.median(n[0] / b[0] for n, b in pairs):.3f}")
            print(f"cpu_ratio_{label}={statistics.median(n[1] / b[1] for n, b in pairs):.3f}")
    if noisy:
        print(f"WARNING: in {noisy} slice(s) processes other than the server and the load client used > 0.15 core")
    print(f"target_met={'yes' if cost <= TARGET_PERCENT else 'no'}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        print("pipeline_cost_percent=INVALID")
        sys.exit(1)
