"""Data limits in the engine: a run whose data is too large, a task's output over the
limits, the run's copies of outputs, and the reason they give (`DataTooLarge`)."""

from __future__ import annotations

from typing import Any

from slipway.api.common import Phase, Reason, Result
from slipway.api.sequencerun import SequenceRunStatus
from slipway.api.taskexecution import ProviderRecord, TaskExecutionStatus
from slipway.engine.responses import apply_response
from slipway.engine.runs import decide_run
from slipway.engine.sizes import DataLimits, json_size
from slipway.handlers.refused import refused
from slipway.kube.errors import KubeError
from tests.unit.test_engine_runs import SHIPYARD, T0, T1, applied, finished, new_run, started_run

SMALL = DataLimits(max_run_data=200, max_task_output=100)


def test_json_size_is_compact_utf8() -> None:
    """Sizes are those of compact UTF-8 JSON, as the API server stores the field."""
    assert json_size({"a": [1, 2]}) == len(b'{"a":[1,2]}')
    assert json_size({"é": "日"}) == len('{"é":"日"}'.encode())


def test_a_run_with_too_much_data_finishes_data_too_large_without_copying_it() -> None:
    """A run created (by kubectl) with data over the limit fails at once, DataTooLarge, its
    message giving the size, and its status holds no copy of the data and no task."""
    data = {"blob": "x" * 300}
    decision = decide_run(new_run(data=data), SHIPYARD, {}, T0, limits=SMALL)
    status = SequenceRunStatus.model_validate(decision.status)
    assert (status.phase, status.result, status.reason) == (
        Phase.FINISHED,
        Result.FAIL,
        Reason.DATA_TOO_LARGE,
    )
    assert str(json_size(data)) in (status.message or "")
    assert not status.data
    assert not status.tasks
    assert not decision.create_executions
    assert decision.finished


def test_a_run_within_the_limit_starts() -> None:
    """The same run with the default limits starts normally."""
    decision = decide_run(new_run(data={"blob": "x" * 300}), SHIPYARD, {}, T0)
    assert SequenceRunStatus.model_validate(decision.status).phase == Phase.STARTED


def test_a_task_failing_data_too_large_ends_the_run_with_that_reason() -> None:
    """The run takes over a task's DataTooLarge, as it does TimedOut."""
    run = started_run()
    name = run.status.tasks[0].execution or ""
    failed = finished(Result.FAIL, Reason.DATA_TOO_LARGE, message="p: fail (DataTooLarge)")
    status = applied(run, decide_run(run, SHIPYARD, {name: failed}, T1)).status
    assert (status.result, status.reason) == (Result.FAIL, Reason.DATA_TOO_LARGE)


def test_the_run_keeps_output_copies_only_within_its_data_limit() -> None:
    """Each task record holds a copy of its output while the copies stay within
    max_run_data; past it the record says where the output is instead (nothing is lost: the
    run's data has it merged and the execution keeps it)."""
    limits = DataLimits(max_run_data=150, max_task_output=100)
    run = applied(new_run(), decide_run(new_run(), SHIPYARD, {}, T0, limits=limits))
    outputs = [{"a": "x" * 80}, {"b": "y" * 80}]
    for index, output in enumerate(outputs):
        name = run.status.tasks[index].execution or ""
        run = applied(
            run,
            decide_run(
                run, SHIPYARD, {name: finished(Result.PASS, output=output)}, T1, limits=limits
            ),
        )
    first, second = run.status.tasks[:2]
    assert first.output == outputs[0]
    assert second.output is None
    assert "output not copied here (see TaskExecution run-1-1-check)" in (second.message or "")
    assert run.status.data == {"n": 1, **outputs[0], **outputs[1]}


def _started(*others: ProviderRecord) -> TaskExecutionStatus:
    return TaskExecutionStatus(
        phase=Phase.STARTED,
        attempts=1,
        providers=[
            ProviderRecord(name="p", phase=Phase.STARTED, triggered_id="t", attempt=1),
            *others,
        ],
    )


def _record(status: TaskExecutionStatus, patch: dict[str, Any]) -> ProviderRecord:
    merged = {**status.to_wire(), **patch}
    return TaskExecutionStatus.model_validate(merged).providers[0]


def test_outputs_of_all_providers_count_together() -> None:
    """A task's output limit is for all its providers: an output that fits alone fails when
    the other provider's output already used the room."""
    other = ProviderRecord(
        name="q", phase=Phase.FINISHED, result=Result.PASS, triggered_id="u", output={"a": "x" * 60}
    )
    status = _started(other)
    patch = apply_response(
        status,
        triggered_id="t",
        phase="finished",
        result=Result.PASS,
        message=None,
        output={"b": "y" * 40},
        at=T1,
        limits=SMALL,
    )
    record = _record(status, patch)
    assert (record.result, record.reason, record.output) == (
        Result.FAIL,
        Reason.DATA_TOO_LARGE,
        None,
    )
    assert "with the other providers' outputs" in (record.message or "")


def test_an_output_that_would_make_the_run_data_too_large_is_refused() -> None:
    """The run's data is the execution's input merged with the outputs: over the limit, the
    provider fails naming the run data limit."""
    status = _started()
    patch = apply_response(
        status,
        triggered_id="t",
        phase="finished",
        result=Result.PASS,
        message=None,
        output={"b": "y" * 50},
        at=T1,
        limits=SMALL,
        input_data={"a": "x" * 180},
    )
    record = _record(status, patch)
    assert record.reason == Reason.DATA_TOO_LARGE
    assert "SLIPWAY_MAX_RUN_DATA_BYTES" in (record.message or "")


def test_refused_writes_are_told_from_transient_errors() -> None:
    """413, 422 and etcd's "request is too large" cannot be fixed by a retry; a 409 or a 500
    can."""
    assert refused(KubeError(413, "Request Entity Too Large"))
    assert refused(KubeError(422, "Unprocessable Entity"))
    assert refused(KubeError(500, "Internal Server Error", "etcdserver: request is too large"))
    assert not refused(KubeError(409, "Conflict"))
    assert not refused(KubeError(500, "Internal Server Error"))
    assert not refused(ValueError("x"))
