"""checknumber: phone-number intelligence for Slipway, with `phonenumbers` (Google's
libphonenumber data: validity, type, region, carrier, time zones), offline.

One file, two ways to run, the same code deciding:

    python checknumber.py serve [--host 0.0.0.0] [--port 8080]   # HTTP CloudEvent service
    python checknumber.py job [--termination-log PATH]           # Job container

Without a sub-command it is `job` when `SLIPWAY_EVENT` is set, else `serve`.

As a service it answers each POST of `<task>.triggered` (structured or binary mode) with
`<task>.finished` in the response body, in the mode it was sent; when the event names a callback
it first sends `<task>.status.changed` ("looking the number up", best effort) so a person
watching the run sees what is happening. As a Job it reads the
`.triggered` event from `SLIPWAY_EVENT` and writes `{"result", "message", "checknumber": {...}}`
to the termination message (`/dev/termination-log`, or `SLIPWAY_TERMINATION_LOG`).

Verdict on `data.number`: `pass` for a valid number, `warning` for one of a possible length
that is in no range known to be in use, `fail` for anything else (no number, not text, not a
phone number), always with a sentence a person understands. The task property `country`
(`data.checknumber.country`, e.g. `GB`) is the region of numbers written without `+`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import Any
from urllib.parse import quote, unquote

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberType,
    geocoder,
    timezone,
)
from phonenumbers import carrier as carriers
from phonenumbers.geodata.locale import LOCALE_DATA

TASK = "checknumber"
SOURCE = "slipway.dev/tasks/checknumber"
TOOL = f"phonenumbers {version('phonenumbers')}"
TERMINATION_LOG = "/dev/termination-log"
#: The kubelet keeps at most 4096 bytes of a termination message.
MAX_TERMINATION_MESSAGE = 4096
#: Longest text taken as a phone number (the longest real ones are under 30 characters).
MAX_INPUT = 64
#: Largest request body the service reads (the gateway's own limit).
MAX_BODY = 1024 * 1024
#: At most this many time zones are listed (a US toll-free number has 42).
MAX_TIME_ZONES = 10
EXAMPLE = "+44 20 7946 0958"
#: Printable ASCII but space, '"' and '%': left as they are in a ce- header.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
#: Country names read with "the" (besides "United …", "… Islands", "… Republic").
THE_NAMES = frozenset({"Netherlands", "Philippines", "Bahamas", "Gambia", "Maldives"})

TYPES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
#: How each type reads in a sentence.
TYPE_WORDS = {
    "fixed_line": "fixed-line",
    "fixed_line_or_mobile": "fixed-line or mobile",
    "toll_free": "toll-free",
    "premium_rate": "premium-rate",
    "shared_cost": "shared-cost",
    "voip": "VoIP",
    "personal_number": "personal",
    "uan": "universal access (UAN)",
}
#: Why a number is not possible (phonenumbers' ValidationResult), as reason codes.
LENGTH_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown_country_code",
    phonenumbers.ValidationResult.TOO_SHORT: "too_short",
    phonenumbers.ValidationResult.TOO_LONG: "too_long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "invalid_length",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "local_only",
}


# ---------------------------------------------------------------------------- the check
def _fail(reason: str, message: str, **output: Any) -> dict[str, Any]:
    return {
        "result": "fail",
        "message": message,
        TASK: {"valid": False, "possible": False, "reason": reason, **output, "tool": TOOL},
    }


def _default_region(properties: object) -> tuple[str | None, str | None]:
    """The region for numbers without `+` from the task's properties, or an error text."""
    if not isinstance(properties, Mapping) or properties.get("country") in (None, ""):
        return None, None
    country = properties["country"]
    if isinstance(country, str) and country.upper() in phonenumbers.SUPPORTED_REGIONS:
        return country.upper(), None
    return None, (
        f"the task property country must be a two-letter region code such as GB, "
        f"not {json.dumps(country)}"
    )


