"""`tts view` on a large run: a 1,000-task trace (RTV n=4 over PDR [2,1], what was said kept) from
the scripted model, written, rendered and loaded in headless Chromium, side by side with the
trace written without content (`--trace-content none`).

    python benchmarks/view_scale.py [--tasks 1000]

Prints per variant: the trace's size and calls, distinct messages, the time `tts view` takes to
write the page (reading the trace included), the page's size, and the time a fresh headless
Chromium takes to start, load the page, run its script and paint it (`--screenshot`), with no task
opened (details are drawn when a task is opened) and with one opened, beside the same for a
one-task page (the browser's own start-up). `--dump-dom` is not timed: serializing 20 MB of DOM
to stdout costs more than rendering it. The machine is shared: figures are wall times of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def script(req) -> str:
    text = req.messages[-1].content
    if "# Candidates" in text:
        return f"WINNER: {1 + req.sample_index % 2}"
    if text.startswith("Write a compact summary"):
        return "The attempts say 4 or 5; most say 5."
    answer = 4 + req.sample_index % 2
    return f"Let me add the numbers step by step ({req.replica}/{req.sample_index}).\nAnswer: {answer}"


async def write_trace(path: Path, n: int, content: bool) -> None:
    from tts.records import Task
    from tts.run import run_many
    from tts.strategies import ParallelDistillRefine, TournamentVoting
    from tts.testing import ScriptedBackend
    from tts.trace import TraceWriter

    tasks = [Task(id=f"t{i}", prompt=f"Task {i}: 2 + 3 = ?", answer="5") for i in range(n)]
    strategy = TournamentVoting(n=4, votes=3, generator=ParallelDistillRefine(drafts=[2, 1]))
    with TraceWriter(path, content=content) as writer:
        await run_many(strategy, tasks, ScriptedBackend(script), trace_content=content,
                       on_result=lambda r: writer.write_result(r, "5"))


def chromium_load(page: Path, fragment: str, profile: Path) -> float:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return float("nan")
    started = time.perf_counter()
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={profile}.png",
                    "--window-size=1200,900", f"file://{page}{fragment}"], capture_output=True, timeout=300)
    took = time.perf_counter() - started
    out = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}-dom", "--dump-dom", f"file://{page}{fragment}"],
                         capture_output=True, text=True, timeout=300)
    assert 'data-ready="1"' in out.stdout, "the page's script did not finish"
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    from tts.cli.main import main as cli

    with tempfile.TemporaryDirectory(prefix="tts-view-") as tmp:
        root = Path(tmp)
        small = root / "one.jsonl"
        asyncio.run(write_trace(small, 1, True))
        cli(["view", str(small), "--out", str(root / "one.html")])
        print(f"browser start-up and a one-task page: {chromium_load(root / 'one.html', '', root / 'p1'):.2f} s")
        print(f"{'variant':<16} {'calls':>7} {'trace MB':>9} {'messages':>9} {'view s':>7} {'page MB':>8} "
              f"{'load s':>7} {'open 1 s':>9}")
        for name, content in (("content (default)", True), ("content none", False)):
            trace = root / f"{content}.jsonl"
            asyncio.run(write_trace(trace, args.tasks, content))
            page = root / f"{content}.html"
            started = time.perf_counter()
            cli(["view", str(trace), "--out", str(page)])
            view_s = time.perf_counter() - started
            lines = trace.read_text().splitlines()
            calls = sum('"type":"call"' in x for x in lines)
            messages = sum('"type":"message"' in x for x in lines)
            load = chromium_load(page, "", root / f"p{content}a")
            one = chromium_load(page, "#open=t500", root / f"p{content}b")
            print(f"{name:<16} {calls:>7,} {trace.stat().st_size / 1e6:>9.1f} {messages:>9,} {view_s:>7.2f} "
                  f"{page.stat().st_size / 1e6:>8.1f} {load:>7.2f} {one:>9.2f}")


if __name__ == "__main__":
    main()
