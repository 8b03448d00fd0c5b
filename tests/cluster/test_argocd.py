"""GitOps for real: Argo CD (built from tools/argocd/, started by `slipway dev argocd up`) syncs
Shipyards, TaskProviders and SequenceRuns from a git repository in a temp folder into the
local control plane, where the real operator runs them against a real HTTP tool. What Argo CD
concludes is read from the Application's status, as a user would (docs/argocd.md)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from slipway.devcluster.argocd import MANIFESTS, ArgoCDConfig, LocalArgoCD
from slipway.devcluster.cluster import ClusterConfig
from slipway.settings import Settings
from tests.cluster.argocd import Application, GitRepo, finish, run_file
from tests.cluster.objects import Cluster
from tests.conftest import OperatorProcess
from tests.helpers import kubectl, wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds", "argocd")

CHECKS = MANIFESTS / "resource_customizations" / "slipway.dev"


@pytest.fixture(scope="module")
def argocd(kubeconfig: Path) -> Iterator[LocalArgoCD]:
    """Argo CD beside the local control plane: reused when running, else started now and
    stopped (with all its objects) after this module."""
    settings = Settings.from_env()
    argo = LocalArgoCD(
        ArgoCDConfig(ClusterConfig(cache_dir=settings.cache_dir, port=settings.cluster_port))
    )
    started = argo.up()
    yield argo
    if started:
        assert set(argo.down()) == {
            "redis-server",
            "argocd-repo-server",
            "argocd-application-controller",
        }
        assert not any(argo.pids().values())
        for what in ("crd/applications.argoproj.io", "crd/appprojects.argoproj.io", "ns/argocd"):
            assert kubectl("get", what, check=False).returncode != 0, f"{what} left behind"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def app(
    api_client: client.ApiClient, repo: GitRepo, namespace: str, argocd: LocalArgoCD
) -> Iterator[Application]:
    application = Application(api_client, repo, namespace)
    yield application
    try:
        application.delete()
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def protect_runs() -> Iterator[None]:
    """manifests/argocd/protect-runs.yaml applied as docs/argocd.md says, removed after."""
    path = str(MANIFESTS / "protect-runs.yaml")
    kubectl("apply", "-f", path)
    yield
    kubectl("delete", "--ignore-not-found", "-f", path)


def folder(tool: Tool, *runs: dict[str, Any]) -> dict[str, Any]:
    """A team's folder: the Shipyard, two TaskProviders (one per task) and `runs`."""
    shipyard = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "Shipyard",
        "metadata": {"name": "osint"},
        "spec": {
            "stages": [
                {
                    "name": "dev",
                    "sequences": [
                        {"name": "check", "tasks": [{"name": "checknumber"}]},
                        {
                            "name": "two-step",
                            "tasks": [{"name": "lookup"}, {"name": "checknumber"}],
                        },
                    ],
                }
            ]
        },
    }
    files: dict[str, Any] = {"runs/shipyard.yaml": shipyard}
    for task in ("checknumber", "lookup"):
        files[f"runs/provider-{task}.yaml"] = {
            "apiVersion": "slipway.dev/v1alpha1",
            "kind": "TaskProvider",
            "metadata": {"name": f"{task}-tool"},
            "spec": {"task": task, "cloudEvent": {"url": tool.url}},
        }
    for run in runs:
        files[f"runs/{run['metadata']['name']}.yaml"] = run
    return files


def health(app: Application, kind: str, name: str) -> dict[str, Any]:
    res = app.resource(kind, name) or {}
    return dict(res.get("health") or {})


