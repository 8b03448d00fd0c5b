"""Job providers on the real node: real containers from the project's own images, run by a
kubelet with containerd in namespaces that enforce Pod Security "restricted".

What kwok only scripts in tests/cluster/test_jobs.py happens here for real: a tool's verdict
in its termination message, a non-zero exit, a deadline that kills the container, the kernel's
OOM killer under a tiny memory limit, and an image that is not there.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml
from kubernetes import client

from slipway.devcluster.node import NODE_NAME
from tests.cluster.objects import Cluster
from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.photo_tools import TASKS, images
from tests.real.conftest import on_real_node

pytestmark = pytest.mark.usefixtures("crds")

G, V = "slipway.dev", "v1alpha1"
PHOTO_TASKS = ["extract-metadata", "geolookup", "author-search"]


def container(image: str, **extra: Any) -> dict[str, Any]:
    """A container of one of the project's images, never pulled, on a read-only root."""
    return {
        "name": "main",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"readOnlyRootFilesystem": True},
        **extra,
    }


def job_provider(k8s: Cluster, task: str, *containers: dict[str, Any], **spec: Any) -> None:
    template = {"spec": on_real_node({"containers": list(containers), **spec})}
    k8s.create(
        "taskproviders",
        "TaskProvider",
        f"{task}-job",
        {"task": task, "job": {"template": template}},
    )


def one_task(k8s: Cluster, task: str = "checknumber", **settings: Any) -> None:
    stages = [
        {"name": "dev", "sequences": [{"name": "one", "tasks": [{"name": task, **settings}]}]}
    ]
    k8s.shipyard("osint", stages)


def python(code: str) -> dict[str, Any]:
    """The checknumber-job image running a Python snippet instead of the tool."""
    return container("checknumber-job:dev", command=["python", "-c", code])


def the_pod(api_client: client.ApiClient, namespace: str) -> client.V1Pod:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def ran_for_real(pod: client.V1Pod) -> client.V1ContainerState:
    """The pod ran on the real node, and a real kubelet reported its container's end."""
    assert pod.spec.node_name == NODE_NAME
    [status] = pod.status.container_statuses
    assert status.image_id, "no image id: no real runtime ran this container"
    assert status.container_id.startswith("containerd://")
    return status.state


@pytest.mark.parametrize(
    ("image", "args"),
    [("checknumber-job:dev", []), ("checknumber:dev", ["job"]), ("checknumber-js:dev", [])],
)
def test_checknumber_runs_as_a_job_and_its_verdict_passes(
    k8s: Cluster,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    image: str,
    args: list[str],
) -> None:
    """Each checknumber image, run as a Job by the real kubelet as non-root on a read-only
    root filesystem, reads SLIPWAY_EVENT and writes its verdict to the termination message,
    which becomes the run's result and data."""
    one_task(k8s, timeout="3m")
    job_provider(k8s, "checknumber", container(image, args=args))
    k8s.run("check-1", "osint", "dev", "one", {"number": "+44 20 7946 0958"})
    status = k8s.finished("check-1", timeout=180)
    assert status["result"] == "pass", status
    assert status["data"]["checknumber"]["country"] == "GB", status
    state = ran_for_real(the_pod(api_client, k8s.ns))
    assert state.terminated.exit_code == 0
    assert state.terminated.reason == "Completed"
    assert json.loads(state.terminated.message)["result"] == "pass"


def test_non_zero_exit_fails_with_the_exit_code(
    k8s: Cluster, operator: OperatorProcess, api_client: client.ApiClient
) -> None:
    """A container that exits 3 fails the task with that code and the kubelet's reason."""
    one_task(k8s)
    job_provider(k8s, "checknumber", python("import sys; print('no such number'); sys.exit(3)"))
    k8s.run("check-1", "osint", "dev", "one", {"number": "1"})
    status = k8s.finished("check-1", timeout=180)
    assert status["result"] == "fail", status
    assert "container main exited with code 3 (Error)" in status["tasks"][0]["message"], status
    assert ran_for_real(the_pod(api_client, k8s.ns)).terminated.exit_code == 3


def test_termination_message_gives_result_and_output(
    k8s: Cluster, operator: OperatorProcess, api_client: client.ApiClient
) -> None:
    """What the container writes to /dev/termination-log is its verdict: result, message and
    output reach the run."""
    verdict = {"result": "warning", "message": "possible number", "checknumber": {"cc": "44"}}
    code = f"open('/dev/termination-log', 'w').write({json.dumps(verdict)!r})"
    one_task(k8s)
    job_provider(k8s, "checknumber", python(code))
    k8s.run("check-1", "osint", "dev", "one", {"number": "1"})
    status = k8s.finished("check-1", timeout=180)
    assert status["result"] == "warning", status
    assert status["data"]["checknumber"] == {"cc": "44"}
    assert status["tasks"][0]["message"].endswith("warning - possible number"), status
    assert ran_for_real(the_pod(api_client, k8s.ns)).terminated.exit_code == 0


