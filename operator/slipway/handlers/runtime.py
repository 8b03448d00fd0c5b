"""What every handler shares in one process, made once at start-up (kopf's `memo`).

kopf hands each handler the object passed as `memo` to `kopf.operator` (a shallow copy per
watched object, so every field here is shared by all of them). Typed here, so a handler names
`memo: Runtime` and mypy checks every use.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipway import logs, metrics
from slipway.handlers.indexes import ExecutionsByRun
from slipway.handlers.retention import Retention
from slipway.handlers.supervisor import Supervisor
from slipway.handlers.wakeups import Wakeups
from slipway.kube.client import Kube
from slipway.kube.events import EventPoster
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

    @classmethod
    def create(cls, settings: Settings, dispatch: DispatchContext, wakeups: Wakeups) -> Runtime:
        kube = dispatch.kube
        supervisor = Supervisor()
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
        )
