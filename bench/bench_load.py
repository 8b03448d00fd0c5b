"""`make bench ARGS="--load"`: triggers at a fixed rate against the gateway, on loopback.

Starts (or reuses) the local control plane, one operator and the synchronous example tool
(it answers every `.triggered` at once), then POSTs `<stage>.<sequence>.triggered` events at
`--rate` per second for `--seconds` seconds, open loop: a slow answer does not slow the
sender, as a real crowd of clients would not slow down. Then it waits (up to `--drain`
seconds) for the accepted runs to finish and prints:
- accepted (202), refused (503 or 429, with Retry-After), any other answer;
- lost: accepted runs that do not exist (must be 0), and accepted runs not finished by the end
  of the drain (the operator's backlog, not a loss: they finish later);
- the gateway's p50 and p99 answer time;
- the operator's peak resident memory (and now).

`--data-kib N` gives each run N KiB of data (e.g. `--rate 10 --seconds 10 --data-kib 480`:
a hundred runs of nearly half a MiB each, for the operator's memory with large data).
Figures, not assertions; on a shared machine quote them with its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tasks" / "demo"))

from harness import (  # noqa: E402  (a sibling folder's module, after the path is set)
    apply_objects,
    client_token,
    fresh_namespace,
    kubectl,
    start_operator,
    start_tool,
    stop,
)

NAMESPACE = "slipway-load"


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of `pid` in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


async def send_load(
    url: str, token: str, rate: float, seconds: float, data: dict[str, Any]
) -> list[tuple[float, int, str]]:
    """POST triggers at `rate` per second for `seconds`; (latency s, status, run) each."""
    results: list[tuple[float, int, str]] = []
    connector = aiohttp.TCPConnector(limit=1000)
    timeout = aiohttp.ClientTimeout(total=120)
    headers = {"Content-Type": "application/cloudevents+json", "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            event = {
                "specversion": "1.0",
                "id": uuid.uuid4().hex,
                "source": "bench/load",
                "type": "dev.load.triggered",
                "data": data,
            }
            began = time.perf_counter()
            try:
                async with session.post(url, data=json.dumps(event), headers=headers) as reply:
                    body = await reply.json(content_type=None)
                    run = ""
                    if isinstance(body, dict):  # the run, or the error code of a refusal
                        run = str(body.get("run") or body.get("error") or "")
                    results.append((time.perf_counter() - began, reply.status, run))
            except (aiohttp.ClientError, TimeoutError) as error:
                results.append((time.perf_counter() - began, 0, type(error).__name__))

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return results


def runs_by_phase() -> dict[str, str]:
    """Every SequenceRun of the namespace and its phase, as the API server's table (the
    printer columns only: runs with large data would make a full listing huge), paged."""
    from kubernetes import config

    api = config.new_client_from_config()
    phases: dict[str, str] = {}
    token = None
    while True:
        query: list[tuple[str, Any]] = [("limit", 500)] + ([("continue", token)] if token else [])
        request = api.param_serialize(
            "GET",
            f"/apis/slipway.dev/v1alpha1/namespaces/{NAMESPACE}/sequenceruns",
            query_params=query,
            header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
            auth_settings=["BearerToken"],
        )
        answer = api.call_api(*request)
        answer.read()
        table = json.loads(answer.data)
        column = [c["name"] for c in table["columnDefinitions"]].index("Phase")
        for row in table["rows"]:
            phases[row["object"]["metadata"]["name"]] = row["cells"][column] or ""
        token = table["metadata"].get("continue")
        if not token:
            break
    api.close()
    return phases


def one_round(
    args: argparse.Namespace, gateway: str, token: str, data: dict[str, Any], pid: int, idle: int
) -> bool:
    """Send one round of triggers, let the runs finish, print the figures; True when an
    accepted run was lost."""
    began = time.monotonic()
    results = asyncio.run(
        send_load(
            f"{gateway}/v1/namespaces/{NAMESPACE}/events", token, args.rate, args.seconds, data
        )
    )
    sent_for = time.monotonic() - began
    statuses = Counter(status for _, status, _ in results)
    accepted = {run for _, status, run in results if status == 202}
    refused = statuses[503] + statuses[429]
    latencies = [latency for latency, status, _ in results if status]
    peak_during = rss_kib(pid)[1]

    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:  # a condition with a deadline, listed every 5 s
        phases = runs_by_phase()
        if all(phases.get(run) == "Finished" for run in accepted):
            break
        time.sleep(5)
    drain_for = time.monotonic() - began - sent_for
    phases = runs_by_phase()
    missing = [run for run in accepted if run not in phases]
    unfinished = [run for run in accepted if phases.get(run) not in (None, "Finished")]
    now_rss, peak = rss_kib(pid)
    print(f"sent {len(results)} in {sent_for:.1f} s ({len(results) / sent_for:.0f}/s)")
    print(f"answers: {dict(sorted(statuses.items()))}  (0: no answer)")
    reasons = Counter(f"{status} {why}" for _, status, why in results if status >= 400)
    if reasons:
        print("refusals by reason:", ", ".join(f"{r}: {n}" for r, n in reasons.most_common()))
    print(
        f"accepted {len(accepted)}, refused {refused} (503/429), "
        f"other {len(results) - len(accepted) - refused}"
    )
    print(f"lost (accepted, no run): {len(missing)}")
    print(f"not finished after {drain_for:.0f} s of drain: {len(unfinished)}")
    print(
        f"gateway answer time p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms"
    )
    print(
        f"operator RSS: idle {idle / 1024:.1f} MiB, "
        f"peak while sending {peak_during / 1024:.1f} MiB, "
        f"peak {peak / 1024:.1f} MiB, now {now_rss / 1024:.1f} MiB"
    )
    return bool(missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="triggers per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--data-kib", type=int, default=0, help="KiB of data per run")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to let runs finish")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="send and drain this many times (memory after each: kept, or reused?)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="then wait this long and print the operator's memory again (e.g. 45)",
    )
    args = parser.parse_args(argv)

    fresh_namespace(NAMESPACE)
    work = Path(tempfile.mkdtemp(prefix="slipway-load-"))
    tool, tool_port = start_tool("sync", quiet=True)
    children = [tool]
    try:
        shipyard = {
            "apiVersion": "slipway.dev/v1alpha1",
            "kind": "Shipyard",
            "metadata": {"name": "load"},
            "spec": {
                "stages": [
                    {"name": "dev", "sequences": [{"name": "load", "tasks": [{"name": "t"}]}]}
                ],
                # keep every finished run: retention deleting them would count as lost
                "history": {"successfulRuns": 100_000, "failedRuns": 100_000},
            },
        }
        provider = {
            "apiVersion": "slipway.dev/v1alpha1",
            "kind": "TaskProvider",
            "metadata": {"name": "t"},
            "spec": {"task": "t", "cloudEvent": {"url": f"http://127.0.0.1:{tool_port}/"}},
        }
        apply_objects(NAMESPACE, [shipyard, provider])
        token = client_token(NAMESPACE)
        operator, gateway = start_operator(NAMESPACE, work)
        children.append(operator)
        idle = rss_kib(operator.pid)[0]
        data: dict[str, Any] = {"number": "+44 20 7946 0958"}
        if args.data_kib:
            data["blob"] = ["x" * 1000] * args.data_kib  # strings within the JSON limit
        print(
            f"load: {args.rate:g} triggers/s for {args.seconds:g} s, {args.data_kib} KiB data "
            f"each; operator idle RSS {idle / 1024:.1f} MiB; load average {os.getloadavg()[0]:.1f}"
        )
        failed = False
        for round_ in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"--- round {round_} of {args.rounds}")
            failed |= one_round(args, gateway, token, data, operator.pid, idle)
        if args.settle > 0:  # memory once nothing runs (the operator trims every 30 s)
            time.sleep(args.settle)
            print(
                f"operator RSS {args.settle:g} s after the last run finished: "
                f"{rss_kib(operator.pid)[0] / 1024:.1f} MiB"
            )
        return 1 if failed else 0
    finally:
        stop(children)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)


if __name__ == "__main__":
    sys.exit(main())
