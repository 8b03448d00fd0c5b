"""decide_execution and the response helpers: delay, providers and the lack of them,
timeouts, worst-of results, retries with backoff, idempotence and crash recovery."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from slipway.api.common import Phase, Reason, Result
from slipway.api.shipyard import Task
from slipway.api.taskexecution import ProviderRecord, TaskExecutionSpec, TaskExecutionStatus
from slipway.api.taskprovider import ProviderKind, TaskProviderSpec
from slipway.engine.decisions import ExecutionDecision, Trigger
from slipway.engine.executions import (
    DEFAULT_START_TIMEOUT,
    ExecutionView,
    ProviderView,
    ResponseRejectedError,
    apply_response,
    decide_execution,
    fail_provider,
    finish_execution,
    pending_triggers,
    serves,
)
from slipway.engine.responses import note_delivery

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
ResponsePhase = Literal["started", "status.changed", "finished"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def tid(provider: str, attempt: int) -> str:
    return f"ns/ex/{provider}/{attempt}"


def provider(name: str, kind: str = "cloudEvent", **spec: Any) -> ProviderView:
    body: dict[str, Any] = {"task": "check", **spec}
    if kind == "job":
        body["job"] = {"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}}
    else:
        body["cloudEvent"] = {"url": f"http://{name}/"}
    return ProviderView(name, TaskProviderSpec.model_validate(body))


A, B = provider("a"), provider("b", "job")


def execution(**task: Any) -> ExecutionView:
    return ExecutionView(
        namespace="ns",
        name="ex",
        created=T0,
        spec=TaskExecutionSpec(
            run="run-1",
            index=0,
            shipyard="osint",
            stage="dev",
            sequence="one",
            task=Task.model_validate({"name": "check", **task}),
            context="ctx",
            input={"n": 1},
        ),
        status=TaskExecutionStatus(),
    )


def decide(view: ExecutionView, providers: list[ProviderView], now: datetime) -> ExecutionDecision:
    return decide_execution(view, providers, now, tid)


def applied(view: ExecutionView, patch: dict[str, Any] | None) -> ExecutionView:
    status = merge_patch(view.status.to_wire(), patch or {})
    return replace(view, status=TaskExecutionStatus.model_validate(status))


def step(
    view: ExecutionView, providers: list[ProviderView], now: datetime
) -> tuple[ExecutionView, ExecutionDecision]:
    decision = decide(view, providers, now)
    return applied(view, decision.status), decision


def respond(
    view: ExecutionView,
    provider: str,
    phase: ResponsePhase,
    result: Result | None = None,
    at: datetime = T0,
    message: str | None = None,
    output: dict[str, Any] | None = None,
) -> ExecutionView:
    patch = apply_response(
        view.status,
        triggered_id=tid(provider, view.status.attempts),
        phase=phase,
        result=result,
        message=message,
        output=output,
        at=at,
    )
    return applied(view, patch)


def triggered(providers: list[ProviderView] = [A, B], **task: Any) -> ExecutionView:  # noqa: B006 -- never mutated
    """An execution whose first attempt was triggered at T0."""
    return step(execution(**task), providers, T0)[0]


def condition(view: ExecutionView) -> tuple[str, str]:
    [cond] = view.status.conditions
    return cond.status.value, cond.reason


# --- serves -----------------------------------------------------------------------------

SERVES: list[tuple[str, dict[str, Any], bool]] = [
    ("every stage and shipyard", {}, True),
    ("listed stage", {"stages": ["dev", "prod"]}, True),
    ("other stage", {"stages": ["prod"]}, False),
    ("listed shipyard", {"shipyards": ["osint"]}, True),
    ("other shipyard", {"shipyards": ["other"]}, False),
    ("other task", {"task": "deploy"}, False),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in SERVES], ids=[c[0] for c in SERVES])
def test_serves(spec: dict[str, Any], expected: bool) -> None:
    """serves: the task matches, and the stage/Shipyard are listed or the list is unset."""
    assert serves(provider("p", **spec).spec, "osint", "dev", "check") is expected


# --- triggering ------------------------------------------------------------------------


def test_first_decision_triggers_every_provider_in_name_order() -> None:
    """Providers present: attempt 1 starts, one Pending entry and one trigger per provider."""
    view, decision = step(execution(), [B, A], T0)
    status = view.status
    assert (status.phase, status.attempts, status.started_at, status.attempt_started_at) == (
        Phase.STARTED,
        1,
        T0,
        T0,
    )
    assert status.providers == [
        ProviderRecord(
            name="a",
            kind=ProviderKind.CLOUD_EVENT,
            attempt=1,
            triggered_id=tid("a", 1),
            triggered_at=T0,
        ),
        ProviderRecord(
            name="b", kind=ProviderKind.JOB, attempt=1, triggered_id=tid("b", 1), triggered_at=T0
        ),
    ]
    assert decision.triggers == [Trigger("a", 1, tid("a", 1)), Trigger("b", 1, tid("b", 1))]
    assert condition(view) == ("Unknown", "Running")
    assert decision.events == []  # a trigger is in the status; Events tell what went wrong
    assert decision.wake_at == T0 + DEFAULT_START_TIMEOUT
    assert decision.cleanup == []
    assert not decision.finished


def test_started_execution_is_not_triggered_again() -> None:
    """Deciding again during the attempt sends no second trigger and writes nothing."""
    view = triggered()
    decision = decide(view, [A, B], T0 + S)
    assert decision.triggers == []
    assert decision.status is None


@pytest.mark.parametrize(
    ("task", "wake"),
    [({}, 10 * M), ({"startTimeout": "30s"}, 30 * S), ({"startTimeout": "5m", "timeout": "1m"}, M)],
    ids=["default start timeout", "own start timeout", "timeout sooner"],
)
def test_wake_at_is_the_nearest_deadline(task: dict[str, Any], wake: timedelta) -> None:
    """After triggering, decide again at the earliest of startTimeout and timeout."""
    assert decide(execution(**task), [A], T0).wake_at == T0 + wake


def test_default_start_timeout_is_a_parameter() -> None:
    """A task without startTimeout uses the default passed in."""
    decision = decide_execution(execution(), [A], T0, tid, default_start_timeout=2 * M)
    assert decision.wake_at == T0 + 2 * M


DELAYS: list[tuple[str, timedelta, bool]] = [
    ("before the delay", 29 * S, False),
    ("at the delay", 30 * S, True),
    ("after the delay", 31 * S, True),
]


@pytest.mark.parametrize(("after", "fires"), [c[1:] for c in DELAYS], ids=[c[0] for c in DELAYS])
def test_triggered_after_delays_the_first_attempt(after: timedelta, fires: bool) -> None:
    """triggeredAfter: nothing is sent before created + delay; wake up then."""
    view, decision = step(execution(triggeredAfter="30s"), [A], T0 + after)
    if fires:
        assert [t.provider for t in decision.triggers] == ["a"]
        assert view.status.phase == Phase.STARTED
    else:
        assert decision.triggers == []
        assert decision.wake_at == T0 + 30 * S
        assert view.status.phase == Phase.PENDING
        assert condition(view) == ("Unknown", "Pending")


def test_no_delay_triggers_even_when_this_clock_is_behind() -> None:
    """Without triggeredAfter, a `now` a little before the creation time still triggers."""
    assert [t.provider for t in decide(execution(), [A], T0 - S).triggers] == ["a"]


# --- no provider -------------------------------------------------------------------------


def test_no_provider_waits_with_a_condition_and_one_event() -> None:
    """No provider: Pending, Unknown/WaitingForProvider, one Warning, wake at the deadline."""
    view, decision = step(execution(), [], T0)
    assert view.status.phase == Phase.PENDING
    assert condition(view) == ("Unknown", "WaitingForProvider")
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "WaitingForProvider")]
    assert decision.wake_at == T0 + DEFAULT_START_TIMEOUT
    assert not decision.finished
    again = decide(view, [], T0 + M)
    assert again.events == []
    assert again.status is None


@pytest.mark.parametrize(
    ("task", "deadline"),
    [
        ({}, 10 * M),
        ({"startTimeout": "1m"}, M),
        ({"startTimeout": "1m", "triggeredAfter": "30s"}, M + 30 * S),
    ],
    ids=["default", "own start timeout", "counted after the delay"],
)
def test_no_provider_fails_at_the_start_timeout(task: dict[str, Any], deadline: timedelta) -> None:
    """No provider by due time + startTimeout: fail NoProvider, saying what to do."""
    view = step(execution(**task), [], T0 + deadline - S)[0]
    assert view.status.phase != Phase.FINISHED
    view, decision = step(view, [], T0 + deadline)
    status = view.status
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.NO_PROVIDER,
    )
    assert status.message is not None
    assert "create a TaskProvider for task check in stage dev" in status.message
    assert condition(view) == ("False", "NoProvider")
    assert decision.finished
    assert decision.triggers == []


def test_a_provider_appearing_while_waiting_is_triggered() -> None:
    """A provider created during the wait gets the first attempt."""
    view = step(execution(), [], T0)[0]
    view, decision = step(view, [A], T0 + 5 * M)
    assert [t.provider for t in decision.triggers] == ["a"]
    assert condition(view) == ("Unknown", "Running")
    assert view.status.attempt_started_at == T0 + 5 * M


# --- responses -----------------------------------------------------------------------------


def test_started_then_finished_records_the_provider() -> None:
    """.started then .finished: phase, times, result, message and output of the provider."""
    view = respond(triggered([A]), "a", "started", at=T0 + S)
    assert view.status.providers[0].phase == Phase.STARTED
    view = respond(view, "a", "finished", Result.WARNING, T0 + 2 * S, "slow", {"k": 1})
    record = view.status.providers[0]
    assert (record.phase, record.result, record.message, record.output) == (
        Phase.FINISHED,
        Result.WARNING,
        "slow",
        {"k": 1},
    )
    assert (record.started_at, record.finished_at) == (T0 + S, T0 + 2 * S)


def test_finished_without_started_counts_as_both() -> None:
    """A .finished with no .started before it sets startedAt too."""
    record = respond(triggered([A]), "a", "finished", Result.PASS, T0 + S).status.providers[0]
    assert (record.phase, record.started_at, record.finished_at) == (Phase.FINISHED, T0 + S, T0 + S)


def test_finished_without_result_is_fail() -> None:
    """A .finished without a result counts as fail."""
    record = respond(triggered([A]), "a", "finished").status.providers[0]
    assert record.result == Result.FAIL
    assert record.message == "finished without a result"


def test_status_changed_keeps_the_last_message_and_counts_as_started() -> None:
    """.status.changed: the last message is kept; before .started it starts the provider."""
    view = respond(triggered([A]), "a", "status.changed", message="50%", at=T0 + S)
    view = respond(view, "a", "status.changed", message="90%", at=T0 + 2 * S)
    record = view.status.providers[0]
    assert (record.phase, record.started_at, record.last_status_message) == (
        Phase.STARTED,
        T0 + S,
        "90%",
    )


def test_response_patch_writes_only_the_providers_list() -> None:
    """apply_response returns a merge patch of the whole providers list and nothing else."""
    view = triggered()
    patch = apply_response(
        view.status,
        triggered_id=tid("b", 1),
        phase="started",
        result=None,
        message=None,
        output=None,
        at=T0,
    )
    assert list(patch) == ["providers"]
    assert [p["name"] for p in patch["providers"]] == ["a", "b"]


DUPLICATES: list[tuple[str, list[ResponsePhase], ResponsePhase]] = [
    ("started twice", ["started"], "started"),
    ("started after finished", ["finished"], "started"),
    ("same status message twice", ["status.changed"], "status.changed"),
]


@pytest.mark.parametrize(
    ("before", "again"), [c[1:] for c in DUPLICATES], ids=[c[0] for c in DUPLICATES]
)
def test_repeated_response_changes_nothing(
    before: list[ResponsePhase], again: ResponsePhase
) -> None:
    """An exact repeat (or a late .started) gives an empty patch, not an error."""
    view = triggered()
    for phase in before:
        view = respond(view, "a", phase, Result.PASS, message="m")
    patch = apply_response(
        view.status,
        triggered_id=tid("a", 1),
        phase=again,
        result=Result.PASS,
        message="m",
        output=None,
        at=T0 + M,
    )
    assert patch == {}


REJECTED: list[tuple[str, str, ResponsePhase, int]] = [
    ("unknown triggered id", "ns/ex/zzz/1", "started", 404),
    ("an earlier attempt's id", tid("a", 0), "finished", 404),
    ("finished twice", tid("a", 1), "finished", 409),
    ("status after finished", tid("a", 1), "status.changed", 409),
]


@pytest.mark.parametrize(
    ("triggered_id", "phase", "code"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_rejected_responses(triggered_id: str, phase: ResponsePhase, code: int) -> None:
    """Unknown triggeredid: 404; a .finished/.status.changed for a finished provider: 409."""
    view = respond(triggered(), "a", "finished", Result.PASS)
    with pytest.raises(ResponseRejectedError) as caught:
        apply_response(
            view.status,
            triggered_id=triggered_id,
            phase=phase,
            result=Result.PASS,
            message=None,
            output=None,
            at=T0,
        )
    assert caught.value.status == code
    assert caught.value.message


@pytest.mark.parametrize("phase", ["started", "status.changed", "finished"])
def test_response_for_a_finished_execution_is_409(phase: ResponsePhase) -> None:
    """Any response once the task finished is rejected with 409."""
    view = respond(triggered([A]), "a", "finished", Result.PASS)
    view = step(view, [A], T0 + S)[0]
    assert view.status.phase == Phase.FINISHED
    with pytest.raises(ResponseRejectedError) as caught:
        apply_response(
            view.status,
            triggered_id=tid("a", 1),
            phase=phase,
            result=None,
            message=None,
            output=None,
            at=T0,
        )
    assert caught.value.status == 409


def test_response_before_any_trigger_is_404() -> None:
    """A response for an execution that triggered nothing yet: unknown triggeredid."""
    with pytest.raises(ResponseRejectedError) as caught:
        apply_response(
            TaskExecutionStatus(),
            triggered_id=tid("a", 1),
            phase="started",
            result=None,
            message=None,
            output=None,
            at=T0,
        )
    assert caught.value.status == 404


# --- finishing -------------------------------------------------------------------------------

WORST: list[tuple[str, Result | None, Result | None, Result, Reason, str]] = [
    ("both pass", Result.PASS, Result.PASS, Result.PASS, Reason.COMPLETED, "True"),
    ("pass and warning", Result.PASS, Result.WARNING, Result.WARNING, Reason.COMPLETED, "True"),
    ("warning and fail", Result.WARNING, Result.FAIL, Result.FAIL, Reason.FAILED, "False"),
    ("pass and no result", Result.PASS, None, Result.FAIL, Reason.FAILED, "False"),
]


@pytest.mark.parametrize(
    ("ra", "rb", "result", "reason", "succeeded"), [c[1:] for c in WORST], ids=[c[0] for c in WORST]
)
def test_task_finishes_with_the_worst_result_when_all_finished(
    ra: Result | None, rb: Result | None, result: Result, reason: Reason, succeeded: str
) -> None:
    """The task finishes only when every provider finished; its result is the worst."""
    view = respond(triggered(), "a", "finished", ra, T0 + S, "from a")
    view, decision = step(view, [A, B], T0 + 2 * S)
    assert view.status.phase == Phase.STARTED
    assert not decision.finished
    view = respond(view, "b", "finished", rb, T0 + 3 * S, "from b")
    view, decision = step(view, [A, B], T0 + 4 * S)
    status = view.status
    assert (status.phase, status.result, status.reason, status.finished_at) == (
        Phase.FINISHED,
        result,
        reason,
        T0 + 4 * S,
    )
    assert status.message is not None
    assert "a: " in status.message
    assert "from b" in status.message
    assert condition(view) == (succeeded, reason.value)
    assert decision.finished
    assert decision.cleanup == []
    finished_events = [e for e in decision.events if e.reason == "TaskFinished"]
    assert finished_events == ([] if succeeded == "True" else [decision.events[-1]])


def test_output_is_the_providers_outputs_merged_in_name_order() -> None:
    """Outputs deep-merge in provider name order: b's values win over a's."""
    view = triggered()
    view = respond(view, "b", "finished", Result.PASS, output={"m": {"x": "b"}, "v": "b"})
    view = respond(view, "a", "finished", Result.PASS, output={"m": {"x": "a", "y": "a"}, "v": "a"})
    assert step(view, [A, B], T0 + S)[0].status.output == {"m": {"x": "b", "y": "a"}, "v": "b"}


def test_finished_execution_decides_nothing_but_cleanup() -> None:
    """A finished execution: finished=True, cleanup of leftover work, the same every time."""
    view = respond(triggered([A]), "a", "finished", Result.PASS)
    view = step(view, [A], T0 + S)[0]
    for now in (T0 + M, T0 + 60 * M):
        assert decide(view, [A, B], now) == ExecutionDecision(finished=True)


# --- timeouts ----------------------------------------------------------------------------------

TIMEOUTS: list[tuple[str, dict[str, Any], list[ResponsePhase], timedelta, bool]] = [
    ("pending past startTimeout", {"startTimeout": "1m"}, [], M, True),
    ("pending just before startTimeout", {"startTimeout": "1m"}, [], M - S, False),
    ("started is safe from startTimeout", {"startTimeout": "1m"}, ["started"], 5 * M, False),
    (
        "status.changed is safe from startTimeout",
        {"startTimeout": "1m"},
        ["status.changed"],
        5 * M,
        False,
    ),
    ("started past timeout", {"startTimeout": "1m", "timeout": "10m"}, ["started"], 10 * M, True),
    (
        "started before timeout",
        {"startTimeout": "1m", "timeout": "10m"},
        ["started"],
        10 * M - S,
        False,
    ),
]


@pytest.mark.parametrize(
    ("task", "responses", "after", "times_out"),
    [c[1:] for c in TIMEOUTS],
    ids=[c[0] for c in TIMEOUTS],
)
def test_provider_timeouts(
    task: dict[str, Any], responses: list[ResponsePhase], after: timedelta, times_out: bool
) -> None:
    """startTimeout (no .started/.finished) and timeout (no .finished) fail a provider TimedOut."""
    view = triggered([A], **task)
    for phase in responses:
        view = respond(view, "a", phase, at=T0 + S)
    view, decision = step(view, [A], T0 + after)
    if times_out:
        status = view.status
        assert (status.phase, status.result, status.reason) == (
            Phase.FINISHED,
            Result.FAIL,
            Reason.TIMED_OUT,
        )
        assert status.providers[0].reason == Reason.TIMED_OUT
        written = task["timeout"] if responses else task["startTimeout"]
        assert f"within {written}" in (status.providers[0].message or "")
        assert decision.cleanup == ["a"]
        assert "ProviderTimedOut" in [e.reason for e in decision.events]
    else:
        assert view.status.phase == Phase.STARTED
        assert decision.cleanup == []
        # the next deadline, if any: a started provider with no `timeout` has none
        assert decision.wake_at is None or decision.wake_at > T0 + after


def test_one_provider_times_out_while_another_still_runs() -> None:
    """A late provider fails TimedOut; the task waits for the other, waking at its deadline."""
    view = respond(triggered([A, B], startTimeout="1m", timeout="10m"), "b", "started", at=T0 + S)
    view, decision = step(view, [A, B], T0 + 2 * M)
    assert [(p.name, p.phase, p.reason) for p in view.status.providers] == [
        ("a", Phase.FINISHED, Reason.TIMED_OUT),
        ("b", Phase.STARTED, None),
    ]
    assert view.status.phase == Phase.STARTED
    assert decision.cleanup == ["a"]
    assert decision.wake_at == T0 + 10 * M
    view = respond(view, "b", "finished", Result.PASS, T0 + 3 * M)
    view, decision = step(view, [A, B], T0 + 3 * M)
    assert (view.status.result, view.status.reason) == (Result.FAIL, Reason.TIMED_OUT)
    assert decision.cleanup == ["a"]


def test_timed_out_provider_cannot_answer_afterwards() -> None:
    """A .finished after the provider timed out is rejected 409."""
    view = step(triggered([A, B], startTimeout="1m"), [A, B], T0 + 2 * M)[0]
    with pytest.raises(ResponseRejectedError):
        respond(view, "a", "finished", Result.PASS)


# --- retries ---------------------------------------------------------------------------------


def test_failed_attempt_is_retried_after_the_backoff() -> None:
    """fail with retries left: nextAttemptAt = now + backoff, cleanup, then a second attempt
    with new event ids; its providers replace the first attempt's."""
    view = triggered([A, B], retries={"limit": 1, "backoff": "30s"})
    view = respond(view, "a", "finished", Result.PASS)
    view = respond(view, "b", "finished", Result.FAIL, message="boom")
    view, decision = step(view, [A, B], T0 + M)
    status = view.status
    assert (status.phase, status.attempts, status.next_attempt_at) == (
        Phase.STARTED,
        1,
        T0 + M + 30 * S,
    )
    assert condition(view) == ("Unknown", "Retrying")
    assert decision.cleanup == ["a", "b"]
    assert [e.reason for e in decision.events] == ["TaskRetrying"]
    assert decision.wake_at == T0 + M + 30 * S
    assert not decision.finished
    assert [p.result for p in status.providers] == [Result.PASS, Result.FAIL]

    waiting = decide(view, [A, B], T0 + M + 29 * S)
    assert (waiting.triggers, waiting.status, waiting.wake_at) == ([], None, T0 + M + 30 * S)
    assert waiting.cleanup == ["a", "b"]

    view, decision = step(view, [A, B], T0 + M + 30 * S)
    status = view.status
    assert (status.attempts, status.next_attempt_at, status.attempt_started_at) == (
        2,
        None,
        T0 + M + 30 * S,
    )
    assert status.started_at == T0
    assert decision.triggers == [Trigger("a", 2, tid("a", 2)), Trigger("b", 2, tid("b", 2))]
    assert [(p.attempt, p.phase, p.result) for p in status.providers] == [
        (2, Phase.PENDING, None)
    ] * 2
    assert decision.cleanup == []


