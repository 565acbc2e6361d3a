"""Spec files (YAML/JSON, nested, extra="forbid") and the `tts run` strategy flags."""

import argparse
import json

import pytest

from tts.cli.main import OneLineParser
from tts.cli.strategy_flags import add_strategy_flags, build_strategy
from tts.errors import ConfigError
from tts.records import Task
from tts.run import run_task
from tts.selectors.tournament import RTV
from tts.selectors.verifier import Verifier
from tts.spec import load_spec, strategy_from_spec
from tts.strategies import (
    BestOfN,
    ParallelDistillRefine,
    SelfConsistency,
    SequentialRefinement,
    SingleSample,
    TournamentVoting,
)
from tts.testing import ScriptedBackend

REPLY = "thinking\nAnswer: 5\nWINNER: 1"
YAML_SPEC = """
kind: rtv
n: 4
votes: 2
generator:
  kind: pdr
  drafts: [3, 1]
  distill: top-k
  k: 2
  selector: {kind: rtv, votes: 1}
"""


async def test_yaml_spec_builds_the_nested_strategy_and_runs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(YAML_SPEC)
    strat = load_spec(path)
    assert isinstance(strat, TournamentVoting) and isinstance(strat.generator, ParallelDistillRefine)
    assert isinstance(strat.generator.selector, RTV) and strat.generator.selector.votes == 1
    be = ScriptedBackend([REPLY])
    res = await run_task(strat, Task(id="a", prompt="2 + 3?"), be)
    # 4 PDR runs x (3 drafts + 1 select-2-of-3 vote + 1 final draft) + 3 matches x 2 votes
    assert be.calls == 4 * 5 + 6 and res.answer == "5"


async def test_json_spec_round_trips(tmp_path):
    strat = SelfConsistency(n=3, generator=BestOfN(n=2, scorer=Verifier(check="answer")))
    path = tmp_path / "s.json"
    path.write_text(strat.model_dump_json())
    again = load_spec(path)
    assert again == strat
    be = ScriptedBackend([REPLY])
    res = await run_task(again, Task(id="a", prompt="2 + 3?", answer="5"), be)
    assert be.calls == 6 and res.correct


@pytest.mark.parametrize("spec,message", [
    ({"kind": "pdr", "draft": 3}, "strategy 'pdr': field 'draft': unknown field"),
    ({"kind": "pdx"}, "unknown strategy kind 'pdx'; allowed: best-of-n"),
    ({"kind": "pdr", "distill": "everything"}, "field 'distill': Input should be 'summary', 'top-k' or 'random-k'"),
    ({"kind": "rtv", "votes": 0}, "field 'votes': Input should be greater than or equal to 1"),
    ({"kind": "rtv", "generator": {"kind": "pdr", "kappa": "big"}}, "strategy 'pdr': field 'kappa'"),
    ({"kind": "best-of-n", "selector": {"kind": "rtv", "vote": 3}}, "selector 'rtv': field 'vote': unknown field"),
    ({"kind": "best-of-n", "scorer": {"kind": "nope"}}, "unknown scorer kind 'nope'; allowed:"),
    ({"kind": "pdr", "drafts": [4, 2]}, "end the list with 1"),
])
def test_bad_specs_give_one_line_naming_the_field(spec, message):
    with pytest.raises(ConfigError) as info:
        strategy_from_spec(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_spec_files(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_spec(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="cannot read spec file"):
        load_spec(tmp_path / "missing.yaml")


def test_prompt_override_by_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_refine.j2").write_text("REFINE {{ previous }}")
    strat = SequentialRefinement(rounds=2, prompts={"refine.j2": "my_refine.j2"})
    be = ScriptedBackend(["Answer: 4"])
    import asyncio

    asyncio.run(run_task(strat, Task(id="a", prompt="2 + 3?"), be))
    assert be.requests[1].messages[-1].content == "REFINE Answer: 4"


# -- CLI flags ----------------------------------------------------------------------------------
def parse(*argv):
    p = OneLineParser(prog="tts run")
    add_strategy_flags(p)
    return build_strategy(p.parse_args(list(argv)))


def test_flags_build_each_strategy():
    assert parse() == SingleSample()
    assert parse("--strategy", "rtv", "--n", "16", "--group-size", "2", "--votes", "8") == \
        TournamentVoting(n=16, group_size=2, votes=8)
    assert parse("--strategy", "self-consistency", "--n", "5", "--answer-format", "last-number") == \
        SelfConsistency(n=5, answer_format="last-number", generator=SingleSample(answer_format="last-number"))
    assert parse("--strategy", "best-of-n", "--n", "4", "--verifier", "answer") == \
        BestOfN(n=4, scorer=Verifier(check="answer"))
    assert parse("--strategy", "best-of-n").selector.kind == "listwise-judge"
    assert parse("--strategy", "sequential-refinement", "--rounds", "4", "--kappa", "300", "--critique") == \
        SequentialRefinement(rounds=4, kappa=300, critique=True)
    assert parse("--strategy", "sequential-refinement", "--verifier", "check").stop_at == 1.0
    pdr = parse("--strategy", "pdr", "--drafts", "8,4,1", "--distill", "top-k", "--select-k", "2",
                "--group-size", "2", "--votes", "4")
    assert pdr == ParallelDistillRefine(drafts=[8, 4, 1], distill="top-k", k=2, selector=RTV(group_size=2, votes=4))
    assert parse("--strategy", "pdr", "--drafts", "6", "--rounds", "2").schedule == [6, 1]
    assert parse("--strategy", "pdr", "--distill", "top-k", "--verifier", "answer").selector == Verifier()


@pytest.mark.parametrize("argv,message", [
    (["--strategy", "single", "--n", "3"], "--n does not apply to --strategy single"),
    (["--strategy", "rtv", "--rounds", "3"], "--rounds does not apply to --strategy rtv"),
    (["--strategy", "self-consistency", "--verifier", "answer"], "--verifier does not apply"),
    (["--strategy", "pdr", "--n", "3"], "use --drafts"),
    (["--strategy", "pdr", "--votes", "3"], "--votes applies to pdr only with --distill top-k"),
    (["--strategy", "pdr", "--select-k", "3"], "--select-k applies to pdr only with --distill"),
    (["--strategy", "pdx"], "unknown --strategy 'pdx'; allowed: best-of-n"),
    (["--strategy", "best-of-n", "--verifier", "nonsense"], "unknown verifier 'nonsense'"),
    (["--strategy", "rtv", "--votes", "0"], "field 'votes'"),
    (["--strategy", "pdr", "--drafts", "4,2"], "end the list with 1"),
])
def test_flag_misfits_are_one_line_config_errors(argv, message):
    with pytest.raises(ConfigError) as info:
        parse(*argv)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_spec_file_and_a_strategy_flag_is_an_error_naming_both(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"kind": "pdr", "drafts": [2, 1]}))
    assert parse("--spec", str(path)) == ParallelDistillRefine(drafts=[2, 1])
    for flag in (["--strategy", "rtv"], ["--n", "3"], ["--kappa", "64"]):
        with pytest.raises(ConfigError, match=f"--spec {path} and {flag[0]} both set the strategy"):
            parse("--spec", str(path), *flag)


