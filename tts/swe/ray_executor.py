"""Rollouts and evaluations as Ray tasks, anywhere on a Ray cluster (`pip install 'tts-scaling[ray]'`).

    async with RayExecutor("auto", rollout_cpus=1, rollout_resources={"docker": 1}) as ex:
        results = await run_instances(strategy, rows, runner, backend, executor=ex, rundir="runs/x")

One Ray task per rollout, declaring `rollout_cpus`, `rollout_memory` and custom resources (e.g.
`docker` on the nodes that have a daemon); at most `max_in_flight` submitted at once. A rollout
whose worker or node died is retried by Ray (`max_retries`); a rollout that raised is not (the
agent's failure is a result). Finished rollouts come back to the driver, which writes them to the
run directory as they land, so the run dir needs no shared filesystem and a rerun after a killed
driver resumes where it stopped. The runner is shipped once (`ray.put`) and must be picklable.

Model calls from rollouts go straight from the workers to the provider: the provider variables of
the driver's environment (`*_API_KEY`, `*_API_BASE`, `*_BASE_URL`, `*_API_VERSION`) and `env_vars`
reach the workers through Ray's runtime env (as a `worker_process_setup_hook`: Ray's agent logs
`env_vars` values in clear), never through task arguments or logs. Judge and summary calls stay
on the driver, through its backend stack and cache.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from tts.errors import ConfigError, MissingDependency, UsageError
from tts.records import Trajectory, TrajectorySummary
from tts.redact import SECRET_ENV_SUFFIXES, add_secret
from tts.swe.instance import SWEInstance
from tts.swe.runners import AgentRunner

T = TypeVar("T")

FORWARDED_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL", "_API_VERSION")
"""Driver environment variables passed to the workers (provider credentials and endpoints)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependency("--executor ray needs Ray: pip install 'tts-scaling[ray]'") from None
    return ray


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.endswith(FORWARDED_SUFFIXES) and v}


def _probe(address: str, timeout_s: float = 3.0) -> None:
    """A HOST:PORT that does not answer stops here, in one line, instead of in Ray's retries."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r} is not auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UsageError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one there with "
                         f"'ray start --head --port {port}', or leave --ray-address out to start a local one") from None


# -- what runs on the workers ------------------------------------------------------------------------
class SetEnv:
    """The workers' setup hook: put the driver's provider variables into the worker's environment."""

    __name__ = "tts_set_env"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __repr__(self) -> str:
        return f"SetEnv([{', '.join(sorted(self.env))}])"

    def __call__(self) -> None:
        os.environ.update(self.env)
        # the worker's one redactor knows them too: an agent's error text may quote its key
        add_secret(*(v for k, v in self.env.items() if k.upper().endswith(SECRET_ENV_SUFFIXES)))


