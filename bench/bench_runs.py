"""`make bench`: what a task costs the operator, side by side with a plain client.

Starts (or reuses) the local control plane, one operator process and the synchronous example
tool, and prints, in one run, for 3-task runs with one cloudEvent provider each:

- hop p50/p99 with 1 run in flight (`--solo` runs one after another) and with `--runs` runs
  in flight (created at once); a hop is a tool's `.finished` sent -> the next `.triggered`
  received (paired per run by event id);
- the operator's throughput (tasks/s) in the second round, and a plain async client making
  the minimal writes of the same runs against the same API server (create the run; per task:
  create the TaskExecution, write its status triggered, write it finished, write the run's
  status: 4 per task) — the ratio is the operator's share of what the API server allows;
- API write requests per task, from the API server's audit log (every create, patch, update
  and delete in the bench's namespace not made by kubectl or a controller);
- operator CPU ms per task and resident memory;
- with `--stored N`: N finished runs (each with 3 finished TaskExecutions) created directly
  through the API in their own namespace (kept between bench runs), then an operator started
  on that namespace: time until it is ready, and its memory once it is idle.

With `--replicas N`: the round of `--runs` runs in flight again with 1, 2, … N operator
replicas on one namespace (each with its own Lease and gateway; docs/scaling.md): throughput,
hops, and each replica's CPU. On a 2-core machine that also runs the API server, etcd and the
tool, this is CPU-bound: more replicas split the operator's work, not the machine's.

Figures, not assertions: the machine is shared; quote medians and ratios, not single runs.
Extra arguments come through `make bench ARGS="--stored 10000"`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tasks" / "demo"))

from harness import (  # noqa: E402  (a sibling folder's module, after the path is set)
    READY,
    SLIPWAY,
    apply_objects,
    free_port,
    fresh_namespace,
    kubectl,
    start_operator,
    start_tool,
    stop,
    wait,
)
from run_demo import hops  # noqa: E402

NAMESPACE = "slipway-bench"
BASELINE_NAMESPACE = "slipway-bench-baseline"
STORED_NAMESPACE = "slipway-bench-stored"
GROUP, VERSION = "slipway.dev", "v1alpha1"
TASKS = 3
MERGE = "application/merge-patch+json"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


# ----------------------------------------------------------------------------- measuring
def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of `pid` in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def hop_figure(hops: list[float]) -> str:
    if not hops:
        return "no hops measured"
    p50, p99 = statistics.median(hops) * 1000, percentile(hops, 0.99) * 1000
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({len(hops)} hops)"


def audit_log() -> Path:
    """The local control plane's audit log (one JSON line per write request)."""
    cache = Path(os.environ.get("SLIPWAY_CACHE_DIR", Path.home() / ".cache" / "slipway"))
    return cache / "cluster" / "logs" / "audit.log"


def audit_offset() -> int:
    path = audit_log()
    return path.stat().st_size if path.exists() else 0


def operator_writes(since: int, namespace: str) -> dict[str, int]:
    """Write requests in `namespace` logged after byte `since`, by `<verb> <resource>`, made
    by neither kubectl nor a controller of the control plane."""
    counts: dict[str, int] = {}
    path = audit_log()
    if not path.exists():
        return counts
    with path.open("rb") as file:
        file.seek(since)
        for line in file:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            ref = entry.get("objectRef") or {}
            if entry.get("stage") != "ResponseComplete" or ref.get("namespace") != namespace:
                continue
            if entry.get("verb") not in WRITE_VERBS:
                continue
            agent = str(entry.get("userAgent", ""))
            user = str((entry.get("user") or {}).get("username", ""))
            if agent.startswith("kubectl") or user.startswith("system:"):
                continue
            what = ref.get("resource", "?") + (
                "/" + ref["subresource"] if ref.get("subresource") else ""
            )
            key = f"{entry['verb']} {what}"
            counts[key] = counts.get(key, 0) + 1
    return counts