def test_last_attempt_failing_finishes_the_task() -> None:
    """After limit retries the task fails for good."""
    view = triggered([A], retries={"limit": 1, "backoff": "1s"})
    view = respond(view, "a", "finished", Result.FAIL)
    view = step(view, [A], T0 + S)[0]
    view = step(view, [A], T0 + 2 * S)[0]
    assert view.status.attempts == 2
    view = respond(view, "a", "finished", Result.FAIL, message="again")
    view, decision = step(view, [A], T0 + 3 * S)
    assert (view.status.phase, view.status.result, view.status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.FAILED,
    )
    assert decision.finished


@pytest.mark.parametrize(
    ("retries", "result", "retried"),
    [
        (None, Result.FAIL, False),
        ({"limit": 0}, Result.FAIL, False),
        ({"limit": 2}, Result.WARNING, False),
        ({"limit": 2}, Result.FAIL, True),
    ],
    ids=["no retries", "limit 0", "warning is not retried", "fail is retried"],
)
def test_what_is_retried(retries: dict[str, Any] | None, result: Result, retried: bool) -> None:
    """Only a failed attempt with retries left is retried."""
    view = triggered([A], **({"retries": retries} if retries else {}))
    view = respond(view, "a", "finished", result)
    decision = decide(view, [A], T0 + S)
    assert decision.finished is not retried


