"""tasks/checknumber-js (Node.js, libphonenumber-js) as a real HTTP service and as a Job:
the same verdicts as the Python tool on every shared case (carrier, region and time zones
aside: libphonenumber-js has no such data, and says so)."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import phonenumbers
import pytest

from slipway.api.common import Result
from slipway.events import parse_sync_response
from tests.phone_tools import (
    CASE_IDS,
    CASES,
    JS_DIR,
    JS_TOOL,
    PYTHON_TOOL,
    ROUGH_CASES,
    ToolProcess,
    js_tool,
    node,
    post,
    run_job,
    triggered,
)

TRIGGERED_ID = "ns/check-1-0-checknumber/phone/1"
#: Output keys both tools fill the same way.
SHARED = ("valid", "possible", "reason", "type", "country", "e164", "calling_code")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolProcess]:
    """The JavaScript tool as a running HTTP service (skipped, saying why, without node)."""
    running = js_tool(tmp_path_factory.mktemp("checknumber-js") / "tool.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def python_check() -> ModuleType:
    """The Python tool, imported, to compare verdicts with."""
    spec = importlib.util.spec_from_file_location("checknumber_tool_py", PYTHON_TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ask(service: ToolProcess, number: Any, properties: Any, mode: str = "structured") -> Any:
    """POST the operator's .triggered; the answer as the operator reads it."""
    status, headers, body = post(service.url, *triggered(number, properties, mode=mode))
    assert status == 200, body
    response = parse_sync_response(headers, body, task="checknumber", triggered_id=TRIGGERED_ID)
    assert response is not None
    return response


@pytest.mark.parametrize(
    ("number", "properties", "result", "reason", "kind", "country", "e164"), CASES, ids=CASE_IDS
)
def test_same_verdicts_as_python(
    service: ToolProcess,
    python_check: ModuleType,
    number: Any,
    properties: Any,
    result: str,
    reason: str | None,
    kind: str | None,
    country: str | None,
    e164: str | None,
) -> None:
    """Over HTTP, each case gets the expected verdict, and the same result and shared
    output fields as the Python tool."""
    response = ask(service, number, properties)
    assert response.result == Result(result)
    assert response.message
    output = response.output["checknumber"]
    assert (output.get("reason"), output.get("type")) == (reason, kind)
    assert (output.get("country"), output.get("e164")) == (country, e164)
    python = python_check.check(number, properties)
    assert python["result"] == result
    assert {k: output.get(k) for k in SHARED} == {k: python["checknumber"].get(k) for k in SHARED}


@pytest.mark.parametrize(("number", "properties", "result", "country"), ROUGH_CASES)
def test_same_result_where_the_reasons_differ(
    service: ToolProcess,
    python_check: ModuleType,
    number: str,
    properties: Any,
    result: str,
    country: str,
) -> None:
    """Where the two libraries name the reason differently, result and country still agree."""
    response = ask(service, number, properties)
    assert response.result == Result(result)
    assert response.output["checknumber"]["country"] == country
    python = python_check.check(number, properties)
    assert (python["result"], python["checknumber"]["country"]) == (result, country)


def test_says_what_it_cannot_know(service: ToolProcess) -> None:
    """A valid number's output has no carrier, region or time zones, and says why."""
    response = ask(service, "+44 7400 123456", None)
    assert response.message == "+44 7400 123456 is a valid mobile number in the United Kingdom"
    output = response.output["checknumber"]
    assert (output["carrier"], output["region"], output["time_zones"]) == (None, None, [])
    assert output["not_available"] == ["carrier", "region", "time_zones"]
    assert "no carrier" in output["note"]
    assert output["tool"].startswith("libphonenumber-js ")
    assert output["international"] == "+44 7400 123456"
    assert output["country_name"] == "United Kingdom"


def test_binary_mode_is_answered_in_binary_mode(service: ToolProcess) -> None:
    """A binary-mode .triggered gets a binary-mode .finished the operator accepts."""
    status, headers, body = post(service.url, *triggered("+1 555 555 5555", mode="binary"))
    assert status == 200
    assert headers["ce-type"] == "checknumber.finished"
    assert headers["ce-triggeredid"] == TRIGGERED_ID
    assert headers["ce-slipwaycontext"] == "ctx-1"
    response = parse_sync_response(headers, body, task="checknumber", triggered_id=TRIGGERED_ID)
    assert response is not None
    assert response.result == Result.WARNING


