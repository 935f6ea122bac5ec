#!/usr/bin/env python3
"""Memory of idle MCP sessions (issue #19: idle RSS <= 15 MiB, 10,000 idle sessions <= 1 GiB).

Starts `rampart serve` with its defaults (API token, policy, audit in SQLite; session mode)
and, for comparison, the bare rmcp server of bench/bare, each on 127.0.0.1:0. For each: the
resident memory (VmRSS) once started and idle, then N sessions opened (`initialize` +
`notifications/initialized` over a few keep-alive connections, then left idle), the
memory again, and the cost per session.

    python3 bench/sessions.py [-n 10000] [--bin target/release/rampart] [--bare-bin ...]

Prints, per server (`rampart`, `bare`):
  <server>_rss_idle_mib, <server>_rss_with_sessions_mib, <server>_kib_per_session
and targets_met=yes|no (Rampart idle <= 15 MiB, N sessions <= 1 GiB scaled to 10,000).
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import calls_per_second as cps  # noqa: E402
import vs_rmcp  # noqa: E402

INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench-sessions", "version": "0"}}})
INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})


def open_sessions(url, token, count, connections=4):
    host_port, path = url[len("http://"):].split("/", 1)
    host, port = host_port.rsplit(":", 1)
    opened, errors = [0], []
    lock = threading.Lock()

    def worker(share):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        for _ in range(share):
            conn.request("POST", "/" + path, INITIALIZE, headers)
            response = conn.getresponse()
            response.read()
            session = response.getheader("mcp-session-id")
            if response.status != 200 or not session:
                errors.append(f"initialize: HTTP {response.status}")
                return
            conn.request("POST", "/" + path, INITIALIZED,
                         {**headers, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"})
            response = conn.getresponse()
            response.read()
            if response.status not in (200, 202):
                errors.append(f"notifications/initialized: HTTP {response.status}")
                return
            with lock:
                opened[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(count // connections + (i < count % connections),))
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return opened[0]


def measure(label, binary, api_token, count):
    server = cps.BenchServer(label, binary, api_token=api_token)
    try:
        time.sleep(1.0)
        idle = cps.rss_mib(server.proc.pid)
        started = time.monotonic()
        opened = open_sessions(server.url, server.token, count)
        seconds = time.monotonic() - started
        time.sleep(2.0)
        loaded = cps.rss_mib(server.proc.pid)
    finally:
        server.stop()
    per_session = (loaded - idle) * 1024 / max(opened, 1)
    print(f"{label}_rss_idle_mib={idle:.1f}")
    print(f"{label}_sessions={opened} (opened in {seconds:.1f} s)")
    print(f"{label}_rss_with_sessions_mib={loaded:.1f}")
    print(f"{label}_kib_per_session={per_session:.1f}", flush=True)
    return idle, loaded, per_session


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or cps.default_bin(), help="rampart binary")
    ap.add_argument("--bare-bin", default=vs_rmcp.bare_path(), help="the bare rmcp server (bench/bare)")
    ap.add_argument("-n", "--sessions", type=int, default=10_000, help="sessions to open (default 10,000)")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found: {args.bin}")
    if not os.access(args.bare_bin, os.X_OK):
        vs_rmcp.build_bare()
    idle, loaded, per_session = measure("rampart", os.path.abspath(args.bin), True, args.sessions)
    measure("bare", os.path.abspath(args.bare_bin), False, args.sessions)
    at_10k = idle + per_session * 10_000 / 1024
    print(f"rampart_rss_at_10000_sessions_mib={at_10k:.0f}")
    print(f"targets_met={'yes' if idle <= 15 and at_10k <= 1024 else 'no'}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        print("targets_met=INVALID")
        sys.exit(1)
