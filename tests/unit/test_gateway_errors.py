"""The gateway answers every malformed request with JSON `{error, message}` and the status
that names the problem, before any Kubernetes call: these requests never reach one, so the
gateway runs here on loopback without a cluster (its API client is never touched)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from slipway.gateway.errors import GatewayRunner
from slipway.gateway.limits import GatewayLimits
from slipway.gateway.openapi import OPERATIONS, openapi_document, route_operations
from slipway.gateway.server import Gateway, build_app
from slipway.gateway.web import WebOptions

HOST = "Host: gateway\r\n"
EVENTS = "/v1/namespaces/ns/events"


class NoApi:
    """Stands where the API client and the authorizer would be: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the request reached the Kubernetes API ({name})")


class Server:
    """The real gateway application and runner on a loopback port, on its own loop."""

    def __init__(self, limits: GatewayLimits) -> None:
        self.loop = asyncio.new_event_loop()
        gateway = Gateway(
            kube=NoApi(),  # type: ignore[arg-type]
            authorizer=NoApi(),  # type: ignore[arg-type]
            wake=lambda _: None,
            key=b"k",
            limits=limits,
        )
        self.runner = GatewayRunner(build_app(gateway), limits, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]

    def send(self, raw: bytes, *, pause_after: int | None = None, wait: float = 0) -> bytes:
        """Send `raw` (its first `pause_after` bytes, then nothing for `wait` seconds and
        the rest) and read the whole answer."""

        async def go() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                if pause_after is None:
                    writer.write(raw)
                else:
                    writer.write(raw[:pause_after])
                    await writer.drain()
                    await asyncio.sleep(wait)
                    if not reader.at_eof():
                        writer.write(raw[pause_after:])
                await writer.drain()
                return await asyncio.wait_for(reader.read(-1), 20)
            finally:
                writer.close()

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.cleanup())
        left = asyncio.all_tasks(self.loop)
        for task in left:
            task.cancel()

        async def drained() -> None:
            await asyncio.gather(*left, return_exceptions=True)

        self.loop.run_until_complete(drained())
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server(GatewayLimits(header_timeout=1.0, body_timeout=1.0))
    yield running
    running.close()


def answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers in lower case, the JSON body) of a raw HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    pairs = [line.split(": ", 1) for line in lines[1:] if ": " in line]
    headers = {name.lower(): value for name, value in pairs}
    document = json.loads(body)
    assert isinstance(document, dict)
    return int(lines[0].split(" ")[1]), headers, document