def test_timed_out_attempt_is_retried() -> None:
    """A timeout fails the attempt like any failure: retried while retries are left."""
    view = triggered([A], startTimeout="1m", retries={"limit": 1, "backoff": "10s"})
    view, decision = step(view, [A], T0 + M)
    assert view.status.next_attempt_at == T0 + M + 10 * S
    assert decision.cleanup == ["a"]


def test_retry_with_no_provider_left_waits_then_fails() -> None:
    """A retry whose providers are gone waits for one until nextAttemptAt + startTimeout."""
    view = triggered([A], startTimeout="1m", retries={"limit": 1, "backoff": "10s"})
    view = respond(view, "a", "finished", Result.FAIL)
    view = step(view, [A], T0)[0]
    view = step(view, [], T0 + 10 * S)[0]
    assert condition(view) == ("Unknown", "WaitingForProvider")
    view, decision = step(view, [], T0 + 70 * S)
    assert (view.status.result, view.status.reason) == (Result.FAIL, Reason.NO_PROVIDER)
    assert decision.finished


# --- provider failures, abort, redelivery ------------------------------------------------------


def test_fail_provider_finishes_that_provider() -> None:
    """fail_provider (e.g. delivery failed): that provider fails with the reason and message."""
    view = triggered()
    patch = fail_provider(
        view.status,
        provider="a",
        triggered_id=tid("a", 1),
        reason=Reason.FAILED,
        message="503",
        at=T0 + S,
    )
    record = applied(view, patch).status.providers[0]
    assert (record.phase, record.result, record.reason, record.message, record.finished_at) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.FAILED,
        "503",
        T0 + S,
    )


