"""`tts serve` forwards a client's hang-up: its run is cancelled and the upstream calls in flight are
dropped, so the upstream server (the simulated one, counting at /stats) stops working for it."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests._sim import settled, simserver, stats
from tts.build import make_backend
from tts.serve.app import TTSServer
from tts.strategies.self_consistency import SelfConsistency
from tts.strategies.single import SingleSample


def wait_until(base, key, value, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (s := settled(base))[key] != value and time.monotonic() < deadline:
        time.sleep(0.05)
    return s


@pytest.mark.parametrize("stream", [False, True])
def test_client_hang_up_stops_the_upstream_calls(stream):
    # whole upstream replies take 3 s: the client gives up after 0.5 s
    with simserver("--ttft", "3", "--p-correct", "1") as base:
        async def go():
            backend = make_backend("sim", backend="openai", api_base=base, pricing=False)
            async with TTSServer(SelfConsistency(n=4), backend, model="sim") as tts:
                async with aiohttp.ClientSession() as session:
                    body = {"model": "sim", "messages": [{"role": "user", "content": "What is 2 + 3?"}],
                            "stream": stream}
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.5):
                            async with session.post(f"{tts.url}/chat/completions", json=body) as resp:
                                await resp.read()
                await asyncio.sleep(3.5)  # past the upstream's reply time
                served = tts.requests_served
            await backend.aclose()
            return served

        served = asyncio.run(go())
        s = wait_until(base, "abandoned", 4)
        assert served == 1
        assert s["requests"] == 4 and s["abandoned"] == 4 and s["ok"] == 0 and s["completion_tokens"] == 0


class Streams(SingleSample):
    """Six upstream streams its caller never stops by itself."""

    async def solve(self, task, ctx):
        comps = await asyncio.gather(*(ctx.complete(task.as_messages(), role="sample", sample_index=i,
                                                    on_token=lambda view: False) for i in range(6)))
        cands = [self.candidate(c, f"s{i}") for i, c in enumerate(comps)]
        return self.result(task, ctx, cands[:1], cands)


def test_client_hang_up_stops_upstream_streams():
    with simserver("--ttft", "0.01", "--tpot", "0.02", "--out-tokens", "400", "--p-correct", "1") as base:
        async def go():
            backend = make_backend("sim", backend="openai", api_base=base, pricing=False)
            async with TTSServer(Streams(), backend, model="sim") as tts:
                async with aiohttp.ClientSession() as session:
                    body = {"model": "sim", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(1.0):  # the streams need 8 s
                            async with session.post(f"{tts.url}/chat/completions", json=body) as resp:
                                await resp.read()
                await asyncio.sleep(1.0)  # while tts serve still runs (its shutdown would cancel the run too)
                s = await asyncio.to_thread(stats, base)
            await backend.aclose()
            return s

        s = asyncio.run(go())
        assert s["streams"] == 6 and s["aborted_streams"] == 6 and s["stream_tokens_saved"] > 6 * 300
