"""The gateway's contract as an OpenAPI 3.1 document, served at `/openapi.json`.

`OPERATIONS` describes every route, the web page's included; `openapi_document` assembles the
document of the routes an application registered (the page's only when it serves the page).
tests/unit/test_gateway_errors.py proves every route of the application with the page is
described here and every operation described here is registered, and `schemathesis` fuzzes
the real gateway (which serves the page) from this document in
tests/cluster/test_gateway_fuzz.py (any 5xx, non-JSON error or answer that breaks the schema
fails it). A new route is added to both places or the tests fail.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

NAME_PATTERN: Final = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OBJECT_NAME_PATTERN: Final = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

_JSON: Final = "application/json"
SHA256_PATTERN: Final = "^[0-9a-f]{64}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref(schema)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    """Error answers: the given statuses, any other 4xx, and 503 (API server slow or down,
    or the gateway busy) with Retry-After."""
    answers: dict[str, Any] = {
        str(s): _answer(_ERROR_TEXT.get(s, "error"), "Error") for s in statuses
    }
    answers["4XX"] = _answer("any other client error (404, 405, 408, 413, 414, 431, ...)", "Error")
    answers["503"] = {
        **_answer("the Kubernetes API server is slow or down, or the gateway is busy", "Error"),
        "headers": {"Retry-After": {"schema": {"type": "string"}, "required": True}},
    }
    return answers


_ERROR_TEXT: Final = {
    400: "malformed (JSON, attributes, names, the wait)",
    401: "no bearer token, or one the API server does not accept",
    403: "no RBAC right, or a callback token of another execution",
    404: "no such run or execution",
    409: "a response for a task or provider that already finished",
    413: "a body, JSON or run data over a limit",
    415: "not a CloudEvent",
    422: "a valid CloudEvent Slipway cannot act on",
}

_NAMESPACE: Final = {
    "name": "namespace",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 63},
}
_AUTHORIZATION: Final = {
    "name": "Authorization",
    "in": "header",
    "required": False,
    "description": "`Bearer <token>`: a Kubernetes token, or a task's callback token",
    "schema": {"type": "string"},
}

_NAME: Final = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": OBJECT_NAME_PATTERN, "maxLength": 253},
}


def _text(media: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


#: (method, path) -> the OpenAPI operation.
OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("POST", "/v1/namespaces/{namespace}/events"): {
        "operationId": "postEvent",
        "summary": "Start a run (`<stage>.<sequence>.triggered`) or answer a task",
        "parameters": [_NAMESPACE, _AUTHORIZATION],
        "requestBody": {
            "required": True,
            "content": {
                "application/cloudevents+json": {"schema": _ref("CloudEvent")},
                _JSON: {
                    "description": "binary mode: the attributes as `ce-` headers",
                    "schema": {"type": "object"},
                },
            },
        },
        "responses": {
            "200": _answer("the same trigger again: the run it started", "Triggered"),
            "202": {
                "description": "a run was started, or a task response was accepted",
                "content": {
                    _JSON: {"schema": {"oneOf": [_ref("Triggered"), _ref("ResponseAccepted")]}}
                },
            },
            **_errors(400, 401, 403, 404, 409, 413, 415, 422),
        },
    },
    ("GET", "/v1/namespaces/{namespace}/sequenceruns/{name}"): {
        "operationId": "getRun",
        "summary": "A run's status; `wait` long-polls until it finished",
        "parameters": [
            _NAMESPACE,
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": OBJECT_NAME_PATTERN, "maxLength": 253},
            },
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "description": "a duration such as `30s` (at most 5m)",
                "schema": {"type": "string"},
            },
            _AUTHORIZATION,
        ],
        "responses": {
            "200": _answer("the run", "Run"),
            **_errors(400, 401, 403, 404),
        },
    },
    ("POST", "/v1/namespaces/{namespace}/taskexecutions/{name}/approval"): {
        "operationId": "postApproval",
        "summary": "Approve or reject an approval task (RBAC verb `approve` on taskexecutions)",
        "parameters": [
            _NAMESPACE,
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": OBJECT_NAME_PATTERN, "maxLength": 253},
            },
            _AUTHORIZATION,
        ],
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": _ref("ApprovalRequest")}},
        },
        "responses": {
            "200": _answer("the decision was recorded", "ApprovalDecided"),
            **_errors(400, 401, 403, 404, 409, 413, 415),
        },
    },
    ("GET", "/healthz"): {
        "operationId": "healthz",
        "summary": "Liveness: the gateway answers",
        "responses": {"200": _answer("alive", "Health")},
    },
    ("GET", "/readyz"): {
        "operationId": "readyz",
        "summary": "Readiness: the operator watches its resources",
        "responses": {"200": _answer("ready", "Health"), **_errors()},
    },
    ("GET", "/openapi.json"): {
        "operationId": "openapi",
        "summary": "This document",
        "responses": {
            "200": {
                "description": "OpenAPI 3.1",
                "content": {_JSON: {"schema": {"type": "object"}}},
            }
        },
    },
    # ------------------------------------------------------------------ the web page's routes
    ("GET", "/"): {
        "operationId": "page",
        "summary": "The web page (HTML; its scripts and styles under /static)",
        "responses": {"200": _text("text/html", "the page"), **_errors()},
    },
    ("GET", "/static/{file}"): {
        "operationId": "staticFile",
        "summary": "A file of the page: its script, style sheet or icon",
        "parameters": [
            {
                "name": "file",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
            }
        ],
        "responses": {
            "200": {
                "description": "the file",
                "content": {
                    media: {"schema": {"type": "string"}}
                    for media in ("text/html", "text/javascript", "text/css", "image/svg+xml")
                },
            },
            **_errors(404),
        },
    },
    ("GET", "/v1/whoami"): {
        "operationId": "whoami",
        "summary": "Who the bearer token belongs to (a TokenReview)",
        "parameters": [_AUTHORIZATION],
        "responses": {"200": _answer("the caller", "Identity"), **_errors(401)},
    },
    ("GET", "/v1/capabilities"): {
        "operationId": "capabilities",
        "summary": "The titled sequences the caller may start, with their inputs",
        "parameters": [_AUTHORIZATION],
        "responses": {"200": _answer("what the caller may start", "Capabilities"), **_errors(401)},
    },
    ("GET", "/v1/namespaces/{namespace}/sequenceruns"): {
        "operationId": "listRuns",
        "summary": "Runs of a namespace, newest first, paged; `mine=true`: the caller's own",
        "parameters": [
            _NAMESPACE,
            {"name": "mine", "in": "query", "required": False, "schema": {"type": "boolean"}},
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "runs per page (1 to 100, default 20)",
                "schema": {"type": "integer"},
            },
            {
                "name": "continue",
                "in": "query",
                "required": False,
                "description": "the `continue` of the page before",
                "schema": {"type": "string"},
            },
            _AUTHORIZATION,
        ],
        "responses": {"200": _answer("a page of runs", "RunPage"), **_errors(400, 401, 403)},
    },
    ("GET", "/v1/namespaces/{namespace}/sequenceruns/{name}/events"): {
        "operationId": "runEvents",
        "summary": "Server-Sent Events of a run: `run` on each change, `end` once finished",
        "description": (
            "Each event's data is the run's view as JSON; comments keep the connection alive. "
            "The stream ends after `end`, or after an hour (reconnect), or early when the "
            "Kubernetes API cannot be read (reconnect)."
        ),
        "parameters": [_NAMESPACE, _NAME, _AUTHORIZATION],
        "responses": {
            "200": _text("text/event-stream", "the stream"),
            **_errors(400, 401, 403, 404),
        },
    },
    ("POST", "/v1/namespaces/{namespace}/uploads"): {
        "operationId": "upload",
        "summary": "Store a file for a run's file input (who may: `create` sequenceruns)",
        "parameters": [
            _NAMESPACE,
            {
                "name": "capability",
                "in": "query",
                "required": True,
                "description": "`<shipyard>/<stage>/<sequence>`",
                "schema": {"type": "string"},
            },
            {
                "name": "input",
                "in": "query",
                "required": True,
                "description": "the name of the file input",
                "schema": {"type": "string"},
            },
            _AUTHORIZATION,
        ],
        "requestBody": {
            "required": True,
            "description": "the file; its media type as Content-Type, fitting the input's",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        "responses": {
            "201": _answer("the file is stored", "Uploaded"),
            **_errors(400, 401, 403, 404, 413, 415, 422),
        },
    },
    ("GET", "/v1/namespaces/{namespace}/sequenceruns/{name}/uploads/{sha}"): {
        "operationId": "getUpload",
        "summary": "A run's uploaded file, for its tools (the token from the run's data)",
        "parameters": [
            _NAMESPACE,
            _NAME,
            {
                "name": "sha",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": SHA256_PATTERN},
            },
            _AUTHORIZATION,
        ],
        "responses": {
            "200": {
                "description": "the file, in its media type",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            **_errors(400, 401, 403, 404),
        },
    },
}

_STRING: Final = {"type": "string"}
SCHEMAS: Final[dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "a stable code, e.g. `not_found`"},
            "message": {"type": "string", "description": "what to change, for a person"},
        },
    },
    "CloudEvent": {
        "type": "object",
        "required": ["specversion", "id", "source", "type"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"type": "string", "minLength": 1},
            "time": _STRING,
            "subject": _STRING,
            "datacontenttype": _STRING,
            "slipwaycontext": _STRING,
            "triggeredid": _STRING,
            "data": {"type": "object"},
        },
    },
    "Triggered": {
        "type": "object",
        "required": ["namespace", "run", "context", "duplicate"],
        "properties": {
            "namespace": _STRING,
            "run": _STRING,
            "context": _STRING,
            "duplicate": {"type": "boolean"},
        },
    },
    "ResponseAccepted": {
        "type": "object",
        "required": ["namespace", "execution", "accepted"],
        "properties": {
            "namespace": _STRING,
            "execution": _STRING,
            "accepted": {"enum": ["started", "status.changed", "finished"]},
        },
    },
    "Run": {
        "type": "object",
        "required": ["namespace", "name", "status"],
        "properties": {"namespace": _STRING, "name": _STRING, "status": {"type": "object"}},
    },
    "ApprovalRequest": {
        "type": "object",
        "required": ["decision"],
        "properties": {"decision": {"enum": ["approve", "reject"]}, "comment": _STRING},
    },
    "ApprovalDecided": {
        "type": "object",
        "required": ["namespace", "execution", "user", "decision", "summary", "finished"],
        "properties": {
            "namespace": _STRING,
            "execution": _STRING,
            "user": _STRING,
            "decision": {"enum": ["approve", "reject"]},
            "summary": _STRING,
            "finished": {"type": "boolean"},
        },
    },
    "Identity": {
        "type": "object",
        "required": ["username", "groups"],
        "properties": {"username": _STRING, "groups": {"type": "array", "items": _STRING}},
    },
    "Capabilities": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {"type": "object"}}},
    },
    "RunPage": {
        "type": "object",
        "required": ["items", "continue", "total"],
        "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "continue": {"type": ["string", "null"]},
            "total": {"type": "integer", "minimum": 0},
        },
    },
    "Uploaded": {
        "type": "object",
        "required": ["upload", "size", "contentType"],
        "properties": {
            "upload": {"type": "string", "pattern": SHA256_PATTERN},
            "size": {"type": "integer", "minimum": 1},
            "contentType": _STRING,
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": _STRING},
    },
}


def route_operations(router: web.UrlDispatcher) -> set[tuple[str, str]]:
    """(method, path template) of every route registered on `router`; HEAD, which aiohttp
    adds beside each GET, is left out (it answers as GET does, without a body)."""
    found = set()
    for route in router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if path and route.method not in ("HEAD", "*"):
            found.add((route.method, str(path)))
    return found


def openapi_document(registered: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway: the operations of `registered` (method, path)
    (`route_operations` of an application), or all of them when None."""
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in sorted(OPERATIONS.items()):
        if registered is None or (method, path) in registered:
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Slipway event gateway",
            "version": "v1",
            "description": (
                "Start runs with CloudEvents, take tools' responses, read runs. Every error "
                "is JSON {error, message}; limits are documented in docs/events.md."
            ),
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
