"""Job providers on the real control plane: the operator creates one Job per attempt, the Job
controller and kwok run it, and its Pod's status (set by a kwok stage, or by the test the way
a kubelet would) becomes the task's result. Also: the callback path, abort, timeout, retries,
an image that cannot be pulled, an operator crash, and deleting the run."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import OperatorProcess
from tests.helpers import wait_for

G, V = "slipway.dev", "v1alpha1"
TOOL = Path(__file__).resolve().parents[2] / "tasks" / "checknumber-job" / "checknumber.py"
#: kwok's pod script: see operator/slipway/devcluster/stages.yaml.
EXIT_CODE = "slipway.dev/kwok-exit-code"
MESSAGE = "slipway.dev/kwok-termination-message"
REASON = "slipway.dev/kwok-reason"
DURATION = "slipway.dev/kwok-run-duration"
#: Long enough that kwok never ends the Pod during a test: the test or the operator does.
FOREVER = "1h"

pytestmark = pytest.mark.usefixtures("crds")


class Jobs:
    """The test's view of one namespace: Slipway objects, Jobs, Pods, Secrets."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.ns = namespace

    # ------------------------------------------------------------------ set-up
    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{G}/{V}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        self.custom.create_namespaced_custom_object(G, V, self.ns, plural, body)

    def shipyard(self, **task: Any) -> None:
        """Shipyard `osint`: stage dev, sequence-one = [checknumber (with `task` settings)]."""
        tasks = [{"name": "checknumber", **task}]
        stages = [{"name": "dev", "sequences": [{"name": "sequence-one", "tasks": tasks}]}]
        self.create("shipyards", "Shipyard", "osint", {"stages": stages})

    def provider(self, annotations: dict[str, str] | None = None, **pod_spec: Any) -> None:
        """Job provider `phone-job` for checknumber; `annotations` script kwok's container."""
        template = {
            "metadata": {"annotations": annotations or {}},
            "spec": {
                "containers": [{"name": "main", "image": "example.test/checknumber:1"}],
                **pod_spec,
            },
        }
        self.create(
            "taskproviders",
            "TaskProvider",
            "phone-job",
            {"task": "checknumber", "job": {"template": template}},
        )

    def run(self, name: str = "check-1", number: str = "+44 20 7946 0958") -> None:
        spec = {
            "shipyard": "osint",
            "stage": "dev",
            "sequence": "sequence-one",
            "data": {"number": number},
        }
        self.create("sequenceruns", "SequenceRun", name, spec)

    # ------------------------------------------------------------------ reading
    def get(self, plural: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            G, V, self.ns, plural, name
        )
        return found

    def items(self, plural: str) -> list[dict[str, Any]]:
        return list(self.custom.list_namespaced_custom_object(G, V, self.ns, plural)["items"])

    def finished(self, run: str = "check-1", timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self.get("sequenceruns", run).get("status") or {}
            return status if status.get("phase") == "Finished" else None

        return wait_for(done, timeout=timeout, message=f"run {run} finished")

    def execution(self, run: str = "check-1") -> dict[str, Any]:
        """The run's only TaskExecution."""
        [found] = [e for e in self.items("taskexecutions") if e["spec"]["run"] == run]
        return found

    def provider_record(self, run: str = "check-1") -> dict[str, Any]:
        [record] = (self.execution(run).get("status") or {}).get("providers") or [{}]
        return record

    def jobs(self) -> list[client.V1Job]:
        return list(self.batch.list_namespaced_job(self.ns).items)

    def pods(self) -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(self.ns).items)

    def the_job(self) -> client.V1Job:
        """The one Job, once it exists."""
        return wait_for(lambda: _only(self.jobs()), message="a Job")

    def running_pod(self) -> client.V1Pod:
        """The one Pod, once it runs and the provider's `.started` is recorded."""

        def running() -> client.V1Pod | None:
            pod = _only(self.pods())
            if pod is None or pod.status.phase != "Running":
                return None
            return pod if self.provider_record().get("phase") == "Started" else None

        return wait_for(running, message="a running Pod recorded as started")

    def gone(self) -> bool:
        """No Job and no Pod is left."""
        return not self.jobs() and not self.pods()

    def env(self, job: client.V1Job) -> dict[str, client.V1EnvVar]:
        return {e.name: e for e in job.spec.template.spec.containers[0].env}

    def token(self, execution: str) -> str:
        secret = self.core.read_namespaced_secret(f"{execution}-callback", self.ns)
        return base64.b64decode(secret.data["token"]).decode()

    def terminate_like_a_kubelet(self, pod: client.V1Pod, exit_code: int, message: str) -> None:
        """Write the Pod's end into its status subresource, as a kubelet reports it."""
        now = datetime.now(UTC).isoformat()
        main = pod.spec.containers[0]
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        status = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
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


