"""Decisions for a TaskExecution: wait, trigger its providers, time out, retry, finish.

`decide_execution` is a pure function of the execution, the TaskProviders serving its task,
and the time; the providers' answers are written into the status by `apply_response` and
`fail_provider` (in `slipway.engine.responses`), after which the handler asks
`decide_execution` again. The same arguments always give the same decision.

Timing (all from the execution's own status, so a restarted operator keeps the clocks):
- the first attempt is due at `created + triggeredAfter`; a retry at `nextAttemptAt`;
- with no provider, the task waits until the due time + `startTimeout`, then fails
  `NoProvider`;
- each provider must send `.started` or `.finished` within `startTimeout` of its
  `.triggered`, and `.finished` within `timeout`, or it fails `TimedOut`.
The set of providers is fixed when an attempt starts: one created later serves the next
attempt, one deleted meanwhile times out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from slipway.api.common import (
    WAITING_FOR_PROVIDER,
    ConditionStatus,
    Phase,
    Reason,
    Result,
    parse_duration,
)
from slipway.api.taskexecution import (
    MAX_PROVIDERS,
    ProviderRecord,
    TaskExecutionSpec,
    TaskExecutionStatus,
)
from slipway.api.taskprovider import TaskProviderSpec
from slipway.engine.conditions import SUCCEEDED, conditions_with
from slipway.engine.data import merge_outputs
from slipway.engine.decisions import ExecutionDecision, KubeEvent, Trigger
from slipway.engine.patches import finish_status, status_patch
from slipway.engine.responses import (
    ResponseRejectedError,
    apply_response,
    end_provider,
    fail_provider,
    finish_execution,
    pending_triggers,
)
from slipway.engine.results import succeeded, worst

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "ExecutionView",
    "ProviderView",
    "ResponseRejectedError",
    "apply_response",
    "decide_execution",
    "fail_provider",
    "finish_execution",
    "pending_triggers",
    "serves",
]

DEFAULT_START_TIMEOUT = timedelta(minutes=10)

#: Condition reasons while an execution is under way.
PENDING = "Pending"
RUNNING = "Running"
RETRYING = "Retrying"
#: Kubernetes Event reasons posted on an execution: only what went wrong (a person reads
#: Events in `kubectl describe`; the status tells every step already, and an Event is one
#: more API write).
EVENT_WAITING = WAITING_FOR_PROVIDER
EVENT_TIMED_OUT = "ProviderTimedOut"
EVENT_RETRYING = "TaskRetrying"
EVENT_FINISHED = "TaskFinished"
EVENT_TOO_MANY = "TooManyProviders"
#: Provider reasons set by the engine rather than reported: the provider's work (a Job) may
#: still be running, so it is cleaned up.
_ENDED_BY_ENGINE = (Reason.TIMED_OUT, Reason.ABORTED)


@dataclass(frozen=True)
class ProviderView:
    """A TaskProvider serving the execution's task: its name and spec."""

    name: str
    spec: TaskProviderSpec


@dataclass(frozen=True)
class ExecutionView:
    """What the engine reads of a TaskExecution."""

    namespace: str
    name: str
    created: datetime
    spec: TaskExecutionSpec
    status: TaskExecutionStatus


@dataclass(frozen=True)
class _Limits:
    delay: timedelta
    start_timeout: timedelta
    timeout: timedelta | None

    @classmethod
    def of(cls, spec: TaskExecutionSpec, default_start_timeout: timedelta) -> _Limits:
        task = spec.task
        return cls(
            delay=parse_duration(task.triggered_after) if task.triggered_after else timedelta(),
            start_timeout=(
                parse_duration(task.start_timeout) if task.start_timeout else default_start_timeout
            ),
            timeout=parse_duration(task.timeout) if task.timeout else None,
        )


def serves(provider: TaskProviderSpec, shipyard: str, stage: str, task: str) -> bool:
    """Whether `provider` carries out `task` in `stage` of `shipyard` (its `stages` and
    `shipyards` unset mean every one)."""
    return provider.serves(shipyard, stage, task)


def decide_execution(
    execution: ExecutionView,
    providers: Sequence[ProviderView],
    now: datetime,
    triggered_id: Callable[[str, int], str],
    default_start_timeout: timedelta = DEFAULT_START_TIMEOUT,
) -> ExecutionDecision:
    """What to do for `execution` now.

    `providers`: the TaskProviders serving its task (see `serves`), in any order; they are
    used in name order. `triggered_id(provider, attempt)`: the id of the `.triggered` event
    for that provider and attempt. A finished execution gives `finished=True` and, as
    `cleanup`, the providers whose work may still run (never finished, timed out, aborted);
    nothing else. `cleanup` names refer to the provider entries of the status this decision
    writes (or of the current one when it writes none).
    """
    status = execution.status
    if status.phase == Phase.FINISHED:
        return ExecutionDecision(finished=True, cleanup=_leftovers(status))
    limits = _Limits.of(execution.spec, default_start_timeout)
    new = status.copied()
    decision = ExecutionDecision()
    if new.phase is None:
        new.phase = Phase.PENDING
        _condition(new, ConditionStatus.UNKNOWN, PENDING, "waiting to be triggered", now)
    if new.attempts == 0 or new.next_attempt_at is not None:
        _before_attempt(execution, new, providers, now, triggered_id, limits, decision)
    else:
        _during_attempt(execution, new, now, limits, decision)
    decision.status = status_patch(status, new) or None
    return decision


