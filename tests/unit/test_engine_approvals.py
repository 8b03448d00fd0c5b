"""Approval tasks: automatic approval by the run's result so far, required distinct
approvals, one rejection, approvers, the four-eyes rule, and the provider's own deadline."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.api.common import Phase, Reason, Result
from slipway.api.shipyard import Task
from slipway.api.taskexecution import (
    ApprovalDecisionKind,
    ProviderRecord,
    TaskExecutionSpec,
    TaskExecutionStatus,
)
from slipway.api.taskprovider import ApprovalProvider, ProviderKind, TaskProviderSpec
from slipway.engine.approvals import (
    ApprovalRefusedError,
    decide,
    may_decide,
    result_so_far,
    start_approval,
)
from slipway.engine.executions import ExecutionView, ProviderView, decide_execution

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
APPROVE, REJECT = ApprovalDecisionKind.APPROVE, ApprovalDecisionKind.REJECT


def merged(status: TaskExecutionStatus, patch: dict[str, Any]) -> TaskExecutionStatus:
    wire = copy.deepcopy(status.to_wire())
    wire.update({k: v for k, v in patch.items() if v is not None})
    return TaskExecutionStatus.model_validate(wire)


def waiting(required: int = 1) -> TaskExecutionStatus:
    return TaskExecutionStatus(
        phase=Phase.STARTED,
        attempts=1,
        providers=[
            ProviderRecord(
                name="gate",
                kind=ProviderKind.APPROVAL,
                attempt=1,
                triggered_id="id-1",
                phase=Phase.STARTED,
                approvals_required=required,
            )
        ],
    )


def pending() -> TaskExecutionStatus:
    return TaskExecutionStatus(
        phase=Phase.STARTED,
        attempts=1,
        providers=[
            ProviderRecord(name="gate", kind=ProviderKind.APPROVAL, attempt=1, triggered_id="id-1")
        ],
    )


@pytest.mark.parametrize(
    ("so_far", "automatic", "phase"),
    [
        (Result.PASS, [Result.PASS], Phase.FINISHED),
        (Result.WARNING, [Result.PASS], Phase.STARTED),
        (Result.WARNING, [Result.PASS, Result.WARNING], Phase.FINISHED),
        (None, [Result.PASS], Phase.STARTED),
    ],
    ids=["pass automatic", "warning manual", "warning automatic", "no result manual"],
)
def test_start_approval_is_automatic_only_for_listed_results(
    so_far: Result | None, automatic: list[Result], phase: Phase
) -> None:
    """Keptn's semantics: listed results approve at once; anything else waits (started)."""
    patch = start_approval(
        pending(),
        provider="gate",
        triggered_id="id-1",
        approval=ApprovalProvider(automatic=automatic),
        so_far=so_far,
        at=T0,
    )
    [record] = merged(pending(), patch).providers
    assert record.phase == phase
    if phase == Phase.FINISHED:
        assert record.result == Result.PASS
        assert "automatically" in (record.message or "")
    else:
        assert "waiting for 1 approval" in (record.last_status_message or "")


def test_start_approval_again_changes_nothing() -> None:
    """A repeated trigger (after a restart) finds the entry started and writes nothing."""
    patch = start_approval(
        waiting(),
        provider="gate",
        triggered_id="id-1",
        approval=ApprovalProvider(),
        so_far=None,
        at=T0,
    )
    assert patch == {}


def test_result_so_far_is_the_worst() -> None:
    assert result_so_far([Result.PASS, Result.WARNING]) == Result.WARNING
    assert result_so_far([]) is None


def test_two_distinct_approvals_are_required() -> None:
    """The first approval keeps it waiting (1/2); the same person again is refused; a second
    person passes it; every decision is kept with who, when and the comment."""
    specs = {"gate": ApprovalProvider(required=2)}
    first = decide(
        waiting(2),
        specs,
        user="alice",
        groups=[],
        decision=APPROVE,
        comment="looks fine",
        triggered_by="carol",
        at=T0,
    )
    assert not first.finished
    status = merged(waiting(2), first.patch)
    assert status.providers[0].phase == Phase.STARTED
    assert "1/2" in (status.providers[0].last_status_message or "")
    with pytest.raises(ApprovalRefusedError) as again:
        decide(
            status,
            specs,
            user="alice",
            groups=[],
            decision=APPROVE,
            comment=None,
            triggered_by="carol",
            at=T0,
        )
    assert again.value.status == 409
    second = decide(
        status,
        specs,
        user="bob",
        groups=[],
        decision=APPROVE,
        comment=None,
        triggered_by="carol",
        at=T0 + timedelta(minutes=1),
    )
    assert second.finished
    [record] = merged(status, second.patch).providers
    assert (record.phase, record.result) == (Phase.FINISHED, Result.PASS)
    assert [(a.user, a.decision, a.comment) for a in record.approvals] == [
        ("alice", APPROVE, "looks fine"),
        ("bob", APPROVE, None),
    ]
    assert record.message == "approved by alice, bob"


