#!/usr/bin/env python3
"""The console's Audit page with a million audit records (target: < 100 ms of server time).

Makes a SQLite store with `rampart token create` (an admin token, which also migrates the
store and writes the first records), appends N audit records to it directly with Python's
sqlite3 (a valid hash chain continuing the store's own: every record parses and
`verify` passes; principals, tools, decisions and outcomes spread like a busy server's),
then starts the real `rampart serve` with `server.console = true`, signs in like a
browser (the session cookie) and times, over R runs each after one warm-up:

  page            GET /console/audit                            (the newest 100)
  principal       GET /console/audit?principal=token:agent-07   (1/20 of the records)
  rare_principal  GET /console/audit?principal=token:rare        (100 records)
  decision        GET /console/audit?decision=deny              (~3 %)
  outcome         GET /console/audit?outcome=timed_out          (~0.5 %)
  principal+deny  GET /console/audit?principal=token:agent-07&decision=deny
  time_range      GET /console/audit?since=…&until=…            (one hour in the middle)
  whole_range     GET /console/audit?since=…&until=…            (every record's time)
  last_minutes    GET /console/audit?since=…                    (the last 10 minutes)
  deep_page       GET /console/audit?before=…                   (a page half way down)
  record          GET /console/audit/record?chain=&seq=…        (a record half way down)

For each: the server's own time (the `Server-Timing: app;dur=…` header the console
sets: from the request reaching the console, session check included, to the response's
first byte) and the client's wall time, median / p90 / max in ms, and a check that the
page holds what it should (100 result rows, or the record's detail). Then, once each,
an export of 100,000 records (client time to the last byte) and a verification of the
whole log (POST /console/audit/verify).

    python3 bench/console_audit.py [-n 1000000] [-r 20] [--bin target/release/rampart] [--keep DIR]

The store is made in a fresh temporary directory (removed at the end unless --keep DIR,
which also reuses a store DIR made before: filling it takes a minute). Not run in CI.
Prints `<scenario>_server_ms_median=X` lines and `target_met=yes|no` (every scenario's
median server time < 100 ms).
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import calls_per_second as cps  # noqa: E402

TARGET_MS = 100.0
PRINCIPALS = [f"token:agent-{i:02}" for i in range(20)]
TOOLS = ["fs_read", "fs_write", "fs_list", "get_current_time", "system_health", "http_get", "sql_query",
         "exec_run", "upstream_github_search", "upstream_github_issue"] + [f"tool_{i:02}" for i in range(20)]
# (weight, decision, outcome, detail)
OUTCOMES = [
    (900, "allow", "ok", None),
    (40, "allow", "tool_error", "the tool reported an error"),
    (30, "deny", "denied", "no role grants tool"),
    (15, "allow", "rate_limited", "rate limit: 100/min"),
    (5, "allow", "timed_out", "the call took longer than 30 s"),
    (10, "allow", "error", "internal error"),
]


def canonical(value):
    """serde_json's compact form with every object's keys sorted: what the hash covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_time(ms):
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03}Z"


