"""The swe layer on real saved agent runs we did not write (../shared/swe-real, see its SOURCES.md):
each failure of issue 10 as a test, properties over every real file, and every broken variant
through the CLI (one line, exit 2). Skipped, with the reason, when ../shared/swe-real is absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tts.cli.main import main
from tts.errors import UsageError
from tts.records import Trajectory
from tts.summarizers.render import approx_tokens, render_summary
from tts.swe import summarize as swe_summarize
from tts.swe.readers import read_atif, read_mswea, read_runs, read_terminus, read_trajectory
from tts.swe.summarize import RuleTrajectorySummary

REAL = Path(__file__).resolve().parents[2] / "shared" / "swe-real"
DATA, BROKEN = REAL / "data", REAL / "broken"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real agent runs not found at {REAL} "
                                "(the project's ../shared/swe-real)")

MSWEA11 = DATA / "mswea-1.1"
GEMINI = DATA / "mswea-1" / "batch_gemini3pro"
REASONER = MSWEA11 / "batch_deepseek_reasoner"
ATIF = sorted((DATA / "atif").glob("*.json")) if DATA.is_dir() else []
TERMINUS2 = [p for p in ATIF if p.name.startswith("terminus_2")]


def real_paths() -> list[Path]:
    """Every real saved run as a user would pass it: batch dirs, single files, trial dirs."""
    if not DATA.is_dir():
        return []
    return [REASONER, GEMINI, MSWEA11 / "astropy__astropy-12907.traj.json",
            *sorted(MSWEA11.glob("deepseek_*/*.traj.json")),
            DATA / "mswea-1" / "harbor_rfc_mini-swe-agent-trajectory.json",
            DATA / "mswea-list" / "github_issue.traj.json", *ATIF, *sorted((DATA / "terminus-1").iterdir())]


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code, err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


# -- each numbered failure of the issue -----------------------------------------------------------------
def test_1_bare_message_list_null_and_non_list_steps():
    path = DATA / "mswea-list" / "github_issue.traj.json"
    raw = json.loads(path.read_text())
    t = read_trajectory(path)
    assert t.metadata["format"] == "mini-swe-agent-list" and t.task_id == "github_issue"
    assert len(t.steps) == sum(1 for m in raw if m["role"] == "assistant") == 10
    assert t.steps[0].action.startswith("cat /Users/fuchur/") and t.steps[0].exit_code == 1
    assert t.outcome == "Submitted" and t.patch == raw[-1]["content"]  # what the submit command printed
    with pytest.raises(UsageError, match=r"null\.json: the JSON is null; expected a mini-swe-agent trajectory"):
        read_trajectory(BROKEN / "null.json")
    with pytest.raises(UsageError, match=r"atif_steps_not_list\.json: 'steps' is int; expected a list"):
        read_trajectory(BROKEN / "atif_steps_not_list.json")


@pytest.mark.parametrize("path", TERMINUS2, ids=lambda p: p.stem)
def test_2_atif_observations_without_source_call_id_are_matched_by_position(path):
    raw = json.loads(path.read_text())
    outputs = [r["content"] for s in raw["steps"] if s["source"] == "agent"
               for r in (s.get("observation") or {}).get("results", []) if "content" in r]
    t = read_atif(path)
    results = [r for s in raw["steps"] for r in (s.get("observation") or {}).get("results", [])]
    assert not any(r.get("source_call_id") for r in results)
    assert [s.observation for s in t.steps] == outputs  # every tool output kept, in order
    assert all(s.observation for s in t.steps)


def test_2_all_fourteen_terminus2_outputs_are_kept():
    assert sum(sum(1 for s in read_atif(p).steps if s.observation) for p in TERMINUS2) == 14


def test_3_a_reply_rejected_as_a_format_error_makes_no_step():
    path = GEMINI / "psf__requests-2317" / "psf__requests-2317.traj.json"
    raw = json.loads(path.read_text())["messages"]
    rejected = next(i for i, m in enumerate(raw) if m["role"] == "user" and "EXACTLY ONE action" in m["content"])
    t = read_mswea(path)
    assert t.metadata["format_errors"] == 1
    assert not any("EXACTLY ONE action" in s.observation for s in t.steps)
    two = re.findall(r"```bash\s*\n(.*?)\n```", raw[rejected - 1]["content"], re.S)
    assert len(two) == 2 and two[0].strip() not in [s.action for s in t.steps]
    # one step per executed command: every later user message is an output, but the format error
    assert len(t.steps) == sum(1 for m in raw[2:] if m["role"] == "user") - 1 == 32


def test_4_reasoning_content_is_the_thought():
    path = REASONER / "sqlfluff__sqlfluff-2419" / "sqlfluff__sqlfluff-2419.traj.json"
    raw = [m for m in json.loads(path.read_text())["messages"] if m["role"] == "assistant"]
    t = read_mswea(path)
    assert len(t.steps) == len(raw) == 55
    assert sum(1 for s in t.steps if s.thought) == sum(1 for m in raw if m.get("reasoning_content")) == 54
    assert t.steps[0].thought == raw[0]["reasoning_content"].strip()
    approach = RuleTrajectorySummary().summarize_trajectory(t).approach
    assert approach and approach.startswith("I'll start by exploring the codebase")


def test_5_atif_runs_of_one_task_group_together(tmp_path, capsys):
    ids = {read_atif(p).task_id for p in ATIF}
    sessions = {json.loads(p.read_text())["session_id"] for p in ATIF}
    assert len(ids) == 1 and not ids & sessions  # the task, not the session
    code, out, err = run_cli(["swe", "import", *ATIF, "--run-dir", tmp_path / "r"], capsys)
    assert code == 0, err
    assert f"imported {len(ATIF)} rollouts of 1 instance" in out
    (iid,) = ids
    assert len(list((tmp_path / "r" / "rollouts" / iid).glob("round0-*.json"))) == len(ATIF)


def test_5_a_harbor_trial_result_names_the_task(tmp_path):
    trial = tmp_path / "hello-world__AbC123"
    (trial / "agent").mkdir(parents=True)
    (trial / "agent" / "trajectory.json").write_text(TERMINUS2[0].read_text())
    (trial / "result.json").write_text(json.dumps({"task_name": "hello-world", "trial_name": trial.name}))
    assert read_trajectory(trial / "agent" / "trajectory.json").task_id == "hello-world"


def test_6_import_is_idempotent_and_counts_what_it_added(tmp_path, capsys):
    rd = tmp_path / "r"
    one = DATA / "mswea-list" / "github_issue.traj.json"
    code, out, _ = run_cli(["swe", "import", one, "--run-dir", rd], capsys)
    assert code == 0 and "imported 1 rollout of 1 instance into" in out
    code, out, _ = run_cli(["swe", "import", one, "--run-dir", rd], capsys)
    assert code == 0 and "imported 0 rollouts of 0 instances" in out and "(1 already there, skipped)" in out
    assert len(list((rd / "rollouts").glob("*/*.json"))) == 1
    code, out, err = run_cli(["swe", "preds", "--run-dir", rd, "--model-name", "m"], capsys)
    assert code == 0 and "1 predictions written" in out, err
    # a batch and then one more rollout of an instance in it: only that one is added
    run_cli(["swe", "import", REASONER, "--run-dir", rd], capsys)
    code, out, _ = run_cli(["swe", "import", REASONER, MSWEA11 / "deepseek_chat_dev_rerun" /
                            "sqlfluff__sqlfluff-2419.traj.json", "--run-dir", rd], capsys)
    assert "imported 1 rollout of 1 instance" in out and "(4 already there, skipped)" in out
    assert len(list((rd / "rollouts" / "sqlfluff__sqlfluff-2419").glob("*.json"))) == 2


def test_7_unittest_and_django_runner_results_are_test_evidence():
    t = read_mswea(GEMINI / "django__django-10999" / "django__django-10999.traj.json")
    quotes = "\n".join(e.quote for e in swe_summarize.test_evidence(t.steps, last=10))
    assert "Ran 12 tests in 0.119s" in quotes and "\nOK" in quotes
    summary = RuleTrajectorySummary().summarize_trajectory(t)
    assert any(e.kind == "test" and re.search(r"^Ran \d+ tests in [\d.]+s$", e.quote, re.M) for e in summary.evidence)


@pytest.mark.parametrize("name,needle", [("batch_bad_preds", "preds.json: not valid JSON"),
                                         ("terminus_bad_results", "results.json: not valid JSON")])
def test_9_malformed_preds_or_results_is_one_line(tmp_path, capsys, name, needle):
    code, _, err = run_cli(["swe", "import", BROKEN / name, "--run-dir", tmp_path / "r"], capsys)
    assert needle in one_line_error(code, err)
    assert not (tmp_path / "r" / "rollouts").exists()  # nothing half-imported


def test_10_a_flat_directory_names_the_layout_it_expects(tmp_path, capsys):
    code, _, err = run_cli(["swe", "import", BROKEN / "flat_dir", "--run-dir", tmp_path / "r"], capsys)
    line = one_line_error(code, err)
    assert "<iid>/<iid>.traj.json" in line and "flat_dir/*.traj.json" in line


def test_smaller_terminus_runs_have_no_patch_failure_and_api_errors_are_kept():
    for trial in (DATA / "terminus-1").iterdir():
        s = RuleTrajectorySummary().summarize_trajectory(read_terminus(trial))
        assert "no patch produced" not in s.failure_modes
    timeout = read_mswea(REASONER / "pvlib__pvlib-python-1154" / "pvlib__pvlib-python-1154.traj.json")
    assert timeout.metadata["error"].startswith("litellm.Timeout: Timeout Error: DeepseekException")
    s = RuleTrajectorySummary().summarize_trajectory(timeout)
    assert any(e.kind == "error" and "Connection timed out after 600.0 seconds" in e.quote for e in s.evidence)
    assert s.failure_modes[0].startswith("the run ended in an error: litellm.Timeout")
    err = read_mswea(REASONER / "pvlib__pvlib-python-1854" / "pvlib__pvlib-python-1854.traj.json").metadata["error"]
    assert err.startswith("litellm.InternalServerError")


def test_smaller_summarize_help_has_no_rtv_flags(capsys):
    with pytest.raises(SystemExit):
        main(["swe", "summarize", "--help"])
    out = capsys.readouterr().out
    assert "--context-tokens" in out and "--summarizer" in out
    for flag in ("--votes", "--group-size", "--select-k", "--judge-model"):
        assert flag not in out


def test_smaller_empty_messages_warn(tmp_path, capsys):
    t = read_trajectory(BROKEN / "empty_messages.traj.json")
    assert t.metadata["warnings"] == [f"{BROKEN / 'empty_messages.traj.json'}: no messages (an empty run)"]
    both = [BROKEN / "empty_messages.traj.json", DATA / "mswea-list" / "github_issue.traj.json"]
    code, out, err = run_cli(["swe", "import", *both, "--run-dir", tmp_path / "r"], capsys)
    assert code == 0 and "imported 1 rollout of 1 instance" in out
    assert err.strip() == f"warning: {BROKEN / 'empty_messages.traj.json'}: no messages (an empty run) (skipped)"


# -- properties over every real file -------------------------------------------------------------------
def _submission(traj: Trajectory, path: Path) -> str | None:
    """What the run submitted, read straight from its file(s)."""
    if path.is_dir() and (path / "preds.json").is_file():
        return json.loads((path / "preds.json").read_text())[traj.task_id]["model_patch"] or None
    if path.is_dir():
        return None  # a terminal task: no patch
    raw = json.loads(path.read_text())
    if isinstance(raw, list):
        return raw[-1]["content"] if "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in raw[-2]["content"] else None
    if "messages" not in raw:
        return None
    exit_msg = [m for m in raw["messages"] if m["role"] == "exit"]
    return raw["info"].get("submission") or (exit_msg[0]["extra"].get("submission") if exit_msg else None) or None


def _squash(s: str) -> str:
    return " ".join(s.split())


def _haystack(traj: Trajectory) -> str:
    parts = [x for s in traj.steps for x in (s.thought, f"$ {s.action}", s.observation)]
    parts += [str(m.content) for m in traj.messages] + [str(traj.metadata.get("error") or "")]
    return _squash("\n".join(parts))


@pytest.mark.parametrize("path", real_paths(), ids=lambda p: str(p.relative_to(DATA)))
def test_every_real_run_summary_is_bounded_quoted_and_keeps_the_patch(path):
    for traj in read_runs(path):
        for bound in (1200, 300):
            s = RuleTrajectorySummary(max_tokens=bound).summarize_trajectory(traj)
            assert approx_tokens(render_summary(s, 10 ** 6)) <= bound and s.length_tokens <= bound
        s = RuleTrajectorySummary().summarize_trajectory(traj)
        hay = _haystack(traj)
        for ev in s.evidence:  # each quoted piece (clip marks the cuts) occurs in the trajectory
            for line in ev.quote.splitlines():
                for piece in line.split(" [...] "):
                    assert _squash(piece) in hay, (traj.id, piece)
        assert traj.patch == _submission(traj, path)
        if traj.patch and len(traj.patch) <= 3000:
            assert s.final_patch == traj.patch  # verbatim


# -- every broken input through the CLI -----------------------------------------------------------------
TOLERATED = {"tool_content_int.traj.json"}  # real files hold numbers as content: read as text


@pytest.mark.parametrize("name", sorted(p.name for p in BROKEN.iterdir()) if BROKEN.is_dir() else [])
def test_every_broken_input_is_one_line_exit_2(tmp_path, capsys, name):
    code, out, err = run_cli(["swe", "import", BROKEN / name, "--run-dir", tmp_path / "r"], capsys)
    if name in TOLERATED:
        assert code == 0 and "imported 1 rollout" in out, err
        t = read_trajectory(BROKEN / name)
        assert t.steps[0].action == "ls" and t.steps[0].observation == "5"
        return
    line = one_line_error(code, err)
    assert line.startswith("tts swe: error: ") and str(BROKEN / name) in line and "expected" in line


# -- the whole chain on the real data ----------------------------------------------------------------
def test_import_summarize_select_preds_on_the_real_batches(tmp_path, capsys):
    """import -> rule summaries -> RTV where an instance has several rollouts (a loopback judge) -> preds,
    read back with swebench's own loader and checked against the batches' original preds.json."""
    get_predictions_from_file = pytest.importorskip("swebench.harness.utils").get_predictions_from_file
    from tts.testing import loopback_in_thread

    rd = tmp_path / "r"
    sources = [REASONER, *sorted(MSWEA11.glob("deepseek_*/*.traj.json")), GEMINI]
    code, out, err = run_cli(["swe", "import", *sources, "--run-dir", rd], capsys)
    assert code == 0 and "imported 12 rollouts of 8 instances" in out, err
    assert run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule"], capsys)[0] == 0

    def judge(body):
        return {"id": "j", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "WINNER: 1"},
                             "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 3}}

    with loopback_in_thread(reply=judge) as server:
        code, out, err = run_cli(["swe", "select", "--run-dir", rd, "--model", "judge", "--backend", "openai",
                                  "--api-base", server.url, "--votes", "1", "--instance-ids",
                                  "sqlfluff__sqlfluff-2419", "pylint-dev__astroid-1978"], capsys)
        calls = server.stats["ok"]
    assert code == 0, err
    # sqlfluff: 3 usable rollouts (2 contests at G=2); astroid: the reasoner's run timed out, 2 usable (1 contest)
    assert "sqlfluff__sqlfluff-2419:" in out and "(2 judge calls, 3 of 3 rollouts usable)" in out
    assert "(1 judge calls, 2 of 3 rollouts usable)" in out and calls == 3
    code, out, err = run_cli(["swe", "preds", "--run-dir", rd, "--model-name", "tts-rtv"], capsys)
    assert code == 0 and "8 predictions written" in out, err
    preds = {p["instance_id"]: p for p in get_predictions_from_file(str(rd / "preds.json"), "SWE-bench/x", "test")}
    original = {**json.loads((REASONER / "preds.json").read_text()), **json.loads((GEMINI / "preds.json").read_text())}
    assert set(preds) == set(original)
    for iid, p in preds.items():
        assert p["model_name_or_path"] == "tts-rtv"
        rollouts = [json.loads(f.read_text())["patch"] or "" for f in sorted((rd / "rollouts" / iid).glob("*.json"))]
        if len(rollouts) == 1:  # one rollout: exactly the batch's own prediction
            assert p["model_patch"] == original[iid]["model_patch"]
        else:  # RTV picked one of the submitted patches
            assert p["model_patch"] in rollouts and p["model_patch"]
