#!/usr/bin/env python3
"""What the gateway adds to a tool call, measured in one run, side by side (issue #15).

Two MCP servers run at once, each spoken to over stdio by this script's own JSON-RPC
client (one request in flight at a time):

  direct   `mcp-server-everything stdio` (the reference server, tests/clients)
  gateway  `rampart serve --transport stdio --config <tmp>/rampart.toml`, which mounts the
           same server as an upstream (`[upstreams.everything]`, prefix "", start "eager",
           `[tools] enabled = []`, so `echo` is the upstream's tool and nothing else is
           served); the stdio caller is the local operator (admin role), no token. By
           default every call is audited to the embedded SQLite store (hash-chained,
           asynchronous commit): that is part of Rampart's cost. `--no-audit` adds
           `[audit] enabled = false`; `--compare-audit` runs a third server
           `gateway_noaudit` in the same rounds. `--native` adds a Rampart without
           upstreams whose own `get_current_time` is called the same way: its CPU per
           call is Rampart's stdio and pipeline cost without the gateway hop.

Each client does `initialize` (protocolVersion 2025-11-25), `notifications/initialized`,
then `tools/call echo {"message": "hi"}` repeatedly; a call's latency is from writing the
request to reading the response with its id (every result checked: "Echo: hi", no
isError). After a warm-up (default 200 calls each), the sides take turns in blocks of N
calls (direct, gateway; the order reversed every other block), so machine noise hits
both. Then it prints per side the median and p99 latency over all measured calls, the
added latency (gateway - direct) at p50 and p99, the median of the blocks' added p50,
and CPU per call from /proc/PID/stat (utime + stime) over the measured span:

  rampart      the Rampart process alone (all its threads; not its children), per proxied call
               (with --native also rampart_gateway_extra_cpu_us_per_call: gateway - native)
  node         the server-everything process: the direct one, and Rampart's children
               (found through /proc/<rampart pid>/task/*/children after the warm-up: the
               one `start = "eager"` started, and the caller's own session, since
               upstreams default to one session per principal), per call of its side

Machine-readable lines at the end: direct_p50_ms, direct_p99_ms, gateway_p50_ms,
gateway_p99_ms, gateway_added_p50_ms, gateway_added_p99_ms, rampart_cpu_us_per_call,
node_cpu_us_per_call_{direct,gateway}, and the targets (added p50 < 0.5 ms, Rampart CPU
< 50 us per call) as target_added_p50=PASS|MISS, target_rampart_cpu=PASS|MISS.

    python3 bench/gateway_overhead.py [-n 200] [-b 10] [--bin PATH] [--everything PATH]
                                      [--no-audit | --compare-audit] [--native]

Stdlib only. Runs in a fresh temporary directory (cwd and RAMPART_DATA_DIR); the servers
are stopped by closing their stdin, else killed by their PIDs (Rampart stops its own
children; any still running after it exited is killed by PID), the directory removed.
`mcp-server-everything` is looked up in tests/clients/node_modules/.bin (install with
`npm ci --prefix tests/clients`); when a `node` binary sits beside it (the pinned Node
22), that directory is put first on PATH for both sides, so both run the same node.
"""

import argparse
import glob
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TARGET_ADDED_P50_MS = 0.5
TARGET_RAMPART_CPU_US = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def default_bin():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    return os.path.join(target, "release", "rampart")


def default_everything():
    return os.path.join(REPO, "tests", "clients", "node_modules", ".bin", "mcp-server-everything")


def proc_cpu_seconds(pid):
    """utime + stime of one process (all its threads, not its children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_start_time(pid):
    """Field 22 of stat(5): the start time, to tell a process from a later one with its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_children(pid):
    kids = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def system_busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def own_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(sorted_vals, p):
    """Nearest-rank percentile (p in 0..100) of an already sorted list."""
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


