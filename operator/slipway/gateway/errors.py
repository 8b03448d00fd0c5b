"""Every answer of the gateway is JSON `{error, message}`, whatever went wrong and where.

Three places can answer an HTTP request with an error, and each is covered here:
- a route handler or aiohttp's router (unknown path 404, wrong method 405, body too large
  413, ...): the `json_errors` middleware turns any `HTTPException`, `ProblemError`,
  `UnavailableError` (503 with `Retry-After`), a Kubernetes API refusal (`refused_by_api`),
  body read timeout (408) or unexpected exception (500, logged) into JSON;
- aiohttp's HTTP parser, before any handler runs (broken request line, header too long, too
  many headers, bad framing): `JsonErrorHandler.handle_error` replaces aiohttp's plain-text
  error page with JSON and maps each problem to its status (400, 414, 431);
- a client too slow to send its request's head (slowloris): `JsonErrorHandler` answers 408
  and closes once the `header_timeout` passes, instead of waiting forever.

`GatewayRunner` is the AppRunner that puts the handler class and the limits in place.
`read_body` and `read_json` are the one way a route reads its body: within the size limits,
the body timeout and, for JSON, the media type and the JSON limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from slipway.events import EventError, JsonLimits, is_name, is_object_name
from slipway.gateway.limits import GatewayLimits, InflightGate, UnavailableError
from slipway.kube.errors import KubeError

log = logging.getLogger(__name__)

#: The `error` code of each status the gateway answers without a more specific one.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    422: "unprocessable",
    429: "too_many_requests",
    431: "header_too_large",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
    504: "timeout",
}
#: Paths never refused for being busy: the probes.
_PROBES = frozenset({"/healthz", "/readyz"})


def code_for(status: int) -> str:
    return _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")


def problem(
    status: int,
    error: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error response `{error, message, **extra}` (every error of the gateway)."""
    body = {"error": error, "message": message, **extra}
    return web.json_response(body, status=status, headers=headers)


class ProblemError(Exception):
    """Raised by a route (or a helper it calls) for a request it refuses: the middleware
    answers `problem(status, error, message)`."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def bad_name(what: str, value: str) -> web.Response:
    """400 for a path part that is not a Kubernetes name (before any API call is made)."""
    return problem(400, "bad_name", _bad_name_text(what, value))


def check_names(namespace: str, name: str | None = None, what: str = "name") -> None:
    """Raise `ProblemError` (400 bad_name) unless `namespace` is a namespace name and `name`
    (when given) an object name."""
    if not is_name(namespace):
        raise ProblemError(400, "bad_name", _bad_name_text("namespace", namespace))
    if name is not None and not is_object_name(name):
        raise ProblemError(400, "bad_name", _bad_name_text(what, name))


def _bad_name_text(what: str, value: str) -> str:
    shown = value if len(value) <= 80 else value[:80] + "…"
    return f"{what} {shown!r} is not a Kubernetes name (lower-case letters, digits, '-')"


def refused_by_api(error: KubeError) -> web.Response:
    """The API server refused a request the gateway made for the caller (e.g. a run too
    large to store, or an invalid name): the caller's problem, said as the API server said it;
    503 when the refusal is the operator's own missing rights."""
    status = error.status if error.status in (400, 404, 409, 413, 422) else 422
    if error.status in (401, 403):  # the operator's own rights are missing: not the caller's
        log.error("the API server refused the gateway: %s", error.message)
        return problem(
            503,
            "refused_by_api",
            f"the Kubernetes API server refused the gateway: {error.message}",
        )
    return problem(status, "refused_by_api", f"the Kubernetes API server refused: {error.message}")


def unavailable(error: UnavailableError, limits: GatewayLimits) -> web.Response:
    return problem(
        503, error.error, error.message, {"Retry-After": str(limits.retry_after_seconds)}
    )


