"""How the command shows runs: a tree of tasks, table rows, JSON and YAML. Pure functions of
the objects (dicts as the API returns them) and the time, so they are tested without a
cluster and `watch` can redraw from them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

Body = Mapping[str, Any]

#: The mark of a task or run by phase and result.
MARKS = {"pass": "✔", "warning": "!", "fail": "✘", "Started": "▶", "Pending": "·"}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time of a status (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration(start: Any, end: Any, now: datetime) -> str:
    """`1.2s`, `3m04s`, `1h02m`; empty when it has not started."""
    begun = parse_time(start)
    if begun is None:
        return ""
    seconds = max(0.0, ((parse_time(end) or now) - begun).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _state(status: Mapping[str, Any]) -> tuple[str, str]:
    """(mark, word) for a run's or a task's status."""
    phase = status.get("phase") or "Pending"
    if phase == "Finished":
        result = status.get("result") or "fail"
        return MARKS.get(result, "?"), result
    return MARKS.get(phase, "·"), "running" if phase == "Started" else "pending"


def tree(run: Body, now: datetime | None = None) -> list[str]:
    """The run as lines: a header, one line per task of its sequence (reached or not) with
    its state, duration and message, then the verdict once the run finished."""
    now = now or datetime.now(UTC)
    meta, spec = run.get("metadata") or {}, run.get("spec") or {}
    status = run.get("status") or {}
    mark, word = _state(status)
    head = (
        f"{mark} {meta.get('name', '?')}  {spec.get('stage', '?')}.{spec.get('sequence', '?')} "
        f"(Shipyard {spec.get('shipyard', '?')})  {word}"
    )
    took = duration(status.get("startedAt"), status.get("finishedAt"), now)
    lines = [head + (f"  {took}" if took else "")]
    records = {t.get("index"): t for t in status.get("tasks") or []}
    planned = [t.get("name", "?") for t in (status.get("sequence") or {}).get("tasks") or []]
    count = max(len(planned), len(records))
    width = max(
        [len(n) for n in planned] + [len(str(t.get("name"))) for t in records.values()] + [4]
    )
    for index in range(count):
        record = records.get(index) or {"name": planned[index] if index < len(planned) else "?"}
        branch = "└─" if index == count - 1 else "├─"
        task_mark, task_word = _state(record)
        line = f"{branch} {task_mark} {record.get('name')!s:<{width}}  {task_word:<8}"
        took = duration(record.get("startedAt"), record.get("finishedAt"), now)
        line += f" {took:>7}" if took else ""
        if record.get("reason") and record.get("reason") != "Completed":
            line += f"  ({record['reason']})"
        if record.get("message"):
            line += f"  {one_line(str(record['message']))}"
        lines.append(line.rstrip())
    if status.get("phase") == "Finished":
        verdict = f"verdict: {status.get('result', '?')} ({status.get('reason', '?')})"
        if status.get("score") is not None:
            verdict += f", score {status['score']}"
        if status.get("message"):
            verdict += f": {one_line(str(status['message']))}"
        lines.append(verdict)
    return lines


def one_line(text: str, limit: int = 160) -> str:
    """A message on one line, shortened to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def run_row(run: Body, now: datetime | None = None) -> list[str]:
    """NAME STAGE.SEQUENCE SHIPYARD STATE TASK DURATION AGE for `list`."""
    now = now or datetime.now(UTC)
    meta, spec = run.get("metadata") or {}, run.get("spec") or {}
    status = run.get("status") or {}
    _, word = _state(status)
    return [
        str(meta.get("name", "")),
        f"{spec.get('stage', '')}.{spec.get('sequence', '')}",
        str(spec.get("shipyard", "")),
        word,
        str(status.get("currentTask") or ""),
        duration(status.get("startedAt"), status.get("finishedAt"), now),
        duration(meta.get("creationTimestamp"), None, now),
    ]


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, as kubectl prints them."""
    rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def dump(value: Any, output: str) -> str:
    """`value` as JSON (indented) or YAML (block style)."""
    if output == "yaml":
        return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip()
    return json.dumps(value, indent=2, default=str)


def summary(run: Body) -> dict[str, Any]:
    """What scripts want of a run: name, namespace, sequence, phase, result and tasks."""
    meta, spec = run.get("metadata") or {}, run.get("spec") or {}
    status = run.get("status") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "shipyard": spec.get("shipyard"),
        "stage": spec.get("stage"),
        "sequence": spec.get("sequence"),
        "phase": status.get("phase"),
        "result": status.get("result"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "context": status.get("context"),
        "score": status.get("score"),
        "tasks": [
            {
                key: task.get(key)
                for key in (
                    "name",
                    "phase",
                    "result",
                    "reason",
                    "message",
                    "startedAt",
                    "finishedAt",
                )
            }
            for task in status.get("tasks") or []
        ],
    }
