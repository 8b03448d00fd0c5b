"""Every object the operator and the gateway create, built by pure functions (dict out).

One home for each rule: the labels a run, an execution and a Job carry; the owner reference
that makes the garbage collector delete children with their parent; the SequenceRun manifest
(a run the gateway starts and a linked run the engine starts are the same object); the
TaskExecution manifest; a Kubernetes Event. The Job is built by `engine.job_manifest`. The
`kube` package sends what these return; nothing else writes an object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.taskexecution import TaskExecutionSpec
from slipway.constants import (
    ANNOTATION_CONTEXT,
    ANNOTATION_TRIGGERED_BY,
    API_VERSION,
    LABEL_PARENT_RUN,
    LABEL_RUN,
    LABEL_SEQUENCE,
    LABEL_SHIPYARD,
    LABEL_STAGE,
    LABEL_TASK,
    LABEL_TRIGGERED_BY,
)
from slipway.engine.decisions import KubeEvent, NewExecution, NewRun

Body = dict[str, Any]

#: `source.component` and `reportingComponent` of every Event the operator posts.
EVENT_COMPONENT = "slipway"


# ------------------------------------------------------------------ labels
def run_labels(
    shipyard: str, stage: str, sequence: str, parent_run: str | None = None
) -> dict[str, str]:
    """Labels of a SequenceRun: its shipyard, stage and sequence (and, for a linked run, the
    run whose `.finished` started it), so `kubectl get -l` finds runs by any of them."""
    labels = {LABEL_SHIPYARD: shipyard, LABEL_STAGE: stage, LABEL_SEQUENCE: sequence}
    if parent_run is not None:
        labels[LABEL_PARENT_RUN] = parent_run
    return labels


def task_labels(spec: TaskExecutionSpec) -> dict[str, str]:
    """What identifies a task across runs: shipyard, stage, sequence and task (the label
    selector of an evaluation's history)."""
    return {
        **run_labels(spec.shipyard, spec.stage, spec.sequence),
        LABEL_TASK: spec.task.name,
    }


def execution_labels(spec: TaskExecutionSpec) -> dict[str, str]:
    """Labels of a TaskExecution and of everything made for it (Jobs, their Pods, Secrets):
    the task's labels and the run's name."""
    return {**task_labels(spec), LABEL_RUN: spec.run}


def label_selector(labels: Mapping[str, str]) -> str:
    """`key=value,…` for a list call."""
    return ",".join(f"{key}={value}" for key, value in labels.items())


# ------------------------------------------------------------------ ownership
def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controller owner reference to one of our objects: deleting the owner deletes the
    child (garbage collector, cascading), and the child cannot outlive it."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


# ------------------------------------------------------------------ our own objects
def triggered_by_label(username: str) -> str:
    """The label value naming who triggered a run: usernames are not valid label values."""
    return hashlib.sha256(username.encode()).hexdigest()[:32]


def build_run(
    name: str,
    spec: SequenceRunSpec,
    *,
    context: str | None = None,
    parent_run: str | None = None,
    triggered_by: str | None = None,
) -> Body:
    """A SequenceRun named `name` (owned by nobody: a run outlives what started it), labelled
    by `run_labels`; `context` becomes its correlation id (annotation `slipway.dev/context`),
    `triggered_by` the person who asked for it (annotation `slipway.dev/triggered-by`, and
    the label of the same key with `triggered_by_label`, so one person's runs can be listed)."""
    labels = run_labels(spec.shipyard, spec.stage, spec.sequence, parent_run)
    metadata: Body = {"name": name, "labels": labels}
    annotations = {}
    if context:
        annotations[ANNOTATION_CONTEXT] = context
    if triggered_by:
        annotations[ANNOTATION_TRIGGERED_BY] = triggered_by
        labels[LABEL_TRIGGERED_BY] = triggered_by_label(triggered_by)
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": API_VERSION,
        "kind": "SequenceRun",
        "metadata": metadata,
        "spec": spec.to_wire(),
    }


def build_linked_run(new: NewRun) -> Body:
    """The SequenceRun of an engine `NewRun` (a linked run)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "SequenceRun",
        "metadata": {
            "name": new.name,
            "labels": dict(new.labels),
            "annotations": dict(new.annotations),
        },
        "spec": new.spec.to_wire(),
    }


def build_execution(new: NewExecution, run: str, run_uid: str) -> Body:
    """The TaskExecution of an engine `NewExecution`, owned by SequenceRun `run`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "TaskExecution",
        "metadata": {
            "name": new.name,
            "labels": dict(new.labels),
            "ownerReferences": [owner_reference("SequenceRun", run, run_uid)],
        },
        "spec": new.spec.to_wire(),
    }


def callback_secret_name(execution: str) -> str:
    """The Secret holding `execution`'s callback token (for its Jobs' containers)."""
    return f"{execution}-callback"


def build_callback_secret(
    *, execution: str, execution_uid: str, run: str, key: str, token: str
) -> Body:
    """The Secret that hands `token` to an execution's Job containers (the Job's own spec
    is readable by anyone who may read Jobs); owned by the TaskExecution."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": callback_secret_name(execution),
            "labels": {LABEL_RUN: run},
            "ownerReferences": [owner_reference("TaskExecution", execution, execution_uid)],
        },
        "type": "Opaque",
        "stringData": {key: token},
    }


# ------------------------------------------------------------------ Events
def involved(kind: str, namespace: str, name: str, uid: str) -> dict[str, str]:
    """The `involvedObject` of an Event about one of our objects."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "uid": uid,
    }


def build_event(about: Mapping[str, str], event: KubeEvent, now: datetime) -> Body:
    """A Kubernetes Event on `about` (from `involved`), as `kubectl describe` shows it."""
    moment = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{about['name']}.", "namespace": about["namespace"]},
        "involvedObject": dict(about),
        "reason": event.reason,
        "message": event.message[:1024],
        "type": event.type,
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "firstTimestamp": moment,
        "lastTimestamp": moment,
        "count": 1,
    }
