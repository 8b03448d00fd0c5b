"""Limits on the real control plane: a flood of bad tokens costs one TokenReview, a trigger
with too much data is refused 413, and a run created with too much data finishes
`DataTooLarge` instead of failing to store its status."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from slipway.devcluster.cluster import ClusterConfig, LocalCluster
from slipway.settings import Settings
from tests.cluster.objects import Cluster, sequence, stage
from tests.cluster.test_gateway import request, service_account_token, trigger_event
from tests.conftest import OperatorProcess
from tests.helpers import run_async

pytestmark = pytest.mark.usefixtures("crds")


def audit_log() -> Path:
    settings = Settings.from_env()
    return LocalCluster(
        ClusterConfig(cache_dir=settings.cache_dir, port=settings.cluster_port)
    ).audit_log


def token_reviews_since(since: float) -> int:
    """TokenReviews the API server was asked for since `since` (epoch seconds)."""
    count = 0
    for line in audit_log().read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ref = entry.get("objectRef") or {}
        if ref.get("resource") != "tokenreviews" or entry.get("stage") != "ResponseComplete":
            continue
        when = datetime.fromisoformat(entry["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if when.timestamp() >= since:
            count += 1
    return count


def test_a_flood_of_one_bad_token_costs_one_token_review(operator: OperatorProcess) -> None:
    """Eighty requests with the same unknown token, at once and again later, are all 401 with
    JSON; the API server is asked about that token once (shared review, negative cache)."""
    since = time.time() - 1
    url = f"{operator.gateway_url}/v1/namespaces/{operator.namespace}/events"
    body = json.dumps(trigger_event()).encode()
    headers = {
        "Content-Type": "application/cloudevents+json",
        "Authorization": "Bearer not-a-token",
    }

    async def flood() -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession() as session:

            async def one() -> tuple[int, Any]:
                async with session.post(url, data=body, headers=headers) as reply:
                    return reply.status, await reply.json(content_type=None)

            first = await asyncio.gather(*(one() for _ in range(40)))
            second = await asyncio.gather(*(one() for _ in range(40)))
            return [*first, *second]

    answers = run_async(flood())
    assert {status for status, _ in answers} == {401}
    assert all(body["error"] == "unauthorized" for _, body in answers)
    assert token_reviews_since(since) == 1


def test_a_trigger_with_too_much_data_is_refused_413(
    api_client: Any, namespace: str, k8s: Cluster, operator: OperatorProcess
) -> None:
    """A trigger whose data is over SLIPWAY_MAX_RUN_DATA_BYTES (but whose body is within the
    body limit) gets 413 naming the limit, and no run is created."""
    k8s.shipyard("osint", [stage("dev", sequence("sequence-one", "checknumber"))])
    token = service_account_token(api_client, namespace, "client", ["create", "get"])
    event = trigger_event(blob="x" * (100 * 1024), more=["y" * (100 * 1024)] * 5)
    status, body = request(
        "POST", f"{operator.gateway_url}/v1/namespaces/{namespace}/events", token, event
    )
    assert (status, body["error"]) == (413, "data_too_large")
    assert "SLIPWAY_MAX_RUN_DATA_BYTES" in body["message"]
    assert k8s.items("sequenceruns") == []


def test_a_run_created_with_too_much_data_finishes_data_too_large(
    k8s: Cluster, operator: OperatorProcess
) -> None:
    """A run applied with kubectl (no gateway) whose data is over the limit finishes at once,
    fail/DataTooLarge, and the operator does not try to copy the data into its status."""
    k8s.shipyard("osint", [stage("dev", sequence("sequence-one", "checknumber"))])
    k8s.run("big", "osint", "dev", "sequence-one", {"blob": "x" * (600 * 1024)})
    status = k8s.finished("big")
    assert (status["result"], status["reason"]) == ("fail", "DataTooLarge")
    assert "SLIPWAY_MAX_RUN_DATA_BYTES" in status["message"]
    assert "data" not in status
    assert k8s.items("taskexecutions") == []
