"""litellm is imported offline and quietly, and the user's environment is left exactly as it was.

Each check runs in a fresh interpreter, because litellm can only be imported once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, logging, os, socket, sys

attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled by the test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = lambda self, address: refuse(address)
socket.socket.connect_ex = lambda self, address: refuse(address)

before = dict(os.environ)
root = (list(logging.root.handlers), logging.root.level)

from tts.backends.litellm import LiteLLMBackend
backend = LiteLLMBackend("openai/some-model", api_base="http://127.0.0.1:9/v1")
import litellm
from tts.wrappers.accounting import AccountingBackend

print(json.dumps({
    "env_changed": sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)),
    "var": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
    "attempts": attempts,
    "priced_models": len(litellm.model_cost),
    "gpt_4o_mini_cost": sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=100)),
    "suppress_debug_info": litellm.suppress_debug_info,
    "root_logging_unchanged": (list(logging.root.handlers), logging.root.level) == root,
}))
"""


def _start(env_value: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    if env_value is not None:
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = env_value
    return subprocess.Popen([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture(scope="module")
def probes() -> dict:
    """Both interpreters run at once (a litellm import takes seconds)."""
    procs = {"unset": _start(None), "False": _start("False")}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_unset_variable_no_network_and_env_untouched(probes: dict) -> None:
    out = probes["unset"]
    assert out["attempts"] == []  # the price table came from the package, not the internet
    assert out["env_changed"] == []
    assert out["var"] is None
    assert out["priced_models"] > 100 and out["gpt_4o_mini_cost"] > 0
    assert out["suppress_debug_info"] is True
    assert out["root_logging_unchanged"] is True


def test_users_own_value_is_respected(probes: dict) -> None:
    # "False" asks litellm to fetch its table: we let it try (offline, it falls back to the packaged one)
    out = probes["False"]
    assert out["var"] == "False" and out["env_changed"] == []
    assert out["attempts"] != []
    assert out["priced_models"] > 100


def test_importing_tts_loads_no_backend_library() -> None:
    code = ("import sys, tts, tts.build, tts.wrappers, tts.backends, tts.testing; "
            "print(sorted(m for m in ('litellm', 'aiohttp', 'diskcache', 'openai') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_lean_path_prices_from_the_packaged_table_without_importing_litellm() -> None:
    code = (
        "import asyncio, sys\n"
        "from tts.seam import ChatRequest\nfrom tts.records import Completion, Message, Usage\n"
        "from tts.wrappers.accounting import AccountingBackend\n"
        "class B:\n"
        "    model = 'openai/gpt-4o-mini'\n"
        "    async def complete(self, r):\n"
        "        return [Completion(text='x', usage=Usage(prompt_tokens=1000, completion_tokens=100, calls=1))]\n"
        "a = AccountingBackend(B())\n"
        "asyncio.run(a.complete(ChatRequest(messages=[Message(role='user', content='hi')])))\n"
        "print(a.usage.cost_usd, a.usage.unpriced_calls, 'litellm' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    cost, unpriced, imported = done.stdout.split()
    assert float(cost) == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)  # gpt-4o-mini: $0.15 / $0.60 per M
    assert unpriced == "0" and imported == "False", done.stderr


@pytest.mark.parametrize("model", ["gpt-4o-mini"])
def test_accounting_prices_a_known_model(model: str) -> None:
    import asyncio

    from tts._litellm import import_litellm
    from tts.records import Completion, Message, Usage
    from tts.seam import ChatRequest
    from tts.wrappers.accounting import AccountingBackend

    class Priced:
        namespace = "priced"

        def __init__(self) -> None:
            self.model = model

        async def complete(self, request: ChatRequest) -> list[Completion]:
            return [Completion(text="x", model=model, usage=Usage(prompt_tokens=1000, completion_tokens=100, calls=1))]

    acct = AccountingBackend(Priced())
    asyncio.run(acct.complete(ChatRequest(messages=[Message(role="user", content="hi")])))
    expected = sum(import_litellm().cost_per_token(model=model, prompt_tokens=1000, completion_tokens=100))
    assert acct.usage.cost_usd == pytest.approx(expected) and expected > 0
    assert acct.usage.unpriced_calls == 0 and not acct.notes


def test_the_price_table_is_read_while_the_first_call_is_out() -> None:
    """A cold run's first answers find their price ready: the table (and the model's entry) is read
    in a thread as the first call goes out, not after its answer arrives. (In a fresh process:
    once litellm is imported, as other tests here do, its own prices are used.)"""
    code = (
        "import asyncio, threading\n"
        "from tts.seam import ChatRequest\nfrom tts.records import Completion, Message, Usage\n"
        "from tts.wrappers import pricing\nfrom tts.wrappers.accounting import AccountingBackend\n"
        "answered, seen, real = threading.Event(), [], pricing._table_knowing\n"
        "def spy(model):\n"
        "    seen.append(not answered.is_set())\n"
        "    return real(model)\n"
        "pricing._table_knowing = spy\n"
        "class Slow:\n"
        "    model = 'openai/gpt-4o-mini'\n"
        "    async def complete(self, r):\n"
        "        await asyncio.sleep(0.3)\n"
        "        answered.set()\n"
        "        return [Completion(text='x', usage=Usage(prompt_tokens=1000, completion_tokens=100, calls=1))]\n"
        "a = AccountingBackend(Slow())\n"
        "asyncio.run(a.complete(ChatRequest(messages=[Message(role='user', content='hi')])))\n"
        "print(seen, a.usage.cost_usd)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen, cost = done.stdout.rsplit(" ", 1)
    assert seen == "[True]"  # read once, before the answer came back
    assert float(cost) == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
