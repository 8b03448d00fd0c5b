"""The generated CRDs on the real API server: examples accepted, invalid objects rejected with
a message a person can act on, columns and `kubectl explain` as documented."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import kubectl

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("crds")

TASK = {"name": "checknumber"}
SHIPYARD: dict[str, Any] = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "Shipyard",
    "metadata": {"name": "osint"},
    "spec": {
        "stages": [
            {"name": "dev", "sequences": [{"name": "sequence-one", "tasks": [TASK]}]},
            {
                "name": "prod",
                "sequences": [
                    {
                        "name": "sequence-one",
                        "tasks": [TASK],
                        "triggeredOn": [{"event": "dev.sequence-one.finished"}],
                    }
                ],
            },
        ]
    },
}
PROVIDER: dict[str, Any] = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "TaskProvider",
    "metadata": {"name": "phone-checker"},
    "spec": {"task": "checknumber", "cloudEvent": {"url": "http://phone-checker.tools:8080/"}},
}
JOB = {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
RUN: dict[str, Any] = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "SequenceRun",
    "metadata": {"name": "check-0042"},
    "spec": {
        "shipyard": "osint",
        "stage": "dev",
        "sequence": "sequence-one",
        "data": {"number": "+44 20 7946 0958"},
    },
}


@pytest.fixture
def apply(namespace: str, tmp_path: Path) -> Callable[..., Any]:
    """`apply(obj)`: kubectl apply one object in the test's namespace; returns the result."""
    counter = iter(range(1000))

    def run(obj: dict[str, Any], check: bool = False) -> Any:
        path = tmp_path / f"object-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(obj))
        return kubectl("apply", "-n", namespace, "-f", str(path), check=check)

    return run


