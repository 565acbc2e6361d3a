"""A tiny SWE-bench-shaped instance built on the spot: a git repo whose `add` subtracts.

Used by the tests, the benchmark and the docs; needs only git and pytest. The grader applies
`test_patch` (which adds `test_add`) before running `test_cmd`, as the swebench harness does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tts.swe.git import git
from tts.swe.instance import SWEInstance

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
TESTS = "from calc import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n"

TEST_PATCH = "\n".join([
    "diff --git a/test_calc.py b/test_calc.py",
    "--- a/test_calc.py",
    "+++ b/test_calc.py",
    "@@ -1,5 +1,9 @@",
    "-from calc import sub",
    "+from calc import add, sub",
    " ",
    " ",
    " def test_sub():",
    "     assert sub(5, 3) == 2",
    "+",
    "+",
    "+def test_add():",
    "+    assert add(2, 3) == 5",
    "",
])

FIX_PATCH = "\n".join([
    "diff --git a/calc.py b/calc.py",
    "--- a/calc.py",
    "+++ b/calc.py",
    "@@ -1,5 +1,5 @@",
    " def add(a, b):",
    "-    return a - b",
    "+    return a + b",
    " ",
    " ",
    " def sub(a, b):",
    "",
])

WRONG_PATCHES = {
    "multiplies": FIX_PATCH.replace("a + b", "a * b"),
    "breaks-sub": "\n".join([
        "diff --git a/calc.py b/calc.py",
        "--- a/calc.py",
        "+++ b/calc.py",
        "@@ -3,4 +3,4 @@",
        " ",
        " ",
        " def sub(a, b):",
        "-    return a - b",
        "+    return b - a",
        "",
    ]),
}

# A shell command that makes the fix (only line 2: `sub` must stay as it is).
FIX_COMMAND = "sed -i '2s/a - b/a + b/' calc.py"


def make_toy_repo(path: str | Path) -> str:
    """Create the repository at `path`; return its base commit."""
    repo = Path(path)
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "calc.py").write_text(CALC)
    (repo / "test_calc.py").write_text(TESTS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "calc")
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def make_toy_instance(root: str | Path, instance_id: str = "toy__calc-1") -> SWEInstance:
    """A repo under `root/<instance_id>` and the SWE-bench row that describes it."""
    repo = (Path(root) / instance_id.replace("/", "_")).resolve()
    base = make_toy_repo(repo)
    return SWEInstance(
        instance_id=instance_id,
        repo=f"toy/{instance_id}",
        repo_path=str(repo),
        base_commit=base,
        problem_statement="`calc.add(2, 3)` returns -1 instead of 5: add subtracts its arguments.",
        FAIL_TO_PASS=["test_calc.py::test_add"],
        PASS_TO_PASS=["test_calc.py::test_sub"],
        version="0.1",
        patch=FIX_PATCH,
        test_patch=TEST_PATCH,
        test_cmd=f"{sys.executable} -m pytest -rA -q -p no:cacheprovider test_calc.py",
    )


class ToyAgent:
    """A deterministic scripted agent for `ScriptedRunner` (tests and benchmarks, any executor):
    rollout k of round r answers the fix when (k + r) % 3 == 0, else one of the wrong patches;
    each call sleeps `delay_s`. With `log_dir`, every execution leaves a `<rollout>.<pid>.<ns>.start`
    and, when it finishes, a `.done` file there, so re-runs can be counted across processes."""

    def __init__(self, delay_s: float = 0.0, log_dir: str | Path | None = None) -> None:
        self.delay_s = delay_s
        self.log_dir = str(log_dir) if log_dir is not None else None

    async def __call__(self, instance: SWEInstance, prior: list, rollout_id: str) -> str:
        import asyncio
        import os
        import time

        from tts.swe.rundir import safe_name

        mark = f"{safe_name(rollout_id)}.{os.getpid()}.{time.time_ns()}"
        if self.log_dir:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            (Path(self.log_dir) / f"{mark}.start").touch()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        r, k = (int(x) for x in rollout_id.rsplit("/round", 1)[-1].split("-")) if "/round" in rollout_id else (0, 0)
        patch = FIX_PATCH if (k + r) % 3 == 0 else list(WRONG_PATCHES.values())[(k + r) % 2]
        if self.log_dir:
            (Path(self.log_dir) / f"{mark}.done").touch()
        return patch


def count_runs(log_dir: str | Path) -> dict[str, dict[str, int]]:
    """{rollout (safe name): {"start": n, "done": n}} from a `ToyAgent`'s log dir."""
    out: dict[str, dict[str, int]] = {}
    for p in Path(log_dir).glob("*.*"):
        name, _pid, _ns, kind = p.name.rsplit(".", 3)
        out.setdefault(name, {"start": 0, "done": 0})[kind] += 1
    return out
