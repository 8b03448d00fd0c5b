"""Several operator replicas on one namespace split the runs and survive losing any of them.

Real `python -m slipway run` processes (r0, r1, …, with 10 s Leases renewed every 2 s),
each with its own gateway, behind a round-robin proxy standing in for the Service. A run and
everything of it belongs to one live replica (rendezvous hashing); the checks are what the
issue asks: an even split, runs continuing after a SIGKILL, a joining replica getting its
share, random kills with restarts, a paused replica that must not act when it wakes, and
never a twin TaskExecution or a task triggered under two ids. And a concurrency queue whose
runs are spread over the replicas admits no more than its limit (its shared record is
compare-and-swap).

Figures (failover seconds, shares) are printed, not asserted: the machine is shared.
"""

from __future__ import annotations

import itertools
import random
import re
import signal
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from slipway.handlers.queue import LABEL_QUEUE_OF, QueueRecords
from slipway.kube.client import connect
from slipway.kube.errors import KubeError
from slipway.kube.leases import LeaseStore
from tests.cluster.objects import Cluster, sequence, stage
from tests.helpers import WaitTimeoutError, run_async, wait_for
from tests.replicas import LEASE_DURATION, Replicas, Service
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

#: Runs of the split test: the issue asks for 300; on the shared 2-core machine three
#: operators, the control plane and the tool get through 300 two-task runs in a few minutes.
SPLIT_RUNS = 300
CHAOS_RUNS = 200
CHAOS_KILLS = 20


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service().start()
    yield running
    running.stop()


@pytest.fixture
def replicas(
    kubeconfig: Path, namespace: str, tmp_path: Path, service: Service
) -> Iterator[Replicas]:
    """Replicas started by the test; at the end each is stopped (SIGTERM) and its log must
    hold no traceback."""
    found = Replicas(namespace, tmp_path, service)
    yield found
    codes = found.stop_all()
    for name, process in found.processes.items():
        # kopf, stopped (SIGTERM) while its watch streams still have events queued, can
        # leave a watch generator for asyncio's shutdown to close, which logs this; it is
        # kopf's shutdown, after every worker stopped, not a failure of the work.
        log = re.sub(
            r"ERROR +asyncio: an error occurred during closing of asynchronous generator"
            r".*?RuntimeError: generator didn't stop after athrow\(\)",
            "",
            process.log(),
            flags=re.DOTALL,
        )
        assert "Traceback" not in log, f"{name} logged a traceback:\n{log[-8000:]}"
        if name in codes:
            assert codes[name] in (0, -signal.SIGTERM), f"{name} exited {codes[name]}"


def setup_sequence(k8s: Cluster, tool: Tool, tasks: str) -> None:
    k8s.shipyard("s", [stage("dev", sequence("seq", *tasks))])
    for task in tasks:
        k8s.provider(f"p{task}", task, tool.url)


def create_runs(k8s: Cluster, names: list[str]) -> None:
    create_runs_of(k8s, names, "seq")


def create_runs_of(k8s: Cluster, names: list[str], sequence_name: str) -> None:
    for name in names:
        k8s.run(name, "s", "dev", sequence_name)


def finished(k8s: Cluster, names: list[str]) -> dict[str, dict[str, Any]]:
    """The runs among `names` that finished, by name."""
    wanted = set(names)
    return {
        r["metadata"]["name"]: r
        for r in k8s.items("sequenceruns")
        if r["metadata"]["name"] in wanted and (r.get("status") or {}).get("phase") == "Finished"
    }


def wait_all_finished(k8s: Cluster, names: list[str], timeout: float) -> dict[str, Any]:
    return wait_for(
        lambda: (done := finished(k8s, names)) and len(done) == len(names) and done,
        timeout=timeout,
        interval=1.0,
        message=f"{len(names)} runs finished",
    )


def assert_no_twins(k8s: Cluster, tool: Tool, names: list[str], tasks: str) -> None:
    """Each run passed with one TaskExecution per task, and the tool saw each execution's
    `.triggered` under one id only (possibly more than once: at-least-once)."""
    runs = finished(k8s, names)
    assert {n: r["status"]["result"] for n, r in runs.items()} == dict.fromkeys(names, "pass")
    by_run: dict[str, list[str]] = defaultdict(list)
    for execution in k8s.items("taskexecutions"):
        by_run[execution["spec"]["run"]].append(execution["metadata"]["name"])
    for name in names:
        expected = [f"{name}-{i}-{task}" for i, task in enumerate(tasks)]
        assert sorted(by_run[name]) == sorted(expected), (name, by_run[name])
    ids: dict[str, set[str]] = defaultdict(set)
    for event in tool.events():
        ids[event["id"].split("/")[1]].add(event["id"])
    twice = {execution: found for execution, found in ids.items() if len(found) > 1}
    assert not twice, f"tasks triggered under two ids: {twice}"
    assert len(ids) == len(names) * len(tasks)


