"""The real gateway, on the real control plane, under fuzzing: schemathesis generates
requests from its OpenAPI document (valid and invalid ones) for every route the operator
serves, the web page's included, and a raw-socket fuzzer sends broken HTTP. Any 5xx, any
error that is not JSON `{error, message}`, any answer that breaks the document, and any
connection dropped without an answer fails the test.

The event stream is read bounded (schemathesis stops reading an event stream after the
request's timeout in total); half of the generated stream requests name a run that finished,
whose stream ends at once, and a third of the generated uploads name a real file input."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from kubernetes import client
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from slipway.gateway.openapi import OPERATIONS
from tests.cluster.objects import Cluster, stage
from tests.cluster.test_gateway import service_account_token
from tests.conftest import OperatorProcess

pytestmark = pytest.mark.usefixtures("crds")

ROOT = Path(__file__).resolve().parents[2]
#: Generated requests per operation and generation mode (valid, invalid): 13 operations
#: (all but /openapi.json) x 2 x 50 = 1,300 requests from schemathesis (fewer in the invalid
#: mode: an operation with nothing to get wrong is skipped), plus RAW_REQUESTS from the raw
#: fuzzer.
EXAMPLES = 50
#: Seconds an event stream is read for (the stream of a run that has not finished goes on).
STREAM_SECONDS = 5
RAW_REQUESTS = 600


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx but the documented 503 (with Retry-After: the API server slow or down)."""
    if response.status_code >= 500 and not (
        response.status_code == 503 and response.headers.get("retry-after")
    ):
        raise AssertionError(f"{response.status_code} for {case.method} {case.formatted_path}")
    return None


def json_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is a JSON object with `error` and `message`."""
    if response.status_code >= 400:
        body = response.json()
        if not (isinstance(body, dict) and {"error", "message"} <= body.keys()):
            raise AssertionError(f"error without error/message: {response.text[:200]}")
    return None


CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    json_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def operator(kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with short header and body timeouts (3 s), so that the fuzzer's requests
    that promise a body and never send it are cut quickly; no traceback, a clean stop."""
    env = {"SLIPWAY_GATEWAY_HEADER_TIMEOUT": "3", "SLIPWAY_GATEWAY_BODY_TIMEOUT": "3"}
    process = OperatorProcess(namespace, tmp_path / "operator.log", env)
    process.start()
    yield process
    code = process.stop()
    log = process.log()
    assert "Traceback" not in log, f"operator logged a traceback:\n{log}"
    assert code in (0, -signal.SIGTERM), f"operator exited with {code}:\n{log}"


PHOTO = {
    "name": "photo",
    "title": "A photo",
    "tasks": [{"name": "t"}],
    "inputs": {"properties": {"image": {"contentMediaType": "image/*"}}, "required": ["image"]},
}
#: A run that finishes at once (its sequence does not exist): its event stream ends at once.
FINISHED_RUN = "finished"


@pytest.fixture
def token(api_client: client.ApiClient, namespace: str, k8s: Cluster) -> str:
    """A client allowed to create, read and list runs, and a Shipyard for its triggers (a
    titled sequence with a file input too, for the page's routes)."""
    k8s.shipyard("fuzz", [stage("dev", {"name": "sequence-one", "tasks": [{"name": "t"}]}, PHOTO)])
    return service_account_token(api_client, namespace, "fuzzer", ["create", "get", "list"])


@pytest.fixture
def finished_run(operator: OperatorProcess, k8s: Cluster) -> str:
    k8s.run(FINISHED_RUN, "fuzz", "dev", "no-such-sequence")
    k8s.finished(FINISHED_RUN)
    return FINISHED_RUN


def can_be_invalid(operation: dict[str, Any]) -> bool:
    """Whether a request can break `operation`'s rules: a body, a required parameter, or
    one with more rules than "a string"."""
    return bool(operation.get("requestBody")) or any(
        p.get("required") or set(p.get("schema", {})) - {"type"}
        for p in operation.get("parameters", [])
    )


def pin(case: Any, count: int, finished_run: str) -> dict[str, Any]:
    """Point some generated requests at real things (a finished run, a file input), so that
    the routes are fuzzed past their first check; extra arguments for the call."""
    if case.path.endswith("/sequenceruns/{name}/events"):
        if count % 2 and case.path_parameters:
            case.path_parameters["name"] = finished_run
        return {"timeout": STREAM_SECONDS}
    if case.path.endswith("/uploads") and count % 3 == 0 and isinstance(case.query, dict):
        case.query.update({"capability": "fuzz/dev/photo", "input": "image"})
    return {"timeout": 30}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error_and_no_broken_answer(
    operator: OperatorProcess, token: str, finished_run: str, mode: GenerationMode
) -> None:
    """Every operation of /openapi.json (the page's routes included), with generated valid
    (then invalid) requests, half of them with a real token: every answer conforms to the
    document."""
    schema = schemathesis.openapi.from_url(f"{operator.gateway_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = {(o.method.upper(), o.path) for o in operations}
    assert fuzzed | {("GET", "/openapi.json")} == set(OPERATIONS)  # it skips its own source
    sent = itertools.count()
    for operation in operations:
        described = OPERATIONS[(operation.method.upper(), operation.path)]
        if not mode.is_positive and not can_be_invalid(described):
            continue  # nothing in it can be invalid

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            count = next(sent)
            headers = {"Authorization": f"Bearer {token}"} if count % 2 else None
            extra = pin(case, count // 2, finished_run)
            case.call_and_validate(
                base_url=operator.gateway_url, headers=headers, checks=CHECKS, **extra
            )

        fuzz()


def _fuzzer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fuzz_gateway", ROOT / "bench" / "fuzz_gateway.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_gateway"] = module
    spec.loader.exec_module(module)
    return module


def test_raw_fuzzing_gets_json_answers_and_no_drops(
    operator: OperatorProcess, token: str, namespace: str
) -> None:
    """Broken request lines, oversized and invalid headers, deep and huge JSON, lying
    lengths, bad tokens (bench/fuzz_gateway.py's generators): no 5xx, every error JSON, no
    connection dropped without an answer."""
    fuzz = _fuzzer()
    parts = urlsplit(operator.gateway_url)
    target = fuzz.Target(parts.hostname, parts.port, namespace, token)
    outcomes = asyncio.run(fuzz.fuzz(target, RAW_REQUESTS, 15, 16, 10.0))
    bad = [
        o
        for o in outcomes
        if o.status is None or o.status >= 500 or (o.status >= 400 and not o.json_error)
    ]
    summary = [(o.kind, o.status, o.note) for o in bad[:20]]
    assert not bad, f"{len(bad)} of {len(outcomes)} answers were bad: {summary}"
