"""What a Job and its Pods say about one attempt of a job provider (pure: dicts in, data out).

The verdict, in order:
- the Job ran past `activeDeadlineSeconds` (condition `FailureTarget`/`Failed`, reason
  `DeadlineExceeded`) → finished, `fail`;
- a Pod terminated → finished: a non-zero exit of any container (or a Pod that failed with no
  container exit, e.g. evicted) is `fail` with the exit code and reason (`OOMKilled`, `Error`)
  in the message; otherwise the task's container's termination message decides: a JSON object
  `{"result": ..., "message": ..., ...output}` gives its result (none: `pass`; an unknown
  one or `status: errored`: `fail`), its message and its output (the keys that are not
  reserved); a message that is not a JSON object is kept as the message of a `pass`;
- a container cannot start and will not by itself (its image cannot be pulled, its
  configuration is invalid, e.g. an image running as root under `runAsNonRoot`) → finished,
  `fail`, and `stuck` (the Job would otherwise retry until its deadline);
- the Job finished while none of its Pods is left to read → the Job's own word;
- a Pod runs → started; otherwise nothing to report yet.

A verdict the tool did not give itself (deadline, a container that cannot start, an evicted
Pod, a Job that failed with no Pod left) carries a `reason` (`TimedOut` for the deadline, as
when the engine times a provider out; `Failed` otherwise), like any provider failure.

With a non-zero exit the kubelet's `FallbackToLogsOnError` makes the message the tail of the
container's log when the tool wrote no termination message: it is quoted in the message.
The task's container is the first one of the Pod template; other containers (sidecars) only
count when they fail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from slipway.api.common import Reason, Result
from slipway.events import RESERVED_DATA_KEYS

JobPhase = Literal["started", "finished"]

#: Waiting reasons of a container that will not start without a change to the Pod template
#: or the image: reported as a failure at once instead of waiting for the deadline.
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
#: Longest message recorded from a termination message or a log tail.
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class JobOutcome:
    """`phase` None: nothing to report yet. `started`: a Pod runs (`at`: since when).
    `finished`: `result`, `message` and `output` (None: no output) are the verdict, `at` when
    it ended (None: unknown, use the current time); `reason` is set when the tool did not
    give the verdict itself (then `result` is `fail`). `stuck`: the Job will not end by
    itself and should be deleted once the verdict is recorded."""

    phase: JobPhase | None = None
    result: Result | None = None
    message: str | None = None
    output: dict[str, Any] | None = None
    at: datetime | None = None
    stuck: bool = False
    reason: Reason | None = None


def job_outcome(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> JobOutcome:
    """The outcome of `job` (a batch/v1 Job as a dict) given its Pods (v1 Pod dicts, in any
    order; Pods of other Jobs must not be passed). See the module's docstring for the rules."""
    status = job.get("status") or {}
    deadline = _condition(status, ("FailureTarget", "Failed"), reason="DeadlineExceeded")
    if deadline is not None:
        seconds = (job.get("spec") or {}).get("activeDeadlineSeconds")
        limit = f" of {seconds} s" if seconds is not None else ""
        return JobOutcome(
            "finished",
            Result.FAIL,
            f"the Job ran past its deadline{limit} (the task's timeout) and was stopped",
            at=_time(deadline.get("lastTransitionTime")),
            reason=Reason.TIMED_OUT,
        )
    ordered = sorted(pods, key=lambda p: str(_meta(p).get("creationTimestamp") or ""))
    terminal = [p for p in ordered if _pod_status(p).get("phase") in ("Succeeded", "Failed")]
    if terminal:
        return _from_terminated_pod(terminal[-1])
    for pod in reversed(ordered):
        stuck = _stuck(pod)
        if stuck is not None:
            return stuck
    ended = _job_ended(status)
    live = [p for p in ordered if not _meta(p).get("deletionTimestamp")]
    if ended is not None and not live:
        return ended
    for pod in reversed(ordered):
        since = _running_since(pod)
        if since is not None:
            return JobOutcome("started", at=since)
    return JobOutcome()


