"""The real install: `manifests/overlays/local` applied, the operator running from its image as
a Deployment on the real node with its own ServiceAccount, talking to the API server from its
Pod like in any cluster, and to tools deployed as Deployments behind Services (kube-proxy on
the real node; no cluster DNS, so Service addresses are used instead of names).

As in tests/cluster/test_install.py, the overlay is applied through a kustomization that
renames what would collide with other tests (namespace, cluster-scoped names) and leaves the
CRDs out; it also confines the operator to the test's namespace (SLIPWAY_NAMESPACE), so it
never acts on another test's runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from slipway.devcluster.node import NODE_NAME, RealNode
from tests.cluster.objects import Cluster
from tests.helpers import kubectl, wait_for
from tests.real.conftest import on_real_node
from tests.real.test_real_jobs import job_provider, one_task, python

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "manifests" / "overlays" / "local"
SHIPYARD = ROOT / "manifests" / "examples" / "shipyard-osint.yaml"
LABELS = "app.kubernetes.io/name=slipway,app.kubernetes.io/component=operator"

pytestmark = pytest.mark.usefixtures("crds")


def _delete(kind: str, api_version: str) -> dict[str, Any]:
    patch = {"$patch": "delete", "apiVersion": api_version, "kind": kind}
    return {"target": {"kind": kind}, "patch": yaml.safe_dump({**patch, "metadata": {"name": "x"}})}


@pytest.fixture
def install(
    namespace: str, api_client: client.ApiClient, real_node: RealNode, tmp_path: Path
) -> Iterator[str]:
    """The overlay applied for this test; yields the operator's namespace (`r-<suffix>-…`;
    every other name ends in `-<suffix>`)."""
    suffix = uuid.uuid4().hex[:8]
    system = f"r-{suffix}-slipway-system"
    env_patch = [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/env/-",
            "value": {"name": "SLIPWAY_NAMESPACE", "value": namespace},
        },
        # One replica: these tests follow one operator Pod through a kill. The uploads claim
        # needs a StorageClass the local plane does not have; uploads are not tested here.
        {"op": "replace", "path": "/spec/replicas", "value": 1},
        {
            "op": "replace",
            "path": "/spec/template/spec/volumes/1",
            "value": {"name": "uploads", "emptyDir": {"sizeLimit": "64Mi"}},
        },
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(OVERLAY, tmp_path)],
        "namespace": system,
        "nameSuffix": f"-{suffix}",
        "patches": [
            _delete("CustomResourceDefinition", "apiextensions.k8s.io/v1"),
            _delete("PersistentVolumeClaim", "v1"),
            {"target": {"kind": "Deployment"}, "patch": yaml.safe_dump(env_patch)},
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    rbac = client.RbacAuthorizationV1Api(api_client)
    # One namespace to watch: kopf lists and watches namespaces to match it (see
    # tests/cluster/test_install.py, namespaced_mode).
    extra = f"slipway-namespaced-mode-{suffix}"
    try:
        applied = kubectl("apply", "--server-side", "-k", str(tmp_path), check=False)
        assert applied.returncode == 0, applied.stderr
        rbac.create_cluster_role(
            {
                "metadata": {"name": extra},
                "rules": [
                    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
                ],
            }
        )
        subject = {"kind": "ServiceAccount", "name": f"slipway-{suffix}", "namespace": system}
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": extra},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": extra,
                },
                "subjects": [subject],
            }
        )
        kubectl(
            "create",
            "rolebinding",
            "slipway",
            "-n",
            namespace,
            f"--clusterrole=slipway-namespace-{suffix}",
            f"--serviceaccount={system}:slipway-{suffix}",
        )
        yield system
    finally:
        kubectl("delete", "namespace", system, "--ignore-not-found", "--wait=false")
        kubectl(
            "delete",
            f"clusterrolebinding/slipway-operator-{suffix}",
            f"clusterrole/slipway-operator-{suffix}",
            f"clusterrole/slipway-namespace-{suffix}",
            f"clusterrolebinding/{extra}",
            f"clusterrole/{extra}",
            "--ignore-not-found",
        )


def operator_pod(core: client.CoreV1Api, system: str, other_than: str = "") -> client.V1Pod:
    """The operator's Pod once it runs and is ready (its readiness probe passed)."""

    def ready() -> client.V1Pod | None:
        for pod in core.list_namespaced_pod(system, label_selector=LABELS).items:
            if pod.metadata.name == other_than or pod.metadata.deletion_timestamp:
                continue
            statuses = pod.status.container_statuses or []
            if statuses and all(s.ready for s in statuses):
                return pod
        return None

    return wait_for(ready, timeout=240, interval=1, message="the operator's Pod ready")


