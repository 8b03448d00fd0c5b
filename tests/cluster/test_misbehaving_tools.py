"""Tools that misbehave end their task `fail`, with a message that names the problem, within
the task's timeouts, and disturb no other run: every broken tool of `tests/bad_tools.py`
runs at once beside a healthy one, under one operator, on the real control plane."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bad_tools import BadTool
from tests.cluster.objects import Cluster, stage
from tests.conftest import OperatorProcess
from tests.helpers import wait_for

pytestmark = pytest.mark.usefixtures("crds")

#: behaviour -> (the run's reason, words its message must contain)
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "hang": ("Failed", ("did not answer completely within 2 s",)),
    "drip": ("Failed", ("did not answer completely within 2 s",)),
    "err500": ("Failed", ("answered HTTP 500", "5 tries")),
    "throttle": ("Failed", ("HTTP 429", "retry after 1e+09 s")),
    "redirect": ("Failed", ("redirect to 'http://tool.elsewhere.invalid/'",)),
    "notevent": ("Failed", ("cannot use", "not valid JSON")),
    "othertask": ("Failed", ("cannot use", "'another'")),
    "huge": ("Failed", ("more than 1048576 bytes",)),
    "bigoutput": ("DataTooLarge", ("SLIPWAY_MAX_TASK_OUTPUT_BYTES",)),
    "unknownresult": ("Failed", ("'maybe' is not one of",)),
    "closemid": ("Failed", ("could not reach", "Payload")),
    "twice": ("Failed", ("first",)),
    "wrongtoken": ("TimedOut", ("no .started or .finished within 20s",)),
}


@pytest.fixture
def operator(kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator, with a generous API timeout: on a loaded machine a callback must not be
    answered 503 (which the tool would retry) when this test counts the answers."""
    process = OperatorProcess(
        namespace, tmp_path / "operator.log", {"SLIPWAY_GATEWAY_API_TIMEOUT": "60"}
    )
    process.start()
    yield process
    code = process.stop()
    log = process.log()
    assert "Traceback" not in log, f"operator logged a traceback:\n{log}"
    assert code in (0, -signal.SIGTERM), f"operator exited with {code}:\n{log}"


@pytest.fixture
def bad_tool() -> Iterator[BadTool]:
    running = BadTool().start()
    yield running
    running.stop()


def task(name: str) -> dict[str, Any]:
    return {"name": name, "startTimeout": "20s", "timeout": "90s"}


def test_every_misbehaving_tool_fails_its_task_and_no_other(
    k8s: Cluster, bad_tool: BadTool, operator: OperatorProcess
) -> None:
    """Each broken tool's run finishes fail with a message naming the problem; the healthy
    run beside them passes; the operator logs no traceback (checked by the fixture)."""
    behaviours = [*EXPECTED, "good"]
    sequences = [{"name": b, "tasks": [task(b)]} for b in behaviours]
    k8s.shipyard("tools", [stage("dev", *sequences)])
    for behaviour in behaviours:
        k8s.create(
            "taskproviders",
            "TaskProvider",
            behaviour,
            {
                "task": behaviour,
                "cloudEvent": {"url": f"{bad_tool.url}/{behaviour}", "timeout": "2s"},
            },
        )
    for behaviour in behaviours:
        k8s.run(f"run-{behaviour}", "tools", "dev", behaviour, {"n": 1})

    statuses = {b: k8s.finished(f"run-{b}", timeout=180) for b in behaviours}

    assert statuses["good"]["result"] == "pass", statuses["good"]
    problems = []
    for behaviour, (reason, words) in EXPECTED.items():
        status = statuses[behaviour]
        message = status.get("message") or ""
        if status["result"] != "fail" or status["reason"] != reason:
            problems.append(f"{behaviour}: {status['result']}/{status['reason']}: {message}")
        missing = [w for w in words if w not in message]
        if missing:
            problems.append(f"{behaviour}: {missing} not in {message!r}")
    assert not problems, "\n".join(problems)
    assert wait_for(lambda: len(bad_tool.callbacks.get("twice", [])) == 2)
    assert bad_tool.callbacks["twice"] == [202, 409]
    assert wait_for(lambda: bad_tool.callbacks.get("wrongtoken")) == [403]
