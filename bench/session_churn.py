#!/usr/bin/env python3
"""Sessions opened and closed leave nothing behind (issue #19's memory targets).

Starts a server (`rampart serve` with its defaults, an API token created first; or the
bare rmcp server of bench/bare, whose banner and flags are the same) and runs CYCLES
cycles of N sessions, each `initialize`, `notifications/initialized`, one
`tools/call get_current_time` and `DELETE`, printing the resident memory after each
cycle. A leak per session shows as a climb of N times its size per cycle; a flat series
after the first cycle is what passes.

    python3 bench/session_churn.py [--bin target/release/rampart] [-n 1000] [--cycles 6]
"""

import argparse
import http.client
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import calls_per_second as cps  # noqa: E402

INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench-churn", "version": "0"}}})
INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
CALL = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or cps.default_bin(), help="server binary")
    ap.add_argument("-n", "--sessions", type=int, default=1000, help="sessions per cycle (default 1000)")
    ap.add_argument("--cycles", type=int, default=6, help="cycles (default 6)")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    server = cps.BenchServer("churn", binary, api_token="bare" not in os.path.basename(binary))
    try:
        host_port, path = server.url[len("http://"):].split("/", 1)
        host, port = host_port.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if server.token:
            headers["authorization"] = f"Bearer {server.token}"

        def send(method, body, extra):
            conn.request(method, "/" + path, body, {**headers, **extra})
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method}: HTTP {response.status}")
            return response

        series = []
        for cycle in range(args.cycles):
            for _ in range(args.sessions):
                session = send("POST", INITIALIZE, {}).getheader("mcp-session-id")
                extra = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
                send("POST", INITIALIZED, extra)
                send("POST", CALL, extra)
                send("DELETE", None, extra)
            time.sleep(1.5)
            series.append(cps.rss_mib(server.proc.pid))
            print(f"cycle {cycle + 1}: {args.sessions * (cycle + 1)} sessions opened and closed, RSS {series[-1]:.1f} MiB",
                  flush=True)
    finally:
        server.stop()
    growth = max(series[1:] or series) - series[0]
    print(f"rss_growth_after_first_cycle_mib={growth:.1f}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
