"""Approval tasks on the real control plane: automatic for pass and manual for warning,
decisions through the gateway with TokenReview and the RBAC verb `approve`, approvers, the
four-eyes rule, two required approvals, a rejection, a timeout, and an operator killed while
a task waits for people."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.control_helpers import (
    APPROVE,
    TRIGGER,
    decide,
    events_of,
    person,
    provider_entry,
)
from tests.cluster.objects import Cluster, sequence, stage
from tests.cluster.test_gateway import request, trigger_event
from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")


def approval(k8s: Cluster, name: str, task: str, **settings: Any) -> None:
    k8s.create("taskproviders", "TaskProvider", name, {"task": task, "approval": settings})


def test_automatic_for_pass_manual_for_warning(
    api_client: client.ApiClient, k8s: Cluster, tool: Tool, operator: OperatorProcess
) -> None:
    """`automatic: [pass]`: after a passing task the gate approves itself; after a warning it
    waits for a person, who approves it (with RBAC's `approve`), and the run goes on."""
    tool.behave.update({"good": "sync-pass", "meh": "sync-warning", "after": "sync-pass"})
    k8s.shipyard(
        "s",
        [stage("dev", sequence("fine", "good", "gate", "after"), sequence("iffy", "meh", "gate"))],
    )
    for task in ("good", "meh", "after"):
        k8s.provider(task, task, tool.url)
    approval(k8s, "gatekeeper", "gate", automatic=["pass"])
    _, token = person(api_client, k8s.ns, "alice", [APPROVE])
    k8s.run("auto", "s", "dev", "fine")
    k8s.run("manual", "s", "dev", "iffy")
    status = k8s.finished("auto")
    assert status["result"] == "pass"
    assert "automatically" in status["tasks"][1]["message"]
    wait_for(lambda: provider_entry(k8s, "manual-1-gate")["phase"] == "Started")
    assert k8s.get("sequenceruns", "manual")["status"]["phase"] == "Started"
    approve = subprocess.run(
        [
            sys.executable,
            "-m",
            "slipway",
            "approve",
            "manual-1-gate",
            "--comment",
            "ok",
            "-n",
            k8s.ns,
            "--gateway",
            operator.gateway_url,
            "--token",
            token,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert approve.returncode == 0, approve.stderr
    assert "approved by" in approve.stdout
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "slipway",
            "reject",
            "manual-1-gate",
            "-n",
            k8s.ns,
            "--gateway",
            operator.gateway_url,
            "--token",
            token,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0
    assert "409" in again.stderr
    status = k8s.finished("manual")
    assert status["result"] == "warning"  # the worst of warning and the approval's pass
    entry = k8s.get("taskexecutions", "manual-1-gate")["status"]["providers"][0]
    [decision] = entry["approvals"]
    assert decision["user"] == f"system:serviceaccount:{k8s.ns}:alice"
    assert (decision["decision"], decision["comment"]) == ("approve", "ok")
    reasons = [e.reason for e in events_of(api_client, k8s.ns, "manual-1-gate")]
    assert "ApprovalDecision" in reasons
    assert "ApprovalWaiting" in reasons


def test_who_may_approve_and_two_approvals_survive_an_operator_crash(
    api_client: client.ApiClient, k8s: Cluster, operator: OperatorProcess
) -> None:
    """No `approve` verb → 403; not among the approvers → 403; the person who triggered the
    run may not approve it → 403; no token → 401; bad body → 400; unknown execution → 404.
    Two distinct approvals are required: one, then the operator is killed and restarted,
    then the second passes the task; a repeat is 409."""
    k8s.shipyard("s", [stage("dev", sequence("release", "gate"))])
    names = {}
    tokens = {}
    for who, rules in (
        ("trigger", [TRIGGER, APPROVE]),
        ("nobody", []),
        ("outsider", [APPROVE]),
        ("bob", [APPROVE]),
        ("carol", [APPROVE]),
    ):
        names[who], tokens[who] = person(api_client, k8s.ns, who, rules)
    approval(
        k8s,
        "two-of-them",
        "gate",
        required=2,
        approvers={"users": [names["trigger"], names["bob"], names["carol"]]},
    )
    events = f"{operator.gateway_url}/v1/namespaces/{k8s.ns}/events"
    code, body = request("POST", events, tokens["trigger"], trigger_event("dev", "release"))
    assert code == 202, body
    run = body["run"]
    assert (
        k8s.get("sequenceruns", run)["metadata"]["annotations"]["slipway.dev/triggered-by"]
        == names["trigger"]
    )
    execution = f"{run}-0-gate"
    wait_for(lambda: provider_entry(k8s, execution)["phase"] == "Started")
    gateway, ns = operator.gateway_url, k8s.ns
    code, body = decide(gateway, ns, execution, tokens["nobody"], "approve")
    assert (code, body["error"]) == (403, "forbidden"), body
    assert "approve" in body["message"]
    code, body = decide(gateway, ns, execution, tokens["outsider"], "approve")
    assert (code, "not among the approvers" in body["message"]) == (403, True), body
    code, body = decide(gateway, ns, execution, tokens["trigger"], "approve")
    assert (code, "triggered this run" in body["message"]) == (403, True), body
    assert decide(gateway, ns, execution, "", "approve")[0] == 401
    assert decide(gateway, ns, execution, tokens["bob"], "maybe")[0] == 400
    assert decide(gateway, ns, "no-such-execution", tokens["bob"], "approve")[0] == 404
    code, body = decide(gateway, ns, execution, tokens["bob"], "approve", "first")
    assert (code, body["finished"]) == (200, False), body
    operator.kill()
    operator.start()
    assert k8s.get("sequenceruns", run)["status"]["phase"] == "Started"
    assert decide(gateway, ns, execution, tokens["bob"], "approve")[0] == 409
    code, body = decide(gateway, ns, execution, tokens["carol"], "approve", "second")
    assert (code, body["finished"]) == (200, True), body
    status = k8s.finished(run)
    assert status["result"] == "pass"
    entry = k8s.get("taskexecutions", execution)["status"]["providers"][0]
    assert [(a["user"], a["comment"]) for a in entry["approvals"]] == [
        (names["bob"], "first"),
        (names["carol"], "second"),
    ]
    code, body = decide(gateway, ns, execution, tokens["carol"], "reject")
    assert code == 409, body


def test_a_rejection_fails_the_run_and_a_timeout_fails_it_timed_out(
    api_client: client.ApiClient, k8s: Cluster, operator: OperatorProcess
) -> None:
    """One reject fails the task (and the run, which stops); an approval nobody decides
    fails `TimedOut` when its timeout passes."""
    k8s.shipyard(
        "s", [stage("dev", sequence("rejected", "gate"), sequence("forgotten", "slow-gate"))]
    )
    approval(k8s, "gate", "gate")
    approval(k8s, "slow", "slow-gate", timeout="3s")
    _, token = person(api_client, k8s.ns, "dave", [APPROVE])
    k8s.run("no", "s", "dev", "rejected")
    k8s.run("late", "s", "dev", "forgotten")
    wait_for(lambda: provider_entry(k8s, "no-0-gate")["phase"] == "Started")
    code, body = decide(operator.gateway_url, k8s.ns, "no-0-gate", token, "reject", "not now")
    assert code == 200, body
    status = k8s.finished("no")
    assert (status["result"], status["reason"]) == ("fail", "Failed")
    assert "rejected by" in status["message"]
    assert "not now" in status["message"]
    status = k8s.finished("late")
    assert (status["result"], status["reason"]) == ("fail", "TimedOut")
    assert "approval's timeout" in status["message"]