def _only(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else None


@pytest.fixture
def k8s(api_client: client.ApiClient, namespace: str) -> Jobs:
    return Jobs(api_client, namespace)


def post_event(url: str, token: str, event: dict[str, Any]) -> int:
    """POST a structured CloudEvent to the gateway, as a container would."""
    request = urllib.request.Request(
        url,
        data=json.dumps(event).encode(),
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {token}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


# ---------------------------------------------------------------------------- results
def test_job_that_exits_zero_passes(k8s: Jobs, operator: OperatorProcess) -> None:
    """The seed's sequence-one with checknumber as a Job: the Job carries the contract (event,
    callback, token from the Secret, owner, labels, restricted defaults, deadline) and its
    exit 0 makes the run pass."""
    k8s.shipyard(timeout="10m")
    k8s.provider()
    k8s.run()
    status = k8s.finished()
    assert (status["result"], status["reason"]) == ("pass", "Completed"), status
    execution = k8s.execution()
    record = k8s.provider_record()
    assert record["phase"] == "Finished"
    assert record["result"] == "pass"
    assert record["startedAt"] <= record["finishedAt"]
    job = k8s.the_job()
    assert record["job"] == job.metadata.name == f"{execution['metadata']['name']}-phone-job-1"
    [owner] = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (
        "TaskExecution",
        execution["metadata"]["name"],
        execution["metadata"]["uid"],
    )
    assert owner.controller
    assert job.metadata.labels["slipway.dev/run"] == "check-1"
    assert job.metadata.labels["slipway.dev/task"] == "checknumber"
    assert job.spec.backoff_limit == 0
    assert job.spec.active_deadline_seconds == 600
    assert job.spec.template.spec.security_context.run_as_non_root is True
    env = k8s.env(job)
    event = json.loads(env["SLIPWAY_EVENT"].value)
    assert event["type"] == "checknumber.triggered"
    assert event["id"] == record["triggeredId"]
    assert event["data"]["number"] == "+44 20 7946 0958"
    assert "slipwaytoken" not in event
    assert env["SLIPWAY_CALLBACK_URL"].value == (
        f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/events"
    )
    ref = env["SLIPWAY_CALLBACK_TOKEN"].value_from.secret_key_ref
    assert (ref.name, ref.key) == (f"{execution['metadata']['name']}-callback", "token")
    assert k8s.token(execution["metadata"]["name"])


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        ("3", "", "container main exited with code 3 (Error): no such number"),
        ("137", "OOMKilled", "more memory than its limit (OOMKilled, exit code 137)"),
    ],
)
def test_non_zero_exit_fails_with_the_reason(
    k8s: Jobs, operator: OperatorProcess, code: str, reason: str, expected: str
) -> None:
    """A non-zero exit (or OOMKilled) fails the task and the run, saying why."""
    k8s.shipyard()
    script = {EXIT_CODE: code, MESSAGE: "no such number"}
    if reason:
        script = {EXIT_CODE: code, REASON: reason}
    k8s.provider(script)
    k8s.run()
    status = k8s.finished()
    assert (status["result"], status["reason"]) == ("fail", "Failed"), status
    record = k8s.provider_record()
    assert record["result"] == "fail"
    assert expected in record["message"]
    assert expected in status["message"]


def test_termination_message_gives_result_and_output(k8s: Jobs, operator: OperatorProcess) -> None:
    """The JSON termination message's result, message and output reach the run: warning
    continues, the output is merged into the run's data."""
    k8s.shipyard()
    verdict = {"result": "warning", "message": "possible number", "checknumber": {"cc": "44"}}
    k8s.provider({MESSAGE: json.dumps(verdict)})
    k8s.run()
    status = k8s.finished()
    assert status["result"] == "warning", status
    assert status["data"]["checknumber"] == {"cc": "44"}
    assert status["data"]["number"] == "+44 20 7946 0958"
    record = k8s.provider_record()
    assert (record["result"], record["message"]) == ("warning", "possible number")
    assert record["output"] == {"checknumber": {"cc": "44"}}


