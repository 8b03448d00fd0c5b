"""History retention on the real control plane: count limits and TTL delete the right runs
and everything they own, keep the evaluations a later evaluation compares with (and the
invalidated mark between them), and cost one API write per deleted run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.objects import Cluster
from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

SLO = {
    "comparison": {
        "compare_with": "several_results",
        "number_of_comparison_results": 2,
        "include_result_with_score": "pass",
    },
    "objectives": [{"sli": "latency", "pass": [{"criteria": ["<=+10%"]}]}],
    "total_score": {"pass": "90%"},
}


def fast_cleanup(operator: OperatorProcess) -> None:
    operator.stop()
    operator.env["SLIPWAY_HISTORY_INTERVAL"] = "1"
    operator.env["SLIPWAY_HISTORY_DELETES_PER_SECOND"] = "20"
    operator.start()


def owned(api_client: client.ApiClient, k8s: Cluster, run: str) -> list[str]:
    """What a run owns that still exists: its TaskExecutions (and Secrets labelled with it,
    should a provider create any)."""
    core = client.CoreV1Api(api_client)
    executions = [
        e["metadata"]["name"] for e in k8s.items("taskexecutions") if e["spec"]["run"] == run
    ]
    secrets = [
        s.metadata.name
        for s in core.list_namespaced_secret(k8s.ns, label_selector=f"slipway.dev/run={run}").items
    ]
    return executions + secrets


def exists(k8s: Cluster, run: str) -> bool:
    return any(r["metadata"]["name"] == run for r in k8s.items("sequenceruns"))


def audited_writes(audit_log: Path, namespace: str) -> list[tuple[str, str, str, str]]:
    """(user, verb, resource, name) of every write request in `namespace`, from the API
    server's audit log."""
    writes = []
    for line in audit_log.read_text().splitlines():
        entry = json.loads(line)
        ref = entry.get("objectRef") or {}
        if ref.get("namespace") != namespace or entry.get("stage") != "ResponseComplete":
            continue
        user = entry.get("user", {}).get("username", "")
        writes.append((user, entry["verb"], ref.get("resource", ""), ref.get("name", "")))
    return writes


def test_limits_and_ttl_delete_old_runs_and_keep_what_evaluations_compare_with(
    api_client: client.ApiClient,
    k8s: Cluster,
    tool: Tool,
    operator: OperatorProcess,
    kubeconfig: Path,
) -> None:
    """`successfulRuns: 1, failedRuns: 1`: the oldest evaluation run goes (with its
    executions) once no comparison reads it; the newer ones a comparison reads
    stay (the failed one between them too), so the next evaluation compares with the
    same runs and gives the same verdict. `ttlAfterFinished` deletes a finished run of
    another Shipyard. Each deletion is one API write by the operator."""
    fast_cleanup(operator)
    tool.behave["touch"] = "sync-pass"
    k8s.provider("toucher", "touch", tool.url)
    gate = {"name": "gate", "tasks": [{"name": "touch"}, {"name": "evaluate"}]}
    k8s.create(
        "shipyards",
        "Shipyard",
        "quality",
        {
            "stages": [{"name": "good", "sequences": [gate]}],
            "history": {"successfulRuns": 1, "failedRuns": 1},
        },
    )
    k8s.create(
        "taskproviders",
        "TaskProvider",
        "slo",
        {
            "task": "evaluate",
            "evaluation": {"sources": {"data": {"latency": "$.measured.latency"}}, "slo": SLO},
        },
    )

    def evaluate(run: str, latency: float) -> dict[str, Any]:
        k8s.run(run, "quality", "good", "gate", {"measured": {"latency": latency}})
        return dict(k8s.finished(run, timeout=90))

    assert evaluate("h1", 100)["result"] == "pass"
    assert evaluate("h2", 100)["result"] == "pass"
    assert owned(api_client, k8s, "h1")  # beyond the limit, but h2's successors compare with it
    assert evaluate("h3", 1000)["result"] == "fail"  # 1000 > 110% of 100; not compared with
    before = evaluate("h4", 100)["data"]["evaluation"]
    assert before["comparison"]["compared"] == ["h2-1-evaluate", "h1-1-evaluate"]
    # Now h1 is read by no comparison (h4 and h2 are the two newest valid ones): it goes.
    wait_for(lambda: not exists(k8s, "h1"), timeout=60, message="h1 deleted")
    wait_for(lambda: not owned(api_client, k8s, "h1"), timeout=60, message="h1's objects gone")
    assert all(exists(k8s, r) for r in ("h2", "h3", "h4"))
    after = evaluate("h5", 105)["data"]["evaluation"]
    assert after["comparison"]["compared"] == ["h4-1-evaluate", "h2-1-evaluate"]
    assert after["result"] == "pass"

    k8s.create(
        "shipyards",
        "Shipyard",
        "brief",
        {
            "stages": [
                {"name": "dev", "sequences": [{"name": "once", "tasks": [{"name": "touch"}]}]}
            ],
            "history": {"ttlAfterFinished": "5s"},
        },
    )
    k8s.run("b1", "brief", "dev", "once")
    assert k8s.finished("b1")["result"] == "pass"
    assert owned(api_client, k8s, "b1")
    wait_for(lambda: not exists(k8s, "b1"), timeout=60, message="b1 deleted after its TTL")
    wait_for(lambda: not owned(api_client, k8s, "b1"), timeout=60, message="b1's objects gone")
    assert exists(k8s, "h5")

    audit = kubeconfig.parent / "logs" / "audit.log"
    if audit.exists():  # the local control plane writes one (devcluster/cluster.py)

        def collected() -> list[tuple[str, str, str, str]] | None:
            writes = audited_writes(audit, k8s.ns)
            executions = [w for w in writes if w[1:3] == ("delete", "taskexecutions")]
            return writes if len(executions) >= 3 else None  # h1's two, b1's one

        writes = wait_for(
            collected, timeout=30, message="the garbage collector's deletes in the audit log"
        )
        deleted = Counter(
            name for _, verb, res, name in writes if (verb, res) == ("delete", "sequenceruns")
        )
        assert {"h1", "b1"} <= set(deleted), deleted
        assert set(deleted.values()) == {1}, deleted  # each run deleted with one request
        owned_deletes = Counter(
            res for _, verb, res, _ in writes if verb == "delete" and res != "sequenceruns"
        )
        print(
            f"\nretention: {len(deleted)} runs deleted with {sum(deleted.values())} operator "
            f"write(s) ({sum(deleted.values()) / len(deleted):.1f} per run); garbage collector "
            f"deletes of owned objects: {dict(owned_deletes)} "
            f"({sum(owned_deletes.values()) / len(deleted):.1f} per run)"
        )
