"""What the web page is told about capabilities and runs: plain JSON made from the objects.

Pure functions of Kubernetes objects (dicts), no I/O: the routes in `slipway.gateway.web`
read the objects and send these views. Field names are camelCase, like the API's.
"""

from __future__ import annotations

from typing import Any

from slipway.api.shipyard import Sequence, ShipyardSpec
from slipway.constants import ANNOTATION_TRIGGERED_BY, LABEL_RUN

Body = dict[str, Any]


def capabilities(namespace: str, shipyard: Body, prefix: str = "") -> list[Body]:
    """The sequences of a Shipyard that have a `title`: what people may start."""
    name = shipyard["metadata"]["name"]
    try:
        spec = ShipyardSpec.model_validate(shipyard.get("spec") or {})
    except ValueError:
        return []  # an inconsistent Shipyard offers nothing (its Ready condition says why)
    found = []
    for stage in spec.stages:
        for sequence in stage.sequences:
            if sequence.title:
                found.append(capability(namespace, name, stage.name, sequence, prefix))
    return found


def capability(
    namespace: str, shipyard: str, stage: str, sequence: Sequence, prefix: str = ""
) -> Body:
    """One capability: where it lives, its title, description, inputs, task names and the
    event type that starts it (with the gateway's event type prefix)."""
    inputs = sequence.inputs.to_wire() if sequence.inputs else {"type": "object"}
    return {
        "id": f"{namespace}/{shipyard}/{stage}/{sequence.name}",
        "namespace": namespace,
        "shipyard": shipyard,
        "stage": stage,
        "sequence": sequence.name,
        "title": sequence.title,
        "description": sequence.description or "",
        "inputs": inputs,
        "order": sequence.inputs.order() if sequence.inputs else [],
        "tasks": [task.name for task in sequence.tasks],
        "eventType": f"{prefix}{stage}.{sequence.name}.triggered",
    }


def _findings(execution: Body | None, message: str) -> list[str]:
    """What the tools found, one line per provider (their own `.finished` messages, without
    the task's `<provider>: <result> - ` prefixes); the task's message when not known."""
    providers = ((execution or {}).get("status") or {}).get("providers") or []
    said = [
        str(p["message"])
        for p in providers
        if isinstance(p, dict) and p.get("phase") == "Finished" and p.get("message")
    ]
    return said or ([message] if message else [])


def _provider_messages(execution: Body | None) -> list[str]:
    """The tools' latest status messages of one execution (one per provider that sent one)."""
    if not execution:
        return []
    providers = (execution.get("status") or {}).get("providers") or []
    return [
        str(p["lastStatusMessage"])
        for p in providers
        if isinstance(p, dict) and p.get("lastStatusMessage")
    ]


def run_view(run: Body, executions: list[Body] | None = None) -> Body:
    """A run as the page shows it: the capability, where it is, one line per task (waiting,
    running or done, with what the tools said), and the verdict once finished."""
    meta = run.get("metadata") or {}
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    snapshot = status.get("sequence") or {}
    by_name = {
        (e.get("metadata") or {}).get("name"): e
        for e in executions or []
        if (e.get("metadata") or {}).get("labels", {}).get(LABEL_RUN) == meta.get("name")
    }
    records = {t.get("name"): t for t in status.get("tasks") or [] if isinstance(t, dict)}
    names = [t.get("name") for t in snapshot.get("tasks") or [] if isinstance(t, dict)]
    names += [n for n in records if n not in names]
    tasks = []
    for name in names:
        record = records.get(name) or {}
        execution = by_name.get(record.get("execution"))
        phase = record.get("phase") or "Pending"
        state = {"Pending": "waiting", "Started": "running", "Finished": "done"}.get(
            phase, "waiting"
        )
        if record and phase == "Pending":
            state = "waiting"
        tasks.append(
            {
                "name": name,
                "state": state,
                "result": record.get("result"),
                "message": record.get("message") or "",
                "findings": _findings(execution, record.get("message") or ""),
                "statusMessages": _provider_messages(execution),
                "startedAt": record.get("startedAt"),
                "finishedAt": record.get("finishedAt"),
            }
        )
    finished = status.get("phase") == "Finished"
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "createdAt": meta.get("creationTimestamp"),
        "triggeredBy": (meta.get("annotations") or {}).get(ANNOTATION_TRIGGERED_BY),
        "shipyard": spec.get("shipyard"),
        "stage": spec.get("stage"),
        "sequence": spec.get("sequence"),
        "title": snapshot.get("title") or spec.get("sequence"),
        "inputs": _shown_inputs(spec.get("data") or {}),
        "phase": status.get("phase") or "Pending",
        "finished": finished,
        "result": status.get("result"),
        "reason": status.get("reason"),
        "message": status.get("message") or "",
        "score": status.get("score"),
        "startedAt": status.get("startedAt"),
        "finishedAt": status.get("finishedAt"),
        "tasks": tasks,
        "doubts": doubts(status.get("data") or {}) if finished else [],
    }


def _shown_inputs(data: Body) -> Body:
    """The run's data without upload tokens (a shared link shows what was asked, not keys)."""
    shown: Body = {}
    for key, value in data.items():
        if isinstance(value, dict) and "token" in value and "url" in value:
            shown[key] = {"file": value.get("name") or value.get("sha256", "")[:12]}
        else:
            shown[key] = value
    return shown


def doubts(data: Body) -> list[Body]:
    """The quality gate's objectives that were not met (fail or warning), with their names,
    for the verdict's "what is doubtful" lines."""
    evaluation = data.get("evaluation")
    if not isinstance(evaluation, dict):
        return []
    found = []
    for objective in evaluation.get("objectives") or []:
        if not isinstance(objective, dict) or objective.get("status") not in ("fail", "warning"):
            continue
        found.append(
            {
                "check": str(
                    objective.get("displayName")
                    or objective.get("display_name")
                    or objective.get("sli")
                    or ""
                ),
                "status": objective.get("status"),
                "value": objective.get("value"),
            }
        )
    return found
