"""`tts local serve`: the embedded SmolLM2-135M model as an OpenAI-compatible server, until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("local", help="the embedded SmolLM2-135M model (needs the 'local' extra)",
                       description="The embedded SmolLM2-135M-Instruct model (llama-cpp-python server).")
    local_sub = p.add_subparsers(dest="local_command", metavar="COMMAND", parser_class=type(p))
    s = local_sub.add_parser("serve", help="serve it on an OpenAI-compatible endpoint until Ctrl-C",
                             description=__doc__.splitlines()[0])
    s.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="listen port (default: a free one)")
    s.add_argument("--n-ctx", type=int, default=2048, help="context length in tokens (default: 2048)")
    s.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores available, up to 8)")
    s.set_defaults(handler=_serve)
    p.set_defaults(handler=lambda args: _help(p))


def _help(parser: Any) -> int:
    parser.print_help(sys.stderr)
    return 2


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _serve(args: Any) -> int:
    from tts.errors import BackendError
    from tts.local import LocalServer

    server = LocalServer(host=args.host, port=args.port, n_ctx=args.n_ctx, n_threads=args.threads)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        server.start()
        print(f"api base: {server.api_base}", flush=True)
        print(f"model:    {server.model}", flush=True)
        print(f"e.g.      tts run examples/arithmetic.jsonl --backend openai --api-base {server.api_base} "
              f"--model {server.model}", flush=True)
        print("serving; Ctrl-C stops it", file=sys.stderr, flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"tts local: error: the server exited unexpectedly: {server.log_tail()}", file=sys.stderr)
        return 1
    except BackendError as exc:  # it did not start; the message carries the server's last words
        print(f"tts local: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()