def test_committed_runs_sync_run_and_the_health_follows_them(
    app: Application, repo: GitRepo, k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """A commit with a Shipyard, two TaskProviders and a run: Argo CD syncs them, the run
    runs; the Application is Progressing while it runs and Healthy once it passed. A second
    run committed later runs once more (the first does not run again) and, failing, makes
    the Application Degraded with the run's verdict."""
    tool.behave["checknumber"] = "started-only"  # the test says when it finishes
    tool.behave["lookup"] = "sync-pass"
    first = repo.commit(
        folder(tool, run_file("check-0001", "two-step", {"number": "+44 20 7946 0958"})),
        "a Shipyard, its providers, a run",
    )
    app.create()

    def running(status: dict[str, Any]) -> bool:
        run = health(app, "SequenceRun", "check-0001")
        return (
            status.get("sync", {}).get("status") == "Synced"
            and status.get("health", {}).get("status") == "Progressing"
            and run.get("status") == "Progressing"
            and "task checknumber (2 of 2)" in run.get("message", "")
        )

    app.wait("the run Progressing at its second task", running, first)
    assert health(app, "Shipyard", "osint") == {
        "status": "Healthy",
        "message": "every link and selector names what exists",
    }
    assert health(app, "TaskProvider", "checknumber-tool") == {}  # no check for this kind
    wait_for(lambda: tool.callbacks, message="the tool's .started")
    finish(tool, "checknumber", "pass")
    assert k8s.finished("check-0001")["result"] == "pass"
    app.synced_healthy(first, "Healthy")
    message = health(app, "SequenceRun", "check-0001")["message"]
    assert message.startswith("pass"), message

    tool.behave["checknumber"] = "sync-fail"
    second = repo.commit(
        {"runs/check-0002.yaml": run_file("check-0002", "check", {"number": "+1 555 0100"})},
        "a second run",
    )
    app.wait("the second run applied", lambda s: app.resource("SequenceRun", "check-0002"), second)
    status = k8s.finished("check-0002", timeout=120)
    assert status["result"] == "fail"
    app.synced_healthy(second, "Degraded")
    assert health(app, "SequenceRun", "check-0002")["status"] == "Degraded"
    assert health(app, "SequenceRun", "check-0001")["status"] == "Healthy"
    # Each run ran once: two triggers of checknumber, one of lookup, and the first run is
    # the object Argo CD created at the first sync.
    assert len(tool.events("checknumber")) == 2
    assert len(tool.events("lookup")) == 1
    assert len(k8s.items("sequenceruns")) == 2


def test_an_edited_finished_run_is_refused_and_never_runs_again(
    app: Application, repo: GitRepo, k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """Editing a finished run's spec in git: Argo CD's server-side diff (a dry-run apply) is
    refused by the API server, so the Application cannot even be compared: ComparisonError
    with the API server's message, sync status Unknown, nothing of that commit applied (not
    even a new run beside the edit); the run stays as it was and does not run again.
    Reverting the edit lets the next sync apply the rest."""
    tool.behave["checknumber"] = "sync-pass"
    run = run_file("check-0010", "check", {"number": "+44 20 7946 0958"})
    first = repo.commit(folder(tool, run), "a run")
    app.create()
    assert k8s.finished("check-0010", timeout=120)["result"] == "pass"
    app.synced_healthy(first, "Healthy")
    uid = k8s.get("sequenceruns", "check-0010")["metadata"]["uid"]

    edited = copy.deepcopy(run)
    edited["spec"]["data"]["number"] = "+33 1 23 45 67 89"
    second = repo.commit(
        {
            "runs/check-0010.yaml": edited,
            "runs/check-0011.yaml": run_file("check-0011", "check", {"number": "2"}),
        },
        "edit a finished run, and add a new one",
    )

    def refused(status: dict[str, Any]) -> bool:
        return status.get("sync", {}).get("status") == "Unknown" and any(
            c["type"] == "ComparisonError"
            and "spec.data cannot change once a SequenceRun exists" in c["message"]
            for c in status.get("conditions") or []
        )

    app.wait("the edit refused", refused, second)
    live = k8s.get("sequenceruns", "check-0010")
    assert live["metadata"]["uid"] == uid
    assert live["spec"]["data"]["number"] == "+44 20 7946 0958"
    assert [r["metadata"]["name"] for r in k8s.items("sequenceruns")] == ["check-0010"]
    assert len(tool.events("checknumber")) == 1

    third = repo.commit({"runs/check-0010.yaml": run}, "revert the edit")
    app.wait("the new run applied", lambda s: app.resource("SequenceRun", "check-0011"), third)
    assert k8s.finished("check-0011", timeout=120)["result"] == "pass"
    app.synced_healthy(third, "Healthy")
    assert k8s.get("sequenceruns", "check-0010")["metadata"]["uid"] == uid
    assert len(tool.events("checknumber")) == 2  # check-0011's; check-0010 never again


def test_a_run_deleted_by_hand_comes_back_and_runs_again_unless_protected(
    app: Application,
    repo: GitRepo,
    k8s: Cluster,
    tool: Tool,
    operator: OperatorProcess,
    protect_runs: None,
) -> None:
    """What the docs' answer rests on. Without protect-runs.yaml, Argo CD creates a deleted
    run again and it runs again (nothing in Argo CD turns this off). With it, deleting a
    run kept in git is refused with the way to do it, and removing the file from git makes
    Argo CD delete the run, for good: it never comes back and never runs again."""
    tool.behave["checknumber"] = "sync-pass"
    first = repo.commit(
        folder(tool, run_file("check-0020", "check", {"number": "1"})), "a run to delete"
    )
    app.create()
    assert k8s.finished("check-0020", timeout=120)["result"] == "pass"
    app.synced_healthy(first, "Healthy")

    # 1. Refused while in git, with the way out in the message.
    refused = kubectl("delete", "-n", k8s.ns, "sequencerun/check-0020", check=False)
    assert refused.returncode != 0
    assert "is kept in git by Argo CD" in refused.stderr, refused.stderr
    assert "Remove its file from git" in refused.stderr

    # 2. Without the policy (as before this issue), Argo CD re-creates it and it runs again.
    uid = k8s.get("sequenceruns", "check-0020")["metadata"]["uid"]
    kubectl("delete", "validatingadmissionpolicybinding", "slipway-runs-kept-in-git")
    wait_for(
        lambda: (
            kubectl("delete", "-n", k8s.ns, "sequencerun/check-0020", check=False).returncode == 0
        ),
        timeout=30,
        message="delete allowed once the binding is gone",
    )

    def recreated() -> bool:
        found = k8s.items("sequenceruns")
        return bool(found) and found[0]["metadata"]["uid"] != uid

    wait_for(recreated, timeout=120, message="Argo CD re-creates the deleted run")
    assert k8s.finished("check-0020", timeout=120)["result"] == "pass"
    assert len(tool.events("checknumber")) == 2, "the re-created run ran again"
    kubectl("apply", "-f", str(MANIFESTS / "protect-runs.yaml"))

    # 3. The way that works: the file leaves git, Argo CD prunes the run.
    second = repo.commit({"runs/check-0020.yaml": None}, "the run's file leaves git")
    app.synced_healthy(second, "Healthy")
    wait_for(lambda: not k8s.items("sequenceruns"), timeout=60, message="run pruned")
    # Never again: through more refreshes (each a chance for self-heal) it stays gone.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        app.refresh()
        assert not k8s.items("sequenceruns")
        time.sleep(2)
    assert app.status()["sync"]["status"] == "Synced"
    assert len(tool.events("checknumber")) == 2


def test_an_invalid_shipyard_is_degraded_with_the_operators_message(
    app: Application, repo: GitRepo, k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """A Shipyard the operator finds invalid (a link to a stage it does not define): its
    health is Degraded with the operator's reason and message, and so is the Application's,
    naming it; the run committed with it waits in its later wave and is not created."""
    files = folder(tool, run_file("check-0030", "check", {"number": "1"}))
    files["runs/shipyard.yaml"]["spec"]["stages"][0]["sequences"].append(
        {
            "name": "linked",
            "triggeredOn": [{"event": "qa.check.finished"}],
            "tasks": [{"name": "checknumber"}],
        }
    )
    revision = repo.commit(files, "a Shipyard with a link to an unknown stage")
    app.create()

    def degraded(status: dict[str, Any]) -> bool:
        return (
            status.get("health", {}).get("status") == "Degraded"
            and health(app, "Shipyard", "osint").get("status") == "Degraded"
        )

    app.wait("the Shipyard Degraded", degraded, revision)
    shipyard = k8s.get("shipyards", "osint")
    [ready] = [c for c in shipyard["status"]["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "False"
    assert health(app, "Shipyard", "osint")["message"] == f"{ready['reason']}: {ready['message']}"
    assert "qa" in ready["message"]
    # The Application says which object makes it Degraded; the run (wave 1) waits behind the
    # Shipyard (wave 0) that is not Healthy: never created, so it cannot finish Invalid.
    assert app.status()["health"]["message"] == f"Caused by slipway.dev/Shipyard:{k8s.ns}/osint"
    assert (app.resource("SequenceRun", "check-0030") or {}).get("status") == "OutOfSync"
    assert not k8s.items("sequenceruns")


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in ("SequenceRun", "TaskExecution", "Shipyard"):
        tests = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]
        cases += [(kind, case) for case in tests]
    return cases


def expected(testdata: dict[str, Any], case: dict[str, Any]) -> dict[str, str]:
    """The health Argo CD shows for a case: the case's, except for an object being deleted.
    Argo CD answers that itself, before any health check runs (observed in 3.6.1; the checks'
    "Being deleted" branch serves other Lua runners): Progressing, its own message."""
    if "deletionTimestamp" in testdata["metadata"]:
        assert case["healthStatus"]["status"] == "Progressing"
        return {
            "status": "Progressing",
            "message": "Pending deletion; blocked by finalizers: slipway.dev/test-hold",
        }
    return dict(case["healthStatus"])


def test_every_health_check_case_behaves_the_same_in_argo_cd(
    app: Application, repo: GitRepo, k8s: Cluster, api_client: client.ApiClient
) -> None:
    """Every case of the health_test.yaml files, as a live object of an Application (no
    operator here: the test writes each status): Argo CD's health status and message are the
    ones the case expects (for an object being deleted, see `expected`)."""
    custom = client.CustomObjectsApi(api_client)
    plurals = {
        "SequenceRun": "sequenceruns",
        "TaskExecution": "taskexecutions",
        "Shipyard": "shipyards",
    }
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    files: dict[str, Any] = {}
    for kind, case in _cases():
        obj = yaml.safe_load((CHECKS / kind / case["inputPath"]).read_text())
        name = f"{kind.lower()}-{Path(case['inputPath']).stem}"
        objects[(kind, name)] = {"case": case, "testdata": obj}
        files[f"cases/{name}.yaml"] = {
            "apiVersion": obj["apiVersion"],
            "kind": kind,
            "metadata": {"name": name},
            "spec": obj["spec"],
        }
    revision = repo.commit(files, "every health_test.yaml case")
    app.create(path="cases")
    app.wait(
        "every case synced",
        lambda s: all((app.resource(k, n) or {}).get("status") == "Synced" for k, n in objects),
        revision,
        timeout=180,
    )
    for (kind, name), entry in objects.items():
        testdata = entry["testdata"]
        live = k8s.get(plurals[kind], name)
        status = copy.deepcopy(testdata.get("status"))
        meta = testdata["metadata"]
        if status is not None:
            if "observedGeneration" in status:  # same distance to the live generation
                status["observedGeneration"] = live["metadata"]["generation"] - (
                    meta["generation"] - status["observedGeneration"]
                )
            custom.patch_namespaced_custom_object_status(
                "slipway.dev", "v1alpha1", k8s.ns, plurals[kind], name, {"status": status}
            )
        if "deletionTimestamp" in meta:  # held by a finalizer nobody removes until the end
            custom.patch_namespaced_custom_object(
                "slipway.dev",
                "v1alpha1",
                k8s.ns,
                plurals[kind],
                name,
                {"metadata": {"finalizers": ["slipway.dev/test-hold"]}},
            )
            custom.delete_namespaced_custom_object(
                "slipway.dev", "v1alpha1", k8s.ns, plurals[kind], name
            )
    try:

        def as_expected(_: dict[str, Any]) -> bool:
            return all(
                health(app, kind, name) == expected(entry["testdata"], entry["case"])
                for (kind, name), entry in objects.items()
            )

        try:
            app.wait("every case's health", as_expected, timeout=120)
        except AssertionError:
            differing = {
                name: (health(app, kind, name), expected(entry["testdata"], entry["case"]))
                for (kind, name), entry in objects.items()
                if health(app, kind, name) != expected(entry["testdata"], entry["case"])
            }
            raise AssertionError(f"Argo CD's health differs (got, expected): {differing}") from None
    finally:
        for (kind, name), _ in objects.items():
            try:
                custom.patch_namespaced_custom_object(
                    "slipway.dev",
                    "v1alpha1",
                    k8s.ns,
                    plurals[kind],
                    name,
                    {"metadata": {"finalizers": None}},
                )
            except ApiException as error:
                if error.status != 404:
                    raise
