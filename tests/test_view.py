"""`tts view`: the page a real headless Chromium renders from disk (its DOM and a screenshot, with
no network), and the page of a real `tts run` on the embedded model and of a `tts swe` run dir."""

from __future__ import annotations

import json
import re
import shutil
import socket
import struct
import subprocess
import threading
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tts.cli.main import main as cli_main
from tts.experiments.selection_metrics import contests, task_line
from tts.records import Task
from tts.run import run_many
from tts.strategies import ParallelDistillRefine, TournamentVoting
from tts.testing import ScriptedBackend
from tts.trace import TraceWriter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                    "(apt-get install -y chromium; .ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """A fresh headless Chromium on `url`, with every request to the network sent to a proxy on
    loopback that records it and answers nothing: nothing leaves the machine, and the page itself
    must have asked for nothing (Chromium's own calls home, to google.com hosts, are let be)."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(16)
        proxy.settimeout(0.2)
        asked: list[str] = []
        done = threading.Event()

        def record() -> None:
            while not done.is_set():
                try:
                    conn, _ = proxy.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(1)
                    try:
                        asked.append(conn.recv(1024).decode("latin-1").split("\r\n")[0])
                    except OSError:
                        pass

        thread = threading.Thread(target=record)
        thread.start()
        profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
        try:
            out = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                  f"--proxy-server=http://127.0.0.1:{proxy.getsockname()[1]}", *extra, url],
                                 capture_output=True, text=True, timeout=120)
        finally:
            done.set()
            thread.join()
    assert out.returncode == 0, out.stderr[-2000:]
    hosts = [re.split(r"[/:]", line.split()[1].removeprefix("http://"))[0] for line in asked if " " in line]
    assert all(h == "google.com" or h.endswith(".google.com") for h in hosts), asked
    return out


# -- a scripted RTV over PDR: known votes, a known workspace ----------------------------------------------------
def script(req) -> str:
    text = req.messages[-1].content
    if "# Candidates" in text:  # alpha: a judge that always picks a 4; beta: always the 5
        shown = re.findall(r"## Candidate (\d+)\nFinal answer: (\d+)", text)
        want = "5" if "beta" in text else "4"
        return "WINNER: " + next((n for n, a in shown if a == want), shown[0][0])
    if text.startswith("Write a compact summary"):
        return "WORKSPACE-NOTE: the attempts say 4 or 5."
    if "WORKSPACE-NOTE" in " ".join(str(m.content) for m in req.messages):
        return f"Checked again.\nAnswer: {5 if req.replica.endswith(('0', '2')) else 4}"  # PDR runs 0, 2: right
    return f"First try.\nAnswer: {[4, 5][req.sample_index % 2]}"


@pytest.fixture
async def page(tmp_path):
    tasks = [Task(id=t, prompt=f"{t}: 2 + 3 = ?", answer="5") for t in ("alpha", "beta", "gamma")]
    trace = tmp_path / "run.jsonl"
    strategy = TournamentVoting(n=4, votes=3, generator=ParallelDistillRefine(drafts=[2, 1]))
    with TraceWriter(trace) as writer:
        results = await run_many(strategy, tasks, ScriptedBackend(script), trace_content=True,
                                 on_result=lambda r: writer.write_result(r, "5"))
    html = tmp_path / "report.html"
    assert cli_main(["view", str(trace), "--out", str(html)]) == 0
    return html, {r.task_id: r for r in results}


class Dom(HTMLParser):
    """The rendered DOM, as the few things the test reads: task rows, contests, round-2 messages."""

    def __init__(self):
        super().__init__()
        self.tasks, self.hidden, self.contests, self.stack = [], [], [], []
        self.round2_text, self.external = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class") or ""
        if tag == "details" and "task" in cls.split():
            self.tasks.append(a["data-id"])
            if "hidden" in a:
                self.hidden.append(a["data-id"])
        if tag == "div" and "contest" in cls.split():
            self.contests.append({"judge_wrong": "judge-wrong" in cls, "votes": []})
        if tag == "div" and "member" in cls.split():
            self.contests[-1]["votes"].append(int(a["data-votes"]))
        if tag == "div" and "pdr-round" in cls.split():
            self.stack.append(a["data-round"])
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("data:", "#")):
                self.external.append(a[key])

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "2":
            self.round2_text.append(data)


