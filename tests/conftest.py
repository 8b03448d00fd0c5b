"""Fixtures of the whole suite.

Tests under `tests/cluster/` are marked `cluster` and get the real local control plane: the
session fixture reuses a running one (`make cluster`) or starts one and stops it at the end.
Each such test gets a namespace of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.api.resources import RESOURCES
from slipway.app import READY_MESSAGE
from slipway.devcluster.cluster import ClusterConfig, LocalCluster
from slipway.settings import Settings
from tests.helpers import kubectl, wait_for

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in item.nodeid or item.nodeid.startswith("cluster/"):
            item.add_marker(pytest.mark.cluster)
        if "tests/real/" in item.nodeid or item.nodeid.startswith("real/"):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """The admin kubeconfig of the local control plane, started or reused for the session.
    KUBECONFIG is set for the test process and every process it starts."""
    settings = Settings.from_env()
    config = ClusterConfig(
        cache_dir=settings.cache_dir,
        port=settings.cluster_port,
        kubebuilder_assets=settings.kubebuilder_assets,
    )
    cluster = LocalCluster(config)
    started = cluster.up()
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(config.kubeconfig)
    yield config.kubeconfig
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous
    if started:
        cluster.down()


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[object]:
    """A synchronous Kubernetes API client for the tests' own reads and writes."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(api_client: object) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"slipway.dev/test": "true"}}})
    yield name
    core.delete_namespace(name)


class OperatorProcess:
    """The real operator (`python -m slipway run`) as a child process, watching one
    namespace, its gateway and `/metrics` on free loopback ports; its output goes to
    `log_path`."""

    def __init__(self, namespace: str, log_path: Path, env: dict[str, str] | None = None):
        port = _free_port()
        self.namespace = namespace
        self.log_path = log_path
        self.gateway_url = f"http://127.0.0.1:{port}"
        self.metrics_port = _free_port()
        self.metrics_address = f"127.0.0.1:{self.metrics_port}"
        self.env = {
            **os.environ,
            "SLIPWAY_NAMESPACE": namespace,
            "SLIPWAY_GATEWAY_ADDRESS": f"127.0.0.1:{port}",
            "SLIPWAY_GATEWAY_URL": self.gateway_url,
            "SLIPWAY_METRICS_PORT": str(self.metrics_port),
            # One member identity per process object: a restart (after a kill) takes its
            # own Lease back, as a restarted container of the same Pod does.
            "SLIPWAY_IDENTITY": f"operator-{port}",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the operator and wait until it says it is ready (watching and serving)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = open(self.log_path, "ab")  # noqa: SIM115 (owned by the child; closed on stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slipway", "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        out.close()
        process = self.process

        def ready() -> bool:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return process.poll() is not None or READY_MESSAGE.encode() in log.read()

        wait_for(ready, timeout=60, message="operator start")
        assert process.poll() is None, f"operator exited:\n{self.log()}"

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def operator(kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator running against the local control plane, watching the test's namespace.
    Fails the test when the operator logged a traceback or did not stop cleanly."""
    process = OperatorProcess(namespace, tmp_path / "operator.log")
    process.start()
    yield process
    code = process.stop()
    log = process.log()
    assert "Traceback" not in log, f"operator logged a traceback:\n{log}"
    assert code in (0, -signal.SIGTERM), f"operator exited with {code}:\n{log}"


@pytest.fixture(scope="session")
def crds(kubeconfig: Path) -> None:
    """The generated CRDs, applied (idempotent: they are cluster-scoped) and established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    names = [f"crd/{resource.plural}.slipway.dev" for resource in RESOURCES]
    kubectl("wait", "--for", "condition=established", "--timeout=60s", *names)