class StdioClient:
    """A minimal MCP client over a child's stdin/stdout: newline-delimited JSON-RPC."""

    def __init__(self, label, argv, cwd, env, stderr_path, timeout):
        self.label, self.timeout, self.stderr_path = label, timeout, stderr_path
        self.err = open(stderr_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     cwd=cwd, env=env, bufsize=0)
        self.out_fd, self.in_fd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        self.buf = b""
        self.next_id = 1
        self.other_messages = 0  # notifications and server requests seen

    def send(self, msg):
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[os.write(self.in_fd, data):]

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                return line
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{self.label}: no response within {self.timeout} s; see {self.stderr_path}")
            ready, _, _ = select.select([self.out_fd], [], [], left)
            if ready:
                chunk = os.read(self.out_fd, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"{self.label}: closed stdout (exit {self.proc.poll()}); see {self.stderr_path}")
                self.buf += chunk

    def wait_for(self, rid):
        deadline = time.perf_counter() + self.timeout
        while True:
            line = self._line(deadline)
            if not line.strip():
                continue
            msg = json.loads(line)
            if msg.get("id") == rid and "method" not in msg:
                return msg
            self.other_messages += 1
            if "method" in msg and "id" in msg:  # a request from the server: we offer nothing
                self.send({"jsonrpc": "2.0", "id": msg["id"],
                           "error": {"code": -32601, "message": "not supported by the bench client"}})

    def request(self, method, params):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        msg = self.wait_for(rid)
        if "result" not in msg:
            raise RuntimeError(f"{self.label}: {method} failed: {json.dumps(msg)[:400]}")
        return msg["result"]

    def initialize(self):
        result = self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                             "clientInfo": {"name": "rampart-bench-gateway", "version": "0"}})
        if result.get("protocolVersion") != "2025-11-25":
            raise RuntimeError(f"{self.label}: negotiated {result.get('protocolVersion')!r}")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def calls(self, tool, arguments, check, n, out):
        """n sequential tools/call; checks each result, appends each latency (ms) to out."""
        send, wait_for, clock = self.send, self.wait_for, time.perf_counter_ns
        for _ in range(n):
            rid = self.next_id
            self.next_id += 1
            msg = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                   "params": {"name": tool, "arguments": arguments}}
            t0 = clock()
            send(msg)
            resp = wait_for(rid)
            t1 = clock()
            result = resp.get("result")
            if not result or result.get("isError") or not check(result):
                raise RuntimeError(f"{self.label}: unexpected {tool} result: {json.dumps(resp)[:400]}")
            out.append((t1 - t0) / 1e6)

    def stop(self):
        try:
            self.proc.stdin.close()  # EOF: both servers exit on their own
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)  # this PID only
            self.proc.wait(timeout=5)
        self.proc.stdout.close()
        self.err.close()


def echo_ok(result):
    return any(c.get("text") == "Echo: hi" for c in result.get("content", []))


def time_ok(result):
    return (result.get("structuredContent") or {}).get("timezone") == "UTC"


class Side:
    def __init__(self, label, client, tool="echo", arguments=None, check=echo_ok):
        self.label, self.client, self.tool, self.check = label, client, tool, check
        self.arguments = {"message": "hi"} if arguments is None else arguments
        self.samples, self.block_p50 = [], []
        self.pid = client.proc.pid
        self.node_pids = []  # the server-everything processes of a gateway side (Rampart's children)

    def stop(self):
        """Closes the server's stdin and waits; then kills, by PID, any child of a Rampart
        side still running (Rampart stops its upstreams itself when it exits normally)."""
        kids = [(k, proc_start_time(k)) for k in proc_children(self.pid)] if self.client.proc.poll() is None else []
        self.client.stop()
        deadline = time.monotonic() + 5
        for pid, started in kids:
            while started is not None and proc_start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.05)
            if started is not None and proc_start_time(pid) == started:
                print(f"note: {self.label}: child {pid} still running after Rampart exited; killing it",
                      file=sys.stderr)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def run(self, n, out):
        self.client.calls(self.tool, self.arguments, self.check, n, out)

    def cpu(self):
        """(CPU s of this side's server process, CPU s of its children)."""
        kids = 0.0
        for pid in self.node_pids:
            try:
                kids += proc_cpu_seconds(pid)
            except OSError:
                pass
        return proc_cpu_seconds(self.pid), kids


