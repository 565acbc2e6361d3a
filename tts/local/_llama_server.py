"""`python -m tts.local._llama_server ARGS`: the embedded model's OpenAI-compatible server, on
llama-cpp-python's low-level API (tts.local.batch_engine: `n` samples share one prefill, and the
sequences of all requests in flight are decoded together), with llama.cpp's extra CPU buffer types off.

Why our own server: llama-cpp-python's ignores `n` and decodes one request at a time; llama.cpp's
`llama-server` would batch, but no wheel ships it and building it adds a second llama.cpp build.

Why the buffer types are off: on a CPU with AMX (Sapphire Rapids and later), a llama.cpp built natively routes matrix
products through its AMX buffer type, and in a VM that does not grant the AMX tile state that
code dies with SIGSEGV on the first request (seen here: `ggml_backend_amx_mul_mat`). The extra
buffer types only repack weights for speed (none applies to SmolLM2's Q4_1), so turning them off
costs nothing here and gives the same arithmetic, and the same samples, on every x86 machine.
"""

from __future__ import annotations

import argparse


def _without_extra_buffer_types() -> None:
    import llama_cpp.llama_cpp as lib

    defaults = lib.llama_model_default_params
    if getattr(defaults, "_tts_patched", False):
        return

    def model_params():  # what llama_cpp.Llama starts from when it loads a model
        params = defaults()
        if hasattr(params, "use_extra_bufts"):  # llama-cpp-python 0.3.10 and newer
            params.use_extra_bufts = False
        return params

    model_params._tts_patched = True  # type: ignore[attr-defined]
    lib.llama_model_default_params = model_params


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tts.local._llama_server")
    p.add_argument("--model", required=True, help="the GGUF file")
    p.add_argument("--model_alias", default="local")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--n_ctx", type=int, default=2048, help="context window of one sequence")
    p.add_argument("--slots", type=int, default=16, help="sequences decoded together")
    p.add_argument("--cells", type=int, default=16384, help="KV cache cells shared by all sequences")
    p.add_argument("--n_threads", type=int, default=2)
    p.add_argument("--fixed_threads", action="store_true", help="keep --n_threads (else follow the idle cores)")
    p.add_argument("--n_threads_batch", type=int, default=None, help="(accepted; --n_threads is used)")
    p.add_argument("--verbose", default="False", help="(accepted; the server is quiet)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    _without_extra_buffer_types()
    from aiohttp import web
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from tts.local.batch_engine import Engine
    from tts.local.openai_app import ChatApp

    # Llama (with a tiny context of its own) loads the weights, the vocabulary and the chat template.
    llm = Llama(args.model, n_ctx=64, n_batch=64, n_threads=args.n_threads, verbose=False)
    eos, bos = llm.token_eos(), llm.token_bos()
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"], eos_token=llm._model.token_get_text(eos),
        bos_token=llm._model.token_get_text(bos) if bos >= 0 else "", stop_token_ids=[eos])
    engine = Engine(llm._model, cells=max(args.cells, args.n_ctx), slots=args.slots, threads=args.n_threads,
                    follow_idle=not args.fixed_threads)

    def tokenize(prompt: str) -> list[int]:
        return llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    app = ChatApp(engine, formatter, tokenize, args.model_alias, args.n_ctx).app()
    print(f"serving {args.model_alias} on http://{args.host}:{args.port}/v1", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