# ---------------------------------------------------------------------------- a finished Pod
def _from_terminated_pod(pod: Mapping[str, Any]) -> JobOutcome:
    status = _pod_status(pod)
    statuses = _container_statuses(pod)
    main_name = _main_container(pod)
    main = next((c for c in statuses if c.get("name") == main_name), None)
    main_end = _terminated(main) if main is not None else None
    failures = [
        (c, t) for c in statuses if (t := _terminated(c)) is not None and t.get("exitCode", 0) != 0
    ]
    if main_end is None and not failures:
        if status.get("phase") == "Succeeded":
            return JobOutcome("finished", Result.PASS, None)
        why = ": ".join(x for x in (status.get("reason"), status.get("message")) if x)
        return JobOutcome(
            "finished",
            Result.FAIL,
            f"the Pod failed ({why or 'no reason given'})",
            reason=Reason.FAILED,
        )
    text = (main_end or {}).get("message") or ""
    parsed = _parse_message(text)
    at = _time((main_end or failures[0][1]).get("finishedAt"))
    if failures:
        container, ended = next(((c, t) for c, t in failures if c is main), failures[0])
        message = _exit_message(str(container.get("name")), ended)
        said = _said(parsed, text) if container is main else None
        if said:
            message = f"{message}: {said}"
        output = _output(parsed) if parsed is not None else None
        return JobOutcome("finished", Result.FAIL, _clip(message), output, at)
    if parsed is None:
        return JobOutcome("finished", Result.PASS, _clip(text.strip()) or None, at=at)
    result, note = _verdict(parsed)
    said = "; ".join(m for m in (_text(parsed.get("message")), note) if m) or None
    return JobOutcome("finished", result, _clip(said), _output(parsed), at)


def _exit_message(name: str, ended: Mapping[str, Any]) -> str:
    code = ended.get("exitCode")
    reason = ended.get("reason") or "Error"
    if reason == "OOMKilled":
        return (
            f"container {name} was killed for using more memory than its limit "
            f"(OOMKilled, exit code {code})"
        )
    return f"container {name} exited with code {code} ({reason})"


def _said(parsed: dict[str, Any] | None, text: str) -> str | None:
    """What the tool said before failing: its JSON message, or its raw text (the tail of its
    log, with `FallbackToLogsOnError`)."""
    if parsed is not None:
        return _text(parsed.get("message"))
    return text.strip() or None


def _parse_message(text: str) -> dict[str, Any] | None:
    """The termination message as a JSON object, or None when it is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _verdict(data: Mapping[str, Any]) -> tuple[Result, str | None]:
    """The result a tool wrote (none: `pass`) and, when it is turned into `fail`, why."""
    raw = data.get("result")
    notes = []
    try:
        result = Result.PASS if raw is None else Result(raw)
    except ValueError:
        result = Result.FAIL
        notes.append(f"result {raw!r} is not one of pass, warning, fail")
    state = data.get("status")
    if state is not None and state != "succeeded":
        result = Result.FAIL
        notes.append(
            "status errored" if state == "errored" else f"status {state!r} is not succeeded"
        )
    return result, (f"{'; '.join(notes)}: counts as fail" if notes else None)


def _output(data: Mapping[str, Any]) -> dict[str, Any] | None:
    return {k: v for k, v in data.items() if k not in RESERVED_DATA_KEYS} or None


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return json.dumps(value, sort_keys=True)


def _clip(message: str | None) -> str | None:
    if message is None or len(message) <= MAX_MESSAGE:
        return message
    return message[: MAX_MESSAGE - 1] + "…"


# ---------------------------------------------------------------------------- other states
def _stuck(pod: Mapping[str, Any]) -> JobOutcome | None:
    status = _pod_status(pod)
    for container in [*(status.get("initContainerStatuses") or []), *_container_statuses(pod)]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in STUCK_REASONS:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            what = (
                f"its image {container.get('image')} cannot be pulled"
                if "Image" in str(reason)
                else "it cannot be created"
            )
            return JobOutcome(
                "finished",
                Result.FAIL,
                _clip(
                    f"container {container.get('name')} did not start: {what} ({reason}{detail})"
                ),
                stuck=True,
                reason=Reason.FAILED,
            )
    return None


def job_ended(job: Mapping[str, Any]) -> bool:
    """Whether the Job finished or is finishing (`Complete`, `Failed`, or their targets
    `SuccessCriteriaMet`, `FailureTarget` set while its Pods terminate)."""
    types = ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget")
    return _condition(job.get("status") or {}, types) is not None


def pods_done(pods: Sequence[Mapping[str, Any]]) -> bool:
    """Whether there are Pods and every one of them terminated."""
    phases = [_pod_status(p).get("phase") for p in pods]
    return bool(phases) and all(p in ("Succeeded", "Failed") for p in phases)


def _job_ended(status: Mapping[str, Any]) -> JobOutcome | None:
    """The Job's own verdict (used when none of its Pods is left to read)."""
    done = _condition(status, ("Complete", "SuccessCriteriaMet"))
    if done is not None:
        return JobOutcome("finished", Result.PASS, None, at=_time(status.get("completionTime")))
    failed = _condition(status, ("Failed", "FailureTarget"))
    if failed is not None:
        why = ": ".join(x for x in (failed.get("reason"), failed.get("message")) if x)
        return JobOutcome(
            "finished",
            Result.FAIL,
            _clip(f"the Job failed ({why or 'no reason given'})"),
            at=_time(failed.get("lastTransitionTime")),
            reason=Reason.FAILED,
        )
    return None