def _http_exception(
    exc: web.HTTPException, request: web.Request, limits: GatewayLimits
) -> web.Response:
    status = exc.status
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        headers["Allow"] = ", ".join(allowed)
        message = (
            f"{request.method} is not allowed on {request.path}; allowed: {', '.join(allowed)}"
        )
    elif status == 404:
        message = f"no such route: {request.method} {request.path} (see /openapi.json)"
    elif status == 413:
        message = (
            f"the body is larger than {limits.max_body_bytes} bytes "
            "(SLIPWAY_GATEWAY_MAX_BODY_BYTES): send less data"
        )
    else:
        message = exc.text or exc.reason
    if exc.headers.get("Retry-After"):
        headers["Retry-After"] = exc.headers["Retry-After"]
    if status >= 500 and status != 503:
        log.error("HTTP %s for %s %s: %s", status, request.method, request.path, message)
    return problem(status, code_for(status), message, headers or None)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_errors(limits: GatewayLimits) -> Any:
    """The middleware: a bounded number of requests at once, and every error as JSON."""
    gate = InflightGate(limits.max_inflight)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        gated = request.path not in _PROBES
        try:
            if gated:
                gate.enter()
        except UnavailableError as error:
            return unavailable(error, limits)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects and the like pass through
            return _http_exception(exc, request, limits)
        except ProblemError as error:
            return problem(error.status, error.error, error.message)
        except UnavailableError as error:
            return unavailable(error, limits)
        except KubeError as error:  # not transient (api_call turned those into 503)
            return refused_by_api(error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the gateway failed on %s %s", request.method, request.path)
            return problem(500, "internal", "the gateway failed on this request; it is logged")
        finally:
            if gated:
                gate.leave()
        if response.status >= 400 and not _is_json(response):
            text = response.text if isinstance(response, web.Response) else None
            return problem(response.status, code_for(response.status), text or response.reason)
        return response

    return middleware


def _is_json(response: web.StreamResponse) -> bool:
    return (response.content_type or "").endswith("json")


async def read_body(
    request: web.Request, limits: GatewayLimits, max_bytes: int | None = None
) -> bytes:
    """The whole body, at most `max_body_bytes` (413 before reading when Content-Length says
    more; 413 while reading a chunked body), within `body_timeout` (408). A route with a
    smaller bound of its own gives it as `max_bytes` (413 naming it)."""
    if (request.content_length or 0) > limits.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limits.max_body_bytes, actual_size=request.content_length or 0
        )
    if max_bytes is not None and (request.content_length or 0) > max_bytes:
        raise ProblemError(413, "too_large", f"this body is at most {max_bytes} bytes")
    try:
        body = await asyncio.wait_for(request.read(), limits.body_timeout)
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the body did not arrive within {limits.body_timeout:g} s "
            "(SLIPWAY_GATEWAY_BODY_TIMEOUT)"
        ) from None
    except web.HTTPException:
        raise
    except Exception as exc:  # broken chunked framing, connection closed mid-body
        raise web.HTTPBadRequest(text=f"the body could not be read: {exc}") from exc
    if max_bytes is not None and len(body) > max_bytes:
        raise ProblemError(413, "too_large", f"this body is at most {max_bytes} bytes")
    return body


async def read_json(
    request: web.Request, limits: GatewayLimits, max_bytes: int | None = None
) -> Any:
    """The body as a JSON document, read by `read_body`: 415 when it is declared as another
    media type than JSON (no Content-Type is taken as JSON), 413 over a size or JSON limit
    (depth checked before parsing, keys and string lengths after), 400 when it is not JSON."""
    declared = request.headers.get("Content-Type")
    if declared is not None and not _json_media(declared):
        raise ProblemError(
            415,
            "unsupported_media_type",
            f"Content-Type {declared[:80]!r} is not JSON: send application/json",
        )
    raw = await read_body(request, limits, max_bytes)
    return parse_json(raw, limits.json)


def parse_json(raw: bytes, limits: JsonLimits) -> Any:
    """`raw` as JSON within `limits` (`ProblemError` 413 or 400 otherwise); never recurses
    past the depth limit."""
    try:
        limits.check(raw)
        document = json.loads(raw)
        limits.check(b"", document)
    except EventError as error:  # JsonLimitError: 413 naming the limit
        raise ProblemError(error.status, error.error, error.message) from error
    except RecursionError as error:  # a safety net: the depth is checked first
        raise ProblemError(413, "json_limit_exceeded", "the JSON nests too deeply") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise ProblemError(400, "bad_json", f"the body is not valid JSON: {error}") from error
    return document


def _json_media(content_type: str) -> bool:
    kind, _, subtype = content_type.split(";")[0].strip().lower().partition("/")
    return kind in ("application", "text") and (subtype == "json" or subtype.endswith("+json"))


