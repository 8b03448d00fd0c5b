"""kopf's change-detection copy, skipped for the kinds that only have event handlers.

On every watch event kopf builds a copy of the object without its status (the "diffbase")
and compares it with the copy stored at the last handled change, to find the causes for
`on.create`/`on.update`/`on.resume` handlers. SequenceRuns, TaskExecutions, Jobs and Pods
have only `on.event` and index handlers here, so that copy is work for nothing: a deep copy of
each object at each of its watch events, about 7 % of the operator's CPU with 100 runs in
flight (py-spy, `make bench ARGS="--profile …"`). For those kinds the essence is empty, so
the diff is empty too; Shipyards and TaskProviders, which have change handlers, keep kopf's
own behaviour. `tests/unit/test_diffbase.py` checks that no change handler selects a kind
skipped here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

from slipway.constants import GROUP

#: (API group, kind) of the objects that have no change handlers ("" is the core group).
EVENT_ONLY_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        (GROUP, "SequenceRun"),
        (GROUP, "TaskExecution"),
        ("batch", "Job"),
        ("", "Pod"),
    }
)


def group_kind(body: Any) -> tuple[str, str]:
    """(group, kind) of a watched object's body."""
    api_version = str(body.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    return group, str(body.get("kind", ""))


class EventOnlyDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotations storage, with an empty essence for `EVENT_ONLY_KINDS`."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        if group_kind(body) in EVENT_ONLY_KINDS:
            return cast(kopf.BodyEssence, {})
        return super().build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if group_kind(body) in EVENT_ONLY_KINDS:
            return cast(kopf.BodyEssence, {})
        return super().fetch(body=body)
