"""History retention: which finished runs to delete.

Per Shipyard, stage and sequence, the newest `successfulRuns` finished runs with `pass` or
`warning` and the newest `failedRuns` with `fail` are kept, and none older than
`ttlAfterFinished` (when set); the rest are deleted, oldest first. Deleting a run deletes
what it owns (TaskExecutions, their Jobs and callback Secrets) by the API server's garbage
collection.

Never deleted: a run whose evaluation a later evaluation would still compare with. For each
shipyard/stage/sequence/task whose task an evaluation TaskProvider serves, the history is
read as the evaluation reads it (newest first); each serving SLO's comparison picks its
entries (`slipway.engine.scoring.select_history`), and every entry up to the oldest picked
one is kept — invalidated ones included, since an invalidated mark there decides which older
evaluation is compared with. So a later evaluation compares with exactly what it did before
the clean-up and gives the same verdict.

Nor a run kept in git by Argo CD (its tracking annotation): deleted, Argo CD would create it
again and it would run again; removing its file from git deletes it (docs/argocd.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from slipway.api.common import Result, parse_duration
from slipway.api.shipyard import History
from slipway.api.slo import Comparison
from slipway.engine.scoring import EarlierEvaluation, select_history

#: Shipyard, stage, sequence (and task, for evaluations).
RunScope = tuple[str, str, str]
EvaluationScope = tuple[str, str, str, str]


@dataclass(frozen=True)
class Policy:
    """How much history to keep for one Shipyard."""

    successful_runs: int
    failed_runs: int
    ttl_after_finished: timedelta | None = None


def policy_for(history: History | None, defaults: Policy) -> Policy:
    """A Shipyard's `history`, each unset field taken from the operator's `defaults`."""
    if history is None:
        return defaults
    return Policy(
        successful_runs=(
            history.successful_runs
            if history.successful_runs is not None
            else defaults.successful_runs
        ),
        failed_runs=(
            history.failed_runs if history.failed_runs is not None else defaults.failed_runs
        ),
        ttl_after_finished=(
            parse_duration(history.ttl_after_finished)
            if history.ttl_after_finished is not None
            else defaults.ttl_after_finished
        ),
    )


@dataclass(frozen=True)
class FinishedRun:
    """A finished SequenceRun as retention sees it."""

    name: str
    shipyard: str
    stage: str
    sequence: str
    result: Result | None
    finished_at: datetime
    #: Kept in git by Argo CD (its tracking annotation): git decides when it goes, never the
    #: clean-up, and it counts toward no limit.
    in_git: bool = False


@dataclass(frozen=True)
class Deletion:
    """A run to delete, and why (for the log and the Event)."""

    name: str
    why: str


@dataclass(frozen=True)
class Plan:
    """What a clean-up does: `deletions`, oldest first; `kept_for_evaluations`: runs the
    limits would delete but an evaluation still needs; `next_due`: when the next run passes
    its TTL (None: none will without new runs)."""

    deletions: list[Deletion]
    kept_for_evaluations: list[str]
    next_due: datetime | None


def needed_runs(
    histories: Mapping[EvaluationScope, Sequence[EarlierEvaluation]],
    comparisons: Mapping[EvaluationScope, Sequence[Comparison]],
    run_of: Mapping[str, str],
) -> set[str]:
    """The runs later evaluations still compare with. `histories`: per scope, the finished
    evaluations newest first (ids are TaskExecution names, as the evaluation reads them);
    `comparisons`: the comparison blocks of the SLOs serving that scope now; `run_of`:
    TaskExecution name → its run."""
    needed: set[str] = set()
    for scope, history in histories.items():
        end = 0
        for comparison in comparisons.get(scope, ()):
            picked = select_history(history, comparison)
            if picked:
                end = max(end, picked[-1][0] + 1)
        for evaluation in history[:end]:
            run = run_of.get(evaluation.id)
            if run is not None:
                needed.add(run)
    return needed


def plan(
    runs: Iterable[FinishedRun],
    policies: Mapping[str, Policy],
    defaults: Policy,
    needed: set[str],
    now: datetime,
) -> Plan:
    """Which finished runs to delete now (see the module's docstring). `policies`: per
    Shipyard name (a run whose Shipyard is gone gets `defaults`)."""
    groups: dict[RunScope, list[FinishedRun]] = {}
    for run in runs:
        if run.in_git:
            continue
        groups.setdefault((run.shipyard, run.stage, run.sequence), []).append(run)
    doomed: list[tuple[FinishedRun, str]] = []
    kept: list[str] = []
    next_due: datetime | None = None
    for (shipyard, _, _), members in groups.items():
        policy = policies.get(shipyard, defaults)
        members.sort(key=lambda r: (r.finished_at, r.name), reverse=True)
        good = [r for r in members if r.result in (Result.PASS, Result.WARNING)]
        bad = [r for r in members if r.result not in (Result.PASS, Result.WARNING)]
        reasons: dict[str, str] = {}
        for kind, limit, listed in (
            ("successfulRuns", policy.successful_runs, good),
            ("failedRuns", policy.failed_runs, bad),
        ):
            for run in listed[limit:]:
                reasons[run.name] = f"beyond {kind} {limit}"
        ttl = policy.ttl_after_finished
        for run in members:
            if ttl is None or run.name in reasons:
                continue
            due = run.finished_at + ttl
            if due <= now:
                reasons[run.name] = f"finished more than {_span(ttl)} ago (ttlAfterFinished)"
            elif run.name not in needed:
                next_due = due if next_due is None else min(next_due, due)
        for run in members:
            why = reasons.get(run.name)
            if why is None:
                continue
            if run.name in needed:
                kept.append(run.name)
                continue
            doomed.append((run, why))
    doomed.sort(key=lambda pair: (pair[0].finished_at, pair[0].name))
    return Plan(
        deletions=[Deletion(run.name, why) for run, why in doomed],
        kept_for_evaluations=sorted(kept),
        next_due=next_due,
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"
