"""What every handler shares in one process, made once at start-up (kopf's `memo`).

kopf hands each handler the object passed as `memo` to `kopf.operator` (a shallow copy per
watched object, so every field here is shared by all of them). Typed here, so a handler names
`memo: Runtime` and mypy checks every use.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipway import logs, metrics
from slipway.handlers.indexes import ExecutionsByRun
from slipway.handlers.membership import Membership, scope_label
from slipway.handlers.queue import QueueRecords
from slipway.handlers.retention import Retention
from slipway.handlers.supervisor import Supervisor
from slipway.handlers.wakeups import Wakeups
from slipway.kube.client import Kube
from slipway.kube.events import EventPoster
from slipway.kube.leases import LeaseStore
from slipway.providers.context import DispatchContext
from slipway.providers.job import JobWatch
from slipway.settings import Settings


@dataclass
class Runtime:
    """The process's shared objects."""

    settings: Settings
    kube: Kube
    wakeups: Wakeups
    dispatch: DispatchContext
    supervisor: Supervisor
    job_watch: JobWatch
    events: EventPoster
    retention: Retention
    executions: ExecutionsByRun
    membership: Membership
    queues: QueueRecords

    @classmethod
    def create(
        cls,
        settings: Settings,
        dispatch: DispatchContext,
        wakeups: Wakeups,
        membership: Membership,
        lease_namespace: str,
    ) -> Runtime:
        kube = dispatch.kube
        supervisor = Supervisor(owns=membership.owns_object)
        metrics.census_from(supervisor.census)  # /metrics' queued, running, workers
        logs.context_from(supervisor.context_of)  # JSON log lines: a run's context
        return cls(
            settings=settings,
            kube=kube,
            wakeups=wakeups,
            dispatch=dispatch,
            supervisor=supervisor,
            job_watch=JobWatch(kube),
            events=EventPoster(kube),
            retention=Retention(kube, settings),
            executions=ExecutionsByRun(),
            membership=membership,
            # The queues' shared records: Leases beside the member Leases, over this
            # process's own client (handlers/queue.py).
            queues=QueueRecords(
                LeaseStore(kube.api, lease_namespace),
                scope_label(settings.namespace),
                membership.identity,
            ),
        )
