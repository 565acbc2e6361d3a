"""Agent trajectory -> bounded `TrajectorySummary` (docs/algorithms.md#trajectory-summary).

`RuleTrajectorySummary` needs no model: the commands with their exit codes, the last errors, the
last test results, the files the patch touches, the exit status, the patch itself.
`LLMTrajectorySummary` shows a model the trajectory with every long observation trimmed (head and
tail kept) and the middle steps dropped past a budget, parses its JSON (with the shared repair
helpers), drops evidence quotes that do not occur in the trajectory, adds the rule-based evidence,
and always keeps the real patch: the judge compares what the agent actually submitted.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import BackendError, PermanentError
from tts.prompts import render
from tts.records import Candidate, Message, Task, Trajectory, TrajectorySummary, Usage
from tts.registry import Component, register
from tts.summarizers.llm import ModelSummarizer, ask_summary, squash
from tts.summarizers.render import CHARS_PER_TOKEN, approx_tokens, clip, render_summary
from tts.swe.evidence import (
    bound_patch,
    command_evidence,
    error_evidence,
    expects_patch,
    files_in_patch,
    run_error,
    run_error_evidence,
    test_evidence,
)
from tts.swe.fit import fit_trajectory, render_trajectory

__all__ = ["PROMPT_CHARS_PER_TOKEN", "LLMTrajectorySummary", "RuleTrajectorySummary", "command_evidence",
           "error_evidence", "expects_patch", "files_in_patch", "fit_trajectory", "render_trajectory", "run_error",
           "run_error_evidence", "test_evidence", "trajectory_of"]

log = logging.getLogger("tts.swe")


@register
class RuleTrajectorySummary(Component):
    """No model call: evidence extracted from the trajectory, the patch kept."""

    kind: Literal["swe-rule-summary"] = "swe-rule-summary"
    max_tokens: int = Field(1200, ge=100)
    """Bound on the rendered summary (evidence is dropped first, then the patch is cut)."""
    commands: int = Field(6, ge=0)
    max_patch_chars: int = Field(3000, ge=200)

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext | None = None) -> TrajectorySummary:
        return self.summarize_trajectory(trajectory_of(candidate))

    def summarize_trajectory(self, traj: Trajectory) -> TrajectorySummary:
        steps = traj.steps
        files = files_in_patch(traj.patch)
        thoughts = [s.thought for s in steps if s.thought]
        failing = [s for s in steps if s.exit_code not in (None, 0)]
        err = run_error(traj)
        failure_modes = [f"the run ended in an error: {clip(err, 200)}"] if err else []
        if not traj.patch and expects_patch(traj):
            failure_modes.append("no patch produced")
        if traj.metadata.get("format_errors"):
            failure_modes.append(f"{traj.metadata['format_errors']} replies rejected as format errors (not run)")
        summary = TrajectorySummary(
            source_id=traj.id,
            approach=clip(thoughts[0], 300) if thoughts else "",
            actions=[clip(s.action, 120) for s in steps if s.action][-8:],
            files_changed=files,
            evidence=[*error_evidence(steps), *run_error_evidence(traj), *test_evidence(steps),
                      *command_evidence(steps, self.commands)],
            progress=f"{len(steps)} steps, {len(failing)} with a non-zero exit code",
            failure_modes=failure_modes,
            final_patch=bound_patch(traj.patch, self.max_patch_chars),
            status_claim=f"exit status {traj.outcome or 'unknown'}; "
                         + (f"patch touches {', '.join(files)}" if files else
                            "empty patch" if expects_patch(traj) else "no patch (terminal task)"),
            model=None,
        )
        return _finish(summary, self.max_tokens)


_DROP_ORDER = ("command", "output", "other", "test", "error")
"""Which evidence goes first when a summary is over its bound: plain commands before test results and errors."""


def _size(s: TrajectorySummary) -> int:
    return approx_tokens(render_summary(s, 10 ** 6))


def _finish(summary: TrajectorySummary, max_tokens: int) -> TrajectorySummary:
    """Fit the rendered summary in `max_tokens`: drop evidence (oldest plain commands first, errors
    last), then older actions, then cut the patch (head and tail kept, marked). Status stays."""
    s = summary
    for kind in _DROP_ORDER:
        while _size(s) > max_tokens and any(e.kind == kind for e in s.evidence):
            i = next(i for i, e in enumerate(s.evidence) if e.kind == kind)
            s = s.model_copy(update={"evidence": s.evidence[:i] + s.evidence[i + 1:]})
    while _size(s) > max_tokens and s.actions:
        s = s.model_copy(update={"actions": s.actions[1:]})
    if _size(s) > max_tokens and s.final_patch:
        over = (_size(s) - max_tokens) * CHARS_PER_TOKEN + 16
        s = s.model_copy(update={"final_patch": clip(s.final_patch, max(40, len(s.final_patch) - over))})
    for name in ("approach", "progress", "status_claim"):  # a pathological model reply
        while _size(s) > max_tokens and len(getattr(s, name)) > 80:
            s = s.model_copy(update={name: clip(getattr(s, name), len(getattr(s, name)) // 2)})
    for name in ("hypotheses", "decisions", "failure_modes", "open_questions", "files_changed"):
        while _size(s) > max_tokens and getattr(s, name):
            s = s.model_copy(update={name: getattr(s, name)[:-1]})
    return s.model_copy(update={"length_tokens": min(_size(s), max_tokens)})


def trajectory_of(candidate: Candidate) -> Trajectory:
    """The trajectory a candidate carries in `metadata["trajectory"]` (a rollout's candidate)."""
    raw = candidate.metadata.get("trajectory")
    if isinstance(raw, Trajectory):
        return raw
    if isinstance(raw, dict):
        return Trajectory.model_validate(raw)
    return Trajectory(id=candidate.id, patch=candidate.text or None)


_CONTEXT_ERROR = re.compile(r"context|too long|exceed|maximum.*tokens|too many tokens", re.I)
PROMPT_CHARS_PER_TOKEN = 3
"""Chars per token assumed when fitting a prompt in a context window (code tokenizes worse than prose)."""


@register
class LLMTrajectorySummary(ModelSummarizer):
    """A model call per trajectory (`use="summarizer"`, else the default backend), through the core's
    summary loop (`tts.summarizers.llm.ask_summary`: parse, repair, re-ask). The prompt is cut to
    fit the model's context window (`context_tokens`, else asked of the backend: see
    `tts.swe.context_window`); a reply that cannot be parsed after `retries` re-asks, or any model
    error, falls back to `RuleTrajectorySummary` with one warning (logger `tts.swe`)."""

    kind: Literal["swe-llm-summary"] = "swe-llm-summary"
    max_tokens: int | None = 1200
    obs_chars: int = Field(800, ge=50)
    """Each observation is trimmed to this before the model sees it."""
    max_input_chars: int = Field(24000, ge=1000)
    context_tokens: int | None = Field(None, ge=256)
    """The model's context window in tokens; None: ask the backend (unknown: only `max_input_chars` bounds)."""
    max_summary_tokens: int = Field(1500, ge=100)
    """Bound on the rendered summary, patch included."""
    max_patch_chars: int = Field(3000, ge=200)
    fallback: RuleTrajectorySummary = Field(default_factory=RuleTrajectorySummary)

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext) -> TrajectorySummary:
        return await self.summarize_trajectory(task, trajectory_of(candidate), ctx)

    async def _budget(self, task: Task, ctx: RunContext) -> tuple[int, int | None, int]:
        """(max trajectory chars, max completion tokens, max task chars) for this model's context."""
        window = self.context_tokens
        if window is None:
            from tts.swe.context_window import context_window

            window = await context_window(ctx.backends.get(self.use) or ctx.backends["default"])
        if window is None:
            return self.max_input_chars, self.max_tokens, 4000
        reply = min(self.max_tokens or window // 4, window // 4)  # a summary needs a few hundred tokens
        empty = render("swe_summarize.j2", self.prompts, task="", trajectory="", max_items=self.max_items)
        room = (window - reply - 32) * PROMPT_CHARS_PER_TOKEN - len(empty)  # 32: the chat template's tokens
        task_chars = max(200, min(4000, room // 4))
        return max(400, min(self.max_input_chars, room - task_chars)), reply, task_chars

    async def summarize_trajectory(self, task: Task, traj: Trajectory, ctx: RunContext) -> TrajectorySummary:
        max_chars, reply_tokens, task_chars = await self._budget(task, ctx)
        params = self.call_params(reply_tokens)
        shrunk = False
        while True:
            shown, note = fit_trajectory(traj, obs_chars=self.obs_chars, max_chars=max_chars)
            try:
                parsed, usage, model, _ = await ask_summary(
                    ctx, [self._prompt(task, shown, task_chars)], traj.id, use=self.use, params=params,
                    tries=self.retries + 1, prompts=self.prompts)
            except BackendError as exc:
                if not shrunk and isinstance(exc, PermanentError) and _CONTEXT_ERROR.search(str(exc)):
                    shrunk, max_chars, task_chars = True, max(400, max_chars // 2), max(200, task_chars // 2)
                    continue  # once, with half the room
                return self._fall_back(traj, Usage(), f"{type(exc).__name__}: {exc}")
            if parsed is None:
                return self._fall_back(traj, usage, f"the reply could not be parsed after {self.retries + 1} tries")
            out = self._bound(parsed, traj, shown)
            if note:
                out = out.model_copy(update={"progress": clip(f"{out.progress} [summarized from a cut trajectory: "
                                                              f"{note}]".strip(), self.max_item_chars * 2)})
                out = _finish(out, self.max_summary_tokens)
            return out.model_copy(update={"usage": usage, "model": model})

    def _prompt(self, task: Task, shown: str, task_chars: int) -> Message:
        return Message(role="user", content=render("swe_summarize.j2", self.prompts, task=clip(task.text, task_chars),
                                                   trajectory=shown, max_items=self.max_items))

    def _fall_back(self, traj: Trajectory, usage: Usage, why: str) -> TrajectorySummary:
        log.warning("summary of %s: %s; using the rule summary instead", traj.id, squash(why)[:300])
        return self.fallback.summarize_trajectory(traj).model_copy(update={"usage": usage})

    def _bound(self, s: TrajectorySummary, traj: Trajectory, shown: str) -> TrajectorySummary:
        cap, n = self.max_item_chars, self.max_items
        source = squash(shown)
        quoted = [e.model_copy(update={"quote": clip(e.quote, cap)}) for e in s.evidence
                  if squash(e.quote) and squash(e.quote) in source][:n]
        # Extracted evidence (real exit codes) last, so a tight bound drops the model's quotes first.
        extracted = [*error_evidence(traj.steps, 1), *run_error_evidence(traj), *test_evidence(traj.steps, 1),
                     *command_evidence(traj.steps, 3)]
        update: dict[str, Any] = {
            name: [clip(x, cap) for x in getattr(s, name)][:n]
            for name in ("hypotheses", "decisions", "actions", "failure_modes", "open_questions")
        }
        update.update(
            approach=clip(s.approach, cap * 2), progress=clip(s.progress, cap), status_claim=clip(s.status_claim, cap),
            evidence=[*quoted, *extracted], files_changed=files_in_patch(traj.patch) or s.files_changed[:n],
            final_patch=bound_patch(traj.patch, self.max_patch_chars), final_answer=None,
        )
        return _finish(s.model_copy(update=update), self.max_summary_tokens)
