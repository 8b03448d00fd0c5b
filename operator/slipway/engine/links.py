"""Linked sequences: which runs a finished run starts (`triggeredOn`), and their names."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slipway.api.common import Result
from slipway.api.sequencerun import SequenceRunSpec, TaskRecord
from slipway.api.shipyard import Selector, ShipyardSpec
from slipway.constants import ANNOTATION_CONTEXT, ANNOTATION_TRIGGERED_BY
from slipway.engine.decisions import NewRun
from slipway.engine.objects import run_labels
from slipway.engine.results import as_result, succeeded

if TYPE_CHECKING:  # runs imports this module; the view is only a type here
    from slipway.engine.runs import RunView

#: Longest name of a linked run: its TaskExecutions append `-<index>-<task>` to it.
MAX_LINKED_NAME = 40
_HASH_LENGTH = 10


def linked_runs(
    shipyard: ShipyardSpec,
    run: RunView,
    result: Result,
    last_task: TaskRecord | None,
    data: Mapping[str, Any],
) -> list[NewRun]:
    """The SequenceRuns to start because `run` finished with `result`.

    Every sequence of every stage with a `triggeredOn` entry for
    `<run's stage>.<run's sequence>.finished` whose selector matches starts once (several
    matching entries still start it once), in the Shipyard's order. `last_task`: the record
    of the last task that ran (for `<task>.result` selectors); `data`: the run's final data,
    which becomes the new run's `spec.data`. The new runs carry the parent's context and are
    labelled with its name; their names are deterministic, so creating them again after a
    restart gives AlreadyExists rather than twins.
    """
    event = f"{run.spec.stage}.{run.spec.sequence}.finished"
    context = run.status.context or run.annotations.get(ANNOTATION_CONTEXT) or run.uid
    runs = []
    for stage in shipyard.stages:
        for sequence in stage.sequences:
            if not any(
                trigger.event == event and selector_matches(trigger.selector, result, last_task)
                for trigger in sequence.triggered_on
            ):
                continue
            runs.append(
                NewRun(
                    name=linked_run_name(run.name, run.uid, stage.name, sequence.name),
                    spec=SequenceRunSpec(
                        shipyard=run.spec.shipyard,
                        stage=stage.name,
                        sequence=sequence.name,
                        data=copy.deepcopy(dict(data)),
                    ),
                    labels=run_labels(
                        run.spec.shipyard, stage.name, sequence.name, parent_run=run.name
                    ),
                    annotations=_inherited(run, context),
                )
            )
    return runs


def _inherited(run: RunView, context: str) -> dict[str, str]:
    """A linked run's annotations: the context, and who triggered the chain (so the person
    who started `dev` cannot approve the gate of `prod` they set off)."""
    annotations = {ANNOTATION_CONTEXT: context}
    who = run.annotations.get(ANNOTATION_TRIGGERED_BY)
    if who:
        annotations[ANNOTATION_TRIGGERED_BY] = who
    return annotations


def selector_matches(
    selector: Selector | None, result: Result, last_task: TaskRecord | None
) -> bool:
    """Whether a link fires. No selector: on `pass` or `warning`. Otherwise when any entry
    matches: `result` compares the finished sequence's result; `<task>.result` compares the
    result of the last task that ran, and does not match when another task ran last (a
    missing task result counts as `fail`)."""
    if selector is None:
        return succeeded(result)
    for key, wanted in selector.match.items():
        if key == "result":
            if result == wanted:
                return True
            continue
        task = key.removesuffix(".result")
        if (
            last_task is not None
            and last_task.name == task
            and as_result(last_task.result) == wanted
        ):
            return True
    return False


def linked_run_name(parent: str, parent_uid: str, stage: str, sequence: str) -> str:
    """The name of the run of `stage`/`sequence` that run `parent` (uid `parent_uid`) starts:
    `<stage>-<sequence>` cut to fit, then `-` and 10 hex digits of a hash of all four
    arguments. A DNS label of at most 40 characters; the same arguments give the same name,
    and a new parent (a new uid, even under the same name) gives new names."""
    digest = hashlib.sha256(f"{parent}/{parent_uid}/{stage}/{sequence}".encode()).hexdigest()
    prefix = f"{stage}-{sequence}"[: MAX_LINKED_NAME - _HASH_LENGTH - 1].rstrip("-")
    return f"{prefix}-{digest[:_HASH_LENGTH]}" if prefix else digest[:_HASH_LENGTH]
