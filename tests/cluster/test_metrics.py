"""The operator's /metrics as the real Prometheus sees it: counters move by exactly the runs
made, and every query of the Grafana dashboard is accepted and answers with data; JSON logs
carry each run's namespace, name and context."""

from __future__ import annotations

import json
import math
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.objects import Cluster, sequence, stage
from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.prometheus import PrometheusServer
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests" / "observability" / "dashboard.json"
EVENTS_ROUTE = "/v1/namespaces/{namespace}/events"


def kubeconfig_token() -> str:
    """The local control plane's admin token (the kubeconfig user's)."""
    import os

    config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    return str(config["users"][0]["user"]["token"])


def trigger(operator: OperatorProcess, stage_name: str, sequence_name: str) -> str:
    """POST `<stage>.<sequence>.triggered` to the gateway; the new run's name."""
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "test-metrics",
        "type": f"{stage_name}.{sequence_name}.triggered",
        "data": {},
    }
    request = urllib.request.Request(
        f"{operator.gateway_url}/v1/namespaces/{operator.namespace}/events",
        data=json.dumps(event).encode(),
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {kubeconfig_token()}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202
        return str(json.loads(answer.read())["run"])


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard."""
    document = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in document["panels"]
        for target in panel["targets"]
    ]


def test_dashboard_is_grafana_json_with_unique_panels() -> None:
    """The dashboard has a uid, a Prometheus datasource variable and panels whose ids and
    titles are unique, each with at least one query."""
    document = json.loads(DASHBOARD.read_text())
    assert document["uid"] == "slipway-overview"
    assert document["templating"]["list"][0]["type"] == "datasource"
    panels = document["panels"]
    assert len({p["id"] for p in panels}) == len({p["title"] for p in panels}) == len(panels)
    assert all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in panels)


@pytest.mark.timeout(1800)  # the first use builds Prometheus from its pinned module
def test_prometheus_sees_runs_tasks_deliveries_and_requests(
    k8s: Cluster, operator: OperatorProcess, tool: Tool, tmp_path: Path
) -> None:
    """Two batches of the same runs (a two-task sequence triggered through the gateway whose
    second tool fails twice before taking the event, and a one-task sequence applied with
    kubectl that fails): after each, Prometheus scraping the operator shows every counter at
    exactly batches times runs, the state gauges back at zero, and each dashboard query answers
    with a number."""
    tool.behave.update({"first": "sync-pass", "second": "flaky", "breaks": "sync-fail"})
    k8s.shipyard(
        "obs", [stage("dev", sequence("two", "first", "second"), sequence("bad", "breaks"))]
    )
    for task in ("first", "second", "breaks"):
        k8s.provider(f"p-{task}", task, tool.url)
    (tmp_path / "prometheus").mkdir()
    server = PrometheusServer([operator.metrics_address], tmp_path / "prometheus")
    server.start()
    try:
        server.wait_for_value('up{job="slipway-exporter"}', 1)
        server.wait_for_value("slipway_owned_share", 1)
        for batch in (1, 2):
            two = trigger(operator, "dev", "two")
            k8s.run(f"bad-{batch}", "obs", "dev", "bad")
            assert k8s.finished(two)["result"] == "pass"
            assert k8s.finished(f"bad-{batch}")["result"] == "fail"
            expected = {
                'sum(slipway_runs_started_total{shipyard="obs",stage="dev",sequence="two"})': batch,
                'sum(slipway_runs_started_total{sequence="bad"})': batch,
                'sum(slipway_runs_finished_total{sequence="two",result="pass"})': batch,
                'sum(slipway_runs_finished_total{sequence="bad",result="fail"})': batch,
                'sum(slipway_run_duration_seconds_count{sequence="two"})': batch,
                'sum(slipway_task_duration_seconds_count{task="first",result="pass"})': batch,
                'sum(slipway_task_duration_seconds_count{task="second",result="pass"})': batch,
                'sum(slipway_task_duration_seconds_count{task="breaks",result="fail"})': batch,
                "sum(slipway_hop_latency_seconds_count)": batch,  # only `two` has a next task
                'sum(slipway_deliveries_total{provider_kind="cloudEvent",outcome="ok"})': 3 * batch,
                # the flaky tool answers 503 twice to each event before it takes it
                'sum(slipway_delivery_retries_total{provider_kind="cloudEvent"})': 2 * batch,
                # the trigger, and the async tool's .started, .status.changed and .finished
                f'sum(slipway_gateway_requests_total{{route="{EVENTS_ROUTE}",method="POST",'
                'code="202"})': 4 * batch,
                "sum(slipway_runs_running) + sum(slipway_runs_queued)": 0,
                'sum(slipway_workers_alive{kind="sequencerun"})': 0,
            }
            for promql, value in expected.items():
                server.wait_for_value(promql, value)
            creates = server.query('sum(slipway_kube_api_requests_total{verb="create"})')
            assert float(creates[0]["value"][1]) >= 3 * batch  # the TaskExecutions at least
            durations = server.query('sum(slipway_task_duration_seconds_sum{task="second"})')
            assert float(durations[0]["value"][1]) > 0
        for title, promql in dashboard_queries():
            result = server.query(promql)  # raises unless Prometheus accepted the query
            numbers = [float(sample["value"][1]) for sample in result]
            assert numbers, f"{title}: {promql} gave no data"
            assert any(math.isfinite(n) for n in numbers), f"{title}: {promql} gave {numbers}"
    finally:
        server.stop()


def test_json_logs_carry_namespace_name_and_context(
    kubeconfig: Path, namespace: str, api_client: client.ApiClient, tool: Tool, tmp_path: Path
) -> None:
    """With SLIPWAY_LOG_FORMAT=json every line the operator writes is one JSON object, and
    the lines about a run carry its namespace, name and context."""
    k8s = Cluster(api_client, namespace)
    tool.behave["first"] = "sync-pass"
    k8s.shipyard("obs", [stage("dev", sequence("one", "first"))])
    k8s.provider("p-first", "first", tool.url)
    process = OperatorProcess(namespace, tmp_path / "operator.log", {"SLIPWAY_LOG_FORMAT": "json"})
    process.start()
    try:
        k8s.run("logged", "obs", "dev", "one")
        status = k8s.finished("logged")

        def about_the_run() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in process.log().splitlines() if line.strip()]
            return [e for e in lines if e.get("name") == "logged"]

        entries = wait_for(about_the_run, timeout=30, message="a log line about the run")
    finally:
        assert process.stop() in (0, -15), process.log()
    for line in process.log().splitlines():
        entry = json.loads(line)  # every line is one object
        assert {"time", "level", "logger", "message"} <= entry.keys()
    assert all(e["namespace"] == namespace for e in entries)
    assert {e.get("context") for e in entries} == {status["context"]}
