"""Helpers of the sequence-control tests: people with tokens and RBAC, finishing a silent
tool's task by hand, reading a run's phase."""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes import client

from tests.cluster.objects import Cluster
from tests.cluster.test_gateway import request
from tests.helpers import wait_for


def person(
    api_client: client.ApiClient, namespace: str, name: str, rules: list[dict[str, Any]]
) -> tuple[str, str]:
    """A ServiceAccount standing for a person, with a Role of `rules`: (username, token)."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    if rules:
        rbac = client.RbacAuthorizationV1Api(api_client)
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    token: str = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 1200}}
    ).status.token
    return f"system:serviceaccount:{namespace}:{name}", token


#: The Role rule of an approver: the custom verb `approve` on taskexecutions.
APPROVE = {"apiGroups": ["slipway.dev"], "resources": ["taskexecutions"], "verbs": ["approve"]}
#: The Role rule of someone who triggers runs through the gateway.
TRIGGER = {"apiGroups": ["slipway.dev"], "resources": ["sequenceruns"], "verbs": ["create", "get"]}


def decide(
    gateway: str, namespace: str, execution: str, token: str, decision: str, comment: str = ""
) -> tuple[int, Any]:
    url = f"{gateway}/v1/namespaces/{namespace}/taskexecutions/{execution}/approval"
    body: dict[str, Any] = {"decision": decision}
    if comment:
        body["comment"] = comment
    return request("POST", url, token, body, headers={"Content-Type": "application/json"})


def finish_task(gateway: str, namespace: str, triggered: dict[str, Any], result: str) -> None:
    """Answer a `.triggered` a silent tool received with `.finished` (as the tool would)."""
    task = triggered["type"].removesuffix(".triggered")
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "tests/control",
        "type": f"{task}.finished",
        "triggeredid": triggered["id"],
        "datacontenttype": "application/json",
        "data": {"result": result},
    }
    status, body = request(
        "POST", f"{gateway}/v1/namespaces/{namespace}/events", triggered["slipwaytoken"], event
    )
    assert status == 202, body


def phase(k8s: Cluster, run: str) -> str | None:
    return (k8s.get("sequenceruns", run).get("status") or {}).get("phase")


def wait_phase(k8s: Cluster, run: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = k8s.get("sequenceruns", run).get("status") or {}
        return status if status.get("phase") == wanted else None

    return wait_for(reached, timeout=timeout, message=f"run {run} {wanted}")


def provider_entry(k8s: Cluster, execution: str) -> dict[str, Any]:
    """The (only) provider entry of an execution, once it exists."""

    def entry() -> dict[str, Any] | None:
        providers = (k8s.get("taskexecutions", execution).get("status") or {}).get("providers")
        return providers[0] if providers else None

    return wait_for(entry, message=f"{execution} triggered")


def events_of(api_client: client.ApiClient, namespace: str, name: str) -> list[Any]:
    core = client.CoreV1Api(api_client)
    return [
        e for e in core.list_namespaced_event(namespace).items if e.involved_object.name == name
    ]