@pytest.mark.parametrize(
    ("name", "triggered_id"),
    [("a", tid("a", 0)), ("zzz", tid("zzz", 1)), ("b", tid("a", 1))],
    ids=["an earlier attempt", "unknown provider", "id of another provider"],
)
def test_fail_provider_ignores_stale_reports(name: str, triggered_id: str) -> None:
    """A failure report that does not match the current attempt's entry changes nothing."""
    view = triggered()
    assert (
        fail_provider(
            view.status,
            provider=name,
            triggered_id=triggered_id,
            reason=Reason.FAILED,
            message="x",
            at=T0,
        )
        == {}
    )


def test_fail_provider_after_finish_changes_nothing() -> None:
    """A finished provider, or execution, is not failed again."""
    view = respond(triggered([A]), "a", "finished", Result.PASS)
    assert (
        fail_provider(
            view.status,
            provider="a",
            triggered_id=tid("a", 1),
            reason=Reason.FAILED,
            message="x",
            at=T0,
        )
        == {}
    )


def test_finish_execution_aborts_and_cleanup_follows() -> None:
    """finish_execution (abort): finished fail/Aborted, running providers ended; then cleanup."""
    view = respond(triggered(), "b", "finished", Result.PASS)
    view = applied(
        view,
        finish_execution(
            view.status, result=Result.FAIL, reason=Reason.ABORTED, message="aborted", at=T0 + S
        ),
    )
    status = view.status
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.ABORTED,
    )
    assert [(p.name, p.reason) for p in status.providers] == [("a", Reason.ABORTED), ("b", None)]
    assert condition(view) == ("False", "Aborted")
    assert decide(view, [A, B], T0 + M) == ExecutionDecision(finished=True, cleanup=["a"])
    assert (
        finish_execution(status, result=Result.FAIL, reason=Reason.ABORTED, message="x", at=T0)
        == {}
    )


