"""Agent trajectory -> bounded `TrajectorySummary` (algorithms.md §0).

`RuleTrajectorySummary` needs no model: the commands with their exit codes, the last errors, the
last test results, the files the patch touches, the exit status, the patch itself.
`LLMTrajectorySummary` shows a model the trajectory with every long observation trimmed (head and
tail kept) and the middle steps dropped past a budget, parses its JSON (with the shared repair
helpers), drops evidence quotes that do not occur in the trajectory, adds the rule-based evidence,
and always keeps the real patch: the judge compares what the agent actually submitted.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import ParseError
from tts.prompts import render
from tts.records import Candidate, Evidence, Message, Step, Task, Trajectory, TrajectorySummary, Usage
from tts.selectors.registry import Component, register_component
from tts.summarizers.render import approx_tokens, clip, render_summary

_TEST_LINE = re.compile(
    r"(^(PASSED|FAILED|ERROR)\s+\S+.*$)|(^=*\s*\d+ (passed|failed|errors?)\b.*$)"
    r"|(^\S+::\S+\s+(PASSED|FAILED|ERROR)\b.*$)|(^(Ran \d+ tests?|OK|FAILED \(.*\))$)", re.M)
_ERROR_LINE = re.compile(r"^.*(\b\w*(Error|Exception)\b|\b(error|fatal|ERROR|FATAL):).*$", re.M)
_DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/", re.M)


def files_in_patch(patch: str | None) -> list[str]:
    return list(dict.fromkeys(_DIFF_FILE.findall(patch or "")))


def command_evidence(steps: list[Step], last: int = 6, quote_chars: int = 240) -> list[Evidence]:
    """The last `last` commands, each quoted with its exit code and the tail of its output."""
    out = []
    for s in steps[-last:]:
        if not s.action:
            continue
        tail = "\n".join(s.observation.strip().splitlines()[-2:])
        quote = f"$ {clip(s.action, 160)}" + (f"\n{clip(tail, quote_chars)}" if tail else "")
        out.append(Evidence(kind="command", quote=quote, exit_code=s.exit_code))
    return out


def test_evidence(steps: list[Step], last: int = 3) -> list[Evidence]:
    """Test-result lines (pytest/unittest summaries, PASSED/FAILED lines) from the latest steps that have them."""
    found: list[Evidence] = []
    for s in reversed(steps):
        lines = [m.group(0).strip() for m in _TEST_LINE.finditer(s.observation)]
        if lines:
            found.append(Evidence(kind="test", quote=f"$ {clip(s.action, 120)}\n" + clip("\n".join(lines[-4:]), 400),
                                  exit_code=s.exit_code))
        if len(found) >= last:
            break
    return list(reversed(found))


def error_evidence(steps: list[Step], last: int = 2) -> list[Evidence]:
    """The last error lines seen in failing commands' output."""
    found: list[Evidence] = []
    for s in reversed(steps):
        if s.exit_code in (None, 0):
            continue
        lines = [m.group(0).strip() for m in _ERROR_LINE.finditer(s.observation)]
        if lines:
            found.append(Evidence(kind="error", quote=clip(lines[-1], 240), exit_code=s.exit_code))
        if len(found) >= last:
            break
    return list(reversed(found))


def _bound_patch(patch: str | None, max_chars: int) -> str | None:
    if not patch:
        return None
    return patch if len(patch) <= max_chars else clip(patch, max_chars)


@register_component
class RuleTrajectorySummary(Component):
    """No model call: evidence extracted from the trajectory, the patch kept."""

    kind: Literal["swe-rule-summary"] = "swe-rule-summary"
    max_tokens: int = Field(1200, ge=100)
    """Bound on the rendered summary (the patch is cut first when it is too long)."""
    commands: int = Field(6, ge=0)
    max_patch_chars: int = Field(3000, ge=200)

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext | None = None) -> TrajectorySummary:
        return self.summarize_trajectory(trajectory_of(candidate))

    def summarize_trajectory(self, traj: Trajectory) -> TrajectorySummary:
        steps = traj.steps
        files = files_in_patch(traj.patch)
        thoughts = [s.thought for s in steps if s.thought]
        failing = [s for s in steps if s.exit_code not in (None, 0)]
        summary = TrajectorySummary(
            source_id=traj.id,
            approach=clip(thoughts[0], 300) if thoughts else "",
            actions=[clip(s.action, 120) for s in steps if s.action][-8:],
            files_changed=files,
            evidence=[*error_evidence(steps), *test_evidence(steps), *command_evidence(steps, self.commands)],
            progress=f"{len(steps)} steps, {len(failing)} with a non-zero exit code",
            failure_modes=[] if traj.patch else ["no patch produced"],
            final_patch=_bound_patch(traj.patch, self.max_patch_chars),
            status_claim=f"exit status {traj.outcome or 'unknown'}; "
                         + (f"patch touches {', '.join(files)}" if files else "empty patch"),
            model=None,
        )
        return _finish(summary, self.max_tokens)


def _finish(summary: TrajectorySummary, max_tokens: int) -> TrajectorySummary:
    """Drop oldest evidence until the rendered summary fits (the patch and status stay)."""
    s = summary
    while approx_tokens(render_summary(s, 10 ** 6)) > max_tokens and len(s.evidence) > 1:
        s = s.model_copy(update={"evidence": s.evidence[1:]})
    return s.model_copy(update={"length_tokens": approx_tokens(render_summary(s, max_tokens))})


