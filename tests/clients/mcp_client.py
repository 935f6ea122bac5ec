#!/usr/bin/env python3
"""Drive an MCP server with the official MCP Python SDK (PyPI `mcp`) as a real client.

Used by Rampart's Rust integration tests; see requirements.txt for the pinned SDK
and scripts/setup-python-clients.sh for the venv.

Usage:
  mcp_client.py [OPTIONS] stdio -- CMD [ARGS...] [OPTIONS]
  mcp_client.py [OPTIONS] http URL [OPTIONS]      # Streamable HTTP
  mcp_client.py [OPTIONS] sse  URL [OPTIONS]      # legacy HTTP+SSE (2024-11-05)

Actions (at least one; run in this order):
  --list-tools              list tool names (follows pagination)
  --list-resources          list resource URIs (follows pagination)
  --read URI                read one resource
  --list-prompts            list prompt names (follows pagination)
  --get-prompt NAME [--prompt-args JSON]
                            get prompt NAME with a JSON object of string arguments (default {})
  --call TOOL [--args JSON] call TOOL with a JSON object of arguments (default {})
  --await-list-changed      after the actions, wait for notifications/tools/list_changed,
                            then list the tools again ("listChanged", "toolsAfter")

Modifiers:
  --progress                send a progressToken with --call (the SDK uses the request id) and
                            report every notifications/progress received during the session
                            (the SDK parses "progress"/"total" as floats: 1 comes back as 1.0)
  --cancel-after SECONDS    abandon the --call after SECONDS: the SDK sends
                            notifications/cancelled (then this waits 0.2 s so it reaches the
                            wire); reported as "cancelled": true, exit 0. NB: on a 2026-07-28
                            Streamable HTTP connection the SDK cancels by closing the POST's
                            response stream instead, and with 0 it cancels before sending.
  --logs                    report every notifications/message received during the session;
                            first sends logging/setLevel "debug" if the server advertises the
                            `logging` capability (handshake-era protocols), and opts in to
                            debug-level logs on 2026-07-28+ connections (`_meta` log level)

Other options:
  --header 'Name: value'    extra HTTP header (http/sse; repeatable)
  --env KEY=VALUE           extra env var for the stdio server (repeatable). NB: the SDK only
                            passes a safe subset of the environment (HOME, PATH, USER, ...)
  --inherit-env             pass this process's whole environment to the stdio server
  --cwd DIR                 working directory for the stdio server
  --mode legacy|auto        legacy (default): plain `initialize` handshake.
                            auto: the SDK 2.x `Client` default: probe `server/discover`
                            first, fall back to `initialize` on any JSON-RPC error.
  --timeout SECONDS         overall deadline (default 30)

For stdio, everything after `--` is the server command up to the first token that is one
of the harness options above (e.g. `--list-tools`); put harness options before `--` if the
server itself takes an option with the same name.

Output (stdout, exit 0): one JSON object
  {"protocolVersion": "...", "tools": ["name", ...],
   "resources": ["uri", ...], "read": {"contents": [...]}, "prompts": ["name", ...],
   "prompt": {"messages": [...], "description"?: "..."},
   "call": {"content": [...], "structuredContent": {...} | null, "isError": bool},
   "cancelled": bool, "progress": [{"progressToken": ..., "progress": n, "total"?: n,
   "message"?: "..."}, ...], "logs": [{"level": "...", "data": ..., "logger"?: "..."}, ...],
   "listChanged": bool, "toolsAfter": ["name", ...]}
Each key only with the flag that asks for it: "tools" --list-tools, "resources"
--list-resources, "read" --read (the ReadResourceResult as JSON), "prompts" --list-prompts,
"prompt" --get-prompt (the GetPromptResult as JSON; "read" and "prompt" hold only the
fields the server sent, not the SDK models' defaults), "call" --call (absent when the call was
cancelled), "cancelled" --cancel-after (false if the call finished first), "progress"
--progress, "logs" --logs, the last two --await-list-changed. A tool result with
isError=true is still exit 0.
On connection/protocol/JSON-RPC errors or timeout: exit 2, a one-line message on stderr
starting with "mcp_client: error:", and {"error": {"type", "message", "code"?, "httpStatus"?}}
on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import json
import os
import sys
import threading
import warnings
from typing import Any, NoReturn

HARNESS_FLAGS = (
    "--list-tools",
    "--list-resources",
    "--read",
    "--list-prompts",
    "--get-prompt",
    "--prompt-args",
    "--await-list-changed",
    "--call",
    "--args",
    "--progress",
    "--cancel-after",
    "--logs",
    "--header",
    "--env",
    "--inherit-env",
    "--cwd",
    "--mode",
    "--timeout",
)

EXIT_ERROR = 2


def _fail(message: str, extra: dict[str, Any] | None = None) -> NoReturn:
    message = " ".join(message.split())  # keep it on one line
    err: dict[str, Any] = {"message": message}
    if extra:
        err.update(extra)
    try:
        sys.stdout.write(json.dumps({"error": err}) + "\n")
        sys.stdout.flush()
    finally:
        sys.stderr.write(f"mcp_client: error: {message}\n")
        sys.stderr.flush()
    os._exit(EXIT_ERROR)  # noqa: SLF001 - skip teardown that could hang


def _split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Return (harness argv, server command) for the `stdio -- CMD ...` form."""
    if "--" not in argv:
        return argv, []
    idx = argv.index("--")
    head, tail = argv[:idx], argv[idx + 1 :]
    for j, tok in enumerate(tail):
        if tok in HARNESS_FLAGS or any(tok.startswith(f + "=") for f in HARNESS_FLAGS):
            return head + tail[j:], tail[:j]
    return head, tail


