"""The built-in quality gate end to end: the real operator on the local control plane, SLI
values from a real Prometheus (scraping an exporter this test runs) and from the run's data,
verdicts in the TaskExecution's output and the run's status, history and invalidation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.objects import Cluster
from tests.conftest import OperatorProcess
from tests.prometheus import Exporter, PrometheusServer
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

#: Per stage: (error rate, latency) the exporter reports; the stage name is the scenario.
SCENARIOS = {"good": (0.5, 0.2), "slow": (3.0, 0.2), "broken": (9.0, 0.9)}


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    """Gauges per scenario, served on loopback."""
    running = Exporter().start()
    for scenario, (error_rate, latency) in SCENARIOS.items():
        running.set("slipway_test_error_rate", error_rate, scenario=scenario)
        running.set("slipway_test_latency_seconds", latency, scenario=scenario, quantile="0.95")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the exporter, once it has every series; yields its URL."""
    server = PrometheusServer([exporter.address], tmp_path_factory.mktemp("prometheus"))
    server.start()
    try:
        server.wait_for_value('count(slipway_test_error_rate{job="slipway-exporter"})', 3)
        yield server.url
    finally:
        server.stop()


def _events(api_client: client.ApiClient, namespace: str, name: str) -> list[str]:
    """`reason: message` of the Events about object `name`."""
    found = client.CoreV1Api(api_client).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return [f"{e.reason}: {e.message}" for e in found.items]


SLO = {
    "spec_version": "1.0",
    "filter": {"job": "slipway-exporter"},
    "objectives": [
        {
            "sli": "error_rate",
            "pass": [{"criteria": ["<=1"]}],
            "warning": [{"criteria": ["<=5"]}],
            "weight": 2,
        },
        {
            "sli": "latency_p95",
            "pass": [{"criteria": ["<0.5"]}],
            "warning": [{"criteria": ["<0.8"]}],
        },
        {"sli": "window_seconds"},
    ],
    "total_score": {"pass": "90%", "warning": "60%"},
}

QUERIES = {
    # `$STAGE` is the run's stage (the scenario), `$JOB` the SLO filter's `job`.
    "error_rate": 'max(last_over_time(slipway_test_error_rate{job="$JOB",scenario="$STAGE"}'
    "[$DURATION]))",
    "latency_p95": 'max(last_over_time(slipway_test_latency_seconds{job="$job",'
    'scenario="$STAGE",quantile="0.95"}[$DURATION_SECONDS]))',
    # Prometheus itself computes the window's length from the placeholders.
    "window_seconds": "vector($END - $START)",
}


def _stage(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "sequences": [
            {
                "name": "gate",
                "tasks": [{"name": "evaluate", "properties": {"timeframe": "30s"}}],
            }
        ],
    }


@pytest.mark.timeout(1800)  # the first use builds Prometheus from its pinned module (~7 min)
def test_prometheus_evaluation_passes_warns_and_fails(
    k8s: Cluster, api_client: client.ApiClient, prometheus: str, operator: OperatorProcess
) -> None:
    """One evaluation provider judges three stages whose metrics differ: pass, warning and
    fail, each with its score in the run's status and the report in the execution's output
    and the run's data, and a one-line Event stating the verdict."""
    k8s.shipyard("quality", [_stage(s) for s in SCENARIOS])
    k8s.create(
        "taskproviders",
        "TaskProvider",
        "gate",
        {
            "task": "evaluate",
            "evaluation": {
                "sources": {"prometheus": {"url": prometheus, "queries": QUERIES}},
                "slo": SLO,
            },
        },
    )
    for scenario in SCENARIOS:
        k8s.run(f"gate-{scenario}", "quality", scenario, "gate")
    expected = {
        "good": (
            "pass",
            100.0,
            "score 100 (pass): error_rate 0.5 pass (<=1), latency_p95 0.2 pass (<0.5), "
            "window_seconds 30 info",
        ),
        "slow": (
            "warning",
            100 * 2 / 3,
            "score 66.67 (warning): error_rate 3 warning (<=5), latency_p95 0.2 pass (<0.5), "
            "window_seconds 30 info",
        ),
        "broken": (
            "fail",
            0.0,
            "score 0 (fail): error_rate 9 fail (<=1), latency_p95 0.9 fail (<0.5), "
            "window_seconds 30 info",
        ),
    }
    for scenario, (result, score, verdict) in expected.items():
        run = f"gate-{scenario}"
        status = k8s.finished(run, timeout=90)
        assert status["result"] == result, status
        execution = k8s.get("taskexecutions", f"{run}-0-evaluate")["status"]
        report = execution["output"]["evaluation"]
        assert report["result"] == result
        assert report["score"] == pytest.approx(score)
        objectives = {o["sli"]: o for o in report["objectives"]}
        error_rate, latency = SCENARIOS[scenario]
        assert objectives["error_rate"]["value"] == error_rate
        assert objectives["latency_p95"]["value"] == latency
        assert objectives["window_seconds"]["value"] == pytest.approx(30, abs=1e-3)
        assert objectives["window_seconds"]["status"] == "info"
        assert report["window"]["origin"] == "task"
        [provider] = execution["providers"]
        assert provider["result"] == result
        assert provider["message"] == verdict
        assert status["data"]["evaluation"]["score"] == report["score"]
        assert status["score"] == pytest.approx(score, abs=0.005)  # rounded to 2 decimals
        for involved in (f"{run}-0-evaluate", run):
            verdicts = [
                e for e in _events(api_client, k8s.ns, involved) if e.startswith("Evaluated: ")
            ]
            assert verdicts == [f"Evaluated: {verdict}"], involved


