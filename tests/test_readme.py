"""Every Python code block in README.md runs: extracted and executed in order against the scripted
backend (the `tts.make_backend` a block calls returns one), the OpenAI-client block against a real
`tts serve` on loopback. A block that drifts from the API fails here."""

import asyncio
import re
from pathlib import Path

import pytest

import tts
from tts.testing import ScriptedBackend

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, monkeypatch, tmp_path):
    code = BLOCKS[index]
    monkeypatch.chdir(tmp_path)
    made: list[ScriptedBackend] = []

    def fake_make_backend(*args, **kwargs):
        made.append(ScriptedBackend(["Adding them: 8. ANSWER: 8"]))
        return made[-1]

    monkeypatch.setattr(tts, "make_backend", fake_make_backend)
    namespace = {"tts": tts, "__name__": "__readme__"}
    if "OpenAI(" in code:
        pytest.importorskip("openai")
        pytest.importorskip("aiohttp")
        asyncio.run(_with_server(code, namespace))
        return
    exec(compile(code, f"README.md block {index + 1}", "exec"), namespace)
    if "asyncio.run(" in code:
        assert made and all(b.calls for b in made), "the block's strategy made no model call"


async def _with_server(code: str, namespace: dict) -> None:
    """The client block, pointed at a real `TTSServer` over the scripted backend."""
    strategy = tts.SelfConsistency(n=2)
    async with tts.TTSServer(strategy, ScriptedBackend(["391"]), model="gpt-4o-mini", port=0) as server:
        code = code.replace("http://127.0.0.1:8000/v1", server.url)
        await asyncio.to_thread(exec, compile(code, "README.md client block", "exec"), namespace)
