"""`slipway` / `kubectl slipway` against the real control plane and gateway: the installed
console scripts run as subprocesses, their output piped (as a script would read it), and
their exit codes."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.objects import Cluster, G, V, sequence, stage
from tests.conftest import OperatorProcess
from tests.helpers import run_async
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

BIN = Path(sys.executable).parent


def cli_env(operator: OperatorProcess, gateway: bool = True) -> dict[str, str]:
    """The test's environment (its kubeconfig), with the operator's gateway or without one."""
    env = {k: v for k, v in os.environ.items() if k != "SLIPWAY_GATEWAY_URL"}
    return {**env, "SLIPWAY_GATEWAY_URL": operator.gateway_url} if gateway else env


def cli(
    operator: OperatorProcess,
    *args: str,
    program: str = "slipway",
    timeout: float = 120,
    gateway: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the installed command with the test's kubeconfig and (unless not `gateway`) the
    operator's gateway."""
    return subprocess.run(
        [str(BIN / program), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(operator, gateway),
        check=False,
    )


def read_line_with(process: subprocess.Popen[str], word: str, timeout: float = 60) -> str:
    """The first line `process` prints that holds `word`; fails the test after `timeout`."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        line = process.stdout.readline() if ready else ""
        if word in line:
            return line
        assert line or not ready, f"the command ended before printing {word!r}"
    raise AssertionError(f"no line with {word!r} within {timeout:g} s")


@pytest.fixture
def seeded(k8s: Cluster, tool: Tool) -> Cluster:
    """A Shipyard with a two-task sequence that passes, one that fails and one that hangs;
    the first and the last have a title (they are capabilities)."""
    tool.behave.update(
        {"first": "sync-pass", "second": "async", "breaks": "sync-fail", "hangs": "silent"}
    )
    k8s.shipyard(
        "obs",
        [
            stage(
                "dev",
                sequence("two", "first", "second", title="Two tasks"),
                sequence("bad", "breaks"),
                sequence("stuck", "hangs", title="Never ends"),
            )
        ],
    )
    for task in ("first", "second", "breaks", "hangs"):
        k8s.provider(f"p-{task}", task, tool.url)
    return k8s


def test_trigger_wait_get_watch_list_rerun(seeded: Cluster, operator: OperatorProcess) -> None:
    """capabilities lists the titled sequences, the same from the gateway and from the
    Shipyards; `kubectl slipway trigger --wait` starts a run
    through the gateway and prints its tasks and verdict as plain lines when piped (exit 0);
    get, watch of the finished run, list with filters and rerun agree with the cluster; a
    failing run exits 1; json and yaml outputs parse."""
    ns = seeded.ns
    found = cli(operator, "capabilities", "-n", ns, program="kubectl-slipway")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[0].split() == [
        "SHIPYARD",
        "STAGE.SEQUENCE",
        "TASKS",
        "INPUTS",
        "TITLE",
    ]
    assert [line.split() for line in found.stdout.splitlines()[1:]] == [
        ["obs", "dev.two", "first,", "second", "-", "Two", "tasks"],
        ["obs", "dev.stuck", "hangs", "-", "Never", "ends"],
    ]
    listed = json.loads(cli(operator, "capabilities", "-n", ns, "-o", "json").stdout)
    assert [(r["id"], r["title"], r["tasks"]) for r in listed] == [
        (f"{ns}/obs/dev/two", "Two tasks", ["first", "second"]),
        (f"{ns}/obs/dev/stuck", "Never ends", ["hangs"]),
    ]
    # Without a gateway URL the command reads the Shipyards: the very same items.
    direct = cli(operator, "capabilities", "-n", ns, "-o", "json", gateway=False)
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout) == listed
    # A gateway that is named but down is an error, not a silent switch to the Shipyards.
    down = cli(operator, "capabilities", "-n", ns, "--gateway", "http://127.0.0.1:9")
    assert down.returncode == 5, down.stderr
    assert down.stderr.startswith("slipway: cannot reach the gateway at http://127.0.0.1:9")

    done = cli(
        operator,
        "trigger",
        "dev.two",
        "-n",
        ns,
        "--data",
        "who=me",
        "--wait",
        program="kubectl-slipway",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"triggered dev.two: run {ns}/two-")
    name = lines[0].rsplit("/", 1)[1]
    assert "\x1b[" not in done.stdout  # piped: no cursor movement
    assert (
        lines[-1] == "verdict: pass (Completed): sequence dev.two finished with pass after 2 tasks"
    )
    finished = [line.split()[:3] for line in lines if "pass" in line.split()[2:3]]
    assert finished == [["✔", "first", "pass"], ["✔", "second", "pass"]]

    completion = {
        **os.environ,
        "_SLIPWAY_COMPLETE": "bash_complete",
        "COMP_WORDS": f"slipway get -n {ns} two",
        "COMP_CWORD": "4",
    }
    completed = subprocess.run(
        [str(BIN / "slipway")], capture_output=True, text=True, env=completion, timeout=60
    )
    assert f"plain,{name}" in completed.stdout.splitlines()  # RUN completes to run names

    run = json.loads(cli(operator, "get", name, "-n", ns, "-o", "json").stdout)
    assert run["status"]["phase"] == "Finished"
    assert run["spec"]["data"] == {"who": "me"}
    as_yaml = yaml.safe_load(cli(operator, "get", name, "-n", ns, "-o", "yaml").stdout)
    assert as_yaml["metadata"]["name"] == name
    tree = cli(operator, "get", name, "-n", ns).stdout.splitlines()
    assert tree[0].startswith(f"✔ {name}  dev.two (Shipyard obs)  pass")
    assert [t.split()[:4] for t in tree[1:3]] == [
        ["├─", "✔", "first", "pass"],
        ["└─", "✔", "second", "pass"],
    ]

    watched = cli(operator, "watch", name, "-n", ns)  # a finished run: its story, then exit
    assert watched.returncode == 0, watched.stderr
    assert [line.split()[:3] for line in watched.stdout.splitlines()] == [
        ["✔", "first", "pass"],
        ["✔", "second", "pass"],
        ["verdict:", "pass", "(Completed):"],
    ]
    summary = [
        json.loads(line)
        for line in cli(operator, "watch", name, "-n", ns, "-o", "json").stdout.splitlines()
    ]
    assert [(s["name"], s["result"]) for s in summary] == [(name, "pass")]

    bad = cli(operator, "trigger", "dev.bad", "-n", ns, "--wait", "-o", "json")
    assert bad.returncode == 1, bad.stderr
    assert [json.loads(line)["result"] for line in bad.stdout.splitlines()][-1] == "fail"

    runs = json.loads(cli(operator, "list", "-n", ns, "-o", "json").stdout)
    assert {r["sequence"]: r["result"] for r in runs} == {"two": "pass", "bad": "fail"}
    only = cli(operator, "list", "-n", ns, "--result", "fail")
    assert only.returncode == 0
    assert [line.split()[:4] for line in only.stdout.splitlines()][1][1:4] == [
        "dev.bad",
        "obs",
        "fail",
    ]
    none = cli(operator, "list", "-n", ns, "--sequence", "stuck")
    assert (none.returncode, none.stdout, none.stderr.strip()) == (0, "", "no runs match")

    again = cli(operator, "rerun", name, "-n", ns, "--wait", "-o", "json")
    assert again.returncode == 0, again.stderr
    rerun = [json.loads(line) for line in again.stdout.splitlines()][-1]
    assert rerun["name"] != name
    assert rerun["result"] == "pass"
    copy = seeded.get("sequenceruns", rerun["name"])
    assert copy["spec"]["data"] == {"who": "me"}
    assert copy["metadata"]["annotations"]["slipway.dev/rerun-of"] == name


def test_abort_and_errors_with_exit_codes(seeded: Cluster, operator: OperatorProcess) -> None:
    """abort stops a hanging run (which then ends fail, Aborted; watching it exits 1); each
    mistake is one line on stderr with its documented exit code."""
    ns = seeded.ns
    started = cli(operator, "trigger", "dev.stuck", "-n", ns, "-o", "json")
    assert started.returncode == 0, started.stderr
    name = json.loads(started.stdout)["run"]
    aborted = cli(operator, "abort", name, "-n", ns)
    assert (aborted.returncode, aborted.stdout.strip()) == (
        0,
        f"run {ns}/{name} aborting (spec.abort set)",
    )
    watched = cli(operator, "watch", name, "-n", ns, "--timeout", "60")
    assert watched.returncode == 1, watched.stderr
    assert watched.stdout.splitlines()[-1].startswith("verdict: fail (Aborted)")

    mistakes = {
        ("get", "nope", "-n", ns): (3, f"slipway: SequenceRun {ns}/nope not found"),
        ("trigger", "dev", "-n", ns): (2, "slipway: 'dev': say which sequence as STAGE.SEQUENCE"),
        ("trigger", "dev.nope", "-n", ns): (
            3,
            "slipway: the gateway refused (422): Shipyard obs has no sequence",
        ),
        ("trigger", "dev.two", "-n", ns, "--token", "bad"): (
            4,
            "slipway: the gateway refused (401)",
        ),
        ("trigger", "dev.two", "-n", ns, "--gateway", "http://127.0.0.1:9"): (
            5,
            "slipway: cannot reach the gateway at http://127.0.0.1:9",
        ),
        ("trigger", "dev.two", "-n", ns, "--data", "shipyard=x"): (
            2,
            "slipway: input keys shipyard are Slipway's own",
        ),
        ("trigger", "dev.two", "-n", ns, "--data-file", "/nonexistent.json"): (
            2,
            "slipway: --data-file /nonexistent.json:",
        ),
        ("trigger", "dev.two", "-n", ns, "--data", "novalue"): (
            2,
            "slipway: --data 'novalue': write KEY=VALUE",
        ),
        ("list", "--phase", "sideways"): (2, "slipway: Invalid value for '--phase'"),
        ("abort",): (2, "slipway: Missing argument 'RUN'"),
    }
    for args, (code, start) in mistakes.items():
        answer = cli(operator, *args)
        assert answer.returncode == code, (args, answer.stdout, answer.stderr)
        assert len(answer.stderr.strip().splitlines()) == 1, (args, answer.stderr)
        assert answer.stderr.startswith(start), (args, answer.stderr)


def test_watch_follows_a_running_run_to_its_end_or_deletion(
    seeded: Cluster, operator: OperatorProcess
) -> None:
    """`watch` started while a run hangs shows it running, then its verdict when it is
    aborted (exit 1); a run deleted while watched ends `watch` with exit 3."""
    ns = seeded.ns
    names = []
    for _ in range(2):
        started = cli(operator, "trigger", "dev.stuck", "-n", ns, "-o", "json")
        assert started.returncode == 0, started.stderr
        names.append(json.loads(started.stdout)["run"])
    watchers = [
        subprocess.Popen(
            [str(BIN / "slipway"), "watch", name, "-n", ns, "--timeout", "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(operator, gateway=False),
        )
        for name in names
    ]
    try:
        for watcher in watchers:
            assert "hangs" in read_line_with(watcher, "running")
        aborted, deleted = names
        assert cli(operator, "abort", aborted, "-n", ns).returncode == 0
        out, err = watchers[0].communicate(timeout=120)
        assert watchers[0].returncode == 1, err
        assert out.splitlines()[-1].startswith("verdict: fail (Aborted)"), out
        seeded.custom.delete_namespaced_custom_object(G, V, ns, "sequenceruns", deleted)
        out, err = watchers[1].communicate(timeout=120)
        assert watchers[1].returncode == 3, err
        # "was deleted" from the watch ("not found" if it fell between two watches)
        assert err.startswith(f"slipway: SequenceRun {ns}/{deleted} "), err
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
                watcher.communicate()


def test_run_states_come_from_one_watch(
    k8s: Cluster, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`watch` follows a run with a Kubernetes watch, not by reading it again: three changes
    arrive, in order, and the run is never read after the first time."""
    from slipway.cli import runs
    from slipway.cli.common import Session
    from slipway.kube.client import Kube, Ref, connect

    monkeypatch.setattr(runs, "WATCH_SECONDS", 3600)  # no re-read when a watch times out
    k8s.run("w", "obs", "dev", "two")

    async def scenario() -> tuple[list[str], int]:
        kube = Kube(await connect(str(kubeconfig)))
        reads = 0
        read = kube.get

        async def counted(ref: Ref) -> dict[str, object] | None:
            nonlocal reads
            reads += 1
            return await read(ref)

        try:
            ref = Ref("sequenceruns", k8s.ns, "w")
            first = await kube.get(ref)
            assert first is not None
            monkeypatch.setattr(kube, "get", counted)
            states = runs.run_states(Session(kube, k8s.ns), "w", first, time.monotonic() + 120)
            seen = []
            for n in range(3):
                await kube.patch(ref, {"metadata": {"annotations": {"test/n": str(n)}}})
                state = await anext(states)
                seen.append(state["metadata"]["annotations"]["test/n"])
            await states.aclose()
            return seen, reads
        finally:
            await kube.close()

    assert run_async(scenario()) == (["0", "1", "2"], 0)


def test_completion_and_help_name_the_commands(operator: OperatorProcess) -> None:
    """Shell completion completes subcommands; --help lists every one and the exit codes."""
    script = cli(operator, "completion", "bash")
    assert script.returncode == 0
    assert "_SLIPWAY_COMPLETE" in script.stdout
    env = {
        **os.environ,
        "_SLIPWAY_COMPLETE": "bash_complete",
        "COMP_WORDS": "slipway tr",
        "COMP_CWORD": "1",
    }
    completed = subprocess.run(
        [str(BIN / "slipway")], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert "trigger" in completed.stdout
    help_text = cli(operator, "--help").stdout
    for command in (
        "capabilities",
        "trigger",
        "get",
        "watch",
        "list",
        "abort",
        "rerun",
        "evaluate",
        "invalidate",
        "dev",
        "completion",
        "run",
    ):
        assert f"  {command}" in help_text
    assert "Exit codes: 0 done" in help_text
    status = cli(operator, "dev", "cluster", "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["api"].startswith("https://")
