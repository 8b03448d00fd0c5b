"""Fixtures of the whole suite.

Tests under `tests/cluster/` are marked `cluster` and get the real local control plane: the
session fixture reuses a running one (`make cluster`) or starts one and stops it at the end.
Each such test gets a namespace of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.devcluster.cluster import ClusterConfig, LocalCluster
from slipway.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in item.nodeid or item.nodeid.startswith("cluster/"):
            item.add_marker(pytest.mark.cluster)


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
    from kubernetes import client, config

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
