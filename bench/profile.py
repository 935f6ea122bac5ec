#!/usr/bin/env python3
"""Where a server's CPU goes per call: `perf record` of one server under load, grouped by crate.

Starts one server as `vs_rmcp.py` does (on CPU 0; bench/loadgen with 64 sessions on CPU 1,
every response checked), records it with `perf record` for a few seconds in the middle of
the load, and prints the samples grouped by the crate of the function they fell in (the
first path segment of the symbol; `<A as B>::f` counts for A; kernel, libc and mimalloc
on their own), scaled to µs of server CPU per call. Also the top functions.

    python3 bench/profile.py [--bin target/release/rampart] [--server secure_session]
                             [--seconds 5] [--top 40] [--call-graph dwarf] [--keep perf.data]

Servers: secure_session, secure_stateless, open_session, open_stateless, unaudited_session,
unaudited_stateless (Rampart, as in vs_rmcp.py), bare_session, bare_stateless (bench/bare).
Needs `perf` (Debian package linux-perf) and permission to profile the server (root, or
kernel.perf_event_paranoid <= 1).
For call graphs, a binary with line tables: `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
cargo build --release -p rampart-cli` (with a separate CARGO_TARGET_DIR, to keep the
benchmark's binary as it is), then `--call-graph dwarf`.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import calls_per_second as cps  # noqa: E402
import vs_rmcp  # noqa: E402

OWN = {"libc.so.6": "libc", "[kernel.kallsyms]": "kernel", "[vdso]": "kernel"}


def crate_of(dso, symbol):
    """The crate a sample is charged to."""
    if dso in OWN:
        return OWN[dso]
    if symbol.startswith(("mi_", "_mi_", "mi_free")):
        return "mimalloc"
    if symbol.startswith(("sqlite3", "pcache", "btree")):
        return "sqlite"
    name = symbol.lstrip("<&*")
    name = re.sub(r"^(dyn |mut |const )", "", name)
    head = re.split(r"::|<| as |\s", name, maxsplit=1)[0]
    return head or symbol[:30]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=cps.default_bin())
    ap.add_argument("--bare-bin", default=vs_rmcp.bare_path())
    ap.add_argument("--server", default="secure_session")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--call-graph", default=None, help="perf's --call-graph mode (dwarf needs line tables)")
    ap.add_argument("--keep", help="keep perf.data at this path")
    args = ap.parse_args()

    configs = {c[0]: c for c in vs_rmcp.server_configs(args.bin, args.bare_bin, unaudited=True)}
    if args.server not in configs:
        ap.error(f"--server is one of {', '.join(configs)}")
    data = args.keep or os.path.join(tempfile.mkdtemp(prefix="rampart-profile-"), "perf.data")
    server = vs_rmcp.Server(*configs[args.server])
    try:
        load = types.SimpleNamespace(concurrency=64, warmup=1.0, duration=args.seconds + 4.0, client_threads=1,
                                     build_loadgen=False)
        result = {}
        thread = threading.Thread(target=lambda: result.update(
            run=cps.run_rust_client(server.url, load, server.token, server.proc.pid, cpus={1})))
        thread.start()
        time.sleep(2.5)
        record = ["perf", "record", "-F", "2999", "-p", str(server.proc.pid), "-o", data]
        if args.call_graph:
            record += ["--call-graph", args.call_graph]
        subprocess.run(record + ["--", "sleep", str(args.seconds)], check=True, stderr=subprocess.DEVNULL)
        thread.join()
    finally:
        server.stop()
    summary = result["run"][0]
    if summary.get("errors"):
        sys.exit(f"{summary['errors']} failed calls: the profile would not be of the normal path")
    us_per_call = summary["server_cpu_measured"] / summary["calls"] * 1e6
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                             "-g", "none", "--percent-limit", "0"],
                            capture_output=True, text=True, check=True).stdout
    rows = []
    for line in report.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3).strip()))
    by_crate = collections.Counter()
    for share, dso, symbol in rows:
        by_crate[crate_of(dso, symbol)] += share
    print(f"{args.server}: {summary['calls_per_second']:.0f} calls/s, {us_per_call:.1f} µs of server CPU per call "
          f"({summary['calls']} calls, 0 errors)")
    print("\nby crate (µs per call):")
    for crate, share in by_crate.most_common():
        if share >= 0.2:
            print(f"  {crate:<28} {share * us_per_call / 100:6.2f}  ({share:.1f}%)")
    print(f"\ntop {args.top} functions (µs per call):")
    for share, dso, symbol in rows[: args.top]:
        print(f"  {share * us_per_call / 100:6.2f}  {symbol[:150]}")
    print(f"server_cpu_us_per_call={us_per_call:.1f}")


if __name__ == "__main__":
    main()
