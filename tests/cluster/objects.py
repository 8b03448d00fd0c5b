"""Helpers over Slipway's custom objects in one test namespace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from tests.helpers import wait_for

G, V = "slipway.dev", "v1alpha1"


class Cluster:
    """Small helpers over the custom objects of one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.ns = namespace

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> Any:
        body = {
            "apiVersion": f"{G}/{V}",
            "kind": kind,
            "metadata": {"name": name, **meta},
            "spec": spec,
        }
        return self.custom.create_namespaced_custom_object(G, V, self.ns, plural, body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            G, V, self.ns, plural, name
        )
        return result

    def items(self, plural: str) -> list[dict[str, Any]]:
        found = self.custom.list_namespaced_custom_object(G, V, self.ns, plural)
        return list(found["items"])

    def shipyard(self, name: str, stages: list[dict[str, Any]]) -> None:
        self.create("shipyards", "Shipyard", name, {"stages": stages})

    def provider(self, name: str, task: str, url: str, **extra: Any) -> None:
        self.create(
            "taskproviders",
            "TaskProvider",
            name,
            {"task": task, "cloudEvent": {"url": url}, **extra},
        )

    def run(
        self,
        name: str,
        shipyard: str,
        stage: str,
        sequence: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.create(
            "sequenceruns",
            "SequenceRun",
            name,
            {"shipyard": shipyard, "stage": stage, "sequence": sequence, "data": data or {}},
        )

    def finished(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self.get("sequenceruns", name).get("status") or {}
            return status if status.get("phase") == "Finished" else None

        return wait_for(done, timeout=timeout, message=f"run {name} finished")


def stage(name: str, *sequences: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "sequences": list(sequences)}


def sequence(name: str, *tasks: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": t} for t in tasks], **extra}


class JobView:
    """The Jobs and Pods of the test's namespace, and a kubelet's report of a Pod's end."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.ns = namespace

    def the_job(self) -> client.V1Job:
        def one() -> client.V1Job | None:
            jobs = self.batch.list_namespaced_job(self.ns).items
            return jobs[0] if len(jobs) == 1 else None

        return wait_for(one, message="the Job")

    def running_pod(self) -> client.V1Pod:
        def running() -> client.V1Pod | None:
            pods = self.core.list_namespaced_pod(self.ns).items
            return pods[0] if len(pods) == 1 and pods[0].status.phase == "Running" else None

        return wait_for(running, message="a running Pod")

    def terminate_like_a_kubelet(self, pod: client.V1Pod, message: str) -> None:
        """Write the Pod's successful end, with its termination message, into its status."""
        now = datetime.now(UTC).isoformat()
        main = pod.spec.containers[0]
        terminated = {
            "exitCode": 0,
            "reason": "Completed",
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        status = {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": main.name,
                    "image": main.image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"running": None, "terminated": terminated},
                }
            ],
        }
        self.core.patch_namespaced_pod_status(pod.metadata.name, self.ns, {"status": status})
