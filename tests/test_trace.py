"""JSONL traces (write, read back), `tts show`, and the notebook/terminal display of results."""

import json

import pytest

from tts.cli.main import main
from tts.display import call_tree, show
from tts.errors import UsageError
from tts.records import Task
from tts.run import run_many, run_task
from tts.strategies import ParallelDistillRefine, TournamentVoting
from tts.testing import ScriptedBackend
from tts.trace import TraceWriter, read_trace

REPLY = "thinking\nAnswer: 5\nWINNER: 1"


def strategy():
    return TournamentVoting(n=4, votes=2, generator=ParallelDistillRefine(drafts=[2, 1]))


async def test_trace_round_trip_has_header_every_call_and_results(tmp_path):
    tasks = [Task(id=f"t{i}", prompt=f"{i} + 1 = ?", answer=str(i + 1)) for i in range(3)]
    path = tmp_path / "run.jsonl"
    with TraceWriter(path, meta={"model": "scripted"}) as writer:
        results = await run_many(strategy(), tasks, ScriptedBackend([REPLY]), on_result=writer.write_result)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["format_version"] == 1
    assert sum(x["type"] == "call" for x in lines) == sum(len(r.trace) for r in results) == 3 * 22
    trace = read_trace(path)
    assert trace.header.meta == {"model": "scripted"}
    assert [r.task_id for r in trace.results] == [r.task_id for r in results]
    assert {c.task_id for c in trace.calls} == {"t0", "t1", "t2"}
    first = [c for c in trace.calls if c.task_id == "t0"]
    assert [c.model_dump(exclude={"type", "task_id", "message_ids"}) for c in first] == [
        c.model_dump() for c in results[0].trace]
    assert {c.role for c in first} == {"draft", "distill", "judge"}
    # the tournament's bracket is kept (tts view draws it); the inner PDR budgets roll up
    assert set(trace.results[0].metadata) == {"B_total", "B_seq", "tournament"}
    assert trace.results[0].metadata["tournament"] == results[0].metadata["tournament"]
    assert trace.results[0].metadata["B_total"] == results[0].usage.total_tokens


async def test_live_callback_writes_each_call_once(tmp_path):
    path = tmp_path / "live.jsonl"
    task = Task(id="a", prompt="1 + 1 = ?")
    with TraceWriter(path) as writer:
        res = await run_task(ParallelDistillRefine(drafts=[3, 1]), task, ScriptedBackend([REPLY]),
                             on_call=writer.callback("a"))
        writer.write_result(res)
    trace = read_trace(path)
    assert len(trace.calls) == 5 and len(trace.results) == 1
    assert trace.results[0].metadata["B_total"] == res.usage.total_tokens


def test_read_trace_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "format_version": 1}\n{"type": "call", "path": "x"}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl:2: not a tts trace line"):
        read_trace(bad)
    (tmp_path / "nohead.jsonl").write_text("")
    with pytest.raises(UsageError, match="no header line"):
        read_trace(tmp_path / "nohead.jsonl")


