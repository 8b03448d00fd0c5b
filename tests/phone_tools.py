"""The two checknumber tools (tasks/checknumber in Python, tasks/checknumber-js in Node.js)
as real processes for tests, the cases both must decide alike, and Slipway-made events."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from slipway.events import RunScope, build_task_triggered, to_http
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
PYTHON_TOOL = ROOT / "tasks" / "checknumber" / "checknumber.py"
JS_DIR = ROOT / "tasks" / "checknumber-js"
JS_TOOL = JS_DIR / "checknumber.js"
LISTENING = re.compile(r"listening on (http://\S+)")

#: (data.number, task properties, result, reason, type, country, e164) — the verdicts both
#: tools must give. Carrier, region and time zones are the Python tool's only.
CASES: list[tuple[Any, dict[str, Any] | None, str, str | None, str | None, str | None, Any]] = [
    ("+44 7400 123456", None, "pass", None, "mobile", "GB", "+447400123456"),
    ("+1 650-253-0000", None, "pass", None, "fixed_line_or_mobile", "US", "+16502530000"),
    ("+44 20 7946 0958", None, "pass", None, "fixed_line", "GB", "+442079460958"),
    ("+1 800 555 0199", None, "pass", None, "toll_free", "US", "+18005550199"),
    ("07400 123456", {"country": "GB"}, "pass", None, "mobile", "GB", "+447400123456"),
    ("07400 123456", {"country": "gb"}, "pass", None, "mobile", "GB", "+447400123456"),
    ("+44 7700 900123", None, "warning", "not_in_use", "unknown", "GB", "+447700900123"),
    ("+1 555 555 5555", None, "warning", "not_in_use", "unknown", "US", "+15555555555"),
    ("+44 12", None, "fail", "too_short", "unknown", "GB", "+4412"),
    ("+44 7400 1234567890", None, "fail", "too_long", "unknown", "GB", "+4474001234567890"),
    ("+999 1234 5678", None, "fail", "unknown_country_code", None, None, None),
    ("07400 123456", None, "fail", "no_country_code", None, None, None),
    ("07400 123456", {"country": "XX"}, "fail", "bad_country_property", None, None, None),
    ("call me maybe", None, "fail", "not_a_number", None, None, None),
    (447400123456, None, "fail", "not_text", None, None, None),
    (["+44 7400 123456"], None, "fail", "not_text", None, None, None),
    (None, None, "fail", "missing", None, None, None),
    ("   ", None, "fail", "missing", None, None, None),
    ("+" + "1" * 80, None, "fail", "too_long", None, None, None),
]
CASE_IDS = [f"{c[0]!r}-{c[1]}" for c in CASES]
#: (data.number, task properties, result, country): cases where both tools agree on the
#: verdict but their length checks name the reason differently (local numbers without an
#: area code: phonenumbers says local_only, libphonenumber-js too_short or invalid_length).
ROUGH_CASES: list[tuple[str, dict[str, Any] | None, str, str | None]] = [
    ("253-0000", {"country": "US"}, "fail", "US"),
    ("7946 0958", {"country": "GB"}, "fail", "GB"),
    ("+1 253 0000", None, "fail", "US"),
    ("+49 30 12", None, "warning", "DE"),
]


def triggered(
    number: Any = "+44 7400 123456",
    properties: dict[str, Any] | None = None,
    *,
    mode: str = "structured",
    prefix: str = "",
) -> tuple[dict[str, str], bytes]:
    """`checknumber.triggered` as the operator builds and sends it (headers, body)."""
    scope = RunScope("ns", "check-1", "osint", "dev", "sequence-one", "ctx-1")
    data = {} if number is None else {"number": number}
    event = build_task_triggered(
        scope,
        task="checknumber",
        execution="check-1-0-checknumber",
        event_id="ns/check-1-0-checknumber/phone/1",
        time=datetime.now(UTC),
        data=data,
        properties=properties,
        callback_url="http://127.0.0.1:1/v1/namespaces/ns/events",
        callback_token="token",
        prefix=prefix,
    )
    return to_http(event, mode)  # type: ignore[arg-type]


def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST and return (status, headers, body), for any status."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers.items()), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


class ToolProcess:
    """One tool as a child process serving HTTP on a free loopback port."""

    def __init__(self, command: list[str], log: Path, cwd: Path | None = None) -> None:
        self.log = log
        out = open(log, "wb")  # noqa: SIM115 (the child's; closed right after the start)
        self.process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={k: v for k, v in os.environ.items() if k != "SLIPWAY_EVENT"},
        )
        out.close()

        def listening() -> str | None:
            assert self.process.poll() is None, f"tool exited:\n{self.output()}"
            found = LISTENING.search(self.output())
            return found.group(1) if found else None

        self.url: str = wait_for(listening, timeout=30, message=f"{command} listening")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def python_tool(log: Path) -> ToolProcess:
    """tasks/checknumber as an HTTP service."""
    return ToolProcess([sys.executable, str(PYTHON_TOOL)], log)


def node() -> str:
    """The node binary, with the JS tool's packages installed (npm ci from its lock when they
    are missing); skips the test, saying why, where there is no node."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: the JavaScript checknumber tool cannot run here")
    if not (JS_DIR / "node_modules" / "libphonenumber-js").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install libphonenumber-js for the JS tool")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300)
    return found


def js_tool(log: Path) -> ToolProcess:
    """tasks/checknumber-js as an HTTP service."""
    return ToolProcess([node(), str(JS_TOOL)], log, cwd=JS_DIR)


def run_job(
    command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> tuple[int, Any, str]:
    """Run a tool as a Job container would be: (exit code, termination message, output)."""
    done = subprocess.run(
        command,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SLIPWAY_TERMINATION_LOG": str(log),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    written = json.loads(log.read_text()) if log.exists() else None
    return done.returncode, written, done.stdout + done.stderr
