"""`make demo`: Slipway's main job, end to end, on the local control plane.

Starts (or reuses) the local control plane, applies the CRDs, starts the operator and two
example tools (one synchronous, one asynchronous), applies a Shipyard whose `dev` sequence has
two tasks and whose `prod` stage is linked to it, triggers a run with an HTTP POST carrying a
token from `kubectl create token`, waits for the linked run too, prints the results and
`kubectl get slipway`, and exits 0 only when both runs finished as expected.

It also reports two figures: the time from a task's `.finished` leaving its tool to the next
task's `.triggered` reaching its tool (median over the hops), and the number of write requests
(POST/PUT/PATCH/DELETE) the API server counted for Slipway's resources and their children
per task executed.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from harness import (
    client_token,
    fresh_namespace,
    get,
    kubectl,
    post,
    start_operator,
    start_tool,
    stop,
    wait,
)

NAMESPACE = "slipway-demo"


def write_requests() -> dict[str, float]:
    """The API server's counters of write requests, per resource."""
    raw = kubectl("get", "--raw", "/metrics")
    counts: dict[str, float] = {}
    pattern = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
    for line in raw.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") in {"POST", "PUT", "PATCH", "DELETE", "APPLY"}:
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            counts[resource] = counts.get(resource, 0.0) + float(match["value"])
    return counts


