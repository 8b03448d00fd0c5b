"""Two small example tools that speak Slipway's CloudEvents protocol over HTTP.

    python tasks/demo/tools.py --port 9001 --mode sync  [--log events.jsonl]
    python tasks/demo/tools.py --port 9002 --mode async [--log events.jsonl]

`sync` answers the POST of `<task>.triggered` with `<task>.finished` in the response body.
`async` answers 202 at once, then POSTs `.started`, a `.status.changed` and `.finished` to the
callback URL the event named, with the callback token it carried. Both do the same small job on
`data.number`: check that it is a phone number in E.164 form and say which country code it has.
Each event received and sent is logged as a JSON line (with a timestamp) to `--log`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

#: A few calling codes, longest first, to name the country of a number.
CALLING_CODES = {
    "1": "US/CA",
    "20": "EG",
    "27": "ZA",
    "30": "GR",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "34": "ES",
    "36": "HU",
    "39": "IT",
    "40": "RO",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "48": "PL",
    "49": "DE",
    "52": "MX",
    "55": "BR",
    "61": "AU",
    "64": "NZ",
    "81": "JP",
    "82": "KR",
    "86": "CN",
    "91": "IN",
    "353": "IE",
    "351": "PT",
    "358": "FI",
    "380": "UA",
    "420": "CZ",
}


def check(number: Any) -> dict[str, Any]:
    """The verdict on one phone number: pass (E.164 with a known code), warning (E.164 with
    an unknown code), fail (not a phone number)."""
    if not isinstance(number, str):
        return {
            "result": "fail",
            "message": "data.number must be a string such as +44 20 7946 0958",
        }
    digits = re.sub(r"[\s().-]", "", number)
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", digits):
        return {"result": "fail", "message": f"{number!r} is not an international number"}
    code = next(
        (c for c in sorted(CALLING_CODES, key=len, reverse=True) if digits[1:].startswith(c)), None
    )
    if code is None:
        return {
            "result": "warning",
            "message": f"{digits} has a calling code this tool does not know",
            "e164": digits,
        }
    return {
        "result": "pass",
        "message": f"{digits} is a well-formed {CALLING_CODES[code]} number",
        "e164": digits,
        "country": CALLING_CODES[code],
    }


class Tool:
    def __init__(self, mode: str, log: Path | None) -> None:
        self.mode = mode
        self.log = log
        self.tasks: set[asyncio.Task[None]] = set()

    def record(self, what: str, event: dict[str, Any]) -> None:
        if self.log is None:
            return
        line = {
            "t": time.time(),
            "what": what,
            "type": event.get("type"),
            "id": event.get("id"),
            "triggeredid": event.get("triggeredid"),
        }
        with self.log.open("a") as out:
            out.write(json.dumps(line) + "\n")

    def reply(self, triggered: dict[str, Any], phase: str, data: dict[str, Any]) -> dict[str, Any]:
        task = triggered["type"].rsplit(".", 1)[0]
        return {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": f"demo-tools/{self.mode}",
            "type": f"{task}.{phase}",
            "triggeredid": triggered["id"],
            "slipwaycontext": triggered.get("slipwaycontext", ""),
            "datacontenttype": "application/json",
            "data": data,
        }

    async def handle(self, request: web.Request) -> web.Response:
        event = await request.json()
        self.record("received", event)
        verdict = check((event.get("data") or {}).get("number"))
        if self.mode == "sync":
            answer = self.reply(event, "finished", verdict)
            self.record("sent", answer)
            return web.Response(
                text=json.dumps(answer), content_type="application/cloudevents+json"
            )
        job = asyncio.get_running_loop().create_task(self.call_back(event, verdict))
        self.tasks.add(job)
        job.add_done_callback(self.tasks.discard)
        return web.json_response({"accepted": True}, status=202)

    async def call_back(self, triggered: dict[str, Any], verdict: dict[str, Any]) -> None:
        headers = {
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {triggered['slipwaytoken']}",
        }
        steps = [
            ("started", {}),
            ("status.changed", {"message": "looking the number up"}),
            ("finished", verdict),
        ]
        async with aiohttp.ClientSession() as session:
            for phase, data in steps:
                answer = self.reply(triggered, phase, data)
                self.record("sent", answer)
                async with session.post(
                    triggered["slipwaycallback"], data=json.dumps(answer), headers=headers
                ) as response:
                    if response.status >= 300:
                        print(f"callback answered {response.status}: {await response.text()}")
                await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["sync", "async"], required=True)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    app = web.Application()
    tool = Tool(args.mode, args.log)
    app.router.add_post("/", tool.handle)
    app.router.add_get("/healthz", lambda _: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