def fill(db_path, count, seed=7):
    """Appends `count` records to the store's default chain, continuing its hash chain.
    Returns (first seq, last seq, first time ms, last time ms)."""
    rng = random.Random(seed)
    weights = [o[0] for o in OUTCOMES]
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA synchronous = OFF")
    seq, time_ms, record = conn.execute(
        "SELECT seq, time_ms, record FROM audit_records WHERE chain = '' ORDER BY seq DESC LIMIT 1").fetchone()
    prev_hash = json.loads(record)["hash"]
    # About 10.5 ms apart, the last about now: the records the server adds while it is
    # measured come after them in time too.
    time_ms = int(time.time() * 1000) - count * 21 // 2
    first_seq, first_time = seq + 1, time_ms + 1
    rare = set(rng.sample(range(count), 100))
    rows = []
    started = time.monotonic()
    for i in range(count):
        seq += 1
        time_ms += rng.randint(1, 20)
        principal = "token:rare" if i in rare else PRINCIPALS[i % len(PRINCIPALS)]
        tool = TOOLS[rng.randrange(len(TOOLS))]
        _, decision, outcome, detail = rng.choices(OUTCOMES, weights)[0]
        body = {
            "arguments": {"path": f"/srv/data/file-{i % 5000}.txt", "limit": i % 100, "recursive": i % 2 == 0},
            "decision": decision,
            "detail": detail,
            "duration_us": rng.randint(50, 20000),
            "method": "tools/call",
            "outcome": outcome,
            "prev_hash": prev_hash,
            "principal": principal,
            "remote_addr": "127.0.0.1:50000",
            "request_id": str(i),
            "seq": seq,
            "session": "3f2a9c0e-5b1d-4c6e-9f7a-2d8b1e4c6a90",
            "time": format_time(time_ms),
            "tool": tool,
            "transport": "streamable_http",
        }
        digest = hashlib.sha256(canonical(body).encode()).hexdigest()
        body["hash"] = digest
        prev_hash = digest
        rows.append((seq, time_ms, principal, tool, canonical(body), "", decision, outcome))
        if len(rows) == 50_000:
            insert(conn, rows)
            rows = []
            print(f"  {i + 1:,} records ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    insert(conn, rows)
    conn.close()
    return first_seq, seq, first_time, time_ms


def insert(conn, rows):
    with conn:
        conn.executemany("INSERT INTO audit_records (seq, time_ms, principal, tool, record, chain, decision, outcome) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


class Console:
    """A signed-in console session on one keep-alive connection."""

    def __init__(self, url, token):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        status, headers, _ = self.request("POST", "/console/login",
                                          urllib.parse.urlencode({"token": token}),
                                          {"content-type": "application/x-www-form-urlencoded"})
        cookie = headers.get("set-cookie", "")
        if status != 303 or not cookie.startswith("rampart_console="):
            raise RuntimeError(f"sign-in failed: HTTP {status} {headers}")
        self.cookie = cookie.split(";", 1)[0]
        status, _, body = self.request("GET", "/console/audit")
        self.csrf = re.search(r'name="_csrf" value="([^"]+)"', body.decode()).group(1)

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if getattr(self, "cookie", None):
            headers["cookie"] = self.cookie
        self.conn.request(method, path, body, headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def timed(self, method, path, body=None, headers=None):
        started = time.perf_counter()
        status, headers, data = self.request(method, path, body, headers)
        client_ms = (time.perf_counter() - started) * 1000
        match = re.search(r"dur=([0-9.]+)", headers.get("server-timing", ""))
        server_ms = float(match.group(1)) if match else float("nan")
        return status, server_ms, client_ms, data


def rows_in(body):
    return body.count(b'<tr class="record')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--records", type=int, default=1_000_000)
    parser.add_argument("-r", "--runs", type=int, default=20)
    parser.add_argument("--bin", default=cps.default_bin())
    parser.add_argument("--keep", help="keep (or reuse) the store in this directory")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    workdir = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="rampart-bench-audit-")
    os.makedirs(workdir, exist_ok=True)
    state_path = os.path.join(workdir, "bench-state.json")
    config = os.path.join(workdir, "bench.toml")
    with open(config, "w") as f:
        f.write("[server]\nconsole = true\n")
    try:
        if os.path.exists(state_path):
            with open(state_path) as f:
                state = json.load(f)
            print(f"reusing the store in {workdir} ({state['last_seq']:,} records)", file=sys.stderr)
        else:
            out = subprocess.run([binary, "token", "create", "--name", "console", "--role", "admin", "--json"],
                                 cwd=workdir, env=cps.server_env(workdir), stdin=subprocess.DEVNULL,
                                 capture_output=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"token create failed: {out.stderr.decode()[-2000:]}")
            token = json.loads(out.stdout)["token"]
            print(f"filling {workdir}/rampart.db with {args.records:,} records…", file=sys.stderr)
            started = time.monotonic()
            first_seq, last_seq, first_time, last_time = fill(os.path.join(workdir, "rampart.db"), args.records)
            print(f"filled in {time.monotonic() - started:.0f} s", file=sys.stderr)
            state = {"token": token, "first_seq": first_seq, "last_seq": last_seq,
                     "first_time": first_time, "last_time": last_time}
            with open(state_path, "w") as f:
                json.dump(state, f)
        run(binary, workdir, config, state, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def run(binary, workdir, config, state, runs):
    proc, url, log_path = cps.start_server(binary, ["--config", config], workdir, timeout=120)
    try:
        console = Console(url.rsplit("/", 1)[0], state["token"])
        middle_seq = (state["first_seq"] + state["last_seq"]) // 2
        middle_ms = (state["first_time"] + state["last_time"]) // 2
        since, until = format_time(middle_ms), format_time(middle_ms + 3_600_000)
        deep = f"{middle_ms}:{middle_seq}:"
        q = urllib.parse.urlencode
        scenarios = [
            ("page", "/console/audit", 100),
            ("principal", "/console/audit?" + q({"principal": "token:agent-07"}), 100),
            ("rare_principal", "/console/audit?" + q({"principal": "token:rare"}), 100),
            ("decision", "/console/audit?decision=deny", 100),
            ("outcome", "/console/audit?outcome=timed_out", 100),
            ("principal_deny", "/console/audit?" + q({"principal": "token:agent-07", "decision": "deny"}), 100),
            ("time_range", "/console/audit?" + q({"since": since, "until": until}), 100),
            ("whole_range", "/console/audit?" + q({"since": format_time(state["first_time"]),
                                                    "until": format_time(state["last_time"])}), 100),
            ("last_minutes", "/console/audit?" + q({"since": format_time(state["last_time"] - 600_000)}), 100),
            ("deep_page", "/console/audit?" + q({"before": deep}), 100),
            ("record", f"/console/audit/record?chain=&seq={middle_seq}", None),
        ]
        results = {}
        print(f"{'scenario':<16} {'server median':>13} {'p90':>7} {'max':>7}   {'client median':>13}  rows")
        for name, path, expected_rows in scenarios:
            server, client = [], []
            for attempt in range(runs + 1):
                status, server_ms, client_ms, body = console.timed("GET", path)
                if status != 200:
                    raise RuntimeError(f"{name}: HTTP {status}: {body[:500]!r}")
                found = rows_in(body) if expected_rows else int(b'id="record-detail"' in body)
                # Fewer than a page only for a small store (e.g. -n 20000: ~100 timed_out).
                if not 0 < found <= (expected_rows or 1):
                    raise RuntimeError(f"{name}: {found} rows, expected {expected_rows or 1}")
                if attempt:
                    server.append(server_ms)
                    client.append(client_ms)
            server.sort()
            results[name] = statistics.median(server)
            print(f"{name:<16} {statistics.median(server):>10.1f} ms {cps.percentile(server, 90):>7.1f} "
                  f"{server[-1]:>7.1f}   {statistics.median(client):>10.1f} ms  {found}")
        for name, median in results.items():
            print(f"{name}_server_ms_median={median:.1f}")

        status, server_ms, client_ms, body = console.timed("GET", "/console/audit/export")
        lines = body.count(b"\n")
        print(f"export: HTTP {status}, {lines:,} lines, {len(body) / 1e6:.1f} MB, {client_ms:.0f} ms to the last byte "
              f"(first byte after {server_ms:.1f} ms of server time)")
        form = urllib.parse.urlencode({"_csrf": console.csrf})
        status, server_ms, client_ms, body = console.timed(
            "POST", "/console/audit/verify", form, {"content-type": "application/x-www-form-urlencoded"})
        verdict = re.search(rb'id="verify-status"[^>]*>([^<]*)', body)
        print(f"verify: HTTP {status}, {client_ms / 1000:.1f} s: {verdict.group(1).decode() if verdict else body[:300]!r}")
        met = all(median < TARGET_MS for median in results.values())
        print(f"target_met={'yes' if met else 'no'}")
    finally:
        cps.stop_server(proc)
        print(f"server log: {log_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