def country_name_of(country: str | None) -> str:
    """The English name of a region code ("" when unknown), from phonenumbers' locale data."""
    names = LOCALE_DATA.get(country or "", {})
    name = names.get("en", "")
    if name.startswith("*"):  # "*xx": held under language xx
        name = names.get(name[1:], "")
    return str(name)


def _where(country: str | None, name: str) -> str:
    """How a country reads after "in": "the United Kingdom", "Germany", "GB"."""
    if not name:
        return country or "an unknown country"
    plural = name.endswith(("Islands", "Republic", "Emirates")) or name in THE_NAMES
    return f"the {name}" if name.startswith("United ") or plural else name


def check(number: object, properties: object = None) -> dict[str, Any]:
    """The verdict on `number` (`data.number`) with the task's `properties`
    (`data.checknumber`): `{"result", "message", "checknumber": {...}}`."""
    region, problem = _default_region(properties)
    if problem:
        return _fail("bad_country_property", problem)
    if number is None or (isinstance(number, str) and not number.strip()):
        return _fail("missing", f"no phone number was given: set data.number, e.g. {EXAMPLE}")
    if not isinstance(number, str):
        numeric = isinstance(number, int | float) and not isinstance(number, bool)
        kind = {bool: "true/false", list: "a list", dict: "an object"}.get(type(number), "")
        said = f"data.number must be text such as {json.dumps(EXAMPLE)}, not {kind or 'that'}"
        if numeric:
            said = (
                f"data.number must be text such as {json.dumps(EXAMPLE)}, not a number: "
                "as a number it loses its leading + and zeros"
            )
        return _fail("not_text", said)
    text = number.strip()
    if len(text) > MAX_INPUT:
        return _fail("too_long", f"data.number is {len(text)} characters long: not a phone number")
    shown = json.dumps(text)
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as error:
        return _parse_failure(shown, text, region, error.error_type)
    code = parsed.country_code
    country = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(code)
    )
    if country in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY):
        country = None  # "001": a global service (satellite, UIFN), no country
    country_name = country_name_of(country)
    where = _where(country, country_name)
    valid = phonenumbers.is_valid_number(parsed)
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    # A local-only number (no area code) cannot be placed or checked: not possible.
    possible = reason == phonenumbers.ValidationResult.IS_POSSIBLE
    kind = TYPES.get(phonenumbers.number_type(parsed), "unknown") if valid else "unknown"
    zones = [z for z in timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    output: dict[str, Any] = {
        "number": text,
        "valid": valid,
        "possible": possible,
        "type": kind,
        "country": country,
        "country_name": country_name or None,
        "region": (geocoder.description_for_number(parsed, "en") or None) if valid else None,
        "calling_code": code,
        "carrier": (carriers.name_for_number(parsed, "en") or None) if valid else None,
        "time_zones": zones[:MAX_TIME_ZONES] if valid else [],
        "e164": phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        "international": phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL),
        "national": phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL),
        "tool": TOOL,
    }
    if valid and len(zones) > MAX_TIME_ZONES:
        output["time_zones_total"] = len(zones)
    international = output["international"]
    if valid:
        words = TYPE_WORDS.get(kind, kind.replace("_", " "))
        article = "an" if words[0] in "aeiouAEIOU" else "a"
        description = "" if kind == "unknown" else f" {words}"
        place = where
        if output["region"] and output["region"] != country_name:
            place = f"{output['region']}, {country_name or country}"
        said = f"{international} is {article} valid{description} number in {place}"
        if output["carrier"]:
            said += f" (carrier: {output['carrier']})"
        return {"result": "pass", "message": said, TASK: output}
    if possible:
        output["reason"] = "not_in_use"
        return {
            "result": "warning",
            "message": (
                f"{international} has the length of a number in {where} but is in no range "
                "known to be in use: it may be unassigned, reserved (e.g. for films) or too "
                "new for this tool's data, so it cannot be verified"
            ),
            TASK: output,
        }
    output["reason"] = LENGTH_REASONS.get(reason, "invalid")
    why = {
        "too_short": f"too short for {where}",
        "too_long": f"too long for {where}",
        "unknown_country_code": f"+{code} is not a country calling code in use",
        "local_only": (
            f"it looks like a local number of {where} without its area code: add the area code"
        ),
    }.get(output["reason"], f"not a length numbers in {where} have")
    return {
        "result": "fail",
        "message": f"{shown} is not a valid phone number: {why}",
        TASK: output,
    }


