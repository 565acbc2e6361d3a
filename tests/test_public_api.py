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


def test_all_is_exactly_the_public_names_of_the_package():
    """As httpx checks its `__all__` against `vars()`: once every export is resolved, the package's
    public names (submodules aside) are exactly `__all__`, so nothing public is missing from it
    and nothing in it is stale."""
    import types

    for name in tts.__all__:
        getattr(tts, name)
    public = {n for n, v in vars(tts).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(tts.__all__) - {"__version__"}
    assert tts.__all__ == [*sorted(set(tts.__all__) - {"__version__"}), "__version__"]


def test_the_agentic_layer_stays_out_of_the_core_namespace():
    for name in ("AgenticPDR", "MiniSweAgentRunner", "SWEInstance", "run_instances", "read_trajectory"):
        assert name not in tts.__all__
    assert "AgentRunner" in tts.__all__  # the contract is core; its implementations are tts.swe
    from importlib import import_module

    swe = import_module("tts.swe")
    for name in swe.__all__:  # where tts/swe/README.md imports them from
        assert getattr(swe, name) is not None, name
