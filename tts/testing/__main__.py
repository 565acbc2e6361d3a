"""`python -m tts.testing serve --port P`: the loopback server, standalone."""

from tts.testing.loopback import _serve_main

_serve_main()
