"""`tts serve --model MODEL [--strategy ...]`: test-time scaling behind an OpenAI-compatible endpoint.

Any OpenAI client pointed at http://HOST:PORT/v1 gets, for each chat completion, the answer the
strategy chose; a request may name another strategy in its `tts` field. The same server speaks
OpenAI's Responses API (/v1/responses: Codex CLI) and Anthropic's Messages API (/v1/messages:
Claude Code at ANTHROPIC_BASE_URL=http://HOST:PORT); see docs/serve.md. Binds 127.0.0.1 unless
told otherwise; any other address needs --token. Ctrl-C (or SIGTERM) stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from tts.cli.run import _check_limits, add_backend_flags, make_backends
from tts.cli.strategy_flags import add_strategy_flags, build_strategy


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a strategy as an OpenAI-compatible chat-completions endpoint",
                       description=__doc__.splitlines()[0])
    add_backend_flags(p)
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1; any other needs --token)")
    s.add_argument("--port", type=int, default=8000, help="listen port (default: 8000; 0: a free one)")
    s.add_argument("--token", default=os.environ.get("TTS_SERVE_TOKEN"),
                   help="clients must send 'Authorization: Bearer TOKEN' (default: $TTS_SERVE_TOKEN)")
    s.add_argument("--model-map", action="append", metavar="FROM=TO",
                   help="send requests for model FROM (a name or a glob such as 'claude-*') to upstream model TO; "
                        "repeatable. Unmapped names from /v1/responses and /v1/messages clients (agents name their "
                        "own models) go to --model")
    s.add_argument("--trace-dir", help="write one trace per request here (<trace id>.jsonl; read with tts show)")
    s.add_argument("--max-body-mb", type=float, default=16.0, help="larger request bodies get 413 (default: 16)")
    s.add_argument("--keepalive", type=float, default=5.0,
                   help="seconds between progress comments on a stream while the strategy runs (default: 5)")
    s.add_argument("--shutdown-timeout", type=float, default=10.0,
                   help="on Ctrl-C, seconds in-flight requests get to finish before they are cancelled")
    add_strategy_flags(p)
    # A proxy sends what the client asked for: no temperature or max_tokens of its own unless told.
    p.set_defaults(handler=_handle, temperature=None, max_tokens=None)


def _check(args: argparse.Namespace) -> None:
    from tts.errors import ConfigError
    from tts.serve.security import check_bind

    _check_limits(args)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    for name in ("max_body_mb", "keepalive", "shutdown_timeout"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    check_bind(args.host, args.token)
    from tts.serve.wire import parse_model_map

    args.model_map = parse_model_map(args.model_map)


async def _handle(args: argparse.Namespace) -> int:
    from tts.context import SamplingDefaults
    from tts.serve.app import TTSServer

    _check(args)
    strategy = build_strategy(args)
    backend, backends = make_backends(args)

    def other_model(model: str) -> Any:
        return make_backends(args, model=model, share_budget_with=backend)[0]  # one server-wide budget

    server = TTSServer(
        strategy, backend, model=args.model, backends=backends,
        backend_for_model=None if args.model == "local" else other_model,
        defaults=SamplingDefaults(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed),
        token=args.token, host=args.host, port=args.port, trace_dir=args.trace_dir,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024), keepalive_s=args.keepalive,
        shutdown_timeout=args.shutdown_timeout, secrets=(args.api_key, args.judge_api_key), model_map=args.model_map)
    _log_to_stderr()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await server.start()
        except OSError as exc:
            from tts.errors import ConfigError

            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        print(f"tts serve: listening on {server.url}", flush=True)
        print(f"  model {args.model}, strategy {strategy.name}; auth {'bearer token' if args.token else 'none'}",
              flush=True)
        print(f"  e.g. openai.OpenAI(base_url={server.url!r}, api_key=...)", flush=True)
        print("serving; Ctrl-C stops it", file=sys.stderr, flush=True)
        await stop.wait()
        print("tts serve: stopping (in-flight requests get "
              f"{args.shutdown_timeout:g} s)", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()
        await server.aclose_backends()
    print(f"tts serve: stopped after {server.requests_served} requests", file=sys.stderr, flush=True)
    return 0


def _log_to_stderr() -> None:
    from tts.cli.logs import log_to_stderr

    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    log_to_stderr(("tts.serve", "tts.cache"), fmt, logging.INFO)  # redacted there, as every log line is