def _where() -> dict[str, Any]:
    import ray

    return {"executor": "ray", "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(), "pid": os.getpid()}


def run_rollout(runner: AgentRunner, instance_json: str, prior_json: list[str], rollout_id: str) -> dict[str, Any]:
    """One rollout, in a Ray worker: the trajectory as JSON plus where it ran."""
    instance = SWEInstance.model_validate_json(instance_json)
    prior = [TrajectorySummary.model_validate_json(p) for p in prior_json]
    try:
        traj = asyncio.run(runner.run(instance, prior, rollout_id=rollout_id))
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()
    return {"trajectory": traj.model_dump_json(), "worker": _where()}


def run_call(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """`fn(*args)` in a Ray worker. A user mistake there (e.g. no Docker on the node) comes back as
    a message, so the driver can stop in one line."""
    try:
        return {"value": fn(*args), "worker": _where()}
    except UsageError as exc:
        return {"usage_error": f"{exc} (on Ray node {_where()['node_ip']})"}


class RayExecutor:
    """See the module docstring. `address`: None or "local" starts a local Ray instance (with
    `num_cpus`), "auto" joins the cluster this machine belongs to, HOST:PORT (or ray://HOST:PORT)
    joins that one. `call_*` declare what each evaluation task needs (the swebench harness wants a
    node with `docker`)."""

    kind = "ray"

    def __init__(self, address: str | None = None, *, rollout_cpus: float = 1.0, rollout_memory: int | None = None,
                 rollout_resources: Mapping[str, float] | None = None, call_cpus: float = 1.0,
                 call_memory: int | None = None, call_resources: Mapping[str, float] | None = None,
                 max_in_flight: int = 16, max_calls_in_flight: int | None = None, max_retries: int = 3,
                 scheduling: str = "SPREAD", env_vars: Mapping[str, str] | None = None, forward_env: bool = True,
                 num_cpus: int | None = None, namespace: str = "tts") -> None:
        if max_in_flight < 1 or (max_calls_in_flight is not None and max_calls_in_flight < 1):
            raise ConfigError("--concurrency must be at least 1")
        if rollout_cpus < 0 or call_cpus < 0 or max_retries < 0:
            raise ConfigError("--rollout-cpus and --max-retries cannot be negative")
        self.address = address or "local"
        self.rollout_options = _options(rollout_cpus, rollout_memory, rollout_resources)
        self.call_options = _options(call_cpus, call_memory, call_resources)
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.scheduling = scheduling
        self.num_cpus = num_cpus
        self.namespace = namespace
        self._env = {**(forwarded_env() if forward_env else {}), **(env_vars or {})}
        add_secret(*(v for k, v in (env_vars or {}).items() if k.upper().endswith(SECRET_ENV_SUFFIXES)))
        self._rollouts = asyncio.Semaphore(max_in_flight)
        self._calls = asyncio.Semaphore(max_calls_in_flight or max_in_flight)
        self._ray: Any = None
        self._owns_ray = False
        self._remote: dict[str, Any] = {}
        self._runner_refs: dict[int, tuple[Any, Any]] = {}
        self._checked: set[str] = set()
        self.placed: list[dict[str, Any]] = []
        """Where each finished task ran: {"kind": "rollout"|"call", "name", "node_id", "node_ip", "pid"}."""

    def __repr__(self) -> str:  # never the env values: they carry API keys
        return (f"RayExecutor(address={self.address!r}, rollout={self.rollout_options}, call={self.call_options}, "
                f"max_in_flight={self.max_in_flight}, env_vars=[{', '.join(sorted(self._env))}])")

    def add_env(self, name: str, value: str) -> None:
        """A variable for the workers' environment (e.g. an API key); before `start()` only."""
        if self._ray is not None:
            raise UsageError("add_env after the Ray executor started: the runtime env is fixed at start")
        self._env[name] = value
        add_secret(value)  # in the driver's redactor; SetEnv adds it to each worker's

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> RayExecutor:
        if self._ray is not None:
            return self
        ray = import_ray()
        if self.address not in ("local", "auto"):
            _probe(self.address)
        if ray.is_initialized():  # the caller's own session: use it, leave it running
            self._ray = ray
            self._check("rollout")
            return self
        # Not `env_vars`: Ray's runtime-env agent logs those values. A setup hook is stored in the
        # GCS and logged by its key only; it sets the variables in each worker before any task.
        runtime_env = {"worker_process_setup_hook": SetEnv(self._env)} if self._env else {}
        kwargs: dict[str, Any] = {"namespace": self.namespace, "log_to_driver": False,
                                  "logging_level": logging.WARNING, "runtime_env": runtime_env}
        if self.address == "local":
            kwargs.update(include_dashboard=False, num_cpus=self.num_cpus)
        try:
            ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            hint = ("no running Ray cluster was found: start one with 'ray start --head' or leave --ray-address out "
                    "to start a local one" if self.address == "auto" else first)
            raise UsageError(f"cannot connect to Ray at {self.address}: {hint}") from None
        self._ray, self._owns_ray = ray, True
        try:
            self._check("rollout")
        except BaseException:
            await self.aclose()
            raise
        return self

    async def aclose(self) -> None:
        self._runner_refs.clear()
        if self._ray is not None and self._owns_ray:
            self._ray.shutdown()
        self._ray, self._owns_ray = None, False

    async def __aenter__(self) -> RayExecutor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _check(self, kind: str) -> None:
        """A task no node can ever hold would wait forever: say so at once instead."""
        if kind in self._checked:
            return
        opts = self.rollout_options if kind == "rollout" else self.call_options
        need = {"CPU": opts.get("num_cpus", 0), "memory": opts.get("memory", 0), **opts.get("resources", {})}
        need = {k: v for k, v in need.items() if v}
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if need and not any(all(res.get(k, 0) >= v for k, v in need.items()) for res in nodes):
            have = "; ".join(_show(r) for r in nodes)
            flag = "--rollout-cpus/--rollout-memory/--rollout-resource" if kind == "rollout" else "--eval-resource"
            raise UsageError(f"no node of the Ray cluster can run a {kind} task needing {_show(need)} "
                             f"(nodes have: {have or 'nothing'}); "
                             f"lower {flag} or start nodes with e.g. ray start --resources '{{\"docker\": 1}}'")
        self._checked.add(kind)

    def _fn(self, name: str, fn: Callable[..., Any]) -> Any:
        if name not in self._remote:
            self._remote[name] = self._ray.remote(fn)
        return self._remote[name]

    # -- the seam ----------------------------------------------------------------------------------
    async def rollout(self, runner: AgentRunner, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                      rollout_id: str = "r0") -> Trajectory:
        await self.start()
        ref = self._runner_ref(runner)
        task = self._fn("rollout", run_rollout).options(
            **self.rollout_options, max_retries=self.max_retries, retry_exceptions=False,
            scheduling_strategy=self.scheduling, name=f"rollout {rollout_id}")
        async with self._rollouts:
            out = await self._await(task.remote(ref, instance.model_dump_json(),
                                                [p.model_dump_json() for p in prior], rollout_id))
        self.placed.append({"kind": "rollout", "name": rollout_id, **out["worker"]})
        traj = Trajectory.model_validate_json(out["trajectory"])
        return traj.model_copy(update={"metadata": {**traj.metadata, "worker": out["worker"]}})

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        await self.start()
        self._check("call")
        task = self._fn("call", run_call).options(**self.call_options, max_retries=self.max_retries,
                                                  retry_exceptions=False, scheduling_strategy=self.scheduling)
        async with self._calls:
            out = await self._await(task.remote(fn, *args))
        if "usage_error" in out:
            raise UsageError(out["usage_error"])
        self.placed.append({"kind": "call", "name": getattr(fn, "__name__", "call"), **out["worker"]})
        return out["value"]

    def _runner_ref(self, runner: AgentRunner) -> Any:
        key = id(runner)
        if key not in self._runner_refs:  # keep the runner alive with its ref: ids are not reused then
            self._runner_refs[key] = (runner, self._ray.put(runner))
        return self._runner_refs[key][1]

    async def _await(self, ref: Any) -> Any:
        try:
            return await ref
        except self._ray.exceptions.RayTaskError as exc:  # the task itself raised: that exception, as is
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise


def _options(cpus: float, memory: int | None, resources: Mapping[str, float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"num_cpus": cpus}
    if memory:
        out["memory"] = int(memory)
    if resources:
        out["resources"] = dict(resources)
    return out


def _show(resources: Mapping[str, float]) -> str:
    """`CPU=2, memory=16GiB, docker=1` (Ray's internal node: and object-store entries left out)."""
    out = []
    for k, v in sorted(resources.items(), key=lambda kv: (kv[0] not in ("CPU", "memory"), kv[0])):
        if k.startswith("node:") or k == "object_store_memory":
            continue
        out.append(f"{k}={v / 2**30:.1f}GiB" if k == "memory" else f"{k}={v:g}")
    return ", ".join(out)
