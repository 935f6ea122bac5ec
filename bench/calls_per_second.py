#!/usr/bin/env python3
"""Tool calls per second over streamable HTTP (tools/call get_current_time).

Starts `rampart serve --listen 127.0.0.1:0 [server flags]`, reads the bound address from
its banner, then runs a closed-loop load: C concurrent clients, each on ONE keep-alive
HTTP/1.1 connection with ONE MCP session (initialize -> notifications/initialized ->
tools/call, tools/call, ...), for a warm-up period (not counted) and then a fixed
measured duration. Every response is checked (HTTP 200, JSON-RPC result with the
request's id, isError false, structuredContent.timezone == "UTC"); any error makes the
run invalid (exit code 1). The server is killed by its PID at the end.

Load clients:
  rust   (default) bench/loadgen, a small tokio + hyper program (its own cargo project,
         not in the workspace); built on first use into $CARGO_TARGET_DIR or bench/loadgen/target.
  python an asyncio client in this file (stdlib only). On 2 cores it saturates a core
         before the server does, so it measures itself; kept for comparison/fallback.

The CPU time of the server and of the load client over the run is printed, so you can see
which side is the bottleneck (a client near 1.0 core with a single-threaded client means
the figure is client-bound).

    python3 bench/calls_per_second.py [-c 8] [-d 10] [-r 1] [--client rust|python] [--token K] [-- server flags]

Concurrency 8 by default: on the 2-core machine this was written on, 8 closed-loop sessions
saturate it (server ~1.5 cores + client ~0.35 core) while latency stays well under 1 ms;
16 adds a few per cent of throughput for twice the latency, 32 loses throughput.
Throughput varies run to run by +-15% on a shared VM: compare configurations with
--repeat 3 or more, interleaved, and look at the CPU line (other processes are reported).

Server flags after `--` are passed to `rampart serve`, e.g. `-- --auth-key K`,
`-- --insecure-no-auth` or `-- --stateless`. Credentials (unless --token K is given):
  --auth-key K among the flags  -> the client sends `Authorization: Bearer K`;
  --insecure-no-auth            -> no Authorization header;
  otherwise (the default: API tokens) -> `rampart token create --role reader` first, and
                                   the client sends that token.
Each run gets its own temporary directory as cwd and RAMPART_DATA_DIR (a fresh SQLite
store and audit log), so the user's ~/.local/share/rampart is never touched. Other
RAMPART_* variables in the environment (e.g. RAMPART_DATABASE_URL, RAMPART_AUDIT_FILE) are
passed through to the server.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL = "2025-11-25"
BANNER_RE = re.compile(r"streamable HTTP at (http://(127\.0\.0\.1|\[::1\]|localhost):(\d+)(/\S*))")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------
# helpers


def default_bin():
    return os.path.join(target_dir(), "release", "rampart")


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "..", "target")


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def proc_cpu_seconds(pid):
    """utime + stime of a live process (all threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def system_busy_seconds():
    """CPU seconds spent busy (not idle/iowait) by the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def token_from_server_args(server_args):
    """The bearer credential implied by the server flags: "none" with --insecure-no-auth,
    the key of --auth-key K, else None (meaning: create an API token)."""
    if "--insecure-no-auth" in server_args:
        return "none"
    for i, a in enumerate(server_args):
        if a == "--auth-key" and i + 1 < len(server_args):
            return server_args[i + 1]
        if a.startswith("--auth-key="):
            return a.split("=", 1)[1]
    return os.environ.get("RAMPART_AUTH_KEY") or None


def server_env(workdir):
    """The server's environment: the caller's, with the store in the run's own directory
    (unless RAMPART_DATABASE_URL points elsewhere), so runs never touch ~/.local/share/rampart."""
    env = dict(os.environ)
    env["RAMPART_DATA_DIR"] = workdir
    return env


def create_api_token(binary, workdir):
    """`rampart token create` in the run's store; returns the secret."""
    out = subprocess.run(
        [binary, "token", "create", "--name", "bench", "--role", "reader", "--json"],
        cwd=workdir, env=server_env(workdir), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"rampart token create failed ({out.returncode}): {out.stderr.decode()[-1000:]}")
    return json.loads(out.stdout)["token"]


def start_server(binary, server_args, workdir, timeout=10.0, cpus=None):
    """Starts `binary serve --listen 127.0.0.1:0 ARGS` (on the CPUs `cpus` only, when given:
    every thread it makes inherits the affinity); returns (process, URL, log path)."""
    log_path = os.path.join(workdir, "server.log")
    log = open(log_path, "wb")
    argv = [binary, "serve", "--listen", "127.0.0.1:0", *server_args]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir,
                            env=server_env(workdir), preexec_fn=pin)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            text = f.read(64 * 1024).decode("utf-8", "replace")
        m = BANNER_RE.search(text)
        if m:
            return proc, m.group(1), log_path
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{text[-2000:]}")
        time.sleep(0.02)
    stop_server(proc)
    raise RuntimeError(f"no 'streamable HTTP at' banner within {timeout}s; see {log_path}")