def test_an_unreachable_prometheus_fails_its_objectives_not_the_operator(
    k8s: Cluster, operator: OperatorProcess
) -> None:
    """A Prometheus that is not there fails the objectives it feeds, with the error in their
    messages; the data source's objective is still judged and the run finishes."""
    from tests.prometheus import free_port

    k8s.shipyard("quality", [_stage("good")])
    k8s.create(
        "taskproviders",
        "TaskProvider",
        "gate",
        {
            "task": "evaluate",
            "evaluation": {
                "sources": {
                    "prometheus": {
                        "url": f"http://127.0.0.1:{free_port()}",
                        "queries": {"error_rate": "up"},
                    },
                    "data": {"exif_present": "$.extract-metadata.exif_present"},
                },
                "slo": {
                    "objectives": [
                        {"sli": "error_rate", "pass": [{"criteria": ["<=1"]}]},
                        {"sli": "exif_present", "pass": [{"criteria": ["=1"]}]},
                    ],
                    "total_score": {"pass": "50%"},
                },
            },
        },
    )
    k8s.run("gate-down", "quality", "good", "gate", {"extract-metadata": {"exif_present": True}})
    status = k8s.finished("gate-down", timeout=90)
    assert status["result"] == "pass"
    report = status["data"]["evaluation"]
    objectives = {o["sli"]: o for o in report["objectives"]}
    assert objectives["error_rate"]["status"] == "fail"
    assert "prometheus: cannot connect" in objectives["error_rate"]["message"]
    assert objectives["exif_present"]["status"] == "pass"
    assert report["score"] == 50


