"""What `slipway.metrics` counts for one status write, how it names Kubernetes verbs, and the
JSON log lines."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from slipway import logs, metrics


def value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return found or 0.0


@pytest.mark.parametrize(
    ("method", "url", "verb"),
    [
        ("GET", "https://k/apis/slipway.dev/v1alpha1/namespaces/a/sequenceruns/r", "get"),
        ("GET", "https://k/apis/slipway.dev/v1alpha1/namespaces/a/sequenceruns", "list"),
        ("GET", "https://k/apis/slipway.dev/v1alpha1/namespaces/a/runs?watch=true", "watch"),
        ("PATCH", "https://k/apis/slipway.dev/v1alpha1/namespaces/a/runs/r/status", "patch"),
        ("POST", "https://k/apis/slipway.dev/v1alpha1/namespaces/a/taskexecutions", "create"),
        ("PUT", "https://k/api/v1/namespaces/a/secrets/s", "update"),
        ("DELETE", "https://k/apis/batch/v1/namespaces/a/jobs/j", "delete"),
        ("DELETE", "https://k/apis/batch/v1/namespaces/a/jobs", "deletecollection"),
        ("GET", "https://k/api/v1/namespaces", "list"),
        ("GET", "https://k/api/v1/namespaces/a", "get"),
        ("POST", "https://k/apis/authentication.k8s.io/v1/tokenreviews", "create"),
    ],
)  # fmt: skip
def test_kube_verb(method: str, url: str, verb: str) -> None:
    """HTTP method and path give the Kubernetes verb: one object or a collection, a watch."""
    assert metrics.kube_verb(method, url) == verb


def _run(status: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"shipyard": "s", "stage": "dev", "sequence": "unit"}, "status": status}


SEQUENCE = {"name": "unit", "tasks": [{"name": "a"}, {"name": "b"}]}


def test_run_written_counts_each_transition_once() -> None:
    """A start counts once, a task's finish observes its duration, reaching the next task
    observes a hop, a finish counts by result with the run's duration; writing the same
    status again counts nothing more."""
    labels = {"shipyard": "s", "stage": "dev", "sequence": "unit"}
    started0 = value("slipway_runs_started_total", **labels)
    tasks0 = value("slipway_task_duration_seconds_count", task="a", result="pass")
    hops0 = value("slipway_hop_latency_seconds_count")
    done0 = value("slipway_runs_finished_total", **labels, result="warning")
    took0 = value("slipway_run_duration_seconds_sum", **labels, result="warning")

    pending = _run({})
    first = _run(
        {"phase": "Started", "sequence": SEQUENCE, "startedAt": "2026-01-01T00:00:00Z",
         "tasks": [{"name": "a", "index": 0, "phase": "Pending"}]}
    )  # fmt: skip
    metrics.run_written(pending, first)
    metrics.run_written(pending, None)  # no write: nothing
    assert value("slipway_runs_started_total", **labels) == started0 + 1
    second = _run(
        {**first["status"], "tasks": [
            {"name": "a", "index": 0, "phase": "Finished", "result": "pass",
             "startedAt": "2026-01-01T00:00:01Z", "finishedAt": "2026-01-01T00:00:03Z"},
            {"name": "b", "index": 1, "phase": "Pending"}]}
    )  # fmt: skip
    metrics.run_written(first, second)
    metrics.run_written(second, second)  # the same status again
    assert value("slipway_task_duration_seconds_count", task="a", result="pass") == tasks0 + 1
    assert value("slipway_hop_latency_seconds_count") == hops0 + 1
    assert value("slipway_runs_started_total", **labels) == started0 + 1
    last = _run(
        {**second["status"], "phase": "Finished", "result": "warning",
         "finishedAt": "2026-01-01T00:00:10Z"}
    )  # fmt: skip
    metrics.run_written(second, last)
    metrics.run_written(last, last)
    assert value("slipway_runs_finished_total", **labels, result="warning") == done0 + 1
    assert value("slipway_run_duration_seconds_sum", **labels, result="warning") == took0 + 10


def test_delivered_counts_outcomes_and_retries() -> None:
    """Each delivery counts by kind and outcome; extra tries and repeated attempts are retries."""
    ok0 = value("slipway_deliveries_total", provider_kind="job", outcome="ok")
    retries0 = value("slipway_delivery_retries_total", provider_kind="job")
    metrics.delivered("job", "ok")
    metrics.delivered("job", "ok", tries=3, attempt=2)
    assert value("slipway_deliveries_total", provider_kind="job", outcome="ok") == ok0 + 2
    assert value("slipway_delivery_retries_total", provider_kind="job") == retries0 + 3


def test_census_gauges_read_the_source() -> None:
    """The state gauges show what the census source says at scrape time, zero without one."""
    metrics.census_from(lambda: metrics.Census(2, 3, {"sequencerun": 3, "taskexecution": 1}))
    try:
        assert value("slipway_runs_queued") == 2
        assert value("slipway_runs_running") == 3
        assert value("slipway_workers_alive", kind="taskexecution") == 1
    finally:
        metrics.census_from(None)
    assert value("slipway_runs_running") == 0
    assert value("slipway_owned_share") == 1


def test_json_log_line_carries_object_and_context() -> None:
    """A record about an object gives one JSON object with its kind, namespace, name and the
    context the source knows; a plain record has no such keys."""
    formatter = logs.JsonFormatter()
    logs.context_from(lambda kind, ns, name: f"ctx-{kind}-{ns}-{name}")
    try:
        record = logging.LogRecord(
            "kopf.objects", logging.INFO, __file__, 1, "hello %s", ("x",), None
        )
        record.k8s_ref = {"kind": "SequenceRun", "namespace": "a", "name": "r"}
        entry = json.loads(formatter.format(record))
        assert entry["message"] == "hello x"
        assert (entry["kind"], entry["namespace"], entry["name"]) == ("SequenceRun", "a", "r")
        assert entry["context"] == "ctx-SequenceRun-a-r"
        plain = json.loads(
            formatter.format(logging.LogRecord("x", logging.WARNING, __file__, 1, "m", (), None))
        )
        assert plain["level"] == "warning"
        assert "context" not in plain
        assert "name" not in plain
    finally:
        logs.context_from(None)


def test_an_invalid_run_never_becomes_a_label_value() -> None:
    """A run naming a sequence no Shipyard has finishes `fail` under `-`, not its names."""
    before = value(
        "slipway_runs_finished_total", shipyard="-", stage="-", sequence="-", result="fail"
    )
    invalid = {
        "spec": {"shipyard": "made-up", "stage": "x", "sequence": "y"},
        "status": {"phase": "Finished", "result": "fail", "reason": "Invalid"},
    }
    metrics.run_written({"spec": invalid["spec"], "status": {}}, invalid)
    assert (
        value("slipway_runs_finished_total", shipyard="-", stage="-", sequence="-", result="fail")
        == before + 1
    )
    assert (
        value(
            "slipway_runs_finished_total",
            shipyard="made-up",
            stage="x",
            sequence="y",
            result="fail",
        )
        == 0
    )


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("Handler 'run_changed' succeeded.", False),
        ("Creation is processed: 1 succeeded; 0 failed.", False),
        ("Resuming is superseded by creation: 1 succeeded", False),
        ("TaskExecution r-0-a created", True),
        ("linked SequenceRun r2 started", True),
    ],
)
def test_kopf_chatter_is_dropped_slipway_lines_kept(message: str, kept: bool) -> None:
    """Without --verbose, kopf's per-handler INFO lines go; Slipway's own stay."""
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, (), None)
    assert logs._quiet_kopf(record) is kept
    record.levelno = logging.WARNING
    assert logs._quiet_kopf(record) is True
