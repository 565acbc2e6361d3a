"""Evidence read from a trajectory without a model: commands with exit codes, test results, errors,
the files a patch touches."""

from __future__ import annotations

import re

from tts.records import Evidence, Step, Trajectory
from tts.summarizers.render import clip

_TEST_LINE = re.compile(
    r"^[ \t]*(?:"
    r"(?:PASSED|FAILED|ERROR|XPASS|XFAIL)\s+\S+.*"  # pytest -rA short summary
    r"|\S+::\S+\s+(?:PASSED|FAILED|ERROR|SKIPPED|XPASS|XFAIL)\b.*"  # pytest -v
    r"|=*\s*\d+ (?:passed|failed|errors?)\b.*"  # pytest's last line
    r"|Ran \d+ tests? in [\d.]+s"  # unittest and Django's runner
    r"|OK(?: \(.*\))?|FAILED \(.*\)"  # ... and their verdict
    r"|(?:FAIL|ERROR): \S+ \(.*\)"  # unittest's failure headers
    r")[ \t]*$", re.M)
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


def run_error(traj: Trajectory) -> str | None:
    """The error a run ended in (an API failure, a crash, a harness timeout), or None."""
    err = traj.metadata.get("error")
    return str(err) if err else None


def run_error_evidence(traj: Trajectory) -> list[Evidence]:
    err = run_error(traj)
    return [Evidence(kind="error", quote=clip(err, 400))] if err else []


def expects_patch(traj: Trajectory) -> bool:
    """Runs on a code repository end in a patch; terminal-task runs (Terminus, ATIF) do not."""
    fmt = str(traj.metadata.get("format") or "mini-swe-agent")
    return fmt.startswith("mini-swe-agent") or fmt == "tts"


def bound_patch(patch: str | None, max_chars: int) -> str | None:
    if not patch:
        return None
    return patch if len(patch) <= max_chars else clip(patch, max_chars)
