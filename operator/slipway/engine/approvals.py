"""Approval tasks (a human gate): start one, and record a person's decision.

Both are pure functions of an execution's status returning a merge patch of it, like
`slipway.engine.responses`; the provider finishes like any other (pass when enough people
approved, fail at the first rejection), and `decide_execution` concludes the task. The
approval's `timeout` is the provider's `deadline`, enforced by `decide_execution`.

Who may decide is checked in three places, in this order: RBAC (the verb `approve` on
`taskexecutions`, asked by the gateway), `approvers` (users or groups), and the four-eyes
rule (`allowSelfApproval: false` refuses the person who triggered the run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from slipway.api.common import Phase, Result
from slipway.api.taskexecution import (
    MAX_APPROVALS,
    ApprovalDecisionKind,
    ApprovalRecord,
    ProviderRecord,
    TaskExecutionStatus,
)
from slipway.api.taskprovider import ApprovalProvider, ProviderKind
from slipway.engine.decisions import Patch
from slipway.engine.patches import status_patch
from slipway.engine.results import worst


class ApprovalRefusedError(Exception):
    """A decision that is not accepted: `status` 403 (this person may not decide), 404 (no
    such approval), 409 (nothing waits for a decision, or this person already decided)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def result_so_far(results: Iterable[Result | None]) -> Result | None:
    """The run's result before the approval task: the worst result of its finished tasks;
    None when none finished (the approval then waits for a person)."""
    present = [r for r in results if r is not None]
    return worst(present) if present else None


def start_approval(
    status: TaskExecutionStatus,
    *,
    provider: str,
    triggered_id: str,
    approval: ApprovalProvider,
    so_far: Result | None,
    at: datetime,
) -> Patch:
    """What an approval's `.triggered` does: approve at once when the run's result so far is
    one of `automatic`, otherwise start waiting for `required` people (the `.started` that
    keeps `startTimeout` from ending it). `{}` when that provider entry is no longer pending
    (a repeated trigger after a restart changes nothing)."""
    new = status.copied()
    record = _pending(new, provider, triggered_id)
    if record is None:
        return {}
    record.phase = Phase.STARTED
    record.started_at = at
    record.approvals_required = approval.required
    shown = so_far.value if so_far is not None else "none yet"
    if so_far is not None and so_far in approval.automatic:
        automatic = ", ".join(r.value for r in approval.automatic)
        _end(
            record,
            Result.PASS,
            f"approved automatically: the run's result so far is {shown} (automatic: {automatic})",
            at,
        )
    else:
        record.last_status_message = (
            f"waiting for {_count(approval.required, 'approval')} "
            f"({_who(approval)}; the run's result so far: {shown})"
        )
    return status_patch(status, new)


@dataclass(frozen=True)
class Decided:
    """A decision that was recorded: the patch, and one line saying what it did."""

    patch: Patch
    summary: str
    finished: bool


