"""Argo CD beside the local control plane, for GitOps development and tests.

Three plain processes (no container, no Helm chart): Redis (Debian's `redis-server`), Argo CD's
repo-server and its application-controller (one binary built from `tools/argocd/`, called by
either name). They talk to the local control plane as Argo CD's own ServiceAccount
(`argocd-application-controller` in namespace `argocd`, bound to cluster-admin as in Argo CD's
install), with `ARGOCD_FAKE_IN_CLUSTER=true`: the Application destination
`https://kubernetes.default.svc` is the cluster of that kubeconfig.

`up` installs what Argo CD's manifests would: the Application and AppProject CRDs of the pinned
module, the `argocd` namespace, `argocd-cm`, `argocd-rbac-cm`, `argocd-secret` and the AppProject
`default`; then Slipway's health checks, merged into `argocd-cm` exactly as docs/argocd.md tells
users to (`manifests/argocd/argocd-cm.yaml` as a merge patch). `down` stops the processes and
deletes every one of those objects (with every Application), leaving the control plane as it was.

State lives beside the control plane's, in `<cache>/cluster/argocd/` (ports, pids, logs, the
kubeconfig, Redis' and the repo-server's scratch space): each plane has its own Argo CD, on free
ports chosen at `up`, so planes of several worktrees never collide.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slipway.devcluster.binaries import ARGOCD_CRDS, ensure_argocd
from slipway.devcluster.cluster import ClusterConfig, LocalCluster, write_kubeconfig
from slipway.devcluster.pki import Pki
from slipway.devcluster.processes import Processes, http_ok

NAMESPACE = "argocd"
SERVICE_ACCOUNT = "argocd-application-controller"
#: Start order; stopping goes the other way.
PROCESS_NAMES = ("redis-server", "argocd-repo-server", "argocd-application-controller")
MANIFESTS = Path(__file__).resolve().parents[3] / "manifests" / "argocd"
_FIELD_MANAGER = "slipway-dev-argocd"
_LABELS = {"app.kubernetes.io/part-of": "argocd"}
_BINDING = "slipway-dev-argocd-application-controller"
_CRD_NAMES = ("applications.argoproj.io", "appprojects.argoproj.io")


class ArgoCDError(RuntimeError):
    """Argo CD could not start or stop; the message says which part and shows its log."""


@dataclass(frozen=True)
class ArgoCDConfig:
    """Argo CD of one local control plane."""

    cluster: ClusterConfig

    @property
    def state_dir(self) -> Path:
        return self.cluster.state_dir / "argocd"

    @property
    def kubeconfig(self) -> Path:
        """Argo CD's own kubeconfig: its ServiceAccount's token."""
        return self.state_dir / "kubeconfig"


class LocalArgoCD:
    """Start, reuse, inspect and stop Argo CD for the control plane of `config`."""

    def __init__(self, config: ArgoCDConfig) -> None:
        self.config = config
        self._ports_file = config.state_dir / "ports.json"
        self.processes = Processes(config.state_dir / "run", config.state_dir / "logs")

    # ----------------------------------------------------------------- inspection
    def pids(self) -> dict[str, int | None]:
        return self.processes.pids(PROCESS_NAMES)

    @property
    def ports(self) -> dict[str, int]:
        """redis, repo-server, repo-server-metrics, controller-metrics (empty: never started)."""
        try:
            return {k: int(v) for k, v in json.loads(self._ports_file.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def running(self) -> bool:
        return all(self.pids().values()) and self._healthy()

    def _healthy(self) -> bool:
        ports = self.ports
        return bool(ports) and all(
            http_ok(f"http://127.0.0.1:{ports[key]}/healthz")
            for key in ("repo-server-metrics", "controller-metrics")
        )

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.processes.log_tail(name, lines)

    # ----------------------------------------------------------------- start
    def up(self, timeout: float = 240) -> bool:
        """Start Argo CD against the (running) control plane, or reuse the one running.
        Returns True when started now. Raises ArgoCDError (with the failing part's log) or
        BinaryError (Argo CD cannot be built)."""
        if not LocalCluster(self.config.cluster).status().running:
            raise ArgoCDError("the local control plane is not running: `slipway dev cluster up`")
        if self.running():
            self._install_config()  # the health checks may have changed since
            return False
        if any(self.pids().values()):
            self._stop_processes()
        redis = shutil.which("redis-server")
        if redis is None:
            raise ArgoCDError("Argo CD needs Redis: `redis-server` is not on PATH (make argocd)")
        binary = ensure_argocd(self.config.cluster.cache_dir)
        state = self.config.state_dir
        processes = self.processes
        for folder in (
            processes.run,
            processes.logs,
            state / "bin",
            state / "redis",
            state / "tmp",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        for name in PROCESS_NAMES[1:]:  # Argo CD picks the component from the name it runs as
            link = state / "bin" / name
            link.unlink(missing_ok=True)
            link.symlink_to(binary)
        # Argo CD's image has a script the repo-server runs on every revision it reads, to show
        # GPG signatures. Verification is off here (ARGOCD_GPG_ENABLED=false): no signature.
        wrapper = state / "bin" / "git-verify-wrapper.sh"
        wrapper.write_text("#!/bin/sh\n# slipway dev argocd: GPG verification is off\nexit 0\n")
        wrapper.chmod(0o755)
        self._install_crds(binary.parent)
        self._install_config()
        self._write_kubeconfig(self._service_account_token(timeout))
        ports = {
            key: _free_port()
            for key in ("redis", "repo-server", "repo-server-metrics", "controller-metrics")
        }
        self._ports_file.write_text(json.dumps(ports))
        deadline = time.monotonic() + timeout
        redis_address = f"127.0.0.1:{ports['redis']}"
        self._start(
            "redis-server",
            [
                redis,
                "--bind",
                "127.0.0.1",
                "--port",
                str(ports["redis"]),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(state / "redis"),
            ],
        )
        self._wait(deadline, "redis-server", lambda: _redis_ping(ports["redis"]))
        self._start(
            "argocd-repo-server",
            [
                str(state / "bin" / "argocd-repo-server"),
                f"--redis={redis_address}",
                "--address=127.0.0.1",
                f"--port={ports['repo-server']}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={ports['repo-server-metrics']}",
                "--disable-tls",
                "--client-ca-path=",  # no mTLS (its default path is a mounted Secret)
                "--logformat=text",
            ],
        )
        self._start(
            "argocd-application-controller",
            [
                str(state / "bin" / "argocd-application-controller"),
                f"--kubeconfig={self.config.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--redis={redis_address}",
                f"--repo-server=127.0.0.1:{ports['repo-server']}",
                "--repo-server-plaintext",
                f"--metrics-port={ports['controller-metrics']}",
                # Per-resource health in the Application's status (off by default since
                # Argo CD 3.0, where only the API server's resource tree has it): what the
                # tests and `kubectl get application -o yaml` read.
                "--persist-resource-health",
                "--logformat=text",
            ],
        )
        self._wait(
            deadline,
            "argocd-repo-server",
            lambda: http_ok(f"http://127.0.0.1:{ports['repo-server-metrics']}/healthz"),
        )
        self._wait(
            deadline,
            "argocd-application-controller",
            lambda: http_ok(f"http://127.0.0.1:{ports['controller-metrics']}/healthz"),
        )
        return True

    def _env(self) -> dict[str, str]:
        state = self.config.state_dir
        return {
            **os.environ,
            "KUBECONFIG": str(self.config.kubeconfig),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            # No signed commits here; on, the repo-server would set up a keyring in /app.
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_GNUPGHOME": str(state / "tmp" / "gnupg"),
            "ARGOCD_TLS_DATA_PATH": str(state / "tmp" / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(state / "tmp" / "ssh"),
            "TMPDIR": str(state / "tmp"),  # the repo-server's clones
            "HOME": str(state / "tmp"),  # git's, not the user's ~/.gitconfig
            "PATH": f"{state / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def _start(self, name: str, args: list[str]) -> None:
        self.processes.start(name, args, self.config.state_dir, self._env())

    def _wait(self, deadline: float, name: str, ready: Callable[[], bool]) -> None:
        if self.processes.wait_ready(name, ready, deadline, interval=0.3):
            return
        tail = self.log_tail(name)
        self._stop_processes()
        raise ArgoCDError(f"{name} did not become ready; end of its log:\n{tail}")

    # ----------------------------------------------------------------- objects
    def _install_crds(self, folder: Path) -> None:
        for name in ARGOCD_CRDS:
            crd = yaml.safe_load((folder / name).read_text())
            self._apply(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
                crd,
            )
        for name in _CRD_NAMES:
            self._wait_api(
                lambda name=name: _established(
                    self._api(
                        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                    )
                ),
                f"CRD {name} established",
            )

    def _install_config(self) -> None:
        """The namespace and the objects Argo CD's install would create, then Slipway's
        health checks merged into argocd-cm as docs/argocd.md says."""
        self._apply(
            f"/api/v1/namespaces/{NAMESPACE}",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        )
        base = f"/api/v1/namespaces/{NAMESPACE}"
        for kind, name, extra in (
            ("ConfigMap", "argocd-cm", {}),
            ("ConfigMap", "argocd-rbac-cm", {}),
            ("Secret", "argocd-secret", {"type": "Opaque"}),
        ):
            labels = {"app.kubernetes.io/name": name, **_LABELS}
            plural = "configmaps" if kind == "ConfigMap" else "secrets"
            self._apply(
                f"{base}/{plural}/{name}",
                {
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                    **extra,
                },
            )
        # `kubectl -n argocd patch configmap argocd-cm --type merge --patch-file <snippet>`
        snippet = yaml.safe_load((MANIFESTS / "argocd-cm.yaml").read_text())
        self._api(
            "PATCH",
            f"{base}/configmaps/argocd-cm",
            snippet,
            content_type="application/merge-patch+json",
        )
        self._apply(
            f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/appprojects/default",
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default", "namespace": NAMESPACE},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            },
        )
        self._apply(
            f"{base}/serviceaccounts/{SERVICE_ACCOUNT}",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE, "labels": _LABELS},
            },
        )
        self._apply(
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{_BINDING}",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": _BINDING, "labels": _LABELS},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
                ],
            },
        )

    def _service_account_token(self, timeout: float) -> str:
        """A long-lived token of Argo CD's ServiceAccount (a token Secret, which the
        control plane's token controller fills)."""
        name = f"{SERVICE_ACCOUNT}-token"
        self._apply(
            f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {
                    "name": name,
                    "namespace": NAMESPACE,
                    "annotations": {"kubernetes.io/service-account.name": SERVICE_ACCOUNT},
                },
            },
        )

        def token() -> str | None:
            secret = self._api("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}")
            value = (secret.get("data") or {}).get("token")
            return base64.b64decode(value).decode() if value else None

        return str(self._wait_api(token, "ServiceAccount token", timeout))

    def _write_kubeconfig(self, token: str) -> None:
        write_kubeconfig(
            self.config.kubeconfig,
            self.config.cluster.server,
            Pki(self.config.cluster.state_dir / "pki").ca_cert,
            user=SERVICE_ACCOUNT,
            token=token,
            cluster="local",
            context="argocd",
            namespace=NAMESPACE,
        )

    # ----------------------------------------------------------------- stop
    def down(self, timeout: float = 120) -> list[str]:
        """Stop the processes, then delete every Application, the AppProjects, the `argocd`
        namespace, the ClusterRoleBinding and the two CRDs, and wait until they are gone.
        Returns the names of the processes that were running. The control plane may be down
        already: then only the processes are stopped."""
        stopped = self._stop_processes()
        if LocalCluster(self.config.cluster).status().api_ready:
            self._delete_objects(timeout)
        shutil.rmtree(self.config.state_dir / "tmp", ignore_errors=True)
        shutil.rmtree(self.config.state_dir / "redis", ignore_errors=True)
        self._ports_file.unlink(missing_ok=True)
        return stopped

    def _stop_processes(self, timeout: float = 20) -> list[str]:
        return self.processes.stop(reversed(PROCESS_NAMES), timeout)

    def _delete_objects(self, timeout: float) -> None:
        crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        paths = [f"{crds}/{name}" for name in _CRD_NAMES]
        if self._exists(f"{crds}/applications.argoproj.io"):
            # Applications first, without their finalizers: nothing may cascade to what they
            # synced, and a finalizer no controller handles any more would block the CRD.
            apps = self._api("GET", "/apis/argoproj.io/v1alpha1/applications")
            for app in apps.get("items", []):
                meta = app["metadata"]
                path = (
                    f"/apis/argoproj.io/v1alpha1/namespaces/{meta['namespace']}"
                    f"/applications/{meta['name']}"
                )
                if meta.get("finalizers"):
                    self._api(
                        "PATCH",
                        path,
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
        paths += [
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{_BINDING}",
            f"/api/v1/namespaces/{NAMESPACE}",
        ]
        for path in paths:
            with contextlib.suppress(urllib.error.HTTPError):
                self._api("DELETE", path)
        self._wait_api(
            lambda: not any(self._exists(path) for path in paths), "Argo CD's objects gone", timeout
        )

    # ----------------------------------------------------------------- API
    def _api(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Any:
        cluster = self.config.cluster
        pki = Pki(cluster.state_dir / "pki")
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        token = (cluster.state_dir / "admin-token").read_text().strip()
        request = urllib.request.Request(
            cluster.server + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404 and method in ("GET", "DELETE"):
                raise
            detail = error.read().decode(errors="replace")
            raise ArgoCDError(f"{method} {path}: HTTP {error.code}: {detail}") from error
        return json.loads(raw) if raw else {}

    def _apply(self, path: str, obj: dict[str, Any]) -> None:
        """Server-side apply (create or update) `obj` at `path`."""
        query = urllib.parse.urlencode({"fieldManager": _FIELD_MANAGER, "force": "true"})
        self._api("PATCH", f"{path}?{query}", obj, content_type="application/apply-patch+yaml")

    def _exists(self, path: str) -> bool:
        try:
            self._api("GET", path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise
        return True

    def _wait_api(self, condition: Any, what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(urllib.error.HTTPError, OSError):
                value = condition()
                if value:
                    return value
            if time.monotonic() > deadline:
                raise ArgoCDError(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.3)


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def act(cache_dir: Path, cluster_port: int, action: str) -> tuple[dict[str, object], list[str]]:
    """`slipway dev argocd up|down|status|build`: what was done, as a document and as lines for
    a person. Raises BinaryError or ArgoCDError when it could not be done, and ArgoCDError for
    `status` while Argo CD is not running (after the document was filled in)."""
    argocd = LocalArgoCD(ArgoCDConfig(ClusterConfig(cache_dir=cache_dir, port=cluster_port)))
    document: dict[str, object] = {}
    lines: list[str] = []
    if action == "build":
        binary = ensure_argocd(cache_dir)
        document["argocd"] = str(binary)
        lines = [f"{'argocd':<32} {binary}"]
    elif action == "up":
        started = time.monotonic()
        fresh = argocd.up()
        document.update(started=fresh, namespace=NAMESPACE)
        verb = "started" if fresh else "already running; reused"
        lines = [
            f"Argo CD {verb} ({time.monotonic() - started:.1f} s)",
            f"Applications go in namespace {NAMESPACE} of the local control plane",
        ]
    elif action == "down":
        stopped = argocd.down()
        document["stopped"] = stopped
        lines = ["stopped: " + (", ".join(stopped) if stopped else "nothing was running")]
    else:
        pids = argocd.pids()
        document.update(processes=dict(pids), ports=dict(argocd.ports), running=argocd.running())
        lines = [
            f"{name:<32} {'running, pid ' + str(pid) if pid else 'stopped'}"
            for name, pid in pids.items()
        ]
        lines += [f"{key + ' port':<32} {port}" for key, port in argocd.ports.items()]
    return document, lines
