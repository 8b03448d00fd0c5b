"""The example container task (tasks/checknumber-job): reads SLIPWAY_EVENT, writes its
verdict as the termination message, optionally calls back."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from slipway.api.common import Result
from slipway.providers.job_outcome import job_outcome

SCRIPT = Path(__file__).resolve().parents[2] / "tasks" / "checknumber-job" / "checknumber.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    """The script, imported as a module."""
    spec = importlib.util.spec_from_file_location("checknumber_job", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(data: dict[str, Any]) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "ns/run-0-checknumber/p/1",
            "type": "checknumber.triggered",
            "source": "slipway.dev/operator",
            "slipwaycontext": "ctx",
            "data": data,
        }
    )


def run(tool: ModuleType, tmp_path: Path, env: dict[str, str]) -> tuple[int, Any]:
    log = tmp_path / "termination-log"
    code = tool.main(["--termination-log", str(log)], env)
    return code, json.loads(log.read_text()) if log.exists() else None


@pytest.mark.parametrize(
    ("number", "result", "output"),
    [
        (
            "+44 20 7946 0958",
            "pass",
            {"e164": "+442079460958", "calling_code": "44", "country": "GB"},
        ),
        (
            "0049 (30) 123-4567",
            "pass",
            {"e164": "+49301234567", "calling_code": "49", "country": "DE"},
        ),
        ("+999 1234 5678", "warning", {"e164": "+99912345678"}),
        ("020 7946 0958", "warning", {"national": "02079460958"}),
        ("call me", "fail", None),
        ("+12", "fail", None),
        (447946, "fail", None),
        (None, "fail", None),
    ],
)
def test_check_verdicts(tool: ModuleType, number: Any, result: str, output: Any) -> None:
    """pass for E.164 with a known calling code, warning when it cannot be placed, fail for
    anything that is not a phone number."""
    verdict = tool.check(number)
    assert verdict["result"] == result
    assert verdict["message"]
    assert verdict.get("checknumber") == output


def test_writes_verdict_to_the_termination_log(tool: ModuleType, tmp_path: Path) -> None:
    """The verdict lands in the termination log, exit 0, and Slipway reads it as the result,
    message and output of the task."""
    code, written = run(tool, tmp_path, {"SLIPWAY_EVENT": event({"number": "+33 1 23 45 67 89"})})
    assert code == 0
    assert written["result"] == "pass"
    assert written["checknumber"]["country"] == "FR"
    message = json.dumps(written)
    pod = {
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 0, "message": message}}}
            ],
        },
    }
    outcome = job_outcome({}, [pod])
    assert outcome.result == Result.PASS
    assert outcome.message == written["message"]
    assert outcome.output == {"checknumber": written["checknumber"]}


def test_a_fail_verdict_still_exits_zero(tool: ModuleType, tmp_path: Path) -> None:
    """A verdict of fail is a verdict: exit 0, result fail in the termination log."""
    code, written = run(tool, tmp_path, {"SLIPWAY_EVENT": event({"number": "nope"})})
    assert (code, written["result"]) == (0, "fail")


@pytest.mark.parametrize("raw", [None, "", "{not json", '"text"', '{"data": 3}'])
def test_unreadable_event_exits_2_with_the_reason_on_stderr(
    tool: ModuleType, tmp_path: Path, raw: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """No or bad SLIPWAY_EVENT: exit 2, nothing written, the reason in the log."""
    env = {} if raw is None else {"SLIPWAY_EVENT": raw}
    code, written = run(tool, tmp_path, env)
    assert (code, written) == (2, None)
    assert "SLIPWAY_EVENT" in capsys.readouterr().err


def test_oversized_verdict_is_cut_to_fit(tool: ModuleType, tmp_path: Path) -> None:
    """A verdict larger than the kubelet keeps is replaced by its result and a note."""
    path = tmp_path / "log"
    tool.write_termination_message(str(path), {"result": "pass", "blob": "x" * 5000})
    assert json.loads(path.read_text()) == {"result": "pass", "message": "output too large"}


class Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], dict[str, Any]]] = []  # noqa: RUF012 (per-test reset)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), json.loads(body)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[tuple[dict[str, str], dict[str, Any]]]]]:
    """A local HTTP server recording the POSTs it gets."""
    Recorder.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/namespaces/ns/events", Recorder.received
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_callback_sends_started_and_finished_with_the_token(
    tool: ModuleType,
    tmp_path: Path,
    gateway: tuple[str, list[tuple[dict[str, str], dict[str, Any]]]],
) -> None:
    """With `callback: true` the tool POSTs .started and .finished answering the triggered
    id, with the bearer token, and still writes the termination message."""
    url, received = gateway
    env = {
        "SLIPWAY_EVENT": event({"number": "+44 20 7946 0958", "checknumber": {"callback": True}}),
        "SLIPWAY_CALLBACK_URL": url,
        "SLIPWAY_CALLBACK_TOKEN": "secret-token",
    }
    code, written = run(tool, tmp_path, env)
    assert code == 0
    assert written["result"] == "pass"
    assert [body["type"] for _, body in received] == ["checknumber.started", "checknumber.finished"]
    for headers, body in received:
        assert headers["Authorization"] == "Bearer secret-token"
        assert headers["Content-Type"] == "application/cloudevents+json"
        assert body["triggeredid"] == "ns/run-0-checknumber/p/1"
        assert body["slipwaycontext"] == "ctx"
    assert received[1][1]["data"] == written


def test_no_callback_unless_asked(
    tool: ModuleType,
    tmp_path: Path,
    gateway: tuple[str, list[tuple[dict[str, str], dict[str, Any]]]],
) -> None:
    """Without the `callback` property nothing is POSTed, even with a callback URL."""
    url, received = gateway
    env = {
        "SLIPWAY_EVENT": event({"number": "+44 20 7946 0958"}),
        "SLIPWAY_CALLBACK_URL": url,
        "SLIPWAY_CALLBACK_TOKEN": "t",
    }
    assert run(tool, tmp_path, env)[0] == 0
    assert received == []