@needs_chromium
async def test_chromium_renders_tasks_bracket_and_workspace(page, tmp_path):
    html, results = page
    dump = chromium(f"file://{html}#open=all", tmp_path, "--dump-dom").stdout
    dom = Dom()
    dom.feed(dump)
    assert dom.tasks == ["alpha", "beta", "gamma"] and not dom.hidden and not dom.external
    # every contest of every task, with the votes the tournament recorded (3 per contest, 3 contests per task)
    expected = []
    for tid in ("alpha", "beta", "gamma"):
        for rnd in results[tid].metadata["tournament"]["groups"]:
            for g in rnd:
                expected.append([sum(v == m for v in g["votes"]) for m in g["members"]])
    assert [c["votes"] for c in dom.contests] == expected and len(expected) == 9
    # alpha's judge picks a 4 over a 5: its contests with one right side are marked, and no others
    lost = {tid: sum(not won for _, won, _, _ in contests(task_line(results[tid], "5"))) for tid in results}
    assert lost["alpha"] >= 1 and lost["beta"] == 0
    assert sum(c["judge_wrong"] for c in dom.contests) == sum(lost.values())
    # the PDR round-2 drafts' workspace, drawn by the page's script from the message table
    assert "WORKSPACE-NOTE: the attempts say 4 or 5." in "".join(dom.round2_text)

    # the filter "contests the judge got wrong" (set from the address) hides the tasks without one
    dom2 = Dom()
    dom2.feed(chromium(f"file://{html}#judge=1", tmp_path, "--dump-dom").stdout)
    judged_wrong = [t for t in ("alpha", "beta", "gamma") if t not in dom2.hidden]
    assert "alpha" in judged_wrong and "beta" not in judged_wrong


