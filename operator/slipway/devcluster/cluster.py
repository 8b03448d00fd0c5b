"""Start, reuse, inspect and stop the local control plane.

Five processes, started directly (no Docker, no kind): etcd, kube-apiserver (RBAC on,
service-account tokens signed, so TokenRequest/TokenReview/SubjectAccessReview work),
kube-controller-manager (Jobs make Pods, owners garbage-collect dependents, namespaces get
their ServiceAccount), kube-scheduler, and kwok, which plays the kubelet of one fake node
(`kwok-node-0`) using the Stages in `stages.yaml`.

`up(real_node=True)` (`slipway dev cluster up --real-node`) also starts a real node next to
it: containerd and a kubelet, which run the pods that ask for it (`slipway.devcluster.node`).

Everything lives under `<cache>/cluster/` (never the repo): keys, the admin kubeconfig
(`<cache>/cluster/kubeconfig`), logs, pid files and etcd's data. `up` reuses a control plane
that is already running and healthy; `down` stops every process it recorded and removes
etcd's data, so the next `up` starts empty.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slipway.devcluster.binaries import ensure_binaries
from slipway.devcluster.node import RealNode
from slipway.devcluster.pki import Pki, ensure_pki
from slipway.devcluster.processes import Processes

NODE_NAME = "kwok-node-0"
#: Start order; stopping goes the other way.
PROCESS_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
STAGES_FILE = Path(__file__).with_name("stages.yaml")


class ClusterError(RuntimeError):
    """The control plane could not start; the message names the process and its log."""


@dataclass(frozen=True)
class ClusterConfig:
    """Where the control plane keeps its files and which ports it uses."""

    cache_dir: Path
    port: int = 16443
    kubebuilder_assets: Path | None = None

    @property
    def state_dir(self) -> Path:
        return self.cache_dir / "cluster"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_ports(self) -> tuple[int, int]:
        """Client and peer port of etcd, derived from the API server's port."""
        return self.port - 64, self.port - 63


@dataclass
class ClusterStatus:
    """What is running now: pid per process (None: not running) and API readiness."""

    pids: dict[str, int | None] = field(default_factory=dict)
    api_ready: bool = False

    @property
    def running(self) -> bool:
        return self.api_ready and all(self.pids.get(n) for n in PROCESS_NAMES)

    @property
    def any_process(self) -> bool:
        return any(self.pids.values())