class Figures(dict[str, str]):
    """The figures, each printed as soon as it is measured (a long bench shows progress)."""

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        print(f"{key:<40}  {value}", flush=True)


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` (100 Hz, not stopping it) into `out` (collapsed stacks)."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


#: Components a sampled frame's file belongs to, first match wins.
COMPONENTS = (
    ("slipway/engine/", "slipway.engine (decisions)"),
    ("slipway/api/", "slipway.api (models)"),
    ("slipway/events/", "slipway.events"),
    ("slipway/kube/", "slipway.kube"),
    ("slipway/handlers/", "slipway.handlers"),
    ("slipway/providers/", "slipway.providers"),
    ("slipway/gateway/", "slipway.gateway"),
    ("pydantic", "pydantic (validation, dumps)"),
    ("kubernetes_asyncio", "kubernetes_asyncio (client, (de)serialising)"),
    ("kopf/", "kopf (watches, handlers, indexes)"),
    ("aiohttp", "aiohttp (HTTP)"),
    ("cloudevents", "cloudevents"),
    ("json/", "json"),
    ("ssl.py", "ssl"),
    ("asyncio/", "asyncio (event loop)"),
    ("logging/", "logging"),
)


def stop_profile(profiler: subprocess.Popen[bytes], out: Path) -> list[str]:
    """Stop py-spy and summarise: share of samples per component of the innermost frame."""
    profiler.send_signal(2)  # SIGINT: py-spy writes what it has
    profiler.wait(60)
    counts: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines() if out.exists() else []:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        leaf = stack.rsplit(";", 1)[-1]
        component = next((name for key, name in COMPONENTS if key in leaf), "other")
        counts[component] = counts.get(component, 0) + count
    return (
        [
            f"{100 * n / total:5.1f} %  {name}"
            for name, n in sorted(counts.items(), key=lambda item: -item[1])
        ]
        if total
        else ["no samples"]
    )


def wait_idle(pid: int, quiet: float = 0.02, window: float = 1.0, timeout: float = 120) -> None:
    """Until `pid` used less than `quiet` CPU seconds per second over `window` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)  # a measuring window, not a wait for a condition
        if cpu_seconds(pid) - before < quiet * window:
            return


# ----------------------------------------------------------------------------- objects
def shipyard_and_providers(tool_url: str) -> list[dict[str, Any]]:
    tasks = [{"name": f"t{i}"} for i in range(TASKS)]
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Shipyard",
            "metadata": {"name": "bench"},
            "spec": {"stages": [{"name": "dev", "sequences": [{"name": "seq", "tasks": tasks}]}]},
        }
    ]
    objects += [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TaskProvider",
            "metadata": {"name": t["name"]},
            "spec": {"task": t["name"], "cloudEvent": {"url": tool_url}},
        }
        for t in tasks
    ]
    return objects


def run_object(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SequenceRun",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": {
            "shipyard": "bench",
            "stage": "dev",
            "sequence": "seq",
            "data": {"number": "+44 20 7946 0958"},
        },
    }


def execution_object(run: str, uid: str, index: int) -> dict[str, Any]:
    task = f"t{index}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskExecution",
        "metadata": {
            "name": f"{run}-{index}-{task}",
            "labels": {"slipway.dev/run": run, "slipway.dev/task": task},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "SequenceRun",
                    "name": run,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "run": run,
            "index": index,
            "shipyard": "bench",
            "stage": "dev",
            "sequence": "seq",
            "task": {"name": task},
            "context": uid,
            "input": {"number": "+44 20 7946 0958"},
        },
    }


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def execution_status(run: str, index: int, finished: bool) -> dict[str, Any]:
    provider = {
        "name": f"t{index}",
        "kind": "cloudEvent",
        "attempt": 1,
        "triggeredId": f"ns/{run}-{index}-t{index}/t{index}/1",
        "triggeredAt": now(),
        "phase": "Finished" if finished else "Pending",
    }
    status: dict[str, Any] = {"phase": "Started", "attempts": 1, "startedAt": now()}
    if finished:
        provider.update(result="pass", finishedAt=now())
        status.update(
            phase="Finished",
            result="pass",
            reason="Completed",
            message="done",
            finishedAt=now(),
            output={"checknumber": {"valid": True, "country": "GB"}},
        )
    status["providers"] = [provider]
    return status


def run_status(run: str, uid: str, done: int) -> dict[str, Any]:
    records = [
        {
            "name": f"t{i}",
            "index": i,
            "execution": f"{run}-{i}-t{i}",
            "phase": "Finished" if i < done else "Started",
            **({"result": "pass", "finishedAt": now()} if i < done else {}),
        }
        for i in range(min(done + 1, TASKS))
    ]
    status: dict[str, Any] = {
        "phase": "Finished" if done == TASKS else "Started",
        "context": uid,
        "startedAt": now(),
        "tasks": records,
        "data": {"number": "+44 20 7946 0958", "checknumber": {"valid": True}},
    }
    if done == TASKS:
        status.update(result="pass", reason="Completed", message="done", finishedAt=now())
    return status


# ----------------------------------------------------------------------------- API client
async def api() -> tuple[client.ApiClient, client.CustomObjectsApi]:
    # The plane's kubeconfig, set by `fresh_namespace` after the client library was imported
    # (its default path is read at import time).
    api_client = await config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    return api_client, client.CustomObjectsApi(api_client)


async def create(custom: Any, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body
    )
    return result


async def patch_status(
    custom: Any, namespace: str, plural: str, name: str, status: dict[str, Any]
) -> None:
    await custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": status}, _content_type=MERGE
    )


async def baseline(runs: int) -> float:
    """Tasks per second of a plain client making the minimal writes of `runs` 3-task runs,
    all in flight at once (no operator watches its namespace)."""
    api_client, custom = await api()

    async def one(name: str) -> None:
        run = await create(custom, BASELINE_NAMESPACE, "sequenceruns", run_object(name))
        uid = run["metadata"]["uid"]
        for index in range(TASKS):
            execution = execution_object(name, uid, index)
            await create(custom, BASELINE_NAMESPACE, "taskexecutions", execution)
            ename = execution["metadata"]["name"]
            for finished in (False, True):
                status = execution_status(name, index, finished)
                await patch_status(custom, BASELINE_NAMESPACE, "taskexecutions", ename, status)
            await patch_status(
                custom, BASELINE_NAMESPACE, "sequenceruns", name, run_status(name, uid, index + 1)
            )

    try:
        prefix = uuid.uuid4().hex[:6]
        started = time.monotonic()
        await asyncio.gather(*(one(f"b{prefix}-{i}") for i in range(runs)))
        return runs * TASKS / (time.monotonic() - started)
    finally:
        await api_client.close()


async def store_finished_runs(count: int) -> tuple[int, float]:
    """Make `count` finished runs (3 finished TaskExecutions each) exist in the stored
    namespace; returns (how many were created now, seconds it took)."""
    api_client, custom = await api()
    try:
        listed = await custom.list_namespaced_custom_object(
            GROUP, VERSION, STORED_NAMESPACE, "sequenceruns", limit=1
        )
        have = len(listed.get("items", [])) + int(
            (listed.get("metadata") or {}).get("remainingItemCount") or 0
        )
        missing = max(0, count - have)
        started = time.monotonic()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(have, have + missing):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                name = f"stored-{queue.get_nowait()}"
                try:
                    run = await create(custom, STORED_NAMESPACE, "sequenceruns", run_object(name))
                except ApiException as error:
                    if error.status != 409:
                        raise
                    continue
                uid = run["metadata"]["uid"]
                await patch_status(
                    custom, STORED_NAMESPACE, "sequenceruns", name, run_status(name, uid, TASKS)
                )
                for index in range(TASKS):
                    execution = execution_object(name, uid, index)
                    await create(custom, STORED_NAMESPACE, "taskexecutions", execution)
                    await patch_status(
                        custom,
                        STORED_NAMESPACE,
                        "taskexecutions",
                        execution["metadata"]["name"],
                        execution_status(name, index, True),
                    )

        await asyncio.gather(*(worker() for _ in range(32)))
        return missing, time.monotonic() - started
    finally:
        await api_client.close()


# ----------------------------------------------------------------------------- rounds
def create_runs(names: list[str]) -> None:
    kubectl(
        "create",
        "-n",
        NAMESPACE,
        "-f",
        "-",
        stdin=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [run_object(n) for n in names]}
        ),
    )


def finished_runs(names: list[str]) -> Callable[[], list[dict[str, Any]] | None]:
    def check() -> list[dict[str, Any]] | None:
        items = json.loads(kubectl("get", "sequenceruns", "-n", NAMESPACE, "-o", "json"))["items"]
        mine = [r for r in items if r["metadata"]["name"] in names]
        done = [r for r in mine if (r.get("status") or {}).get("phase") == "Finished"]
        return done if len(done) == len(names) else None

    return check


def main() -> int:
    if "--load" in sys.argv[1:]:  # `make bench ARGS="--load"`: the load bench instead
        from bench_load import main as load

        return load([a for a in sys.argv[1:] if a != "--load"])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in flight at once")
    parser.add_argument("--solo", type=int, default=10, help="runs one at a time")
    parser.add_argument(
        "--stored", type=int, default=0, help="finished runs stored for the memory/ready figures"
    )
    parser.add_argument(
        "--stored-only",
        action="store_true",
        help="only the --stored figures (skip the rounds and the baseline)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the operator with py-spy during the round of many runs; write the raw "
        "stacks there and print where its CPU went",
    )
    parser.add_argument(
        "--replicas", type=int, default=0, help="also run the in-flight round with 1..N replicas"
    )
    args = parser.parse_args()
    if args.replicas:
        return replica_rounds(args.replicas, args.runs)

    fresh_namespace(NAMESPACE)
    kubectl("delete", "namespace", BASELINE_NAMESPACE, "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", BASELINE_NAMESPACE)
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    log = work / "tools.jsonl"
    tool, tool_port = start_tool("sync", log)
    children = [tool]
    figures = Figures()
    profile_lines: list[str] = []
    try:
        operator, _ = start_operator(NAMESPACE, work)
        children.append(operator)
        objects = shipyard_and_providers(f"http://127.0.0.1:{tool_port}/")
        for namespace in (NAMESPACE, BASELINE_NAMESPACE):
            apply_objects(namespace, objects)
        figures["operator RSS idle"] = f"{rss_mib(operator.pid)[0]:.0f} MiB"

        if not args.stored_only:
            # 1 run in flight: one after another.
            log.write_text("")
            for i in range(args.solo):
                names = [f"solo-{i}"]
                create_runs(names)
                wait(finished_runs(names), 120, f"solo run {i}")
            solo = hops(log)
            figures["hop, 1 run in flight"] = hop_figure(solo)

            # N runs in flight: created at once.
            log.write_text("")
            names = [f"many-{i}" for i in range(args.runs)]
            since = audit_offset()
            profiler = start_profile(operator.pid, args.profile) if args.profile else None
            cpu_before = cpu_seconds(operator.pid)
            started = time.monotonic()
            create_runs(names)
            done = wait(finished_runs(names), 900, f"{args.runs} runs")
            wall = time.monotonic() - started
            cpu = cpu_seconds(operator.pid) - cpu_before
            if profiler is not None and args.profile is not None:
                profile_lines = stop_profile(profiler, args.profile)
            many = hops(log)
            tasks_run = sum(len(r["status"].get("tasks", [])) for r in done)
            failed = [r["metadata"]["name"] for r in done if r["status"].get("result") != "pass"]
            wait_idle(operator.pid)  # what it does after the runs finished (Events) counts too
            writes = operator_writes(since, NAMESPACE)
            throughput = tasks_run / wall
            figures[f"hop, {args.runs} runs in flight"] = hop_figure(many)
            figures["operator throughput"] = (
                f"{throughput:.1f} tasks/s ({tasks_run} tasks, {wall:.1f} s)"
            )
            figures["operator CPU per task"] = f"{cpu * 1000 / max(tasks_run, 1):.1f} ms"
            total = sum(writes.values())
            figures["API writes per task"] = (
                f"{total / max(tasks_run, 1):.2f} ("
                + ", ".join(f"{k}: {v / max(tasks_run, 1):.2f}" for k, v in sorted(writes.items()))
                + ")"
            )
            now_rss, peak = rss_mib(operator.pid)
            figures["operator RSS after the rounds"] = f"{now_rss:.0f} MiB (peak {peak:.0f} MiB)"
            if failed:
                figures["runs not passing"] = ", ".join(failed[:10])

            base = asyncio.run(baseline(args.runs))
            figures["plain client, minimal writes (4/task)"] = f"{base:.1f} tasks/s"
            figures["operator / plain client"] = f"{100 * throughput / base:.0f} %"
            stop([operator])
            children.remove(operator)
        else:
            stop([operator])
            children.remove(operator)

        if args.stored:
            kubectl("create", "namespace", STORED_NAMESPACE, check=False)
            made, took = asyncio.run(store_finished_runs(args.stored))
            figures[f"stored {args.stored} finished runs"] = (
                f"{made} created now in {took:.0f} s" if made else "already there"
            )
            apply_objects(STORED_NAMESPACE, objects)
            # Ready = a run created just before the start has its first task triggered: the
            # initial listing of everything stored is behind it.
            probe = f"probe-{uuid.uuid4().hex[:8]}"
            kubectl(
                "create",
                "-n",
                STORED_NAMESPACE,
                "-f",
                "-",
                stdin=json.dumps(run_object(probe)),
            )
            stored_operator, said_ready, started = start_timed(STORED_NAMESPACE, work)
            children.append(stored_operator)
            first = wait(lambda: received_at(log, probe), 600, "the probe run's first task")
            ready = first - started
            wait_idle(stored_operator.pid)
            stored_rss, stored_peak = rss_mib(stored_operator.pid)
            figures[f"ready after start, {args.stored} runs stored"] = (
                f"{ready:.1f} s to trigger a new run's first task (kopf ready flag: "
                f"{said_ready:.1f} s)"
            )
            figures[f"operator RSS, {args.stored} runs stored"] = (
                f"{stored_rss:.0f} MiB (peak {stored_peak:.0f} MiB)"
            )
    finally:
        stop(children)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
        kubectl(
            "delete",
            "namespace",
            BASELINE_NAMESPACE,
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )
    if args.profile:
        print("\nwhere the operator's CPU went (py-spy samples, self time by component):")
        for line in profile_lines:
            print(f"  {line}")
    print(
        f"machine: {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        "a shared machine: quote medians of several runs"
    )
    return 0


def start_replicas(namespace: str, work: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """`count` operator replicas on `namespace` (r0, r1, …; 6 s Leases renewed every 1.5 s),
    each with its own gateway; returns once every one acts among `count` members."""
    processes = []
    logs = []
    for index in range(count):
        port = free_port()
        env = {
            **os.environ,
            "SLIPWAY_NAMESPACE": namespace,
            "SLIPWAY_GATEWAY_ADDRESS": f"127.0.0.1:{port}",
            "SLIPWAY_GATEWAY_URL": f"http://127.0.0.1:{port}",
            "SLIPWAY_IDENTITY": f"r{index}",
            "SLIPWAY_LEASE_DURATION": "6",
            "SLIPWAY_LEASE_RENEW": "1.5",
            # every run of the round is counted: retention must delete none of them
            "SLIPWAY_HISTORY_SUCCESSFUL_RUNS": "100000",
            "SLIPWAY_HISTORY_FAILED_RUNS": "100000",
        }
        log = work / f"replica-{count}-{index}.log"
        with log.open("wb") as out:
            processes.append(
                subprocess.Popen([*SLIPWAY, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
            )
        logs.append((f"r{index}", log))

    def acting() -> bool:
        for name, log in logs:
            lines = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "ownership: " in line
            ]
            if not lines or f"{name} of {count} live members" not in lines[-1]:
                return False
            if "not acting" in lines[-1]:
                return False
        return True

    wait(acting, 120, f"{count} replicas acting")
    return processes


def replica_rounds(most: int, runs: int) -> int:
    """The in-flight round with 1..`most` replicas; prints one block of figures each."""
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    log = work / "tools.jsonl"
    tool, tool_port = start_tool("sync", log)
    rows = []
    try:
        for count in range(1, most + 1):
            fresh_namespace(NAMESPACE)
            objects = shipyard_and_providers(f"http://127.0.0.1:{tool_port}/")
            apply_objects(NAMESPACE, objects)
            operators = start_replicas(NAMESPACE, work, count)
            try:
                log.write_text("")
                names = [f"r{count}-{i}" for i in range(runs)]
                cpu_before = [cpu_seconds(p.pid) for p in operators]
                started = time.monotonic()
                create_runs(names)
                done = wait(finished_runs(names), 900, f"{runs} runs with {count} replicas")
                wall = time.monotonic() - started
                cpu = [cpu_seconds(p.pid) - b for p, b in zip(operators, cpu_before, strict=True)]
                tasks_run = sum(len(r["status"].get("tasks", [])) for r in done)
                rows.append(
                    (
                        count,
                        f"{tasks_run / wall:.1f} tasks/s ({tasks_run} tasks, {wall:.1f} s)",
                        hop_figure(hops(log)),
                        ", ".join(f"{c / wall * 100:.0f} %" for c in cpu),
                        f"{sum(cpu) * 1000 / max(tasks_run, 1):.1f} ms",
                    )
                )
            finally:
                stop(operators)
    finally:
        stop([tool])
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
    print(f"{runs} three-task runs in flight, sync tool; CPU = share of one core over the round")
    for count, throughput, hop, cpu, per_task in rows:
        print(f"{count} replica(s): throughput {throughput}; hop {hop}")
        print(
            f"             CPU per replica: {cpu}; operator CPU per task (all replicas) {per_task}"
        )
    print(
        f"machine: {os.cpu_count()} cores shared with the API server, etcd and the tool: "
        "CPU-bound, more replicas split the operator's work, not the machine's"
    )
    return 0


def received_at(log: Path, run: str) -> float | None:
    """When the tool received the first `.triggered` of run `run` (Unix time), if it did."""
    for line in (log.read_text() if log.exists() else "").splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry["what"] == "received" and f"/{run}-0-" in str(entry.get("id")):
                return float(entry["t"])
    return None


def start_timed(namespace: str, work: Path) -> tuple[subprocess.Popen[bytes], float, float]:
    """An operator on `namespace`, the seconds from its start until it said it is ready
    (kopf's ready flag: start-up handlers done, not the initial listing), and its start
    (Unix time)."""
    port = free_port()
    env = {
        **os.environ,
        "SLIPWAY_NAMESPACE": namespace,
        "SLIPWAY_GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "SLIPWAY_GATEWAY_URL": f"http://127.0.0.1:{port}",
    }
    log = work / f"operator-{namespace}.log"
    started = time.monotonic()
    wall_start = time.time()
    with log.open("wb") as out:
        process = subprocess.Popen([*SLIPWAY, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    wait(lambda: READY in log.read_bytes() or process.poll() is not None, 600, "the operator start")
    ready = time.monotonic() - started
    if process.poll() is not None:
        raise SystemExit(f"the operator exited:\n{log.read_text()}")
    return process, ready, wall_start


if __name__ == "__main__":
    raise SystemExit(main())
