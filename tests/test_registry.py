"""The one registry: a user's strategy from a small module is reachable from Python, spec files,
`tts run` (flags made from its fields) and `tts show`; fields accept only their role; every
config error is a one-line ConfigError naming the role, the field and the allowed values."""

import json
import subprocess
import sys
import textwrap

import pytest

import tts
from tts.errors import ConfigError
from tts.registry import build, kinds, register
from tts.spec import strategy_from_spec

PLUGIN = textwrap.dedent('''
    from typing import Literal

    from pydantic import Field

    from tts import RunContext, RunResult, Strategy, Task, register


    @register
    class AskTwice(Strategy):
        """Two samples; the second one's answer."""

        kind: Literal["ask-twice"] = "ask-twice"
        repeats: int = Field(2, ge=1)
        """How many times to ask (the last answer counts)."""

        async def solve(self, task: Task, ctx: RunContext) -> RunResult:
            comps = await ctx.sample(task.as_messages(), self.repeats, role="sample")
            cands = [self.candidate(c, f"a{i}") for i, c in enumerate(comps)]
            return self.result(task, ctx, cands[-1:], cands)
''')


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    return tmp_path


def tts_cli(*argv, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "tts.cli.main", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=env)


def test_a_user_strategy_is_reachable_from_tts_run_spec_files_and_tts_show(plugin_dir):
    from tests.test_cli_run import start_server, stats

    proc, url = start_server()
    try:
        (plugin_dir / "tasks.jsonl").write_text(json.dumps({"id": "t0", "prompt": "What is 2 + 3?", "answer": "5"})
                                                + "\n")
        help_text = tts_cli("--plugin", "my_plugin", "run", "--help", cwd=plugin_dir).stdout
        assert "--repeats" in help_text and "How many times to ask" in help_text and "ask-twice" in help_text
        run = tts_cli("run", "tasks.jsonl", "--model", "sim", "--backend", "openai", "--api-base", url,
                      "--no-cache", "--out", "out.jsonl", "--trace", "trace.jsonl", "--quiet",
                      "--strategy", "ask-twice", "--repeats", "3",
                      "--plugin", "my_plugin", cwd=plugin_dir)
        assert run.returncode == 0, run.stderr
        row = json.loads((plugin_dir / "out.jsonl").read_text())
        assert row["strategy"] == "ask-twice" and row["usage"]["calls"] == 3 == stats(url)["ok"]
        # a spec file names it too (here from a .py path, not a module name)
        (plugin_dir / "spec.yaml").write_text("kind: self-consistency\nn: 2\ngenerator: {kind: ask-twice, "
                                              "repeats: 1}\n")
        spec_run = tts_cli("--plugin", str(plugin_dir / "my_plugin.py"), "run", "tasks.jsonl", "--model", "sim",
                           "--backend", "openai", "--api-base", url, "--no-cache", "--out", "spec.jsonl",
                           "--quiet", "--spec", "spec.yaml", cwd=plugin_dir)
        assert spec_run.returncode == 0, spec_run.stderr
        assert stats(url)["ok"] == 3 + 2
        shown = tts_cli("show", "trace.jsonl", cwd=plugin_dir)
        assert shown.returncode == 0 and "ask-twice" in shown.stdout, shown.stderr
    finally:
        proc.kill()
        proc.wait()


def test_unknown_plugins_and_kinds_are_one_line_errors(plugin_dir):
    bad = tts_cli("--plugin", "no_such_plugin", "run", "x.jsonl", "--model", "m", cwd=plugin_dir)
    assert bad.returncode == 2 and "cannot import plugin module 'no_such_plugin'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    (plugin_dir / "x.jsonl").write_text('{"id": "t", "prompt": "?"}\n')
    unknown = tts_cli("run", "x.jsonl", "--model", "m", "--strategy", "ask-twice", cwd=plugin_dir)
    assert unknown.returncode == 2 and "ask-twice" in unknown.stderr and "Traceback" not in unknown.stderr


