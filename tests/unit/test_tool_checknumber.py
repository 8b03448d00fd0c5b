"""tasks/checknumber (Python, phonenumbers): the verdicts, the HTTP CloudEvent service in
both modes (answers the operator reads back), and the Job entry point."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from slipway.api.common import Result
from slipway.events import parse_sync_response
from slipway.providers.job_outcome import job_outcome
from tests.phone_tools import (
    CASE_IDS,
    CASES,
    PYTHON_TOOL,
    ROUGH_CASES,
    ToolProcess,
    post,
    python_tool,
    run_job,
    triggered,
)


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    """The tool, imported as a module."""
    spec = importlib.util.spec_from_file_location("checknumber_tool", PYTHON_TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolProcess]:
    """The tool as a running HTTP service."""
    running = python_tool(tmp_path_factory.mktemp("checknumber") / "tool.log")
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("number", "properties", "result", "reason", "kind", "country", "e164"), CASES, ids=CASE_IDS
)
def test_verdicts(
    tool: ModuleType,
    number: Any,
    properties: Any,
    result: str,
    reason: str | None,
    kind: str | None,
    country: str | None,
    e164: str | None,
) -> None:
    """Each case gets its result, reason, number type, country and E.164 form, and a
    message; bad input fails with a reason instead of raising."""
    verdict = tool.check(number, properties)
    assert verdict["result"] == result
    assert verdict["message"]
    output = verdict["checknumber"]
    assert output.get("reason") == reason
    assert output.get("type") == kind
    assert output.get("country") == country
    assert output.get("e164") == e164
    assert output["valid"] is (result == "pass")
    assert output["possible"] is (result != "fail")


@pytest.mark.parametrize(("number", "properties", "result", "country"), ROUGH_CASES)
def test_local_numbers_and_odd_lengths(
    tool: ModuleType, number: str, properties: Any, result: str, country: str
) -> None:
    """A local number without its area code fails, saying to add it; the country is the
    calling code's main one."""
    verdict = tool.check(number, properties)
    assert (verdict["result"], verdict["checknumber"]["country"]) == (result, country)
    if verdict["checknumber"]["reason"] == "local_only":
        assert "add the area code" in verdict["message"]


def test_uk_mobile_in_full(tool: ModuleType) -> None:
    """A UK mobile: valid, mobile, GB, carrier, time zones and both formats."""
    verdict = tool.check("+44 7400 123456")
    assert verdict["message"] == (
        "+44 7400 123456 is a valid mobile number in the United Kingdom (carrier: Three)"
    )
    output = verdict["checknumber"]
    assert output["country_name"] == "United Kingdom"
    assert output["carrier"] == "Three"
    assert "Europe/London" in output["time_zones"]
    assert output["international"] == "+44 7400 123456"
    assert output["national"] == "07400 123456"
    assert output["calling_code"] == 44
    assert output["tool"].startswith("phonenumbers ")


def test_us_number_has_its_region_and_time_zone(tool: ModuleType) -> None:
    """A US number is placed in its city with its time zone."""
    output = tool.check("+1 650-253-0000")["checknumber"]
    assert output["region"] == "Mountain View, CA"
    assert output["time_zones"] == ["America/Los_Angeles"]


def test_long_time_zone_lists_are_cut(tool: ModuleType) -> None:
    """A US toll-free number spans 40-odd zones: ten are listed, with the total."""
    output = tool.check("+1 800 555 0199")["checknumber"]
    assert len(output["time_zones"]) == tool.MAX_TIME_ZONES
    assert output["time_zones_total"] > tool.MAX_TIME_ZONES


def test_messages_speak_plainly(tool: ModuleType) -> None:
    """Warnings and failures say what is wrong in words, with what to do where possible."""
    assert "cannot be verified" in tool.check("+44 7700 900123")["message"]
    assert "task property country" in tool.check("07400 123456")["message"]
    assert "must be text" in tool.check(447400123456)["message"]
    assert "no phone number was given" in tool.check(None)["message"]


@pytest.mark.parametrize("event", [{}, {"data": None}, {"data": "+44"}, {"data": []}])
def test_an_event_without_a_data_object_fails(tool: ModuleType, event: dict[str, Any]) -> None:
    """An event with no data object gets a fail verdict, not an exception."""
    verdict = tool.verdict_for(event)
    assert (verdict["result"], verdict["checknumber"]["reason"]) == ("fail", "no_data")


