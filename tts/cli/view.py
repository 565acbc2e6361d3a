"""`tts view TRACE_OR_RUN_DIR [--out report.html]`: a run as one self-contained HTML page (no
server, no network; it opens from disk): tasks and outcomes, and per task the candidates, vote
bars, RTV's bracket round by round, the refinement rounds with what each draft read, every call
with what it read and said. Reads a trace (`tts run --trace`), a `tts swe` run dir or a
`tts compare` out dir."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("view", help="a trace or run dir as one HTML page (open it in a browser)",
                       description=__doc__.splitlines()[0])
    p.add_argument("source", metavar="TRACE_OR_RUN_DIR",
                   help="trace JSONL (tts run --trace FILE), tts swe run dir, or tts compare out dir")
    p.add_argument("--out", help="the page to write (default: report.html beside the trace, or in the dir)")
    p.set_defaults(handler=_handle)


def load(path: str | Path) -> dict[str, Any]:
    """The view document of a trace file, a `tts swe` run dir or a `tts compare` out dir; a
    UsageError (one line) naming what it expected otherwise."""
    from tts.display.view_doc import from_compare_lines, from_trace
    from tts.errors import UsageError

    p = Path(path)
    if p.is_dir():
        if (p / "rollouts").is_dir() or (p / "results").is_dir() or (p / "instances.jsonl").is_file():
            from tts.display.view_swe import from_swe_run_dir

            return from_swe_run_dir(p)
        if (p / "results.jsonl").is_file():
            from tts.experiments.runner import read_lines

            rows: dict[str, list[dict[str, Any]]] = {}
            for line in read_lines(p / "results.jsonl").values():
                rows.setdefault(line.get("label", "?"), []).append(line)
            return from_compare_lines(rows, title=f"tts compare · {p}")
        raise UsageError(f"{p} is neither a `tts swe` run dir (rollouts/, results/) nor a `tts compare` out dir "
                         f"(results.jsonl); give a trace file (tts run --trace FILE) or one of those")
    if not p.exists():
        raise UsageError(f"{p} does not exist; give a trace file (tts run --trace FILE) or a run dir")
    from tts.trace import read_trace

    return from_trace(read_trace(p), title=f"tts view · {p.name}")


def add_trace_content_flag(group: Any) -> None:
    """`--trace-content` of `tts run` and `tts compare`."""
    group.add_argument("--trace-content", choices=["full", "none"], default="full",
                       help="full (default): the trace keeps each call's messages and reply (each distinct message "
                       "once); none: accounting only (path, role, tokens, latency)")


def open_trace(args: argparse.Namespace, meta: dict[str, Any]) -> Any:
    """The TraceWriter of `--trace` (None without it): what was said unless `--trace-content none`
    (every line through the one redactor, `tts.redact`)."""
    if not args.trace:
        return None
    from tts.trace import TraceWriter

    return TraceWriter(args.trace, meta=meta, content=args.trace_content == "full")


def default_out(source: Path) -> Path:
    return source / "report.html" if source.is_dir() else source.with_name(source.stem + ".html")


def _handle(args: argparse.Namespace) -> int:
    from tts.display.html_view import render_page
    from tts.errors import ConfigError

    started = time.perf_counter()
    source = Path(args.source)
    doc = load(source)
    out = Path(args.out) if args.out else default_out(source)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_page(doc), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc}); give a path in a writable "
                          f"folder") from None
    tasks = doc["tasks"]
    calls = sum(len(t["calls"]) for t in tasks)
    print(f"wrote {out} ({len(tasks)} tasks, {calls} calls, {len(doc['messages'])} distinct messages, "
          f"{out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s); open it in a browser")
    return 0
