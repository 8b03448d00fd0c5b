"""The seed's sequence-two end to end on the local control plane: the three real photo tools
as HTTP CloudEvent services, the built-in evaluation with tasks/photo-gate's SLO, and three
generated photos served from loopback, each with its expected verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.objects import Cluster, JobView
from tests.conftest import OperatorProcess
from tests.photo_tools import TASKS, ToolServer, image_server, images, run_job

pytestmark = pytest.mark.usefixtures("crds")

SEQUENCE = ["extract-metadata", "geolookup", "author-search", "evaluate"]


def gate() -> dict[str, Any]:
    """The photo-authenticity TaskProvider as shipped."""
    document: dict[str, Any] = yaml.safe_load(
        (TASKS / "photo-gate" / "taskprovider.yaml").read_text()
    )
    return document


@pytest.fixture
def photo_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The three tools on loopback, allowed to fetch loopback URLs, with a generated catalogue;
    yields each task's URL."""
    catalogue = images().write_catalogue(tmp_path / "catalogue")
    monkeypatch.setenv("AUTHOR_SEARCH_CATALOGUE", str(catalogue))
    monkeypatch.setenv("TOOL_ALLOW_PRIVATE_URLS", "true")
    servers = [ToolServer(task) for task in SEQUENCE[:3]]
    for server in servers:
        server.__enter__()
    yield {task: server.url for task, server in zip(SEQUENCE, servers, strict=False)}
    for server in servers:
        server.__exit__()


def test_three_photos_get_their_authenticity_verdicts(
    k8s: Cluster, photo_tools: dict[str, str], operator: OperatorProcess
) -> None:
    """An unedited photo with GPS at the claimed place passes; a Photoshop composite without
    camera metadata fails (key objective); a near-copy of a catalogued photo is a warning
    naming its author."""
    gen = images()
    files = {
        "unedited.jpg": gen.unedited_photo(),
        "edited.jpg": gen.edited_photo(),
        "copy.jpg": gen.catalogue_copy(),
    }
    k8s.shipyard(
        "osint",
        [
            {
                "name": "dev",
                "sequences": [{"name": "sequence-two", "tasks": [{"name": t} for t in SEQUENCE]}],
            }
        ],
    )
    for task, url in photo_tools.items():
        mode = "binary" if task == "geolookup" else "structured"  # as the examples have it
        spec = {"task": task, "cloudEvent": {"url": url, "mode": mode, "timeout": "30s"}}
        k8s.create("taskproviders", "TaskProvider", task, spec)
    k8s.create("taskproviders", "TaskProvider", "photo-authenticity", gate()["spec"])
    with image_server(files) as base:
        runs = {
            "photo-unedited": {
                "image": f"{base}/unedited.jpg",
                "claimedLocation": {"lat": 50.3755, "lon": -4.1427},
            },
            "photo-edited": {"image": {"url": f"{base}/edited.jpg"}, "claimedCountry": "GB"},
            "photo-copy": {"image": {"url": f"{base}/copy.jpg"}},
        }
        for name, data in runs.items():
            k8s.run(name, "osint", "dev", "sequence-two", data)
        statuses = {name: k8s.finished(name, timeout=120) for name in runs}

    unedited = statuses["photo-unedited"]
    assert unedited["result"] == "pass", unedited
    assert [t["name"] for t in unedited["tasks"]] == SEQUENCE
    assert unedited["data"]["geolookup"]["place"] == "Plymouth"
    assert unedited["data"]["evaluation"]["score"] == 100

    edited = statuses["photo-edited"]
    assert edited["result"] == "fail", edited
    report = edited["data"]["evaluation"]
    assert report["keySliFailed"] == ["editing_software_detected"]
    assert edited["data"]["extract-metadata"]["editor"] == "Adobe Photoshop 25.0 (Windows)"
    assert [t["result"] for t in edited["tasks"]] == ["pass", "warning", "pass", "fail"]
    assert "editing_software_detected 1 fail" in edited["tasks"][-1]["message"]

    copy = statuses["photo-copy"]
    assert copy["result"] == "warning", copy
    assert copy["data"]["author-search"]["author"] == "Jane Doe"
    assert copy["data"]["evaluation"]["result"] == "warning"
    objectives = {o["sli"]: o for o in copy["data"]["evaluation"]["objectives"]}
    assert objectives["known_author_match"]["status"] == "warning"
    assert objectives["nearest_copy_distance"]["value"] <= 4


@pytest.mark.parametrize("job_task", ["extract-metadata", "geolookup", "author-search"])
def test_each_photo_tool_as_a_job_provider_feeds_the_rest_of_the_sequence(
    k8s: Cluster,
    photo_tools: dict[str, str],
    operator: OperatorProcess,
    api_client: client.ApiClient,
    tmp_path: Path,
    job_task: str,
) -> None:
    """One photo tool as a Job (the others as services): the Pod's SLIPWAY_EVENT, given to
    the tool's own Job entry point, yields a termination message that (reported as a kubelet
    would) carries its output on through the sequence and the gate: the run passes."""
    template = {
        # kwok keeps the "container" running: the test ends it with the tool's real verdict.
        "metadata": {"annotations": {"slipway.dev/kwok-run-duration": "1h"}},
        "spec": {"containers": [{"name": "main", "image": f"example.test/{job_task}:1"}]},
    }
    k8s.shipyard(
        "osint",
        [
            {
                "name": "dev",
                "sequences": [{"name": "sequence-two", "tasks": [{"name": t} for t in SEQUENCE]}],
            }
        ],
    )
    k8s.create(
        "taskproviders",
        "TaskProvider",
        f"{job_task}-job",
        {"task": job_task, "job": {"template": template}},
    )
    for task in SEQUENCE[:3]:
        if task != job_task:
            k8s.provider(task, task, photo_tools[task])
    k8s.create("taskproviders", "TaskProvider", "photo-authenticity", gate()["spec"])
    with image_server({"p.jpg": images().unedited_photo()}) as base:
        data = {"image": f"{base}/p.jpg", "claimedCountry": "GB"}
        k8s.run("photo-job", "osint", "dev", "sequence-two", data)
        jobs = JobView(api_client, k8s.ns)
        pod = jobs.running_pod()
        env = {e.name: e for e in jobs.the_job().spec.template.spec.containers[0].env}
        event = json.loads(env["SLIPWAY_EVENT"].value)
        assert event["type"] == f"{job_task}.triggered"
        done, message = run_job(job_task, event, tmp_path)
        assert done.returncode == 0, done.stderr
        assert message is not None
        assert message["result"] == "pass", message
        jobs.terminate_like_a_kubelet(pod, json.dumps(message))
        status = k8s.finished("photo-job", timeout=120)
    assert status["result"] == "pass", status
    assert status["data"]["extract-metadata"]["camera"]["model"] == "X100V"
    assert status["data"]["geolookup"]["location_matches_claim"] is True
    assert status["data"]["evaluation"]["score"] == 100
