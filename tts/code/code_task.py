"""Code tasks: the task-file fields they use, pulling code out of a candidate, grading with tests.

A code task is a normal task whose `metadata` has `tests`:
    "tests":       a list of Python snippets, each one test, run after the candidate's code
                   (an `assert ...` line is the usual form; a test passes when it raises nothing)
    "entry_point": optional, the function under test; the tests may call it as `candidate`
    "code_prefix": optional, code placed before the candidate's (HumanEval's prompt: imports,
                   helpers, the signature), so a completion that is only the body still runs
    "test_setup":  optional, code run once after the candidate's code, before the tests
    "timeout_s":   optional, per-test time limit for this task
`tts tasks humaneval` writes such tasks. The candidate's code is the last fenced block that
defines the entry point (else the longest fenced block, else the whole text).
"""

from __future__ import annotations

import re
from typing import Any

from tts.code.sandbox import ExecReport, SandboxLimits, run_tests
from tts.errors import ConfigError
from tts.records import Candidate, Task

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_LANGS = {"", "python", "py", "python3", "py3"}


def is_code_task(task: Task) -> bool:
    return isinstance(task.metadata.get("tests"), list)


def task_tests(task: Task) -> list[str]:
    tests = task.metadata.get("tests")
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise ConfigError(f"task {task.id!r} has no tests: a code task needs metadata 'tests', a list of Python "
                          f"snippets (e.g. from `tts tasks humaneval`)")
    return tests


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a candidate's text: fenced Python blocks first (an unclosed last fence counts,
    as small models often stop mid-block), else the text itself."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in _CODE_LANGS and body.strip()]
    if not blocks:
        return text.strip("\n")
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return defining[-1].rstrip()
    return max(blocks, key=len).rstrip()


def build_program(task: Task, code: str) -> str:
    """The program to run: the task's `code_prefix` joined to the candidate's code. A full
    definition of the entry point comes after the prefix (so it wins over the stub); an indented
    fragment is the body of the prefix's last function and is appended directly."""
    prefix = str(task.metadata.get("code_prefix") or "")
    if not prefix:
        return code
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first[:1] in (" ", "\t"):
        return prefix.rstrip("\n") + "\n" + code + "\n"
    return prefix.rstrip("\n") + "\n\n\n" + code + "\n"


def candidate_program(task: Task, candidate: Candidate | str) -> str:
    text = candidate if isinstance(candidate, str) else candidate.text
    return build_program(task, extract_code(text, task.metadata.get("entry_point")))


def task_limits(task: Task, limits: SandboxLimits) -> SandboxLimits:
    timeout = task.metadata.get("timeout_s")
    return limits.model_copy(update={"timeout_s": float(timeout)}) if isinstance(timeout, int | float) else limits


async def run_candidate(task: Task, candidate: Candidate | str, tests: list[str],
                        limits: SandboxLimits | None = None) -> ExecReport:
    """Run one candidate's code against `tests` (the task's or generated ones) in the sandbox."""
    return await run_tests(candidate_program(task, candidate), tests, setup=str(task.metadata.get("test_setup") or ""),
                           entry_point=task.metadata.get("entry_point"),
                           limits=task_limits(task, limits or SandboxLimits()))


def report_summary(report: ExecReport, source: str) -> dict[str, Any]:
    """What a candidate's metadata records of a run: counts and every test's outcome."""
    return {"source": source, "passed": report.passed, "total": report.total, "sandbox": report.sandbox,
            "outcomes": [o.model_dump() for o in report.outcomes]}


async def passes_task_tests(task: Task, candidate: Candidate | None) -> bool | None:
    """Whether `candidate` passes every one of the task's own tests (None when the task has none).
    Reuses the record a `tests` verifier left on the candidate when it ran exactly these tests."""
    if not is_code_task(task):
        return None
    if candidate is None:
        return False
    tests = task_tests(task)
    done = candidate.metadata.get("tests_run")
    if isinstance(done, dict) and done.get("source") == "task" and done.get("total") == len(tests):
        return done.get("passed") == len(tests) and len(tests) > 0
    return (await run_candidate(task, candidate, tests)).all_passed
