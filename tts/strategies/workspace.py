"""The bounded context shared by refinement strategies: count tokens cheaply, fit text under a bound,
and the short-answer workspace (distinct answers with their support, one rationale).

Tokens are counted as ceil(chars / 4) (the same counter as the summarizers); a workspace built
here never exceeds its bound under that counter.

The templates never add an answer format of their own: the task's instruction ("Answer with just
the number") stays in charge. Only a strategy whose `answer_format` asks for a marked answer
(`answer-line`, `boxed`) gets the one line that asks for it (`answer_instruction`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tts.records import Candidate, Message, Task
from tts.summarizers.render import CHARS_PER_TOKEN, approx_tokens, clip
from tts.summarizers.short import rationale

SHORT_AS = ("message", "turn")
"""Where a short workspace goes: in the user message before the task, or as an earlier turn."""

__all__ = ["SHORT_AS", "answer_instruction", "answer_support", "approx_tokens", "fit", "fit_answers", "fit_drafts",
           "with_context", "with_note", "with_turn"]

_INSTRUCTIONS = {
    "answer-line": "End your reply with one line of the form: Answer: <your final answer>",
    "boxed": "Put your final answer in \\boxed{}.",
}


def answer_instruction(answer_format: str) -> str:
    """The answer-format line for a strategy's `answer_format`: empty unless the format needs a
    marker the task may not ask for (answer-line, boxed)."""
    return _INSTRUCTIONS.get(answer_format, "")


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


def answer_support(pool: Sequence[Candidate], shown: Sequence[Candidate] | None = None) -> list[dict]:
    """[{"answer", "support"}] for the distinct answers of `shown` (default: all of `pool`), in
    the order they first appear there, each with how many candidates of `pool` gave it."""
    out: dict[str, int] = {}
    for c in shown if shown is not None else sorted(pool, key=lambda c: -sum(d.answer == c.answer for d in pool)):
        if c.answer is not None and c.answer not in out:
            out[c.answer] = sum(d.answer == c.answer for d in pool)
    return [{"answer": a, "support": n} for a, n in out.items()]


def fit_answers(pool: Sequence[Candidate], shown: Sequence[Candidate], max_tokens: int, rationale_tokens: int,
                render_answers: Callable[..., str]) -> str:
    """The short-answer workspace: the distinct answers of `shown` with their support in `pool`,
    then the shortest rationale among the drafts that gave the first of them, cut so the whole
    stays within `max_tokens`. `render_answers(answers=, total=, rationale=)` lays it out."""
    answers = answer_support(pool, shown)
    if not answers:
        return ""
    bare = render_answers(answers=answers, total=len(pool), rationale="")
    room = min(rationale_tokens, max_tokens - approx_tokens(bare) - 8)  # 8: the rationale line's label
    reasons = [rationale(c.text, c.answer, room) for c in pool  # a tool call or JSON answer is its own reason
               if c.answer == answers[0]["answer"] and not c.metadata.get("structured")] if room > 0 else []
    why = min((r for r in reasons if r), key=len, default="")
    return fit(render_answers(answers=answers, total=len(pool), rationale=why), max_tokens)


def with_context(task: Task, content: str) -> list[Message]:
    """The task's messages with the last user message replaced by `content` (which quotes it); after
    an agent's tool results (the conversation goes on past the user), `content` follows them."""
    msgs = task.as_messages()
    if msgs and msgs[-1].role == "tool":
        return [*msgs, Message(role="user", content=content)]
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].role == "user":
            msgs[i] = msgs[i].model_copy(update={"content": content})
            return msgs
    return [*msgs, Message(role="user", content=content)]


def with_turn(task: Task, said: str, content: str) -> list[Message]:
    """The task's messages, then `said` as the model's own reply, then `content` (which restates
    the task) as the next user message: a short workspace read as an earlier turn of the chat."""
    return [*task.as_messages(), Message(role="assistant", content=said), Message(role="user", content=content)]


def with_note(messages: list[Message], note: str) -> list[Message]:
    """`messages` with `note` as the system message (after an existing one's text), or unchanged
    when `note` is empty. A small model answers a task it sees verbatim far better than one
    buried under notes, so short-answer workspaces go here and the task stays as it was."""
    if not note:
        return messages
    if messages and messages[0].role == "system" and isinstance(messages[0].content, str):
        first = messages[0].model_copy(update={"content": f"{messages[0].content}\n\n{note}"})
        return [first, *messages[1:]]
    return [Message(role="system", content=note), *messages]


def last_user_text(task: Task) -> str:
    """What the templates quote as the task: the prompt, or the last user message."""
    if task.prompt is not None:
        return task.prompt
    for m in reversed(task.messages or []):
        if m.role == "user":
            return m.content if isinstance(m.content, str) else str(m.content)
    return task.text
