"""slipway.devcluster.processes without a cluster: program names from /proc cmdlines, log tails,
pid files, and a real child program (`sleep`) started, waited for and stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slipway.devcluster.processes import (
    Processes,
    http_ok,
    log_tail,
    proc_state,
    program_name,
    terminate,
)


def test_program_name_is_the_first_word_of_argv0() -> None:
    """The file name of argv[0]; Redis' rewritten title counts by its first word; a zombie's
    empty cmdline names nothing."""
    assert program_name(b"/usr/bin/kube-apiserver\0--secure-port=1\0") == "kube-apiserver"
    assert program_name(b"/usr/bin/redis-server 127.0.0.1:6379\0\0") == "redis-server"
    assert program_name(b"etcd\0") == "etcd"
    assert program_name(b"") == ""


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert log_tail(log) == "(no log)"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    assert log_tail(log, 3) == "line 47\nline 48\nline 49"


def test_pid_file_alone_is_not_a_running_process(tmp_path: Path) -> None:
    """A missing or unreadable pid file, and a pid that runs another program (this test's
    Python, not `etcd`), are no running process."""
    processes = Processes(tmp_path / "run", tmp_path / "logs")
    assert processes.pid("etcd") is None
    processes.run.mkdir()
    processes.pid_file("etcd").write_text("not a number\n")
    assert (processes.recorded_pid("etcd"), processes.pid("etcd")) == (None, None)
    processes.pid_file("etcd").write_text(f"{os.getpid()}\n")
    assert processes.recorded_pid("etcd") == os.getpid()
    assert processes.pid("etcd") is None  # a recycled pid: some other program
    assert processes.stop(["etcd"]) == []
    assert not processes.pid_file("etcd").exists()


@pytest.mark.skipif(shutil.which("sleep") is None, reason="needs sleep(1)")
def test_start_wait_and_stop_a_program(tmp_path: Path) -> None:
    """A started program has a pid file, a log with a start marker and its own session;
    `wait_ready` is True once ready, False when it exits first; `stop` ends it (SIGTERM),
    reaps it and removes the pid file."""
    processes = Processes(tmp_path / "run", tmp_path / "logs")
    sleep = shutil.which("sleep")
    assert sleep is not None
    child = processes.start("sleep", [sleep, "300"], tmp_path)
    assert processes.recorded_pid("sleep") == child.pid
    assert processes.pid("sleep") == child.pid
    assert os.getsid(child.pid) == child.pid  # a session of its own
    assert processes.log_tail("sleep").startswith("--- slipway: starting sleep at ")
    assert processes.pids(["sleep", "other"]) == {"sleep": child.pid, "other": None}
    assert processes.wait_ready("sleep", lambda: True, time.monotonic() + 5)
    assert not processes.wait_ready("sleep", lambda: False, time.monotonic() + 0.3)

    assert processes.stop(["sleep"], timeout=10) == ["sleep"]
    assert child.returncode == -signal.SIGTERM
    assert processes.pid("sleep") is None
    assert not processes.pid_file("sleep").exists()

    short = processes.start("true", [shutil.which("true") or "true"], tmp_path)
    short.wait(10)
    assert not processes.wait_ready("true", lambda: False, time.monotonic() + 30)
    assert processes.stop(["true"]) == []


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    """A program that ignores SIGTERM is SIGKILLed once `timeout` passes."""
    processes = Processes(tmp_path / "run", tmp_path / "logs")
    script = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + (
        "print('ready', flush=True); time.sleep(300)"
    )
    child = processes.start("stubborn", [sys.executable, "-c", script], tmp_path)
    assert processes.wait_ready(
        "stubborn", lambda: "ready" in processes.log_tail("stubborn"), time.monotonic() + 30
    )
    assert processes.stop(["stubborn"], timeout=0.5) == ["stubborn"]
    assert child.returncode == -signal.SIGKILL


def test_terminate_a_process_found_otherwise() -> None:
    """`terminate` ends a process that is neither in a pid file nor a child of this one (as
    containerd's shims): here a `sleep` whose parent shell has exited."""
    shell = subprocess.run(
        ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    orphan = int(shell.stdout)
    try:
        assert proc_state(orphan) in ("R", "S")
        terminate(orphan, timeout=10)
        assert proc_state(orphan) in ("Z", None)  # gone, or waiting for its new parent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


def test_http_ok_is_false_without_a_server() -> None:
    assert not http_ok("http://127.0.0.1:9/healthz", timeout=1)