def test_a_bug_gives_a_fail_verdict(tool: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error inside the check still gives a fail verdict saying so."""

    def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(tool, "check", broken)
    verdict = tool.verdict_for({"data": {"number": "+44 7400 123456"}})
    assert verdict["result"] == "fail"
    assert "boom" in verdict["message"]


# ---------------------------------------------------------------------------- service
@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_service_answers_in_the_mode_it_was_sent(service: ToolProcess, mode: str) -> None:
    """The operator's own .triggered, POSTed in either mode, is answered synchronously with a
    .finished in that mode that the operator's parser accepts as the verdict."""
    headers, body = triggered("+44 7400 123456", {"country": "GB"}, mode=mode)
    status, reply_headers, reply = post(service.url, headers, body)
    assert status == 200
    if mode == "binary":
        assert reply_headers["ce-type"] == "checknumber.finished"
    response = parse_sync_response(
        reply_headers, reply, task="checknumber", triggered_id="ns/check-1-0-checknumber/phone/1"
    )
    assert response is not None
    assert response.phase == "finished"
    assert response.result == Result.PASS
    assert response.context == "ctx-1"
    assert response.output is not None
    assert response.output["checknumber"]["carrier"] == "Three"
    assert "valid mobile number" in (response.message or "")


def test_service_keeps_the_event_type_prefix(service: ToolProcess) -> None:
    """With SLIPWAY_EVENT_TYPE_PREFIX the answer's type carries the same prefix."""
    headers, body = triggered("+44 7700 900123", prefix="dev.slipway.")
    status, reply_headers, reply = post(service.url, headers, body)
    assert status == 200
    event = json.loads(reply)
    assert event["type"] == "dev.slipway.checknumber.finished"
    response = parse_sync_response(
        reply_headers,
        reply,
        task="checknumber",
        triggered_id=event["triggeredid"],
        prefix="dev.slipway.",
    )
    assert response is not None
    assert response.result == Result.WARNING


@pytest.mark.parametrize("number", [None, 447400123456, "not a number"])
def test_service_fails_bad_input_with_a_verdict(service: ToolProcess, number: Any) -> None:
    """Bad input is answered 200 with a fail verdict, not an HTTP error."""
    status, _, reply = post(service.url, *triggered(number))
    assert status == 200
    assert json.loads(reply)["data"]["result"] == "fail"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b"{}"),
        ({"Content-Type": "application/cloudevents+json"}, b"{not json"),
        ({"Content-Type": "application/cloudevents+json"}, b"[]"),
        ({"Content-Type": "application/cloudevents+json"}, b'{"type": "x.finished", "id": "1"}'),
    ],
)
def test_service_refuses_what_is_not_a_triggered_event(
    service: ToolProcess, headers: dict[str, str], body: bytes
) -> None:
    """A request that is not a .triggered CloudEvent gets 400 with a reason, and the service
    keeps serving."""
    status, _, reply = post(service.url, headers, body)
    assert status == 400
    assert json.loads(reply)["message"]
    assert post(service.url, *triggered())[0] == 200


# ---------------------------------------------------------------------------- Job
def test_job_writes_the_verdict_the_operator_reads(tmp_path: Path) -> None:
    """As a Job (SLIPWAY_EVENT set, no sub-command) it writes its verdict to the termination
    log and exits 0; Slipway reads result, message and output from it."""
    _, body = triggered("07400 123456", {"country": "GB"})
    code, written, output = run_job(
        [sys.executable, str(PYTHON_TOOL)],
        {"SLIPWAY_EVENT": body.decode()},
        tmp_path / "termination-log",
    )
    assert code == 0, output
    assert written["result"] == "pass"
    assert written["checknumber"]["e164"] == "+447400123456"
    assert "pass" in output
    pod = {
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {"terminated": {"exitCode": 0, "message": json.dumps(written)}},
                }
            ],
        },
    }
    outcome = job_outcome({}, [pod])
    assert outcome.result == Result.PASS
    assert outcome.message == written["message"]
    assert outcome.output == {"checknumber": written["checknumber"]}


def test_job_fails_bad_input_with_exit_zero(tmp_path: Path) -> None:
    """A number that is not text is a fail verdict, still exit 0."""
    event = json.dumps({"id": "1", "type": "checknumber.triggered", "data": {"number": 44}})
    code, written, _ = run_job(
        [sys.executable, str(PYTHON_TOOL), "job"], {"SLIPWAY_EVENT": event}, tmp_path / "log"
    )
    assert (code, written["result"]) == (0, "fail")


@pytest.mark.parametrize("raw", ["{not json", '"text"'])
def test_job_with_an_unreadable_event_exits_2_saying_why(tmp_path: Path, raw: str) -> None:
    """An unreadable SLIPWAY_EVENT: exit 2 and a fail verdict naming SLIPWAY_EVENT."""
    code, written, output = run_job(
        [sys.executable, str(PYTHON_TOOL), "job"], {"SLIPWAY_EVENT": raw}, tmp_path / "log"
    )
    assert code == 2
    assert written["result"] == "fail"
    assert "SLIPWAY_EVENT" in written["message"]
    assert "SLIPWAY_EVENT" in output


def test_job_without_an_event_exits_2(tmp_path: Path) -> None:
    """`job` with no SLIPWAY_EVENT at all: exit 2, saying so."""
    code, written, _ = run_job([sys.executable, str(PYTHON_TOOL), "job"], {}, tmp_path / "log")
    assert code == 2
    assert "not set" in written["message"]


def test_oversized_verdict_is_cut_to_fit(tool: ModuleType, tmp_path: Path) -> None:
    """A verdict larger than the kubelet keeps is cut to its result and message."""
    path = tmp_path / "log"
    tool.write_termination_message(str(path), {"result": "pass", "message": "m", "x": "y" * 5000})
    assert json.loads(path.read_text()) == {"result": "pass", "message": "m"}
