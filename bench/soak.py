#!/usr/bin/env python3
"""Soak: a million tool calls with the whole pipeline on, memory and descriptors watched
(issue #19, "And it holds for hours").

Starts two `rampart serve` with their defaults (an API token with the `reader` role,
deny-by-default policy, hash-chained audit to the embedded SQLite store): one in session
mode, one `--stateless`. Loads them in turns, in chunks of --chunk seconds (bench/loadgen:
C closed-loop MCP sessions calling `tools/call get_current_time`, every response checked;
each chunk opens fresh sessions), until --calls calls have been answered in all. Every
--sample seconds it records each server's resident memory (VmRSS) and open file
descriptors (for --csv); the verdict reads the samples taken when a server's chunk has
ended and its connections have closed, so that every sample it compares is taken in the
same state (a sample under load counts the connections open at that instant: noise of a
dozen descriptors, not a leak). At the end it stops both servers (SIGTERM, so the audit queue drains),
verifies each audit log (`rampart audit verify`: the hash chain, every stored column, the
signed checkpoints) and counts its `get_current_time` records.

Passes (`soak_ok=yes`, exit 0) when:
  - no call failed;
  - after the warm-up (the first --warmup-share of the calls), resident memory grew by no
    more than max(--rss-slack MiB, 10 %) and open descriptors by no more than --fd-slack
    (the store's connection pool grows to its ceiling under load: see --fd-slack);
  - each audit log verifies and holds exactly one `get_current_time` record per answered
    call (loadgen runs with no unmeasured warm-up, so every call is counted).

    python3 bench/soak.py [--calls 1000000] [-c 16] [--chunk 10] [--sample 10]
                          [--bin target/release/rampart] [--csv samples.csv]

CI runs a short one on the debug binary: `--calls 20000 --chunk 2 --sample 1`.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import calls_per_second as cps  # noqa: E402


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Server(cps.BenchServer):
    """A secure server of the soak: its calls and its samples."""

    def __init__(self, label, binary, flags):
        super().__init__(label, binary, flags, api_token=True)
        self.calls = 0
        self.samples = []  # (seconds since start, calls so far, RSS MiB, fds), every --sample seconds
        self.idle = []  # the same, each taken when a chunk has ended and its connections closed

    def sample(self, started):
        self.samples.append((time.monotonic() - started, self.calls, cps.rss_mib(self.proc.pid), open_fds(self.proc.pid)))

    def sample_idle(self, started):
        """Waits (1 s at most) until the chunk's connections have closed, then samples."""
        fds = open_fds(self.proc.pid)
        for _ in range(20):
            time.sleep(0.05)
            now = open_fds(self.proc.pid)
            if now == fds:
                break
            fds = now
        self.idle.append((time.monotonic() - started, self.calls, cps.rss_mib(self.proc.pid), fds))

    def verify(self):
        """(intact, records, get_current_time records) of the stopped server's audit log."""
        out = subprocess.run([self.binary, "audit", "verify", "--json"], cwd=self.workdir,
                             env=cps.server_env(self.workdir), capture_output=True, timeout=1800)
        try:
            report = json.loads(out.stdout.decode())
        except ValueError:
            raise RuntimeError(f"{self.label}: audit verify said: {out.stdout.decode()} {out.stderr.decode()}") from None
        db = sqlite3.connect(os.path.join(self.workdir, "rampart.db"))
        (calls,) = db.execute("SELECT count(*) FROM audit_records WHERE tool = 'get_current_time'").fetchone()
        db.close()
        return bool(report.get("intact")), report.get("records"), calls


