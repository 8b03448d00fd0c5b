"""The history clean-up: delete the oldest finished runs beyond each Shipyard's `history`.

One loop per operator process. Each sweep lists the runs (and the finished evaluations whose
history later evaluations read), asks `slipway.engine.retention` what to delete, and deletes
those runs one by one at a bounded pace; what a run owns goes with it by garbage collection.
A sweep runs every `SLIPWAY_HISTORY_INTERVAL` seconds, soon after a run finishes, and when the
next run passes its TTL. A sweep that fails is logged and retried at the next one: nothing is
remembered between sweeps, so a restart loses nothing.

Files uploaded on the web page are not the clean-up's: the gateway's upload sweep removes a
file once no run refers to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from slipway.api.common import Result, parse_duration
from slipway.api.shipyard import ShipyardSpec
from slipway.api.slo import Comparison
from slipway.api.taskprovider import TaskProviderSpec
from slipway.constants import (
    ANNOTATION_ARGOCD_TRACKING,
    LABEL_SEQUENCE,
    LABEL_SHIPYARD,
    LABEL_STAGE,
    LABEL_TASK,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
    TASKEXECUTION_PLURAL,
    TASKPROVIDER_PLURAL,
)
from slipway.engine.retention import (
    EvaluationScope,
    FinishedRun,
    Plan,
    Policy,
    needed_runs,
    plan,
    policy_for,
)
from slipway.engine.scoring import EarlierEvaluation
from slipway.kube.client import Body, Kube, Ref
from slipway.kube.errors import KubeError
from slipway.providers.evaluation import earlier_evaluations
from slipway.settings import Settings

log = logging.getLogger(__name__)

#: At most this many deletions per sweep (the next sweep goes on).
MAX_PER_SWEEP = 200
#: A finished run asks for a sweep, but sweeps come at most this often.
MIN_GAP_SECONDS = 2.0


def defaults_of(settings: Settings) -> Policy:
    """The operator-wide history defaults."""
    ttl = settings.history_ttl_after_finished
    return Policy(
        successful_runs=settings.history_successful_runs,
        failed_runs=settings.history_failed_runs,
        ttl_after_finished=parse_duration(ttl) if ttl else None,
    )


class Retention:
    """The clean-up loop; `poke()` asks for a sweep soon (a run finished)."""

    def __init__(
        self,
        kube: Kube,
        settings: Settings,
    ) -> None:
        self.kube = kube
        self.namespace = settings.namespace
        self.defaults = defaults_of(settings)
        self.interval = settings.history_interval
        self.pause = 1.0 / settings.history_deletes_per_second
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="history clean-up")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def poke(self) -> None:
        self._poked.set()

    async def _loop(self) -> None:
        while True:
            wait = self.interval
            try:
                due = await self.sweep()
            except (TimeoutError, KubeError, OSError) as error:
                log.warning("history clean-up failed, retried at the next sweep: %s", error)
                due = None
            except Exception:  # a bug must not end the clean-up for good
                log.exception("history clean-up failed, retried at the next sweep")
                due = None
            if due is not None:
                wait = min(wait, max(0.0, (due - datetime.now(UTC)).total_seconds()))
            await asyncio.sleep(min(MIN_GAP_SECONDS, wait))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), max(0.0, wait - MIN_GAP_SECONDS))
            self._poked.clear()

    async def sweep(self) -> datetime | None:
        """One clean-up of every namespace watched; when the next TTL falls due."""
        runs = await self.kube.list_all(SEQUENCERUN_PLURAL, self.namespace)
        by_namespace: dict[str, list[Body]] = {}
        for body in runs:
            by_namespace.setdefault(body["metadata"]["namespace"], []).append(body)
        due: datetime | None = None
        budget = MAX_PER_SWEEP
        for namespace, bodies in sorted(by_namespace.items()):
            if not any(_finished(b) for b in bodies):
                continue
            decided = await self._plan(namespace, bodies)
            if decided.next_due is not None:
                due = decided.next_due if due is None else min(due, decided.next_due)
            uids = {b["metadata"]["name"]: b["metadata"]["uid"] for b in bodies}
            for deletion in decided.deletions[:budget]:
                budget -= 1
                ref = Ref(SEQUENCERUN_PLURAL, namespace, deletion.name)
                if await self.kube.delete(ref, uids[deletion.name]):
                    log.info(
                        "history: deleted SequenceRun %s/%s (%s)",
                        namespace,
                        deletion.name,
                        deletion.why,
                    )
                await asyncio.sleep(self.pause)
            if budget <= 0:
                return datetime.now(UTC)
        return due

    async def _plan(self, namespace: str, bodies: list[Body]) -> Plan:
        shipyards = await self.kube.list(SHIPYARD_PLURAL, namespace)
        policies: dict[str, Policy] = {}
        for body in shipyards:
            try:
                spec = ShipyardSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                continue
            policies[body["metadata"]["name"]] = policy_for(spec.history, self.defaults)
        histories, comparisons, run_of = await self._evaluations(namespace)
        return plan(
            [r for r in (_finished_run(b) for b in bodies) if r is not None],
            policies,
            self.defaults,
            needed_runs(histories, comparisons, run_of),
            datetime.now(UTC),
        )

    async def _evaluations(
        self, namespace: str
    ) -> tuple[
        dict[EvaluationScope, list[EarlierEvaluation]],
        dict[EvaluationScope, list[Comparison]],
        dict[str, str],
    ]:
        """The evaluation histories later evaluations read, the comparisons of the SLOs
        serving each, and which run each evaluation belongs to."""
        providers = []
        for body in await self.kube.list(TASKPROVIDER_PLURAL, namespace):
            try:
                spec = TaskProviderSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                continue
            if spec.evaluation is not None:
                providers.append(spec)
        if not providers:
            return {}, {}, {}
        tasks = sorted({p.task for p in providers})
        items = await self.kube.list(
            TASKEXECUTION_PLURAL, namespace, label_selector=f"{LABEL_TASK} in ({','.join(tasks)})"
        )
        grouped: dict[EvaluationScope, list[Body]] = {}
        run_of: dict[str, str] = {}
        for body in items:
            labels = body["metadata"].get("labels") or {}
            scope = (
                labels.get(LABEL_SHIPYARD, ""),
                labels.get(LABEL_STAGE, ""),
                labels.get(LABEL_SEQUENCE, ""),
                labels.get(LABEL_TASK, ""),
            )
            grouped.setdefault(scope, []).append(body)
            run_of[body["metadata"]["name"]] = (body.get("spec") or {}).get("run", "")
        histories = {scope: earlier_evaluations(found, "") for scope, found in grouped.items()}
        comparisons = {
            scope: [
                p.evaluation.slo.comparison
                for p in providers
                if p.evaluation is not None and p.serves(scope[0], scope[1], scope[3])
            ]
            for scope in grouped
        }
        return histories, comparisons, run_of


def _finished(body: Mapping[str, Any]) -> bool:
    return bool((body.get("status") or {}).get("phase") == "Finished")


def _finished_run(body: Body) -> FinishedRun | None:
    meta = body["metadata"]
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    if status.get("phase") != "Finished" or meta.get("deletionTimestamp"):
        return None
    raw = status.get("finishedAt") or meta["creationTimestamp"]
    try:
        finished_at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    result = status.get("result")
    return FinishedRun(
        name=meta["name"],
        shipyard=str(spec.get("shipyard", "")),
        stage=str(spec.get("stage", "")),
        sequence=str(spec.get("sequence", "")),
        result=Result(result) if result in {r.value for r in Result} else None,
        finished_at=finished_at,
        in_git=ANNOTATION_ARGOCD_TRACKING in (meta.get("annotations") or {}),
    )