class LocalCluster:
    """The local control plane described by a `ClusterConfig`."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._logs = config.state_dir / "logs"
        self.processes = Processes(config.state_dir / "run", self._logs)

    # ----------------------------------------------------------------- inspection
    def status(self) -> ClusterStatus:
        """Which processes are alive and whether the API server answers /readyz."""
        pids = self.processes.pids(PROCESS_NAMES)
        ready = bool(pids["kube-apiserver"]) and self._api_ready()
        return ClusterStatus(pids=pids, api_ready=ready)

    def _token(self) -> str:
        return (self.config.state_dir / "admin-token").read_text().strip()

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 5) -> Any:
        pki = Pki(self.config.state_dir / "pki")
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.config.server + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._token()}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw.startswith(b"{") else raw.decode()

    def _api_ready(self) -> bool:
        try:
            return bool(self._request("GET", "/readyz") == "ok")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    # ----------------------------------------------------------------- start
    @property
    def node(self) -> RealNode:
        """The real node (running or not) of this control plane."""
        return RealNode(self.config)

    def up(self, timeout: float = 180, real_node: bool = False) -> bool:
        """Start the control plane, or reuse the one already running; with `real_node`, start
        the real node too unless it runs. Returns True when the control plane was started
        now, False when reused. Raises ClusterError (with the failing process's log tail)
        when it does not become ready within `timeout` seconds, NodeError when the node
        does not."""
        current = self.status()
        if current.running:
            if real_node:
                self.node.up(self._request, timeout=timeout)
            return False
        if current.any_process:
            self.down()  # half a control plane is worse than none: start again cleanly
        binaries = ensure_binaries(self.config.cache_dir, self.config.kubebuilder_assets)
        state = self.config.state_dir
        for folder in (self.processes.run, self._logs):
            folder.mkdir(parents=True, exist_ok=True)
        pki = ensure_pki(state / "pki")
        token_file = state / "admin-token"
        if not token_file.is_file():
            token_file.write_text(secrets.token_hex(24) + "\n")
            token_file.chmod(0o600)
        (state / "tokens.csv").write_text(f'{self._token()},admin,admin,"system:masters"\n')
        self._write_kubeconfig(pki)
        deadline = time.monotonic() + timeout
        for name in PROCESS_NAMES:
            self.processes.start(name, [str(binaries[name]), *self._args(name, pki)], state)
            if name == "etcd":
                self._wait(deadline, "etcd", self._etcd_healthy)
            if name == "kube-apiserver":
                self._wait(deadline, name, self._api_ready)
        self._ensure_node()
        self._wait(deadline, "kwok", self._node_ready)
        self._wait(deadline, "kube-controller-manager", self._default_service_account)
        if real_node:
            self.node.up(self._request, timeout=timeout)
        return True

    def _args(self, name: str, pki: Pki) -> list[str]:
        state = self.config.state_dir
        client, peer = self.config.etcd_ports
        kubeconfig = str(self.config.kubeconfig)
        if name == "etcd":
            return [
                f"--data-dir={state / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # a throwaway dev store: speed over durability
                "--log-level=warn",
            ]
        if name == "kube-apiserver":
            return [
                f"--etcd-servers=http://127.0.0.1:{client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.config.port}",
                f"--cert-dir={state / 'pki'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--token-auth-file={state / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                # No real Service endpoints exist on this machine; do not try to publish one.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                # Nothing here would lift the not-ready taint this plugin puts on a new node
                # (node lifecycle is off, see the controller-manager): kwok's node is ready.
                "--disable-admission-plugins=TaintNodesByCondition",
                # Logs and exec reach the real node's kubelet at its address (127.0.0.1).
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                # Every write, with who made it (metadata only): how benchmarks count the
                # operator's API writes. Rotated at 50 MB.
                f"--audit-policy-file={self._audit_policy()}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-maxsize=50",
                "--audit-log-maxbackup=1",
            ]
        if name == "kube-controller-manager":
            return [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                # kwok's node has no heartbeat to judge; node lifecycle would taint it.
                "--controllers=*,-nodelifecycle,-nodeipam,-cloud-node-lifecycle,-route,-service",
                "--concurrent-gc-syncs=5",
            ]
        if name == "kube-scheduler":
            return [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
            ]
        if name == "kwok":
            return [
                f"--kubeconfig={kubeconfig}",
                f"--config={STAGES_FILE}",
                # Its own node only: the real node (if any) has a kubelet.
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.244.0.1/16",
                "--node-ip=10.240.0.1",
            ]
        raise ValueError(name)

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: one JSON line per write request."""
        return self._logs / "audit.log"

    def _audit_policy(self) -> Path:
        policy = self.config.state_dir / "audit-policy.yaml"
        policy.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": [
                        {
                            "level": "Metadata",
                            "verbs": ["create", "update", "patch", "delete", "deletecollection"],
                        },
                        {"level": "None"},
                    ],
                }
            )
        )
        return policy

    def _wait(self, deadline: float, name: str, ready: Callable[[], bool]) -> None:
        if self.processes.wait_ready(name, ready, deadline):
            return
        log_tail = self.processes.log_tail(name)
        self.down()
        raise ClusterError(f"{name} did not become ready; end of its log:\n{log_tail}")

    def _etcd_healthy(self) -> bool:
        client, _ = self.config.etcd_ports
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _ensure_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "labels": {"kubernetes.io/hostname": NODE_NAME, "type": "kwok"},
                "annotations": {"kwok.x-k8s.io/node": "fake"},
            },
        }
        try:
            self._request("POST", "/api/v1/nodes", node)
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise

    def _node_ready(self) -> bool:
        try:
            node = self._request("GET", f"/api/v1/nodes/{NODE_NAME}")
        except (OSError, urllib.error.URLError):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _default_service_account(self) -> bool:
        try:
            self._request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        except (OSError, urllib.error.URLError):
            return False
        return True

    def _write_kubeconfig(self, pki: Pki) -> None:
        write_kubeconfig(
            self.config.kubeconfig,
            self.config.server,
            pki.ca_cert,
            user="slipway-admin",
            token=self._token(),
            cluster="slipway-local",
            context="slipway-local",
        )

    # ----------------------------------------------------------------- stop
    def down(self, timeout: float = 20) -> list[str]:
        """Stop the real node (if any: its containers too, and what it mounted), every
        recorded process (SIGTERM, then SIGKILL after `timeout` seconds) and remove etcd's
        data. Returns the names of the processes that were running."""
        node_stopped = self.node.down() if self.node.home.is_dir() else []
        stopped = self.processes.stop(reversed(PROCESS_NAMES), timeout)
        shutil.rmtree(self.config.state_dir / "etcd", ignore_errors=True)
        return node_stopped + stopped


def write_kubeconfig(
    path: Path,
    server: str,
    ca_cert: Path,
    *,
    user: str,
    token: str,
    cluster: str,
    context: str,
    namespace: str | None = None,
) -> None:
    """A kubeconfig (mode 0600) with one cluster, one bearer-token user and one context."""
    ca = base64.b64encode(ca_cert.read_bytes()).decode()
    bound: dict[str, str] = {"cluster": cluster, "user": user}
    if namespace:
        bound["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": bound}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
