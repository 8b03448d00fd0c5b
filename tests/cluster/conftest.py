"""Fixtures of the cluster tests: real HTTP tools and the test namespace's objects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.cluster.objects import Cluster
from tests.tools import Tool


@pytest.fixture
def tool() -> Iterator[Tool]:
    """A real HTTP tool on loopback."""
    running = Tool().start()
    yield running
    running.stop()


@pytest.fixture
def other_tool() -> Iterator[Tool]:
    """A second, independent tool."""
    running = Tool().start()
    yield running
    running.stop()


@pytest.fixture
def k8s(api_client: client.ApiClient, namespace: str) -> Cluster:
    """Slipway's objects in the test's namespace."""
    return Cluster(api_client, namespace)
