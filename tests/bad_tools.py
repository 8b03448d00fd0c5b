"""Tools that misbehave, as a real HTTP server on loopback (raw asyncio sockets, so that an
answer can be dripped, cut in the middle or sent twice exactly as a broken tool would).

The first path segment of the URL names the behaviour (`http://127.0.0.1:port/<behaviour>`):
- `hang`: reads the event and never answers;
- `drip`: answers 200 one byte every half second;
- `err500`: answers 500, every time;
- `throttle`: answers 429 with `Retry-After: 1000000000`;
- `redirect`: answers 307 to another host;
- `notevent`: answers 200 "application/cloudevents+json" with a body that is no event;
- `othertask`: answers with a `.finished` of another task;
- `huge`: answers 200 with a 5 MiB body;
- `bigoutput`: answers with a valid `.finished` whose output is 300 KiB;
- `unknownresult`: answers with a `.finished` whose result is `maybe`;
- `closemid`: promises 1000 bytes, sends 10 and closes the connection;
- `twice`: answers 202, calls back `.finished` fail, then `.finished` pass;
- `wrongtoken`: answers 202, then calls back with another execution's token;
- anything else: answers with `.finished` pass.
Every callback's HTTP status is kept in `callbacks[behaviour]`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.tools import ServerThread


def _response(
    status: int, body: bytes, content_type: str = "application/json", **extra: str
) -> bytes:
    headers = [
        f"HTTP/1.1 {status} X",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    headers += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    headers.append("Connection: close")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def _finished(event: dict[str, Any], data: dict[str, Any], task: str | None = None) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": "tests/bad-tool",
            "type": f"{task or event['type'].removesuffix('.triggered')}.finished",
            "triggeredid": event["id"],
            "data": data,
        }
    ).encode()


@dataclass
class BadTool(ServerThread):
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    callbacks: dict[str, list[int]] = field(default_factory=dict)

    async def _listen(self) -> Callable[[], Awaitable[None]]:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

        async def close() -> None:
            server.close()

        return close

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._answer(reader, writer))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            behaviour = lines[0].split(" ")[1].strip("/").split("/")[0]
            length = next(
                (
                    int(line.split(":", 1)[1])
                    for line in lines
                    if line.lower().startswith("content-length:")
                ),
                0,
            )
            event = json.loads(await reader.readexactly(length))
            self.events[behaviour] = event
            await self._behave(behaviour, event, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _behave(
        self, behaviour: str, event: dict[str, Any], writer: asyncio.StreamWriter
    ) -> None:
        structured = "application/cloudevents+json"
        if behaviour == "hang":
            await asyncio.sleep(3600)
        elif behaviour == "drip":
            for byte in _response(200, b"{}" * 100):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.5)
        elif behaviour == "err500":
            writer.write(_response(500, b'{"error": "broken"}'))
        elif behaviour == "throttle":
            writer.write(_response(429, b"{}", Retry_After="1000000000"))
        elif behaviour == "redirect":
            writer.write(_response(307, b"", Location="http://tool.elsewhere.invalid/"))
        elif behaviour == "notevent":
            writer.write(_response(200, b"<html>hello</html>", structured))
        elif behaviour == "othertask":
            writer.write(
                _response(200, _finished(event, {"result": "pass"}, "another"), structured)
            )
        elif behaviour == "huge":
            writer.write(_response(200, b" " * (5 << 20)))
        elif behaviour == "bigoutput":
            data = {"result": "pass", "blob": ["x" * 1024] * 300}
            writer.write(_response(200, _finished(event, data), structured))
        elif behaviour == "unknownresult":
            writer.write(_response(200, _finished(event, {"result": "maybe"}), structured))
        elif behaviour == "closemid":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        elif behaviour == "twice":
            writer.write(_response(202, b"{}"))
            self._spawn(self._answer_twice(behaviour, event))
        elif behaviour == "wrongtoken":
            writer.write(_response(202, b"{}"))
            self._spawn(self._call_back_with_another_token(behaviour, event))
        else:
            writer.write(_response(200, _finished(event, {"result": "pass"}), structured))
        await writer.drain()

    async def _call_back(
        self, behaviour: str, event: dict[str, Any], token: str, data: dict[str, Any]
    ) -> None:
        headers = {
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {token}",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                event["slipwaycallback"], data=_finished(event, data), headers=headers
            ) as reply,
        ):
            self.callbacks.setdefault(behaviour, []).append(reply.status)

    async def _answer_twice(self, behaviour: str, event: dict[str, Any]) -> None:
        """`.finished` fail, then (once that was accepted) `.finished` pass."""
        token = event["slipwaytoken"]
        await self._call_back(behaviour, event, token, {"result": "fail", "message": "first"})
        await self._call_back(behaviour, event, token, {"result": "pass", "message": "second"})

    async def _call_back_with_another_token(self, behaviour: str, event: dict[str, Any]) -> None:
        while True:  # wait for another execution's event: its token is the wrong one here
            other = next(
                (e for b, e in self.events.items() if b != behaviour and e.get("slipwaytoken")),
                None,
            )
            if other is not None and other["slipwaytoken"] != event["slipwaytoken"]:
                break
            await asyncio.sleep(0.2)
        await self._call_back(behaviour, event, other["slipwaytoken"], {"result": "pass"})
