#!/usr/bin/env python3
"""Cold start of `rampart serve --transport stdio`.

Spawns the server N times. For each run it writes an MCP `initialize` request
(protocolVersion 2025-11-25) to stdin immediately after spawn and measures the wall
time from just before spawn to the moment the initialize response line has been read
from stdout. Then it closes stdin, waits for the process to exit (bounded) and kills it
by PID if it has not.

Each series runs in a fresh temporary directory (cwd and RAMPART_DATA_DIR), so the
server's SQLite store is created by the warm-up run and only opened by the measured ones.

Stdlib only. Output: min / median / p90 / max in ms, then `cold_start_median_ms=X`.

    python3 bench/cold_start.py [--bin PATH] [-n 30] [-- extra server flags]
"""

import argparse
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "rampart-bench-cold-start", "version": "0"},
    },
}
INIT_LINE = (json.dumps(INIT, separators=(",", ":")) + "\n").encode()


def default_bin():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target"
    )
    return os.path.join(target, "release", "rampart")


def system_busy_seconds():
    """CPU seconds spent busy (not idle/iowait) by the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def percentile(sorted_vals, p):
    """Nearest-rank percentile (p in 0..100) of an already sorted list."""
    if not sorted_vals:
        raise ValueError("no samples")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def read_response_line(proc, deadline):
    """Read stdout until one complete line arrives or the deadline passes."""
    fd = proc.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError("no initialize response before timeout")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError(f"server closed stdout (exit code {proc.poll()})")
        buf += chunk
    return buf.split(b"\n", 1)[0]


def one_run(argv, cwd, stderr_file, timeout):
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        cwd=cwd,
        bufsize=0,
    )
    try:
        proc.stdin.write(INIT_LINE)
        proc.stdin.flush()
        line = read_response_line(proc, t0 + timeout)
        t1 = time.perf_counter()
        msg = json.loads(line)
        if msg.get("id") != 1 or "result" not in msg:
            raise RuntimeError(f"unexpected initialize response: {line[:300]!r}")
        if msg["result"].get("protocolVersion") != "2025-11-25":
            raise RuntimeError(f"server negotiated {msg['result'].get('protocolVersion')!r}")
        return (t1 - t0) * 1000.0
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()  # this PID only
            proc.wait(timeout=5)
        proc.stdout.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or default_bin(),
                    help="rampart binary (default: $RAMPART_BIN or $CARGO_TARGET_DIR/release/rampart)")
    ap.add_argument("-n", "--runs", type=int, default=30, help="measured runs (default 30)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="unmeasured runs first, so the binary is in the page cache (default 1)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-run timeout in s (default 10)")
    ap.add_argument("--stderr", default=os.devnull,
                    help="where the server's stderr (banner and logs) goes (default /dev/null)")
    ap.add_argument("--verbose", action="store_true", help="print every sample")
    ap.add_argument("server_args", nargs="*", help="extra `rampart serve` flags, after --")
    args = ap.parse_args()

    if not (1 <= args.runs <= 10000):
        ap.error("--runs must be in 1..10000")
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found or not executable: {args.bin} (build with cargo build --release -p rampart-cli)")

    argv = [os.path.abspath(args.bin), "serve", "--transport", "stdio", *args.server_args]
    # A neutral working directory, so a ./rampart.toml or ./.env in the caller's cwd is not
    # picked up, and the store (RAMPART_DATA_DIR) in it: the warm-up run creates the SQLite
    # database, the measured runs open the existing one; ~/.local/share/rampart is untouched.
    with tempfile.TemporaryDirectory(prefix="rampart-bench-") as cwd, open(args.stderr, "ab") as err:
        os.environ["RAMPART_DATA_DIR"] = cwd
        for _ in range(max(0, args.warmup)):
            one_run(argv, cwd, err, args.timeout)
        samples = []
        w0, busy0, own0 = time.perf_counter(), system_busy_seconds(), own_cpu_seconds()
        for i in range(args.runs):
            ms = one_run(argv, cwd, err, args.timeout)
            samples.append(ms)
            if args.verbose:
                print(f"run {i + 1}: {ms:.2f} ms", file=sys.stderr)
        wall = time.perf_counter() - w0
        other = max(0.0, system_busy_seconds() - busy0 - (own_cpu_seconds() - own0)) / wall

    s = sorted(samples)
    print(f"cold start (spawn -> initialize response), {len(s)} runs, {os.path.basename(args.bin)} serve --transport stdio")
    print(f"  min    {s[0]:8.2f} ms")
    print(f"  median {statistics.median(s):8.2f} ms")
    print(f"  p90    {percentile(s, 90):8.2f} ms")
    print(f"  max    {s[-1]:8.2f} ms")
    print(f"  other processes used {other:.2f} cores meanwhile ({os.cpu_count()} CPUs)")
    if other > 0.15:
        print("  WARNING: the machine was busy with other work; the figures are noisy")
    print(f"cold_start_median_ms={statistics.median(s):.2f}")


if __name__ == "__main__":
    main()