def _before_attempt(
    execution: ExecutionView,
    new: TaskExecutionStatus,
    providers: Sequence[ProviderView],
    now: datetime,
    triggered_id: Callable[[str, int], str],
    limits: _Limits,
    decision: ExecutionDecision,
) -> None:
    """Waiting for the first attempt (delay, provider) or for a retry."""
    retry = new.attempts > 0 and new.next_attempt_at is not None
    # Without a delay the first attempt is due at once, even when this clock is a little
    # behind the API server's (which stamped `created`).
    due = execution.created + limits.delay if limits.delay else min(execution.created, now)
    if retry and new.next_attempt_at is not None:
        due = new.next_attempt_at
    if retry:
        decision.cleanup = [p.name for p in new.providers]  # the failed attempt's work
    if now < due:
        if not retry:
            message = (
                f"waiting until {_time(due)} (triggeredAfter {execution.spec.task.triggered_after})"
            )
            _condition(new, ConditionStatus.UNKNOWN, PENDING, message, now)
        decision.wake_at = due
        return
    if not providers:
        _wait_for_provider(execution, new, now, due + limits.start_timeout, decision)
        return
    decision.cleanup = []  # the status written now replaces the old attempt's entries
    _start_attempt(execution, new, providers, now, triggered_id, limits, decision)


def _wait_for_provider(
    execution: ExecutionView,
    new: TaskExecutionStatus,
    now: datetime,
    deadline: datetime,
    decision: ExecutionDecision,
) -> None:
    spec = execution.spec
    where = f"task {spec.task.name} in stage {spec.stage} (Shipyard {spec.shipyard})"
    if now >= deadline:
        message = (
            f"no TaskProvider serves {where}: create a TaskProvider for task {spec.task.name} "
            f"in stage {spec.stage}; waited until {_time(deadline)}"
        )
        _finish(new, Result.FAIL, Reason.NO_PROVIDER, message, now, decision)
        return
    message = f"waiting for a TaskProvider for {where} until {_time(deadline)}"
    if not _has_reason(new, WAITING_FOR_PROVIDER):
        decision.events.append(KubeEvent("Warning", EVENT_WAITING, message))
    _condition(new, ConditionStatus.UNKNOWN, WAITING_FOR_PROVIDER, message, now)
    decision.wake_at = deadline


def _start_attempt(
    execution: ExecutionView,
    new: TaskExecutionStatus,
    providers: Sequence[ProviderView],
    now: datetime,
    triggered_id: Callable[[str, int], str],
    limits: _Limits,
    decision: ExecutionDecision,
) -> None:
    ordered = sorted(providers, key=lambda p: p.name)
    chosen, ignored = ordered[:MAX_PROVIDERS], ordered[MAX_PROVIDERS:]
    attempt = new.attempts + 1
    new.attempts = attempt
    new.attempt_started_at = now
    new.started_at = new.started_at or now
    new.next_attempt_at = None
    new.phase = Phase.STARTED
    new.providers = [
        ProviderRecord(
            name=p.name,
            kind=p.spec.kind,
            attempt=attempt,
            triggered_id=triggered_id(p.name, attempt),
            triggered_at=now,
            deadline=_own_deadline(p.spec, now),
        )
        for p in chosen
    ]
    decision.triggers = [
        Trigger(p.name, attempt, r.triggered_id or "")
        for p, r in zip(chosen, new.providers, strict=True)
    ]
    names = ", ".join(p.name for p in chosen)
    label = _attempt_label(execution, attempt)
    _condition(new, ConditionStatus.UNKNOWN, RUNNING, f"{label}: waiting for {names}", now)
    if ignored:
        decision.events.append(
            KubeEvent(
                "Warning",
                EVENT_TOO_MANY,
                f"only {MAX_PROVIDERS} providers serve one task; ignored: "
                + ", ".join(p.name for p in ignored),
            )
        )
    decision.wake_at = now + min(limits.start_timeout, limits.timeout or limits.start_timeout)


