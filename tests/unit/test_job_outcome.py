"""What a Job and its Pods say about an attempt: started, finished with which result, or not
yet; and the in-memory views the watch keeps of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from slipway.api.common import Reason, Result
from slipway.handlers.jobs import index_job, index_pod
from slipway.providers.job_outcome import (
    MAX_MESSAGE,
    JobOutcome,
    job_ended,
    job_outcome,
    job_view,
    owner_job,
    pod_view,
    pods_done,
)

T0 = "2026-01-02T03:04:05Z"
T1 = "2026-01-02T03:04:09Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def job(*conditions: dict[str, Any], deadline: int | None = 60) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "ns", "uid": "u"},
        "spec": {"activeDeadlineSeconds": deadline},
        "status": {"conditions": list(conditions)},
    }


def cond(type_: str, reason: str = "", message: str = "", status: str = "True") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": T1,
    }


def container(name: str = "main", **state: Any) -> dict[str, Any]:
    return {"name": name, "image": f"example/{name}:1", "state": state}


def ended(code: int = 0, message: str = "", reason: str = "") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            "message": message,
            "startedAt": T0,
            "finishedAt": T1,
        }
    }


def pod(
    phase: str,
    *statuses: dict[str, Any],
    names: tuple[str, ...] = ("main",),
    created: str = T0,
    **status: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"j-{created}",
            "creationTimestamp": created,
            "ownerReferences": [{"kind": "Job", "name": "j", "controller": True}],
        },
        "spec": {"containers": [{"name": n} for n in names]},
        "status": {"phase": phase, "containerStatuses": list(statuses), **status},
    }


def finished(
    code: int = 0, message: str = "", reason: str = "", phase: str | None = None
) -> dict[str, Any]:
    return pod(
        phase or ("Succeeded" if code == 0 else "Failed"),
        container(**ended(code, message, reason)),
    )


def test_nothing_to_report_before_a_pod_runs() -> None:
    """A Job with no Pod, or a Pod still pending, reports nothing."""
    assert job_outcome(job(), []) == JobOutcome()
    pending = pod("Pending", container(waiting={"reason": "ContainerCreating"}))
    assert job_outcome(job(), [pending]).phase is None


def test_running_pod_is_started_since_its_container_started() -> None:
    """A running Pod means started, at the time its container started."""
    running = pod("Running", container(running={"startedAt": T0}), startTime="2026-01-01T00:00:00Z")
    assert job_outcome(job(), [running]) == JobOutcome("started", at=at(T0))


def test_running_pod_without_container_times_uses_the_pod_start() -> None:
    """A Running Pod whose container states carry no time is started at its startTime."""
    running = pod("Running", startTime=T0)
    assert job_outcome(job(), [running]) == JobOutcome("started", at=at(T0))


def test_exit_zero_without_message_is_pass() -> None:
    """Exit 0 and no termination message: pass, finished when the container ended."""
    assert job_outcome(job(), [finished()]) == JobOutcome(
        "finished", Result.PASS, None, None, at(T1)
    )


@pytest.mark.parametrize("result", ["pass", "warning", "fail"])
def test_termination_message_gives_result_message_and_output(result: str) -> None:
    """The JSON termination message gives the result, the message and, minus the reserved
    keys, the output."""
    message = json.dumps(
        {
            "result": result,
            "message": "checked",
            "status": "succeeded",
            "task": "echoed",
            "checknumber": {"country": "GB"},
            "score": 3,
        }
    )
    outcome = job_outcome(job(), [finished(0, message)])
    assert outcome == JobOutcome(
        "finished",
        Result(result),
        "checked",
        {"checknumber": {"country": "GB"}, "score": 3},
        at(T1),
    )


def test_message_without_result_is_pass_with_output() -> None:
    """A JSON object without `result` after exit 0 is pass (exit 0 with no result)."""
    outcome = job_outcome(job(), [finished(0, '{"score": 1}')])
    assert (outcome.result, outcome.message, outcome.output) == (Result.PASS, None, {"score": 1})


def test_unknown_result_or_errored_status_is_fail_with_a_note() -> None:
    """An unknown result, or status errored, counts as fail and the message says why."""
    unknown = job_outcome(job(), [finished(0, '{"result": "ok", "message": "hm"}')])
    assert unknown.result == Result.FAIL
    assert unknown.message == "hm; result 'ok' is not one of pass, warning, fail: counts as fail"
    errored = job_outcome(job(), [finished(0, '{"result": "pass", "status": "errored"}')])
    assert errored.result == Result.FAIL
    assert errored.message == "status errored: counts as fail"


def test_non_string_message_is_kept_as_json_text() -> None:
    """A structured `message` is kept as JSON text."""
    outcome = job_outcome(job(), [finished(0, '{"message": {"why": 1}}')])
    assert outcome.message == '{"why": 1}'


def test_plain_text_message_after_exit_zero_is_pass_with_that_message() -> None:
    """A termination message that is not a JSON object is the message of a pass."""
    for text in ("all good\n", "[1, 2]", "42"):
        outcome = job_outcome(job(), [finished(0, text)])
        assert (outcome.result, outcome.message, outcome.output) == (
            Result.PASS,
            text.strip(),
            None,
        )


def test_non_zero_exit_is_fail_with_code_and_log_tail() -> None:
    """A non-zero exit fails with the code and reason, quoting the log tail the kubelet
    used as termination message (FallbackToLogsOnError); it is the tool's own verdict (no
    provider reason)."""
    outcome = job_outcome(job(), [finished(3, "Traceback ...\nKeyError: 'number'\n")])
    assert outcome.phase == "finished"
    assert outcome.result == Result.FAIL
    assert outcome.reason is None
    assert outcome.message == (
        "container main exited with code 3 (Error): Traceback ...\nKeyError: 'number'"
    )
    assert outcome.at == at(T1)


def test_non_zero_exit_wins_over_a_written_pass_but_keeps_message_and_output() -> None:
    """A tool that wrote a verdict and then crashed fails; its message and output stay."""
    message = '{"result": "pass", "message": "half done", "partial": true}'
    outcome = job_outcome(job(), [finished(1, message)])
    assert outcome.result == Result.FAIL
    assert outcome.message == "container main exited with code 1 (Error): half done"
    assert outcome.output == {"partial": True}


def test_oom_killed_says_so() -> None:
    """OOMKilled fails with a message naming the memory limit."""
    outcome = job_outcome(job(), [finished(137, "", "OOMKilled")])
    assert outcome.result == Result.FAIL
    assert outcome.message is not None
    assert "OOMKilled" in outcome.message
    assert "memory" in outcome.message
    assert "137" in outcome.message


def test_failing_sidecar_fails_the_attempt() -> None:
    """Any container's non-zero exit fails; the task's own container's message is not
    quoted for another container's failure."""
    failed = pod(
        "Failed",
        container("main", **ended(0, '{"result": "pass"}')),
        container("proxy", **ended(2, "proxy crashed")),
        names=("main", "proxy"),
    )
    outcome = job_outcome(job(), [failed])
    assert outcome.result == Result.FAIL
    assert outcome.message == "container proxy exited with code 2 (Error)"


