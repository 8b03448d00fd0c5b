"""The built-in quality gate: fetch SLI values, score them against the SLO, finish the provider.

`run_evaluation` is what a `.triggered` means for an evaluation provider. It never hangs (every
request is bounded, see `slipway.providers.sli`) and a source that fails only fails its own
objectives. The result is recorded like a tool's `.finished`:
- `result`: the report's `pass`, `warning` or `fail`;
- `message`: the verdict in one line, `score 75 (warning): error_rate 0.7 pass (<=1), ...`;
- `output`: `{"evaluation": <report>}` (score, result, totals, comparison, objectives, and
  the `window` the values describe), so the report is in the TaskExecution's output and, merged,
  in the run's data under `evaluation`.
A Kubernetes Event (reason `Evaluated`) on the TaskExecution and on its SequenceRun says the
same line.

History: the earlier evaluations are the finished TaskExecutions with the same shipyard, stage,
sequence and task labels whose output holds an `evaluation` report, newest first (by
`finishedAt`). One annotated `slipway.dev/invalidated: "true"` (`slipway invalidate`) is never
compared with. The current execution is never its own history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from slipway.api.common import Reason, Result
from slipway.api.resources import SEQUENCE_RUN, TASK_EXECUTION
from slipway.api.taskprovider import EvaluationProvider, TaskProviderSpec
from slipway.constants import (
    ANNOTATION_INVALIDATED,
    SEQUENCERUN_PLURAL,
    TASKEXECUTION_PLURAL,
)
from slipway.engine.data import triggered_data
from slipway.engine.decisions import KubeEvent, Trigger
from slipway.engine.objects import build_event, involved, label_selector, task_labels
from slipway.engine.report import ObjectiveReport, Report, format_number
from slipway.engine.scoring import (
    EarlierEvaluation,
    InvalidInputError,
    SLIError,
    evaluate,
    parse_history,
)
from slipway.kube.client import Body, Kube, Ref
from slipway.kube.errors import KubeError
from slipway.providers.context import DispatchContext, ExecutionRef
from slipway.providers.responses import record_failure, record_finished
from slipway.providers.sli.fetch import FetchPolicy
from slipway.providers.sli.http import Headers
from slipway.providers.sli.prometheus import placeholders
from slipway.providers.sli.sources import collect
from slipway.providers.sli.window import Window, WindowError, format_time, resolve_window

log = logging.getLogger(__name__)

OUTPUT_KEY = "evaluation"
"""The output key the report is written under."""
EVENT_REASON = "Evaluated"
"""The reason of the Kubernetes Event stating the verdict."""
MAX_MESSAGE = 1000
"""The verdict line is cut to this many characters (Event messages are limited)."""


async def run_evaluation(
    ctx: DispatchContext,
    execution: ExecutionRef,
    provider: TaskProviderSpec,
    order: Trigger,
    policy: FetchPolicy | None = None,
) -> None:
    """Carry out one evaluation and record it as provider `order.provider`'s `.finished`.
    Failures of sources become failed objectives; a failure to read the history (comparing
    with nothing would judge relative criteria wrongly) or any unexpected error fails the
    provider with the reason. Errors of the Kubernetes API while recording do raise."""
    evaluation = provider.evaluation
    if evaluation is None:
        raise ValueError(f"TaskProvider {order.provider} is not an evaluation provider")
    try:
        outcome = await _evaluate(ctx, execution, evaluation, policy)
    except HistoryError as error:
        await _fail(ctx.kube, execution, order, f"cannot read earlier evaluations: {error}")
        return
    except Exception as error:  # a bug must fail this provider, not the operator
        log.exception("%s: evaluation failed", execution.name)
        await _fail(ctx.kube, execution, order, f"evaluation failed: {error!r}")
        return
    report, window, run = outcome
    message = verdict_line(report)
    output = {OUTPUT_KEY: report_output(report, window)}
    recorded = await record_finished(
        ctx.kube,
        execution.namespace,
        execution.name,
        triggered_id=order.triggered_id,
        result=Result(report.result),
        message=message,
        output=output,
        limits=ctx.data_limits,
    )
    if not recorded:
        log.info("%s: evaluation not recorded: the task moved on meanwhile", execution.name)
        return
    about = [involved(TASK_EXECUTION.kind, execution.namespace, execution.name, execution.uid)]
    if run is not None:
        meta = run["metadata"]
        about.append(involved(SEQUENCE_RUN.kind, meta["namespace"], meta["name"], meta["uid"]))
    event = KubeEvent("Normal" if report.result == "pass" else "Warning", EVENT_REASON, message)
    now = datetime.now(UTC)
    for target in about:
        await ctx.kube.post_event(build_event(target, event, now))


class HistoryError(Exception):
    """The earlier evaluations could not be read."""


async def _evaluate(
    ctx: DispatchContext,
    execution: ExecutionRef,
    evaluation: EvaluationProvider,
    policy: FetchPolicy | None,
) -> tuple[Report, Window | WindowError, Body | None]:
    spec = execution.spec
    kube = ctx.kube
    now = datetime.now(UTC)
    data = triggered_data(spec.input, spec.task)
    settings = data.get(spec.task.name)
    run = await _read_run(kube, execution.namespace, spec.run)
    window: Window | WindowError
    try:
        window = resolve_window(
            settings if isinstance(settings, Mapping) else {},
            evaluation.timeframe,
            _started_at(run),
            now,
        )
    except WindowError as error:
        window = error
    history = await read_history(
        kube, execution.namespace, execution.name, task_labels(execution.spec)
    )
    identity = {
        "SHIPYARD": spec.shipyard,
        "STAGE": spec.stage,
        "SEQUENCE": spec.sequence,
        "TASK": spec.task.name,
        "RUN": spec.run,
        "NAMESPACE": execution.namespace,
    }
    values = await collect(
        ctx.session,
        evaluation.sources,
        wanted=[objective.sli for objective in evaluation.slo.objectives],
        window=window,
        placeholders=(
            placeholders(window, evaluation.slo.filter, identity)
            if isinstance(window, Window)
            else {}
        ),
        data=data,
        headers=await _headers(kube, execution.namespace, evaluation),
        policy=policy,
    )
    return evaluate(evaluation.slo, values, history), window, run


async def _read_run(kube: Kube, namespace: str, name: str) -> Body | None:
    """The run, or None when it is gone or cannot be read (the window then says so)."""
    try:
        return await kube.get(Ref(SEQUENCERUN_PLURAL, namespace, name))
    except KubeError as error:
        log.warning("cannot read SequenceRun %s/%s: %s", namespace, name, error)
        return None


def _started_at(run: Body | None) -> datetime | None:
    raw = ((run or {}).get("status") or {}).get("startedAt")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------- history
async def read_history(
    kube: Kube, namespace: str, current: str, labels: Mapping[str, str]
) -> list[EarlierEvaluation]:
    """The earlier evaluations of the same shipyard/stage/sequence/task (see the module's
    docstring). Raises HistoryError when they cannot be listed."""
    selector = label_selector(labels)
    try:
        items = await kube.list(TASKEXECUTION_PLURAL, namespace, label_selector=selector)
    except KubeError as error:
        raise HistoryError(
            f"listing TaskExecutions failed: {error.status} {error.reason}"
        ) from None
    return earlier_evaluations(items, current)


def earlier_evaluations(items: Sequence[Body], current: str) -> list[EarlierEvaluation]:
    """From TaskExecution objects: the finished ones other than `current` whose output holds
    an evaluation report, newest first, each marked `invalidated` when annotated so."""
    found: list[tuple[datetime, EarlierEvaluation]] = []
    for body in items:
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        name = meta.get("name", "")
        report = (status.get("output") or {}).get(OUTPUT_KEY)
        if name == current or status.get("phase") != "Finished" or not isinstance(report, dict):
            continue
        entry = {
            "id": name,
            "result": report.get("result"),
            "invalidated": is_invalidated(meta.get("annotations") or {}),
            "objectives": report.get("objectives") or [],
        }
        try:
            [earlier] = parse_history([entry])
        except InvalidInputError:
            log.info("TaskExecution %s: unreadable evaluation report; not compared with", name)
            continue
        found.append((_moment(status.get("finishedAt") or meta.get("creationTimestamp")), earlier))
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [earlier for _, earlier in found]


def is_invalidated(annotations: Mapping[str, str]) -> bool:
    """Whether the `slipway.dev/invalidated` annotation says `true` (in any case)."""
    return str(annotations.get(ANNOTATION_INVALIDATED, "")).strip().lower() == "true"


def _moment(raw: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- credentials
async def _headers(
    kube: Kube, namespace: str, evaluation: EvaluationProvider
) -> dict[str | None, Headers]:
    """Secret name -> the headers it holds, or the error reading it; None -> no headers."""
    sources = evaluation.sources
    refs = [sources.prometheus.headers_from] if sources.prometheus else []
    refs += [source.headers_from for source in sources.http]
    headers: dict[str | None, Headers] = {None: {}}
    for ref in refs:
        if ref is None or ref.secret_ref.name in headers:
            continue
        name = ref.secret_ref.name
        try:
            headers[name] = await kube.secret_headers(namespace, name)
        except KubeError as error:
            headers[name] = SLIError(f"cannot read Secret {name}: {error.status} {error.reason}")
    return headers


# --------------------------------------------------------------------------- the outcome
def verdict_line(report: Report) -> str:
    """The verdict in one line: `score 75 (warning): error_rate 0.7 pass (<=1), p95 700 fail
    (<600), exif no value fail`."""
    head = f"score {format_number(round(report.score, 2))} ({report.result})"
    if report.key_sli_failed:
        head += f", key SLI {', '.join(report.key_sli_failed)} failed"
    if not report.objectives:
        line = f"{head}: the SLO has no objectives"
    else:
        line = f"{head}: " + ", ".join(_objective_summary(o) for o in report.objectives)
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def _objective_summary(objective: ObjectiveReport) -> str:
    value = "no value" if objective.value is None else format_number(objective.value)
    targets = objective.targets
    sets = {
        "pass": targets.pass_,
        "warning": targets.warning,
        "fail": targets.pass_,
        "info": [],
    }[objective.status]
    if objective.status in ("pass", "warning"):
        chosen = next((s for s in sets if all(t.met for t in s)), [])
    else:
        chosen = sets[0] if sets and objective.value is not None else []
    criteria = " ".join(target.criteria for target in chosen)
    return f"{objective.sli} {value} {objective.status}" + (f" ({criteria})" if criteria else "")


def report_output(report: Report, window: Window | WindowError) -> dict[str, Any]:
    """The report as it goes into the output: camelCase JSON, plus the window."""
    output: dict[str, Any] = report.model_dump(mode="json", by_alias=True)
    if isinstance(window, Window):
        output["window"] = {
            "start": format_time(window.start),
            "end": format_time(window.end),
            "origin": window.origin,
        }
    else:
        output["window"] = {"error": str(window)}
    return output


async def _fail(kube: Kube, execution: ExecutionRef, order: Trigger, message: str) -> None:
    await record_failure(
        kube,
        execution.namespace,
        execution.name,
        provider=order.provider,
        triggered_id=order.triggered_id,
        reason=Reason.FAILED,
        message=message[:MAX_MESSAGE],
    )