def edited(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `obj` with the dotted `path` (list indices as numbers) set to `value`."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


def test_examples_are_accepted(namespace: str) -> None:
    """Every manifest in manifests/examples/ is accepted by the API server as written."""
    result = kubectl("apply", "-n", namespace, "-f", str(ROOT / "manifests" / "examples"))
    assert "shipyard.slipway.dev/osint created" in result.stdout
    names = kubectl("get", "slipway", "-n", namespace, "-o", "name").stdout.split()
    assert "sequencerun.slipway.dev/check-0042" in names
    assert "taskprovider.slipway.dev/photo-gate" in names


INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "stage name with a dot",
        edited(SHIPYARD, "spec.stages.0.name", "dev.1"),
        "spec.stages[0].name: Invalid value: \"string\": 'dev.1' is not a valid name: use "
        "lower-case letters, digits and '-', start and end with a letter or digit, and no dots",
    ),
    (
        "task name with a dot",
        edited(SHIPYARD, "spec.stages.0.sequences.0.tasks", [{"name": "check.number"}]),
        'spec.stages[0].sequences[0].tasks[0].name: Invalid value: "string": '
        "'check.number' is not a valid name",
    ),
    (
        "duplicate stage names",
        edited(SHIPYARD, "spec.stages.1.name", "dev"),
        'spec.stages[1]: Duplicate value: map[string]interface {}{"name":"dev"}',
    ),
    (
        "duplicate sequence names in a stage",
        edited(
            SHIPYARD,
            "spec.stages.0.sequences",
            [{"name": "a", "tasks": [TASK]}, {"name": "a", "tasks": [TASK]}],
        ),
        'spec.stages[0].sequences[1]: Duplicate value: map[string]interface {}{"name":"a"}',
    ),
    (
        "duplicate task names in a sequence",
        edited(SHIPYARD, "spec.stages.0.sequences.0.tasks", [TASK, TASK]),
        "spec.stages[0].sequences[0].tasks[1]: Duplicate value",
    ),
    (
        "a sequence without tasks",
        edited(SHIPYARD, "spec.stages.0.sequences.0.tasks", []),
        "spec.stages[0].sequences[0].tasks: Invalid value: 0: "
        "spec.stages[0].sequences[0].tasks in body should have at least 1 items",
    ),
    (
        "bad duration",
        edited(SHIPYARD, "spec.stages.0.sequences.0.tasks", [{**TASK, "timeout": "10 minutes"}]),
        'spec.stages[0].sequences[0].tasks[0].timeout: Invalid value: "string": '
        "'10 minutes' is not a duration: write a number and a unit (ns, us, ms, s, m, h), "
        "e.g. 30s, 10m or 1h30m",
    ),
    (
        "duration in days",
        edited(SHIPYARD, "spec.stages.0.sequences.0.tasks", [{**TASK, "startTimeout": "1d"}]),
        'spec.stages[0].sequences[0].tasks[0].startTimeout: Invalid value: "string": '
        "'1d' is not a duration",
    ),
    (
        "triggeredOn a .started event",
        edited(
            SHIPYARD,
            "spec.stages.1.sequences.0.triggeredOn",
            [{"event": "dev.sequence-one.started"}],
        ),
        "'dev.sequence-one.started' is not a sequence's finished event: "
        "write <stage>.<sequence>.finished",
    ),
    (
        "selector value not a result",
        edited(
            SHIPYARD,
            "spec.stages.1.sequences.0.triggeredOn",
            [{"event": "dev.sequence-one.finished", "selector": {"match": {"result": "passed"}}}],
        ),
        'Unsupported value: "passed": supported values: "pass", "warning", "fail"',
    ),
    (
        "selector key not a result",
        edited(
            SHIPYARD,
            "spec.stages.1.sequences.0.triggeredOn",
            [{"event": "dev.sequence-one.finished", "selector": {"match": {"status": "pass"}}}],
        ),
        "selector.match keys are `result` (the sequence's result) or `<task>.result`",
    ),
    (
        "provider without a kind",
        edited(PROVIDER, "spec", {"task": "checknumber"}),
        "set one of spec.cloudEvent (a remote tool), spec.job (a container), "
        "spec.evaluation (the built-in quality gate) or spec.approval (a human gate)",
    ),
    (
        "provider with two kinds",
        edited(PROVIDER, "spec.job", JOB),
        "set only one of spec.cloudEvent, spec.job, spec.evaluation and spec.approval",
    ),
    (
        "concurrency key with an expression",
        edited(
            SHIPYARD,
            "spec.stages.0.sequences.0.concurrency",
            {"limit": 1, "key": "{{ data.number | upper }}"},
        ),
        "is not a key template: write text with {{ placeholders }}",
    ),
    (
        "approval requiring nobody",
        edited(PROVIDER, "spec", {"task": "gate", "approval": {"required": 0}}),
        "spec.approval.required: Invalid value: 0",
    ),
    (
        "provider with a bad timeout",
        edited(PROVIDER, "spec.cloudEvent.timeout", "ten seconds"),
        "spec.cloudEvent.timeout: Invalid value: \"string\": 'ten seconds' is not a duration",
    ),
    (
        "provider URL that is not http(s)",
        edited(PROVIDER, "spec.cloudEvent.url", "phone-checker:8080"),
        "spec.cloudEvent.url: Invalid value: \"string\": 'phone-checker:8080' is not an "
        "http(s) URL",
    ),
    (
        "provider URL with a blank",
        edited(PROVIDER, "spec.cloudEvent.url", "http://phone checker/"),
        "'http://phone checker/' is not an http(s) URL",
    ),
    (
        "provider for a task name with a dot",
        edited(PROVIDER, "spec.task", "check.number"),
        "spec.task: Invalid value: \"string\": 'check.number' is not a valid name",
    ),
    (
        "evaluation with a malformed SLO criterion",
        edited(
            PROVIDER,
            "spec",
            {
                "task": "evaluate",
                "evaluation": {
                    "sources": {},
                    "slo": {
                        "objectives": [{"sli": "x", "pass": [{"criteria": ["less than 5"]}]}],
                        "total_score": {"pass": "90%"},
                    },
                },
            },
        ),
        "spec.evaluation.slo.objectives[0].pass[0].criteria[0] in body should match",
    ),
    (
        "run with a sequence name with a dot",
        edited(RUN, "spec.sequence", "sequence.one"),
        "spec.sequence: Invalid value: \"string\": 'sequence.one' is not a valid name",
    ),
    (
        "run name longer than a label value",
        edited(RUN, "metadata.name", "r" * 64),
        'metadata.name: Invalid value: "object": a SequenceRun name must be at most 63 '
        "characters (its TaskExecutions are labelled with it)",
    ),
]


