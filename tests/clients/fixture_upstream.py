#!/usr/bin/env python3
"""A small upstream MCP server for Rampart's gateway tests, built with the official MCP
Python SDK (PyPI `mcp`, pinned in requirements.txt; run it with tests/clients/.venv/bin/python).

Serves Streamable HTTP on 127.0.0.1 only, at path /mcp. Once the socket is bound it prints
exactly one line on stdout (and flushes); nothing else goes to stdout:

    fixture_upstream listening on http://127.0.0.1:PORT/mcp

Usage:
  fixture_upstream.py [--port N] [--headers-file PATH] [--description-file PATH]
                      [--events-file PATH] [--lifetime SECONDS] [--stateless] [--json-response]

  --port N                 TCP port (default 0: an ephemeral port, read it from the line above)
  --headers-file PATH      append one compact JSON line per HTTP request:
                             {"httpMethod": "POST", "path": "/mcp",
                              "headers": {"lowercased-name": "value", ...},
                              "rpcMethod": "tools/call" | null, "rpcId": 3 | null,
                              "rpcMeta": {"traceparent": ...} | null}
                           (rpcMethod/rpcId/rpcMeta — the request's params._meta — from the
                           JSON-RPC body when it parses as one message; a batch gives lists
                           of methods and ids; repeated header names are joined with ", ")
  --description-file PATH  the `echo` tool's description, re-read verbatim (no trimming) on every
                           tools/list (default text when the file is missing: "Echoes its input.")
  --events-file PATH       `slow` appends compact JSON lines: {"event":"started","seconds":S} when it
                           starts, {"event":"finished"} when it completes, {"event":"cancelled"}
                           when it is cancelled (notifications/cancelled, or the session ends)
  --lifetime SECONDS       exit by itself after this long (default 120)
  --stateless              stateless Streamable HTTP (no Mcp-Session-Id; a fresh session per request)
  --json-response          answer POSTs with application/json instead of an SSE stream
                           (then no progress/log notifications can be delivered)

Tools (each result also carries structuredContent {"result": ...}, the SDK's default for `str`):
  echo(text: str) -> str        returns text unchanged
  whoami() -> str               returns "fixture"
  slow(seconds: float) -> str   sleeps; every 0.1 s sends notifications/progress
                                (progress = seconds elapsed, total = seconds) if the request
                                carries a progressToken; sends an info-level log notification
                                ("slow: sleeping S s") first; returns "slept S s"
Resources:  fixture://readme (text/plain, "fixture upstream readme")
Prompts:    greet(name: str) -> one user message "Hello, NAME!"
Logging:    advertises the logging capability and accepts logging/setLevel (recorded nowhere,
            ignored: the SDK sends log notifications regardless of level on pre-2026 protocols).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

try:
    import anyio
    import uvicorn
    from mcp import types
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.shared.exceptions import MCPDeprecationWarning
except ImportError as e:  # pragma: no cover
    sys.exit(f"fixture_upstream: cannot import the MCP SDK ({e}); use tests/clients/.venv/bin/python")

DEFAULT_DESCRIPTION = "Echoes its input."

# Logging and setLevel are deprecated from protocol 2026-07-28 on; this fixture uses them on purpose.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fixture_upstream.py",
        description="Upstream MCP server fixture (Streamable HTTP, loopback only)",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--headers-file", type=Path, default=None)
    p.add_argument("--description-file", type=Path, default=None)
    p.add_argument("--events-file", type=Path, default=None)
    p.add_argument("--lifetime", type=float, default=120.0)
    p.add_argument("--stateless", action="store_true")
    p.add_argument("--json-response", action="store_true")
    p.add_argument(
        "--oauth-client",
        metavar="ID:SECRET",
        default=None,
        help="serve POST /oauth/token (client credentials, HTTP Basic or form) and require "
        "a token it issued on every other request (401 otherwise)",
    )
    p.add_argument("--oauth-ttl", type=int, default=3600, help="issued tokens' expires_in, seconds")
    return p.parse_args(argv)


def _append_json_line(path: Path | None, obj: dict[str, Any]) -> None:
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        f.flush()


def _build_server(ns: argparse.Namespace) -> MCPServer:
    class FixtureServer(MCPServer):
        async def list_tools(self) -> list[types.Tool]:
            tools = await super().list_tools()
            description = DEFAULT_DESCRIPTION
            if ns.description_file is not None:
                try:
                    description = ns.description_file.read_text(encoding="utf-8")
                except OSError:
                    pass
            return [t.model_copy(update={"description": description}) if t.name == "echo" else t for t in tools]

    mcp = FixtureServer(name="fixture-upstream", version="1.0.0", log_level="WARNING")

    @mcp.tool(description=DEFAULT_DESCRIPTION)
    def echo(text: str) -> str:
        return text

    @mcp.tool(description="Names this server.")
    def whoami() -> str:
        return "fixture"

    @mcp.tool(description="Sleeps for `seconds`, reporting progress every 0.1 s.")
    async def slow(seconds: float, ctx: Context) -> str:
        _append_json_line(ns.events_file, {"event": "started", "seconds": seconds})
        try:
            await ctx.info(f"slow: sleeping {seconds:g} s")
            elapsed = 0.0
            while elapsed < seconds:
                step = min(0.1, seconds - elapsed)
                await asyncio.sleep(step)
                elapsed = min(seconds, elapsed + step)
                await ctx.report_progress(round(elapsed, 3), seconds)
        except asyncio.CancelledError:
            _append_json_line(ns.events_file, {"event": "cancelled"})
            raise
        _append_json_line(ns.events_file, {"event": "finished"})
        return f"slept {seconds:g} s"

    @mcp.resource("fixture://readme", name="readme", mime_type="text/plain", description="A fixed text.")
    def readme() -> str:
        return "fixture upstream readme"

    @mcp.prompt(description="Greets NAME.")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    # Registering the handler is what makes the SDK advertise the `logging` capability.
    mcp._lowlevel_server.add_request_handler(  # noqa: SLF001 - no public hook on MCPServer
        "logging/setLevel", types.SetLevelRequestParams, set_level
    )
    return mcp


class _RecordHeaders:
    """ASGI middleware: one JSON line per HTTP request (headers + JSON-RPC method) to a file."""

    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value

        # Buffer the body to read the JSON-RPC method, then replay it to the app.
        messages: list[dict[str, Any]] = []
        body = b""
        if scope.get("method") == "POST":
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break

        rpc_method: Any = None
        rpc_id: Any = None
        rpc_meta: Any = None
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            rpc_method, rpc_id = doc.get("method"), doc.get("id")
            params = doc.get("params")
            if isinstance(params, dict) and isinstance(params.get("_meta"), dict):
                rpc_meta = params["_meta"]
        elif isinstance(doc, list):
            rpc_method = [m.get("method") if isinstance(m, dict) else None for m in doc]
            rpc_id = [m.get("id") if isinstance(m, dict) else None for m in doc]
        _append_json_line(
            self.path,
            {
                "httpMethod": scope.get("method"),
                "path": scope.get("path"),
                "headers": headers,
                "rpcMethod": rpc_method,
                "rpcId": rpc_id,
                "rpcMeta": rpc_meta,
            },
        )

        async def replay() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


class _OAuth:
    """ASGI middleware: a tiny OAuth 2.1 authorization server (client credentials grant,
    RFC 6749 section 4.4) at POST /oauth/token, and bearer-token checks on everything else.
    Each issued token is recorded in the events file ({"event": "token", ...})."""

    def __init__(self, app: Any, client: str, ttl: int, events: Path | None) -> None:
        self.app = app
        self.client_id, _, self.secret = client.partition(":")
        self.ttl = ttl
        self.events = events
        self.issued: set[str] = set()

    async def _reply(self, send: Any, status: int, body: dict[str, Any], extra: list[Any] | None = None) -> None:
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
        await send({"type": "http.response.body", "body": data})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope.get("path") == "/oauth/token" and scope.get("method") == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            from urllib.parse import parse_qs

            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("basic "):
                import base64
                from urllib.parse import unquote

                raw_id, _, raw_secret = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, secret = unquote(raw_id), unquote(raw_secret)
            if form.get("grant_type") != "client_credentials" or (client_id, secret) != (self.client_id, self.secret):
                await self._reply(send, 401, {"error": "invalid_client"})
                return
            token = f"fixture-token-{len(self.issued) + 1}"
            self.issued.add(token)
            _append_json_line(
                self.events,
                {"event": "token", "token": token, "scope": form.get("scope"), "resource": form.get("resource")},
            )
            await self._reply(send, 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl})
            return
        auth = headers.get("authorization", "")
        if not (auth.startswith("Bearer ") and auth[7:] in self.issued):
            challenge = [(b"www-authenticate", b'Bearer error="invalid_token"')]
            await self._reply(send, 401, {"error": "invalid_token"}, challenge)
            return
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    ns = _parse_args(sys.argv[1:] if argv is None else argv)

    # Backstop: never outlive --lifetime by more than a few seconds, whatever hangs.
    hard_stop = threading.Timer(ns.lifetime + 5.0, lambda: os._exit(0))  # noqa: SLF001
    hard_stop.daemon = True
    hard_stop.start()

    mcp = _build_server(ns)
    app: Any = mcp.streamable_http_app(
        stateless_http=ns.stateless,
        json_response=ns.json_response,
        host="127.0.0.1",
    )
    if ns.oauth_client is not None:
        app = _OAuth(app, ns.oauth_client, ns.oauth_ttl, ns.events_file)
    if ns.headers_file is not None:
        app = _RecordHeaders(app, ns.headers_file)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", ns.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        async def stop_later() -> None:
            await anyio.sleep(ns.lifetime)
            server.should_exit = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_later)
            sys.stdout.write(f"fixture_upstream listening on http://127.0.0.1:{port}/mcp\n")
            sys.stdout.flush()
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()

    anyio.run(serve)
    sys.stdout.flush()
    os._exit(0)  # noqa: SLF001 - skip interpreter teardown of lingering SDK tasks


if __name__ == "__main__":
    main()
