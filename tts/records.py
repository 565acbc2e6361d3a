"""The shared records: every config, request, result and trace entry is one of these.

All are pydantic v2 models with `extra="forbid"`, so a misspelled field is an error, and all
round-trip through JSON. Records that are written to disk carry `format_version`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tts.tool_calls import check_turn

FORMAT_VERSION = 1

R = TypeVar("R", bound=BaseModel)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def trusted(cls: type[R], fields: dict[str, Any]) -> R:
    """An instance of `cls` from `fields` that tts built itself and knows to be valid (every field
    given, right types): no validation, about a tenth of its cost. The hot path (one record per
    call) uses it; whatever comes from outside (user input, a server's body, a file) is validated."""
    obj = _new(cls)
    _set_dict(obj, fields)
    _set_fields_set(obj, set(fields))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


_new = object.__new__  # and BaseModel's own slots set through their descriptors (its __setattr__ checks)
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[name].__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))


class Message(Record):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The OpenAI wire form, without unset fields (a fresh dict: the caller may change it)."""
        d = self.__dict__
        if d["tool_calls"] is None and type(d["content"]) is not list:  # plain text: no nested values to copy
            return {k: v for k, v in d.items() if v is not None}
        return self.model_dump(exclude_none=True)


class Usage(Record):
    """Tokens, calls and USD (at list price) of some model calls.

    The same record serves two views (see `RunResult`): what a result's answers *consumed* (every
    call they rest on, whether it was paid now or served from the cache: a cache hit carries the
    usage and cost of the call that made it) and what a run *paid* (cache hits excluded).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    """Model calls answered, cache hits included (those are also counted in `cached_calls`)."""
    cached_calls: int = 0
    """Of `calls`, how many were served from the cache (always 0 in a paid view)."""
    cost_usd: float = 0.0
    """USD at the model's list price; 0 for a call whose model has no known price."""
    unpriced_calls: int = 0
    """Calls whose model has no known price: their cost counts as 0."""
    cached_tokens: int = 0
    """Of `prompt_tokens`, those the provider read from its prompt cache (OpenAI
    `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`); 0 when not told."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, prompt_tokens: int = 0, completion_tokens: int = 0, calls: int = 0, cached_calls: int = 0,
           cost_usd: float = 0.0, unpriced_calls: int = 0, cached_tokens: int = 0) -> Usage:
        """A usage from figures tts computed itself (ints and a float): built without validation."""
        return trusted(cls, {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "calls": calls,
                             "cached_calls": cached_calls, "cost_usd": cost_usd, "unpriced_calls": unpriced_calls,
                             "cached_tokens": cached_tokens})

    def __add__(self, other: Usage) -> Usage:
        return Usage.total((self, other))

    @classmethod
    def total(cls, usages: Any) -> Usage:
        """The sum of `usages`, added up in plain numbers (one record at the end, not one per step)."""
        p = c = n = cc = up = ct = 0
        cost = 0.0
        for u in usages:
            p += u.prompt_tokens
            c += u.completion_tokens
            n += u.calls
            cc += u.cached_calls
            cost += u.cost_usd
            up += u.unpriced_calls
            ct += u.cached_tokens
        return cls.of(p, c, n, cc, cost, up, ct)

    def as_paid(self, cached: bool) -> Usage:
        """This usage in the paid view: nothing when it was served from the cache."""
        if cached:
            return Usage.of()
        return Usage.of(self.prompt_tokens, self.completion_tokens, self.calls, 0, self.cost_usd,
                        self.unpriced_calls, self.cached_tokens)


class TokenLogprob(Record):
    token: str
    logprob: float
    top_logprobs: list[dict[str, Any]] | None = None


class Completion(Record):
    text: str
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    cached: bool = False
    model: str | None = None
    sample_index: int = 0
    logprobs: list[TokenLogprob] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    stopped: bool = False  # a streamed reply its caller stopped (`ChatRequest.on_token`): usage = prompt + received


class Task(Record):
    id: str
    prompt: str | None = None
    messages: list[Message] | None = None
    answer: str | None = None
    """The reference answer, when one is known (used for `correct`, never shown to a model)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    """An agent turn (OpenAI's shapes): its tools, tool choice and `response_format` (a JSON schema)
    reach every call that answers the task (`tts.tool_calls.turn_params`)."""
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> Task:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a task needs exactly one of 'prompt' or 'messages'")
        check_turn(self)
        return self

    def as_messages(self) -> list[Message]:
        if self.messages is not None:
            return list(self.messages)
        return [Message(role="user", content=self.prompt)]

    @property
    def text(self) -> str:
        """The task as plain text, for templates that quote it."""
        if self.prompt is not None:
            return self.prompt
        return "\n\n".join(str(m.content) for m in self.messages or [] if m.role in ("system", "developer", "user"))


