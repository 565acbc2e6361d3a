"""The embedded model's decoding engine on the real SmolLM2-135M, in this process: no sequence idles
while samples wait, and a full KV cache preempts the youngest job instead of failing or reserving
the longest reply for every request (marked `local_model`)."""

from __future__ import annotations

import threading

import pytest

from tts.local import extra

pytestmark = [pytest.mark.local_model,
              pytest.mark.skipif(not all(extra._installed(m) for m in extra._REQUIRED),
                                 reason="the 'local' extra is not installed: pip install -e '.[local]'")]

LONG = "Write a long story about a dragon who learns to bake bread."  # greedy: runs past 200 tokens


@pytest.fixture(scope="module")
def model():
    import llama_cpp.llama_cpp as lib
    from llama_cpp import Llama

    from tts.local._llama_server import _without_extra_buffer_types

    defaults = lib.llama_model_default_params
    _without_extra_buffer_types()  # as the server loads it (see test_local_model), for this load only
    try:
        return Llama(str(extra.model_path()), n_ctx=64, n_batch=64, n_threads=2, verbose=False)
    finally:
        lib.llama_model_default_params = defaults


def engine(model, **kw):
    from tts.local.batch_engine import Engine

    eng = Engine(model._model, threads=2, **kw)
    sizes: list[tuple[int, int]] = []  # every decode: its tokens, and the samples waiting for a sequence then
    decode = eng._decode

    def counted(items):
        waiting = sum(len(j.waiting) for j in eng.running) + sum(len(j.waiting) for j in eng.inbox)
        sizes.append((len(items), waiting))
        return decode(items)

    eng._decode = counted
    return eng, sizes


def prompt(model, text: str) -> list[int]:
    chat = f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
    return model.tokenize(chat.encode(), add_bos=True, special=True)


def run(eng, jobs: list[dict]) -> list[list]:
    """Submit every job at once; wait for all; their samples in submission order."""
    from tts.local.batch_engine import Job
    from tts.local.sampler_chain import SamplingParams

    got: list = [None] * len(jobs)
    left = [len(jobs)]
    done = threading.Event()

    def finish(i, samples):
        got[i] = samples
        left[0] -= 1
        if not left[0]:
            done.set()

    def fail(i, exc):
        got[i] = exc
        finish(i, exc)

    for i, spec in enumerate(jobs):
        eng.submit(Job(prompt=spec["prompt"], n=spec["n"], seed=spec.get("seed", 0), max_new=spec["max_new"],
                       params=SamplingParams(temperature=spec.get("temperature", 0.0)), stop=[], logprobs=None,
                       done=lambda s, i=i: finish(i, s), fail=lambda e, i=i: fail(i, e),
                       width=eng.width(len(spec["prompt"]), spec["max_new"])))
    assert done.wait(300), "the engine did not finish"
    for g in got:
        if isinstance(g, BaseException):
            raise g
    return got


def handed_back(eng) -> list[int]:
    """The sequences free or kept (a finished job's last one, left for a request that starts the same way)."""
    return sorted(eng.free_seqs + [k.seq for k in eng.kept])


def texts(samples) -> list[str]:
    return [s.text for s in samples]


def test_a_job_wider_than_the_slots_keeps_every_slot_busy(model) -> None:
    eng, sizes = engine(model, cells=4096, slots=4)
    p = prompt(model, "Name a colour.")
    [samples] = run(eng, [{"prompt": p, "n": 10, "max_new": 12, "temperature": 0.9}])
    assert [s.index for s in samples] == list(range(10)) and all(s.finish in ("stop", "length") for s in samples)
    assert all(0 < len(s.tokens) <= 12 and len(s.ends) == len(s.tokens) for s in samples)
    assert sizes[0][0] == len(p)  # one prefill for all ten samples: the rest start from copies of it
    steps = sizes[1:]
    assert max(n for n, _ in steps) == 4
    # while a sample waits, every slot decodes: a finished sample's sequence goes to the next one
    assert [n for n, waiting in steps if waiting] == [4] * sum(1 for _, waiting in steps if waiting)
    assert any(waiting for _, waiting in steps)


def test_requests_decode_together_whatever_their_max_tokens(model) -> None:
    # Without max_tokens a reply may run to the end of the context: reserving that for each request
    # ran one request (or one sample) at a time. Cells are counted as used, so both decode together.
    # The server's sizes: 16 slots, 16384 cells, a 2048-token window per sequence.
    eng, sizes = engine(model, cells=16384, slots=16)
    prompts = [prompt(model, q) for q in ("What is 2 + 3? Answer with just the number.",
                                          "What is 4 + 1? Answer with just the number.")]
    got = run(eng, [{"prompt": p, "n": 8, "max_new": 2048 - len(p)} for p in prompts])
    assert all(len(g) == 8 for g in got)
    # two prefills (the second from where the prompts part), then all sixteen samples in one decode
    assert sizes[0][0] == len(prompts[0]) and 0 < sizes[1][0] < len(prompts[1]) and sizes[2][0] == 16


