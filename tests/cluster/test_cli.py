"""`slipway` / `kubectl slipway` against the real control plane and gateway: the installed
console scripts run as subprocesses, their output piped (as a script would read it), and
their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.objects import Cluster, sequence, stage
from tests.conftest import OperatorProcess
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

BIN = Path(sys.executable).parent


def cli(
    operator: OperatorProcess, *args: str, program: str = "slipway", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed command with the test's kubeconfig and the operator's gateway."""
    env = {**os.environ, "SLIPWAY_GATEWAY_URL": operator.gateway_url}
    return subprocess.run(
        [str(BIN / program), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture
def seeded(k8s: Cluster, tool: Tool) -> Cluster:
    """A Shipyard with a two-task sequence that passes, one that fails and one that hangs."""
    tool.behave.update(
        {"first": "sync-pass", "second": "async", "breaks": "sync-fail", "hangs": "silent"}
    )
    k8s.shipyard(
        "obs",
        [
            stage(
                "dev",
                sequence("two", "first", "second"),
                sequence("bad", "breaks"),
                sequence("stuck", "hangs"),
            )
        ],
    )
    for task in ("first", "second", "breaks", "hangs"):
        k8s.provider(f"p-{task}", task, tool.url)
    return k8s


def test_trigger_wait_get_watch_list_rerun(seeded: Cluster, operator: OperatorProcess) -> None:
    """capabilities lists the sequences; `kubectl slipway trigger --wait` starts a run
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
        "STARTED",
        "ON",
    ]
    assert any(
        line.split()[:4] == ["obs", "dev.two", "first,", "second"]
        for line in found.stdout.splitlines()
    )
    listed = json.loads(cli(operator, "capabilities", "-n", ns, "-o", "json").stdout)
    assert {(r["stage"], r["sequence"]) for r in listed} == {
        ("dev", "two"),
        ("dev", "bad"),
        ("dev", "stuck"),
    }

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