def audited_writes(audit_log: Path, namespace: str, since: float) -> dict[str, int] | None:
    """Write requests the operator made in `namespace` since `since` (epoch seconds), per
    resource, from the API server's audit log (None when there is no audit log). The
    operator is told from kubectl by its user agent (both use the admin credentials here)."""
    if not audit_log.exists():
        return None
    counts: dict[str, int] = {}
    for line in audit_log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ref = entry.get("objectRef") or {}
        if entry.get("stage") != "ResponseComplete" or ref.get("namespace") != namespace:
            continue
        if str(entry.get("userAgent", "")).startswith("kubectl"):
            continue
        when = datetime.fromisoformat(entry["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if when.timestamp() < since:
            continue
        resource = ref.get("resource", "") + (
            "/" + ref["subresource"] if ref.get("subresource") else ""
        )
        counts[resource] = counts.get(resource, 0) + 1
    return counts


def manifests(sync_url: str, async_url: str) -> str:
    return f"""
apiVersion: slipway.dev/v1alpha1
kind: Shipyard
metadata: {{name: osint}}
spec:
  stages:
    - name: dev
      sequences:
        - name: sequence-one
          tasks:
            - name: checknumber
              properties: {{country: GB}}
              startTimeout: 30s
            - name: report
              startTimeout: 30s
    - name: prod
      sequences:
        - name: sequence-one
          triggeredOn:
            - event: dev.sequence-one.finished
              selector: {{match: {{result: pass}}}}
          tasks:
            - name: checknumber
---
apiVersion: slipway.dev/v1alpha1
kind: TaskProvider
metadata: {{name: number-checker}}
spec:
  task: checknumber
  cloudEvent: {{url: "{sync_url}"}}
---
apiVersion: slipway.dev/v1alpha1
kind: TaskProvider
metadata: {{name: number-reporter}}
spec:
  task: report
  cloudEvent: {{url: "{async_url}"}}
"""


def hops(log: Path) -> list[float]:
    """Seconds from a task's `.finished` leaving its tool to the next task's `.triggered`
    reaching its tool, for every pair of consecutive tasks of every run in the log.

    A `.triggered` id is `<namespace>/<run>-<index>-<task>/<provider>/<attempt>`, and a
    response carries it as `triggeredid`, which ties both ends of a hop to a run and index.
    """
    finished: dict[tuple[str, int], float] = {}
    received: dict[tuple[str, int], float] = {}
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry["what"] == "received":
            key = _run_and_index(entry["id"])
            if key:
                received.setdefault(key, entry["t"])
        elif str(entry["type"]).endswith(".finished"):
            key = _run_and_index(entry["triggeredid"] or "")
            if key:
                finished[key] = entry["t"]
    return [
        received[(run, index + 1)] - sent
        for (run, index), sent in sorted(finished.items())
        if (run, index + 1) in received
    ]


def _run_and_index(event_id: str) -> tuple[str, int] | None:
    parts = event_id.split("/")
    match = (
        re.fullmatch(r"(?P<run>.+)-(?P<index>\d+)-(?P<task>.+)", parts[1])
        if len(parts) == 4
        else None
    )
    return (match["run"], int(match["index"])) if match else None


def main() -> int:
    kubeconfig = fresh_namespace(NAMESPACE)
    work = Path(tempfile.mkdtemp(prefix="slipway-demo-"))
    log = work / "tools.jsonl"
    sync_tool, sync_port = start_tool("sync", log)
    async_tool, async_port = start_tool("async", log)
    children = [sync_tool, async_tool]
    try:
        operator, gateway = start_operator(NAMESPACE, work)
        children.append(operator)
        kubectl(
            "apply",
            "-n",
            NAMESPACE,
            "-f",
            "-",
            stdin=manifests(f"http://127.0.0.1:{sync_port}/", f"http://127.0.0.1:{async_port}/"),
        )
        token = client_token(NAMESPACE)
        before = write_requests()
        since = time.time()
        started = time.monotonic()
        status, answer = post(
            f"{gateway}/v1/namespaces/{NAMESPACE}/events",
            {
                "specversion": "1.0",
                "id": "demo-1",
                "source": "make-demo",
                "type": "dev.sequence-one.triggered",
                "datacontenttype": "application/json",
                "data": {"number": "+44 20 7946 0958"},
            },
            token,
        )
        print(f"POST dev.sequence-one.triggered -> {status} {json.dumps(answer)}")
        if status != 202:
            return 1
        run = answer["run"]
        dev = get(f"{gateway}/v1/namespaces/{NAMESPACE}/sequenceruns/{run}?wait=60s", token)
        print(
            f"dev run {run}: {dev['status'].get('phase')} {dev['status'].get('result')}"
            f" — {dev['status'].get('message')}"
        )
        linked = wait(
            lambda: list(
                json.loads(
                    kubectl(
                        "get",
                        "sequenceruns",
                        "-n",
                        NAMESPACE,
                        "-l",
                        f"slipway.dev/parent-run={run}",
                        "-o",
                        "json",
                    )
                )["items"]
            ),
            30,
            "the linked prod run",
        )
        prod_name = linked[0]["metadata"]["name"]
        prod = get(f"{gateway}/v1/namespaces/{NAMESPACE}/sequenceruns/{prod_name}?wait=60s", token)
        elapsed = time.monotonic() - started
        print(
            f"prod run {prod_name}: {prod['status'].get('phase')} "
            f"{prod['status'].get('result')} — {prod['status'].get('message')}"
        )
        after = write_requests()
        print()
        print(kubectl("get", "slipway", "-n", NAMESPACE))
        tasks = len(dev["status"].get("tasks", [])) + len(prod["status"].get("tasks", []))
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        ours = {
            k: v
            for k, v in delta.items()
            if v
            and k.split("/")[0] in {"sequenceruns", "taskexecutions", "secrets", "events", "jobs"}
        }
        measured = hops(log)
        print(f"both runs in {elapsed:.2f} s; {tasks} tasks")
        if measured:
            print(
                f".finished -> next .triggered: median {statistics.median(measured) * 1000:.0f}"
                f" ms over {len(measured)} hops ({', '.join(f'{h * 1000:.0f}' for h in measured)})"
            )
        audit = audited_writes(kubeconfig.parent / "logs" / "audit.log", NAMESPACE, since)
        if audit is not None:
            # The audit log is written a moment after each request completes.
            time.sleep(1)
            audit = audited_writes(kubeconfig.parent / "logs" / "audit.log", NAMESPACE, since)
        if audit:
            print(
                f"operator's API write requests per task: {sum(audit.values()) / max(tasks, 1):.1f}"
                f" ({', '.join(f'{k}={v}' for k, v in sorted(audit.items()))}; from the API "
                "server's audit log, this namespace, the operator's requests only)"
            )
        else:
            print(
                f"API write requests per task: {sum(ours.values()) / max(tasks, 1):.1f} "
                f"({', '.join(f'{k}={v:.0f}' for k, v in sorted(ours.items()))}; "
                "counted by the API server for the whole cluster during the demo)"
            )
        ok = (
            dev["status"].get("result") == "pass"
            and prod["status"].get("result") == "pass"
            and dev["status"].get("context") == prod["status"].get("context")
        )
        print("demo " + ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        stop(children)


if __name__ == "__main__":
    raise SystemExit(main())