def test_three_replicas_split_the_runs_evenly_and_all_finish(
    k8s: Cluster, tool: Tool, replicas: Replicas
) -> None:
    """300 runs over three replicas: each works 20-46 % of them; all pass, no twins."""
    tool.behave.update({"a": "sync-pass", "b": "sync-pass"})
    setup_sequence(k8s, tool, "ab")
    for name in ("r0", "r1", "r2"):
        replicas.start(name)
    replicas.wait_acting(["r0", "r1", "r2"], 3)
    names = [f"split-{i}" for i in range(SPLIT_RUNS)]
    create_runs(k8s, names)
    wait_all_finished(k8s, names, timeout=580)
    assert_no_twins(k8s, tool, names, "ab")
    first: dict[str, str] = {}  # run -> the replica that started it (its owner then)
    for _, run, who in replicas.worker_starts():
        first.setdefault(run, who)
    worked = Counter(first[name] for name in names)
    moved = len(replicas.worker_starts()) - len(first)
    print(
        f"\nsplit of {SPLIT_RUNS} runs: {dict(sorted(worked.items()))}; "
        f"run-worker starts beyond the first: {moved}"
    )
    assert set(worked) == {"r0", "r1", "r2"}
    for replica, count in worked.items():
        assert 0.20 <= count / SPLIT_RUNS <= 0.46, (replica, worked)


def test_a_killed_replicas_runs_continue_on_the_others(
    k8s: Cluster, tool: Tool, replicas: Replicas
) -> None:
    """SIGKILL one of three replicas while its runs wait on a slow tool: the others take
    its unfinished runs within one Lease period plus a margin; all pass, no twins."""
    tool.behave.update({"a": "sync-pass", "b": "slow", "c": "sync-pass"})
    tool.delay = 3.0
    setup_sequence(k8s, tool, "abc")
    for name in ("r0", "r1", "r2"):
        replicas.start(name)
    replicas.wait_acting(["r0", "r1", "r2"], 3)
    names = [f"kill-{i}" for i in range(45)]
    create_runs(k8s, names)

    def victims() -> set[str]:
        return {run for _, run, who in replicas.worker_starts() if who == "r1"}

    wait_for(lambda: len(victims()) >= 3, timeout=120, message="r1 works runs")
    unfinished = victims() - set(finished(k8s, names))
    killed_at = datetime.now()
    replicas.kill("r1")

    def taken_over() -> dict[str, datetime] | None:
        later: dict[str, datetime] = {}
        for when, run, who in replicas.worker_starts():  # in time order: the first start
            if who != "r1" and when > killed_at and run in unfinished:
                later.setdefault(run, when)
        return later if set(later) >= unfinished - set(finished(k8s, names)) else None

    wait_for(taken_over, timeout=LEASE_DURATION + 30, message="r1's runs taken over by the others")
    wait_all_finished(k8s, names, timeout=240)
    assert_no_twins(k8s, tool, names, "abc")
    moved = taken_over() or {}
    delays = sorted((when - killed_at).total_seconds() for when in moved.values())
    if delays:
        print(
            f"\nfailover after SIGKILL: {len(delays)} runs moved, first after {delays[0]:.1f} s, "
            f"median {statistics.median(delays):.1f} s (Lease {LEASE_DURATION:.0f} s)"
        )


def test_a_joining_replica_gets_about_a_third_of_new_work(
    k8s: Cluster, tool: Tool, replicas: Replicas
) -> None:
    """Two replicas work; a third joins while runs are in flight; it works about a third of
    the runs created after it joined; every run passes once, no twins."""
    tool.behave.update({"a": "sync-pass", "b": "slow"})
    tool.delay = 1.0
    setup_sequence(k8s, tool, "ab")
    for name in ("r0", "r1"):
        replicas.start(name)
    replicas.wait_acting(["r0", "r1"], 2)
    before = [f"before-{i}" for i in range(20)]
    create_runs(k8s, before)
    replicas.start("r2")
    replicas.wait_acting(["r0", "r1", "r2"], 3)
    after = [f"after-{i}" for i in range(60)]
    create_runs(k8s, after)
    wait_all_finished(k8s, before + after, timeout=300)
    assert_no_twins(k8s, tool, before + after, "ab")
    newcomer = {run for _, run, who in replicas.worker_starts() if who == "r2" and run in after}
    print(f"\nthe joining replica worked {len(newcomer)} of {len(after)} new runs")
    assert 0.15 <= len(newcomer) / len(after) <= 0.52