def test_pending_triggers_are_the_unanswered_ones() -> None:
    """pending_triggers: after a restart, the current attempt's triggers with no answer yet."""
    view = triggered()
    assert pending_triggers(view.status) == [
        Trigger("a", 1, tid("a", 1)),
        Trigger("b", 1, tid("b", 1)),
    ]
    view = respond(view, "a", "started")
    assert pending_triggers(view.status) == [Trigger("b", 1, tid("b", 1))]
    view = respond(view, "b", "finished", Result.FAIL)
    assert pending_triggers(view.status) == []
    assert pending_triggers(TaskExecutionStatus()) == []


# --- determinism ---------------------------------------------------------------------------------


def test_same_inputs_give_the_same_decision() -> None:
    """Every kind of state decided twice with the same inputs gives equal decisions."""
    states = [
        execution(),
        execution(triggeredAfter="1m"),
        triggered(),
        respond(triggered(), "a", "finished", Result.PASS),
        respond(respond(triggered(), "a", "finished", Result.PASS), "b", "finished", Result.FAIL),
    ]
    for view in states:
        for providers in ([], [A, B], [B, A]):
            for now in (T0, T0 + 11 * M):
                assert decide(view, providers, now) == decide(view, providers, now)


def test_crash_after_recording_the_attempt_redelivers_the_same_ids() -> None:
    """Killed after writing attempt 1 but before delivering: the status still asks for nothing
    new, and pending_triggers gives the same event ids as the first decision."""
    first = decide(execution(), [A, B], T0)
    view = applied(execution(), first.status)
    assert decide(view, [A, B], T0 + S).triggers == []
    assert pending_triggers(view.status) == first.triggers