def test_history_compares_with_earlier_runs_and_skips_invalidated_ones(
    k8s: Cluster, operator: OperatorProcess, kubeconfig: Path
) -> None:
    """Relative criteria compare with the newest earlier evaluation of the same
    shipyard/stage/sequence/task; after `slipway invalidate`, that one is never used again."""
    k8s.shipyard("quality", [_stage("good")])
    k8s.create(
        "taskproviders",
        "TaskProvider",
        "gate",
        {
            "task": "evaluate",
            "evaluation": {
                "sources": {"data": {"latency": "$.measured.latency"}},
                "slo": {
                    "comparison": {"compare_with": "single_result"},
                    "objectives": [{"sli": "latency", "pass": [{"criteria": ["<=+10%"]}]}],
                    "total_score": {"pass": "90%"},
                },
            },
        },
    )

    def evaluate(run: str, latency: float) -> dict[str, Any]:
        k8s.run(run, "quality", "good", "gate", {"measured": {"latency": latency}})
        report: dict[str, Any] = k8s.finished(run, timeout=90)["data"]["evaluation"]
        return report

    first = evaluate("hist-1", 100)
    assert (first["result"], first["comparison"]["compared"]) == ("pass", [])
    second = evaluate("hist-2", 50)  # suspiciously good: 50 <= 110
    assert (second["result"], second["comparison"]["compared"]) == ("pass", ["hist-1-0-evaluate"])
    assert second["objectives"][0]["comparedValue"] == 100

    def slipway(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "slipway", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    missing = slipway("invalidate", "no-such-execution", "-n", k8s.ns)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"slipway invalidate: taskexecution {k8s.ns}/no-such-execution: not found",
    )
    invalidate = slipway("invalidate", "hist-2-0-evaluate", "-n", k8s.ns)
    assert invalidate.returncode == 0, invalidate.stderr
    assert invalidate.stdout.strip() == (
        f"taskexecution {k8s.ns}/hist-2-0-evaluate invalidated: later evaluations of "
        "quality/good/gate/evaluate will not compare with it"
    )
    annotations = k8s.get("taskexecutions", "hist-2-0-evaluate")["metadata"]["annotations"]
    assert annotations["slipway.dev/invalidated"] == "true"

    third = evaluate("hist-3", 105)  # compared with hist-2 (50) it would fail; with hist-1, pass
    assert third["comparison"]["compared"] == ["hist-1-0-evaluate"]
    assert third["objectives"][0]["comparedValue"] == 100
    assert third["result"] == "pass"

    undo = slipway("invalidate", "hist-2-0-evaluate", "-n", k8s.ns, "--undo")
    assert undo.returncode == 0, undo.stderr
    meta = k8s.get("taskexecutions", "hist-2-0-evaluate")["metadata"]
    assert "slipway.dev/invalidated" not in (meta.get("annotations") or {})
    fourth = evaluate("hist-4", 100)  # the newest of three earlier ones: hist-3 (105)
    assert fourth["comparison"]["compared"] == ["hist-3-0-evaluate"]


EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def _example(file: str, name: str) -> dict[str, Any]:
    """One object of a file in manifests/examples/, by name."""
    documents = yaml.safe_load_all((EXAMPLES / file).read_text())
    return next(d for d in documents if d and d["metadata"]["name"] == name)


@pytest.fixture
def photo_tools() -> Iterator[dict[str, Tool]]:
    """The three photo tools of the seed's sequence-two, each a real HTTP tool on loopback
    whose `.finished` carries the measurements the gate judges."""
    outputs = {
        "extract-metadata": {"extract-metadata": {"exif_present": True, "camera": "X100V"}},
        "geolookup": {"geolookup": {"distance_km": 42}},
        "author-search": {"author-search": {"matches": 2}},
    }
    tools = {task: Tool(tool_output=output).start() for task, output in outputs.items()}
    yield tools
    for tool in tools.values():
        tool.stop()


def test_example_photo_gate_judges_the_photo_authenticity_sequence(
    k8s: Cluster, photo_tools: dict[str, Tool], operator: OperatorProcess
) -> None:
    """The example Shipyard and the example `photo-gate` provider (manifests/examples/) judge
    the values the three tools of sequence-two produced: the run's status has the verdict."""
    shipyard = _example("shipyard-osint.yaml", "osint")
    k8s.create("shipyards", "Shipyard", "osint", shipyard["spec"])
    for task, tool in photo_tools.items():
        k8s.create(
            "taskproviders", "TaskProvider", task, {"task": task, "cloudEvent": {"url": tool.url}}
        )
    gate = _example("taskproviders.yaml", "photo-gate")
    k8s.create("taskproviders", "TaskProvider", "photo-gate", gate["spec"])
    run = _example("sequenceruns.yaml", "photo-0001")
    k8s.create("sequenceruns", "SequenceRun", "photo-0001", run["spec"])

    status = k8s.finished("photo-0001", timeout=120)
    assert [t["name"] for t in status["tasks"]] == [
        "extract-metadata",
        "geolookup",
        "author-search",
        "evaluate",
    ]
    # exif 1 pass (1 point), distance 42 warning (half of 2), matches 2 pass (1): 3 of 4.
    assert status["result"] == "warning"
    evaluate = status["tasks"][-1]
    assert evaluate["result"] == "warning"
    verdict = (
        "score 75 (warning): exif_present 1 pass (=1), location_distance_km 42 warning (<=100), "
        "author_matches 2 pass (>=1)"
    )
    assert verdict in evaluate["message"]
    execution = k8s.get("taskexecutions", "photo-0001-3-evaluate")["status"]
    assert execution["providers"][0]["message"] == verdict
    report = status["data"]["evaluation"]
    assert (report["result"], report["score"]) == ("warning", 75)
    assert [o["value"] for o in report["objectives"]] == [1, 42, 2]
    assert status["score"] == 75
