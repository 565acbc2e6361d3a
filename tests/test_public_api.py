"""The public surface: every name in `tts.__all__` resolves, and importing tts is quiet and cheap."""

import subprocess
import sys

import tts


def test_every_exported_name_resolves():
    for name in tts.__all__:
        assert getattr(tts, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    try:
        tts.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_lazy_and_silent(tmp_path):
    code = ("import os, sys; env = dict(os.environ); import tts; "
            "assert dict(os.environ) == env; "
            "heavy = [m for m in ('litellm', 'aiohttp', 'rich', 'diskcache') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "HEAVY []" and proc.stderr == ""
    assert list(tmp_path.iterdir()) == []