def test_a_full_cache_preempts_the_youngest_job_and_redraws_it_the_same(model) -> None:
    p = prompt(model, LONG)
    job = {"prompt": p, "n": 4, "max_new": 120}
    alone, _ = engine(model, cells=768, slots=8)
    [by_itself] = run(alone, [job])
    assert alone.preempted == 0
    # 768 cells hold one job (its prompt + 4 x 120) but not two: the second is admitted while there
    # is room, preempted as the replies grow, and drawn again once the first is done
    tight, _ = engine(model, cells=768, slots=8)
    first, second = run(tight, [job, dict(job)])
    assert tight.preempted == 1  # and once only: a preempted job comes back when it fits whole
    assert all(len(s.tokens) == 120 and s.finish == "length" for s in first + second)
    # drawn again from scratch, alone, as it was drawn by itself: the same greedy text (the first job
    # decoded beside it for a while, and batched products round differently, so it may part later)
    assert texts(second) == texts(by_itself)
    assert all(a.tokens[:16] == b.tokens[:16] for a, b in zip(first, by_itself, strict=True))
    assert not tight.running and handed_back(tight) == list(range(8))  # every sequence handed back


def test_a_cancelled_job_frees_its_sequences_and_others_finish(model) -> None:
    import time

    from tts.local.batch_engine import Job
    from tts.local.sampler_chain import SamplingParams

    eng, sizes = engine(model, cells=4096, slots=4)
    p = prompt(model, LONG)
    answered = threading.Event()
    doomed = Job(prompt=p, n=6, seed=1, max_new=400, params=SamplingParams(temperature=0.0), stop=[], logprobs=None,
                 done=lambda s: answered.set(), fail=lambda e: answered.set(), width=4)
    eng.submit(doomed)
    deadline = time.monotonic() + 60
    while len(sizes) < 5 and time.monotonic() < deadline:  # under way, two samples still waiting
        time.sleep(0.01)
    doomed.cancelled = True
    [other] = run(eng, [{"prompt": p, "n": 2, "max_new": 8}])
    assert len(other) == 2 and not answered.is_set()  # a cancelled job is never answered
    assert sum(len(s.tokens) for s in doomed.samples) < 6 * 400  # and stopped decoding
    assert not eng.running and handed_back(eng) == list(range(4))
    assert len(eng.kept) == 1  # the finished job's sequence, not the cancelled one's


def test_a_prompt_that_starts_like_a_running_one_is_decoded_from_where_they_part(model) -> None:
    system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    asks = [model.tokenize((system + f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n").encode(),
                           add_bos=True, special=True) for q in ("What is 2 + 3?", "What is 7 + 1?")]
    common = next(i for i, (a, b) in enumerate(zip(*asks, strict=False)) if a != b)
    assert common > 20
    eng, sizes = engine(model, cells=4096, slots=8)
    shared = run(eng, [{"prompt": p, "n": 2, "max_new": 12} for p in asks])
    assert [n for n, _ in sizes[:2]] == [len(asks[0]), len(asks[1]) - common]  # the second prompt's own part only
    alone, _ = engine(model, cells=4096, slots=8)
    [by_itself] = run(alone, [{"prompt": asks[1], "n": 2, "max_new": 12}])
    # the copied cells are the ones its own prefill would have made: the same greedy start
    assert [s.tokens[:4] for s in shared[1]] == [s.tokens[:4] for s in by_itself]


def test_a_next_request_starting_with_the_last_prompt_and_reply_decodes_only_its_own_part(model) -> None:
    """An agent's next turn (and the next of one-at-a-time samples) starts with what the last request
    held: its finished sequence is kept, and the next prompt is decoded from where they part."""
    eng, _ = engine(model, cells=4096, slots=4)
    first = prompt(model, "What is 2 + 3? Reply with the number only.")
    [[turn]] = run(eng, [{"prompt": first, "n": 1, "max_new": 64}])
    assert turn.finish == "stop"  # its last token decoded too (a reply cut at max_tokens holds all but its last)
    [(turn_seq, kept)] = [(k.seq, k.tokens) for k in eng.kept]
    assert kept == first + turn.tokens
    before = eng.prefilled
    run(eng, [{"prompt": first, "n": 1, "max_new": 24, "seed": 5}])  # the next one-at-a-time sample
    assert eng.prefilled - before == 1  # only the prompt's last token, for its logits
    assert [k.seq for k in eng.kept] == [turn_seq]  # it took the kept sequence over
    run(eng, [{"prompt": first, "n": 1, "max_new": 64}])  # the first turn again: kept as it was

    chat = ("<|im_start|>user\nWhat is 2 + 3? Reply with the number only.<|im_end|>\n"
            f"<|im_start|>assistant\n{turn.text}<|im_end|>\n<|im_start|>user\nAnd 4 + 4?<|im_end|>\n"
            "<|im_start|>assistant\n")
    following = model.tokenize(chat.encode(), add_bos=True, special=True)
    [kept] = [k.tokens for k in eng.kept]
    common = next((i for i, (a, b) in enumerate(zip(kept, following, strict=False)) if a != b), len(kept))
    assert common == len(kept) == len(first) + len(turn.tokens)  # the prompt and the whole reply
    before = eng.prefilled
    [[next_turn]] = run(eng, [{"prompt": following, "n": 1, "max_new": 16}])
    assert eng.prefilled - before == len(following) - common
    fresh, _ = engine(model, cells=4096, slots=4)
    [[alone]] = run(fresh, [{"prompt": following, "n": 1, "max_new": 16}])
    assert next_turn.tokens[:8] == alone.tokens[:8]  # the kept cells are the ones its own prefill would make
    assert fresh.prefilled == len(following)
