"""The bounded context shared by refinement strategies: count tokens cheaply, fit text under a bound.

Tokens are counted as ceil(chars / 4) (the same counter as the summarizers); a workspace built
here never exceeds its bound under that counter.
"""

from __future__ import annotations

from tts.records import Message, Task
from tts.summarizers.render import CHARS_PER_TOKEN, approx_tokens, clip

__all__ = ["approx_tokens", "fit", "fit_drafts", "with_context"]


def fit(text: str, max_tokens: int) -> str:
    """`text` cut (head and tail kept) so that `approx_tokens(result) <= max_tokens`."""
    return clip(text, max_tokens * CHARS_PER_TOKEN)


def fit_drafts(texts: list[str], max_tokens: int, render_list) -> str:
    """Several drafts in one workspace: each gets an equal share of the bound after the fixed
    overhead of `render_list` (a function of a list of texts), then the whole is cut to the bound."""
    if not texts:
        return ""
    overhead = len(render_list(["" for _ in texts]))
    share = max(0, (max_tokens * CHARS_PER_TOKEN - overhead) // len(texts))
    return fit(render_list([clip(t, share) for t in texts]), max_tokens)


def with_context(task: Task, content: str) -> list[Message]:
    """The task's messages with the last user message replaced by `content` (which quotes it)."""
    msgs = task.as_messages()
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].role == "user":
            msgs[i] = msgs[i].model_copy(update={"content": content})
            return msgs
    return [*msgs, Message(role="user", content=content)]


def last_user_text(task: Task) -> str:
    """What the templates quote as the task: the prompt, or the last user message."""
    if task.prompt is not None:
        return task.prompt
    for m in reversed(task.messages or []):
        if m.role == "user":
            return m.content if isinstance(m.content, str) else str(m.content)
    return task.text
