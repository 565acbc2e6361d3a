"""Is there a Docker daemon? Asked once, quickly: the `docker` binary can exist without one."""

from __future__ import annotations

from functools import lru_cache

from tts.errors import UsageError


@lru_cache(maxsize=1)
def docker_available() -> bool:
    """True when the docker package is importable and the daemon answers a ping (2 s timeout)."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # DockerException, connection refused, missing socket: all mean "no daemon"
        return False


def require_docker(what: str, instead: str) -> None:
    """Stop at once with a one-line UsageError (exit 2) when there is no Docker daemon."""
    if not docker_available():
        raise UsageError(f"{what} needs a Docker daemon and none is reachable; use {instead} instead")