def stuck(k8s: Cluster, tool: Tool, names: list[str]) -> str:
    """What the unfinished runs of `names` wait for: their phase, their current task's
    execution and its providers, and what the tool received and answered (for a failure's
    message)."""
    done = finished(k8s, names)
    executions = {e["metadata"]["name"]: e for e in k8s.items("taskexecutions")}
    lines = []
    for run in k8s.items("sequenceruns"):
        name = run["metadata"]["name"]
        if name not in names or name in done:
            continue
        status = run.get("status") or {}
        tasks = status.get("tasks") or []
        current = tasks[-1] if tasks else {}
        execution = executions.get(str(current.get("execution")), {})
        lines.append(
            f"{name}: {status.get('phase')} rv={run['metadata']['resourceVersion']} "
            f"task={current} execution={execution.get('status')}"
        )
    answers = Counter(code for code, _ in list(tool.callbacks))
    return (
        f"{len(lines)} unfinished runs; tool received {len(tool.received)} events, its "
        "callbacks were answered " + str(dict(answers)) + "\n" + "\n".join(lines[:20])
    )


@pytest.mark.timeout(900)  # 20 kills and restarts: about 4 minutes here, more under load
def test_random_kills_and_restarts_lose_no_run_and_make_no_twin(
    k8s: Cluster, tool: Tool, replicas: Replicas
) -> None:
    """Three replicas, 200 runs created in 20 batches, a SIGKILL of a random replica after
    each batch once its work began, the victim restarted at once (as its Deployment would):
    every run passes, no twin, no task under two ids."""
    tool.behave.update({"a": "sync-pass", "b": "slow", "c": "async"})
    tool.delay = 1.0
    setup_sequence(k8s, tool, "abc")
    for name in ("r0", "r1", "r2"):
        replicas.start(name)
    replicas.wait_acting(["r0", "r1", "r2"], 3)
    names = [f"chaos-{i}" for i in range(CHAOS_RUNS)]
    per_kill = len(names) // CHAOS_KILLS
    chance = random.Random()
    kills = []
    for index in range(CHAOS_KILLS):
        batch = set(names[index * per_kill : (index + 1) * per_kill])
        create_runs(k8s, sorted(batch))
        # The kill lands while this batch (and what is left of the earlier ones) is worked.
        try:
            wait_for(
                lambda batch=batch: any(run in batch for _, run, _ in replicas.worker_starts()),
                timeout=180,
                interval=1.0,
                message=f"work on batch {index} began",
            )
        except WaitTimeoutError as error:
            raise AssertionError(f"{error}\n{stuck(k8s, tool, names)}") from error
        victim = chance.choice(replicas.running())
        replicas.kill(victim)
        kills.append(victim)
        replicas.start(victim)
    create_runs(k8s, names[CHAOS_KILLS * per_kill :])
    try:
        wait_all_finished(k8s, names, timeout=240)
    except WaitTimeoutError as error:
        raise AssertionError(f"{error}\n{stuck(k8s, tool, names)}") from error
    print(f"\nchaos: {len(names)} runs, {len(kills)} kills: {dict(Counter(kills))}")
    assert_no_twins(k8s, tool, names, "abc")


def test_a_paused_replica_does_not_act_when_it_wakes_without_its_runs(
    k8s: Cluster, tool: Tool, replicas: Replicas
) -> None:
    """SIGSTOP one replica longer than its Lease: the others finish every run, its own
    included; after SIGCONT it knows it is no member, writes nothing to any run or
    execution (every resourceVersion stays), and acts again only after rejoining."""
    tool.behave.update({"a": "slow", "b": "sync-pass"})
    tool.delay = 2.0
    setup_sequence(k8s, tool, "ab")
    for name in ("r0", "r1", "r2"):
        replicas.start(name)
    replicas.wait_acting(["r0", "r1", "r2"], 3)
    names = [f"pause-{i}" for i in range(24)]
    create_runs(k8s, names)
    wait_for(
        lambda: {run for _, run, who in replicas.worker_starts() if who == "r1"},
        timeout=120,
        message="r1 works runs",
    )
    replicas.pause("r1")
    replicas.wait_acting(["r0", "r2"], 2)
    wait_all_finished(k8s, names, timeout=240)

    def versions() -> dict[str, str]:
        return {
            f"{plural}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for plural in ("sequenceruns", "taskexecutions")
            for o in k8s.items(plural)
        }

    before = versions()
    log_size = len(replicas.processes["r1"].log())
    replicas.resume("r1")
    replicas.wait_acting(["r1"], 3, since=log_size)
    woke = replicas.processes["r1"].log()[log_size:]
    first = next(line for line in woke.splitlines() if "ownership: " in line)
    assert "not acting" in first, woke
    assert versions() == before
    assert_no_twins(k8s, tool, names, "ab")