def test_the_operator_deployment_runs_on_the_real_node_and_comes_back(
    install: str, namespace: str, api_client: client.ApiClient
) -> None:
    """The Deployment's Pod runs the operator's image on the real node as its
    ServiceAccount, passes its probes and completes a run in a Job; SIGKILLed (its Pod
    deleted at once), it comes back as a new Pod and a run started meanwhile completes, with
    one Job per run."""
    core = client.CoreV1Api(api_client)
    pod = operator_pod(core, install)
    assert pod.spec.node_name == NODE_NAME
    assert pod.spec.service_account_name.startswith("slipway-")
    [status] = pod.status.container_statuses
    assert status.container_id.startswith("containerd://")
    assert status.image.endswith("slipway:dev")

    k8s = Cluster(api_client, namespace)
    one_task(k8s, timeout="5m")
    verdict = "import json; open('/dev/termination-log', 'w').write(json.dumps({'result': 'pass'}))"
    slow = f"import time; time.sleep(15); {verdict}"
    job_provider(k8s, "checknumber", python(slow))
    k8s.run("before", "osint", "dev", "one", {"number": "1"})
    assert k8s.finished("before", timeout=240)["result"] == "pass"
    # The probes kept passing all along: no restart.
    restarted = core.read_namespaced_pod(pod.metadata.name, install)
    assert restarted.status.container_statuses[0].restart_count == 0

    k8s.run("across", "osint", "dev", "one", {"number": "1"})
    batch = client.BatchV1Api(api_client)
    wait_for(
        lambda: batch.list_namespaced_job(namespace, label_selector="slipway.dev/run=across").items,
        timeout=120,
        message="the run's Job created",
    )
    core.delete_namespaced_pod(pod.metadata.name, install, grace_period_seconds=0)
    replacement = operator_pod(core, install, other_than=pod.metadata.name)
    assert replacement.spec.node_name == NODE_NAME
    status = k8s.finished("across", timeout=240)
    assert status["result"] == "pass", status
    jobs = batch.list_namespaced_job(namespace, label_selector="slipway.dev/run=across").items
    assert len(jobs) == 1
    logs = core.read_namespaced_pod_log(replacement.metadata.name, install)
    assert "Traceback" not in logs, logs


def suffix_of(system: str) -> str:
    return system.split("-")[1]


def tool_service(api_client: client.ApiClient, namespace: str, name: str, image: str) -> str:
    """`image` served by a Deployment on the real node behind a Service; returns its URL
    (the Service's address) once a replica is ready."""
    labels = {"app": name}
    security = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    pod = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                "securityContext": security,
            }
        ],
    }
    deployment = {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": on_real_node(pod)},
        },
    }
    client.AppsV1Api(api_client).create_namespaced_deployment(namespace, deployment)
    service = {
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": "http"}]},
    }
    created = client.CoreV1Api(api_client).create_namespaced_service(namespace, service)

    def ready() -> bool:
        found = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace)
        return bool(found.status.ready_replicas)

    wait_for(ready, timeout=240, interval=1, message=f"the {name} Deployment ready")
    return f"http://{created.spec.cluster_ip}:8080"


def test_the_demo_run_completes_through_the_deployment_with_tools_as_services(
    install: str, namespace: str, api_client: client.ApiClient
) -> None:
    """The seed's sequence-one and its linked prod run complete through the operator's
    Deployment, with checknumber deployed from its image as a Deployment and a Service: the
    operator sends the event to the tool's Service, the tool answers at the gateway's."""
    core = client.CoreV1Api(api_client)
    suffix = suffix_of(install)
    gateway = core.read_namespaced_service(f"slipway-{suffix}", install).spec.cluster_ip
    first = operator_pod(core, install)
    kubectl(
        "set",
        "env",
        f"deployment/slipway-{suffix}",
        "-n",
        install,
        f"SLIPWAY_GATEWAY_URL=http://{gateway}:8080",
    )
    pod = operator_pod(core, install, other_than=first.metadata.name)
    assert pod.spec.node_name == NODE_NAME
    url = tool_service(api_client, namespace, "checknumber", "checknumber:dev")
    kubectl("apply", "-n", namespace, "-f", str(SHIPYARD))
    k8s = Cluster(api_client, namespace)
    k8s.provider("phone-checker", "checknumber", url)
    k8s.run("demo-1", "osint", "dev", "sequence-one", {"number": "+44 20 7946 0958"})
    status = k8s.finished("demo-1", timeout=240)
    assert (status["phase"], status["result"]) == ("Finished", "pass"), status
    assert status["data"]["checknumber"]["country"] == "GB", status

    def linked_run_finished() -> dict[str, Any] | None:
        runs = k8s.items("sequenceruns")
        done = [
            r
            for r in runs
            if (r["metadata"].get("labels") or {}).get("slipway.dev/parent-run") == "demo-1"
            and (r.get("status") or {}).get("phase") == "Finished"
        ]
        return done[0] if done else None

    prod = wait_for(linked_run_finished, timeout=240, message="the linked prod run finished")
    assert (prod["spec"]["stage"], prod["status"]["result"]) == ("prod", "pass")
    logs = core.read_namespaced_pod_log(pod.metadata.name, install)
    assert "Traceback" not in logs, logs
