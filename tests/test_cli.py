"""`tts run` on bad input: one line naming the problem, exit code 2, no traceback."""

import json
import os
import subprocess
import sys

import pytest

from tts.cli.main import main


@pytest.fixture
def tasks_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps({"id": str(i), "prompt": f"{i} + 1 = ?", "answer": str(i + 1)})
                              for i in range(3)) + "\n")
    return path


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("content,needles", [
    ('{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": \n', ["tasks.jsonl:2", "not valid JSON"]),
    ('{"id": "a"}\n', ["tasks.jsonl:1", "exactly one of 'prompt' or 'messages'"]),
    ('{"id": "a", "prompt": "x", "answr": "1"}\n', ["tasks.jsonl:1", "answr", "allowed"]),
    ('[1, 2]\n', ["tasks.jsonl:1", "JSON object"]),
    ('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', ["duplicate task id"]),
    ('\n\n', ["has no tasks"]),
])
def test_malformed_task_file(tmp_path, capsys, content, needles):
    path = tmp_path / "tasks.jsonl"
    path.write_text(content)
    code, err = run_cli(["run", path, "--model", "local", "--no-cache"], capsys)
    assert_one_line_error(code, err, *needles)


def test_missing_task_file(tmp_path, capsys):
    code, err = run_cli(["run", tmp_path / "nope.jsonl", "--model", "local"], capsys)
    assert_one_line_error(code, err, "does not exist")


def test_unknown_option(tasks_file, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tasks_file), "--model", "local", "--sampels", "3"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert_one_line_error(2, err, "unrecognized arguments: --sampels")


def test_unknown_strategy(tasks_file, capsys):
    code, err = run_cli(["run", tasks_file, "--model", "local", "--strategy", "majority-of-everything"], capsys)
    assert_one_line_error(code, err, "majority-of-everything", "self-consistency")


def test_bad_answer_format(tasks_file, capsys):
    code, err = run_cli(["run", tasks_file, "--model", "local", "--strategy", "single",
                         "--answer-format", "lastnumber"], capsys)
    assert_one_line_error(code, err, "lastnumber", "last-number")


def test_bad_limit(tasks_file, capsys):
    code, err = run_cli(["run", tasks_file, "--model", "local", "--concurrency", "0"], capsys)
    assert_one_line_error(code, err, "--concurrency")


def test_missing_api_key_for_hosted_model(tasks_file, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run([sys.executable, "-m", "tts.cli.main", "run", str(tasks_file), "--model", "gpt-4o-mini",
                           "--no-cache", "--out", str(tmp_path / "r.jsonl")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, "OPENAI_API_KEY")
    assert not (tmp_path / "r.jsonl").exists() or (tmp_path / "r.jsonl").read_text() == ""


def test_no_subcommand_prints_help(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().out