def _running_since(pod: Mapping[str, Any]) -> datetime | None:
    """When the Pod's containers started, if any did (None: not running yet)."""
    status = _pod_status(pod)
    starts = []
    for container in _container_statuses(pod):
        state = container.get("state") or {}
        for key in ("running", "terminated"):
            if state.get(key):
                starts.append(_time(state[key].get("startedAt")))
    if status.get("phase") == "Running" or starts:
        known = [s for s in starts if s is not None]
        return min(known) if known else _time(status.get("startTime"))
    return None


# ---------------------------------------------------------------------------- reading dicts
def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _pod_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("status") or {}


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(_pod_status(pod).get("containerStatuses") or [])


def _main_container(pod: Mapping[str, Any]) -> str | None:
    """The task's container: the first of the Pod spec (or of the statuses, without one)."""
    containers = (pod.get("spec") or {}).get("containers") or _container_statuses(pod)
    return str(containers[0].get("name")) if containers else None


def _terminated(container: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if container is None:
        return None
    ended = (container.get("state") or {}).get("terminated")
    return ended if isinstance(ended, Mapping) else None


def _condition(
    status: Mapping[str, Any], types: tuple[str, ...], reason: str | None = None
) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") in types
            and condition.get("status") == "True"
            and (reason is None or condition.get("reason") == reason)
        ):
            return condition  # type: ignore[no-any-return]  # a JSON object
    return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- index views
def job_view(job: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Job that `job_outcome` and the watch need (kept in memory per Job)."""
    meta = _meta(job)
    return {
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "uid",
                "labels",
                "annotations",
                "ownerReferences",
                "deletionTimestamp",
            )
            if key in meta
        },
        "spec": {"activeDeadlineSeconds": (job.get("spec") or {}).get("activeDeadlineSeconds")},
        "status": dict(job.get("status") or {}),
    }


def pod_view(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Pod that `job_outcome` needs (kept in memory per Pod)."""
    meta = _meta(pod)
    status = _pod_status(pod)
    containers = (pod.get("spec") or {}).get("containers") or []
    return {
        "metadata": {
            key: meta[key]
            for key in ("name", "creationTimestamp", "deletionTimestamp")
            if key in meta
        },
        "spec": {"containers": [{"name": c.get("name")} for c in containers]},
        "status": {
            key: status[key]
            for key in (
                "phase",
                "reason",
                "message",
                "startTime",
                "containerStatuses",
                "initContainerStatuses",
            )
            if key in status
        },
    }


def owner_job(pod: Mapping[str, Any]) -> str | None:
    """The name of the Job that controls `pod`, if one does."""
    for ref in _meta(pod).get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("controller"):
            return str(ref.get("name"))
    return None
