"""A throwaway multi-node Ray cluster on this machine, for tests, benchmarks and trying things out:
`ray start --head` plus one `ray start --address` per extra node, each with its own CPUs and
custom resources, on a loopback node address, free ports, and its own temp dir.

    with LocalRayCluster([{"num_cpus": 1}, {"num_cpus": 1, "resources": {"docker": 1}}]) as cluster:
        RayExecutor(cluster.address, ...)
        cluster.kill_raylet(1)          # the second node dies mid-run

Every process the cluster starts carries a marker in its environment; `stop()` kills exactly
those (by pid), never other Ray processes on the machine (`ray stop` would kill them all).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

NODE_IP = "127.0.0.2"
"""A loopback address Ray keeps as given (it replaces 127.0.0.1 by the machine's outward address)."""

# Fast failure detection: a dead node is noticed in about 3 s, not 30.
SYSTEM_CONFIG = {"health_check_period_ms": 1000, "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


def pids_with_marker(marker: str, name: str = "TTS_RAY_CLUSTER") -> list[int]:
    """Live processes (other than this one) whose environment has `name=marker`: what a command
    started with that variable left behind, its daemons and their children included (Linux /proc)."""
    found = []
    needle = f"{name}={marker}".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(d))
    return found


class LocalRayCluster:
    def __init__(self, nodes: list[dict[str, Any]], *, pythonpath: str | None = None, timeout_s: float = 120) -> None:
        self.nodes = nodes
        self.marker = uuid.uuid4().hex[:12]
        self.temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length cap
        self.pythonpath = pythonpath
        self.timeout_s = timeout_s
        self.port = free_port()
        self.node_manager_ports: list[int] = []

    @property
    def address(self) -> str:
        return f"{NODE_IP}:{self.port}"

    def env(self) -> dict[str, str]:
        # HOME of its own: a ~/.ray/auth_token left by another Ray session turns joining nodes away
        env = {**os.environ, "TTS_RAY_CLUSTER": self.marker, "RAY_USAGE_STATS_ENABLED": "0", "HOME": self.temp_dir}
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.pythonpath, env.get("PYTHONPATH")) if p)
        return env

    def start(self) -> LocalRayCluster:
        try:
            for i, node in enumerate(self.nodes):
                self._start_node(i, node)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, i: int, node: dict[str, Any]) -> None:
        # A loaded machine can make `ray start` give up (its raylet registers after its fixed 30 s):
        # kill what that attempt left, by its own marker, and try again.
        for attempt in range(3):
            nm = free_port()
            if i == 0 and attempt:
                self.port = free_port()
            cmd = [_ray_bin(), "start", "--node-ip-address", NODE_IP, "--num-cpus", str(node.get("num_cpus", 1)),
                   "--resources", json.dumps(node.get("resources", {})), "--disable-usage-stats",
                   "--node-manager-port", str(nm), "--object-manager-port", str(free_port()),
                   "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                   "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
                   "--object-store-memory", str(node.get("object_store_memory", 200 * 2**20)), "--temp-dir",
                   self.temp_dir]
            if i == 0:
                cmd += ["--head", "--port", str(self.port), "--include-dashboard", "false",
                        "--ray-client-server-port", str(free_port()), "--system-config", json.dumps(SYSTEM_CONFIG)]
            else:
                cmd += ["--address", self.address]
            tag = f"{i}.{attempt}"
            try:
                out = subprocess.run(cmd, env={**self.env(), "TTS_RAY_NODE": tag}, capture_output=True, text=True,
                                     timeout=self.timeout_s)
                ok, why = out.returncode == 0, (out.stderr or out.stdout).strip()[-2000:]
            except subprocess.TimeoutExpired:
                ok, why = False, f"ray start did not finish in {self.timeout_s} s"
            if ok:
                self.node_manager_ports.append(nm)
                return
            _kill(pids_with_marker(tag, "TTS_RAY_NODE"))
            if i == 0:  # a new head: nothing else joined the old one yet
                _kill(self.pids())
        raise RuntimeError(f"ray start (node {i}) failed 3 times: {why}")

    def pids(self) -> list[int]:
        """Every live process this cluster started (and their children, e.g. Ray workers)."""
        return pids_with_marker(self.marker)

    def raylet_pid(self, node: int) -> int | None:
        flag = f"--node_manager_port={self.node_manager_ports[node]}".encode()
        for pid in self.pids():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"/raylet") and flag in cmd:
                return pid
        return None

    def kill_raylet(self, node: int) -> int:
        pid = self.raylet_pid(node)
        if pid is None:
            raise RuntimeError(f"no raylet found for node {node}")
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, timeout_s: float = 10) -> None:
        """SIGTERM the cluster's processes, SIGKILL what is left after `timeout_s`, remove the temp dir."""
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.pids():
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
