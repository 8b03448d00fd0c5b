"""Fixtures of the real-node tests (`make test-real`, marker `real`).

They run on the same local control plane as the cluster tests, plus its real node
(containerd and a kubelet, `slipway dev cluster up --real-node`) and the images built from
the project's Dockerfiles (`make images`). The session fixture builds what is missing (cached),
starts the node unless it runs, and stops it at the end if it started it. Each test's
namespace enforces Pod Security "restricted", so the real kubelet proves what the Job
template and the install's Deployment claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from slipway.devcluster.binaries import NODE_COMPONENTS, ensure_binaries
from slipway.devcluster.cluster import ClusterConfig, LocalCluster
from slipway.devcluster.images import build_all
from slipway.devcluster.node import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION, RealNode
from slipway.settings import Settings
from tests.cluster.objects import Cluster

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@pytest.fixture(scope="session")
def real_node(kubeconfig: Path) -> Iterator[RealNode]:
    """The real node of the session's control plane, with every image imported."""
    settings = Settings.from_env()
    config = ClusterConfig(
        cache_dir=settings.cache_dir,
        port=settings.cluster_port,
        kubebuilder_assets=settings.kubebuilder_assets,
    )
    cluster = LocalCluster(config)
    pause = ensure_binaries(config.cache_dir, components=NODE_COMPONENTS)["pause"]
    build_all(config.cache_dir, pause_binary=pause)
    started = not cluster.node.running()
    cluster.up(real_node=True)
    yield cluster.node
    if started:
        cluster.node.down()


@pytest.fixture
def namespace(api_client: client.ApiClient, real_node: RealNode) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security "restricted", deleted afterwards."""
    core = client.CoreV1Api(api_client)
    name = f"r-{uuid.uuid4().hex[:10]}"
    labels = {"slipway.dev/test": "true", **RESTRICTED}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def k8s(api_client: client.ApiClient, namespace: str) -> Cluster:
    return Cluster(api_client, namespace)


def on_real_node(spec: dict[str, Any]) -> dict[str, Any]:
    """A pod spec sent to the real node (by its label, past its taint)."""
    return {
        **spec,
        "nodeSelector": {**spec.get("nodeSelector", {}), **REAL_NODE_SELECTOR},
        "tolerations": [*spec.get("tolerations", []), REAL_NODE_TOLERATION],
    }