def test_result_comes_from_the_first_container() -> None:
    """The task's container is the first of the Pod spec, whatever the status order."""
    done = pod(
        "Succeeded",
        container("sidecar", **ended(0, '{"result": "fail"}')),
        container("main", **ended(0, '{"result": "warning"}')),
        names=("main", "sidecar"),
    )
    assert job_outcome(job(), [done]).result == Result.WARNING


def test_failed_pod_without_container_exit_is_fail_with_its_reason() -> None:
    """An evicted Pod (no container exit) fails with the Pod's reason and message."""
    evicted = pod("Failed", reason="Evicted", message="The node was low on memory.")
    outcome = job_outcome(job(), [evicted])
    assert outcome.result == Result.FAIL
    assert outcome.message == "the Pod failed (Evicted: The node was low on memory.)"
    assert outcome.reason == Reason.FAILED


def test_succeeded_pod_without_statuses_is_pass() -> None:
    """A Succeeded Pod whose statuses were not reported is a pass."""
    assert job_outcome(job(), [pod("Succeeded")]).result == Result.PASS


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]
)
def test_image_that_cannot_be_pulled_fails_and_is_stuck(reason: str) -> None:
    """A container waiting on an image pull error fails at once, naming the image, and the
    Job is marked stuck (to be deleted)."""
    waiting = pod("Pending", container(waiting={"reason": reason, "message": "manifest unknown"}))
    outcome = job_outcome(job(), [waiting])
    assert outcome.phase == "finished"
    assert outcome.result == Result.FAIL
    assert outcome.stuck
    assert outcome.reason == Reason.FAILED
    assert outcome.message == (
        f"container main did not start: its image example/main:1 cannot be pulled "
        f"({reason}: manifest unknown)"
    )


def test_root_image_under_run_as_non_root_fails_with_the_kubelet_message() -> None:
    """CreateContainerConfigError (e.g. runAsNonRoot with a root image) fails at once."""
    why = "container has runAsNonRoot and image will run as root"
    waiting = pod(
        "Pending", container(waiting={"reason": "CreateContainerConfigError", "message": why})
    )
    outcome = job_outcome(job(), [waiting])
    assert outcome.stuck
    assert outcome.reason == Reason.FAILED
    assert outcome.message == (
        f"container main did not start: it cannot be created (CreateContainerConfigError: {why})"
    )


def test_init_container_pull_error_is_stuck_too() -> None:
    """An init container that cannot be pulled fails the attempt the same way."""
    waiting = pod(
        "Pending",
        initContainerStatuses=[container("init", waiting={"reason": "ImagePullBackOff"})],
    )
    outcome = job_outcome(job(), [waiting])
    assert outcome.stuck
    assert outcome.reason == Reason.FAILED
    assert outcome.message == (
        "container init did not start: its image example/init:1 cannot be pulled (ImagePullBackOff)"
    )