def test_one_rejection_fails_it() -> None:
    decided = decide(
        waiting(2),
        {"gate": ApprovalProvider(required=2)},
        user="alice",
        groups=[],
        decision=REJECT,
        comment="no",
        triggered_by=None,
        at=T0,
    )
    [record] = merged(waiting(2), decided.patch).providers
    assert (record.phase, record.result) == (Phase.FINISHED, Result.FAIL)
    assert record.message == "rejected by alice: no"


def test_approvers_and_the_four_eyes_rule() -> None:
    """Only listed users or group members decide; the run's triggerer may not approve
    unless allowed (rejecting is always allowed); nothing waiting is a 409."""
    listed = ApprovalProvider.model_validate({"approvers": {"users": ["alice"], "groups": ["ops"]}})
    assert may_decide(listed, "alice", [])
    assert may_decide(listed, "bob", ["ops"])
    assert not may_decide(listed, "bob", ["dev"])
    with pytest.raises(ApprovalRefusedError, match="not among the approvers") as refused:
        decide(
            waiting(),
            {"gate": listed},
            user="bob",
            groups=["dev"],
            decision=APPROVE,
            comment=None,
            triggered_by=None,
            at=T0,
        )
    assert refused.value.status == 403
    with pytest.raises(ApprovalRefusedError, match="triggered this run"):
        decide(
            waiting(),
            {"gate": ApprovalProvider()},
            user="carol",
            groups=[],
            decision=APPROVE,
            comment=None,
            triggered_by="carol",
            at=T0,
        )
    allowed = ApprovalProvider(allow_self_approval=True)
    assert decide(
        waiting(),
        {"gate": allowed},
        user="carol",
        groups=[],
        decision=APPROVE,
        comment=None,
        triggered_by="carol",
        at=T0,
    ).finished
    assert decide(
        waiting(),
        {"gate": ApprovalProvider()},
        user="carol",
        groups=[],
        decision=REJECT,
        comment=None,
        triggered_by="carol",
        at=T0,
    ).finished
    with pytest.raises(ApprovalRefusedError) as idle:
        decide(
            pending(),
            {"gate": ApprovalProvider()},
            user="x",
            groups=[],
            decision=APPROVE,
            comment=None,
            triggered_by=None,
            at=T0,
        )
    assert idle.value.status == 409


def test_the_approval_timeout_fails_the_task_timed_out() -> None:
    """The approval's timeout becomes its provider's deadline; past it the task fails
    TimedOut, even though the provider answered .started at once."""
    provider = ProviderView(
        "gate", TaskProviderSpec.model_validate({"task": "approve", "approval": {"timeout": "5m"}})
    )
    spec = TaskExecutionSpec(
        run="r",
        index=0,
        shipyard="s",
        stage="dev",
        sequence="q",
        task=Task(name="approve"),
        context="c",
    )
    execution = ExecutionView("ns", "r-0-approve", T0, spec, TaskExecutionStatus())
    first = decide_execution(execution, [provider], T0, lambda p, a: f"{p}-{a}")
    status = TaskExecutionStatus.model_validate(first.status)
    assert status.providers[0].deadline == T0 + timedelta(minutes=5)
    patch = start_approval(
        status,
        provider="gate",
        triggered_id="gate-1",
        approval=ApprovalProvider(),
        so_far=None,
        at=T0,
    )
    status = merged(status, patch)
    later = ExecutionView("ns", "r-0-approve", T0, spec, status)
    assert decide_execution(
        later, [provider], T0 + timedelta(minutes=4), lambda p, a: ""
    ).wake_at == T0 + timedelta(minutes=5)
    done = decide_execution(later, [provider], T0 + timedelta(minutes=5), lambda p, a: "")
    final = TaskExecutionStatus.model_validate({**status.to_wire(), **(done.status or {})})
    assert (final.result, final.reason) == (Result.FAIL, Reason.TIMED_OUT)
    assert "approval's timeout" in (final.message or "")
