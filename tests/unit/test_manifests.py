"""The install manifests as `kubectl kustomize` renders them: what the Deployment promises
(two replicas rolled one at a time, a disruption budget, restricted security context,
read-only root, probes, resources), RBAC without wildcards and with a named code path for
every rule, CRDs that are crds/ itself, and a Dockerfile and docs that agree with them."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.api.sequencerun import SequenceRunSpec
from slipway.api.shipyard import ShipyardSpec
from slipway.api.taskprovider import TaskProviderSpec
from slipway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
LOCAL = ROOT / "manifests" / "overlays" / "local"
ARGOCD = ROOT / "manifests" / "argocd"
RBAC_FILES = ("rbac-operator.yaml", "rbac-namespace.yaml", "rbac-people.yaml")


@cache
def render(folder: Path) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize <folder>` prints."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def only(objects: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> Any:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(objects: tuple[dict[str, Any], ...]) -> Any:
    [operator] = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator


def test_base_renders_the_whole_install() -> None:
    """The base renders CRDs, namespace, ServiceAccount, RBAC, Deployment, the uploads'
    PersistentVolumeClaim and Service."""
    objects = render(BASE)
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted(
        [
            ("CustomResourceDefinition", "sequenceruns.slipway.dev"),
            ("CustomResourceDefinition", "shipyards.slipway.dev"),
            ("CustomResourceDefinition", "taskexecutions.slipway.dev"),
            ("CustomResourceDefinition", "taskproviders.slipway.dev"),
            ("Namespace", "slipway-system"),
            ("ServiceAccount", "slipway"),
            ("ClusterRole", "slipway-operator"),
            ("ClusterRole", "slipway-namespace"),
            ("ClusterRole", "slipway-approver"),
            ("ClusterRole", "slipway-run-controller"),
            ("ClusterRoleBinding", "slipway-operator"),
            ("Role", "slipway-callback-key"),
            ("RoleBinding", "slipway-callback-key"),
            ("Role", "slipway-members"),
            ("RoleBinding", "slipway-members"),
            ("Deployment", "slipway"),
            ("PersistentVolumeClaim", "slipway-uploads"),
            ("PodDisruptionBudget", "slipway"),
            ("Service", "slipway"),
        ]
    )
    namespaced = [
        o
        for o in objects
        if o["kind"]
        in ("ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "PodDisruptionBudget")
    ]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"slipway-system"}


def test_base_crds_are_the_generated_crds() -> None:
    """The base's CRDs are exactly crds/*.yaml, every one of them."""
    rendered = {
        o["metadata"]["name"]: o for o in render(BASE) if o["kind"] == "CustomResourceDefinition"
    }
    generated = {}
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        generated[crd["metadata"]["name"]] = crd
    assert rendered.keys() == generated.keys()
    for name, crd in generated.items():
        labels = rendered[name]["metadata"].pop("labels")
        assert labels == {"app.kubernetes.io/part-of": "slipway"}
        assert rendered[name] == crd, name


def test_deployment_runs_two_active_replicas_rolled_one_at_a_time() -> None:
    """Active-active (docs/scaling.md): two replicas, RollingUpdate that never has fewer
    than two, preferred anti-affinity across nodes, a budget of one voluntary disruption,
    and each replica named after its Pod with its Leases in its own namespace."""
    objects = render(BASE)
    deployment = only(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["template"]["spec"]["serviceAccountName"] == "slipway"
    [term] = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = only(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["SLIPWAY_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["SLIPWAY_LEASE_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }


def test_lease_rights_are_only_in_the_operator_namespace() -> None:
    """Leases are granted by a Role in the operator's namespace, never cluster-wide."""
    objects = render(BASE)
    role = only(objects, "Role", "slipway-members")
    assert role["metadata"]["namespace"] == "slipway-system"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "create", "patch", "delete"],
        }
    ]
    binding = only(objects, "RoleBinding", "slipway-members")
    assert binding["roleRef"]["name"] == "slipway-members"
    for cluster_role in (o for o in objects if o["kind"] == "ClusterRole"):
        for rule in cluster_role["rules"]:
            assert "coordination.k8s.io" not in rule["apiGroups"], cluster_role["metadata"]


