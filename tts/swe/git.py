"""git, as the swe layer runs it: a fixed identity, a fresh clone at a commit, the working tree's diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tts.errors import UsageError


def git(cwd: str | Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`git ARGS` in `cwd` as user tts (no signing), output captured as text; raises on failure when `check`."""
    return subprocess.run(["git", "-c", "user.name=tts", "-c", "user.email=tts@localhost", "-c", "commit.gpgsign=false",
                           *args], cwd=cwd, capture_output=True, text=True, check=check)


def clone_at(src: str, commit: str, dest: Path) -> Path:
    """A fresh clone of `src` at `commit` (objects shared, working tree private)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        git(dest.parent, "clone", "-q", "--shared", str(Path(src).resolve()), str(dest))
        if commit:
            git(dest, "checkout", "-q", commit)
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or "").strip().splitlines()[-1:] or ["git failed"]
        raise UsageError(f"cannot check out {src} at {commit or 'HEAD'}: {why[0]}") from None
    return dest


def working_tree_diff(repo: str | Path) -> str:
    """What changed in tracked files (untracked scratch files and reproduction scripts excluded)."""
    out = git(repo, "diff", "--no-color", check=False)
    return out.stdout
