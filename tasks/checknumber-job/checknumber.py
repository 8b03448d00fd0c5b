"""checknumber as a container task: the Slipway Job provider contract, standard library only.

    SLIPWAY_EVENT='{"type": "checknumber.triggered", "data": {"number": "+44 20 7946 0958"}, ...}' \
        python checknumber.py [--termination-log PATH]

Reads the `.triggered` event (structured JSON) from `SLIPWAY_EVENT`, checks `data.number`, and
writes its verdict to the termination message (`/dev/termination-log`) as
`{"result": ..., "message": ..., "checknumber": {...}}`: the keys other than `result`,
`status` and `message` are the task's output. When the task's properties say `callback: true`
it also sends `.started` and `.finished` to `SLIPWAY_CALLBACK_URL` with the bearer token from
`SLIPWAY_CALLBACK_TOKEN` (a callback `.finished` wins over the termination message).

Exit code 0 whenever a verdict was reached (`pass`, `warning` and `fail` alike); 2 when the
event cannot be read: Slipway then fails the task with the exit code and the last lines of the
log (`terminationMessagePolicy: FallbackToLogsOnError`).

The check is deliberately small (form and calling code, no carrier data): it shows the
contract, not phone-number intelligence.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TASK = "checknumber"
TERMINATION_LOG = "/dev/termination-log"
#: The kubelet keeps at most 4096 bytes of a termination message.
MAX_TERMINATION_MESSAGE = 4096
#: Calling codes this example knows, by length of prefix (longest match wins).
CALLING_CODES = {
    "1": "US/CA",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "44": "GB",
    "49": "DE",
    "61": "AU",
    "81": "JP",
    "91": "IN",
    "353": "IE",
}
_SEPARATORS = re.compile(r"[\s().\-/]")


class BadEventError(Exception):
    """The event in SLIPWAY_EVENT cannot be used."""


def check(number: object) -> dict[str, Any]:
    """The verdict on `number`: `pass` for an international number with a known calling
    code, `warning` for one that may be a number but cannot be placed, `fail` otherwise."""
    if not isinstance(number, str) or not number.strip():
        return {"result": "fail", "message": "data.number must be a phone number as text"}
    compact = _SEPARATORS.sub("", number.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+") and compact[1:].isdigit() and 8 <= len(compact) - 1 <= 15:
        digits = compact[1:]
        code = next((digits[:n] for n in (3, 2, 1) if digits[:n] in CALLING_CODES), None)
        if code is None:
            return {
                "result": "warning",
                "message": f"{compact} has the E.164 form but an unknown calling code",
                TASK: {"e164": compact},
            }
        return {
            "result": "pass",
            "message": f"{compact} is an E.164 number of {CALLING_CODES[code]}",
            TASK: {"e164": compact, "calling_code": code, "country": CALLING_CODES[code]},
        }
    if compact.isdigit() and 6 <= len(compact) <= 15:
        return {
            "result": "warning",
            "message": f"{number!r} may be a national number: add the country code (+44 ...)",
            TASK: {"national": compact},
        }
    return {"result": "fail", "message": f"{number!r} is not a phone number"}


def read_event(environ: Mapping[str, str]) -> dict[str, Any]:
    """The `.triggered` event from SLIPWAY_EVENT."""
    raw = environ.get("SLIPWAY_EVENT")
    if not raw:
        raise BadEventError("SLIPWAY_EVENT is not set: run me as a Slipway Job provider")
    try:
        event = json.loads(raw)
    except ValueError as error:
        raise BadEventError(f"SLIPWAY_EVENT is not JSON: {error}") from error
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise BadEventError("SLIPWAY_EVENT is not a CloudEvent with a JSON object as data")
    return event


def write_termination_message(path: str, verdict: Mapping[str, Any]) -> None:
    """Write the verdict where the kubelet reads the termination message (cut to fit)."""
    text = json.dumps(verdict, separators=(",", ":"))
    if len(text.encode()) > MAX_TERMINATION_MESSAGE:
        text = json.dumps({"result": verdict.get("result"), "message": "output too large"})
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def respond(
    environ: Mapping[str, str], event: Mapping[str, Any], phase: str, data: dict[str, Any]
) -> int:
    """POST `<task>.<phase>` answering `event` to the callback URL; returns the HTTP status."""
    body = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "slipway.dev/tasks/checknumber-job",
        "type": f"{TASK}.{phase}",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "triggeredid": event["id"],
        "slipwaycontext": event.get("slipwaycontext"),
        "data": data,
    }
    request = urllib.request.Request(
        environ["SLIPWAY_CALLBACK_URL"],
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {environ['SLIPWAY_CALLBACK_TOKEN']}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the task; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--termination-log", default=TERMINATION_LOG)
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        event = read_event(env)
    except BadEventError as error:
        print(f"checknumber: {error}", file=sys.stderr)
        return 2
    data = event["data"]
    properties = data.get(TASK) if isinstance(data.get(TASK), dict) else {}
    callback = bool(properties.get("callback")) and "SLIPWAY_CALLBACK_URL" in env
    if callback:
        respond(env, event, "started", {})
    verdict = check(data.get("number"))
    write_termination_message(args.termination_log, verdict)
    if callback:
        respond(env, event, "finished", verdict)
    print(f"checknumber: {verdict['result']}: {verdict['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