def test_deadline_exceeded_fails_whatever_the_pods_say() -> None:
    """DeadlineExceeded (FailureTarget first, then Failed) fails with the deadline."""
    running = pod("Running", container(running={"startedAt": T0}))
    for type_ in ("FailureTarget", "Failed"):
        outcome = job_outcome(job(cond(type_, "DeadlineExceeded")), [running])
        assert outcome == JobOutcome(
            "finished",
            Result.FAIL,
            "the Job ran past its deadline of 60 s (the task's timeout) and was stopped",
            at=at(T1),
            reason=Reason.TIMED_OUT,
        )


def test_job_verdict_waits_for_the_pod_to_be_seen_terminated() -> None:
    """When the Job says it ended before its Pod is seen terminated, wait for the Pod (its
    termination message is the verdict)."""
    running = pod("Running", container(running={"startedAt": T0}))
    for done in (cond("Complete"), cond("Failed", "BackoffLimitExceeded")):
        assert job_outcome(job(done), [running]).phase == "started"


def test_job_verdict_is_used_when_no_pod_is_left() -> None:
    """With its Pods gone, the Job's own conditions decide."""
    assert job_outcome(job(cond("Complete")), []).result == Result.PASS
    assert job_outcome(job(cond("SuccessCriteriaMet")), []).result == Result.PASS
    failed = job_outcome(job(cond("Failed", "BackoffLimitExceeded", "limit reached")), [])
    assert failed.result == Result.FAIL
    assert failed.message == "the Job failed (BackoffLimitExceeded: limit reached)"
    assert failed.reason == Reason.FAILED
    gone = pod("Running", container(running={"startedAt": T0}))
    gone["metadata"]["deletionTimestamp"] = T1
    assert job_outcome(job(cond("Failed", "BackoffLimitExceeded")), [gone]).result == Result.FAIL


def test_false_conditions_are_ignored() -> None:
    """Conditions with status False say nothing."""
    assert job_outcome(job(cond("Failed", "DeadlineExceeded", status="False")), []).phase is None


def test_newest_terminated_pod_decides() -> None:
    """Of several terminated Pods, the newest decides."""
    older = finished(1)
    newer = pod("Succeeded", container(**ended(0, '{"result": "warning"}')), created=T1)
    assert job_outcome(job(), [newer, older]).result == Result.WARNING


def test_long_messages_are_clipped() -> None:
    """A message longer than MAX_MESSAGE is cut, ending with an ellipsis."""
    outcome = job_outcome(job(), [finished(0, json.dumps({"message": "x" * 5000}))])
    assert outcome.message is not None
    assert len(outcome.message) == MAX_MESSAGE
    assert outcome.message.endswith("…")


def test_views_keep_what_the_outcome_needs() -> None:
    """The in-memory views of a Job and a Pod give the same outcome as the whole objects."""
    whole_job = job(cond("Failed", "DeadlineExceeded"))
    whole_job["metadata"]["annotations"] = {"slipway.dev/triggered-id": "t"}
    whole_job["spec"]["template"] = {"spec": {"containers": [{"name": "main"}]}}
    assert job_outcome(job_view(whole_job), []) == job_outcome(whole_job, [])
    assert "template" not in job_view(whole_job)["spec"]
    whole_pod = finished(2, "boom")
    whole_pod["spec"]["containers"][0]["env"] = [{"name": "SLIPWAY_EVENT", "value": "{}"}]
    assert job_outcome(job(), [pod_view(whole_pod)]) == job_outcome(job(), [whole_pod])
    assert "env" not in pod_view(whole_pod)["spec"]["containers"][0]


def test_index_entries_only_for_slipway_jobs_and_their_pods() -> None:
    """Jobs are indexed only with Slipway's annotations; Pods only when a Job controls them."""
    ours = job()
    ours["metadata"]["annotations"] = {"slipway.dev/triggered-id": "t"}
    assert index_job("ns", "j", ours) == {("ns", "j"): job_view(ours)}
    assert index_job("ns", "j", job()) is None
    assert owner_job(finished()) == "j"
    assert index_pod("ns", finished()) == {("ns", "j"): pod_view(finished())}
    orphan = finished()
    orphan["metadata"]["ownerReferences"] = []
    assert index_pod("ns", orphan) is None


def test_job_ended_and_pods_done() -> None:
    """A Job has ended once it is complete, failed, or targeted to be; Pods are done when
    there are some and all terminated."""
    assert not job_ended(job())
    for type_ in ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"):
        assert job_ended(job(cond(type_)))
        assert not job_ended(job(cond(type_, status="False")))
    assert not pods_done([])
    assert pods_done([finished(), finished(1)])
    assert not pods_done([finished(), pod("Running")])
