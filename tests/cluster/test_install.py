"""Installing Slipway from manifests/ on the real control plane.

`manifests/overlays/local` is applied with `kubectl apply --server-side -k`; the operator's
Pod gets past Pod Security "restricted"; then the operator, run as a local process with
nothing but its ServiceAccount's own token (TokenRequest), completes the seed's sequence-one
triggered over HTTP — proof that the RBAC is enough, the gateway's TokenReview and
SubjectAccessReview included — and `kubectl auth can-i` shows that it can do no more than
the code needs.

The control plane is shared with other tests, possibly running at the same time, so the
overlay is applied through a kustomization that renames what would collide: the namespace
(`slipway-system` becomes `t-<id>-slipway-system`) and, with a name suffix, the cluster-scoped
ClusterRoles and ClusterRoleBinding (kustomize rewrites every reference to them). The CRDs are
left out: the `crds` fixture applies the same files, and deleting them would delete every
other test's objects. Everything else this module creates is deleted at its end.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.objects import Cluster, sequence, stage
from tests.cluster.test_gateway import request, service_account_token, trigger_event
from tests.conftest import OperatorProcess
from tests.helpers import kubectl, wait_for
from tests.tools import Tool
from tests.unit.test_argocd_health import run_health_check

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "manifests" / "overlays" / "local"
SHIPYARD = ROOT / "manifests" / "examples" / "shipyard-osint.yaml"
G, V = "slipway.dev", "v1alpha1"

pytestmark = pytest.mark.usefixtures("crds")

#: A refusal in the operator's log: an HTTP 403 status or "Forbidden" (not any "403", which
#: a log line's timestamp can hold, e.g. `10:03:08,403`).
REFUSED = re.compile(r"\b403\b(?![,.:]\d)(?<!,403)|[Ff]orbidden")


@dataclass(frozen=True)
class Install:
    """The names one install got (see the module docstring for why they are renamed)."""

    suffix: str

    @property
    def namespace(self) -> str:
        return f"t-{self.suffix}-slipway-system"

    @property
    def service_account(self) -> str:
        return f"slipway-{self.suffix}"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def namespace_role(self) -> str:
        return f"slipway-namespace-{self.suffix}"

    def grant(self, namespace: str) -> None:
        """Let `namespace` use Slipway, with the command docs/install.md gives."""
        kubectl(
            "create",
            "rolebinding",
            "slipway",
            "-n",
            namespace,
            f"--clusterrole={self.namespace_role}",
            f"--serviceaccount={self.namespace}:{self.service_account}",
        )


@pytest.fixture(scope="module")
def install(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """manifests/overlays/local, renamed for this module and applied; deleted afterwards."""
    found = Install(uuid.uuid4().hex[:8])
    folder = tmp_path_factory.mktemp("install")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(OVERLAY, folder)],
        "namespace": found.namespace,
        "nameSuffix": f"-{found.suffix}",
        "patches": [
            # kwok's node, even when the real node runs (`make cluster-real`): a real operator
            # watching every namespace would act on the other tests' runs.
            {
                "target": {"kind": "Deployment"},
                "patch": yaml.safe_dump(
                    [
                        {
                            "op": "add",
                            "path": "/spec/template/spec/nodeSelector",
                            "value": {"type": "kwok"},
                        }
                    ]
                ),
            },
            {
                "target": {"kind": "CustomResourceDefinition"},
                "patch": yaml.safe_dump(
                    {
                        "$patch": "delete",
                        "apiVersion": "apiextensions.k8s.io/v1",
                        "kind": "CustomResourceDefinition",
                        "metadata": {"name": "any"},
                    }
                ),
            },
        ],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    try:
        applied = kubectl("apply", "--server-side", "-k", str(folder), check=False)
        assert applied.returncode == 0, applied.stderr
        assert "Warning" not in applied.stderr, applied.stderr
        # The local control plane has no storage provisioner: a volume for the uploads' claim,
        # as a cluster's default StorageClass would make.
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"slipway-uploads-{found.suffix}"},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "hostPath": {"path": f"/tmp/slipway-uploads-{found.suffix}"},
                "claimRef": {
                    "namespace": found.namespace,
                    "name": f"slipway-uploads-{found.suffix}",
                },
            },
        }
        (folder / "volume.json").write_text(json.dumps(volume))
        made = kubectl("apply", "-f", str(folder / "volume.json"), check=False)
        assert made.returncode == 0, made.stderr
        yield found
    finally:
        kubectl(
            "delete",
            f"persistentvolume/slipway-uploads-{found.suffix}",
            "--ignore-not-found",
            "--wait=false",
        )
        kubectl("delete", "namespace", found.namespace, "--ignore-not-found", "--wait=false")
        kubectl(
            "delete",
            f"clusterrolebinding/slipway-operator-{found.suffix}",
            f"clusterrole/slipway-operator-{found.suffix}",
            f"clusterrole/{found.namespace_role}",
            "--ignore-not-found",
        )


@pytest.fixture
def operator_kubeconfig(
    install: Install, kubeconfig: Path, api_client: client.ApiClient, tmp_path: Path
) -> Path:
    """A kubeconfig for the local cluster (server and CA of the admin's) whose only
    credential is a token of the operator's ServiceAccount, from the TokenRequest API."""
    admin = yaml.safe_load(kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    token = (
        client.CoreV1Api(api_client)
        .create_namespaced_service_account_token(
            install.service_account, install.namespace, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    if "certificate-authority-data" in cluster:
        ca = cluster["certificate-authority-data"]
    else:
        ca = base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": cluster["server"], "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": "slipway", "user": {"token": token}}],
        "contexts": [{"name": "slipway", "context": {"cluster": "local", "user": "slipway"}}],
        "current-context": "slipway",
    }
    path = tmp_path / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture
def namespaced_mode(install: Install, api_client: client.ApiClient) -> Iterator[None]:
    """What SLIPWAY_NAMESPACE mode adds to the install's rights: kopf lists and watches
    namespaces to match the namespaces it is given (kopf/_core/reactor/observation.py,
    namespace_observer); without it, kopf retries for about a minute before watching.
    The Deployment watches every namespace and does not need it (docs/install.md)."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    name = f"slipway-namespaced-mode-{install.suffix}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": install.service_account,
                    "namespace": install.namespace,
                }
            ],
        }
    )
    yield
    rbac.delete_cluster_role_binding(name)
    rbac.delete_cluster_role(name)


def test_the_install_applies_and_its_pod_passes_pod_security(install: Install) -> None:
    """The Deployment rolls out in a namespace that enforces Pod Security "restricted"."""
    name = f"deployment/slipway-{install.suffix}"
    rollout = kubectl(
        "rollout", "status", name, "-n", install.namespace, "--timeout=180s", check=False
    )
    assert rollout.returncode == 0, rollout.stderr
    labels = yaml.safe_load(kubectl("get", "namespace", install.namespace, "-o", "yaml").stdout)[
        "metadata"
    ]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # The label is enforced, not decorative: a Pod with no security context is refused.
    refused = kubectl(
        "run", "root", "--image=busybox", "-n", install.namespace, "--dry-run=server", check=False
    )
    assert refused.returncode != 0
    assert "PodSecurity" in refused.stderr


@pytest.mark.usefixtures("namespaced_mode")
def test_the_operator_with_its_own_token_runs_sequence_one_over_http(
    install: Install,
    operator_kubeconfig: Path,
    api_client: client.ApiClient,
    namespace: str,
    tool: Tool,
    tmp_path: Path,
) -> None:
    """With its own token only, the operator runs sequence-one and its linked run."""
    install.grant(namespace)
    kubectl("apply", "-n", namespace, "-f", str(SHIPYARD))
    k8s = Cluster(api_client, namespace)
    k8s.provider("phone-checker", "checknumber", tool.url)
    operator = OperatorProcess(
        namespace,
        tmp_path / "operator.log",
        env={
            "KUBECONFIG": str(operator_kubeconfig),
            "SLIPWAY_LEASE_NAMESPACE": install.namespace,
        },
    )
    operator.start()
    try:
        token = service_account_token(api_client, namespace, "client", ["create", "get"])
        events = f"{operator.gateway_url}/v1/namespaces/{namespace}/events"
        status, body = request("POST", events, token, trigger_event(number="+44 20 7946 0958"))
        assert status == 202, body
        run = body["run"]
        url = f"{operator.gateway_url}/v1/namespaces/{namespace}/sequenceruns/{run}?wait=60s"
        status, answer = request("GET", url, token)
        assert status == 200, answer
        assert (answer["status"]["phase"], answer["status"]["result"]) == ("Finished", "pass")

        def linked_run_finished() -> dict[str, Any] | None:
            runs = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
                G, V, namespace, "sequenceruns", label_selector=f"slipway.dev/parent-run={run}"
            )["items"]
            done = [r for r in runs if (r.get("status") or {}).get("phase") == "Finished"]
            return done[0] if done else None

        prod = wait_for(linked_run_finished, timeout=60, message="the linked prod run finished")
        assert prod["spec"]["stage"] == "prod"
        assert prod["status"]["result"] == "pass"
        # The tool got the callback URL and token and answered through the gateway.
        assert len(tool.events("checknumber")) == 2
        assert tool.callbacks
        assert all(code == 202 for code, _ in tool.callbacks), tool.callbacks

        # What Argo CD would show for these objects (manifests/argocd health checks).
        dev = k8s.get("sequenceruns", run)
        health = run_health_check("SequenceRun", dev)
        assert health["status"] == "Healthy"
        assert health["message"].startswith("pass: sequence dev.sequence-one finished with pass")
        execution = k8s.get("taskexecutions", dev["status"]["tasks"][0]["execution"])
        assert run_health_check("TaskExecution", execution)["status"] == "Healthy"
        assert run_health_check("Shipyard", k8s.get("shipyards", "osint"))["status"] == "Healthy"
    finally:
        code = operator.stop()
    log = operator.log()
    assert code in (0, -signal.SIGTERM), log
    assert "Traceback" not in log, log
    refused = [line for line in log.splitlines() if REFUSED.search(line)]
    assert not refused, log


def _job_provider(k8s: Cluster, task: str, kwok: dict[str, str]) -> None:
    """A job provider for `task`; `kwok` annotations script what its "container" does
    (operator/slipway/devcluster/stages.yaml)."""
    template = {
        "metadata": {"annotations": kwok},
        "spec": {"containers": [{"name": "main", "image": "example.test/checknumber:1"}]},
    }
    k8s.create("taskproviders", "TaskProvider", task, {"task": task, "job": {"template": template}})


@pytest.mark.usefixtures("namespaced_mode")
def test_the_operator_with_its_own_token_runs_jobs_and_deletes_an_aborted_one(
    install: Install,
    operator_kubeconfig: Path,
    api_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    """With its own token only, the operator runs a Job and deletes an aborted one."""
    install.grant(namespace)
    k8s = Cluster(api_client, namespace)
    k8s.shipyard("jobs", [stage("dev", sequence("quick", "quick"), sequence("slow", "slow"))])
    verdict = json.dumps({"result": "pass", "message": "checked in a Job"})
    _job_provider(k8s, "quick", {"slipway.dev/kwok-termination-message": verdict})
    _job_provider(k8s, "slow", {"slipway.dev/kwok-run-duration": "1h"})
    batch = client.BatchV1Api(api_client)
    operator = OperatorProcess(
        namespace,
        tmp_path / "operator.log",
        env={
            "KUBECONFIG": str(operator_kubeconfig),
            "SLIPWAY_LEASE_NAMESPACE": install.namespace,
        },
    )
    operator.start()
    try:
        k8s.run("quick-1", "jobs", "dev", "quick")
        status = k8s.finished("quick-1")
        assert status["result"] == "pass", status
        assert "checked in a Job" in status["tasks"][0]["message"], status

        k8s.run("slow-1", "jobs", "dev", "slow")

        def running_job() -> bool:
            jobs = batch.list_namespaced_job(namespace, label_selector="slipway.dev/run=slow-1")
            return bool(jobs.items) and bool(jobs.items[0].status.active)

        wait_for(running_job, message="the slow run's Job is running")
        k8s.custom.patch_namespaced_custom_object(
            G, V, namespace, "sequenceruns", "slow-1", {"spec": {"abort": True}}
        )
        status = k8s.finished("slow-1")
        assert (status["result"], status["reason"]) == ("fail", "Aborted"), status

        def job_deleted() -> bool:
            jobs = batch.list_namespaced_job(namespace, label_selector="slipway.dev/run=slow-1")
            return all(job.metadata.deletion_timestamp for job in jobs.items)

        wait_for(job_deleted, message="the aborted run's Job deleted")
    finally:
        code = operator.stop()
    log = operator.log()
    assert code in (0, -signal.SIGTERM), log
    assert "Traceback" not in log, log
    refused = [line for line in log.splitlines() if REFUSED.search(line)]
    assert not refused, log


#: (verb, resource, where, allowed). `where`: "all" (every namespace), "work" (a namespace
#: granted slipway-namespace), "other" (one that was not), "kube-system", "operator" (the
#: install's own namespace), or "" (cluster).
CAN_I = [
    # What the code needs (see the comments in manifests/base/rbac-*.yaml).
    ("watch", "sequenceruns.slipway.dev", "all", True),
    ("patch", "sequenceruns.slipway.dev/status", "all", True),
    # Workers, not kopf daemons: no finalizers, so no patch of the runs themselves.
    ("patch", "sequenceruns.slipway.dev", "all", False),
    ("patch", "taskexecutions.slipway.dev", "all", False),
    ("create", "taskexecutions.slipway.dev", "all", True),
    ("patch", "shipyards.slipway.dev", "all", True),
    ("watch", "jobs.batch", "all", True),
    ("watch", "pods", "all", True),
    ("create", "events", "all", True),
    ("create", "tokenreviews.authentication.k8s.io", "", True),
    ("create", "subjectaccessreviews.authorization.k8s.io", "", True),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", "", True),
    ("create", "secrets", "work", True),
    ("get", "secrets", "work", True),
    ("create", "jobs.batch", "work", True),
    ("delete", "jobs.batch", "work", True),
    # Secrets: only by name, only where granted; never listed, never cluster-wide.
    ("list", "secrets", "all", False),
    ("list", "secrets", "work", False),
    ("watch", "secrets", "work", False),
    ("get", "secrets", "other", False),
    ("get", "secrets", "kube-system", False),
    ("create", "secrets", "other", False),
    # No workloads outside granted namespaces, and never a Pod directly.
    ("create", "jobs.batch", "other", False),
    ("create", "jobs.batch", "kube-system", False),
    ("create", "pods", "work", False),
    ("create", "pods", "all", False),
    ("delete", "pods", "work", False),
    ("create", "deployments.apps", "work", False),
    # The history clean-up deletes finished runs (what they own goes by owner references);
    # the operator deletes no other kind of its own and never touches the cluster.
    ("delete", "sequenceruns.slipway.dev", "all", True),
    ("delete", "taskexecutions.slipway.dev", "all", False),
    ("update", "sequenceruns.slipway.dev", "all", False),
    ("list", "namespaces", "", False),
    ("delete", "namespaces", "", False),
    ("create", "namespaces", "", False),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    ("create", "rolebindings.rbac.authorization.k8s.io", "work", False),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", "", False),
    ("create", "serviceaccounts/token", "work", False),
    ("impersonate", "serviceaccounts", "all", False),
    # Member Leases: only in the operator's own namespace.
    ("get", "leases.coordination.k8s.io", "operator", True),
    ("patch", "leases.coordination.k8s.io", "operator", True),
    ("create", "leases.coordination.k8s.io", "operator", True),
    ("list", "leases.coordination.k8s.io", "operator", True),
    ("create", "leases.coordination.k8s.io", "work", False),
    ("patch", "leases.coordination.k8s.io", "kube-system", False),
    ("list", "leases.coordination.k8s.io", "all", False),
]


def test_the_operator_can_do_no_more_than_the_code_needs(
    install: Install, namespace: str, api_client: client.ApiClient
) -> None:
    """`kubectl auth can-i --as` the operator: yes to what the code calls, no beyond."""
    install.grant(namespace)
    other = f"{namespace}-other"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": other}})
    places = {
        "work": namespace,
        "other": other,
        "kube-system": "kube-system",
        "operator": install.namespace,
    }
    try:
        wrong = []
        for verb, resource, where, allowed in CAN_I:
            scope = ["--all-namespaces"] if where == "all" else []
            if where in places:
                scope = ["-n", places[where]]
            # `kind.group/status` names a subresource, which can-i takes as --subresource
            # (a `/x` suffix alone would be read as an object's name).
            kind, _, subresource = resource.partition("/")
            extra = [f"--subresource={subresource}"] if subresource else []
            target = kind if extra else resource
            answer = kubectl(
                "auth", "can-i", verb, target, *extra, f"--as={install.user}", *scope, check=False
            )
            assert answer.stdout.strip() in ("yes", "no"), answer.stderr
            if (answer.stdout.strip() == "yes") != allowed:
                wrong.append((verb, resource, where, answer.stdout.strip()))
        assert not wrong, f"can-i answered differently than expected: {wrong}"
    finally:
        client.CoreV1Api(api_client).delete_namespace(other)


def test_the_argocd_runs_folder_is_accepted_by_the_api_server(namespace: str) -> None:
    """The Argo CD runs folder passes the API server's validation (server dry run)."""
    folder = ROOT / "manifests" / "argocd" / "runs"
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        str(folder),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(list(folder.glob("*.yaml")))
