"""The event gateway on the real control plane: triggering runs over HTTP with Kubernetes
tokens and RBAC, tool callbacks with per-execution tokens, long-poll reads, and every error
answered with a JSON body and the right status."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from tests.cluster.objects import Cluster, sequence, stage
from tests.conftest import OperatorProcess
from tests.helpers import run_async, wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")


def service_account_token(
    api_client: client.ApiClient, namespace: str, name: str, verbs: list[str] | None
) -> str:
    """A token of a new ServiceAccount, granted `verbs` on sequenceruns (None: no Role)."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    if verbs is not None:
        rbac = client.RbacAuthorizationV1Api(api_client)
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": name},
                "rules": [
                    {"apiGroups": ["slipway.dev"], "resources": ["sequenceruns"], "verbs": verbs}
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    token: str = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    return token


def trigger_event(
    stage_: str = "dev", sequence_: str = "sequence-one", **data: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "tests/gateway",
        "type": f"{stage_}.{sequence_}.triggered",
        "datacontenttype": "application/json",
        "data": data,
    }


async def call(
    method: str,
    url: str,
    token: str | None = None,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    all_headers = {"Content-Type": "application/cloudevents+json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    data = io.BytesIO(raw) if raw is not None else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=all_headers) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


def request(*args: Any, **kwargs: Any) -> tuple[int, Any]:
    return run_async(call(*args, **kwargs))


@pytest.fixture
def osint(k8s: Cluster, tool: Tool) -> None:
    k8s.shipyard("osint", [stage("dev", sequence("sequence-one", "checknumber"))])
    k8s.provider("phone-checker", "checknumber", tool.url)


@pytest.mark.usefixtures("osint")
def test_trigger_over_http_runs_and_long_poll_returns_the_result(
    api_client: client.ApiClient, k8s: Cluster, operator: OperatorProcess
) -> None:
    """POST <stage>.<sequence>.triggered with an allowed token: 202 with the run's name and
    context; GET ?wait= returns once the run finished, with its status."""
    token = service_account_token(api_client, k8s.ns, "client", ["create", "get"])
    events = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/events"
    status, body = request("POST", events, token, trigger_event(number="+1 555"))
    assert status == 202, body
    assert body["namespace"] == k8s.ns
    run = k8s.get("sequenceruns", body["run"])
    assert run["spec"]["data"] == {"number": "+1 555"}
    url = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/sequenceruns/{body['run']}?wait=60s"
    status, answer = request("GET", url, token)
    assert status == 200
    assert answer["status"]["phase"] == "Finished"
    assert answer["status"]["result"] == "pass"
    assert answer["status"]["context"] == body["context"]


@pytest.mark.usefixtures("osint")
def test_duplicate_trigger_starts_one_run(
    api_client: client.ApiClient, k8s: Cluster, operator: OperatorProcess
) -> None:
    """The same event (source and id) POSTed twice starts one run."""
    token = service_account_token(api_client, k8s.ns, "client", ["create", "get"])
    events = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/events"
    event = trigger_event()
    first = request("POST", events, token, event)
    second = request("POST", events, token, event)
    assert first[0] == 202
    assert second[0] == 200
    assert second[1]["duplicate"] is True
    assert first[1]["run"] == second[1]["run"]
    assert len(k8s.items("sequenceruns")) == 1


@pytest.mark.usefixtures("osint")
def test_trigger_errors_are_json_with_the_right_status(
    api_client: client.ApiClient, k8s: Cluster, operator: OperatorProcess
) -> None:
    """401 without or with a bad token, 403 without RBAC, 400/413/415/422 for bad events;
    nothing is created by any of them."""
    allowed = service_account_token(api_client, k8s.ns, "client", ["create", "get"])
    reader = service_account_token(api_client, k8s.ns, "reader", ["get"])
    events = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/events"
    cases = [
        (401, request("POST", events, None, trigger_event())),
        (401, request("POST", events, "not-a-token", trigger_event())),
        (403, request("POST", events, reader, trigger_event())),
        (400, request("POST", events, allowed, b"{not json")),
        (415, request("POST", events, allowed, b"hello", {"Content-Type": "text/plain"})),
        (413, request("POST", events, allowed, b"{" + b" " * (2 * 1024 * 1024) + b"}")),
        (422, request("POST", events, allowed, trigger_event("qa"))),
        (422, request("POST", events, allowed, trigger_event(shipyard="nope"))),
        (422, request("POST", events, allowed, {**trigger_event(), "type": "nonsense"})),
    ]
    for expected, (status, body) in cases:
        assert status == expected, body
        assert set(body) == {"error", "message"}, body
        assert body["message"]
    assert k8s.items("sequenceruns") == []


@pytest.mark.usefixtures("osint")
def test_reading_a_run_needs_rights_and_a_real_run(
    api_client: client.ApiClient, k8s: Cluster, operator: OperatorProcess
) -> None:
    """GET answers 403 without `get` rights and 404 for a run that does not exist."""
    writer = service_account_token(api_client, k8s.ns, "writer", ["create"])
    reader = service_account_token(api_client, k8s.ns, "reader", ["get"])
    url = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/sequenceruns/none"
    assert request("GET", url, writer)[0] == 403
    status, body = request("GET", url, reader)
    assert status == 404
    assert body["error"] == "not_found"


def test_callbacks_need_their_own_token_and_an_unfinished_task(
    api_client: client.ApiClient, k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """A tool's response with another execution's token is 403; a response to a finished
    task is 409; the right response is accepted once."""
    tool.behave.update({"a": "silent", "b": "silent"})
    k8s.shipyard("s", [stage("dev", sequence("one", "a"), sequence("two", "b"))])
    k8s.provider("pa", "a", tool.url)
    k8s.provider("pb", "b", tool.url)
    k8s.run("ra", "s", "dev", "one")
    k8s.run("rb", "s", "dev", "two")
    [event_a] = wait_for(lambda: tool.events("a"), message="a triggered")
    [event_b] = wait_for(lambda: tool.events("b"), message="b triggered")
    events = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/events"

    def finished(triggered: dict[str, Any], task: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": "tests/tool",
            "type": f"{task}.finished",
            "triggeredid": triggered["id"],
            "datacontenttype": "application/json",
            "data": {"result": "pass"},
        }

    status, body = request("POST", events, event_b["slipwaytoken"], finished(event_a, "a"))
    assert status == 403, body
    status, body = request("POST", events, event_a["slipwaytoken"], finished(event_a, "a"))
    assert status == 202, body
    assert k8s.finished("ra")["result"] == "pass"
    status, body = request("POST", events, event_a["slipwaytoken"], finished(event_a, "a"))
    assert status == 409, body
    assert body["error"] == "conflict"
    assert k8s.get("sequenceruns", "rb")["status"]["phase"] == "Started"
