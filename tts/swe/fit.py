"""A trajectory as text that fits a summarizer's room: the end kept, failing steps, the first and last
steps, observations trimmed; a note of what was cut."""

from __future__ import annotations

from tts.records import Step, Trajectory
from tts.summarizers.render import clip
from tts.swe.evidence import run_error


def _step_block(i: int, s: Step, obs_chars: int, thought_chars: int) -> str:
    parts = [f"## Step {i}"]
    if s.thought:
        parts.append(f"Thought: {clip(s.thought, thought_chars)}")
    if s.action:
        parts.append(f"$ {clip(s.action, 600)}")
    code = "" if s.exit_code is None else f" (exit code {s.exit_code})"
    if s.observation or code:
        parts.append(f"Output{code}:\n{clip(s.observation, obs_chars)}")
    return "\n".join(parts)


def fit_trajectory(traj: Trajectory, *, obs_chars: int = 800, thought_chars: int = 400,
                   max_chars: int = 24000) -> tuple[str, str]:
    """The trajectory as text for a summarizer within `max_chars`, and a note of what was cut ("" when
    nothing was). Kept first: the exit status, the run's error and the patch (cut to a third of the room
    when longer), then the last step, the failing steps, the first two and as many of the last steps as fit;
    observations are trimmed to `obs_chars` (head and tail), less when the room is small."""
    err = run_error(traj)
    patch, patch_cut = traj.patch or "(none)", ""
    if len(patch) > max_chars // 3:
        patch_cut = f"patch cut to {max_chars // 3} of {len(patch)} chars"
        patch = clip(patch, max_chars // 3)
    end = f"\n\n# Exit status: {traj.outcome or 'unknown'}" + (f"\n# Error: {err}" if err else "") \
        + f"\n# Final patch:\n{patch}"
    room = max_chars - len(end)
    text, note = "", ""
    for _ in range(4):  # the markers take room too: shrink until the whole text fits
        text, note = _fit_steps(traj, room, obs_chars, thought_chars, patch_cut)
        text += end
        if len(text) <= max_chars:
            break
        room -= len(text) - max_chars
    return text, note


def _fit_steps(traj: Trajectory, room: int, obs_chars: int, thought_chars: int, patch_cut: str) -> tuple[str, str]:
    n = len(traj.steps)
    cut: list[str] = []
    obs = max(80, min(obs_chars, room // max(4, min(n, 12)))) if n else obs_chars
    if obs < obs_chars:
        cut.append(f"outputs trimmed to {obs} chars")
    if patch_cut:
        cut.append(patch_cut)
    blocks = [_step_block(i, s, obs, min(thought_chars, obs)) for i, s in enumerate(traj.steps, 1)]
    keep: set[int] = set()
    size = 0

    def take(i: int) -> None:
        nonlocal size
        if i not in keep and size + len(blocks[i]) + 2 <= room:
            keep.add(i)
            size += len(blocks[i]) + 2

    if n:
        take(n - 1)
        for i in [i for i, s in enumerate(traj.steps) if s.exit_code not in (None, 0)][-3:]:
            take(i)
        for i in range(min(2, n)):
            take(i)
        for i in range(n - 2, -1, -1):
            if size + len(blocks[i]) + 2 > room:
                break
            take(i)
    dropped = n - len(keep)
    if dropped:
        cut.insert(0, f"{dropped} of {n} steps omitted")
    out: list[str] = []
    gap = 0
    for i in range(n):
        if i in keep:
            if gap:
                out.append(f"[... {gap} steps omitted ...]")
                gap = 0
            out.append(blocks[i])
        else:
            gap += 1
    if gap:
        out.append(f"[... {gap} steps omitted ...]")
    note = "; ".join(cut)
    head = f"[cut to fit the model's context: {note}]\n\n" if note else ""
    return head + "\n\n".join(out), note


def render_trajectory(traj: Trajectory, *, obs_chars: int = 800, thought_chars: int = 400,
                      max_chars: int = 24000) -> str:
    """`fit_trajectory`'s text."""
    return fit_trajectory(traj, obs_chars=obs_chars, thought_chars=thought_chars, max_chars=max_chars)[0]
