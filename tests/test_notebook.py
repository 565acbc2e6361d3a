"""The quickstart notebook runs top to bottom (on the scripted model) under nbclient, as in CI."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("TTS_NOTEBOOK_MODEL", "scripted")  # the CI run must not need the local model
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("round1" in h for h in html)  # the PDR call tree rendered as HTML
    text = "".join(o.get("text", "") for o in outputs)
    assert "ConfigError: strategy 'pdr': field 'distill'" in text
    assert "best-of-8 (oracle verifier)" in text
    # the RunResult view: candidates with answers and the vote counts
    assert any("8 candidates" in h and "votes" in h for h in html)
    # tts.compare: the comparison table and its accuracy-vs-tokens plot, embedded as a PNG
    table = [h for h in html if "tts compare" in h]
    assert table and "self-consistency n=8" in table[0] and "pareto" in table[0]
    assert "data:image/png;base64,iVBORw0KGgo" in table[0]