class Evidence(Record):
    """One piece of evidence, quoted not paraphrased: a command and its exit code, a test, an error."""

    kind: Literal["command", "test", "error", "output", "other"] = "other"
    quote: str
    exit_code: int | None = None


class TrajectorySummary(Record):
    """The shared representation every selector and refiner works on (docs/algorithms.md#trajectory-summary)."""

    format_version: int = FORMAT_VERSION
    source_id: str
    hypotheses: list[str] = Field(default_factory=list)
    approach: str = ""
    decisions: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    progress: str = ""
    failure_modes: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    final_answer: str | None = None
    final_patch: str | None = None
    status_claim: str = ""
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    """What it cost to make this summary."""
    length_tokens: int = 0
    """Approximate token length of the rendered summary."""


class Candidate(Record):
    """One attempt at a task: its text, extracted answer, summary, and scores."""

    id: str
    text: str
    answer: str | None = None
    summary: TrajectorySummary | None = None
    score: float | None = None
    usage: Usage = Field(default_factory=Usage)
    metadata: dict[str, Any] = Field(default_factory=dict)
    message: Message | None = None
    """The model's reply as it came, when it is more than text (tool calls): `text` then holds it
    rendered for judges and `answer` the call's canonical form; `tts serve` returns this intact."""


class Step(Record):
    """One agent step: what it did and what it saw."""

    thought: str = ""
    action: str = ""
    observation: str = ""
    exit_code: int | None = None


class Trajectory(Record):
    format_version: int = FORMAT_VERSION
    id: str
    task_id: str | None = None
    messages: list[Message] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    outcome: str | None = None
    """Exit status, e.g. `Submitted`, `LimitsExceeded`."""
    final_answer: str | None = None
    patch: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CallRecord(Record):
    """One model call as seen by a run: where in the strategy tree, what role, what it cost."""

    path: str
    role: str
    sample_index: int = 0
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    cached: bool = False
    started_s: float = 0.0  # seconds since the run started
    error: str | None = None
    stopped: bool = False  # a streamed reply its caller stopped: usage is the prompt plus the tokens received
    messages: list[Message] | None = None
    """What the call sent and what the model said (`reply`), when the run keeps content
    (`run_task(trace_content=True)`, `tts run --trace`)."""
    reply: str | None = None

    @property
    def paid(self) -> Usage:
        """What this call cost in this run: its usage, or nothing when the cache answered it."""
        return self.usage.as_paid(self.cached)


RunStatus = Literal["ok", "budget_exceeded", "cancelled", "timeout", "error"]
"""Why a run ended: `ok` (finished), `budget_exceeded` (a cap refused a call), `cancelled` (its
cancel event was set), `timeout` (its time limit ran out), `error` (a backend failure outlived its
retries). A run that did not finish still has an answer when it had any real candidate."""


class RunResult(Record):
    format_version: int = FORMAT_VERSION
    task_id: str
    strategy: str
    answer: str | None = None
    chosen: list[Candidate] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    """What the answers consumed: every call of the run, cache hits included, at list price. The
    same on a cold and on a warm cache, so accuracy-vs-tokens figures do not depend on it."""
    paid: Usage = Field(default_factory=Usage)  # what this run paid: `usage` without the cache's answers
    trace: list[CallRecord] = Field(default_factory=list)
    wall_s: float = 0.0
    correct: bool | None = None
    status: RunStatus = "ok"
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Strategy-specific figures, e.g. PDR's B_seq and B_total, a solver's lemma memory."""

    @property
    def best(self) -> Candidate | None:
        return self.chosen[0] if self.chosen else None

    # Notebook / rich display (tts/display/, imported lazily).
    def _repr_html_(self) -> str:
        from tts.display import results_html

        return results_html([self])

    def __rich__(self) -> Any:
        from tts.display import result_renderable

        return result_renderable(self)