def rampart_config(everything, audit):
    q = json.dumps  # a TOML basic string is a JSON string for these paths
    toml = ("[tools]\nenabled = []\n\n"
            f"[upstreams.everything]\ncommand = {q(everything)}\nargs = [\"stdio\"]\n"
            "prefix = \"\"\nstart = \"eager\"\n")
    if not audit:
        toml += "\n[audit]\nenabled = false\n"
    return toml


def native_config(audit):
    return "[tools]\nenabled = [\"system\"]\n" + ("" if audit else "\n[audit]\nenabled = false\n")


def find_children(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = proc_children(pid)
        if kids:
            return kids
        time.sleep(0.05)
    raise RuntimeError(f"no child process of rampart (pid {pid}) found: is the upstream running?")


def fmt(x):
    return f"{x:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("RAMPART_BIN") or default_bin(),
                    help="rampart binary (default: $RAMPART_BIN or $CARGO_TARGET_DIR/release/rampart)")
    ap.add_argument("--everything", default=default_everything(),
                    help="mcp-server-everything (default: tests/clients/node_modules/.bin/mcp-server-everything)")
    ap.add_argument("-n", "--calls", type=int, default=200, help="calls per block and side (default 200)")
    ap.add_argument("-b", "--blocks", type=int, default=10, help="measured blocks per side (default 10)")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured calls per side first (default 200)")
    audit = ap.add_mutually_exclusive_group()
    audit.add_argument("--no-audit", action="store_true", help="the gateway runs with [audit] enabled = false")
    audit.add_argument("--compare-audit", action="store_true",
                       help="also a third server, gateway_noaudit ([audit] enabled = false), in the same rounds")
    ap.add_argument("--native", action="store_true",
                    help="also a Rampart without upstreams calling its own get_current_time (UTC) in the same "
                         "rounds: Rampart's stdio and pipeline cost without the gateway hop (not an 'added' figure)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-response timeout in s (default 30)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, store)")
    args = ap.parse_args()

    if not (1 <= args.calls <= 100000 and 1 <= args.blocks <= 1000 and 0 <= args.warmup <= 100000):
        ap.error("-n must be in 1..100000, -b in 1..1000, --warmup in 0..100000")
    if not os.access(args.bin, os.X_OK):
        ap.error(f"binary not found or not executable: {args.bin} (cargo build --release -p rampart-cli)")
    if not os.access(args.everything, os.X_OK):
        ap.error(f"mcp-server-everything not found: {args.everything} (npm ci --prefix tests/clients)")
    binary, everything = os.path.abspath(args.bin), os.path.abspath(args.everything)

    env = dict(os.environ)
    bin_dir = os.path.dirname(everything)
    if os.access(os.path.join(bin_dir, "node"), os.X_OK):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    node = shutil.which("node", path=env.get("PATH"))
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else "?"
    env["RAMPART_LOG"] = "warn"

    workdir = tempfile.mkdtemp(prefix="rampart-gateway-bench-")
    env["RAMPART_DATA_DIR"] = workdir
    gateways = [("gateway", not args.no_audit)]
    if args.compare_audit:
        gateways.append(("gateway_noaudit", False))
    if args.native:
        gateways.append(("native", not args.no_audit))
    sides = []
    try:
        direct = StdioClient("direct", [everything, "stdio"], workdir, env,
                             os.path.join(workdir, "direct.stderr"), args.timeout)
        sides.append(Side("direct", direct, "echo"))
        for label, audited in gateways:
            sub = os.path.join(workdir, label)
            os.mkdir(sub)
            config = os.path.join(sub, "rampart.toml")
            with open(config, "w") as f:
                f.write(native_config(audited) if label == "native" else rampart_config(everything, audited))
            genv = dict(env, RAMPART_DATA_DIR=sub)
            client = StdioClient(label, [binary, "serve", "--transport", "stdio", "--config", config], sub, genv,
                                 os.path.join(sub, "rampart.stderr"), args.timeout)
            if label == "native":
                sides.append(Side(label, client, "get_current_time", {"timezone": "UTC"}, time_ok))
            else:
                sides.append(Side(label, client))
        for side in sides:
            side.client.initialize()
            tools = side.client.request("tools/list", {}).get("tools", [])
            if not any(t.get("name") == side.tool for t in tools):
                raise RuntimeError(f"{side.label}: no tool {side.tool!r} in tools/list "
                                   f"({sorted(t.get('name') for t in tools)[:20]})")
        print(f"gateway overhead: echo via {os.path.basename(binary)} vs direct; {args.blocks} blocks x "
              f"{args.calls} calls per side after {args.warmup} warm-up calls; node {node_version}, "
              f"{os.cpu_count()} CPUs; audit {'off' if args.no_audit else 'on (SQLite)'}"
              + ("; + gateway_noaudit" if args.compare_audit else "")
              + ("; + native (Rampart's own get_current_time)" if args.native else ""))

        for side in sides:
            side.run(max(1, args.warmup), [])
        # Rampart's children, once a call went through: with the default `stateless = false`
        # the caller's session is its own upstream process, started at its first call, beside
        # the one `start = "eager"` started for the catalog. All are counted (an idle one
        # costs next to nothing).
        for side in sides[1:]:
            if side.label != "native":
                side.node_pids = find_children(side.pid)
        print("  processes: " + ", ".join(
            f"{s.label} pid {s.pid} ({proc_comm(s.pid)})"
            + "".join(f" child {k} ({proc_comm(k)})" for k in s.node_pids) for s in sides))

        echo_sides = [s for s in sides[1:] if s.label != "native"]
        cpu0 = {s.label: s.cpu() for s in sides}
        busy0, own0, w0 = system_busy_seconds(), own_cpu_seconds(), time.perf_counter()
        for b in range(args.blocks):
            order = sides if b % 2 == 0 else sides[::-1]
            for side in order:
                block = []
                side.run(args.calls, block)
                side.samples += block
                side.block_p50.append(statistics.median(block))
            d = sides[0].block_p50[-1]
            print(f"  block {b + 1:3d}: p50 " + "  ".join(
                f"{s.label} {fmt(s.block_p50[-1])}" for s in sides)
                  + "  added " + "  ".join(fmt(s.block_p50[-1] - d) for s in echo_sides) + " ms")
        time.sleep(0.1)  # the audit writer's last group commit (25 ms) belongs to the run
        cpu1 = {s.label: s.cpu() for s in sides}
        wall = time.perf_counter() - w0
        ours = sum(cpu1[s.label][0] - cpu0[s.label][0] + cpu1[s.label][1] - cpu0[s.label][1] for s in sides)
        ours += own_cpu_seconds() - own0
        others = max(0.0, system_busy_seconds() - busy0 - ours) / wall
        for side in sides:
            if side.client.proc.poll() is not None:
                raise RuntimeError(f"{side.label} exited ({side.client.proc.returncode})")
    except BaseException:
        print(f"failed; logs kept in {workdir}", file=sys.stderr)
        for side in sides:
            side.stop()
        raise

    for side in sides:
        side.stop()
    if args.keep:
        print(f"  kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    stats = {}
    for side in sides:
        s = sorted(side.samples)
        n = len(s)
        rampart_cpu = node_cpu = None
        if side.label == "direct":  # the server process is node itself
            node_cpu = (cpu1[side.label][0] - cpu0[side.label][0]) / n * 1e6
        else:
            rampart_cpu = (cpu1[side.label][0] - cpu0[side.label][0]) / n * 1e6
            node_cpu = (cpu1[side.label][1] - cpu0[side.label][1]) / n * 1e6
        stats[side.label] = dict(p50=statistics.median(s), p90=percentile(s, 90), p99=percentile(s, 99),
                                 mean=statistics.fmean(s), max=s[-1], n=n, rampart_cpu=rampart_cpu, node_cpu=node_cpu)
    print(f"  {'side':<16} {'calls':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}"
          f" {'rampart CPU us/call':>20} {'node CPU us/call':>17}")
    for label, st in stats.items():
        rc = f"{st['rampart_cpu']:.1f}" if st["rampart_cpu"] is not None else "-"
        nc = f"{st['node_cpu']:.1f}" if label != "native" else "-"
        print(f"  {label:<16} {st['n']:>6} {fmt(st['p50']):>8} {fmt(st['p90']):>8} {fmt(st['p99']):>8}"
              f" {fmt(st['mean']):>8} {fmt(st['max']):>8} {rc:>20} {nc:>17}")
    d = stats["direct"]
    for side in echo_sides:
        g = stats[side.label]
        per_block = [gb - db for gb, db in zip(side.block_p50, sides[0].block_p50)]
        q = statistics.quantiles(per_block, n=4) if len(per_block) >= 4 else (min(per_block), max(per_block))
        print(f"  {side.label}: added p50 {fmt(g['p50'] - d['p50'])} ms, p99 {fmt(g['p99'] - d['p99'])} ms; "
              f"per-block added p50: median {fmt(statistics.median(per_block))} ms "
              f"(IQR {fmt(q[0])}..{fmt(q[-1])}, min {fmt(min(per_block))}, max {fmt(max(per_block))})")
    print(f"  CPU over the measured span ({wall:.1f} s); CLK_TCK={CLK_TCK}: one tick is "
          f"{1e6 / CLK_TCK / (args.calls * args.blocks):.1f} us per call at this call count")
    print(f"  other processes used {others:.2f} cores meanwhile ({os.cpu_count()} CPUs)")
    if others > 0.15:
        print("  WARNING: the machine was busy with other work; the figures are noisy")

    print()
    g = stats["gateway"]
    added_p50, added_p99 = g["p50"] - d["p50"], g["p99"] - d["p99"]
    print(f"direct_p50_ms={fmt(d['p50'])}")
    print(f"direct_p99_ms={fmt(d['p99'])}")
    print(f"gateway_p50_ms={fmt(g['p50'])}")
    print(f"gateway_p99_ms={fmt(g['p99'])}")
    print(f"gateway_added_p50_ms={fmt(added_p50)}")
    print(f"gateway_added_p99_ms={fmt(added_p99)}")
    print(f"rampart_cpu_us_per_call={g['rampart_cpu']:.1f}")
    print(f"node_cpu_us_per_call_direct={d['node_cpu']:.1f}")
    print(f"node_cpu_us_per_call_gateway={g['node_cpu']:.1f}")
    if args.compare_audit:
        na = stats["gateway_noaudit"]
        print(f"gateway_noaudit_added_p50_ms={fmt(na['p50'] - d['p50'])}")
        print(f"gateway_noaudit_added_p99_ms={fmt(na['p99'] - d['p99'])}")
        print(f"rampart_noaudit_cpu_us_per_call={na['rampart_cpu']:.1f}")
    if args.native:
        nat = stats["native"]
        print(f"native_p50_ms={fmt(nat['p50'])}")
        print(f"native_p99_ms={fmt(nat['p99'])}")
        print(f"rampart_native_cpu_us_per_call={nat['rampart_cpu']:.1f}")
        print(f"rampart_gateway_extra_cpu_us_per_call={g['rampart_cpu'] - nat['rampart_cpu']:.1f}")
    print(f"other_cores={others:.2f}")
    print(f"target_added_p50=" + ("PASS" if added_p50 < TARGET_ADDED_P50_MS else "MISS")
          + f" (gateway_added_p50_ms {fmt(added_p50)} < {TARGET_ADDED_P50_MS})")
    print(f"target_rampart_cpu=" + ("PASS" if g["rampart_cpu"] < TARGET_RAMPART_CPU_US else "MISS")
          + f" (rampart_cpu_us_per_call {g['rampart_cpu']:.1f} < {TARGET_RAMPART_CPU_US:g})")


if __name__ == "__main__":
    main()