def post(body: bytes, *headers: str, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    extra = "".join(f"{h}\r\n" for h in headers)
    head = f"POST {EVENTS} HTTP/1.1\r\n{HOST}Connection: close\r\n{extra}Content-Length: {size}\r\n"
    return head.encode() + b"\r\n" + body


CASES = [
    (
        "unknown route",
        b"GET /nope HTTP/1.1\r\n" + HOST.encode() + b"Connection: close\r\n\r\n",
        404,
        "not_found",
    ),
    (
        "wrong method",
        b"DELETE /healthz HTTP/1.1\r\n" + HOST.encode() + b"Connection: close\r\n\r\n",
        405,
        "method_not_allowed",
    ),
    (
        "long header",
        b"GET /healthz HTTP/1.1\r\n" + HOST.encode() + b"X: " + b"a" * 9000 + b"\r\n\r\n",
        431,
        "header_too_large",
    ),
    (
        "many headers",
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X%d: a\r\n" % i for i in range(150)) + b"\r\n",
        431,
        "header_too_large",
    ),
    ("long request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    ("not HTTP", b"\x16\x03\x01\x02\x00garbage\r\n\r\n", 400, "bad_request_line"),
    ("no Host", b"GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"),
    (
        "bad Content-Length",
        b"POST / HTTP/1.1\r\n" + HOST.encode() + b"Content-Length: abc\r\n\r\n",
        400,
        "bad_request",
    ),
    (
        "broken chunks",
        b"POST "
        + EVENTS.encode()
        + b" HTTP/1.1\r\n"
        + HOST.encode()
        + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
        "bad_request",
    ),
    ("body too large", post(b"{}", length=5_000_000), 413, "too_large"),
    (
        "token not UTF-8",  # found by bench/fuzz_gateway.py: it was a 500
        b"GET /v1/namespaces/ns/sequenceruns/x HTTP/1.1\r\n"
        + HOST.encode()
        + b"Authorization: Bearer abc\xe9def\r\nConnection: close\r\n\r\n",
        401,
        "unauthorized",
    ),
    (
        "bad namespace",
        b"GET /v1/namespaces/NO_PE/sequenceruns/x HTTP/1.1\r\n"
        + HOST.encode()
        + b"Connection: close\r\n\r\n",
        400,
        "bad_name",
    ),
]


@pytest.mark.parametrize(
    ("raw", "status", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_requests_get_json_with_the_right_status(
    server: Server, raw: bytes, status: int, error: str
) -> None:
    """Each kind of malformed request is answered with its status and a JSON error."""
    got, _, body = answer(server.send(raw))
    assert (got, body["error"]) == (status, error)
    assert body["message"]


def test_wrong_method_lists_the_allowed_ones(server: Server) -> None:
    """405 carries `Allow` with the route's methods."""
    _, headers, _ = answer(
        server.send(
            b"PUT "
            + EVENTS.encode()
            + b" HTTP/1.1\r\n"
            + HOST.encode()
            + b"Connection: close\r\n\r\n"
        )
    )
    assert headers["allow"] == "POST"


APPROVAL = "/v1/namespaces/ns/taskexecutions/run-0-approve/approval"


def approval(body: bytes, *headers: str, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    extra = "".join(f"{h}\r\n" for h in headers)
    head = (
        f"POST {APPROVAL} HTTP/1.1\r\n{HOST}Connection: close\r\n{extra}Content-Length: {size}\r\n"
    )
    return head.encode() + b"\r\n" + body


APPROVAL_CASES = [
    ("not JSON", approval(b"decision=approve", "Content-Type: text/plain"), 415, None),
    ("too large", approval(b"{}", "Content-Type: application/json", length=20_000), 413, None),
    (
        "over the body limit",
        approval(b"{}", "Content-Type: application/json", length=5_000_000),
        413,
        None,
    ),
    (
        "deep",
        approval(b"[" * 5000 + b"]" * 5000, "Content-Type: application/json"),
        413,
        "SLIPWAY_GATEWAY_MAX_JSON_DEPTH",
    ),
    ("broken", approval(b'{"decision": ', "Content-Type: application/json"), 400, "not valid"),
    ("wrong", approval(b'{"decision": "maybe"}', "Content-Type: application/json"), 400, None),
    (
        "bad name",
        b"POST /v1/namespaces/ns/taskexecutions/Not_A_Name/approval HTTP/1.1\r\n"
        + HOST.encode()
        + b"Connection: close\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "execution name",
    ),
]


@pytest.mark.parametrize(
    ("raw", "status", "text"),
    [c[1:] for c in APPROVAL_CASES],
    ids=[c[0] for c in APPROVAL_CASES],
)
def test_the_approval_route_reads_its_body_within_the_gateway_limits(
    server: Server, raw: bytes, status: int, text: str | None
) -> None:
    """A decision is read as every body is (media type, size, JSON limits, parsing) and
    refused with a JSON 4xx before any Kubernetes call (the API client here fails on use)."""
    got, _, body = answer(server.send(raw))
    assert got == status, body
    assert body["error"]
    assert body["message"]
    if text is not None:
        assert text in body["message"]


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "SLIPWAY_GATEWAY_MAX_JSON_DEPTH"),
        (
            json.dumps({"data": {f"k{i}": 1 for i in range(20_000)}}).encode(),
            "SLIPWAY_GATEWAY_MAX_JSON_KEYS",
        ),
        (json.dumps({"data": {"s": "x" * 200_000}}).encode(), "SLIPWAY_GATEWAY_MAX_JSON_STRING"),
    ],
    ids=["depth", "keys", "string"],
)
def test_json_limits_answer_413_naming_the_limit(server: Server, body: bytes, limit: str) -> None:
    """Deep, wide or long JSON is refused with 413 naming the setting, without a 500."""
    status, _, document = answer(
        server.send(post(body, "Content-Type: application/cloudevents+json"))
    )
    assert (status, document["error"]) == (413, "json_limit_exceeded")
    assert limit in document["message"]


def test_deep_json_in_binary_mode_is_refused_too(server: Server) -> None:
    """Binary mode (the SDK parses the body) is checked before parsing as well."""
    raw = post(
        b"[" * 50_000 + b"]" * 50_000,
        "Content-Type: application/json",
        "ce-specversion: 1.0",
        "ce-id: 1",
        "ce-source: s",
        "ce-type: dev.s.triggered",
    )
    status, _, document = answer(server.send(raw))
    assert (status, document["error"]) == (413, "json_limit_exceeded")


def test_a_slow_request_head_is_cut_with_408(server: Server) -> None:
    """A client that starts a request and stalls (slowloris) gets 408 after the header
    timeout, and the connection is closed."""
    raw = b"GET /healthz HTTP/1.1\r\n" + HOST.encode() + b"X-Slow: 1\r\n\r\n"
    status, _, document = answer(server.send(raw, pause_after=10, wait=3.0))
    assert (status, document["error"]) == (408, "request_timeout")


def test_a_slow_body_is_cut_with_408(server: Server) -> None:
    """A body that stops arriving gets 408 after the body timeout."""
    raw = post(b'{"specversion": "1.0"}', "Content-Type: application/cloudevents+json")
    status, _, document = answer(server.send(raw, pause_after=len(raw) - 5, wait=3.0))
    assert (status, document["error"]) == (408, "request_timeout")


def test_healthz_and_openapi_answer_json(server: Server) -> None:
    """The probes and the contract are JSON."""
    raw = server.send(
        b"GET /openapi.json HTTP/1.1\r\n" + HOST.encode() + b"Connection: close\r\n\r\n"
    )
    status, _, document = answer(raw)
    assert status == 200
    assert document["openapi"] == "3.1.0"


def _app(with_page: bool) -> web.Application:
    gateway = Gateway(kube=NoApi(), authorizer=NoApi(), wake=lambda _: None, key=b"k")  # type: ignore[arg-type]
    page = WebOptions(kube=NoApi(), gateway_url="http://gateway") if with_page else None  # type: ignore[arg-type]
    return build_app(gateway, page)


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_every_route_is_in_the_openapi_document_and_back() -> None:
    """The document describes exactly the routes the application with the web page (as the
    operator runs it) registers, and nothing else."""
    app = _app(with_page=True)
    assert route_operations(app.router) == set(OPERATIONS)
    assert _documented(openapi_document()) == set(OPERATIONS)
    assert ("GET", "/v1/namespaces/{namespace}/sequenceruns/{name}/events") in OPERATIONS


@pytest.mark.parametrize("with_page", [True, False])
def test_the_served_document_has_the_routes_the_app_serves(with_page: bool) -> None:
    """/openapi.json describes the routes of the application that serves it: the page's
    routes only when it serves the page."""
    app = _app(with_page)

    async def fetch() -> dict[str, Any]:
        runner = GatewayRunner(app, GatewayLimits(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
            writer.write(
                b"GET /openapi.json HTTP/1.1\r\n" + HOST.encode() + b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(-1), 20)
            writer.close()
        finally:
            await runner.cleanup()
        return answer(raw)[2]

    loop = asyncio.new_event_loop()
    try:
        document = loop.run_until_complete(fetch())
    finally:
        loop.close()
    assert _documented(document) == route_operations(app.router)
    assert (("GET", "/v1/whoami") in _documented(document)) is with_page


def test_openapi_document_is_valid_openapi_3_1() -> None:
    """The document passes an OpenAPI 3.1 validator (the one schemathesis loads it with)."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(openapi_document())
    assert len(list(schema.get_all_operations())) == len(OPERATIONS)


# ------------------------------------------------------------------ the API server down or slow
def _api_server_answering_never() -> tuple[Any, int]:
    """A TCP server that accepts connections and never answers (a hung API server)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize("api", ["down", "hung"])
def test_api_server_down_or_hung_gives_503_with_retry_after(api: str) -> None:
    """When the Kubernetes API server refuses connections or does not answer, a trigger is
    answered 503 with Retry-After within the API timeout, not queued or failed with 500."""
    from kubernetes_asyncio import client as k8s_client

    from slipway.gateway.auth import KubernetesAuthorizer
    from slipway.kube.client import Kube

    listener, port = _api_server_answering_never()
    if api == "down":
        listener.close()  # nothing listens there any more: connection refused
    limits = GatewayLimits(api_timeout=1.0, retry_after_seconds=7)
    loop = asyncio.new_event_loop()

    async def scenario() -> tuple[int, dict[str, str], dict[str, Any]]:
        configuration = k8s_client.Configuration(host=f"http://127.0.0.1:{port}")
        api_client = k8s_client.ApiClient(configuration)
        authorizer = KubernetesAuthorizer(Kube(api_client), timeout=limits.api_timeout)
        gateway = Gateway(
            kube=Kube(api_client),
            authorizer=authorizer,
            wake=lambda _: None,
            key=b"k",
            limits=limits,
        )
        runner = GatewayRunner(build_app(gateway), limits, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        event = {
            "specversion": "1.0",
            "id": "1",
            "source": "s",
            "type": "dev.s.triggered",
            "data": {},
        }
        raw = post(
            json.dumps(event).encode(),
            "Content-Type: application/cloudevents+json",
            "Authorization: Bearer some-token",
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(raw)
        await writer.drain()
        answered = await asyncio.wait_for(reader.read(-1), 20)
        writer.close()
        await runner.cleanup()
        await api_client.close()
        return answer(answered)

    try:
        status, headers, body = loop.run_until_complete(scenario())
    finally:
        loop.close()
        listener.close()
    assert (status, body["error"]) == (503, "api_unavailable")
    assert headers["retry-after"] == "7"