def test_example_tool_verdict_via_the_pod_status(k8s: Jobs, operator: OperatorProcess) -> None:
    """The example tool, run with the Job's own environment, writes its termination message;
    reported through the Pod's status subresource as a kubelet would, it becomes the result
    and output of the run."""
    k8s.shipyard()
    k8s.provider({DURATION: FOREVER})
    k8s.run(number="+49 30 1234567")
    pod = k8s.running_pod()
    env = {name: var.value for name, var in k8s.env(k8s.the_job()).items() if var.value}
    log = Path(f"/tmp/slipway-termination-{uuid.uuid4().hex}")
    try:
        done = subprocess.run(
            [sys.executable, str(TOOL), "--termination-log", str(log)],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        k8s.terminate_like_a_kubelet(pod, 0, log.read_text())
    finally:
        log.unlink(missing_ok=True)
    status = k8s.finished()
    assert status["result"] == "pass", status
    assert status["data"]["checknumber"]["country"] == "DE"
    assert k8s.provider_record()["message"] == "+49301234567 is an E.164 number of DE"


def test_callback_finished_wins_over_the_termination_message(
    k8s: Jobs, operator: OperatorProcess
) -> None:
    """The container answers through the gateway with its callback token; the Job's later
    termination message (here: fail) does not change the recorded result."""
    k8s.shipyard()
    k8s.provider({DURATION: FOREVER})
    k8s.run()
    pod = k8s.running_pod()
    job = k8s.the_job()
    env = k8s.env(job)
    event = json.loads(env["SLIPWAY_EVENT"].value)
    token = k8s.token(k8s.execution()["metadata"]["name"])
    answer = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "tests/container",
        "type": "checknumber.finished",
        "triggeredid": event["id"],
        "data": {"result": "pass", "message": "via callback", "checknumber": {"via": "callback"}},
    }
    assert post_event(env["SLIPWAY_CALLBACK_URL"].value, token, answer) == 202
    status = k8s.finished()
    assert status["result"] == "pass", status
    assert status["data"]["checknumber"] == {"via": "callback"}
    k8s.terminate_like_a_kubelet(pod, 1, '{"result": "fail", "message": "too late"}')
    wait_for(
        lambda: any(c.type == "Failed" for c in (k8s.the_job().status.conditions or [])),
        message="the Job failed",
    )
    record = k8s.provider_record()
    assert (record["result"], record["message"]) == ("pass", "via callback")
    assert k8s.get("sequenceruns", "check-1")["status"]["result"] == "pass"


# ---------------------------------------------------------------------------- ending early
def test_abort_deletes_the_running_job(k8s: Jobs, operator: OperatorProcess) -> None:
    """Aborting the run while its Job runs finishes it fail/Aborted and deletes the Job and
    its Pod."""
    k8s.shipyard()
    k8s.provider({DURATION: FOREVER})
    k8s.run()
    k8s.running_pod()
    k8s.custom.patch_namespaced_custom_object(
        G, V, k8s.ns, "sequenceruns", "check-1", {"spec": {"abort": True}}
    )
    status = k8s.finished()
    assert (status["result"], status["reason"]) == ("fail", "Aborted"), status
    wait_for(k8s.gone, message="the Job and its Pod deleted")


def test_timeout_fails_and_stops_the_job(k8s: Jobs, operator: OperatorProcess) -> None:
    """A Job running past the task's timeout fails the task TimedOut, whether the engine's
    clock or the Job's activeDeadlineSeconds (the same timeout) ends it first; either way
    its Pod is gone and the Job is deleted or failed with DeadlineExceeded."""
    k8s.shipyard(timeout="3s")
    k8s.provider({DURATION: FOREVER})
    k8s.run()
    assert k8s.the_job().spec.active_deadline_seconds == 3
    status = k8s.finished()
    assert (status["result"], status["reason"]) == ("fail", "TimedOut"), status
    assert k8s.provider_record()["reason"] == "TimedOut"

    def stopped() -> bool:
        ended = all(
            j.metadata.deletion_timestamp
            or any(c.reason == "DeadlineExceeded" for c in j.status.conditions or [])
            for j in k8s.jobs()
        )
        return ended and not k8s.pods()

    wait_for(stopped, message="the Job stopped and its Pod deleted")


def test_image_that_cannot_be_pulled_fails_at_once(k8s: Jobs, operator: OperatorProcess) -> None:
    """A container stuck on ImagePullBackOff (reported as a kubelet would) fails the task
    with the image and reason, without waiting for a deadline, and its Job is deleted."""
    k8s.shipyard()
    k8s.provider({DURATION: FOREVER})
    k8s.run()
    pod = k8s.running_pod()
    status = {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "main",
                "image": "example.test/checknumber:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "running": None,
                    "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"},
                },
            }
        ],
    }
    k8s.core.patch_namespaced_pod_status(pod.metadata.name, k8s.ns, {"status": status})
    run = k8s.finished()
    assert run["result"] == "fail", run
    record = k8s.provider_record()
    assert record["reason"] == "Failed"
    assert "example.test/checknumber:1 cannot be pulled (ImagePullBackOff" in record["message"]
    wait_for(lambda: not k8s.jobs(), message="the stuck Job deleted")