def flat(samples, warm_index, rss_slack, fd_slack):
    """(RSS growth MiB, fd growth, ok) after the warm-up sample."""
    after = samples[warm_index:]
    if len(after) < 2:
        return 0.0, 0, True
    rss0 = max(s[2] for s in samples[: warm_index + 1])
    fds0 = max(s[3] for s in samples[: warm_index + 1])
    rss_growth = max(s[2] for s in after) - rss0
    fd_growth = max(s[3] for s in after) - fds0
    return rss_growth, fd_growth, rss_growth <= max(rss_slack, 0.10 * rss0) and fd_growth <= fd_slack


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or cps.default_bin(), help="rampart binary")
    ap.add_argument("--calls", type=int, default=1_000_000, help="calls to answer in all (default 1,000,000)")
    ap.add_argument("-c", "--concurrency", type=int, default=16, help="sessions per chunk (default 16)")
    ap.add_argument("--chunk", type=float, default=10.0, help="seconds of load per chunk (default 10)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--warmup-share", type=float, default=0.2, help="share of the calls counted as warm-up (default 0.2)")
    ap.add_argument("--rss-slack", type=float, default=8.0, help="MiB of growth allowed after warm-up (default 8)")
    # The embedded store's pool opens SQLite connections as load needs them, up to 8, two
    # descriptors each (the database and its WAL): up to 16 more descriptors that stay
    # open, which is growth with a ceiling, not a leak; a leak per call or per session
    # exceeds any slack within a few chunks.
    ap.add_argument("--fd-slack", type=int, default=24, help="descriptors of growth allowed after warm-up (default 24)")
    ap.add_argument("--csv", help="write every sample to this file")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found: {args.bin}")
    if not os.access(cps.loadgen_path(), os.X_OK):
        cps.build_loadgen()
    binary = os.path.abspath(args.bin)
    servers = [Server("session", binary, []), Server("stateless", binary, ["--stateless"])]
    started = time.monotonic()
    stop = threading.Event()

    def sampler():
        while not stop.wait(args.sample):
            for s in servers:
                s.sample(started)

    failures = []
    try:
        for s in servers:
            s.sample(started)
            s.sample_idle(started)
        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        load = types.SimpleNamespace(concurrency=args.concurrency, warmup=0, duration=args.chunk,
                                     client_threads=1, build_loadgen=False)
        turn = 0
        while sum(s.calls for s in servers) < args.calls:
            s = servers[turn % 2]
            turn += 1
            summary, _, _ = cps.run_rust_client(s.url, load, s.token, s.proc.pid)
            if summary.get("errors") or s.proc.poll() is not None:
                failures.append(f"{s.label}: {summary.get('errors')} failed call(s); first: {summary.get('first_error')}")
                break
            s.calls += summary["answered"]
            s.sample_idle(started)
            total = sum(x.calls for x in servers)
            elapsed = time.monotonic() - started
            print(f"{elapsed:7.0f} s  {total:>9} calls  {total / elapsed:7.0f}/s  "
                  + "  ".join(f"{x.label} {cps.rss_mib(x.proc.pid):6.1f} MiB {open_fds(x.proc.pid):3} fds" for x in servers),
                  flush=True)
        stop.set()
        thread.join()
        for s in servers:
            s.sample(started)
            cps.stop_server(s.proc)  # SIGTERM: the audit queue drains before exit
        elapsed = time.monotonic() - started
        total = sum(s.calls for s in servers)
        print(f"calls={total}")
        print(f"seconds={elapsed:.0f}")
        print(f"calls_per_second={total / elapsed:.0f}")
        ok = not failures
        for s in servers:
            warm = next((i for i, x in enumerate(s.idle) if x[1] >= args.warmup_share * s.calls), 0)
            rss_growth, fd_growth, steady = flat(s.idle, warm, args.rss_slack, args.fd_slack)
            intact, records, recorded_calls = s.verify()
            rss = [x[2] for x in s.samples]
            print(f"{s.label}_calls={s.calls}")
            idle_fds = [x[3] for x in s.idle]
            print(f"{s.label}_rss_mib_start={rss[0]:.1f} warm={s.idle[warm][2]:.1f} max={max(rss):.1f} "
                  f"end={rss[-2] if len(rss) > 1 else rss[-1]:.1f} growth_after_warmup={rss_growth:.1f}")
            print(f"{s.label}_fds_start={s.samples[0][3]} max_under_load={max(x[3] for x in s.samples)} "
                  f"idle_after_chunks={min(idle_fds)}..{max(idle_fds)} growth_after_warmup={fd_growth}")
            print(f"{s.label}_audit_intact={'yes' if intact else 'no'} records={records} "
                  f"get_current_time_records={recorded_calls}")
            if not steady:
                failures.append(f"{s.label}: grew after warm-up: {rss_growth:.1f} MiB, {fd_growth} fds")
            if not intact:
                failures.append(f"{s.label}: the audit log does not verify")
            if recorded_calls != s.calls:
                failures.append(f"{s.label}: {s.calls} calls answered, {recorded_calls} recorded")
            ok = ok and steady and intact and recorded_calls == s.calls
        if args.csv:
            with open(args.csv, "w") as f:
                f.write("server,seconds,calls,rss_mib,fds\n")
                for s in servers:
                    for t, calls, rss, fds in s.samples:
                        f.write(f"{s.label},{t:.1f},{calls},{rss:.1f},{fds}\n")
    finally:
        stop.set()
        for s in servers:
            s.stop()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print(f"soak_ok={'yes' if not failures else 'no'}")
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        print("soak_ok=INVALID")
        sys.exit(1)
