"""Readers of saved agent runs, on the checked-in fixtures of each format (tests/fixtures/swe/)."""

import json
from pathlib import Path

import pytest

from tts.errors import UsageError
from tts.records import Trajectory
from tts.swe.readers import read_atif, read_mswea, read_mswea_batch, read_terminus, read_trajectory
from tts.swe.toy import FIX_COMMAND

FIX = Path(__file__).parent / "fixtures" / "swe"
FIX_DIFF = json.loads((FIX / "mswea_v11_toolcalls.traj.json").read_text())["info"]["submission"]


def test_mswea_v11_tool_calls():
    t = read_mswea(FIX / "mswea_v11_toolcalls.traj.json")
    assert (t.id, t.task_id, t.outcome) == ("toy__calc-1", "toy__calc-1", "Submitted")
    assert t.patch == FIX_DIFF and t.patch.startswith("diff --git a/calc.py")
    assert [s.action for s in t.steps] == [
        "cat calc.py", "python -c 'import calc; print(calc.add(2, 3))'", f"{FIX_COMMAND} && python -m pytest -q",
        "git diff -- calc.py > patch.txt", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"]
    assert [s.exit_code for s in t.steps] == [0, 0, 0, 0, None]
    assert t.steps[0].observation.startswith("def add(a, b):\n    return a - b")
    assert t.steps[1].observation == "-1\n"
    assert t.steps[0].thought == "THOUGHT: Let me look at calc.py and run the tests." and t.steps[1].thought == ""
    # what a model may be shown again: no exit message, tool calls kept
    assert [m.role for m in t.messages] == ["system", "user", "assistant", "tool", "tool", "assistant", "tool",
                                            "assistant", "tool", "assistant"]
    assert t.messages[2].tool_calls[0]["id"] == "call_1" and t.messages[3].tool_call_id == "call_1"
    assert t.metadata["cost_usd"] == 0.0123 and t.metadata["api_calls"] == 4
    assert t.metadata["model"] == "openai/gpt-5-mini" and t.metadata["format"] == "mini-swe-agent-1.1"


def test_mswea_v1_text_format():
    t = read_mswea(FIX / "mswea_v1_text.traj.json")
    assert t.outcome == "LimitsExceeded" and t.patch is None
    assert [s.action for s in t.steps] == ["python -m pytest -q test_calc.py", "sed -i '6s/a - b/b - a/' calc.py",
                                           "python -m pytest -q test_calc.py"]
    assert [s.exit_code for s in t.steps] == [1, 0, 1]
    assert t.steps[0].thought == "THOUGHT: First run the tests."
    assert "ModuleNotFoundError: No module named 'calcc'" in t.steps[0].observation
    assert t.steps[2].observation.startswith("FAILED test_calc.py::test_sub")
    assert t.metadata["format"] == "mini-swe-agent-1"


def test_mswea_batch_dir_takes_patches_from_preds():
    trajs = read_mswea_batch(FIX / "mswea_batch")
    assert [(t.id, t.task_id) for t in trajs] == [("toy__calc-1", "toy__calc-1"), ("toy__calc-2", "toy__calc-2")]
    assert trajs[0].patch == FIX_DIFF and trajs[1].patch is None
    assert trajs[1].outcome == "LimitsExceeded" and len(trajs[1].steps) == 3


def test_terminus_episodes():
    t = read_terminus(FIX / "terminus_trial")
    assert t.task_id == "hello-world" and t.outcome == "Submitted" and t.metadata["is_resolved"] is True
    assert [s.action for s in t.steps] == ["echo 'Hello, world!' > hello.txt\n", "cat hello.txt\n", ""]
    assert t.steps[0].thought == "Empty shell in /app.\nWrite the file with echo."
    # the next episode's prompt is what the terminal showed after a step
    assert "root@box:/app# cat hello.txt\nHello, world!" in t.steps[1].observation
    assert t.steps[2].observation == ""
    assert [m.role for m in t.messages] == ["user", "assistant"] * 3


def test_atif():
    t = read_atif(FIX / "atif.trajectory.json")
    assert t.id == "fix-git__a1b2" and t.metadata["model"] == "anthropic/claude-sonnet-4-5"
    assert t.metadata["cost_usd"] == 0.0162 and t.metadata["prompt_tokens"] == 4100
    assert [s.action for s in t.steps] == [
        "bash_command: cd /app/repo && git reflog | head -5\n", "bash_command: git merge 650dba4\n",
        "bash_command: git checkout --theirs _includes/about.md && git commit -am merge\n", "mark_task_complete: {}"]
    assert "CONFLICT (content)" in t.steps[1].observation and t.steps[3].observation == ""
    assert [m.role for m in t.messages] == ["system", "user", "assistant", "assistant", "assistant"]


@pytest.mark.parametrize("path,fmt", [
    ("mswea_v11_toolcalls.traj.json", "mini-swe-agent-1.1"), ("mswea_v1_text.traj.json", "mini-swe-agent-1"),
    ("terminus_trial", "terminus-1"), ("atif.trajectory.json", "ATIF-v1.2"),
])
def test_read_trajectory_detects_the_format(path, fmt):
    t = read_trajectory(FIX / path)
    assert t.metadata["format"] == fmt
    assert Trajectory.model_validate_json(t.model_dump_json()) == t  # round-trips


def test_bad_inputs_are_usage_errors(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        read_trajectory(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"foo": 1}')
    with pytest.raises(UsageError, match="unknown trajectory format"):
        read_trajectory(tmp_path / "y.json")
    with pytest.raises(UsageError, match="episode"):
        read_terminus(tmp_path)
