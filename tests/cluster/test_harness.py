"""The local control plane is a real Kubernetes: CRDs, Jobs through kwok, garbage collection,
service-account tokens, and the operator's entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway.devcluster.cluster import PROCESS_NAMES, ClusterConfig, LocalCluster
from slipway.settings import Settings
from tests.helpers import kubectl, wait_for

GROUP = "harness.slipway.dev"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _job(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.invalid/tool:1"}],
                },
            },
        },
    }


def _job_condition(batch: client.BatchV1Api, namespace: str, name: str) -> str | None:
    job = batch.read_namespaced_job_status(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def test_custom_resource_round_trips_with_status_subresource(
    api_client: client.ApiClient, namespace: str
) -> None:
    """A CRD is served; status is written only through the status subresource."""
    ext = client.ApiextensionsV1Api(api_client)
    try:
        ext.create_custom_resource_definition(WIDGET_CRD)
    except ApiException as error:  # created by an earlier session of the suite
        if error.status != 409:
            raise
    wait_for(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in ext.read_custom_resource_definition(f"widgets.{GROUP}").status.conditions or []
        ),
        message="CRD established",
    )
    custom = client.CustomObjectsApi(api_client)
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3},
    }
    wait_for(
        lambda: custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", body),
        message="widget created",
    )
    # A status sent to the main resource is ignored...
    custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, "widgets", "w", {"status": {"phase": "Ignored"}}
    )
    # ...and one sent to the status subresource is kept.
    custom.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, "widgets", "w", {"status": {"phase": "Ready"}}
    )
    widget = custom.get_namespaced_custom_object(GROUP, "v1", namespace, "widgets", "w")
    assert widget["spec"] == {"size": 3}
    assert widget["status"] == {"phase": "Ready"}


def test_job_completes_through_scheduler_and_kwok(
    api_client: client.ApiClient, namespace: str
) -> None:
    """A Job gets a Pod that is scheduled to the kwok node, runs, and completes."""
    batch = client.BatchV1Api(api_client)
    batch.create_namespaced_job(namespace, _job("ok"))
    assert wait_for(lambda: _job_condition(batch, namespace, "ok"), timeout=60) == "Complete"
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector="job-name=ok")
    assert [p.spec.node_name for p in pods.items] == ["kwok-node-0"]
    assert pods.items[0].status.phase == "Succeeded"


def test_job_pod_can_be_made_to_fail_with_exit_code_and_message(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Annotations script a non-zero exit and a termination message; the Job fails."""
    batch = client.BatchV1Api(api_client)
    annotations = {
        "slipway.dev/kwok-exit-code": "3",
        "slipway.dev/kwok-termination-message": '{"result": "fail", "message": "no such number"}',
    }
    batch.create_namespaced_job(namespace, _job("bad", annotations))
    assert wait_for(lambda: _job_condition(batch, namespace, "bad"), timeout=60) == "Failed"
    pod = (
        client.CoreV1Api(api_client)
        .list_namespaced_pod(namespace, label_selector="job-name=bad")
        .items[0]
    )
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Failed"
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert terminated.message == '{"result": "fail", "message": "no such number"}'


def test_deleting_an_owner_garbage_collects_its_dependent(
    api_client: client.ApiClient, namespace: str
) -> None:
    """The controller-manager's garbage collector follows owner references."""
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(dependent_gone, timeout=60, message="dependent garbage-collected")


def test_service_account_tokens_are_issued_and_reviewed(
    api_client: client.ApiClient, namespace: str
) -> None:
    """TokenRequest, TokenReview and SubjectAccessReview answer, and RBAC denies by default."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "tool"}})
    token = core.create_namespaced_service_account_token(
        "tool", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    auth = client.AuthenticationV1Api(api_client)
    review = auth.create_token_review({"spec": {"token": token}})
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:tool"
    bogus = auth.create_token_review({"spec": {"token": token[:-4] + "abcd"}})
    assert not bogus.status.authenticated
    sar = client.AuthorizationV1Api(api_client).create_subject_access_review(
        {
            "spec": {
                "user": review.status.user.username,
                "groups": review.status.user.groups,
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": "create",
                    "resource": "pods",
                },
            }
        }
    )
    assert sar.status.allowed is False


def test_kubectl_sees_a_ready_kwok_node() -> None:
    """`kubectl get nodes` against the local cluster shows the kwok node Ready."""
    out = kubectl("get", "nodes", "--no-headers").stdout
    assert "kwok-node-0" in out
    assert " Ready " in out


def test_operator_entry_point_starts_and_stops_cleanly(operator: Any) -> None:
    """`python -m slipway run` starts kopf against the cluster and exits 0 on SIGTERM."""
    assert operator.process.poll() is None, operator.log()
    assert operator.stop() == 0, operator.log()
    assert "Traceback" not in operator.log()


def test_up_reuses_a_running_control_plane(kubeconfig: Path) -> None:
    """A second `up` finds the running control plane healthy and starts nothing."""
    settings = Settings.from_env()
    cluster = LocalCluster(ClusterConfig(cache_dir=settings.cache_dir, port=settings.cluster_port))
    before = cluster.status().pids
    assert cluster.up() is False
    assert cluster.status().pids == before


def test_down_stops_every_process(tmp_path: Path) -> None:
    """A separate control plane (own state, own ports) starts, and `down` leaves no process."""
    settings = Settings.from_env()
    (tmp_path / "bin").symlink_to(settings.cache_dir / "bin")  # reuse the built binaries
    cluster = LocalCluster(ClusterConfig(cache_dir=tmp_path, port=settings.cluster_port + 1000))
    try:
        assert cluster.up() is True
        pids = [pid for pid in cluster.status().pids.values() if pid]
        assert len(pids) == 5
    finally:
        stopped = cluster.down()
    assert sorted(stopped) == sorted(PROCESS_NAMES)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"pid {pid} survived"
    assert not cluster.status().any_process
    assert not (tmp_path / "cluster" / "etcd").exists()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True
