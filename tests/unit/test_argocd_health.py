"""Argo CD health checks of manifests/argocd: each Lua script, run the way Argo CD runs it
(a Lua 5.1 interpreter, as gopher-lua is, with `obj` set to the live object and no io/os),
gives the status and message its health_test.yaml case expects, and the argocd-cm snippet
holds exactly these scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "manifests" / "argocd"
CHECKS = ARGOCD / "resource_customizations" / "slipway.dev"
KINDS = ("SequenceRun", "TaskExecution", "Shipyard")
#: The statuses Argo CD knows (gitops-engine's health.HealthStatusCode).
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
#: Globals Argo CD's Lua VM does not offer to health scripts.
UNSAFE = ("io", "os", "package", "debug", "require", "dofile", "loadfile", "load", "loadstring")


def run_health_check(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The {status, message} the health check of `kind` gives for the live object `obj`."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    env = lua.globals()
    for name in UNSAFE:
        env[name] = None
    env.obj = lua.table_from(obj, recursive=True)
    script = (CHECKS / kind / "health.lua").read_text()
    result = lua.execute(script)
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in KINDS:
        tests = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]
        cases += [(kind, case) for case in tests]
    return cases


@pytest.mark.parametrize(
    ("kind", "case"), _cases(), ids=[f"{k}-{c['inputPath']}" for k, c in _cases()]
)
def test_health_check_gives_the_expected_status_and_message(
    kind: str, case: dict[str, Any]
) -> None:
    """Each health_test.yaml case: the script's status and message are the expected ones."""
    obj = yaml.safe_load((CHECKS / kind / case["inputPath"]).read_text())
    assert obj["kind"] == kind
    health = run_health_check(kind, obj)
    assert health == case["healthStatus"]
    assert health["status"] in STATUSES


@pytest.mark.parametrize("kind", KINDS)
def test_every_test_object_is_a_case(kind: str) -> None:
    """Every file under testdata/ is the input of a case, and every case's input exists."""
    tests = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]
    inputs = {case["inputPath"] for case in tests}
    files = {f"testdata/{p.name}" for p in (CHECKS / kind / "testdata").glob("*.yaml")}
    assert inputs == files


@pytest.mark.parametrize("kind", ["SequenceRun", "TaskExecution"])
@pytest.mark.parametrize(
    ("result", "status"), [("pass", "Healthy"), ("warning", "Healthy"), ("fail", "Degraded")]
)
def test_finished_work_is_judged_by_its_result(kind: str, result: str, status: str) -> None:
    """Finished: pass and warning are Healthy, fail Degraded, the verdict leads the message."""
    obj = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns"},
        "status": {"phase": "Finished", "result": result, "reason": "Failed", "message": "m"},
    }
    health = run_health_check(kind, obj)
    assert health["status"] == status
    assert health["message"].startswith(result)


@pytest.mark.parametrize("kind", ["SequenceRun", "TaskExecution"])
@pytest.mark.parametrize("phase", ["Pending", "Started"])
def test_unfinished_work_is_progressing(kind: str, phase: str) -> None:
    """A run or execution that is not Finished is Progressing, whatever else it says."""
    obj = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns"},
        "status": {"phase": phase, "result": "fail"},
    }
    assert run_health_check(kind, obj)["status"] == "Progressing"


def test_argocd_cm_snippet_holds_exactly_the_checks() -> None:
    """argocd-cm.yaml holds exactly the health.lua scripts, one key per kind."""
    config = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert config["kind"] == "ConfigMap"
    assert config["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    expected = {
        f"resource.customizations.health.slipway.dev_{kind}": (
            CHECKS / kind / "health.lua"
        ).read_text()
        for kind in KINDS
    }
    assert config["data"] == expected
