"""The seed's sequence-one with the real checknumber tools on the local control plane: the
Python tool as an HTTP service, then the same TaskProvider pointed at the JavaScript tool
(same verdicts, the caller's Shipyard and runs unchanged), and each tool as a Job provider
run with the Job's own environment."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.objects import Cluster, G, JobView, V
from tests.conftest import OperatorProcess
from tests.phone_tools import JS_DIR, JS_TOOL, PYTHON_TOOL, ToolProcess, js_tool, node, run_job
from tests.phone_tools import python_tool as start_python_tool

pytestmark = pytest.mark.usefixtures("crds")

#: What the caller sends: (run name, data.number, expected result). The numbers without +
#: rely on the task property country: GB.
CALLS = [
    ("mobile", "07400 123456", "pass"),
    ("london", "+44 20 7946 0958", "pass"),
    ("unassigned", "+44 7700 900123", "warning"),
    ("garbage", "call me", "fail"),
]
#: Output both tools fill alike.
SHARED = ("valid", "possible", "type", "country", "e164", "calling_code")


def osint(k8s: Cluster) -> None:
    """The seed's Shipyard: dev/sequence-one = [checknumber with country GB]."""
    task = {"name": "checknumber", "properties": {"country": "GB"}, "timeout": "5m"}
    k8s.shipyard(
        "osint", [{"name": "dev", "sequences": [{"name": "sequence-one", "tasks": [task]}]}]
    )


def call(k8s: Cluster, prefix: str) -> dict[str, dict[str, Any]]:
    """Start one run per entry of CALLS, exactly as a caller would, and wait for them all."""
    for name, number, _ in CALLS:
        k8s.run(f"{prefix}-{name}", "osint", "dev", "sequence-one", {"number": number})
    return {name: k8s.finished(f"{prefix}-{name}") for name, _, _ in CALLS}


@pytest.fixture
def python_service(tmp_path: Path) -> Iterator[ToolProcess]:
    """tasks/checknumber serving HTTP on loopback."""
    running = start_python_tool(tmp_path / "python-tool.log")
    yield running
    running.stop()


@pytest.fixture
def js_service(tmp_path: Path) -> Iterator[ToolProcess]:
    """tasks/checknumber-js serving HTTP on loopback (skipped, saying why, without node)."""
    running = js_tool(tmp_path / "js-tool.log")
    yield running
    running.stop()


def test_swapping_python_for_javascript_changes_nothing_for_the_caller(
    k8s: Cluster,
    operator: OperatorProcess,
    python_service: ToolProcess,
    js_service: ToolProcess,
) -> None:
    """sequence-one runs with the Python tool behind TaskProvider phone-checker; editing only
    that provider's URL to the JavaScript tool, the same calls give the same verdicts and
    shared output, while the Shipyard is untouched."""
    osint(k8s)
    k8s.provider("phone-checker", "checknumber", python_service.url)
    shipyard_before = k8s.get("shipyards", "osint")["metadata"]["generation"]
    by_python = call(k8s, "py")
    for name, _, result in CALLS:
        assert by_python[name]["result"] == result, by_python[name]
        assert by_python[name]["data"]["checknumber"]["tool"].startswith("phonenumbers")
    assert by_python["mobile"]["data"]["checknumber"]["carrier"] == "Three"
    assert by_python["mobile"]["data"]["checknumber"]["e164"] == "+447400123456"

    k8s.custom.patch_namespaced_custom_object(
        G,
        V,
        k8s.ns,
        "taskproviders",
        "phone-checker",
        {"spec": {"cloudEvent": {"url": js_service.url}}},
    )
    by_js = call(k8s, "js")
    for name, _, result in CALLS:
        python, js = by_python[name], by_js[name]
        assert js["result"] == result, js
        assert js["reason"] == python["reason"]
        assert js["data"]["number"] == python["data"]["number"]
        ours = js["data"]["checknumber"]
        assert ours["tool"].startswith("libphonenumber-js")
        theirs = python["data"]["checknumber"]
        assert {k: ours.get(k) for k in SHARED} == {k: theirs.get(k) for k in SHARED}
    assert "carrier" in by_js["mobile"]["data"]["checknumber"]["not_available"]
    assert k8s.get("shipyards", "osint")["metadata"]["generation"] == shipyard_before
    assert "py-mobile" not in js_service.output()
    assert "js-mobile" not in python_service.output()


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_tool_as_a_job_provider(
    k8s: Cluster,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    tmp_path: Path,
    language: str,
) -> None:
    """As a Job provider: the Job gets SLIPWAY_EVENT (the run's number and the task's
    country), the callback URL and token; the tool's own entry point, run with that
    environment, writes a termination message that, reported as a kubelet would, makes the
    run pass with the tool's output in its data."""
    command = [sys.executable, str(PYTHON_TOOL)] if language == "python" else [node(), str(JS_TOOL)]
    osint(k8s)
    template = {
        # kwok keeps the "container" running: the test ends it with the tool's real verdict.
        "metadata": {"annotations": {"slipway.dev/kwok-run-duration": "1h"}},
        "spec": {
            "containers": [{"name": "main", "image": f"example.test/checknumber-{language}:1"}]
        },
    }
    k8s.create(
        "taskproviders",
        "TaskProvider",
        "phone-job",
        {"task": "checknumber", "job": {"template": template}},
    )
    k8s.run("check-1", "osint", "dev", "sequence-one", {"number": "07400 123456"})
    jobs = JobView(api_client, k8s.ns)
    pod = jobs.running_pod()
    env = {e.name: e for e in jobs.the_job().spec.template.spec.containers[0].env}
    assert {"SLIPWAY_EVENT", "SLIPWAY_CALLBACK_URL", "SLIPWAY_CALLBACK_TOKEN"} <= set(env)
    event = json.loads(env["SLIPWAY_EVENT"].value)
    assert event["type"] == "checknumber.triggered"
    assert event["data"]["number"] == "07400 123456"
    assert event["data"]["checknumber"] == {"country": "GB"}
    assert env["SLIPWAY_CALLBACK_TOKEN"].value_from.secret_key_ref.key == "token"
    plain = {name: var.value for name, var in env.items() if var.value}
    code, written, output = run_job(
        command, plain, tmp_path / "termination-log", cwd=None if language == "python" else JS_DIR
    )
    assert code == 0, output
    jobs.terminate_like_a_kubelet(pod, json.dumps(written))
    status = k8s.finished("check-1")
    assert (status["result"], status["reason"]) == ("pass", "Completed"), status
    assert status["data"]["checknumber"]["e164"] == "+447400123456"
    assert status["data"]["checknumber"]["type"] == "mobile"
    assert status["message"], status
