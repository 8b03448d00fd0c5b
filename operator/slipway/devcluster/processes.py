"""Background programs of the local control plane, Argo CD and the real node: start one with a
log file and a pid file, tell whether it still runs, wait until it is ready, stop it.

A `Processes` keeps its files in two folders: `<run>/<name>.pid` (the pid, one line) and
`<logs>/<name>.log` (stdout and stderr, appended; each start writes a marker line first, so a
log tail in an error shows that start). Each program runs in a session of its own (it outlives
the shell that started it; `stop` signals its process group). A pid file may outlive its
process and the pid be reused: a recorded pid counts only while `/proc/<pid>/cmdline` names the
program, or, for a process this Python process started, while its Popen has not exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

#: Processes this Python process started, by pid: kept so a Popen is not garbage-collected
#: while its process runs, and reaped by `stop` (no zombie left behind). Shared by every
#: `Processes`, as pids are unique.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def program_name(cmdline: bytes) -> str:
    """The program's file name from a `/proc/<pid>/cmdline` (NUL-separated argv): the first
    word of argv[0], as Redis rewrites its title to "<path> <address>". "" for a zombie."""
    first = cmdline.split(b"\0")[0].decode(errors="replace")
    return Path(first.split(" ")[0]).name if first else ""


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, or "(no log)"."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 2) -> bool:
    """Whether `url` answers 200 (a readiness probe: any error is "not yet")."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def proc_state(pid: int) -> str | None:
    """The state letter of `/proc/<pid>/stat` (R, S, Z…), None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _signal(pid: int, sig: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def terminate(pid: int, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to a process found by other means than a pid file (e.g. containerd's shims)
    and wait up to `timeout` seconds for it to go (or become a zombie); then SIGKILL."""
    child = _CHILDREN.pop(pid, None)
    _signal(pid, sig, group=False)
    if child is not None:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if proc_state(pid) in ("Z", None):
            return
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL, group=False)


class Processes:
    """The background programs whose pid files are in `run` and logs in `logs`."""

    def __init__(self, run: Path, logs: Path) -> None:
        self.run = run
        self.logs = logs

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def recorded_pid(self, name: str) -> int | None:
        """The pid in `name`'s pid file (the process may be gone)."""
        try:
            return int(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def pid(self, name: str) -> int | None:
        """The pid of our running `name` process, or None. For a process this one started,
        its Popen answers: right after the fork its cmdline is still Python's."""
        pid = self.recorded_pid(name)
        if pid is None:
            return None
        child = _CHILDREN.get(pid)
        if child is not None:
            return pid if child.poll() is None else None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # A recycled pid belongs to some other program: then ours is gone.
        return pid if program_name(cmdline) == name else None

    def pids(self, names: Iterable[str]) -> dict[str, int | None]:
        return {name: self.pid(name) for name in names}

    def start(
        self,
        name: str,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a session of its own, its output appended to `name`'s log, and
        record its pid."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        with open(self.log_file(name), "ab") as out:
            out.write(f"--- slipway: starting {name} at {time.ctime()} ---\n".encode())
            out.flush()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,  # outlives the starting shell; `stop` ends it
            )
        _CHILDREN[process.pid] = process
        self.pid_file(name).write_text(f"{process.pid}\n")
        return process

    def wait_ready(
        self, name: str, ready: Callable[[], object], deadline: float, interval: float = 0.2
    ) -> bool:
        """Wait until `ready()` is true: True then; False when `name` exits first or the
        monotonic `deadline` passes (the caller stops what it started and shows `log_tail`)."""
        while time.monotonic() < deadline:
            if ready():
                return True
            if self.pid(name) is None:
                return False
            time.sleep(interval)
        return False

    def log_tail(self, name: str, lines: int = 30) -> str:
        return log_tail(self.log_file(name), lines)

    def stop(self, names: Iterable[str], timeout: float = 20, group: bool = True) -> list[str]:
        """Stop the `names` processes (given in stopping order): SIGTERM to each that runs (to
        its process group with `group`), SIGKILL to any still there after `timeout` seconds;
        reap the ones this process started and remove every pid file. Returns the names that
        were running."""
        recorded = {name: self.recorded_pid(name) for name in names}
        alive = {name: pid for name, pid in recorded.items() if pid and self.pid(name)}
        for pid in alive.values():
            _signal(pid, signal.SIGTERM, group)
        deadline = time.monotonic() + timeout
        for name, pid in alive.items():
            while self.pid(name) is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid(name) is not None:
                _signal(pid, signal.SIGKILL, group)
        for name, recorded_pid in recorded.items():
            child = _CHILDREN.pop(recorded_pid, None) if recorded_pid else None
            if child is not None:
                if child.poll() is None:  # one of ours that is still there: no more waiting
                    _signal(child.pid, signal.SIGKILL, group)
                child.wait(timeout=timeout)  # reap: no zombie left behind
            self.pid_file(name).unlink(missing_ok=True)
        return list(alive)