def test_decide_execution_does_not_mutate_its_inputs() -> None:
    """The execution view's status is left as it was."""
    view = respond(triggered(), "a", "finished", Result.PASS, output={"m": {"x": 1}})
    before = view.status.to_wire()
    decide(view, [A, B], T0 + 20 * M)
    assert view.status.to_wire() == before


def test_at_most_max_providers_are_triggered() -> None:
    """More providers than a status holds: the first 16 by name, a Warning naming the rest."""
    many = [provider(f"p{i:02}") for i in range(18)]
    decision = decide(execution(), many, T0)
    assert [t.provider for t in decision.triggers] == [f"p{i:02}" for i in range(16)]
    warning = decision.events[-1]
    assert (warning.type, warning.reason) == ("Warning", "TooManyProviders")
    assert "p16, p17" in warning.message


def test_execution_finished_from_outside_cleans_up_unfinished_providers() -> None:
    """An execution marked finished by someone else (only its phase): its running providers'
    work is cleaned up, finished ones are left alone."""
    view = respond(triggered(), "b", "finished", Result.PASS)
    view = replace(view, status=view.status.model_copy(update={"phase": Phase.FINISHED}))
    assert decide(view, [A, B], T0 + M) == ExecutionDecision(finished=True, cleanup=["a"])


def test_note_delivery_records_on_the_current_provider_only() -> None:
    """A delivery note lands on the provider of that triggered id, and not once it finished."""
    status = TaskExecutionStatus(
        phase=Phase.STARTED,
        attempts=1,
        providers=[
            ProviderRecord(name="a", triggered_id="ns/x/a/1", attempt=1),
            ProviderRecord(name="b", triggered_id="ns/x/b/1", attempt=1, phase=Phase.FINISHED),
        ],
    )
    patch = note_delivery(status, triggered_id="ns/x/a/1", note="HTTP 202 after 1 try")
    assert [p.get("delivery") for p in patch["providers"]] == ["HTTP 202 after 1 try", None]
    assert note_delivery(status, triggered_id="ns/x/b/1", note="late") == {}
    assert note_delivery(status, triggered_id="ns/x/a/0", note="stale") == {}
