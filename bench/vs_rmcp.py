#!/usr/bin/env python3
"""Rampart against a bare rmcp server, side by side in one run (issue #19).

Starts, once and together:

  bare_session       bench/bare: the official Rust SDK's streamable HTTP service on axum,
  bare_stateless     one `get_current_time` tool, nothing else (sessions / --stateless);
  secure_session     `rampart serve` with its defaults: an API token (role `reader`),
  secure_stateless   deny-by-default policy, hash-chained audit to the embedded SQLite
                     store (sessions / --stateless);
  open_session       `rampart serve --insecure-no-auth` with `[audit] enabled = false`
  open_stateless     (what the pipeline costs, apart from the transport).

Every server runs on CPU 0 only and the load client (bench/loadgen: C closed-loop sessions
calling `tools/call get_current_time`, every response checked) on CPU 1 only, as the
issue's table was measured. Then rounds: one slice per server, the order reversed every
other round, so the machine's drift weighs the same on each. Prints every round, then,
as medians over the rounds:

  calls_per_second_<server>, server_cpu_us_per_call_<server>, p50_ms_<server>, p99_ms_<server>
  rss_idle_mib_<server>                  resident memory once started, before any load
  cpu_ratio_{secure,open}_{session,stateless}   server CPU per call over bare rmcp's (target
                                         for secure: <= 1.0; stretch <= 0.8)
  p99_ratio_secure_{session,stateless}   p99 at saturation over bare rmcp's (target <= 1.0)
  targets_met                            yes | no (CPU and p99 of both secure modes)

    python3 bench/vs_rmcp.py [--rounds 9] [--slice 3] [--warmup 0.5] [-c 64]
                             [--bin target/release/rampart] [--bare-bin bench/bare/target/release/rampart-bench-bare]
                             [--before-bin OTHER/rampart] [--only bare_session,secure_session]
                             [--with-unaudited]

`--with-unaudited` adds unaudited_session and unaudited_stateless: Rampart with its token
and policy but `[audit] enabled = false`, so that the audit log's share is measured apart.

Needs the release binaries (`cargo build --release -p rampart-cli`; bench/bare and
bench/loadgen are built on first use). Servers listen on 127.0.0.1:0 and are stopped by PID.
A slice with any failed call makes the run invalid (exit 1).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import calls_per_second as cps  # noqa: E402  (the server and load-client helpers)

SERVER_CPUS = {0}
CLIENT_CPUS = {1}


def bare_path():
    return cps.project_bin("bare", "rampart-bench-bare")


def build_bare():
    cps.build_project("bare")


class Server(cps.BenchServer):
    """A server of the comparison, pinned to the servers' CPU, with its figures."""

    def __init__(self, label, binary, flags, config_toml, api_token):
        super().__init__(label, binary, flags, config_toml, api_token, cpus=SERVER_CPUS)
        self.rss_idle = None
        self.rounds = []  # (calls/s, server µs CPU per call, p50 ms, p99 ms)


def server_configs(rampart, bare, unaudited=False):
    """The six servers compared, and with `unaudited` the two of `--with-unaudited`:
    (label, binary, flags, config TOML, whether an API token)."""
    rampart, bare = os.path.abspath(rampart), os.path.abspath(bare)
    no_audit = "[audit]\nenabled = false\n"
    configs = [
        ("bare_session", bare, [], None, False),
        ("bare_stateless", bare, ["--stateless"], None, False),
        ("secure_session", rampart, [], None, True),
        ("secure_stateless", rampart, ["--stateless"], None, True),
        ("open_session", rampart, ["--insecure-no-auth"], no_audit, False),
        ("open_stateless", rampart, ["--insecure-no-auth", "--stateless"], no_audit, False),
    ]
    if unaudited:
        configs += [
            ("unaudited_session", rampart, [], no_audit, True),
            ("unaudited_stateless", rampart, ["--stateless"], no_audit, True),
        ]
    return configs


def run_slice(server, args):
    load = types.SimpleNamespace(concurrency=args.concurrency, warmup=args.warmup, duration=args.slice,
                                 client_threads=1, build_loadgen=False)
    summary, _, _ = cps.run_rust_client(server.url, load, server.token, server.proc.pid, cpus=CLIENT_CPUS)
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.label}: server exited ({server.proc.returncode}); see {server.log_path}")
    if summary.get("errors") or not summary.get("calls"):
        raise RuntimeError(f"{server.label}: {summary.get('errors')} failed call(s); first: {summary.get('first_error')}")
    cpu_us = summary["server_cpu_measured"] / summary["calls"] * 1e6
    return summary["calls_per_second"], cpu_us, summary["p50_ms"], summary["p99_ms"]