def test_bad_drafts_flag_is_an_argparse_error(capsys):
    p = OneLineParser(prog="tts run")
    add_strategy_flags(p)
    with pytest.raises(SystemExit):
        p.parse_args(["--drafts", "8,x"])
    assert "expected a number or a list like 8,4,1" in capsys.readouterr().err
    assert isinstance(p, argparse.ArgumentParser)


def test_tts_run_rtv_flags_make_16_samples_and_120_judge_calls_over_http(tmp_path, capsys):
    """`tts run --strategy rtv --n 16 --group-size 2 --votes 8` on one task, counted at the server
    and in the trace; then `tts show` prints the trace."""
    import subprocess
    import sys
    import urllib.request

    from tts.cli.main import main
    from tts.trace import read_trace

    proc = subprocess.Popen([sys.executable, "-m", "tts.testing", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip().split()[-1]
        tasks = tmp_path / "tasks.jsonl"
        tasks.write_text(json.dumps({"id": "t0", "prompt": "What is 2 + 3?", "answer": "5"}) + "\n")
        code = main(["run", str(tasks), "--model", "sim", "--backend", "openai", "--api-base", url, "--no-cache",
                     "--quiet", "--out", str(tmp_path / "out.jsonl"), "--trace", str(tmp_path / "trace.jsonl"),
                     "--strategy", "rtv", "--n", "16", "--group-size", "2", "--votes", "8"])
        assert code == 0, capsys.readouterr().err
        with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as r:
            assert json.load(r)["requests"] == 136
    finally:
        proc.kill()
        proc.wait()
    trace = read_trace(tmp_path / "trace.jsonl")
    roles = [c.role for c in trace.calls]
    assert roles.count("sample") == 16 and roles.count("judge") == 120 and len(roles) == 136
    assert trace.results[0].correct is True
    capsys.readouterr()
    assert main(["show", str(tmp_path / "trace.jsonl")]) == 0
    assert "rtv  136 calls" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["rtv_over_pdr.yaml", "pdr_summary.json"])
async def test_example_spec_files_load_and_run(name):
    from pathlib import Path

    strat = load_spec(Path(__file__).resolve().parents[1] / "examples" / "specs" / name)
    res = await run_task(strat, Task(id="a", prompt="2 + 3?", answer="5"), ScriptedBackend([REPLY]))
    assert res.status == "ok" and res.answer == "5"
