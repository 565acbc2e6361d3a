"""`python -m tts.local._llama_server ARGS`: llama-cpp-python's server (`python -m llama_cpp.server ARGS`)
with llama.cpp's extra CPU buffer types off.

Why: on a CPU with AMX (Sapphire Rapids and later), a llama.cpp built natively routes matrix
products through its AMX buffer type, and in a VM that does not grant the AMX tile state that
code dies with SIGSEGV on the first request (seen here: `ggml_backend_amx_mul_mat`). The extra
buffer types only repack weights for speed (none applies to SmolLM2's Q4_1), so turning them off
costs nothing here and gives the same arithmetic, and the same samples, on every x86 machine.
"""

from __future__ import annotations


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


def main() -> None:
    _without_extra_buffer_types()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