def queue_records(api_client: Any, namespace: str) -> list[Any]:
    from kubernetes import client

    leases = client.CoordinationV1Api(api_client).list_namespaced_lease(
        namespace, label_selector=LABEL_QUEUE_OF
    )
    return list(leases.items)


def test_a_queue_of_limit_one_never_starts_two_runs_across_replicas(
    k8s: Cluster, tool: Tool, replicas: Replicas, api_client: Any
) -> None:
    """Three replicas, one queue of limit 1, its runs spread over all of them: the runs
    start one at a time (each starts after the one before finished, by their statuses),
    first in first out (their tasks reached the tool in that order too), and the queue's
    shared record is gone once the last run finished."""
    tool.behave["t"] = "slow"
    tool.delay = 1.0
    k8s.shipyard(
        "s",
        [
            stage(
                "dev",
                {
                    "name": "q",
                    "tasks": [{"name": "t"}],
                    "concurrency": {"limit": 1, "key": "one"},
                },
            )
        ],
    )
    k8s.provider("pt", "t", tool.url)
    for name in ("r0", "r1", "r2"):
        replicas.start(name)
    replicas.wait_acting(["r0", "r1", "r2"], 3)
    names = [f"queued-{i:02d}" for i in range(15)]
    create_runs_of(k8s, names, "q")
    runs = wait_all_finished(k8s, names, timeout=300)
    assert {n: r["status"]["result"] for n, r in runs.items()} == dict.fromkeys(names, "pass")
    workers = Counter(who for _, run, who in replicas.worker_starts() if run in names)
    print(f"\nqueue of limit 1 over three replicas: run workers by replica {dict(workers)}")
    assert len(workers) >= 2, workers  # the queue's runs really were split
    spans = sorted(
        (
            datetime.fromisoformat(r["status"]["startedAt"].replace("Z", "+00:00")),
            datetime.fromisoformat(r["status"]["finishedAt"].replace("Z", "+00:00")),
            name,
        )
        for name, r in runs.items()
    )
    for (_, finished_at, before), (started_at, _, after) in itertools.pairwise(spans):
        assert started_at >= finished_at, f"{after} started before {before} finished"
    assert [name for _, _, name in spans] == names  # first in, first out
    triggered = [e["data"]["run"]["name"] for e in tool.events("t")]
    assert [name for i, name in enumerate(triggered) if name not in triggered[:i]] == names
    wait_for(
        lambda: not queue_records(api_client, k8s.ns),
        timeout=30,
        message="the queue's record deleted after its last run",
    )


def test_queue_records_are_compare_and_swap(kubeconfig: Path, namespace: str) -> None:
    """Two replicas read a queue's record at the same version and both admit a run: the
    first write wins, the second is refused (409) and, read again, sees the first. The same
    for the record's creation. Released runs leave it; the last one deletes it."""

    async def scenario() -> None:
        api = await connect(str(kubeconfig))
        try:
            store = LeaseStore(api, namespace)
            one = QueueRecords(store, namespace, "r0")
            two = QueueRecords(store, namespace, "r1")
            seen_one = await one.read(namespace, "s", "k")
            seen_two = await two.read(namespace, "s", "k")
            assert seen_one.version is None
            assert seen_two.version is None
            await one.admit(seen_one, "a", [])
            with pytest.raises(KubeError) as refused:
                await two.admit(seen_two, "b", [])
            assert refused.value.conflict
            again = await two.read(namespace, "s", "k")
            assert again.admitted == ("a",)
            stale = await one.read(namespace, "s", "k")
            await two.admit(again, "b", list(again.admitted))
            with pytest.raises(KubeError) as refused:
                await one.admit(stale, "c", list(stale.admitted))
            assert refused.value.conflict
            assert (await one.read(namespace, "s", "k")).admitted == ("a", "b")
            await one.release(namespace, "s", "k", "a")
            assert (await one.read(namespace, "s", "k")).admitted == ("b",)
            await two.release(namespace, "s", "k", "b")
            assert (await one.read(namespace, "s", "k")).version is None
        finally:
            await api.close()

    run_async(scenario())
