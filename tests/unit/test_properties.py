"""Property-based tests (hypothesis): the CloudEvent parsers, the JSON limits, the data merge
and the output limits hold for any input, not only for the examples written down elsewhere.

Each test runs `EXAMPLES` generated cases (about 20 s for the whole module on a quiet
machine); hypothesis shrinks any failure to a minimal input and prints it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.api.common import Phase, Reason, Result
from slipway.api.taskexecution import ProviderRecord, TaskExecutionStatus
from slipway.engine.data import deep_merge, merge_outputs
from slipway.engine.responses import apply_response
from slipway.engine.sizes import DataLimits, json_size
from slipway.events import (
    EventError,
    JsonLimitError,
    JsonLimits,
    TaskResponse,
    check_depth,
    interpret,
    parse_http,
    parse_sync_response,
)

EXAMPLES = 150
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ------------------------------------------------------------------ strategies
keys = st.text(min_size=1, max_size=8)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
scalars_no_null = st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(keys, json_values, max_size=6)
names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
attributes = st.fixed_dictionaries(
    {
        "specversion": st.sampled_from(["1.0", "0.3", "", "2"]),
        "id": st.text(max_size=10),
        "source": st.text(max_size=10),
        "type": st.one_of(
            st.builds(lambda t, p: f"{t}.{p}", names, st.sampled_from(["started", "finished"])),
            st.builds(lambda s, q: f"{s}.{q}.triggered", names, names),
            st.text(max_size=20),
        ),
    },
    optional={
        "time": st.text(max_size=30) | st.just("2024-05-01T12:00:00Z"),
        "triggeredid": st.text(max_size=20),
        "slipwaycontext": st.text(max_size=10) | st.integers() | st.booleans(),
        "datacontenttype": st.sampled_from(["application/json", "text/plain", "x"]),
        "data": json_values,
        "data_base64": st.text(max_size=5),
    },
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def refusal(call: Callable[[], object]) -> EventError | None:
    """The EventError `call` raises, None when it returns (any other exception propagates
    and fails the test)."""
    try:
        call()
    except EventError as error:
        return error
    return None


def depth(value: Any) -> int:
    """Nesting depth of arrays and objects, recursively (the definition check_depth keeps)."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


# ------------------------------------------------------------------ CloudEvent parsing
@SETTINGS
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/cloudevents+json",
            "application/json",
            "text/plain",
            "application/cloudevents-batch+json",
            "",
        ]
    ),
)
def test_any_bytes_are_an_event_or_an_event_error(body: bytes, content_type: str) -> None:
    """Whatever the body, parsing gives an event or an EventError with a 4xx, never another
    exception (the gateway answers the error's status)."""
    headers = {
        "Content-Type": content_type,
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "s",
        "ce-type": "t.finished",
    }
    error = refusal(lambda: parse_http(headers, body))
    assert error is None or 400 <= error.status < 500


@SETTINGS
@given(event=attributes)
def test_any_structured_document_is_an_event_or_an_event_error(event: dict[str, Any]) -> None:
    """A JSON object with any mix of attributes parses, or fails with a 4xx EventError; a
    parsed event keeps the id, source and data it was given, and its meaning is a trigger or
    a task response (or a 4xx)."""
    body = json.dumps(event).encode()
    error = refusal(lambda: interpret(parse_http(STRUCTURED, body)))
    if error is not None:
        assert 400 <= error.status < 500
        return
    parsed = parse_http(STRUCTURED, body)
    meaning = interpret(parsed)
    assert (parsed.id, parsed.source) == (event["id"], event["source"])
    assert parsed.data == (event.get("data") or {})
    assert meaning.id == event["id"]


@SETTINGS
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "ce-specversion",
                "ce-id",
                "ce-source",
                "ce-type",
                "ce-time",
                "ce-triggeredid",
                "ce-x",
                "content-type",
            ]
        ),
        header_values,
    ),
    data=json_values,
)
def test_any_binary_event_is_an_event_or_an_event_error(headers: dict[str, str], data: Any) -> None:
    """Binary mode with any header values parses or fails with a 4xx EventError."""
    error = refusal(lambda: parse_http(headers, json.dumps(data).encode()))
    assert error is None or 400 <= error.status < 500


@SETTINGS
@given(
    data=json_objects,
    task=names,
    result=st.sampled_from(["pass", "warning", "fail", "maybe", None]),
)
def test_a_sync_answer_is_read_back_as_sent(
    data: dict[str, Any], task: str, result: str | None
) -> None:
    """A tool's synchronous `.finished` is read with its data as output (reserved keys
    aside) and a result that is the one sent when valid, else fail."""
    event = {
        "specversion": "1.0",
        "id": "a",
        "source": "tool",
        "type": f"{task}.finished",
        "data": {**data, "result": result},
    }
    response = parse_sync_response(
        {"Content-Type": "application/cloudevents+json"},
        json.dumps(event).encode(),
        task=task,
        triggered_id="ns/x/p/1",
    )
    assert isinstance(response, TaskResponse)
    assert response.result == (result if result in ("pass", "warning", "fail") else "fail")
    assert response.output is not None
    assert all(
        response.output[k] == v
        for k, v in data.items()
        if k not in ("result", "status", "message", "shipyard", "stage", "sequence", "task", "run")
    )


