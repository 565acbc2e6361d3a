"""tts: test-time scaling strategies over any chat-completion backend.

Importing this package has no side effects: no prints, files, network or environment changes.
Heavy modules (litellm, aiohttp, rich) load only when first used. The agentic layer (SWE-bench,
Terminal-Bench: `AgenticPDR`, `MiniSweAgentRunner`, ...) is `tts.swe`, outside this namespace.
"""

from tts._lazy import lazy_exports as _lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it; resolved lazily so `import tts` stays cheap and quiet.
_EXPORTS: dict[str, str] = {
    # records
    "Message": "tts.records", "Usage": "tts.records", "Completion": "tts.records", "Task": "tts.records",
    "Candidate": "tts.records", "Trajectory": "tts.records", "TrajectorySummary": "tts.records",
    "RunResult": "tts.records", "CallRecord": "tts.records", "Evidence": "tts.records", "Step": "tts.records",
    # the contracts and the seam
    "Backend": "tts.contracts", "ChatRequest": "tts.seam", "AgentRunner": "tts.swe.runners",
    "TestWriter": "tts.contracts",
    "RunContext": "tts.context", "SamplingDefaults": "tts.context",
    # running
    "run_task": "tts.run", "run_many": "tts.run", "run_sync": "tts.run",
    "make_backend": "tts.build", "load_tasks": "tts.tasks",
    "TTSServer": "tts.serve.app",
    # experiments
    "compare": "tts.experiments.runner", "compare_sync": "tts.experiments.runner",
    "Comparison": "tts.experiments.table", "expand_grid": "tts.experiments.grid",
    # errors
    "TTSError": "tts.errors", "UsageError": "tts.errors", "ConfigError": "tts.errors",
    "TaskFileError": "tts.errors", "TaskDataError": "tts.errors", "MissingDependency": "tts.errors",
    "BackendError": "tts.errors",
    "TransientError": "tts.errors", "PermanentError": "tts.errors", "RateLimited": "tts.errors",
    "ServerError": "tts.errors", "CallTimeout": "tts.errors", "ConnectionFailed": "tts.errors",
    "MalformedResponse": "tts.errors", "AuthError": "tts.errors", "BudgetExceeded": "tts.errors",
    "ParseError": "tts.errors",
    # strategies
    "register": "tts.registry", "load_plugin": "tts.registry",
    "Strategy": "tts.strategies.base", "SingleSample": "tts.strategies.single",
    "GenerateSelect": "tts.strategies.generate_select",
    "SelfConsistency": "tts.strategies.self_consistency",
    "BestOfN": "tts.strategies.best_of_n", "ParallelDistillRefine": "tts.strategies.pdr",
    "SequentialRefinement": "tts.strategies.refine", "TournamentVoting": "tts.strategies.rtv",
    "SolverGrader": "tts.strategies.solver_grader", "ConjectureExtraction": "tts.strategies.conjectures",
    "GradeFormat": "tts.strategies.grading", "parse_grade": "tts.strategies.grading",
    "load_spec": "tts.spec", "strategy_from_spec": "tts.spec",
    # traces and display
    "TraceWriter": "tts.trace", "read_trace": "tts.trace", "show": "tts.display",
    # answers
    "extract_answer": "tts.answers", "is_correct": "tts.answers",
    # selectors and summarizers
    "Selector": "tts.contracts", "Scorer": "tts.contracts", "Summarizer": "tts.contracts",
    "Selection": "tts.selectors.selection", "TopScore": "tts.selectors.annotate",
    "MajorityVote": "tts.selectors.vote", "WeightedVote": "tts.selectors.vote",
    "ListwiseJudge": "tts.selectors.judge", "PointwiseJudge": "tts.selectors.judge",
    "Verifier": "tts.selectors.verifier", "RTV": "tts.selectors.tournament",
    "PessimisticVerification": "tts.selectors.pessimistic",
    "SelfCertainty": "tts.selectors.confidence", "ConfidenceVote": "tts.selectors.confidence",
    "PTrue": "tts.selectors.ptrue", "RPC": "tts.selectors.rpc", "B4": "tts.selectors.b4",
    "TestsVerifier": "tts.selectors.code_tests", "TestGenerator": "tts.selectors.code_tests",
    "run_tests": "tts.code.sandbox", "humaneval_tasks": "tts.code.humaneval",
    "ShortSummarizer": "tts.summarizers.short", "LLMSummarizer": "tts.summarizers.llm",
    "render_summary": "tts.summarizers.render",
    # backend wrappers and the scripted fake (tests, docs, offline notebooks)
    "AccountingBackend": "tts.wrappers.accounting", "CacheBackend": "tts.wrappers.cache",
    "RetryBackend": "tts.wrappers.retry", "ThrottleBackend": "tts.wrappers.throttle",
    "stack_wrappers": "tts.build", "ScriptedBackend": "tts.testing",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


__getattr__ = _lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
