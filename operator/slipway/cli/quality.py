"""`evaluate` (score SLI values against a Keptn v1 SLO, offline) and `invalidate` (leave a
finished evaluation out of later comparisons)."""

from __future__ import annotations

import json

import click

from slipway.cli import render
from slipway.cli.common import (
    FAILED,
    OK,
    USAGE,
    Session,
    namespace_option,
    run_async,
    with_session,
)
from slipway.constants import (
    ANNOTATION_INVALIDATED,
    LABEL_SEQUENCE,
    LABEL_SHIPYARD,
    LABEL_STAGE,
    LABEL_TASK,
    TASKEXECUTION_PLURAL,
)


@click.command()
@click.option("--slo", "slo_path", required=True, help="the SLO document (a Keptn v1 slo.yaml)")
@click.option(
    "--sli", "sli_path", required=True, help='JSON object: SLI name -> number, null or {"error"}'
)
@click.option(
    "--history",
    "history_path",
    help="JSON list of earlier evaluations, newest first: "
    '{"result": ..., "values": {...}, "invalidated": false} or earlier --output json reports',
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "yaml"]),
    default="table",
    show_default=True,
)
def evaluate(slo_path: str, sli_path: str, history_path: str | None, output: str) -> int:
    """Score SLI values against a Keptn v1 SLO document, offline. Exit 0 pass or warning,
    1 fail, 2 an invalid document or input."""
    import yaml

    from slipway.api.slo import parse_slo
    from slipway.engine.report import render_json, render_table
    from slipway.engine.scoring import evaluate as score
    from slipway.engine.scoring import parse_history, parse_values

    path = slo_path
    try:
        with open(slo_path, encoding="utf-8") as file:
            slo = parse_slo(yaml.safe_load(file))
        path = sli_path
        with open(sli_path, encoding="utf-8") as file:
            values = parse_values(json.load(file))
        history = []
        if history_path is not None:
            path = history_path
            with open(history_path, encoding="utf-8") as file:
                history = parse_history(json.load(file))
    except (OSError, ValueError, yaml.YAMLError) as error:  # JSON errors are ValueErrors
        click.echo(f"slipway evaluate: {path}: {error}", err=True)
        return USAGE
    report = score(slo, values, history)
    if output == "json":
        click.echo(render_json(report))
    elif output == "yaml":
        click.echo(render.dump(json.loads(render_json(report)), "yaml"))
    else:
        click.echo(render_table(report))
    return FAILED if report.result == "fail" else OK


@click.command()
@click.argument("taskexecution")
@click.option("--undo", is_flag=True, help="remove the mark: compare with it again")
@namespace_option
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "yaml"]),
    default="table",
    show_default=True,
)
def invalidate(taskexecution: str, undo: bool, namespace: str | None, output: str) -> int:
    """Mark a finished evaluation (its TaskExecution) invalidated: later evaluations of the
    same shipyard/stage/sequence/task never compare with it. Exit 0 done, 1 not found or
    refused."""
    from slipway.kube.client import Ref
    from slipway.kube.errors import KubeError
    from slipway.providers.evaluation import OUTPUT_KEY

    async def body(session: Session) -> int:
        ns = session.namespace
        patch = {"metadata": {"annotations": {ANNOTATION_INVALIDATED: None if undo else "true"}}}
        try:
            found = await session.kube.patch(Ref(TASKEXECUTION_PLURAL, ns, taskexecution), patch)
        except KubeError as error:
            what = "not found" if error.not_found else f"{error.status} {error.reason}"
            click.echo(f"slipway invalidate: taskexecution {ns}/{taskexecution}: {what}", err=True)
            return FAILED
        labels = found.get("metadata", {}).get("labels") or {}
        scope = "/".join(
            labels.get(key, "?")
            for key in (LABEL_SHIPYARD, LABEL_STAGE, LABEL_SEQUENCE, LABEL_TASK)
        )
        has_report = OUTPUT_KEY in ((found.get("status") or {}).get("output") or {})
        if output != "table":
            document = {"namespace": ns, "name": taskexecution, "invalidated": not undo}
            click.echo(render.dump(document, output))
        elif undo:
            click.echo(f"taskexecution {ns}/{taskexecution}: no longer invalidated")
        else:
            click.echo(
                f"taskexecution {ns}/{taskexecution} invalidated: later evaluations of {scope} "
                "will not compare with it"
                + ("" if has_report else " (it has no evaluation report yet)")
            )
        return OK

    return run_async(with_session(body)(namespace))
