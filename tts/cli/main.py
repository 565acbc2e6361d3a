"""`tts` command line: `tts run`, `tts compare`, `tts serve`, `tts mcp`, `tts show`, `tts view`, `tts local serve`,
`tts swe ...`.

Each subcommand lives in its own module with `add_parser(subparsers)`, which sets `handler`
(a function of the parsed args returning an exit code, or a coroutine function). A user
mistake (`UsageError`) prints one line and exits 2; no traceback. Key flags (`--api-key`,
`--judge-api-key`, `--token`) join the one redactor (`tts.redact`) before anything runs, and every
line printed here passes through it.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import sys
from importlib import import_module

from tts.errors import BackendError, BudgetExceeded, UsageError
from tts.redact import add_secret, redact

SUBCOMMANDS = ("run", "compare", "serve", "mcp", "show", "view", "local", "swe", "plan", "tasks")


class DefaultsFormatter(argparse.HelpFormatter):
    """--help shows each flag's default, when it has a meaningful one (not None, False or a list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or isinstance(default, list) or "default" in text
                or not action.option_strings or action.nargs == 0):
            return text
        return f"{text} (default: {default})".strip()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (plus the hint), exit code 2, and
    shows defaults in --help.

    Abbreviations are off: `--k 2` is an unknown flag (with a suggestion), never `--kappa 2`."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = self._suggest(message)
        self.exit(2, f"{self.prog}: error: {message}{hint} (see '{self.prog} --help')\n")

    def _suggest(self, message: str) -> str:
        """For an unknown flag: the flags it probably meant."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        parsers = [self] + [p for a in self._actions if isinstance(a, argparse._SubParsersAction)
                            for p in a.choices.values()]
        known = sorted({o for p in parsers for a in p._actions for o in a.option_strings if o.startswith("--")})
        for word in message.split(":", 1)[1].split():
            if not word.startswith("--"):
                continue
            flag = word.split("=", 1)[0]
            stem = flag[2:]
            near = [o for o in known if stem and stem in o[2:].split("-")]
            near += [o for o in difflib.get_close_matches(flag, known, n=3, cutoff=0.6) if o not in near]
            if near:
                return f"; did you mean {' or '.join(near[:3])}?"
        return ""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tts", description="Test-time scaling strategies over any chat model.")
    parser.add_argument("--version", action="version", version=f"tts {__import__('tts').__version__}")
    parser.add_argument("--plugin", action="append", metavar="MODULE",
                        help="import a module (or a .py file) that registers strategies or selectors with "
                        "tts.register, so --strategy/--selector and spec files can name them; repeatable, "
                        "allowed anywhere on the command line (also: the TTS_PLUGINS variable, "
                        "comma-separated, and the 'tts.plugins' entry point group)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in SUBCOMMANDS:
        try:
            module = import_module(f"tts.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tts.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.add_parser(sub)
    return parser


def split_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the plugin modules named by --plugin anywhere in `argv`, plus TTS_PLUGINS; the rest of argv).
    They are loaded before the parser is built, since their strategies add flags to it."""
    import os

    plugins = [p for p in os.environ.get("TTS_PLUGINS", "").split(",") if p.strip()]
    rest: list[str] = []
    it = iter(argv)
    for word in it:
        if word == "--plugin":
            value = next(it, None)
            if value is None:
                rest.append(word)  # let argparse report the missing value
                break
            plugins.append(value)
        elif word.startswith("--plugin="):
            plugins.append(word.split("=", 1)[1])
        else:
            rest.append(word)
    return plugins, rest


def main(argv: list[str] | None = None) -> int:
    plugins, argv = split_plugins(list(sys.argv[1:] if argv is None else argv))
    try:
        from tts.registry import load_plugin

        for plugin in plugins:
            load_plugin(plugin.strip())
    except UsageError as exc:
        print(f"tts: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    add_secret(*(v for k, v in vars(args).items() if k.endswith(("api_key", "token")) and isinstance(v, str)))
    try:
        out = handler(args)
        if asyncio.iscoroutine(out):
            out = asyncio.run(out)
        return int(out or 0)
    except UsageError as exc:
        print(redact(f"tts {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except BudgetExceeded as exc:
        print(redact(f"tts {args.command}: stopped: {exc}"), file=sys.stderr)
        return 3
    except BackendError as exc:  # a model call failed for good (e.g. the credentials were rejected)
        print(redact(f"tts {args.command}: error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tts {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: its traceback, with no secret in it (a provider's error may quote a key)
        import traceback

        sys.stderr.write(redact(traceback.format_exc()))
        return 1


if __name__ == "__main__":
    sys.exit(main())