def _parse_args(argv: list[str]) -> argparse.Namespace:
    harness_argv, command = _split_argv(argv)
    p = argparse.ArgumentParser(
        prog="mcp_client.py",
        description="MCP Python SDK client harness",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("transport", choices=["stdio", "http", "sse"])
    p.add_argument("url", nargs="?", help="server URL (http/sse)")
    p.add_argument("--list-tools", action="store_true")
    p.add_argument("--list-resources", action="store_true")
    p.add_argument("--read", metavar="URI", default=None)
    p.add_argument("--list-prompts", action="store_true")
    p.add_argument("--get-prompt", metavar="NAME", default=None)
    p.add_argument("--prompt-args", metavar="JSON", default=None)
    p.add_argument("--await-list-changed", action="store_true")
    p.add_argument("--call", metavar="TOOL")
    p.add_argument("--args", metavar="JSON", default=None)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--cancel-after", metavar="SECONDS", type=float, default=None)
    p.add_argument("--logs", action="store_true")
    p.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--inherit-env", action="store_true")
    p.add_argument("--cwd", default=None)
    p.add_argument("--mode", choices=["legacy", "auto"], default="legacy")
    p.add_argument("--timeout", type=float, default=30.0)
    ns = p.parse_args(harness_argv)
    ns.command = command

    if ns.transport == "stdio":
        if ns.url is not None:
            p.error("stdio takes the server command after `--`, not a URL")
        if not command:
            p.error("stdio needs a server command after `--`")
    else:
        if not ns.url:
            p.error(f"{ns.transport} needs a URL")
        if command:
            p.error(f"{ns.transport} takes no command after `--`")
    if not (
        ns.list_tools
        or ns.list_resources
        or ns.read is not None
        or ns.list_prompts
        or ns.get_prompt is not None
        or ns.call is not None
    ):
        p.error(
            "nothing to do: give --list-tools, --list-resources, --read URI, --list-prompts, "
            "--get-prompt NAME and/or --call TOOL"
        )
    if ns.args is not None and ns.call is None:
        p.error("--args requires --call")
    if ns.progress and ns.call is None:
        p.error("--progress requires --call")
    if ns.cancel_after is not None:
        if ns.call is None:
            p.error("--cancel-after requires --call")
        if ns.cancel_after < 0:
            p.error("--cancel-after must be >= 0")
    if ns.prompt_args is not None and ns.get_prompt is None:
        p.error("--prompt-args requires --get-prompt")

    def json_object(text: str | None, flag: str) -> dict[str, Any]:
        if text is None:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            p.error(f"{flag} is not valid JSON: {e}")
        if not isinstance(value, dict):
            p.error(f"{flag} must be a JSON object")
        return value

    ns.prompt_arguments = json_object(ns.prompt_args, "--prompt-args")
    ns.arguments = json_object(ns.args, "--args")

    ns.headers = {}
    for h in ns.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            p.error(f"bad --header {h!r}; expected 'Name: value'")
        ns.headers[name.strip()] = value.strip()

    ns.env_extra = {}
    for kv in ns.env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            p.error(f"bad --env {kv!r}; expected KEY=VALUE")
        ns.env_extra[k] = v
    return ns


def _leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """Flatten (nested) exception groups raised by anyio task groups."""
    group_type = getattr(builtins, "BaseExceptionGroup", None) or getattr(
        sys.modules.get("exceptiongroup"), "BaseExceptionGroup", None
    )  # builtin on 3.11+, backport module (an anyio dependency) on 3.10
    if group_type is not None and isinstance(exc, group_type):
        out: list[BaseException] = []
        for sub in exc.exceptions:
            out.extend(_leaf_exceptions(sub))
        return out
    return [exc]


async def _run(ns: argparse.Namespace, http_status: dict[str, int]) -> dict[str, Any]:
    import httpx2
    from mcp.client.client import Client
    from mcp.client.sse import sse_client
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    timeout = httpx2.Timeout(ns.timeout, read=ns.timeout)

    async def record_status(response: Any) -> None:
        if response.status_code >= 400:
            http_status["status"] = response.status_code

    def make_http_client(
        headers: dict[str, str] | None = None, timeout: Any = timeout, auth: Any = None
    ) -> Any:
        c = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        c.event_hooks = {"request": [], "response": [record_status]}
        return c

    if ns.transport == "stdio":
        env = dict(os.environ) if ns.inherit_env else None
        if ns.env_extra:
            env = {**(env or {}), **ns.env_extra}
        params = StdioServerParameters(command=ns.command[0], args=ns.command[1:], env=env, cwd=ns.cwd)
        transport: Any = stdio_client(params, errlog=sys.stderr)
    elif ns.transport == "http":
        transport = streamable_http_client(ns.url, http_client=make_http_client(headers=ns.headers or None))
    else:
        transport = sse_client(
            ns.url,
            headers=ns.headers or None,
            timeout=ns.timeout,
            sse_read_timeout=ns.timeout,
            httpx_client_factory=make_http_client,
        )

    import anyio

    list_changed = anyio.Event()
    progress: list[Any] = []
    logs: list[Any] = []

    def dump_params(root: Any) -> Any:
        params = getattr(root, "params", None)
        if hasattr(params, "model_dump"):
            return params.model_dump(by_alias=True, mode="json", exclude_none=True)
        return params

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if method == "notifications/tools/list_changed":
            list_changed.set()
        elif method == "notifications/progress":
            progress.append(dump_params(root))
        elif method == "notifications/message":
            logs.append(dump_params(root))
        await anyio.lowlevel.checkpoint()

    def dump(result: Any) -> Any:
        # exclude_unset: only what the server sent, not the SDK models' defaults (the 2.x result
        # models otherwise add "ttlMs": 0, "cacheScope": "private", "resultType": "complete").
        return result.model_dump(by_alias=True, mode="json", exclude_none=True, exclude_unset=True)

    async def tool_names(client: Any) -> list[str]:
        names: list[str] = []
        cursor: str | None = None
        for _ in range(1000):
            page = await client.list_tools(cursor=cursor)
            names.extend(t.name for t in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return names

    async def paginate(fetch: Any, items: str, key: str) -> list[str]:
        names: list[str] = []
        cursor: str | None = None
        for _ in range(1000):
            page = await fetch(cursor=cursor)
            names.extend(str(getattr(x, key)) for x in getattr(page, items))
            cursor = page.next_cursor
            if not cursor:
                break
        return names

    async def on_progress(_progress: float, _total: float | None, _message: str | None) -> None:
        pass  # its presence makes the SDK send a progressToken; on_message records the params

    out: dict[str, Any] = {}
    client_opts: dict[str, Any] = {}
    if ns.logs:
        # Opt-in for 2026-07-28+ connections; no effect on handshake-era ones (setLevel below).
        client_opts["log_level"] = "debug"
    async with Client(
        transport, mode=ns.mode, read_timeout_seconds=ns.timeout, message_handler=on_message, **client_opts
    ) as client:
        out["protocolVersion"] = client.session.protocol_version
        if ns.logs and client.session.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
            caps = client.server_capabilities
            if getattr(caps, "logging", None) is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # deprecated as of 2026-07-28
                    await client.set_logging_level("debug")
        if ns.list_tools:
            out["tools"] = await tool_names(client)
        if ns.list_resources:
            out["resources"] = await paginate(client.list_resources, "resources", "uri")
        if ns.read is not None:
            out["read"] = dump(await client.read_resource(ns.read))
        if ns.list_prompts:
            out["prompts"] = await paginate(client.list_prompts, "prompts", "name")
        if ns.get_prompt is not None:
            out["prompt"] = dump(await client.get_prompt(ns.get_prompt, ns.prompt_arguments))
        if ns.call is not None:
            res = None
            with anyio.CancelScope() as call_scope:
                if ns.cancel_after is not None:
                    call_scope.deadline = anyio.current_time() + ns.cancel_after
                res = await client.call_tool(
                    ns.call, ns.arguments, progress_callback=on_progress if ns.progress else None
                )
            if ns.cancel_after is not None:
                out["cancelled"] = call_scope.cancelled_caught
                if call_scope.cancelled_caught:
                    # The SDK only queues the courtesy notifications/cancelled; give the transport
                    # a moment to put it on the wire before the session is torn down.
                    await anyio.sleep(0.2)
            if res is not None:
                dumped = res.model_dump(by_alias=True, mode="json", exclude_none=True)
                out["call"] = {
                    "content": dumped.get("content", []),
                    "structuredContent": dumped.get("structuredContent"),
                    "isError": bool(dumped.get("isError", False)),
                }
        if ns.await_list_changed:
            with anyio.move_on_after(ns.timeout / 2):
                await list_changed.wait()
            out["listChanged"] = list_changed.is_set()
            out["toolsAfter"] = await tool_names(client)
        if ns.progress or ns.logs:
            await anyio.sleep(0.1)  # let notifications already read reach on_message
        if ns.progress:
            out["progress"] = list(progress)
        if ns.logs:
            out["logs"] = list(logs)
    return out


def main(argv: list[str] | None = None) -> None:
    ns = _parse_args(sys.argv[1:] if argv is None else argv)

    # Hard backstop: whatever happens (stuck teardown, hung subprocess), never outlive this.
    watchdog = threading.Timer(ns.timeout + 10.0, lambda: _fail(f"hard timeout after {ns.timeout + 10.0:.0f}s"))
    watchdog.daemon = True
    watchdog.start()

    try:
        import anyio
        from mcp.shared.exceptions import MCPError
    except ImportError as e:
        _fail(f"cannot import the MCP SDK ({e}); run scripts/setup-python-clients.sh and use its python")

    http_status: dict[str, int] = {}

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(ns.timeout):
            return await _run(ns, http_status)

    try:
        out = anyio.run(bounded)
    except BaseException as exc:  # noqa: BLE001 - report everything, exit 2
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            raise
        leaves = _leaf_exceptions(exc)
        # Prefer the most informative leaf: an MCPError, else anything not a cancellation.
        leaf = next((e for e in leaves if isinstance(e, MCPError)), None)
        if leaf is None:
            leaf = next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])
        extra: dict[str, Any] = {"type": type(leaf).__name__}
        msg = str(leaf) or type(leaf).__name__
        if isinstance(leaf, MCPError):
            extra["code"] = leaf.error.code
            msg = f"JSON-RPC error {leaf.error.code}: {leaf.error.message}"
        if isinstance(leaf, TimeoutError):
            msg = f"timed out after {ns.timeout:g}s"
        if "status" in http_status:
            extra["httpStatus"] = http_status["status"]
            msg = f"HTTP {http_status['status']}: {msg}"
        _fail(msg, extra)

    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    watchdog.cancel()
    sys.exit(0)


if __name__ == "__main__":
    main()