# ------------------------------------------------------------------ JSON limits
@SETTINGS
@given(value=json_values, limit=st.integers(min_value=0, max_value=6))
def test_check_depth_measures_the_real_nesting(value: Any, limit: int) -> None:
    """check_depth on the text refuses exactly the documents nested deeper than the limit,
    strings holding brackets included."""
    raw = json.dumps(value).encode()
    error = refusal(lambda: check_depth(raw, limit))
    assert isinstance(error, JsonLimitError) == (depth(value) > limit)


@SETTINGS
@given(raw=st.binary(max_size=400), limit=st.integers(min_value=0, max_value=4))
def test_check_depth_never_fails_otherwise(raw: bytes, limit: int) -> None:
    """On any bytes check_depth returns or raises JsonLimitError, nothing else."""
    error = refusal(lambda: check_depth(raw, limit))
    assert error is None or isinstance(error, JsonLimitError)


@SETTINGS
@given(value=json_objects)
def test_structured_events_within_the_limits_parse(value: dict[str, Any]) -> None:
    """A valid event whose data is within generous limits is never refused by them."""
    event = {
        "specversion": "1.0",
        "id": "1",
        "source": "s",
        "type": "dev.s.triggered",
        "data": value,
    }
    parsed = parse_http(
        {"Content-Type": "application/cloudevents+json"},
        json.dumps(event).encode(),
        limits=JsonLimits(max_depth=64, max_keys=10_000, max_string=10_000),
    )
    assert parsed.data == value


# ------------------------------------------------------------------ the data merge
@SETTINGS
@given(a=json_objects, b=json_objects)
def test_merge_keeps_every_key_and_lets_the_overlay_win(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    """Every key of both sides is in the merge; a key whose values are not both maps takes the
    overlay's value; maps on both sides merge."""
    merged = deep_merge(a, b)
    assert set(merged) == set(a) | set(b)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(a.get(key), dict):
            assert merged[key] == deep_merge(a[key], value)
        else:
            assert merged[key] == value
    for key in set(a) - set(b):
        assert merged[key] == a[key]


@SETTINGS
@given(a=json_objects, b=json_objects, c=json_objects)
def test_merge_is_associative(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    """Merging outputs one by one or in groups gives the same run data."""
    assert deep_merge(deep_merge(a, b), c) == deep_merge(a, deep_merge(b, c))
    assert merge_outputs([a, b, c]) == deep_merge(deep_merge(a, b), c)


@SETTINGS
@given(a=json_objects, b=json_objects)
def test_merge_changes_and_shares_nothing(a: dict[str, Any], b: dict[str, Any]) -> None:
    """The inputs are unchanged, and changing the result changes neither input."""
    before = (copy.deepcopy(a), copy.deepcopy(b))
    merged = deep_merge(a, b)
    assert (a, b) == before

    def scribble(value: Any) -> None:
        if isinstance(value, dict):
            for item in list(value.values()):
                scribble(item)
            value["scribbled"] = True
        elif isinstance(value, list):
            for item in value:
                scribble(item)
            value.append("scribbled")

    scribble(merged)
    assert (a, b) == before


@SETTINGS
@given(a=json_objects)
def test_merge_with_nothing_is_identity(a: dict[str, Any]) -> None:
    """An empty overlay or base changes nothing."""
    assert deep_merge(a, {}) == a
    assert deep_merge({}, a) == a


# ------------------------------------------------------------------ output limits
AT = datetime(2024, 5, 1, tzinfo=UTC)


@SETTINGS
@given(
    output=json_objects,
    run_data=json_objects,
    task_limit=st.integers(1, 400),
    run_limit=st.integers(1, 800),
)
def test_an_output_is_kept_only_within_the_limits(
    output: dict[str, Any], run_data: dict[str, Any], task_limit: int, run_limit: int
) -> None:
    """A provider's `.finished` output is kept exactly when it fits the task limit and the
    run's data merged with it fits the run limit; otherwise the provider fails with
    DataTooLarge, a message giving the size, and no output."""
    status = TaskExecutionStatus(
        phase=Phase.STARTED,
        attempts=1,
        providers=[ProviderRecord(name="p", phase=Phase.STARTED, triggered_id="t", attempt=1)],
    )
    patch = apply_response(
        status,
        triggered_id="t",
        phase="finished",
        result=Result.PASS,
        message=None,
        output=output,
        at=AT,
        limits=DataLimits(max_run_data=run_limit, max_task_output=task_limit),
        input_data=run_data,
    )
    record = TaskExecutionStatus.model_validate(deep_merge(status.to_wire(), patch)).providers[0]
    fits = not output or (
        json_size(output) <= task_limit and json_size(deep_merge(run_data, output)) <= run_limit
    )
    if fits:
        assert record.result == Result.PASS
        assert record.output == (output or None)
    else:
        assert (record.result, record.reason, record.output) == (
            Result.FAIL,
            Reason.DATA_TOO_LARGE,
            None,
        )
        assert str(json_size(output)) in (record.message or "")
