"""Slipway's tool protocol in one small module, shared by the photo tools.

A tool is a name and a function `decide(data) -> verdict` where `data` is the `.triggered`
event's data and the verdict is `{"result": "pass|warning|fail", "message": ..., **output}`.
The same function runs both ways:

    python tool.py serve [--host 0.0.0.0] [--port 8080]   # HTTP CloudEvent service
    python tool.py job [--termination-log PATH]           # Job container

Without a sub-command it is `job` when `SLIPWAY_EVENT` is set, else `serve`.

- As a service it answers each POST of `<task>.triggered` (structured or binary mode) with
  `<task>.finished` in the response body (structured mode). When the event names a callback
  (`slipwaycallback`, `slipwaytoken`) and the tool says what it is doing (`working`), that
  sentence is first sent as `<task>.status.changed` (best effort), so a person watching the
  run sees it.
- As a Job it reads the event from `SLIPWAY_EVENT` and writes the verdict as JSON to the
  termination message: `SLIPWAY_TERMINATION_LOG`, else `/dev/termination-log`.

A `decide` that raises never crashes the tool: the verdict becomes `fail` with the error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

Verdict = dict[str, Any]
Decide = Callable[[dict[str, Any]], Verdict]

TERMINATION_LOG = "/dev/termination-log"
#: The kubelet keeps at most 4096 bytes of a termination message.
MAX_TERMINATION_MESSAGE = 4096
#: Largest request body the service reads (images inline as base64 need room).
MAX_BODY = int(os.environ.get("TOOL_MAX_BODY", str(16 * 1024 * 1024)))
RESULTS = ("pass", "warning", "fail")


class BadEventError(Exception):
    """The event cannot be used."""


def safe_decide(decide: Decide, data: dict[str, Any]) -> Verdict:
    """`decide(data)`, with any error turned into a `fail` verdict a person can read."""
    try:
        verdict = decide(data)
    except Exception as error:
        traceback.print_exc()
        return {"result": "fail", "message": f"the tool could not finish: {error}"}
    if verdict.get("result") not in RESULTS:
        return {"result": "fail", "message": f"the tool gave no valid result: {verdict!r:.200}"}
    return verdict


def finished_event(task: str, source: str, triggered: Mapping[str, Any], verdict: Verdict) -> Any:
    """The `<task>.finished` CloudEvent answering `triggered`."""
    prefix = str(triggered.get("type", "")).removesuffix(f"{task}.triggered")
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": source,
        "type": f"{prefix}{task}.finished",
        "time": datetime.now(UTC).isoformat(),
        "triggeredid": triggered.get("id", ""),
        "slipwaycontext": triggered.get("slipwaycontext", ""),
        "datacontenttype": "application/json",
        "data": verdict,
    }


def parse_event(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A CloudEvent from an HTTP request, structured or binary mode."""
    try:
        payload = json.loads(body or b"null")
    except ValueError as error:
        raise BadEventError(f"the body is not JSON: {error}") from error
    lower = {k.lower(): v for k, v in headers.items()}
    if "ce-type" in lower:  # binary mode: attributes in ce- headers, data in the body
        event: dict[str, Any] = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
        event["data"] = payload
    elif isinstance(payload, dict):
        event = payload
    else:
        raise BadEventError("the body is not a CloudEvent")
    if not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise BadEventError("a CloudEvent with a type and a JSON object as data is needed")
    return event


def status_event(task: str, source: str, triggered: Mapping[str, Any], message: str) -> Any:
    """The `<task>.status.changed` CloudEvent saying what the tool is doing now."""
    event = finished_event(task, source, triggered, {"message": message})
    event["type"] = str(event["type"]).removesuffix(".finished") + ".status.changed"
    return event


async def report_status(
    task: str, source: str, triggered: Mapping[str, Any], message: str | None
) -> None:
    """POST a `.status.changed` to the event's callback, if it has one; never raises."""
    url, token = triggered.get("slipwaycallback"), triggered.get("slipwaytoken")
    if not message or not isinstance(url, str) or not isinstance(token, str):
        return
    import aiohttp

    headers = {
        "Content-Type": "application/cloudevents+json",
        "Authorization": f"Bearer {token}",
    }
    body = json.dumps(status_event(task, source, triggered, message))
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        print(f"{task}: status report to {url} failed: {error}", file=sys.stderr)


def make_app(task: str, source: str, decide: Decide, working: str | None = None) -> Any:
    """The aiohttp application of the service: POST / (events), GET /healthz."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        try:
            event = parse_event(request.headers, await request.read())
        except BadEventError as error:
            return web.json_response({"error": "bad-event", "message": str(error)}, status=400)
        await report_status(task, source, event, working)
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(None, safe_decide, decide, event["data"])
        answer = finished_event(task, source, event, verdict)
        return web.Response(text=json.dumps(answer), content_type="application/cloudevents+json")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/", handle)
    app.router.add_post("/events", handle)
    app.router.add_get("/healthz", healthz)
    return app


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


def termination_message(verdict: Verdict) -> str:
    """The verdict as JSON that fits a termination message: if the whole does not, each
    output object keeps only its plain values (the metrics), and if that does not fit either,
    only the result and message are kept."""
    text = json.dumps(verdict, separators=(",", ":"))
    if len(text.encode()) <= MAX_TERMINATION_MESSAGE:
        return text
    note = "the full output did not fit the 4096-byte termination message"
    plain = {
        key: {k: v for k, v in value.items() if not isinstance(v, dict | list)}
        if isinstance(value, dict)
        else value
        for key, value in verdict.items()
    }
    text = json.dumps({**plain, "truncated": note}, separators=(",", ":"))
    if len(text.encode()) <= MAX_TERMINATION_MESSAGE:
        return text
    small = {"result": verdict.get("result"), "message": str(verdict.get("message", ""))[:500]}
    return json.dumps({**small, "truncated": note})


def run_job(task: str, decide: Decide, environ: Mapping[str, str], log: str | None) -> int:
    """The Job entry point; returns the exit code (0 for every verdict, 2 for a bad event)."""
    try:
        event = read_event(environ)
    except BadEventError as error:
        print(f"{task}: {error}", file=sys.stderr)
        return 2
    verdict = safe_decide(decide, event["data"])
    path = log or environ.get("SLIPWAY_TERMINATION_LOG") or TERMINATION_LOG
    with open(path, "w", encoding="utf-8") as out:
        out.write(termination_message(verdict))
    print(f"{task}: {verdict['result']}: {verdict.get('message', '')}")
    return 0


def main(
    task: str,
    source: str,
    decide: Decide,
    argv: list[str] | None = None,
    working: str | None = None,
) -> int:
    """Command line: `serve` or `job` (default: `job` when SLIPWAY_EVENT is set). `working`:
    what the tool tells a person watching while it works."""
    parser = argparse.ArgumentParser(prog=task, description=f"the Slipway tool {task}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="HTTP CloudEvent service")
    serve.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    job = sub.add_parser("job", help="run once as a Job container")
    job.add_argument("--termination-log")
    args = parser.parse_args(argv)
    command = args.command or ("job" if os.environ.get("SLIPWAY_EVENT") else "serve")
    if command == "job":
        return run_job(task, decide, os.environ, getattr(args, "termination_log", None))
    from aiohttp import web

    host = getattr(args, "host", None) or os.environ.get("HOST", "0.0.0.0")
    port = getattr(args, "port", None) or int(os.environ.get("PORT", "8080"))
    web.run_app(make_app(task, source, decide, working), host=host, port=port, print=None)
    return 0
