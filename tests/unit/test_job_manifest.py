"""The Job built for one attempt of a job provider: every field, from the Pod template."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from slipway.api.taskexecution import TaskExecutionSpec
from slipway.engine.job_manifest import (
    ANNOTATION_ATTEMPT,
    ANNOTATION_EXECUTION,
    ANNOTATION_PROVIDER,
    ANNOTATION_TRIGGERED_ID,
    DEFAULT_TTL_SECONDS,
    build_job,
    job_annotations,
    job_labels,
    job_name,
)

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "osint"}, "annotations": {"note": "kept"}},
    "spec": {
        "containers": [
            {"name": "main", "image": "ghcr.io/example/checknumber:1", "args": ["--fast"]}
        ]
    },
}
LABELS = {"slipway.dev/run": "check-1", "slipway.dev/task": "checknumber"}
ANNOTATIONS = {"slipway.dev/triggered-id": "ns/check-1-0-checknumber/p/1"}
EVENT = json.dumps({"id": "ns/check-1-0-checknumber/p/1", "data": {"number": "+44"}})


def build(template: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "check-1-0-checknumber-p-1",
        "execution": "check-1-0-checknumber",
        "execution_uid": "uid-1",
        "labels": LABELS,
        "annotations": ANNOTATIONS,
        "event": EVENT,
        "callback_url": "http://gw:8080/v1/namespaces/ns/events",
        "token_secret": "check-1-0-checknumber-callback",
        "token_key": "token",
        "timeout_seconds": 600,
    }
    args.update(overrides)
    return build_job(TEMPLATE if template is None else template, **args)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container["env"]}


def test_job_name_is_execution_provider_and_attempt() -> None:
    """A short name is `<execution>-<provider>-<attempt>`, the same every time."""
    assert job_name("check-1-0-checknumber", "phone", 2) == "check-1-0-checknumber-phone-2"
    assert job_name("check-1-0-checknumber", "phone", 2) == job_name(
        "check-1-0-checknumber", "phone", 2
    )


def test_long_job_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    """A long name is at most 63 characters, a valid name, stable, and distinct per input."""
    execution = "a-very-long-sequence-run-name-made-by-a-gateway-0123456789-12-extract-metadata"
    names = {
        job_name(execution, provider, attempt) for provider in ("p", "q") for attempt in (1, 2)
    }
    assert len(names) == 4
    for name in names:
        assert len(name) <= 63
        assert DNS_SUBDOMAIN.fullmatch(name), name
    assert job_name(execution, "p", 1) == job_name(execution, "p", 1)


def test_cut_name_never_ends_the_head_with_a_dash_or_dot() -> None:
    """Cutting at a '-' or '.' does not leave '--' or '.-' before the hash."""
    name = job_name("x" * 53 + "-.y" * 10, "p", 1)
    assert len(name) <= 63
    assert "--" not in name
    assert ".-" not in name


def test_labels_and_annotations_come_from_the_execution() -> None:
    """Labels name shipyard, stage, sequence, task and run; annotations the execution,
    provider, attempt and triggered id."""
    spec = TaskExecutionSpec.model_validate(
        {
            "run": "check-1",
            "index": 0,
            "shipyard": "osint",
            "stage": "dev",
            "sequence": "sequence-one",
            "task": {"name": "checknumber"},
            "context": "ctx",
        }
    )
    assert job_labels(spec) == {
        "slipway.dev/shipyard": "osint",
        "slipway.dev/stage": "dev",
        "slipway.dev/sequence": "sequence-one",
        "slipway.dev/task": "checknumber",
        "slipway.dev/run": "check-1",
    }
    assert job_annotations("check-1-0-checknumber", "phone", 3, "ns/x/phone/3") == {
        ANNOTATION_EXECUTION: "check-1-0-checknumber",
        ANNOTATION_PROVIDER: "phone",
        ANNOTATION_TRIGGERED_ID: "ns/x/phone/3",
        ANNOTATION_ATTEMPT: "3",
    }


def test_job_metadata_owner_and_labels() -> None:
    """The Job is named as asked, labelled and annotated, and controlled by the execution."""
    job = build()
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["name"] == "check-1-0-checknumber-p-1"
    assert meta["labels"] == LABELS
    assert meta["annotations"] == ANNOTATIONS
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "slipway.dev/v1alpha1",
            "kind": "TaskExecution",
            "name": "check-1-0-checknumber",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_job_spec_one_try_deadline_and_ttl() -> None:
    """backoffLimit 0 (retries are the engine's attempts), the timeout as
    activeDeadlineSeconds, and a TTL after finishing."""
    spec = build()["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == DEFAULT_TTL_SECONDS
    assert build(ttl_seconds=60)["spec"]["ttlSecondsAfterFinished"] == 60


def test_no_timeout_means_no_deadline_and_tiny_timeouts_round_up() -> None:
    """A task without `timeout` gets no activeDeadlineSeconds; 0 becomes 1 (the minimum)."""
    assert "activeDeadlineSeconds" not in build(timeout_seconds=None)["spec"]
    assert build(timeout_seconds=0)["spec"]["activeDeadlineSeconds"] == 1


def test_pod_labels_and_annotations_merge_with_ours_winning() -> None:
    """The template's Pod labels and annotations stay; ours are added and override."""
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["labels"]["slipway.dev/run"] = "forged"
    meta = build(template)["spec"]["template"]["metadata"]
    assert meta["labels"] == {"team": "osint", **LABELS}
    assert meta["annotations"] == {"note": "kept", **ANNOTATIONS}


def test_restart_policy_is_never_even_if_the_template_says_otherwise() -> None:
    """A Pod restart would be a hidden retry: restartPolicy is always Never."""
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["restartPolicy"] = "OnFailure"
    assert pod_spec(build(template))["restartPolicy"] == "Never"


def test_contract_environment_on_every_container() -> None:
    """SLIPWAY_EVENT, SLIPWAY_CALLBACK_URL and SLIPWAY_CALLBACK_TOKEN (from the Secret) reach
    every container and init container; the template's other variables stay."""
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["containers"][0]["env"] = [
        {"name": "MODE", "value": "fast"},
        {"name": "SLIPWAY_EVENT", "value": "forged"},
    ]
    template["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    template["spec"]["initContainers"] = [{"name": "fetch", "image": "busybox"}]
    spec = pod_spec(build(template))
    for container in [*spec["containers"], *spec["initContainers"]]:
        env = env_of(container)
        assert env["SLIPWAY_EVENT"] == {"name": "SLIPWAY_EVENT", "value": EVENT}
        assert env["SLIPWAY_CALLBACK_URL"]["value"] == "http://gw:8080/v1/namespaces/ns/events"
        assert env["SLIPWAY_CALLBACK_TOKEN"] == {
            "name": "SLIPWAY_CALLBACK_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "check-1-0-checknumber-callback", "key": "token"}
            },
        }
    main = spec["containers"][0]
    assert [e["name"] for e in main["env"]].count("SLIPWAY_EVENT") == 1
    assert env_of(main)["MODE"]["value"] == "fast"
    assert main["args"] == ["--fast"]


def test_termination_message_falls_back_to_logs_unless_set() -> None:
    """terminationMessagePolicy is FallbackToLogsOnError unless the container sets one."""
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["containers"].append(
        {"name": "file", "image": "busybox", "terminationMessagePolicy": "File"}
    )
    containers = pod_spec(build(template))["containers"]
    assert containers[0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert containers[1]["terminationMessagePolicy"] == "File"


def test_restricted_pod_security_defaults() -> None:
    """A template with no security settings gets the "restricted" Pod Security defaults."""
    spec = pod_spec(build())
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert spec["automountServiceAccountToken"] is False


def test_template_security_settings_win_key_by_key() -> None:
    """What the template sets is kept; only the keys it leaves unset get defaults."""
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["securityContext"] = {"runAsNonRoot": False, "runAsUser": 0}
    template["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": True,
        "capabilities": {"add": ["NET_BIND_SERVICE"]},
        "readOnlyRootFilesystem": True,
    }
    template["spec"]["containers"].append(
        {
            "name": "sidecar",
            "image": "busybox",
            "securityContext": {"capabilities": {"drop": ["NET_RAW"]}},
        }
    )
    spec = pod_spec(build(template))
    assert spec["securityContext"] == {
        "runAsNonRoot": False,
        "runAsUser": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": True,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert spec["containers"][1]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["NET_RAW"]},
    }


def test_template_seccomp_profile_is_kept() -> None:
    """A template's own seccompProfile (e.g. Localhost) is not replaced."""
    template = copy.deepcopy(TEMPLATE)
    profile = {"type": "Localhost", "localhostProfile": "profiles/tool.json"}
    template["spec"]["securityContext"] = {"seccompProfile": profile}
    assert pod_spec(build(template))["securityContext"]["seccompProfile"] == profile


def test_service_account_keeps_its_token() -> None:
    """A template naming a service account keeps the token mount (the tool needs the API);
    an explicit automountServiceAccountToken is kept too."""
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["serviceAccountName"] = "reader"
    assert "automountServiceAccountToken" not in pod_spec(build(template))
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["automountServiceAccountToken"] = True
    assert pod_spec(build(template))["automountServiceAccountToken"] is True


def test_template_is_not_changed() -> None:
    """Building is pure: the provider's template is left as it was."""
    template = copy.deepcopy(TEMPLATE)
    build(template)
    assert template == TEMPLATE


@pytest.mark.parametrize(
    "template", [{}, {"spec": {}}, {"spec": {"containers": []}}, {"metadata": {}}]
)
def test_template_without_containers_is_refused(template: dict[str, Any]) -> None:
    """A template with no containers is a ValueError saying what is missing."""
    with pytest.raises(ValueError, match=r"spec\.containers"):
        build(template)


def test_jobs_to_clean_up_are_named_from_the_provider_entries() -> None:
    """The Jobs of the ended providers: the name an entry recorded, else the derived one;
    never for an entry not triggered, another provider, or a non-Job provider without one."""
    from slipway.api.taskexecution import ProviderRecord, TaskExecutionStatus
    from slipway.api.taskprovider import ProviderKind
    from slipway.engine.job_manifest import jobs_to_clean_up

    status = TaskExecutionStatus(
        providers=[
            ProviderRecord(name="a", kind=ProviderKind.JOB, attempt=2, job="recorded"),
            ProviderRecord(name="b", kind=ProviderKind.JOB, attempt=1),
            ProviderRecord(name="c", kind=ProviderKind.JOB, attempt=0),
            ProviderRecord(name="d", kind=ProviderKind.CLOUD_EVENT, attempt=1),
            ProviderRecord(name="e", kind=ProviderKind.JOB, attempt=1),
        ]
    )
    assert jobs_to_clean_up("ex", status, ["a", "b", "c", "d"]) == ["recorded", "ex-b-1"]