def median(values):
    return statistics.median(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or cps.default_bin(), help="rampart binary")
    ap.add_argument("--bare-bin", default=bare_path(), help="the bare rmcp server (bench/bare)")
    ap.add_argument("--rounds", type=int, default=9, help="rounds, one slice per server each (default 9)")
    ap.add_argument("--slice", type=float, default=3.0, help="measured seconds per slice (default 3)")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each slice (default 0.5)")
    ap.add_argument("-c", "--concurrency", type=int, default=64, help="MCP sessions (= connections) per slice (default 64)")
    ap.add_argument("--only", help="comma-separated servers to run (default: all six)")
    ap.add_argument("--with-unaudited", action="store_true",
                    help="also Rampart with tokens and policy but the audit log off (unaudited_*): what the log costs")
    ap.add_argument("--before-bin", help="an earlier rampart build whose secure servers run in the same rounds "
                                         "(secure_*_before), to judge a change; prints cpu_ratio_*_before")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        ap.error("needs 2 CPUs: the servers on CPU 0, the load client on CPU 1")
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found: {args.bin} (cargo build --release -p rampart-cli)")
    if not os.access(args.bare_bin, os.X_OK):
        build_bare()
    if not os.access(cps.loadgen_path(), os.X_OK):
        cps.build_loadgen()
    configs = server_configs(args.bin, args.bare_bin, unaudited=args.with_unaudited)
    if args.before_bin:
        before = os.path.abspath(args.before_bin)
        configs += [
            ("secure_session_before", before, [], None, True),
            ("secure_stateless_before", before, ["--stateless"], None, True),
        ]
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c[0] in wanted]
    servers = []
    try:
        for label, binary, flags, config, token in configs:
            servers.append(Server(label, binary, flags, config, token))
        time.sleep(1.0)
        for s in servers:
            s.rss_idle = cps.rss_mib(s.proc.pid)
        print(f"servers on CPU 0, load client on CPU 1; {args.concurrency} sessions, {args.warmup:g} s + "
              f"{args.slice:g} s per slice, {args.rounds} rounds", flush=True)
        for s in servers:  # one unrecorded slice each: caches, allocator, the store's first pages
            run_slice(s, args)
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            parts = []
            for s in order:
                figures = run_slice(s, args)
                s.rounds.append(figures)
            for s in servers:
                calls, cpu, _, p99 = s.rounds[-1]
                parts.append(f"{s.label} {calls:>6.0f}/s {cpu:5.1f} µs p99 {p99:5.2f}")
            print(f"round {r + 1:>2}: " + "  ".join(parts), flush=True)
    finally:
        for s in servers:
            s.stop()

    by = {s.label: s for s in servers}
    for s in servers:
        print(f"calls_per_second_{s.label}={median(r[0] for r in s.rounds):.0f}")
        print(f"server_cpu_us_per_call_{s.label}={median(r[1] for r in s.rounds):.1f}")
        print(f"p50_ms_{s.label}={median(r[2] for r in s.rounds):.2f}")
        print(f"p99_ms_{s.label}={median(r[3] for r in s.rounds):.2f}")
        print(f"rss_idle_mib_{s.label}={s.rss_idle:.1f}")
    met = True
    for mode in ("session", "stateless"):
        base = by.get(f"bare_{mode}")
        if base is None:
            continue
        for kind in ("secure", "open"):
            server = by.get(f"{kind}_{mode}")
            if server is None:
                continue
            cpu = median(n[1] / b[1] for n, b in zip(server.rounds, base.rounds))
            p99 = median(n[3] / b[3] for n, b in zip(server.rounds, base.rounds))
            print(f"cpu_ratio_{kind}_{mode}={cpu:.2f}")
            print(f"p99_ratio_{kind}_{mode}={p99:.2f}")
            if kind == "secure":
                met = met and cpu <= 1.0 and p99 <= 1.0
    for mode in ("session", "stateless"):
        now, then = by.get(f"secure_{mode}"), by.get(f"secure_{mode}_before")
        if now is not None and then is not None:
            print(f"cpu_ratio_secure_{mode}_to_before={median(n[1] / b[1] for n, b in zip(now.rounds, then.rounds)):.3f}")
    print(f"targets_met={'yes' if met else 'no'}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        print("targets_met=INVALID")
        sys.exit(1)
