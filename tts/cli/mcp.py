"""`tts mcp --model MODEL [...]`: test-time scaling as MCP tools (solve, select, check_claims).

Every backend, budget and cache flag of `tts run` applies; the caps are server-wide (a spent budget
is a tool error that says so). stdio by default (the agent starts this command); `--transport http`
serves streamable HTTP at http://HOST:PORT/mcp, on 127.0.0.1 unless told otherwise, and any other
address needs --token. See docs/mcp.md for the one-line config of Claude Code and Codex.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from tts.cli.run import _check_limits, add_backend_flags, default_cache_dir, make_backends, sampling_defaults
from tts.cli.strategy_flags import add_strategy_flags, build_strategy
from tts.errors import ConfigError, MissingDependency


def add_parser(sub: Any) -> None:
    p = sub.add_parser("mcp", help="serve solve / select / check_claims as MCP tools for agents",
                       description=__doc__.splitlines()[0])
    add_backend_flags(p)
    s = p.add_argument_group("server")
    s.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                   help="stdio (the agent starts `tts mcp`) or http (streamable HTTP at /mcp)")
    s.add_argument("--host", default="127.0.0.1", help="http: listen address (any but loopback needs --token)")
    s.add_argument("--port", type=int, default=8765, help="http: listen port (0: a free one)")
    s.add_argument("--token", default=os.environ.get("TTS_MCP_TOKEN"),
                   help="http: clients must send 'Authorization: Bearer TOKEN' (default: $TTS_MCP_TOKEN)")
    add_strategy_flags(p)
    p.set_defaults(handler=_handle)


def _check(args: argparse.Namespace) -> None:
    from tts.serve.security import check_bind

    _check_limits(args)
    if args.transport == "http":
        if not 0 <= args.port <= 65535:
            raise ConfigError(f"--port must be 0..65535, got {args.port}")
        check_bind(args.host, args.token)
    elif args.host != "127.0.0.1" or args.token:
        raise ConfigError("--host and --token apply to --transport http; stdio is reached only by the process "
                          "that starts tts mcp")


async def _handle(args: argparse.Namespace) -> int:
    try:
        from tts.mcp.toolserver import build_server, serve_http
    except ImportError as exc:
        if getattr(exc, "name", "") and exc.name.split(".")[0] in ("mcp", "uvicorn"):
            raise MissingDependency("tts mcp needs the mcp extra: pip install 'tts-scaling[mcp]'") from None
        raise
    from tts.mcp.tool_run import Service
    from tts.redact import add_secret, redact

    _check(args)
    strategy = build_strategy(args)
    if not args.no_cache:
        from tts.cli.run import _writable_dir

        _writable_dir("--cache-dir" if args.cache_dir else "cache directory", args.cache_dir or default_cache_dir())
    if args.api_base and args.model != "local":
        from tts.cli.run import check_reachable

        await check_reachable(args.api_base)
    add_secret(args.api_key, args.judge_api_key, args.token)  # the one redactor (tts.redact) knows them now
    _log_to_stderr()
    backend, backends = make_backends(args)
    service = Service(backend=backend, backends=backends, strategy=strategy, seed=args.seed or 0, redact=redact,
                      defaults_for=lambda strategies: sampling_defaults(args, strategies))
    server = build_server(service)
    where = "stdio" if args.transport == "stdio" else f"http://{args.host}:{args.port}/mcp"
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel if task is not None else (lambda: None))
    try:
        print(f"tts mcp: model {args.model}, strategy {strategy.name}; serving on {where}", file=sys.stderr,
              flush=True)
        if args.transport == "stdio":
            await server.run_stdio_async()
        else:
            def listening(port: int) -> None:
                print(f"tts mcp: listening on http://{args.host}:{port}/mcp; auth "
                      f"{'bearer token' if args.token else 'none (loopback)'}", file=sys.stderr, flush=True)

            await serve_http(server, args.host, args.port, args.token, on_listening=listening)
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for b in (backend, *backends.values()):
            close = getattr(b, "aclose", None)
            if close is not None:
                await close()
        u = service.server_usage()
        print(f"tts mcp: stopped; paid {u.calls} model calls, {u.total_tokens} tokens, ${u.cost_usd:.6f}",
              file=sys.stderr, flush=True)
    return 0


def _log_to_stderr() -> None:
    """Every log line, ours and the SDK's, to stderr with secrets removed (stdout is the protocol)."""
    from tts.cli.logs import log_to_stderr

    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    log_to_stderr(("tts.mcp", "tts.budget", "tts.cache", "mcp", "uvicorn"), fmt, logging.INFO)  # redacted there
    logging.getLogger("mcp").setLevel(logging.WARNING)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
