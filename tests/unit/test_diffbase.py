"""kopf's change-detection copy is skipped only for kinds without change handlers."""

from __future__ import annotations

from typing import Any

import kopf

import slipway.handlers.main  # noqa: F401  (registers the handlers)
from slipway.handlers.diffbase import EVENT_ONLY_KINDS, EventOnlyDiffBaseStorage, group_kind

PLURALS = {
    "SequenceRun": "sequenceruns",
    "TaskExecution": "taskexecutions",
    "Job": "jobs",
    "Pod": "pods",
}


def storage() -> EventOnlyDiffBaseStorage:
    return EventOnlyDiffBaseStorage(prefix="slipway.dev", key="last-handled-configuration")


def body(api_version: str, kind: str) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "n", "annotations": {}},
        "spec": {"a": 1},
        "status": {"phase": "Started"},
    }
    return kopf.Body(raw)  # type: ignore[arg-type]


def test_no_change_or_spawning_handler_selects_a_skipped_kind() -> None:
    registry = kopf.get_default_registry()
    handlers = [
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
    ]
    assert handlers, "the registry has change handlers (Shipyards, TaskProviders)"
    skipped = {PLURALS[kind] for _, kind in EVENT_ONLY_KINDS} | {k for _, k in EVENT_ONLY_KINDS}
    for handler in handlers:
        selector = handler.selector
        assert selector is not None
        names = {selector.plural, selector.any_name, selector.kind, selector.singular}
        assert names - {None}, handler.id  # selects by some name
        assert not names & skipped, handler.id


def test_skipped_kinds_get_an_empty_essence_and_others_kopfs_own() -> None:
    run = body("slipway.dev/v1alpha1", "SequenceRun")
    assert group_kind(run) == ("slipway.dev", "SequenceRun")
    assert storage().build(body=run) == {}
    assert storage().fetch(body=run) == {}
    assert group_kind(body("v1", "Pod")) == ("", "Pod")
    assert storage().build(body=body("v1", "Pod")) == {}
    shipyard = body("slipway.dev/v1alpha1", "Shipyard")
    essence = storage().build(body=shipyard)
    assert essence["spec"] == {"a": 1}
    assert "status" not in essence
    assert storage().fetch(body=shipyard) is None