def test_deployment_meets_pod_security_restricted() -> None:
    """The operator Pod meets Pod Security restricted, with a read-only root."""
    pod = only(render(BASE), "Deployment")["spec"]["template"]["spec"]
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert isinstance(security["runAsUser"], int)
    assert security["runAsUser"] > 0
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(render(BASE))
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    kinds = {next(k for k in v if k != "name") for v in pod.get("volumes", [])}
    # The volume types Pod Security "restricted" allows (persistentVolumeClaim: the uploads).
    allowed = {"emptyDir", "configMap", "secret", "projected", "downwardAPI"}
    assert kinds <= allowed | {"persistentVolumeClaim"}


def test_deployment_probes_the_gateway_and_sets_resources() -> None:
    """Probes hit /healthz and /readyz on the gateway port; CPU and memory are bounded."""
    operator = container(render(BASE))
    env = {e["name"]: e.get("value", "") for e in operator["env"]}
    port = int(env["SLIPWAY_GATEWAY_ADDRESS"].rpartition(":")[2])
    [named] = [p for p in operator["ports"] if p["name"] == "http"]
    assert named["containerPort"] == port
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for bound in ("requests", "limits"):
        assert set(operator["resources"][bound]) == {"cpu", "memory"}


def test_deployment_settings_are_known_and_point_at_the_service() -> None:
    """Every SLIPWAY_* variable is a known setting; the callback URL is the Service."""
    objects = render(BASE)
    env = {e["name"]: e.get("value", "from-the-pod") for e in container(objects)["env"]}
    settings = Settings.from_env(env)
    service = only(objects, "Service")
    meta = service["metadata"]
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    port = ports["http"]
    assert settings.gateway_url == f"http://{meta['name']}.{meta['namespace']}.svc:{port['port']}"
    assert port["targetPort"] == "http"
    # /metrics on its own port, named `metrics` in the Pod and the Service alike
    [metrics] = [p for p in container(objects)["ports"] if p["name"] == "metrics"]
    assert metrics["containerPort"] == settings.metrics_port > 0
    assert ports["metrics"]["targetPort"] == "metrics"
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_rbac_has_no_wildcards_and_no_secrets_cluster_wide() -> None:
    """No wildcards; Secrets and Job writes only in the per-namespace role."""
    objects = render(BASE)
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterRole"}
    for role in roles.values():
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], rule
            assert "resourceNames" not in rule
            assert "nonResourceURLs" not in rule
    cluster_wide = roles["slipway-operator"]["rules"]
    assert all("secrets" not in r["resources"] for r in cluster_wide)
    for rule in cluster_wide:
        if "jobs" in rule["resources"] or "pods" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
    per_namespace = roles["slipway-namespace"]["rules"]
    assert {tuple(r["resources"]): tuple(r["verbs"]) for r in per_namespace} == {
        ("secrets",): ("get", "create"),
        ("jobs",): ("create", "delete"),
    }
    bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert sorted(b["roleRef"]["name"] for b in bindings) == [
        "slipway-callback-key",
        "slipway-members",
        "slipway-operator",
    ]
    # The only Secret right in the operator's own namespace: the callback key's.
    key_role = only(objects, "Role", "slipway-callback-key")
    assert key_role["metadata"]["namespace"] == "slipway-system"
    assert [(r["resources"], r["verbs"]) for r in key_role["rules"]] == [
        (["secrets"], ["get", "create"])
    ]


@pytest.mark.parametrize("name", RBAC_FILES)
def test_every_rbac_rule_names_the_code_that_needs_it(name: str) -> None:
    """Each rule is preceded by a comment, and every source file a comment names exists."""
    text = (BASE / name).read_text()
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert rules
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"rule without a comment: {lines[i]}"
    named = set(re.findall(r"operator/slipway/[\w/]+\.py", text))
    assert named
    missing = [path for path in sorted(named) if not (ROOT / path).exists()]
    assert not missing