def test_event_type_prefix_is_kept(service: ToolProcess) -> None:
    """With SLIPWAY_EVENT_TYPE_PREFIX the answer's type carries the same prefix."""
    _, _, body = post(service.url, *triggered(prefix="dev.slipway."))
    assert json.loads(body)["type"] == "dev.slipway.checknumber.finished"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b"{}"),
        ({"Content-Type": "application/cloudevents+json"}, b"{not json"),
        ({"Content-Type": "application/cloudevents+json"}, b'{"type": "x.finished", "id": "1"}'),
    ],
)
def test_refuses_what_is_not_a_triggered_event(
    service: ToolProcess, headers: dict[str, str], body: bytes
) -> None:
    """Not a .triggered CloudEvent: 400 with a reason; the service keeps serving."""
    status, _, reply = post(service.url, headers, body)
    assert status == 400
    assert json.loads(reply)["message"]
    assert post(service.url, *triggered())[0] == 200


def test_job_writes_the_same_verdict(tmp_path: Path) -> None:
    """As a Job (SLIPWAY_EVENT set) it writes the verdict to the termination log, exit 0."""
    _, body = triggered("07400 123456", {"country": "GB"})
    code, written, output = run_job(
        [node(), str(JS_TOOL)], {"SLIPWAY_EVENT": body.decode()}, tmp_path / "log", cwd=JS_DIR
    )
    assert code == 0, output
    assert written["result"] == "pass"
    assert written["checknumber"]["e164"] == "+447400123456"


def test_job_with_an_unreadable_event_exits_2(tmp_path: Path) -> None:
    """An unreadable SLIPWAY_EVENT: exit 2 and a fail verdict naming SLIPWAY_EVENT."""
    code, written, _ = run_job(
        [node(), str(JS_TOOL), "job"], {"SLIPWAY_EVENT": "{nope"}, tmp_path / "log", cwd=JS_DIR
    )
    assert code == 2
    assert written["result"] == "fail"
    assert "SLIPWAY_EVENT" in written["message"]


def test_without_node_the_tests_skip_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where node is missing the JS tool's tests are skipped with a reason, not failed."""
    monkeypatch.setattr("tests.phone_tools.shutil.which", lambda _: None)
    with pytest.raises(pytest.skip.Exception, match="node is not installed"):
        node()


def sample_numbers() -> list[tuple[str, dict[str, str] | None]]:
    """phonenumbers' example number of every region and common type, in E.164 and national
    form, and each with its last digit dropped, a digit added, and one digit changed."""
    shuffle = random.Random(8)  # fixed: the same sample every run
    kinds = (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.VOIP,
    )
    numbers: list[tuple[str, dict[str, str] | None]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            changed = list(e164)
            changed[shuffle.randrange(3, len(e164))] = str(shuffle.randrange(10))
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            numbers += [(e164, None), (e164[:-1], None), (e164 + "7", None)]
            numbers += [("".join(changed), None), (national, {"country": region})]
    return numbers


def test_the_two_libraries_agree_on_thousands_of_numbers(
    python_check: ModuleType, tmp_path: Path
) -> None:
    """On every region's example numbers and near misses of them, the JS tool's logic gives
    the Python tool's verdict and country in at least 99.5% of cases (the rest: ranges the
    two libraries' data releases disagree on)."""
    numbers = sample_numbers()
    (tmp_path / "numbers.json").write_text(json.dumps(numbers))
    script = (
        f"const c = require({json.dumps(str(JS_TOOL))});"
        f"const numbers = require({json.dumps(str(tmp_path / 'numbers.json'))});"
        "const out = numbers.map(([n, p]) => { const v = c.check(n, p);"
        " return [v.result, v.checknumber.country ?? null]; });"
        "process.stdout.write(JSON.stringify(out));"
    )
    done = subprocess.run(
        [node(), "-e", script], capture_output=True, text=True, timeout=120, check=True
    )
    js = json.loads(done.stdout)
    differ = []
    for (number, properties), (result, country) in zip(numbers, js, strict=True):
        verdict = python_check.check(number, properties)
        if [verdict["result"], verdict["checknumber"].get("country")] != [result, country]:
            differ.append((number, properties, verdict["result"], result))
    assert len(numbers) > 3000
    assert len(differ) <= len(numbers) * 0.005, differ