def _parse_failure(shown: str, text: str, region: str | None, kind: int) -> dict[str, Any]:
    if kind == NumberParseException.INVALID_COUNTRY_CODE:
        if text.startswith("+") or text.startswith("00"):
            return _fail(
                "unknown_country_code",
                f"{shown} is not a valid phone number: it does not start with a country "
                "calling code in use",
                number=text,
            )
        return _fail(
            "no_country_code",
            f"{shown} has no country code: write it as +<country code> <number> (e.g. "
            f"{EXAMPLE}) or set the task property country (e.g. GB)",
            number=text,
        )
    if kind in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        where = f" for {region}" if region else ""
        return _fail(
            "too_short", f"{shown} is not a valid phone number: too short{where}", number=text
        )
    if kind == NumberParseException.TOO_LONG:
        return _fail("too_long", f"{shown} is not a valid phone number: too long", number=text)
    return _fail("not_a_number", f"{shown} is not a phone number", number=text)


def verdict_for(event: Mapping[str, Any]) -> dict[str, Any]:
    """The `.finished` data for a `.triggered` event; never raises."""
    try:
        data = event.get("data")
        if not isinstance(data, Mapping):
            return _fail("no_data", "the event carries no data object, so no data.number")
        return check(data.get("number"), data.get(TASK))
    except Exception as error:  # a bug must still give a verdict, not a crash
        traceback.print_exc()
        return _fail("internal_error", f"checknumber could not check the number: {error}")


# ---------------------------------------------------------------------------- CloudEvents
class BadRequestError(Exception):
    """A request that is not a `.triggered` CloudEvent."""


