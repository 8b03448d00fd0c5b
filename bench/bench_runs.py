"""`make bench`: how fast runs go and what the operator costs, on the local control plane.

Starts (or reuses) the local control plane, one operator process and the synchronous example
tool, then, for each of `--rounds` rounds, creates `--runs` SequenceRuns of a 3-task sequence
at once and waits for all of them. Prints per round: wall time, runs per second, the median
and 95th percentile of a run's duration (created → finished, from its status), the median
hop (a tool's `.finished` sent → the next `.triggered` received), and the operator's resident
memory (now and peak). Figures, not assertions: the machine's noise is reported as the
spread across rounds; quote medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tasks" / "demo"))

from harness import (  # noqa: E402  (a sibling folder's module, after the path is set)
    free_port,
    fresh_namespace,
    kubectl,
    start_operator,
    stop,
    wait,
)
from run_demo import hops  # noqa: E402

NAMESPACE = "slipway-bench"


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of `pid` in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    fresh_namespace(NAMESPACE)

    work = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    log = work / "tools.jsonl"
    tool_port = free_port()
    tool = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tasks" / "demo" / "tools.py"),
            "--port",
            str(tool_port),
            "--mode",
            "sync",
            "--log",
            str(log),
        ]
    )
    children = [tool]
    try:
        operator, _ = start_operator(NAMESPACE, work)
        children.append(operator)
        tasks = [{"name": f"t{i}"} for i in range(3)]
        objects = [
            {
                "apiVersion": "slipway.dev/v1alpha1",
                "kind": "Shipyard",
                "metadata": {"name": "bench"},
                "spec": {
                    "stages": [{"name": "dev", "sequences": [{"name": "seq", "tasks": tasks}]}]
                },
            }
        ]
        objects += [
            {
                "apiVersion": "slipway.dev/v1alpha1",
                "kind": "TaskProvider",
                "metadata": {"name": t["name"]},
                "spec": {
                    "task": t["name"],
                    "cloudEvent": {"url": f"http://127.0.0.1:{tool_port}/"},
                },
            }
            for t in tasks
        ]
        kubectl(
            "apply",
            "-n",
            NAMESPACE,
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        )
        idle_rss = rss_kib(operator.pid)[0]
        print(f"operator idle RSS: {idle_rss / 1024:.1f} MiB")
        print(
            f"{'round':>5} {'runs':>5} {'wall s':>7} {'runs/s':>7} {'p50 run s':>9} "
            f"{'p95 run s':>9} {'p50 hop ms':>10} {'CPU ms/task':>11} {'RSS MiB':>8} "
            f"{'peak MiB':>8}"
        )
        for round_ in range(args.rounds):
            log.write_text("")
            names = [f"r{round_}-{i}" for i in range(args.runs)]
            runs = [
                {
                    "apiVersion": "slipway.dev/v1alpha1",
                    "kind": "SequenceRun",
                    "metadata": {"name": n},
                    "spec": {
                        "shipyard": "bench",
                        "stage": "dev",
                        "sequence": "seq",
                        "data": {"number": "+44 20 7946 0958"},
                    },
                }
                for n in names
            ]
            started = time.monotonic()
            cpu_before = cpu_seconds(operator.pid)
            kubectl(
                "create",
                "-n",
                NAMESPACE,
                "-f",
                "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": runs}),
            )

            def all_finished(names: list[str] = names) -> list[dict[str, Any]] | None:
                items = json.loads(kubectl("get", "sequenceruns", "-n", NAMESPACE, "-o", "json"))[
                    "items"
                ]
                mine = [r for r in items if r["metadata"]["name"] in names]
                done = [r for r in mine if (r.get("status") or {}).get("phase") == "Finished"]
                return done if len(done) == len(names) else None

            done = wait(all_finished, 600, f"round {round_}")
            wall = time.monotonic() - started
            durations = [
                (
                    stamp(r["status"]["finishedAt"]) - stamp(r["metadata"]["creationTimestamp"])
                ).total_seconds()
                for r in done
            ]
            failed = [r["metadata"]["name"] for r in done if r["status"].get("result") != "pass"]
            measured = hops(log)
            now, peak = rss_kib(operator.pid)
            tasks_run = sum(len(r["status"].get("tasks", [])) for r in done)
            cpu_ms_per_task = (cpu_seconds(operator.pid) - cpu_before) * 1000 / max(tasks_run, 1)
            print(
                f"{round_:>5} {len(names):>5} {wall:>7.2f} {len(names) / wall:>7.2f} "
                f"{statistics.median(durations):>9.2f} {percentile(durations, 0.95):>9.2f} "
                f"{statistics.median(measured) * 1000 if measured else float('nan'):>10.0f} "
                f"{cpu_ms_per_task:>11.0f} {now / 1024:>8.1f} {peak / 1024:>8.1f}"
            )
            if failed:
                print(f"      runs not passing: {failed}")
        print(
            f"machine: {os.cpu_count()} cores; hop = a tool's .finished sent -> the next "
            ".triggered received (paired per run by event id)"
        )
        return 0
    finally:
        stop(children)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)


if __name__ == "__main__":
    raise SystemExit(main())