def decide(
    status: TaskExecutionStatus,
    approvals: Mapping[str, ApprovalProvider],
    *,
    user: str,
    groups: Sequence[str],
    decision: ApprovalDecisionKind,
    comment: str | None,
    triggered_by: str | None,
    at: datetime,
) -> Decided:
    """Record `user`'s decision on every approval of the current attempt still waiting that
    lets them decide. `approvals`: the approval TaskProviders serving the task, by name.
    `triggered_by`: who triggered the run (None: unknown, so the four-eyes rule cannot
    refuse anyone). Raises `ApprovalRefusedError` (see there)."""
    if status.phase == Phase.FINISHED:
        raise ApprovalRefusedError(
            409, f"the task already finished ({status.result or 'no result'}): nothing to decide"
        )
    new = status.copied()
    waiting = [
        r for r in new.providers if r.kind == ProviderKind.APPROVAL and r.phase == Phase.STARTED
    ]
    if not waiting:
        raise ApprovalRefusedError(409, "this task is not waiting for an approval")
    refusals: list[str] = []
    chosen: list[tuple[ProviderRecord, ApprovalProvider]] = []
    for record in waiting:
        spec = approvals.get(record.name)
        if spec is None:
            refusals.append(f"TaskProvider {record.name} no longer exists")
            continue
        if not may_decide(spec, user, groups):
            refusals.append(f"{user} is not among the approvers of {record.name} ({_who(spec)})")
            continue
        if (
            decision == ApprovalDecisionKind.APPROVE
            and not spec.allow_self_approval
            and triggered_by is not None
            and triggered_by == user
        ):
            refusals.append(
                f"{user} triggered this run and may not approve it (allowSelfApproval is false "
                f"on {record.name}); someone else must"
            )
            continue
        earlier = next((a for a in record.approvals if a.user == user), None)
        if earlier is not None:
            raise ApprovalRefusedError(
                409, f"{user} already decided ({earlier.decision.value}) on {record.name}"
            )
        if len(record.approvals) >= MAX_APPROVALS:
            refusals.append(f"{record.name} has recorded {MAX_APPROVALS} decisions already")
            continue
        chosen.append((record, spec))
    if not chosen:
        raise ApprovalRefusedError(403, "; ".join(refusals))
    lines = []
    finished = True
    for record, spec in chosen:
        record.approvals.append(
            ApprovalRecord(user=user, decision=decision, at=at, comment=comment or None)
        )
        lines.append(_apply(record, spec, at))
        finished = finished and record.phase == Phase.FINISHED
    return Decided(status_patch(status, new), "; ".join(lines), finished)


def may_decide(spec: ApprovalProvider, user: str, groups: Sequence[str]) -> bool:
    """Whether `user` (member of `groups`) is an approver: anyone when `approvers` lists
    nobody; otherwise a listed user or a member of a listed group."""
    approvers = spec.approvers
    if approvers is None or (not approvers.users and not approvers.groups):
        return True
    return user in approvers.users or any(g in approvers.groups for g in groups)


def _apply(record: ProviderRecord, spec: ApprovalProvider, at: datetime) -> str:
    """Conclude the provider if the decisions say so; a line saying where it stands."""
    latest = record.approvals[-1]
    said = f": {latest.comment}" if latest.comment else ""
    if latest.decision == ApprovalDecisionKind.REJECT:
        _end(record, Result.FAIL, f"rejected by {latest.user}{said}", at)
        return f"{record.name}: rejected by {latest.user}{said}"
    approved = [a.user for a in record.approvals if a.decision == ApprovalDecisionKind.APPROVE]
    required = record.approvals_required or spec.required
    if len(approved) >= required:
        _end(record, Result.PASS, f"approved by {', '.join(approved)}", at)
        return f"{record.name}: approved by {', '.join(approved)}{said}"
    record.last_status_message = (
        f"{len(approved)}/{required} approvals ({', '.join(approved)}); waiting for more"
    )
    return f"{record.name}: {latest.user} approved ({len(approved)}/{required}){said}"


def _pending(
    status: TaskExecutionStatus, provider: str, triggered_id: str
) -> ProviderRecord | None:
    if status.phase == Phase.FINISHED:
        return None
    record = next(
        (p for p in status.providers if p.name == provider and p.triggered_id == triggered_id),
        None,
    )
    return record if record is not None and record.phase == Phase.PENDING else None


def _end(record: ProviderRecord, result: Result, message: str, at: datetime) -> None:
    record.phase = Phase.FINISHED
    record.result = result
    record.message = message
    record.finished_at = at


def _who(spec: ApprovalProvider) -> str:
    approvers = spec.approvers
    if approvers is None or (not approvers.users and not approvers.groups):
        return "anyone allowed to approve taskexecutions"
    parts = []
    if approvers.users:
        parts.append("users " + ", ".join(approvers.users))
    if approvers.groups:
        parts.append("groups " + ", ".join(approvers.groups))
    return " or ".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