def _during_attempt(
    execution: ExecutionView,
    new: TaskExecutionStatus,
    now: datetime,
    limits: _Limits,
    decision: ExecutionDecision,
) -> None:
    """An attempt is under way: time out late providers; conclude once all finished."""
    task = execution.spec.task
    deadlines: list[datetime] = []
    waiting = False  # a provider is still at work (with or without a deadline)
    for record in new.providers:
        if record.phase == Phase.FINISHED:
            continue
        begin = record.triggered_at or new.attempt_started_at or execution.created
        start_by = begin + limits.start_timeout
        finish_by = begin + limits.timeout if limits.timeout is not None else None
        if record.phase == Phase.PENDING and now >= start_by:
            within = _span(task.start_timeout, limits.start_timeout)
            late = f"no .started or .finished within {within} (startTimeout)"
        elif finish_by is not None and now >= finish_by:
            late = f"no .finished within {_span(task.timeout, limits.timeout)} (timeout)"
        elif record.deadline is not None and now >= record.deadline:
            late = f"no decision by {_time(record.deadline)} (the approval's timeout)"
        else:
            waiting = True
            if record.phase == Phase.PENDING:
                deadlines.append(start_by)
            if finish_by is not None:
                deadlines.append(finish_by)
            if record.deadline is not None:
                deadlines.append(record.deadline)
            continue
        end_provider(record, Reason.TIMED_OUT, late, now)
        decision.cleanup.append(record.name)
        decision.events.append(
            KubeEvent("Warning", EVENT_TIMED_OUT, f"provider {record.name}: {late}")
        )
    if waiting:
        decision.wake_at = min(deadlines) if deadlines else None
        return
    _conclude(execution, new, now, decision)


def _conclude(
    execution: ExecutionView, new: TaskExecutionStatus, now: datetime, decision: ExecutionDecision
) -> None:
    """Every provider of the attempt finished: retry a failed attempt, or finish."""
    records = sorted(new.providers, key=lambda p: p.name)
    if not records:  # only a hand-edited status gets here: there is nothing to wait for
        _finish(new, Result.FAIL, Reason.FAILED, "no provider was triggered", now, decision)
        return
    result = worst(p.result for p in records)
    reasons = {p.reason for p in records}
    summary = "; ".join(_provider_summary(p) for p in records)
    retries = execution.spec.task.retries
    if (
        result == Result.FAIL
        and Reason.ABORTED not in reasons
        and retries is not None
        and new.attempts <= retries.limit
    ):
        new.next_attempt_at = now + parse_duration(retries.backoff)
        label = _attempt_label(execution, new.attempts)
        message = f"{label} failed ({summary}); next attempt at {_time(new.next_attempt_at)}"
        _condition(new, ConditionStatus.UNKNOWN, RETRYING, message, now)
        decision.cleanup = [p.name for p in new.providers]
        decision.events.append(KubeEvent("Warning", EVENT_RETRYING, message))
        decision.wake_at = new.next_attempt_at
        return
    if succeeded(result):
        reason = Reason.COMPLETED
    elif Reason.ABORTED in reasons:
        reason = Reason.ABORTED
    elif Reason.TIMED_OUT in reasons:
        reason = Reason.TIMED_OUT
    elif Reason.DATA_TOO_LARGE in reasons:
        reason = Reason.DATA_TOO_LARGE
    else:
        reason = Reason.FAILED
    new.output = merge_outputs([p.output for p in records]) or None
    _finish(new, result, reason, summary, now, decision)
    decision.cleanup = _leftovers(new)


def _finish(
    new: TaskExecutionStatus,
    result: Result,
    reason: Reason,
    message: str,
    now: datetime,
    decision: ExecutionDecision | None,
) -> None:
    finish_status(new, result, reason, message, now)
    ok = succeeded(result)
    if decision is not None:
        decision.finished = True
    if decision is not None and not ok:
        decision.events.append(
            KubeEvent(
                "Normal" if ok else "Warning",
                EVENT_FINISHED,
                f"{result.value} ({reason.value}): {message}",
            )
        )


def _own_deadline(provider: TaskProviderSpec, now: datetime) -> datetime | None:
    """A provider's own time limit (an approval's `timeout`), from its trigger."""
    approval = provider.approval
    if approval is None or approval.timeout is None:
        return None
    return now + parse_duration(approval.timeout)


def _leftovers(status: TaskExecutionStatus) -> list[str]:
    """Providers whose work may still run: never finished, or ended by the engine."""
    return [
        p.name
        for p in status.providers
        if p.phase != Phase.FINISHED or p.reason in _ENDED_BY_ENGINE
    ]


def _provider_summary(record: ProviderRecord) -> str:
    text = f"{record.name}: {record.result.value if record.result else Result.FAIL.value}"
    if record.reason is not None:
        text += f" ({record.reason.value})"
    if record.message:
        text += f" - {record.message}"
    return text


def _condition(
    new: TaskExecutionStatus, status: ConditionStatus, reason: str, message: str, now: datetime
) -> None:
    new.conditions = conditions_with(new.conditions, SUCCEEDED, status, reason, message, now)


def _has_reason(status: TaskExecutionStatus, reason: str) -> bool:
    return any(c.type == SUCCEEDED and c.reason == reason for c in status.conditions)


def _attempt_label(execution: ExecutionView, attempt: int) -> str:
    retries = execution.spec.task.retries
    total = 1 + retries.limit if retries is not None else 1
    return f"attempt {attempt}/{total}"


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _span(written: str | None, duration: timedelta | None) -> str:
    """A duration as the task wrote it, else (a default) in seconds."""
    return written or f"{(duration or timedelta()).total_seconds():g}s"
