"""The wheel: it carries the prompt templates, and the installed copy imports quietly and finds them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-isolation")  # the backend is here already: no download, works offline
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheels = list(out.glob("tts_scaling-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_ships_every_prompt_template(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("tts/_prompts/") and n.endswith(".j2")}
    in_repo = {p.name for p in (ROOT / "prompts").glob("*.j2")}
    assert in_repo, "no templates in prompts/"
    assert shipped == in_repo
    assert "tts/__init__.py" in names and "tts/local/__init__.py" in names and "tts/cli/main.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tts = tts.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_copy_is_quiet_and_renders_its_own_templates(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking
    work = tmp_path / "cwd"
    work.mkdir()
    template = sorted((ROOT / "prompts").glob("*.j2"))[0].name
    code = (
        "import os, sys; env = dict(os.environ); cwd = os.getcwd(); import tts; "
        "assert dict(os.environ) == env, 'import tts changed os.environ'; "
        "assert os.getcwd() == cwd, 'import tts changed the working directory'; "
        "from tts.prompts import prompts_dir, _template; "
        f"_template({template!r}, None); "
        "sys.stderr.write(str(tts.__file__) + '|' + str(prompts_dir()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the editable install of this checkout
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    module, prompts = proc.stderr.split("|")
    assert module == str(site / "tts" / "__init__.py")
    assert prompts == str(site / "tts" / "_prompts")
    assert list(work.iterdir()) == []  # no files, no cache folders