@needs_chromium
async def test_chromium_screenshot_is_not_blank(page, tmp_path):
    html, _ = page
    shot = tmp_path / "shot.png"
    chromium(f"file://{html}#open=alpha", tmp_path, f"--screenshot={shot}", "--window-size=1200,1400")
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 1400)
    colours = Counter(pixels)
    assert len(colours) > 50  # text, bars, borders: far from a blank page
    assert colours.most_common(1)[0][1] < 0.97 * width * height


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """A tiny PNG decoder (8-bit RGB/RGBA, not interlaced): width, height, pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = []
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            corner = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        pixels += [tuple(line[i:i + bpp]) for i in range(0, stride, bpp)]
        prev = line
    return width, height, pixels


# -- tts view on a tts swe run dir of the toy instance -----------------------------------------------------------
def test_view_of_a_swe_run_dir(tmp_path, capsys):
    from tests.test_swe_cli import judge as swe_judge
    from tests.test_swe_cli import run_cli
    from tts.records import Trajectory
    from tts.swe.toy import FIX_PATCH, WRONG_PATCHES, make_toy_instance
    from tts.testing import loopback_in_thread

    rows = [make_toy_instance(tmp_path / "repos", "toy__calc-1")]
    dataset = tmp_path / "toy.jsonl"
    dataset.write_text("".join(json.dumps(r.model_dump(exclude={"metadata"})) + "\n" for r in rows))
    saved = tmp_path / "saved"
    saved.mkdir()
    paths = []
    for j, patch in enumerate([WRONG_PATCHES["breaks-sub"], FIX_PATCH, WRONG_PATCHES["multiplies"]]):
        p = saved / f"toy__calc-1-{j}.json"
        p.write_text(Trajectory(id=f"toy__calc-1-{j}", task_id="toy__calc-1", outcome="Submitted",
                                patch=patch).model_dump_json())
        paths.append(p)
    rd = tmp_path / "run"
    with loopback_in_thread(reply=swe_judge) as server:
        code, _, err = run_cli(["swe", "run", "--dataset", dataset, "--run-dir", rd, "--agent", "replay",
                                "--replay", *paths, "--n", "3", "--rounds", "1", "--summarizer", "rule",
                                "--votes", "2", "--model", "loop", "--backend", "openai", "--api-base", server.url,
                                "--grader", "local", "--run-id", "v", "--quiet"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["view", rd], capsys)
    assert code == 0, err
    page = (rd / "report.html").read_text()
    assert "wrote" in out and "1 tasks" in out
    details = json.loads(re.search(r'id="tts-details">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))
    (detail,) = details
    chosen = json.loads((rd / "results" / "toy__calc-1.json").read_text())["chosen_id"]
    assert "3 rollouts" in detail and detail.count('class="card rollout"') == 3
    assert f"★ {chosen}" in detail and "+    return a + b" in detail  # the chosen rollout, its patch
    # 3 rollouts: a contest and a bye, then the final; 2 votes a contest
    assert detail.count('class="contest') == 2 and detail.count('class="bye') == 1
    assert 'data-correct="true"' in page  # the local grader resolved it
    if CHROMIUM is not None:
        dom = Dom()
        dom.feed(chromium(f"file://{rd / 'report.html'}#open=all", tmp_path, "--dump-dom").stdout)
        assert dom.tasks == ["toy__calc-1"] and [len(c["votes"]) for c in dom.contests] == [2, 2]


# -- tts view on the trace of a real tts run on the embedded model ------------------------------------------------
@pytest.mark.local_model
def test_view_of_a_real_local_run(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"s{i}", "prompt": f"What is {i} + {i + 1}? End with 'Answer: N'.",
                                         "answer": str(2 * i + 1)}) + "\n" for i in range(2)))
    trace = tmp_path / "trace.jsonl"
    code = cli_main(["run", str(tasks), "--model", "local", "--strategy", "pdr", "--drafts", "2,1",
                     "--max-tokens", "48", "--seed", "0", "--no-cache", "--quiet", "--out",
                     str(tmp_path / "out.jsonl"), "--trace", str(trace)])
    assert code == 0
    out = capsys.readouterr().out
    assert "oracle (pass@N)" in out and "by round" in out
    assert cli_main(["view", str(trace)]) == 0
    page = (tmp_path / "trace.html").read_text()
    details = json.loads(re.search(r'id="tts-details">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))
    messages = json.loads(re.search(r'id="tts-messages">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))
    assert len(details) == 2 and all('class="pdr-round" data-round="2"' in d for d in details)
    assert any("What is 0 + 1?" in m["content"] for m in messages.values())
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    calls = [x for x in lines if x["type"] == "call"]
    assert calls and all(c["reply"] for c in calls if not c["error"])
    if CHROMIUM is not None:
        dom = Dom()
        dom.feed(chromium(f"file://{tmp_path / 'trace.html'}#open=all", tmp_path, "--dump-dom").stdout)
        assert sorted(dom.tasks) == ["s0", "s1"] and dom.round2_text  # in the order they finished


def test_view_bad_source_is_one_line(tmp_path, capsys):
    assert cli_main(["view", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1
    assert cli_main(["view", str(tmp_path)]) == 2
    assert "neither a `tts swe` run dir" in capsys.readouterr().err
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"type": "header", "format_version": 1}\n')
    assert cli_main(["view", str(trace), "--out", "/proc/nope/report.html"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out /proc/nope/report.html: cannot write there" in err and len(err.splitlines()) == 1


async def test_refinement_attempts_side_by_side_and_a_stopped_run(tmp_path):
    """SR's attempts in columns with what changed; a run cut short says why."""
    from tts.display import results_html
    from tts.display.html_view import render_page
    from tts.display.view_doc import from_results
    from tts.run import run_task
    from tts.strategies import SequentialRefinement

    replies = iter(["I think it is 4.\nAnswer: 4", "Checking: 2 + 3 is 5, not 4.\nAnswer: 5"])
    sr = await run_task(SequentialRefinement(rounds=2), Task(id="sr", prompt="2 + 3 = ?", answer="5"),
                        ScriptedBackend(lambda req: next(replies)), trace_content=True)
    page = render_page(from_results([sr], {"sr": "5"}))
    detail = json.loads(re.search(r'id="tts-details">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))[0]
    assert "attempts side by side" in detail
    assert detail.count('class="card attempt"') == 2 and "<del>4</del>" in detail and "<ins>" in detail
    stopped = await run_task(SequentialRefinement(rounds=2), Task(id="slow", prompt="2 + 3 = ?"),
                             ScriptedBackend(["Answer: 5"], latency=5), timeout=0.2)
    html = results_html([stopped])
    assert stopped.status == "timeout" and 'class="error"><b>stopped</b>: timeout' in html
