"""Programmatic verifiers: a Python callable or a task-file field, as a scorer, a filter and a selector.

`check` names the source (the `--verifier` CLI value):
- `answer`: the candidate's answer equals the task's expected answer (`task.metadata["expected"]`,
  else `task.answer`), compared normalized (`tts.answers.is_correct`);
- `check`: the expression in `task.metadata["check"]`, e.g. `answer > 10 and answer % 2 == 0`,
  evaluated by a tiny restricted evaluator (numbers, strings, arithmetic, comparisons, and/or/not,
  the names `answer` and `text`; no builtins, no attributes, no calls);
- `module:function`: import that function; it is called as `fn(task, candidate)` and returns a
  bool or a float (it may be async).
A verifier built from a callable (`Verifier.from_callable(fn)`) cannot be written to a spec file.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import operator
from collections.abc import Callable
from importlib import import_module
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from tts.answers import is_correct, normalize
from tts.context import RunContext
from tts.errors import ConfigError, TaskDataError
from tts.records import Candidate, Task
from tts.registry import Component, register
from tts.selectors.vote import ScoreSelect

VerifyFn = Callable[[Task, Candidate], Any]

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_UNOPS: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


class CheckError(ValueError):
    """A check expression uses something outside the allowed subset."""


def safe_eval(expression: str, names: dict[str, Any]) -> Any:
    """Evaluate an arithmetic/comparison expression over `names`; CheckError on anything else."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise CheckError(f"not an expression: {exc.msg}") from None

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool | None):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise CheckError(f"unknown name {node.id!r} (allowed: {', '.join(sorted(names))})")
            return names[node.id]
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and isinstance(right, int | float) and abs(right) > 64:
                raise CheckError("exponent too large")
            if isinstance(node.op, ast.Mult) and (isinstance(left, str) or isinstance(right, str)):
                raise CheckError("string repetition is not allowed")
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
            return _UNOPS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.BoolOp):
            values = (ev(v) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                if type(op) not in _CMPOPS:
                    raise CheckError(f"comparison {type(op).__name__} is not allowed")
                right = ev(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        raise CheckError(f"{type(node).__name__} is not allowed in a check expression")

    return ev(tree)


def _as_number(answer: str | None) -> Any:
    if answer is None:
        return None
    a = normalize(answer)
    try:
        return int(a)
    except ValueError:
        try:
            return float(a)
        except ValueError:
            return a


def check_expression(expression: str, answer: str | None) -> bool:
    """Whether `answer` passes `expression`; False when the answer is missing or the arithmetic
    fails on it (a non-number, a division by zero); CheckError when the expression itself is bad."""
    if answer is None:
        return False
    try:
        return bool(safe_eval(expression, {"answer": _as_number(answer), "text": normalize(answer)}))
    except CheckError:
        raise
    except (TypeError, ValueError, ArithmeticError):
        return False


def load_function(ref: str) -> VerifyFn:
    """`package.module:function` -> the function; ConfigError naming what is wrong."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"verifier {ref!r}: use answer, check, or module:function")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"verifier {ref!r}: cannot import {module_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"verifier {ref!r}: {module_name} has no function {attr!r}")
    return fn


@register
class Verifier(ScoreSelect, Component):
    """A programmatic check per candidate: a score in [0, 1] (True = 1), a filter, a selector."""

    kind: Literal["verifier"] = "verifier"
    check: str = "answer"
    """`answer`, `check`, or `module:function` (see the module docstring)."""
    threshold: float = 0.5
    """`filter` keeps candidates scoring at least this."""
    fn: Callable[..., Any] | None = Field(None, exclude=True, repr=False)
    """A Python callable `(task, candidate) -> bool | float` (overrides `check`)."""

    @field_validator("check")
    @classmethod
    def _valid_check(cls, v: str) -> str:
        if v not in ("answer", "check") and ":" not in v:
            raise ValueError(f"unknown verifier {v!r}; use answer, check, or module:function")
        return v

    @classmethod
    def from_callable(cls, fn: VerifyFn, **config: Any) -> Verifier:
        return cls(fn=fn, check=f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', 'fn')}", **config)

    @classmethod
    def from_spec(cls, spec: str, **config: Any) -> Verifier:
        """From the `--verifier` CLI value."""
        try:
            return cls(check=spec, **config)
        except ValidationError as exc:
            raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None

    def _function(self) -> VerifyFn:
        if self.fn is not None:
            return self.fn
        if self.check == "answer":
            return _check_answer
        if self.check == "check":
            return _check_field
        return load_function(self.check)

    async def verify(self, task: Task, candidate: Candidate) -> float:
        out = self._function()(task, candidate)
        if inspect.isawaitable(out):
            out = await out
        if out is None:
            return 0.0
        return float(out)

    async def score(self, task: Task, candidates: list[Candidate], ctx: RunContext | None = None) -> list[float]:
        return list(await asyncio.gather(*(self.verify(task, c) for c in candidates)))

    async def filter(self, task: Task, candidates: list[Candidate], ctx: RunContext | None = None) -> list[Candidate]:
        """The candidates that pass (score >= threshold), in their order, each with its score set."""
        scores = await self.score(task, candidates, ctx)
        return [c.model_copy(update={"score": s}) for c, s in zip(candidates, scores, strict=True)
                if s >= self.threshold]


def _check_answer(task: Task, candidate: Candidate) -> bool:
    expected = task.metadata.get("expected", task.answer)
    if expected is None:
        raise TaskDataError(f"task {task.id!r} has no expected answer ('answer' or metadata 'expected')")
    return bool(is_correct(candidate.answer, str(expected)))


def _check_field(task: Task, candidate: Candidate) -> bool:
    expression = task.metadata.get("check")
    if not isinstance(expression, str):
        raise TaskDataError(f"task {task.id!r} has no 'check' expression in its metadata")
    try:
        return check_expression(expression, candidate.answer)
    except CheckError as exc:
        raise TaskDataError(f"task {task.id!r}: bad check expression {expression!r}: {exc}") from None