@pytest.mark.parametrize(("obj", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_object_is_rejected(apply: Any, obj: dict[str, Any], message: str) -> None:
    """The API server refuses the object, and its answer says what is wrong and where."""
    result = apply(obj)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert message in result.stderr


def test_sequence_run_spec_cannot_change(apply: Any, namespace: str) -> None:
    """shipyard, stage, sequence and data of a SequenceRun are fixed once it exists."""
    apply(RUN, check=True)
    for field, value, message in [
        ("shipyard", "other", "spec.shipyard cannot change once a SequenceRun exists"),
        ("stage", "prod", "spec.stage cannot change once a SequenceRun exists"),
        ("sequence", "sequence-two", "spec.sequence cannot change once a SequenceRun exists"),
        ("data", {"number": "+1 555 0100"}, "spec.data cannot change once a SequenceRun exists"),
    ]:
        result = apply(edited(RUN, f"spec.{field}", value))
        assert result.returncode != 0, f"spec.{field} changed"
        assert message in result.stderr


def test_sequence_run_data_cannot_be_removed(namespace: str, apply: Any) -> None:
    """Removing spec.data is a change of the data too."""
    apply(RUN, check=True)
    patch = json.dumps([{"op": "remove", "path": "/spec/data"}])
    result = kubectl(
        "patch",
        "sequencerun",
        "check-0042",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        patch,
        check=False,
    )
    assert result.returncode != 0
    assert "spec.data cannot change" in result.stderr


def test_abort_goes_from_false_to_true_only(apply: Any, namespace: str) -> None:
    """abort may be set to true, and then never back to false."""
    apply(RUN, check=True)
    apply(edited(RUN, "spec.abort", True), check=True)
    abort = kubectl(
        "get", "sequencerun", "check-0042", "-n", namespace, "-o", "jsonpath={.spec.abort}"
    )
    assert abort.stdout == "true"
    result = apply(edited(RUN, "spec.abort", False))
    assert result.returncode != 0
    assert "spec.abort cannot go back from true to false" in result.stderr
    result = kubectl(
        "patch",
        "sequencerun",
        "check-0042",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        json.dumps([{"op": "remove", "path": "/spec/abort"}]),
        check=False,
    )
    assert result.returncode != 0
    assert "spec.abort cannot go back from true to false" in result.stderr


def test_suspend_may_go_both_ways(apply: Any, namespace: str) -> None:
    """suspend is allowed to change after creation, to true and back to false."""
    apply(RUN, check=True)
    for value in (True, False, True):
        apply(edited(RUN, "spec.suspend", value), check=True)
        got = kubectl(
            "get", "sequencerun", "check-0042", "-n", namespace, "-o", "jsonpath={.spec.suspend}"
        )
        assert got.stdout == str(value).lower()


def test_status_is_not_written_through_the_main_resource(apply: Any, namespace: str) -> None:
    """status is a subresource: a patch of the object itself leaves it unchanged."""
    apply(RUN, check=True)
    kubectl(
        "patch",
        "sequencerun",
        "check-0042",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps({"status": {"phase": "Finished", "result": "pass"}}),
    )
    status = kubectl(
        "get", "sequencerun", "check-0042", "-n", namespace, "-o", "jsonpath={.status}"
    )
    assert status.stdout == ""


EXECUTION: dict[str, Any] = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "TaskExecution",
    "metadata": {"name": "check-0042-0-checknumber"},
    "spec": {
        "run": "check-0042",
        "index": 0,
        "shipyard": "osint",
        "stage": "dev",
        "sequence": "sequence-one",
        "task": TASK,
        "context": "6f1c0b52-4a8e-4a3c-9d7e-0f6c2b1a9e11",
    },
}


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        (
            "sequenceruns",
            ["NAME", "SHIPYARD", "STAGE", "SEQUENCE", "PHASE", "RESULT", "TASK", "SCORE", "AGE"],
        ),
        ("taskexecutions", ["NAME", "RUN", "TASK", "PHASE", "RESULT", "AGE"]),
        ("shipyards", ["NAME", "READY", "MESSAGE", "AGE"]),
        ("taskproviders", ["NAME", "TASK", "KIND", "AGE"]),
    ],
)
def test_kubectl_get_shows_the_columns(
    apply: Any, namespace: str, kind: str, header: list[str]
) -> None:
    """`kubectl get <kind>` prints the documented columns, filled from the spec."""
    kubectl("apply", "-n", namespace, "-f", str(ROOT / "manifests" / "examples"))
    apply(EXECUTION, check=True)
    lines = kubectl("get", kind, "-n", namespace).stdout.splitlines()
    assert lines[0].split() == header
    assert len(lines) > 1
    if kind == "sequenceruns":
        row = next(line for line in lines if line.startswith("check-0042"))
        assert row.split()[:4] == ["check-0042", "osint", "dev", "sequence-one"]
    if kind == "taskexecutions":
        assert lines[1].split()[:3] == ["check-0042-0-checknumber", "check-0042", "checknumber"]


