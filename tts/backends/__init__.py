"""Backends that talk to a model: `LiteLLMBackend` (tts.backends.litellm, any litellm model string)
and `OpenAIHTTPBackend` (tts.backends.openai_http, the lean aiohttp client). Import the module you
need; neither is imported here, so `import tts.backends` loads neither litellm nor aiohttp."""