def test_failed_attempt_is_retried_as_a_new_job(k8s: Jobs, operator: OperatorProcess) -> None:
    """With retries, each attempt is its own Job (backoffLimit 0): two attempts, two Jobs,
    each named for its attempt; the failed first one is kept for its logs."""
    k8s.shipyard(retries={"limit": 1, "backoff": "1s"})
    k8s.provider({EXIT_CODE: "2"})
    k8s.run()
    status = k8s.finished()
    assert status["result"] == "fail", status
    execution = k8s.execution()
    assert execution["status"]["attempts"] == 2
    name = execution["metadata"]["name"]
    names = sorted(j.metadata.name for j in k8s.jobs())
    assert names == [f"{name}-phone-job-1", f"{name}-phone-job-2"]
    assert k8s.provider_record()["job"] == f"{name}-phone-job-2"


def test_invalid_template_fails_with_the_api_servers_reason(
    k8s: Jobs, operator: OperatorProcess
) -> None:
    """A template the API server refuses fails the task with its message, creating nothing."""
    k8s.shipyard()
    k8s.create(
        "taskproviders",
        "TaskProvider",
        "phone-job",
        {"task": "checknumber", "job": {"template": {"spec": {"containers": [{"name": "x"}]}}}},
    )
    k8s.run()
    status = k8s.finished()
    assert status["result"] == "fail", status
    record = k8s.provider_record()
    assert (record["reason"], record["result"]) == ("Failed", "fail")
    assert "refused Job" in record["message"]
    assert "image" in record["message"]
    assert k8s.jobs() == []


# ---------------------------------------------------------------------------- crash safety
def test_operator_killed_while_the_job_runs(k8s: Jobs, operator: OperatorProcess) -> None:
    """SIGKILL the operator while the Job runs and let the Job finish meanwhile: restarted,
    the operator reads the result, the run completes, and no second Job is created."""
    k8s.shipyard()
    k8s.provider({DURATION: FOREVER})
    k8s.run()
    pod = k8s.running_pod()
    operator.kill()
    k8s.terminate_like_a_kubelet(pod, 0, '{"result": "pass", "message": "while you slept"}')
    wait_for(
        lambda: any(c.type == "Complete" for c in (k8s.the_job().status.conditions or [])),
        message="the Job complete",
    )
    operator.start()
    status = k8s.finished()
    assert status["result"] == "pass", status
    assert k8s.provider_record()["message"] == "while you slept"
    assert len(k8s.jobs()) == 1
    assert len(k8s.pods()) == 1


def test_operator_killed_before_the_pod_starts(k8s: Jobs, operator: OperatorProcess) -> None:
    """SIGKILL the operator while the Job's Pod cannot start yet (scheduling gate): the
    restarted operator re-sends the unanswered trigger, which finds the same Job; once the Pod
    runs, the run completes with one Job only."""
    k8s.shipyard()
    k8s.provider(schedulingGates=[{"name": "slipway.dev/test-hold"}])
    k8s.run()
    pod = wait_for(lambda: _only(k8s.pods()), message="a gated Pod")
    assert k8s.provider_record()["phase"] == "Pending"
    operator.kill()
    operator.start()
    k8s.core.patch_namespaced_pod(pod.metadata.name, k8s.ns, {"spec": {"schedulingGates": None}})
    status = k8s.finished()
    assert status["result"] == "pass", status
    assert len(k8s.jobs()) == 1


def test_deleting_the_run_deletes_everything(k8s: Jobs, operator: OperatorProcess) -> None:
    """Deleting a run with a running Job deletes its TaskExecution, Job, Pod and callback
    Secret (owner references and the garbage collector)."""
    k8s.shipyard()
    k8s.provider({DURATION: FOREVER})
    k8s.run()
    k8s.running_pod()
    execution = k8s.execution()["metadata"]["name"]
    k8s.custom.delete_namespaced_custom_object(G, V, k8s.ns, "sequenceruns", "check-1")

    def nothing_left() -> bool:
        try:
            k8s.core.read_namespaced_secret(f"{execution}-callback", k8s.ns)
        except ApiException as error:
            return error.status == 404 and k8s.gone() and not k8s.items("taskexecutions")
        return False

    wait_for(nothing_left, timeout=60, message="everything of the run deleted")