def trajectory_of(candidate: Candidate) -> Trajectory:
    """The trajectory a candidate carries in `metadata["trajectory"]` (a rollout's candidate)."""
    raw = candidate.metadata.get("trajectory")
    if isinstance(raw, Trajectory):
        return raw
    if isinstance(raw, dict):
        return Trajectory.model_validate(raw)
    return Trajectory(id=candidate.id, patch=candidate.text or None)


def render_trajectory(traj: Trajectory, *, obs_chars: int = 800, thought_chars: int = 400,
                      max_chars: int = 24000) -> str:
    """The trajectory as text for a summarizer: every observation trimmed to `obs_chars` (head and
    tail), and past `max_chars` the middle steps dropped with a marker (the first 2 and the last
    steps kept: the end of a run decides what was submitted)."""
    blocks = []
    for i, s in enumerate(traj.steps, 1):
        parts = [f"## Step {i}"]
        if s.thought:
            parts.append(f"Thought: {clip(s.thought, thought_chars)}")
        if s.action:
            parts.append(f"$ {clip(s.action, 600)}")
        code = "" if s.exit_code is None else f" (exit code {s.exit_code})"
        if s.observation or code:
            parts.append(f"Output{code}:\n{clip(s.observation, obs_chars)}")
        blocks.append("\n".join(parts))
    head, tail = blocks[:2], blocks[2:]
    size = sum(len(b) for b in head)
    kept: list[str] = []
    for b in reversed(tail):
        if size + len(b) > max_chars:
            break
        kept.append(b)
        size += len(b)
    dropped = len(tail) - len(kept)
    mid = [f"[... {dropped} steps omitted ...]"] if dropped else []
    body = "\n\n".join([*head, *mid, *reversed(kept)])
    end = f"\n\n# Exit status: {traj.outcome or 'unknown'}\n# Final patch:\n{traj.patch or '(none)'}"
    return body + end


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


@register_component
class LLMTrajectorySummary(Component):
    """A model call per trajectory (`use="summarizer"`, else the default backend); falls back to
    `RuleTrajectorySummary` when the reply cannot be parsed after `retries` re-asks."""

    kind: Literal["swe-llm-summary"] = "swe-llm-summary"
    use: str = "summarizer"
    temperature: float | None = 0.0
    max_tokens: int | None = 1200
    obs_chars: int = Field(800, ge=50)
    """Each observation is trimmed to this before the model sees it."""
    max_input_chars: int = Field(24000, ge=1000)
    max_items: int = Field(6, ge=1)
    max_item_chars: int = Field(300, ge=20)
    max_summary_tokens: int = Field(1500, ge=100)
    """Bound on the rendered summary, patch included."""
    max_patch_chars: int = Field(3000, ge=200)
    retries: int = Field(1, ge=0)
    fallback: RuleTrajectorySummary = Field(default_factory=RuleTrajectorySummary)

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext) -> TrajectorySummary:
        return await self.summarize_trajectory(task, trajectory_of(candidate), ctx)

    async def summarize_trajectory(self, task: Task, traj: Trajectory, ctx: RunContext) -> TrajectorySummary:
        from tts.summarizers.llm import parse_summary_json

        shown = render_trajectory(traj, obs_chars=self.obs_chars, max_chars=self.max_input_chars)
        prompt = render("swe_summarize.j2", self.prompts, task=clip(task.text, 4000), trajectory=shown,
                        max_items=self.max_items)
        messages = [Message(role="user", content=prompt)]
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        usage, model = Usage(), None
        for attempt in range(self.retries + 1):
            comp = await ctx.complete(messages, role="summarize", sample_index=attempt, use=self.use, **params)
            usage, model = usage + comp.usage, comp.model
            try:
                parsed = parse_summary_json(comp.text, traj.id)
            except ParseError as exc:
                messages = [*messages, Message(role="assistant", content=comp.text),
                            Message(role="user", content=render("summarize_retry.j2", self.prompts, error=str(exc)))]
                continue
            return self._bound(parsed, traj, shown).model_copy(update={"usage": usage, "model": model})
        return self.fallback.summarize_trajectory(traj).model_copy(update={"usage": usage})

    def _bound(self, s: TrajectorySummary, traj: Trajectory, shown: str) -> TrajectorySummary:
        cap, n = self.max_item_chars, self.max_items
        source = _squash(shown)
        quoted = [e.model_copy(update={"quote": clip(e.quote, cap)}) for e in s.evidence
                  if _squash(e.quote) and _squash(e.quote) in source][:n]
        # Extracted evidence (real exit codes) last, so a tight bound drops the model's quotes first.
        extracted = [*error_evidence(traj.steps, 1), *test_evidence(traj.steps, 1), *command_evidence(traj.steps, 3)]
        update: dict[str, Any] = {
            name: [clip(x, cap) for x in getattr(s, name)][:n]
            for name in ("hypotheses", "decisions", "actions", "failure_modes", "open_questions")
        }
        update.update(
            approach=clip(s.approach, cap * 2), progress=clip(s.progress, cap), status_claim=clip(s.status_claim, cap),
            evidence=[*quoted, *extracted], files_changed=files_in_patch(traj.patch) or s.files_changed[:n],
            final_patch=_bound_patch(traj.patch, self.max_patch_chars), final_answer=None,
        )
        return _finish(s.model_copy(update=update), self.max_summary_tokens)
