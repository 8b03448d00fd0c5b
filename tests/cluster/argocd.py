"""Helpers of the Argo CD tests: a real git repository in a temp folder, Applications on it,
and waits on what Argo CD writes in an Application's status."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from slipway.devcluster.argocd import MANIFESTS, NAMESPACE
from tests.helpers import wait_for
from tests.tools import Tool

ARGO = ("argoproj.io", "v1alpha1", NAMESPACE, "applications")


class GitRepo:
    """A git repository in a folder, read by Argo CD through a file:// URL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self._git("init", "--quiet", "--initial-branch=main")
        self._git("config", "user.email", "tests@slipway.dev")
        self._git("config", "user.name", "tests")
        self.commit({"README.md": "runs kept in git\n"}, "start")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=self.path, capture_output=True, text=True, check=True, timeout=60
        )
        return result.stdout.strip()

    def commit(self, files: dict[str, Any], message: str) -> str:
        """Write (a dict or list is dumped as YAML documents), or delete (None), each file;
        commit; return the commit's hash."""
        for name, content in files.items():
            path = self.path / name
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, dict):
                content = yaml.safe_dump(content, sort_keys=False)
            elif isinstance(content, list):
                content = yaml.safe_dump_all(content, sort_keys=False)
            path.write_text(content)
        self._git("add", "-A")
        self._git("commit", "--quiet", "-m", message)
        return self._git("rev-parse", "HEAD")


def documented_runs_application() -> dict[str, Any]:
    """Application `slipway-runs` of manifests/argocd/application.yaml, as users get it."""
    for doc in yaml.safe_load_all((MANIFESTS / "application.yaml").read_text()):
        if doc["metadata"]["name"] == "slipway-runs":
            return dict(doc)
    raise AssertionError("application.yaml has no slipway-runs")


def documented_run_annotations() -> dict[str, str]:
    """The annotations the example run in manifests/argocd/runs carries."""
    run = yaml.safe_load((MANIFESTS / "runs" / "check-0042.yaml").read_text())
    return dict(run["metadata"]["annotations"])


class Application:
    """One Argo CD Application over a test repository's folder, into the test's namespace."""

    def __init__(self, api_client: client.ApiClient, repo: GitRepo, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.repo = repo
        self.namespace = namespace
        self.name = f"runs-{uuid.uuid4().hex[:8]}"

    def create(self, path: str = "runs", retry_backoff: str = "2s") -> None:
        """The documented Application, on this repository and namespace; only the retry's
        backoff is shorter (10 s doubling in the docs) so a refused edit fails sooner."""
        app = documented_runs_application()
        app["metadata"] = {"name": self.name, "namespace": NAMESPACE}
        app["spec"]["source"] = {"repoURL": self.repo.url, "targetRevision": "main", "path": path}
        app["spec"]["destination"]["namespace"] = self.namespace
        app["spec"]["syncPolicy"]["retry"]["backoff"]["duration"] = retry_backoff
        self.custom.create_namespaced_custom_object(*ARGO[:3], ARGO[3], app)

    def delete(self) -> None:
        self.custom.delete_namespaced_custom_object(*ARGO[:3], ARGO[3], self.name)

    def get(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            *ARGO[:3], ARGO[3], self.name
        )
        return found

    def refresh(self) -> None:
        """Ask for a hard refresh: Argo CD reads git again now instead of at its next poll."""
        self.custom.patch_namespaced_custom_object(
            *ARGO[:3],
            ARGO[3],
            self.name,
            {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}},
        )

    def status(self) -> dict[str, Any]:
        return dict(self.get().get("status") or {})

    def resource(self, kind: str, name: str) -> dict[str, Any] | None:
        for res in self.status().get("resources", []):
            if res["kind"] == kind and res["name"] == name:
                return dict(res)
        return None

    def wait(
        self, what: str, condition: Any, revision: str | None = None, timeout: float = 120
    ) -> dict[str, Any]:
        """Hard-refresh (again every 15 s: a refresh asked for during a sync may be folded
        into it) until `condition(status)` holds on `revision` (when given)."""
        asked = [0.0]

        def check() -> dict[str, Any] | None:
            import time

            if time.monotonic() - asked[0] > 15:
                self.refresh()
                asked[0] = time.monotonic()
            status = self.status()
            if revision and status.get("sync", {}).get("revision") != revision:
                return None
            return status if condition(status) else None

        try:
            return wait_for(check, timeout=timeout, interval=0.5, message=f"{self.name}: {what}")
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen:\n{self.summary()}") from error

    def summary(self) -> str:
        """What Argo CD last said: sync, health, the operation, each resource, conditions."""
        status = self.status()
        return yaml.safe_dump(
            {
                "sync": status.get("sync"),
                "health": status.get("health"),
                "operationState": {
                    k: v
                    for k, v in (status.get("operationState") or {}).items()
                    if k in ("phase", "message", "retryCount")
                },
                "syncResult": (status.get("operationState") or {})
                .get("syncResult", {})
                .get("resources"),
                "resources": status.get("resources"),
                "conditions": status.get("conditions"),
            },
            sort_keys=False,
        )

    def synced_healthy(self, revision: str, health: str, timeout: float = 120) -> dict[str, Any]:
        return self.wait(
            f"Synced and {health} at {revision[:8]}",
            lambda s: (
                s.get("sync", {}).get("status") == "Synced"
                and s.get("health", {}).get("status") == health
                and (s.get("operationState") or {}).get("phase") in ("Succeeded", None)
            ),
            revision,
            timeout,
        )


def run_file(name: str, sequence: str, data: dict[str, Any]) -> dict[str, Any]:
    """A SequenceRun as a team commits it, with the documented annotations."""
    return {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "SequenceRun",
        "metadata": {"name": name, "annotations": documented_run_annotations()},
        "spec": {"shipyard": "osint", "stage": "dev", "sequence": sequence, "data": data},
    }


def finish(tool: Tool, task: str, result: str, index: int = -1) -> None:
    """Post the `.finished` event of the `index`th `task.triggered` the tool received, as the
    tool itself would (its callback URL and token)."""
    triggered = tool.events(task)[index]
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "tests/argocd",
        "type": f"{task}.finished",
        "triggeredid": triggered["id"],
        "slipwaycontext": triggered.get("slipwaycontext", ""),
        "datacontenttype": "application/json",
        "data": {"result": result, "message": f"{task} said {result}"},
    }
    request = urllib.request.Request(
        triggered["slipwaycallback"],
        data=json.dumps(event).encode(),
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {triggered['slipwaytoken']}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status < 300