async def test_tts_show_prints_the_tree_with_per_node_usage(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    res = await run_task(strategy(), Task(id="t0", prompt="2 + 3 = ?", answer="5"), ScriptedBackend([REPLY]))
    with TraceWriter(path) as writer:
        writer.write_result(res)
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rtv  22 calls" in out and "pdr  16 calls" in out and "round1  12 calls" in out
    assert "distill  4 calls" in out and "judge  2 calls" in out
    assert main(["show", str(path), "--task", "nope"]) == 2
    assert "task 'nope' is not in" in capsys.readouterr().err


async def test_call_tree_sums_match_the_result():
    res = await run_task(strategy(), Task(id="t0", prompt="2 + 3 = ?"), ScriptedBackend([REPLY]))
    tree = call_tree(res.trace)
    assert tree.total.calls == res.usage.calls == 22
    assert tree.total.tokens == res.usage.total_tokens
    pdr = tree.children["rtv"].children["pdr"]
    assert pdr.total.calls == 16 and pdr.children["round1"].roles["distill"].calls == 4


async def test_notebook_display_of_results():
    results = await run_many(ParallelDistillRefine(drafts=[2, 1]),
                             [Task(id=f"t{i}", prompt="1 + 1 = ?", answer="5") for i in range(2)],
                             ScriptedBackend([REPLY]))
    html = results[0]._repr_html_()  # tts view's renderer, static: the details inline
    assert "round1" in html and "B_seq" in html and "3 candidates" in html and "<script" not in html
    assert html.count('<details open class="task"') == 1 and "not kept" in html  # no content asked for
    kept = await run_task(ParallelDistillRefine(drafts=[2, 1]), Task(id="k", prompt="1 + 1 = ?"),
                          ScriptedBackend([REPLY]), trace_content=True)
    assert "<pre>thinking" in kept._repr_html_() and "1 + 1 = ?" in kept._repr_html_()
    assert "2 tasks · accuracy 2/2" in repr(show(results))
    assert "draft" in repr(show(results[0].trace))
    with pytest.raises(TypeError):
        show(42)


async def test_trace_keeps_what_was_said_each_message_once(tmp_path):
    """PDR's round-2 drafts read the workspace: the trace has it, and the task's message is stored once."""
    tasks = [Task(id=f"t{i}", prompt=f"{i} + 1 = ?", answer=str(i + 1)) for i in range(2)]
    path = tmp_path / "said.jsonl"
    pdr = ParallelDistillRefine(drafts=[3, 1])
    with TraceWriter(path) as writer:
        results = await run_many(pdr, tasks, ScriptedBackend([REPLY]), trace_content=True,
                                 on_result=lambda r: writer.write_result(r, "5"))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    messages = [x for x in lines if x["type"] == "message"]
    calls = [x for x in lines if x["type"] == "call"]
    assert len(calls) == 2 * 5 and all(c["reply"] == REPLY for c in calls)
    # the 3 round-1 drafts of a task send the same task message: one message line for it, named 3 times
    task0 = [m for m in messages if m["message"]["content"] == "0 + 1 = ?"]
    assert len(task0) == 1
    assert sum(c["message_ids"] == [task0[0]["id"]] for c in calls) == 3
    assert len({m["id"] for m in messages}) == len(messages)
    trace = read_trace(path)
    second = [c for c in trace.calls if c.task_id == "t0" and c.path.endswith("round2")]
    assert len(second) == 1 and "0 + 1 = ?" in str([m.content for m in second[0].messages])
    workspace = " ".join(str(m.content) for m in second[0].messages)
    assert "5" in workspace  # the distilled support of round 1's answers
    assert [c.messages for c in results[0].trace] == [c.messages for c in trace.calls if c.task_id == "t0"]
    assert trace.results[0].reference == "5" and all(c["right"] for c in trace.results[0].candidates)


async def test_trace_content_none_and_no_keys(tmp_path, monkeypatch):
    from tts.cli.main import main as cli

    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "a", "prompt": "1 + 1 = ?", "answer": "2"}\n')
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-env-key")
    from tts.testing import LoopbackServer

    async with LoopbackServer() as server:
        for content, expect in (("full", True), ("none", False)):
            path = tmp_path / f"{content}.jsonl"
            args = ["run", str(tasks), "--model", "m", "--backend", "openai", "--api-base", server.url,
                    "--api-key", "sk-secret-flag-key", "--no-cache", "--quiet", "--out", str(tmp_path / "o.jsonl"),
                    "--trace", str(path), "--strategy", "self-consistency", "--n", "2"]
            if content == "none":
                args += ["--trace-content", "none"]
            import asyncio

            code = await asyncio.to_thread(cli, args)
            assert code == 0
            text = path.read_text()
            assert "sk-secret" not in text
            assert ('"type":"message"' in text) == expect and ("ANSWER: 2" in text) == expect
            calls = read_trace(path).calls
            assert len(calls) == 2 and all((c.messages is not None) == expect for c in calls)


async def test_a_key_quoted_in_an_error_is_redacted(tmp_path, monkeypatch):
    """A provider's 401 may quote the key it was sent: the trace writes *** instead (the one redactor
    knows the key flags, as `tts run` registers them, and the environment's provider keys)."""
    from tts.context import call_record, with_content
    from tts.records import Message, RunResult, Usage
    from tts.redact import add_secret

    monkeypatch.setenv("SOMEPROVIDER_API_KEY", "sk-from-the-environment-1234")
    add_secret("sk-from-the-flag-5678")
    path = tmp_path / "keys.jsonl"
    bad = "AuthenticationError: Incorrect API key provided: sk-from-the-flag-5678 (sk-from-the-environment-1234)"
    rec = with_content(call_record("single", "sample", 0, Usage.of(), 0.1, False, 0.0, bad),
                       [Message(role="user", content="my key is sk-from-the-flag-5678")], None)
    with TraceWriter(path) as writer:
        writer.write_call(rec, "a")
        writer.write_result(RunResult(task_id="a", strategy="single", status="error", error=bad))
    text = path.read_text()
    assert "sk-from" not in text and text.count("***") == 5
