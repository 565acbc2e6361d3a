"""mini-swe-agent as a library: one `DefaultAgent` per rollout in a thread, in a fresh clone (`local`)
or a SWE-bench image (`docker`); the embedded model as the agent (`model="local"`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from tts.errors import MissingDependency, UsageError
from tts.records import Record, Trajectory, TrajectorySummary
from tts.redact import add_secret
from tts.swe.git import clone_at, working_tree_diff
from tts.swe.instance import SWEInstance
from tts.swe.local_agent import LOCAL_AGENT, LOCAL_CONFIG_SPEC, LOCAL_MODEL, LOCAL_REPLY_TOKENS, LOCAL_STEP_LIMIT
from tts.swe.model_errors import check_agent_model, context_overflow, fail_fast, one_line, refused, why_refused
from tts.swe.prior import PRIOR_BLOCK, render_prior

_import_lock = threading.Lock()
_mswea_dir: str | None = None


def import_minisweagent() -> Any:
    """Import mini-swe-agent quietly: no banner, its config dir in a private temp dir, and the
    process environment exactly as it was afterwards. litellm comes in through `tts._litellm`
    (offline price table)."""
    global _mswea_dir
    with _import_lock:
        if "minisweagent.agents.default" in sys.modules:
            return sys.modules["minisweagent"]
        from tts._litellm import _restore_environ, import_litellm

        import_litellm()
        before = dict(os.environ)
        if _mswea_dir is None:
            import atexit

            _mswea_dir = tempfile.mkdtemp(prefix="tts-mswea-")
            atexit.register(shutil.rmtree, _mswea_dir, True)
        os.environ["MSWEA_GLOBAL_CONFIG_DIR"] = _mswea_dir
        os.environ["MSWEA_SILENT_STARTUP"] = "1"
        try:
            import minisweagent
            import minisweagent.agents.default
            import minisweagent.config
            import minisweagent.environments
            import minisweagent.models
        except ImportError:
            raise MissingDependency("the mini-swe-agent runner needs the swe extra: "
                                    "pip install 'tts-scaling[swe]'") from None
        finally:
            _restore_environ(before)
        return minisweagent


def swebench_image(instance: SWEInstance) -> str:
    if instance.image_name:
        return instance.image_name
    iid = instance.instance_id.replace("__", "_1776_")
    return f"docker.io/swebench/sweb.eval.x86_64.{iid}:latest".lower()


class MiniSweAgentConfig(Record):
    """How mini-swe-agent runs one rollout. `agent`, `model`, `environment` override the sections
    of `config_spec` (a built-in mini-swe-agent config name or a YAML path)."""

    config_spec: str = "swebench.yaml"
    model: str | None = None
    """litellm model name; None: the one in `config_spec`."""
    model_class: str = "litellm"
    """litellm (tool calls), litellm_textbased (```mswea_bash_command blocks), or an import path."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Passed to litellm (api_base, api_key, temperature, ...)."""
    api_key_env: str | None = None
    """Read the API key from this environment variable where the rollout runs (e.g. a Ray worker),
    so the key travels in no config or task argument."""
    env: Literal["local", "docker"] = "local"
    step_limit: int | None = None
    cost_limit: float | None = None
    wall_time_limit_s: int | None = None
    command_timeout_s: int | None = None
    workdir: str | None = None
    """Where per-rollout clones go (default: a temp dir); each is removed after its rollout."""
    keep_workdirs: bool = False
    native_dir: str | None = None
    """Also save each rollout in mini-swe-agent's own format here (for its inspector)."""
    agent: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    max_threads: int = Field(32, ge=1)
    """Rollouts run in threads (mini-swe-agent is synchronous); this bounds them."""
    prompts: dict[str, str] = Field(default_factory=dict)


ModelFactory = Callable[[SWEInstance, str, dict[str, Any]], Any]


class MiniSweAgentRunner:
    """mini-swe-agent's `DefaultAgent`, one per rollout, in a thread.

    `model_factory(instance, rollout_id, model_config)` replaces `get_model` (e.g. a
    `DeterministicModel` in tests)."""

    def __init__(self, config: MiniSweAgentConfig | None = None, *, model_factory: ModelFactory | None = None,
                 **fields: Any) -> None:
        self.config = config or MiniSweAgentConfig(**fields)
        add_secret(self.config.model_kwargs.get("api_key"))  # never in the run dir or a message (tts.redact)
        self.model_factory = model_factory
        self._executor: ThreadPoolExecutor | None = None
        self._local: Any = None  # the embedded model's backend, for model="local"
        self._checked = False
        self._refused: UsageError | None = None  # set by the first refused request: no rollout starts after it

    def __getstate__(self) -> dict[str, Any]:  # shipped to a Ray worker: without the thread pool
        return {**self.__dict__, "_executor": None}

    def close(self) -> None:
        """Let the rollout threads go (a Ray worker calls this after each rollout)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.max_threads, thread_name_prefix="tts-rollout")
        return self._executor

    async def run(self, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                  rollout_id: str = "r0") -> Trajectory:
        if self.config.env == "docker":
            from tts.swe.docker_probe import require_docker

            require_docker("--env docker", "--env local")
        elif instance.source_repo is None:
            raise UsageError(f"instance {instance.instance_id} has no local repository (repo_path) for --env local; "
                             f"add repo_path to the dataset row or use --env docker")
        if self._refused is not None:
            raise self._refused
        import_minisweagent()  # in the loop's thread: the import is not thread-safe
        model_over: dict[str, Any] = {}
        if self.config.model == "local":
            model_over = await self._local_model()
        elif not self._checked and self.model_factory is None:
            check_agent_model(self.config.model, self.config.model_kwargs.get("api_base"))
        self._checked = True
        prior_text = render_prior(prior, self.config.prompts) if prior else None
        loop = asyncio.get_running_loop()
        traj = await loop.run_in_executor(self._pool(), self._run_sync, instance, prior_text, rollout_id, model_over)
        return traj.model_copy(update={"metadata": {**traj.metadata, "prior_ids": [s.source_id for s in prior]}})

    async def _local_model(self) -> dict[str, Any]:
        """The embedded model's server (started once, shared with `--model local` judges and summaries) as
        an OpenAI-compatible endpoint for mini-swe-agent's text-based litellm model."""
        from tts.local import MODEL_NAME, LocalBackend

        if self._local is None:
            self._local = LocalBackend()
        api_base = await self._local.endpoint()
        return {"model_name": f"openai/{MODEL_NAME}", "model_class": "litellm_textbased",
                "model_kwargs": {"api_base": api_base, "api_key": "local", "max_tokens": LOCAL_REPLY_TOKENS}}

    async def aclose(self) -> None:
        local, self._local = self._local, None
        if local is not None:
            await local.aclose()

    # -- the synchronous part, in a worker thread ------------------------------------------------
    def _configs(self, cwd: str | None, model_over: dict[str, Any] | None = None) -> tuple[dict, dict, dict]:
        from minisweagent.config import get_config_from_spec
        from minisweagent.utils.serialize import recursive_merge

        c = self.config
        local = c.model == "local"
        base = get_config_from_spec(LOCAL_CONFIG_SPEC if local and c.config_spec == "swebench.yaml" else c.config_spec)
        agent = recursive_merge(base.get("agent", {}), {**(LOCAL_AGENT if local else {}), **c.agent})
        if local and c.step_limit is None:
            agent["step_limit"] = LOCAL_STEP_LIMIT
        for key, value in (("step_limit", c.step_limit), ("cost_limit", c.cost_limit),
                           ("wall_time_limit_seconds", c.wall_time_limit_s)):
            if value is not None:
                agent[key] = value
        tpl = agent["instance_template"]
        if cwd is not None:
            tpl = tpl.replace("/testbed", cwd)
        # Prior summaries go right after the issue; only conditioned rollouts define `prior`.
        marker = "</pr_description>"
        tpl = tpl.replace(marker, marker + PRIOR_BLOCK, 1) if marker in tpl else tpl + PRIOR_BLOCK
        agent["instance_template"] = tpl
        model = recursive_merge(base.get("model", {}), {"model_class": c.model_class, "cost_tracking": "ignore_errors"})
        if c.model:
            model["model_name"] = c.model
        model["model_kwargs"] = {**model.get("model_kwargs", {}), **c.model_kwargs}
        if c.api_key_env and os.environ.get(c.api_key_env):
            model["model_kwargs"]["api_key"] = os.environ[c.api_key_env]
        add_secret(model["model_kwargs"].get("api_key"))  # a key from the config file or a Ray worker's env too
        if model_over:
            model.update({k: v for k, v in model_over.items() if k != "model_kwargs"})
            model["model_kwargs"] = {**model["model_kwargs"], **model_over.get("model_kwargs", {})}
            model.update(LOCAL_MODEL)
        env = recursive_merge(base.get("environment", {}), c.environment)
        if c.command_timeout_s is not None:
            env["timeout"] = c.command_timeout_s
        return agent, model, env

    def _run_sync(self, instance: SWEInstance, prior_text: str | None, rollout_id: str,
                  model_over: dict[str, Any] | None = None) -> Trajectory:
        from minisweagent.agents.default import DefaultAgent
        from minisweagent.environments import get_environment
        from minisweagent.models import get_model

        from tts.swe.readers import read_mswea

        c = self.config
        if self._refused is not None:  # queued behind the rollout that was refused
            raise self._refused
        tmp = None
        cwd: str | None = None
        env_obj = None
        if c.env == "local":
            tmp = Path(tempfile.mkdtemp(prefix=f"tts-{instance.instance_id[:40]}-", dir=c.workdir))
            cwd = str(clone_at(str(instance.source_repo), instance.base_commit, tmp / "repo"))
        agent_cfg, model_cfg, env_cfg = self._configs(cwd, model_over)
        try:
            if c.env == "local":
                env_vars = {k: v for k, v in (env_cfg.get("env") or {}).items() if k != "BASH_ENV"}
                env_obj = get_environment({"environment_class": "local", "cwd": cwd, "env": env_vars,
                                           "timeout": env_cfg.get("timeout", 60)})
            else:
                env_cfg = {**env_cfg, "environment_class": "docker", "image": swebench_image(instance)}
                env_obj = get_environment(env_cfg)
            model = (self.model_factory(instance, rollout_id, model_cfg) if self.model_factory
                     else get_model(config=model_cfg))
            fail_fast(model)
            agent = DefaultAgent(model, env_obj, **agent_cfg)
            kwargs = {"prior": prior_text} if prior_text else {}
            error: str | None = None
            try:
                info = agent.run(instance.problem_statement, **kwargs)
                status, submission = info.get("exit_status") or "Unknown", info.get("submission") or ""
            except Exception as exc:  # the agent re-raises what it did not handle; the rollout still counts
                if refused(exc):  # every other rollout would get the same answer: stop the run
                    self._refused = UsageError(f"the agent's model {model_cfg.get('model_name')!r} was refused: "
                                               f"{why_refused(exc)}{one_line(exc)}; check --model (a litellm model "
                                               f"string, or 'local'), --api-base and --api-key")
                    raise self._refused from None
                status, submission = type(exc).__name__, ""
                # Running out of context ends a rollout like a step limit: its work so far still counts.
                error = None if context_overflow(exc) else one_line(exc)
            try:
                data = agent.serialize()
            except Exception:  # a model config that cannot be serialized must not lose the rollout
                data = {"messages": agent.messages, "trajectory_format": "mini-swe-agent-1.1",
                        "info": {"exit_status": status, "submission": submission}}
            if c.native_dir:
                from tts.swe.rundir import safe_name, write_atomic

                data_out = {**data, "instance_id": instance.instance_id}
                write_atomic(Path(c.native_dir) / f"{safe_name(rollout_id)}.traj.json",
                             json.dumps(data_out, indent=1, default=str))
            patch, source = submission, "submission"
            if status != "Submitted" or not submission.strip():
                patch, source = self._diff(env_obj, cwd), "git-diff"
            traj = read_mswea(data, traj_id=rollout_id)
            meta = {k: v for k, v in traj.metadata.items() if k != "error"}
            return traj.model_copy(update={
                "task_id": instance.instance_id, "outcome": status, "patch": patch or None,
                "metadata": {**meta, "patch_source": source, "rollout_id": rollout_id, "env": c.env,
                             **({"error": error} if error else {})},
            })
        finally:
            cleanup = getattr(env_obj, "cleanup", None)
            if c.env == "docker" and cleanup is not None:
                cleanup()
            if tmp is not None and not c.keep_workdirs:
                shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _diff(env_obj: Any, cwd: str | None) -> str:
        if cwd is not None:
            return working_tree_diff(cwd)
        out = env_obj.execute({"command": "git -c core.pager=cat diff --no-color"})
        return out.get("output", "") if out.get("returncode") == 0 else ""