def test_deadline_kills_the_container(
    k8s: Cluster, operator: OperatorProcess, api_client: client.ApiClient
) -> None:
    """A container still running at the task's timeout is killed (the Job's
    activeDeadlineSeconds, or the engine deleting the Job): the task fails TimedOut and no
    container is left running."""
    one_task(k8s, timeout="8s")
    job_provider(k8s, "checknumber", python("import time; time.sleep(3600)"))
    k8s.run("check-1", "osint", "dev", "one", {"number": "1"})

    def started() -> bool:
        pods = client.CoreV1Api(api_client).list_namespaced_pod(k8s.ns).items
        return any(p.status.phase == "Running" for p in pods)

    wait_for(started, timeout=120, message="the container running")
    status = k8s.finished("check-1", timeout=120)
    assert (status["result"], status["reason"]) == ("fail", "TimedOut"), status

    def no_container_runs() -> bool:
        pods = client.CoreV1Api(api_client).list_namespaced_pod(k8s.ns).items
        return all(p.status.phase in ("Failed", "Succeeded") for p in pods)

    wait_for(no_container_runs, timeout=90, message="the container killed")


def test_oom_killed_container_fails_with_the_reason(
    k8s: Cluster, operator: OperatorProcess, api_client: client.ApiClient
) -> None:
    """A container that allocates past its memory limit is killed by the kernel: the task
    fails, saying it needed more memory than its limit."""
    one_task(k8s)
    hog = python("b = bytearray(512 * 1024 * 1024); print(len(b))")
    hog["resources"] = {"limits": {"memory": "48Mi", "cpu": "500m"}}
    job_provider(k8s, "checknumber", hog)
    k8s.run("check-1", "osint", "dev", "one", {"number": "1"})
    status = k8s.finished("check-1", timeout=180)
    assert status["result"] == "fail", status
    assert "more memory than its limit (OOMKilled, exit code 137)" in status["message"], status
    state = ran_for_real(the_pod(api_client, k8s.ns))
    assert (state.terminated.reason, state.terminated.exit_code) == ("OOMKilled", 137)


def test_missing_image_fails_the_task_with_the_reason(
    k8s: Cluster, operator: OperatorProcess
) -> None:
    """An image the node does not have (and must not pull) fails the task at once, naming
    the image and the kubelet's reason; the stuck Job is deleted."""
    one_task(k8s)
    missing = container("slipway-no-such-image:dev", imagePullPolicy="Never")
    job_provider(k8s, "checknumber", missing)
    k8s.run("check-1", "osint", "dev", "one", {"number": "1"})
    status = k8s.finished("check-1", timeout=180)
    assert status["result"] == "fail", status
    message = status["tasks"][0]["message"]
    assert "its image slipway-no-such-image:dev cannot be pulled (ErrImageNeverPull" in message
    batch = client.BatchV1Api(k8s.custom.api_client)
    wait_for(
        lambda: not batch.list_namespaced_job(k8s.ns).items,
        timeout=60,
        message="the stuck Job deleted",
    )


def test_the_photo_tools_run_as_jobs_through_sequence_two(
    k8s: Cluster, operator: OperatorProcess, api_client: client.ApiClient
) -> None:
    """Sequence-two with its three photo tools as Jobs from their images (the photo inline in
    the event, the catalogue baked into author-search's image) and the shipped photo gate:
    an unedited photo at the claimed place passes with a score of 100."""
    gate = yaml.safe_load((TASKS / "photo-gate" / "taskprovider.yaml").read_text())
    tasks = [{"name": t, "timeout": "3m"} for t in PHOTO_TASKS] + [{"name": "evaluate"}]
    k8s.shipyard("osint", [{"name": "dev", "sequences": [{"name": "two", "tasks": tasks}]}])
    for task in PHOTO_TASKS:
        job_provider(k8s, task, container(f"{task}:dev", args=["job"]))
    k8s.create("taskproviders", "TaskProvider", "photo-authenticity", gate["spec"])
    photo = base64.b64encode(images().unedited_photo()).decode()
    data = {"image": {"data": photo}, "claimedLocation": {"lat": 50.3755, "lon": -4.1427}}
    k8s.run("photo-1", "osint", "dev", "two", data)
    status = k8s.finished("photo-1", timeout=400)
    assert status["result"] == "pass", status
    assert [t["name"] for t in status["tasks"]] == [*PHOTO_TASKS, "evaluate"]
    assert status["data"]["extract-metadata"]["camera"]["model"] == "X100V"
    assert status["data"]["geolookup"]["place"] == "Plymouth"
    assert status["data"]["evaluation"]["score"] == 100
    pods = client.CoreV1Api(api_client).list_namespaced_pod(k8s.ns).items
    assert len(pods) == 3
    for pod in pods:
        assert ran_for_real(pod).terminated.exit_code == 0