def test_a_field_accepts_only_its_role():
    with pytest.raises(ConfigError, match=r"field 'generator': a strategy is needed here, got int"):
        tts.SelfConsistency(generator=5)
    with pytest.raises(ConfigError, match=r"field 'selector': a selector is needed here, got int"):
        tts.BestOfN(selector=5)
    with pytest.raises(ConfigError, match=r"field 'scorer': unknown scorer kind 'rtv'; allowed: .*verifier"):
        tts.WeightedVote(scorer="rtv")  # a selector, not a scorer: caught at config time, not at run time
    with pytest.raises(ConfigError, match=r"field 'summarizer': unknown summarizer kind 'majority'"):
        tts.RTV(summarizer="majority")
    assert isinstance(tts.BestOfN(selector="rtv").selector, tts.RTV)
    assert isinstance(tts.BestOfN(selector=tts.Verifier(check="answer")).selector, tts.Verifier)
    check = tts.Verifier(check="answer")
    assert tts.BestOfN(scorer=check).selector == tts.TopScore(scorer=check)


@pytest.mark.parametrize("make, message", [
    (lambda: tts.SelfConsistency(n=0),
     "strategy 'self-consistency': field 'n': Input should be greater than or equal to 1"),
    (lambda: tts.SolverGrader(grade_threshold=9), "grade_threshold must be in (0, 7"),
    (lambda: tts.RTV(votes="many"), "selector 'rtv': field 'votes'"),
    (lambda: tts.Verifier(check="oracle"), "unknown verifier 'oracle'"),
    (lambda: tts.SelfConsistency(weighted_by="weight"), "allowed: 'none', 'score'"),
    (lambda: strategy_from_spec({"kind": "rtv", "judge": {"use": 3}}),
     "strategy 'rtv': field 'selector': selector 'rtv': selector 'listwise-judge': field 'use'"),
    (lambda: build("selector", {"kind": "nope"}), "unknown selector kind 'nope'; allowed: "),
    (lambda: build("strategy", {"n": 3}), "a strategy spec needs a 'kind'; allowed: best-of-n"),
])
def test_every_config_error_is_a_one_line_config_error(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_register_needs_a_kind_and_refuses_a_taken_one():
    class NoKind(tts.Strategy):
        async def solve(self, task, ctx):  # pragma: no cover - never run
            raise AssertionError

    with pytest.raises(ConfigError, match="give it a kind field"):
        register(NoKind)
    from typing import Literal

    class Impostor(tts.Strategy):
        kind: Literal["pdr"] = "pdr"

    with pytest.raises(ConfigError, match=r"strategy kind 'pdr'.*ParallelDistillRefine has it"):
        register(Impostor)
    assert "pdr" in kinds("strategy") and tts.ParallelDistillRefine().name == "pdr"


def test_name_is_the_kind_everywhere():
    from tts.spec import strategy_class

    for kind in kinds("strategy"):
        assert strategy_class(kind)().name == kind


async def test_a_bad_check_expression_fails_its_task_not_the_run():
    from tts.testing import ScriptedBackend

    tasks = [tts.Task(id="good", prompt="an even number", metadata={"check": "answer % 2 == 0"}),
             tts.Task(id="bad", prompt="an even number", metadata={"check": "answer %% 2"})]
    strategy = tts.BestOfN(n=2, scorer=tts.Verifier(check="check"))
    results = await tts.run_many(strategy, tasks, ScriptedBackend(["ANSWER: 4"]))
    by_id = {r.task_id: r for r in results}
    assert by_id["good"].status == "ok" and by_id["good"].answer == "4"
    assert by_id["bad"].status == "error" and "task 'bad': bad check expression" in by_id["bad"].error
    assert by_id["bad"].usage.calls == 2  # the samples drawn before the check failed are counted