def read_event(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], str]:
    """The event in an HTTP request, and its mode (`structured` or `binary`)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    media = lowered.get("content-type", "").split(";")[0].strip().lower()
    try:
        document = json.loads(body) if body.strip() else None
    except ValueError as error:
        raise BadRequestError(f"the body is not JSON: {error}") from error
    if media == "application/cloudevents+json":
        if not isinstance(document, dict):
            raise BadRequestError("a structured CloudEvent must be a JSON object")
        event, mode = document, "structured"
    elif "ce-type" in lowered:
        # Header values are percent-encoded (the CloudEvents HTTP binding).
        event = {n[3:]: unquote(v) for n, v in lowered.items() if n.startswith("ce-")}
        event["data"] = document
        mode = "binary"
    else:
        raise BadRequestError(
            "not a CloudEvent: send Content-Type application/cloudevents+json, or ce- headers"
        )
    kind = event.get("type")
    if not isinstance(kind, str) or not kind.endswith(".triggered") or not event.get("id"):
        raise BadRequestError("expected a <task>.triggered CloudEvent with an id")
    return event, mode


def finished_event(triggered: Mapping[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """The `<task>.finished` CloudEvent answering `triggered` (its type keeps any prefix)."""
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "type": str(triggered["type"]).removesuffix(".triggered") + ".finished",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "triggeredid": str(triggered["id"]),
        "data": verdict,
    }
    if triggered.get("slipwaycontext"):
        event["slipwaycontext"] = str(triggered["slipwaycontext"])
    return event


WORKING = "looking the number up"


def report_status(triggered: Mapping[str, Any], message: str = WORKING) -> None:
    """POST `<task>.status.changed` to the event's callback URL, if any; never raises."""
    url, token = triggered.get("slipwaycallback"), triggered.get("slipwaytoken")
    if not isinstance(url, str) or not isinstance(token, str) or not url.startswith("http"):
        return
    event = finished_event(triggered, {"message": message})
    event["type"] = str(event["type"]).removesuffix(".finished") + ".status.changed"
    request = urllib.request.Request(
        url,
        data=json.dumps(event).encode(),
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {token}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as error:
        print(f"status report to {url} failed: {error}", file=sys.stderr, flush=True)


def to_http(event: Mapping[str, Any], mode: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of `event` in `mode`."""
    if mode == "structured":
        return {"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode()
    headers = {
        f"ce-{name}": quote(str(value), safe=_HEADER_SAFE)
        for name, value in event.items()
        if name not in ("data", "datacontenttype")
    }
    headers["Content-Type"] = "application/json"
    return headers, json.dumps(event["data"]).encode()


class Handler(BaseHTTPRequestHandler):
    """POST / takes a `.triggered` CloudEvent; GET /healthz says ok."""

    server_version = "checknumber"

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = json.dumps({"error": status.phrase, "message": message}).encode()
        self._send(status, {"Content-Type": "application/json"}, body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/healthz", "/readyz"):
            self._send(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')
        else:
            self._error(HTTPStatus.NOT_FOUND, "POST CloudEvents to /; GET /healthz")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_BODY} bytes")
            return
        body = self.rfile.read(length)
        try:
            event, mode = read_event(dict(self.headers.items()), body)
        except BadRequestError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        report_status(event)
        answer = finished_event(event, verdict_for(event))
        headers, payload = to_http(answer, mode)
        self._send(200, headers, payload)
        data = answer["data"]
        print(f"{event['id']}: {data['result']}: {data['message']}", flush=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged by do_POST, one line each."""


def serve(host: str, port: int) -> None:
    """Serve until interrupted; prints the URL it listens on (port 0: a free one)."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    print(f"checknumber listening on http://{bound_host}:{bound_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ---------------------------------------------------------------------------- Job
def write_termination_message(path: str, verdict: Mapping[str, Any]) -> None:
    """Write the verdict where the kubelet reads the termination message (cut to fit)."""
    text = json.dumps(verdict, separators=(",", ":"))
    if len(text.encode()) > MAX_TERMINATION_MESSAGE:
        text = json.dumps({"result": verdict.get("result"), "message": verdict.get("message")})
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def run_job(environ: Mapping[str, str], termination_log: str | None) -> int:
    """The Job entry point: 0 whenever a verdict was written, 2 when the event is unusable
    (a fail verdict saying why is written too)."""
    path = termination_log or environ.get("SLIPWAY_TERMINATION_LOG") or TERMINATION_LOG
    raw = environ.get("SLIPWAY_EVENT")
    problem = None
    event: Any = None
    if not raw:
        problem = "SLIPWAY_EVENT is not set: run me as a Slipway Job provider"
    else:
        try:
            event = json.loads(raw)
        except ValueError as error:
            problem = f"SLIPWAY_EVENT is not JSON: {error}"
        if problem is None and not isinstance(event, dict):
            problem = "SLIPWAY_EVENT is not a CloudEvent (a JSON object)"
    if problem is not None:
        print(f"checknumber: {problem}", file=sys.stderr)
        write_termination_message(path, {"result": "fail", "message": problem})
        return 2
    verdict = verdict_for(event)
    write_termination_message(path, verdict)
    print(f"checknumber: {verdict['result']}: {verdict['message']}", flush=True)
    return 0


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run as a service or a Job; returns the exit code."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    serving = commands.add_parser("serve", help="HTTP CloudEvent service")
    host, port = env.get("HOST", "0.0.0.0"), int(env.get("PORT", "8080"))
    serving.add_argument("--host", default=host)
    serving.add_argument("--port", type=int, default=port)
    job = commands.add_parser("job", help="Job container: SLIPWAY_EVENT in, termination log out")
    job.add_argument("--termination-log")
    args = parser.parse_args(argv)
    command = args.command or ("job" if env.get("SLIPWAY_EVENT") else "serve")
    if command == "serve":
        serve(getattr(args, "host", host), getattr(args, "port", port))
        return 0
    return run_job(env, getattr(args, "termination_log", None))


if __name__ == "__main__":
    sys.exit(main())