def test_uploads_volume_is_shared_by_every_replica() -> None:
    """Any replica's gateway may receive an upload, the trigger naming it, or a tool fetching
    it: the base's claim is ReadWriteMany; the local overlay's is ReadWriteOnce (one-node
    clusters offer no more), so there the replicas are required to share a node."""
    base = only(render(BASE), "PersistentVolumeClaim", "slipway-uploads")
    assert base["spec"]["accessModes"] == ["ReadWriteMany"]
    local = render(LOCAL)
    assert only(local, "PersistentVolumeClaim", "slipway-uploads")["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    deployment = only(local, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    affinity = deployment["spec"]["template"]["spec"]["affinity"]
    assert "podAntiAffinity" not in affinity
    [term] = affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_local_overlay_uses_the_locally_built_image() -> None:
    """The local overlay runs `slipway:dev` (what `make image` builds) and never pulls it."""
    operator = container(render(LOCAL))
    assert operator["image"] == "slipway:dev"
    assert operator["imagePullPolicy"] == "Never"
    assert container(render(BASE))["image"] == "slipway:0.1.0"


def test_dockerfile_runs_as_the_deployments_user() -> None:
    """The image is multi-stage, wheel-based, and runs `slipway run` as the Pod's UID."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", dockerfile, re.MULTILINE)
    assert len(stages) >= 2
    final = dockerfile[dockerfile.rindex("\nFROM ") :]
    [user] = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    pod = only(render(BASE), "Deployment")["spec"]["template"]["spec"]
    uid, _, gid = user.partition(":")
    assert int(uid) == pod["securityContext"]["runAsUser"]
    assert int(gid) == pod["securityContext"]["runAsGroup"]
    assert 'ENTRYPOINT ["slipway", "run"]' in final
    assert "--no-index" in final  # installs only the wheels built in the first stage
    assert not re.search(r"apt-get|gcc|build-essential", final)


def test_install_doc_documents_every_setting() -> None:
    """docs/install.md's configuration table names every SLIPWAY_* setting."""
    doc = (ROOT / "docs" / "install.md").read_text()
    names = [
        f"SLIPWAY_{field.upper()}"
        for field in Settings.model_fields
        if field != "kubebuilder_assets"
    ]
    missing = [name for name in names if f"`{name}`" not in doc]
    assert not missing


def _runs_folder() -> list[dict[str, Any]]:
    objects = []
    for path in sorted((ARGOCD / "runs").glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def test_argocd_applications_point_at_this_repository_layout() -> None:
    """The example Applications sync existing folders with the documented options."""
    apps = {
        a["metadata"]["name"]: a
        for a in yaml.safe_load_all((ARGOCD / "application.yaml").read_text())
    }
    assert set(apps) == {"slipway", "slipway-runs"}
    for app in apps.values():
        assert (ROOT / app["spec"]["source"]["path"]).is_dir()
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
        assert "finalizers" not in app["metadata"]
    [image] = apps["slipway"]["spec"]["source"]["kustomize"]["images"]
    assert image.startswith("slipway=")
    assert apps["slipway"]["spec"]["source"]["path"] == "manifests/base"
    runs = apps["slipway-runs"]["spec"]["syncPolicy"]["syncOptions"]
    assert {"ApplyOutOfSyncOnly=true", "CreateNamespace=true", "Replace=false"} <= set(runs)


def test_argocd_runs_are_once_only_and_synced_last() -> None:
    """Example runs have fixed names, sync last, are valid, and are pruned like anything else
    when their file leaves git: no Prune=false or IgnoreExtraneous (docs/argocd.md, "Deleting
    runs": a run kept beside git could only be deleted outside Argo CD, which re-creates it)."""
    objects = _runs_folder()
    runs = [o for o in objects if o["kind"] == "SequenceRun"]
    others = [o for o in objects if o["kind"] != "SequenceRun"]
    assert runs
    assert {o["kind"] for o in others} == {"RoleBinding", "Shipyard", "TaskProvider"}
    other_waves = {
        int(o["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))
        for o in others
    }
    for run in runs:
        meta = run["metadata"]
        assert meta["name"]
        assert "generateName" not in meta
        assert "namespace" not in meta
        notes = meta["annotations"]
        assert "Prune=false" not in notes.get("argocd.argoproj.io/sync-options", "")
        assert "argocd.argoproj.io/compare-options" not in notes
        assert int(notes["argocd.argoproj.io/sync-wave"]) > max(other_waves)
        assert run["spec"].get("abort", True) is True
        SequenceRunSpec.model_validate(run["spec"])
    for obj in others:
        if obj["kind"] == "Shipyard":
            ShipyardSpec.model_validate(obj["spec"])
        if obj["kind"] == "TaskProvider":
            TaskProviderSpec.model_validate(obj["spec"])
        if obj["kind"] == "RoleBinding":
            assert obj["roleRef"]["name"] == "slipway-namespace"