# ------------------------------------------------------------------ below the handlers
def _parser_problem(exc: BaseException | None, limits: GatewayLimits) -> tuple[int, str, str]:
    """(status, error, message) for a request aiohttp's parser refused."""
    text = str(getattr(exc, "message", "") or exc or "")
    if isinstance(exc, LineTooLong):
        if _is_request_line(exc.args[0] if exc.args else b""):
            return (
                414,
                "uri_too_long",
                f"the request line is longer than {limits.max_line_bytes} bytes "
                "(SLIPWAY_GATEWAY_MAX_LINE_BYTES)",
            )
        return (
            431,
            "header_too_large",
            f"a header is longer than {limits.max_field_bytes} bytes "
            "(SLIPWAY_GATEWAY_MAX_FIELD_BYTES)",
        )
    if isinstance(exc, BadHttpMessage) and "too many headers" in text.lower():
        return (
            431,
            "header_too_large",
            f"more than {limits.max_headers} headers (SLIPWAY_GATEWAY_MAX_HEADERS)",
        )
    if isinstance(exc, BadHttpMethod):
        return 400, "bad_request_line", f"not an HTTP request: {text or 'bad method'}"
    return 400, "bad_request", f"the request could not be read as HTTP: {text or 'malformed'}"


def _is_request_line(line: object) -> bool:
    """Whether the line a LineTooLong quotes is the request line or its target (the parsers
    quote the path, or the whole line) rather than a header."""
    if isinstance(line, str):
        line = line.encode(errors="replace")
    if not isinstance(line, bytes | bytearray):
        return False
    return bool(_REQUEST_LINE.match(bytes(line)))


_REQUEST_LINE = re.compile(rb"^(/|https?://|[A-Z]+ )")


def _raw_response(status: int, error: str, message: str) -> bytes:
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler with JSON error pages and a deadline for request heads."""

    __slots__ = ("_head_timer", "_limits", "_partial")

    def __init__(self, manager: Server, *, limits: GatewayLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._partial = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A complete head was parsed (or a parse error queued): the handler takes over.
        if self._messages or self._request_in_progress:
            self._disarm()
            self._partial = False
        elif data:
            self._partial = True

    def _arm(self, delay: float | None = None) -> None:
        self._disarm()
        seconds = self._limits.header_timeout if delay is None else delay
        self._head_timer = self._loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        """The head did not arrive in time: 408 if one was begun, then close."""
        self._head_timer = None
        if self._request_in_progress or self._messages:
            return
        transport = self.transport
        if transport is None:
            return
        if self._partial:
            transport.write(
                _raw_response(
                    408,
                    "request_timeout",
                    f"the request's head did not arrive within {self._limits.header_timeout:g}"
                    " s (SLIPWAY_GATEWAY_HEADER_TIMEOUT)",
                )
            )
        self.force_close()

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        self._partial = False
        # The next request's head has the same deadline, counted after the lingering read
        # of a body the handler did not read (a 413): cutting that short would reset the
        # connection and the client could lose its answer.
        self._arm(self._limits.header_timeout + self._lingering_time)
        return result

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status == 400 or status == 413:
            status, error, text = _parser_problem(exc, self._limits)
            log.debug("refused a malformed request: %s", text)
        else:
            if status >= 500:
                log.error("error handling a request", exc_info=exc)
            error, text = code_for(status), HTTPStatus(status).description
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; cannot send an error too")
        response = web.json_response({"error": error, "message": text}, status=status)
        response.force_close()
        return response


class _JsonServer(Server):
    """aiohttp's Server, making `JsonErrorHandler`s."""

    def __init__(self, *args: Any, limits: GatewayLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits

    def __call__(self) -> RequestHandler:
        return JsonErrorHandler(self, limits=self._limits, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose connections answer parser errors and slow heads with JSON, with the
    header limits of `limits` (request line, header size, header count, idle time)."""

    def __init__(self, app: web.Application, limits: GatewayLimits, **kwargs: Any) -> None:
        super().__init__(
            app,
            max_line_size=limits.max_line_bytes,
            max_field_size=limits.max_field_bytes,
            max_headers=limits.max_headers,
            # a backstop: JsonErrorHandler closes slow or idle connections at header_timeout
            keepalive_timeout=2 * limits.header_timeout,
            # after an early answer (413), read and drop the rest of the body for up to this
            # long before closing, so the client reads the answer instead of a reset
            lingering_time=limits.body_timeout,
            **kwargs,
        )
        self._limits = limits

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # aiohttp has no hook for its own error pages: make the same Server with our handler.
        return _JsonServer(
            server.request_handler,
            request_factory=server.request_factory,
            loop=asyncio.get_running_loop(),
            limits=self._limits,
            **server._kwargs,
        )