def test_wide_columns_show_status_fields(apply: Any, namespace: str, api_client: Any) -> None:
    """Columns read the status the operator writes: PHASE, RESULT, TASK, SCORE, REASON."""
    from kubernetes import client

    apply(RUN, check=True)
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        "slipway.dev",
        "v1alpha1",
        namespace,
        "sequenceruns",
        "check-0042",
        {
            "status": {
                "phase": "Finished",
                "result": "warning",
                "reason": "Completed",
                "currentTask": "checknumber",
                "score": 87.5,
            }
        },
    )
    lines = kubectl("get", "sequenceruns", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert lines[0].split()[:11] == [
        "NAME",
        "SHIPYARD",
        "STAGE",
        "SEQUENCE",
        "PHASE",
        "RESULT",
        "TASK",
        "SCORE",
        "REASON",
        "MESSAGE",
        "AGE",
    ]
    assert lines[1].split()[4:9] == ["Finished", "warning", "checknumber", "87.5", "Completed"]


def test_category_lists_every_kind(namespace: str) -> None:
    """`kubectl get slipway` lists objects of every kind in the category."""
    kubectl("apply", "-n", namespace, "-f", str(ROOT / "manifests" / "examples"))
    kinds = {
        line.split("/")[0]
        for line in kubectl("get", "slipway", "-n", namespace, "-o", "name").stdout.split()
    }
    assert kinds >= {"shipyard.slipway.dev", "taskprovider.slipway.dev", "sequencerun.slipway.dev"}


def test_kubectl_explain_prints_the_descriptions() -> None:
    """`kubectl explain sequencerun.spec` teaches the API: every field with its description."""
    out = " ".join(kubectl("explain", "sequencerun.spec").stdout.split())
    assert "Which sequence to run, where, with what data" in out
    for field in ("shipyard", "stage", "sequence", "data", "abort"):
        assert f"{field} <" in out, field
    assert "Set to true to stop the run" in out
    assert "The Shipyard (in this namespace) that defines the sequence." in out
    deep = kubectl("explain", "shipyard.spec.stages.sequences.tasks.retries.limit").stdout
    assert "How many more attempts follow a failed one" in " ".join(deep.split())