def stop_server(proc):
    if proc.poll() is None:
        proc.terminate()  # SIGTERM to this PID only
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def rss_mib(pid):
    """Resident memory (VmRSS) of a live process, MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class BenchServer:
    """One server for a benchmark: `binary serve` on 127.0.0.1:0 in its own temporary data
    directory (a `bench.toml` with `config_toml` when given; an API token with the `reader`
    role created first when `api_token`), on the CPUs `cpus` when given. `stop()` stops it
    by PID and removes the directory."""

    def __init__(self, label, binary, flags=(), config_toml=None, api_token=False, cpus=None):
        self.label = label
        self.binary = binary
        self.workdir = tempfile.mkdtemp(prefix=f"rampart-bench-{label}-")
        args = list(flags)
        if config_toml is not None:
            path = os.path.join(self.workdir, "bench.toml")
            with open(path, "w") as f:
                f.write(config_toml)
            args += ["--config", path]
        try:
            self.token = create_api_token(binary, self.workdir) if api_token else None
            self.proc, self.url, self.log_path = start_server(binary, args, self.workdir, cpus=cpus)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def stop(self):
        stop_server(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# python asyncio load client


class McpConn:
    def __init__(self, host, port, path, token):
        self.host, self.port, self.path = host, port, path
        self.token = token
        self.session = None
        self.next_id = 0

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        self.writer.close()

    async def post(self, msg):
        body = json.dumps(msg, separators=(",", ":")).encode()
        head = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            f"MCP-Protocol-Version: {PROTOCOL}",
            f"Content-Length: {len(body)}",
        ]
        if self.session:
            head.append(f"Mcp-Session-Id: {self.session}")
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                parts.append((await self.reader.readexactly(size + 2))[:-2])
            data = b"".join(parts)
        else:
            raise RuntimeError(f"HTTP {status} without length or chunking")
        if headers.get("connection", "").lower() == "close":
            raise RuntimeError("server closed the keep-alive connection")
        return status, headers, data

    async def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        status, headers, data = await self.post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        if status != 200:
            raise RuntimeError(f"{method}: HTTP {status}: {data[:200]!r}")
        if headers.get("content-type", "").startswith("text/event-stream"):
            msgs = []
            for line in data.split(b"\n"):
                if line.startswith(b"data:"):
                    payload = line[5:].strip()
                    if payload:
                        msgs.append(json.loads(payload))
        else:
            msgs = [json.loads(data)]
        for m in msgs:
            if m.get("id") == rid:
                if "result" not in m:
                    raise RuntimeError(f"{method}: JSON-RPC error {m.get('error')}")
                return headers, m["result"]
        raise RuntimeError(f"{method}: no response with id {rid} in {data[:200]!r}")

    async def handshake(self):
        headers, _ = await self.request(
            "initialize",
            {"protocolVersion": PROTOCOL, "capabilities": {},
             "clientInfo": {"name": "rampart-bench", "version": "0"}},
        )
        self.session = headers.get("mcp-session-id")
        status, _, data = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status not in (200, 202):
            raise RuntimeError(f"notifications/initialized: HTTP {status}: {data[:200]!r}")

    async def call(self):
        _, result = await self.request("tools/call", {"name": "get_current_time", "arguments": {"timezone": "UTC"}})
        if result.get("isError") is not False or (result.get("structuredContent") or {}).get("timezone") != "UTC":
            raise RuntimeError(f"tool error: {json.dumps(result)[:200]}")


async def python_load(url, concurrency, warmup, duration, token):
    m = re.match(r"http://(\[[^\]]+\]|[^:/]+):(\d+)(/.*)", url)
    host, port, path = m.group(1).strip("[]"), int(m.group(2)), m.group(3)
    stats = {"calls": 0, "errors": 0, "first_error": None, "lat": []}
    conns = [McpConn(host, port, path, token) for _ in range(concurrency)]
    try:
        for c in conns:
            await c.open()
        await asyncio.wait_for(asyncio.gather(*(c.handshake() for c in conns)), 30)
    except Exception as e:  # noqa: BLE001
        return {"calls": 0, "errors": 1, "first_error": f"session set-up: {e!r}"}
    t0 = time.perf_counter()
    t_start, t_end = t0 + warmup, t0 + warmup + duration

    async def worker(c):
        while True:
            s = time.perf_counter()
            if s >= t_end:
                return
            try:
                await c.call()
            except Exception as e:  # noqa: BLE001 -- every failure invalidates the run
                stats["errors"] += 1
                stats["first_error"] = stats["first_error"] or repr(e)
                return
            e = time.perf_counter()
            if s >= t_start and e <= t_end:
                stats["calls"] += 1
                stats["lat"].append(e - s)

    await asyncio.wait_for(asyncio.gather(*(worker(c) for c in conns)), warmup + duration + 30)
    for c in conns:
        c.close()
    lat = sorted(stats["lat"])
    return {
        "calls": stats["calls"], "errors": stats["errors"], "first_error": stats["first_error"],
        "duration_s": duration, "calls_per_second": stats["calls"] / duration,
        "p50_ms": percentile(lat, 50) * 1e3, "p90_ms": percentile(lat, 90) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3, "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
    }


def run_python_client(url, args, token):
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    summary = asyncio.run(python_load(url, args.concurrency, args.warmup, args.duration, token))
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return summary, cpu, w1 - w0


# ---------------------------------------------------------------------------------------
# rust load client (bench/loadgen)


def project_bin(project, name):
    """The release binary `name` of the cargo project bench/<project> (its own target
    directory unless CARGO_TARGET_DIR is set)."""
    return os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, project, "target"), "release", name)


def build_project(project):
    """`cargo build --release` of the cargo project bench/<project>."""
    print(f"building bench/{project} (release) ...", file=sys.stderr)
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.join(HERE, project, "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(HERE, project, "Cargo.toml")],
                   check=True, env=env, timeout=1800)


def loadgen_path():
    return project_bin("loadgen", "rampart-bench-load")


def build_loadgen():
    build_project("loadgen")


def run_rust_client(url, args, token, server_pid, cpus=None):
    """Runs bench/loadgen against `url` (on the CPUs `cpus` only, when given); returns (its JSON
    summary plus `server_cpu_measured`, the client's CPU seconds, wall seconds)."""
    exe = loadgen_path()
    if args.build_loadgen or not os.access(exe, os.X_OK):
        build_loadgen()
    argv = [exe, "--url", url, "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
            "--duration", str(args.duration), "--threads", str(args.client_threads)]
    env = dict(os.environ)
    env.pop("MCP_BENCH_TOKEN", None)
    if token:
        env["MCP_BENCH_TOKEN"] = token  # not on the command line (ps); outside RAMPART_*, which the server checks
    r0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, preexec_fn=pin)
    # The server's CPU over the measured period only (the warm-up is not counted in calls).
    time.sleep(args.warmup)
    server_cpu0 = proc_cpu_seconds(server_pid)
    stdout, _ = proc.communicate(timeout=args.duration + 120)
    measured_server_cpu = proc_cpu_seconds(server_pid) - server_cpu0
    r1, w1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    # The server is still running (not reaped), so the RUSAGE_CHILDREN delta is the client's.
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    try:
        summary = json.loads(stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"loadgen exited {proc.returncode} without a summary") from None
    summary["server_cpu_measured"] = measured_server_cpu
    return summary, cpu, w1 - w0


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or default_bin(),
                    help="rampart binary (default: $RAMPART_BIN or $CARGO_TARGET_DIR/release/rampart)")
    ap.add_argument("-c", "--concurrency", type=int, default=8,
                    help="concurrent clients = connections = MCP sessions (default 8)")
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds (default 10)")
    ap.add_argument("-w", "--warmup", type=float, default=2.0, help="unmeasured warm-up seconds (default 2)")
    ap.add_argument("--client", choices=["rust", "python"], default="rust", help="load client (default rust)")
    ap.add_argument("--client-threads", type=int, default=1, help="tokio worker threads of the rust client (default 1)")
    ap.add_argument("--build-loadgen", action="store_true", help="(re)build bench/loadgen before running")
    ap.add_argument("--token", help="bearer token to send (default: the --auth-key K among the server flags; none with "
                                    "--insecure-no-auth; else a fresh API token from `rampart token create`)")
    ap.add_argument("-r", "--repeat", type=int, default=1,
                    help="runs, each with a fresh server; reports the median (default 1; use 3+ for A/B comparisons)")
    ap.add_argument("--keep-log", action="store_true", help="print the server log path and keep it")
    ap.add_argument("server_args", nargs="*", help="extra `rampart serve` flags, after --")
    args = ap.parse_args()

    if not (1 <= args.repeat <= 20):
        ap.error("--repeat must be in 1..20")
    if not (1 <= args.concurrency <= 1024):
        ap.error("--concurrency must be in 1..1024")
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 60):
        ap.error("--duration must be in (0, 600] s and --warmup in [0, 60] s")
    if "--listen" in args.server_args or any(a.startswith("--listen=") for a in args.server_args):
        ap.error("do not pass --listen: the script binds 127.0.0.1:0 itself")
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found: {args.bin} (cargo build --release -p rampart-cli)")
    token = args.token if args.token is not None else token_from_server_args(args.server_args)

    runs = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"-- run {i + 1}/{args.repeat}")
        r = one_run(args, token)
        runs.append(r)
        if r["invalid"]:
            print("calls_per_second=INVALID")
            sys.exit(1)
    if args.repeat > 1:
        cps = sorted(r["cps"] for r in runs)
        print(f"-- {args.repeat} runs: calls/s {' '.join(f'{x:.0f}' for x in cps)}"
              f"{'  (some runs noisy)' if any(r['noisy'] for r in runs) else ''}")
    # With --repeat, the run with the median calls/s gives the reported latencies.
    med = sorted(runs, key=lambda r: r["cps"])[(len(runs) - 1) // 2]
    print(f"latency_p50_ms={med['p50']:.3f}")
    print(f"latency_p99_ms={med['p99']:.3f}")
    print(f"calls_per_second={med['cps']:.0f}")
    cpu = sorted(r["cpu_us"] for r in runs)[(len(runs) - 1) // 2]
    print(f"server_cpu_us_per_call={cpu:.1f}")


def one_run(args, token):
    """Start a server, load it, stop it, print the details. Returns the figures."""
    workdir = tempfile.mkdtemp(prefix="rampart-bench-")
    proc = None
    try:
        binary = os.path.abspath(args.bin)
        if token is None:
            token = create_api_token(binary, workdir)
            print("  (API token created in the run's store: role reader)")
        elif token == "none":
            token = None
        proc, url, log_path = start_server(binary, args.server_args, workdir)
        srv0, sys0 = proc_cpu_seconds(proc.pid), system_busy_seconds()
        if args.client == "rust":
            s, client_cpu, wall = run_rust_client(url, args, token, proc.pid)
        else:
            s, client_cpu, wall = run_python_client(url, args, token)
        if proc.poll() is not None:
            raise RuntimeError(f"server died during the run (exit {proc.returncode}); see {log_path}")
        server_cpu = proc_cpu_seconds(proc.pid) - srv0
        other_cpu = min(max(0.0, system_busy_seconds() - sys0 - server_cpu - client_cpu), (os.cpu_count() or 1) * wall)
    finally:
        if proc is not None:
            stop_server(proc)
        if args.keep_log:
            print(f"server log: {os.path.join(workdir, 'server.log')}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    flags = " ".join(args.server_args) or "(none)"
    print(f"tools/call get_current_time over streamable HTTP at {url}; server flags: {flags}")
    print(f"  client {args.client} ({args.client_threads} thread{'s' if args.client_threads != 1 else ''})" if args.client == "rust"
          else "  client python asyncio (1 thread)", end="")
    print(f", {args.concurrency} connections/sessions, {args.warmup:g} s warm-up + {args.duration:g} s measured, {os.cpu_count()} CPUs")
    print(f"  calls {s['calls']}  errors {s['errors']}  calls/s {s.get('calls_per_second') or 0:.0f}")
    for k in ("calls_per_second", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
        s[k] = s.get(k) if s.get(k) is not None else float("nan")
    print(f"  latency p50 {s['p50_ms']:.3f} ms  p90 {s['p90_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  max {s['max_ms']:.3f} ms")
    print(f"  cpu over {wall:.1f} s: server {server_cpu / wall:.2f} cores, client {client_cpu / wall:.2f} cores, "
          f"everything else {other_cpu / wall:.2f} cores")
    noisy = other_cpu / wall > 0.15
    if noisy:
        print(f"  WARNING: other processes used {other_cpu / wall:.2f} cores during the run; the figures are noisy")
    invalid = bool(s["errors"] or s["calls"] == 0)
    if invalid:
        print(f"INVALID RUN: {s['errors']} error(s); first: {s.get('first_error')}")
    # Server CPU per measured call: unlike calls/s, it hardly moves when other tenants of a
    # shared VM take CPU time, and capacity is cores / this figure once CPU-bound.
    measured = s.get("server_cpu_measured")
    cpu_per_call = measured / s["calls"] * 1e6 if measured is not None and s["calls"] else float("nan")
    print(f"  server CPU per call {cpu_per_call:.1f} µs")
    return {"cps": s["calls_per_second"], "p50": s["p50_ms"], "p99": s["p99_ms"], "noisy": noisy, "invalid": invalid,
            "cpu_us": cpu_per_call}


if __name__ == "__main__":
    main()
