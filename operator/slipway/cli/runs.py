"""Subcommands about runs: capabilities, trigger, get, watch, list, abort, rerun.

`trigger` goes through the event gateway (as any client would: a CloudEvent and a Kubernetes
bearer token); the others read and write SequenceRuns with the operator's own async client.
`capabilities` asks the gateway when its URL is known, else reads the Shipyards; either way a
capability is what `slipway.gateway.views.capabilities` makes of a Shipyard. `watch` (and
`--wait`) follow a run with a Kubernetes watch from the resourceVersion last seen.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

from slipway.cli import render
from slipway.cli.common import (
    DENIED,
    FAILED,
    NOT_FOUND,
    OK,
    TIMEOUT,
    UNREACHABLE,
    USAGE,
    CliError,
    Session,
    fail,
    namespace_option,
    output_option,
    run_async,
    with_session,
)
from slipway.constants import (
    LABEL_SEQUENCE,
    LABEL_SHIPYARD,
    LABEL_STAGE,
    SEQUENCERUN_PLURAL,
    SHIPYARD_PLURAL,
)

if TYPE_CHECKING:
    import aiohttp

Body = dict[str, Any]


def _ref(namespace: str, name: str) -> Any:
    """A SequenceRun's reference (the client is imported only when a command needs it)."""
    from slipway.kube.client import Ref

    return Ref(SEQUENCERUN_PLURAL, namespace, name)


#: On a run started by `slipway rerun`: the run it repeats.
ANNOTATION_RERUN_OF = "slipway.dev/rerun-of"
#: The longest one watch request lasts; then the run is read afresh and watched again.
WATCH_SECONDS = 60
#: The fewest seconds between two watch requests (a watch the API server refuses at once,
#: e.g. RBAC without `watch`, then makes the command read the run once a second instead).
REWATCH_SECONDS = 1.0
#: On a terminal the tree is redrawn this often, so a running task's duration counts up.
REDRAW_SECONDS = 1.0


def exit_code_of(run: Body) -> int:
    """0 for a run that finished pass or warning, 1 for fail."""
    return FAILED if (run.get("status") or {}).get("result") == "fail" else OK


async def read_run(session: Session, name: str) -> Body:
    run = await session.kube.get(_ref(session.namespace, name))
    if run is None:
        fail(
            f"SequenceRun {session.namespace}/{name} not found (`slipway list` shows the runs)",
            NOT_FOUND,
        )
    return run


def complete_runs(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a RUN argument: the names of the namespace's runs."""

    async def names(session: Session) -> list[str]:
        found = await session.kube.list(SEQUENCERUN_PLURAL, session.namespace)
        return [item["metadata"]["name"] for item in found]

    try:
        candidates = asyncio.run(with_session(names)(ctx.params.get("namespace")))
    except Exception:  # completion must never print an error into the shell
        return []
    return [CompletionItem(name) for name in candidates if name.startswith(incomplete)]


def _finished(run: Body) -> bool:
    return bool((run.get("status") or {}).get("phase") == "Finished")


# ------------------------------------------------------------------ capabilities
@click.command()
@click.option(
    "--gateway",
    help="ask this gateway's /v1/capabilities (default: SLIPWAY_GATEWAY_URL if set, else read "
    "the Shipyards with the kubeconfig)",
)
@click.option("--token", help="a Kubernetes bearer token (default: the kubeconfig user's)")
@namespace_option
@output_option
@click.pass_context
def capabilities(
    ctx: click.Context, gateway: str | None, token: str | None, namespace: str | None, output: str
) -> int:
    """What people can start: each sequence with a title, as the web page lists them."""
    settings = ctx.obj.settings()
    if gateway is None and "gateway_url" in settings.model_fields_set:
        gateway = settings.gateway_url
    url = gateway.rstrip("/") if gateway else None
    rows = run_async(with_session(_capabilities)(namespace, url, token, settings.event_type_prefix))
    if output != "table":
        click.echo(render.dump(rows, output))
    elif not rows:
        click.echo(
            "no capabilities in this namespace: no Shipyard has a sequence with a title",
            err=True,
        )
    else:
        click.echo(
            render.table(
                ["SHIPYARD", "STAGE.SEQUENCE", "TASKS", "INPUTS", "TITLE"],
                [
                    [
                        r["shipyard"],
                        f"{r['stage']}.{r['sequence']}",
                        ", ".join(r["tasks"]),
                        ", ".join(r["order"]) or "-",
                        r["title"],
                    ]
                    for r in rows
                ],
            )
        )
    return OK


async def _capabilities(
    session: Session, url: str | None, token: str | None, prefix: str
) -> list[Body]:
    """The namespace's capabilities: the gateway's `/v1/capabilities` items of this namespace
    when `url` is given, else the same items made here from the Shipyards."""
    if url is None:
        from slipway.gateway.views import capabilities as of_shipyard

        shipyards = await session.kube.list(SHIPYARD_PLURAL, session.namespace)
        shipyards.sort(key=lambda s: str(s["metadata"]["name"]))
        return [item for s in shipyards for item in of_shipyard(session.namespace, s, prefix)]
    import aiohttp

    headers = {"Authorization": f"Bearer {_bearer(session, token)}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        answer = await _gateway(http, "GET", f"{url}/v1/capabilities", headers, None)
    items = answer.get("items") or []
    return [item for item in items if item.get("namespace") == session.namespace]


def _bearer(session: Session, token: str | None) -> str:
    """The token to show the gateway: --token, else the kubeconfig user's."""
    found = token or session.token
    if not found:
        fail(
            "the gateway needs a Kubernetes bearer token and the kubeconfig user has none "
            "(client certificates?): pass --token, e.g. --token $(kubectl create token NAME)",
            DENIED,
        )
    return found


# ------------------------------------------------------------------ trigger
def parse_target(target: str) -> tuple[str, str]:
    """`STAGE.SEQUENCE` → (stage, sequence)."""
    stage, dot, sequence = target.partition(".")
    if not dot or not stage or not sequence or "." in sequence:
        fail(f"{target!r}: say which sequence as STAGE.SEQUENCE, e.g. dev.phone")
    return stage, sequence


def parse_data(pairs: tuple[str, ...], data_file: str | None) -> dict[str, Any]:
    """The run's input: the JSON object of `data_file`, then each `key=value` (a string)."""
    from slipway.events.attributes import RESERVED_DATA_KEYS

    data: dict[str, Any] = {}
    if data_file is not None:
        try:
            loaded = json.loads(Path(data_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            fail(f"--data-file {data_file}: {error}")
        if not isinstance(loaded, dict):
            fail(f"--data-file {data_file}: must hold a JSON object, not {type(loaded).__name__}")
        data.update(loaded)
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            fail(f"--data {pair!r}: write KEY=VALUE, e.g. --data number='+1 555 0100'")
        data[key.strip()] = value
    reserved = sorted(RESERVED_DATA_KEYS & data.keys())
    if reserved:
        fail(
            f"input keys {', '.join(reserved)} are Slipway's own; rename them"
            + (" (use --shipyard to choose the Shipyard)" if "shipyard" in reserved else "")
        )
    return data


@click.command()
@click.argument("target", metavar="STAGE.SEQUENCE")
@click.option("--shipyard", help="the Shipyard (needed when the namespace has several)")
@click.option("-d", "--data", "pairs", multiple=True, metavar="KEY=VALUE", help="an input")
@click.option(
    "--data-file",
    type=click.Path(dir_okay=False),
    help="a JSON object of inputs (--data values are added on top)",
)
@click.option("--wait", is_flag=True, help="follow the run until it finishes; exit 1 on fail")
@click.option("--timeout", default=600.0, show_default=True, help="seconds --wait waits")
@click.option("--gateway", help="the gateway's URL (default: SLIPWAY_GATEWAY_URL)")
@click.option("--token", help="a Kubernetes bearer token (default: the kubeconfig user's)")
@namespace_option
@output_option
@click.pass_context
def trigger(
    ctx: click.Context,
    target: str,
    shipyard: str | None,
    pairs: tuple[str, ...],
    data_file: str | None,
    wait: bool,
    timeout: float,
    gateway: str | None,
    token: str | None,
    namespace: str | None,
    output: str,
) -> int:
    """Start a run of STAGE.SEQUENCE through the event gateway, with inputs."""
    stage, sequence = parse_target(target)
    data = parse_data(pairs, data_file)
    if shipyard:
        data["shipyard"] = shipyard
    url = (gateway or ctx.obj.settings().gateway_url).rstrip("/")
    prefix = ctx.obj.settings().event_type_prefix
    return run_async(
        with_session(_trigger)(
            namespace, url, token, prefix, stage, sequence, data, wait, timeout, output
        )
    )


async def _trigger(
    session: Session,
    url: str,
    token: str | None,
    prefix: str,
    stage: str,
    sequence: str,
    data: dict[str, Any],
    wait: bool,
    limit: float,
    output: str,
) -> int:
    token = _bearer(session, token)
    from slipway.events.names import normalize_prefix

    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "slipway-cli",
        "type": f"{normalize_prefix(prefix)}{stage}.{sequence}.triggered",
        "datacontenttype": "application/json",
        "data": data,
    }
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/cloudevents+json",
    }
    events = f"{url}/v1/namespaces/{session.namespace}/events"
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        answer = await _gateway(http, "POST", events, headers, json.dumps(event))
        name = answer["run"]
        if not wait:
            if output == "table":
                click.echo(f"triggered {stage}.{sequence}: run {session.namespace}/{name}")
                click.echo(f"follow it with: kubectl slipway watch {name} -n {session.namespace}")
            else:
                click.echo(render.dump(answer, output))
            return OK
        if output == "table":
            click.echo(f"triggered {stage}.{sequence}: run {session.namespace}/{name}")
    return await follow(session, name, output, limit)


async def follow(session: Session, name: str, output: str, limit: float) -> int:
    """Show run `name` as it changes until it finishes: 0 pass or warning, 1 fail, 6 when
    `limit` seconds pass first. Changes come from a watch; on a terminal the tree is also
    redrawn every REDRAW_SECONDS, so the running task's duration counts up."""
    display = Display(output)
    deadline = time.monotonic() + limit
    run = await read_run(session, name)
    states: asyncio.Queue[Body | BaseException] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for state in run_states(session, name, run, deadline):
                states.put_nowait(state)
        except Exception as error:  # raised where the states are read
            states.put_nowait(error)

    pumping = asyncio.create_task(pump(), name=f"watch {name}")
    try:
        while True:
            display.update(run)
            if _finished(run):
                return exit_code_of(run)
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"run {name} did not finish within {limit:g} s", TIMEOUT)
            ticking = display.tty and output == "table"
            try:
                state = await asyncio.wait_for(
                    states.get(), min(left, REDRAW_SECONDS) if ticking else left
                )
            except TimeoutError:
                continue  # redraw (a terminal) or give up (the deadline)
            if isinstance(state, BaseException):
                raise state
            run = state
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)


async def run_states(
    session: Session, name: str, seen: Body, deadline: float
) -> AsyncIterator[Body]:
    """Each new state of run `name` after `seen`, until the monotonic `deadline`: a watch
    from the last resourceVersion seen, WATCH_SECONDS at most; when it ends (its time is up,
    the version is too old: 410 Gone, the connection broke) the run is read afresh and
    watched again. A deleted run raises NOT_FOUND."""
    import aiohttp

    while (left := deadline - time.monotonic()) > 0:
        began = time.monotonic()
        version = str((seen.get("metadata") or {}).get("resourceVersion") or "")
        changes = session.kube.watch_changes(
            SEQUENCERUN_PLURAL,
            session.namespace,
            version,
            int(min(left, WATCH_SECONDS)),
            field_selector=f"metadata.name={name}",
        )
        try:
            async for kind, body in changes:
                if kind == "DELETED":
                    fail(f"SequenceRun {session.namespace}/{name} was deleted", NOT_FOUND)
                seen = body
                yield body
        except (TimeoutError, OSError, aiohttp.ClientError):
            pass  # the connection broke: read afresh (which says so if it stays broken)
        await asyncio.sleep(max(0.0, began + REWATCH_SECONDS - time.monotonic()))
        seen = await read_run(session, name)
        yield seen


async def _gateway(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: str | None
) -> dict[str, Any]:
    """One request to the gateway; its JSON answer, or a one-line error naming the cause."""
    import aiohttp

    try:
        async with http.request(method, url, headers=headers, data=body) as response:
            text = await response.text()
            status = response.status
    except aiohttp.ClientError as error:
        raise CliError(
            f"cannot reach the gateway at {url.split('/v1/')[0]} ({error}); pass --gateway "
            "or set SLIPWAY_GATEWAY_URL",
            UNREACHABLE,
        ) from None
    try:
        answer: dict[str, Any] = json.loads(text)
    except ValueError:
        answer = {"message": text.strip()[:200]}
    if status >= 400:
        message = answer.get("message") or answer.get("error") or f"HTTP {status}"
        code = {401: DENIED, 403: DENIED, 404: NOT_FOUND, 422: NOT_FOUND}.get(status, USAGE)
        if status >= 500:
            code = FAILED
        raise CliError(f"the gateway refused ({status}): {message}", code)
    return answer


# ------------------------------------------------------------------ get and watch
class Display:
    """Shows a run as it changes: on a terminal the tree is redrawn in place; piped, each
    new state of a task (and the verdict) is one plain line."""

    def __init__(self, output: str, tty: bool | None = None) -> None:
        self.output = output
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.drawn = 0
        self.printed: set[str] = set()

    def update(self, run: Body) -> None:
        if self.output != "table":  # one document per change, for scripts
            text = render.dump(render.summary(run), self.output)
            if text not in self.printed:
                self.printed.add(text)
                if self.output == "json":
                    click.echo(json.dumps(render.summary(run), default=str))
                else:
                    click.echo("---\n" + text)
            return
        lines = render.tree(run)
        if self.tty:
            if self.drawn:
                # Back to the first line drawn, and clear below (color=True: click keeps the
                # escape sequence even when it cannot tell that stdout is a terminal).
                click.echo(f"\x1b[{self.drawn}F\x1b[J", nl=False, color=True)
            click.echo("\n".join(lines))
            self.drawn = len(lines)
            return
        for line in lines[1:]:  # piped: a line when a task's state or the verdict is new
            key = _state_key(line)
            if key not in self.printed:
                self.printed.add(key)
                click.echo(line.lstrip("├└─ "))


def _state_key(line: str) -> str:
    """A tree line without its duration (which changes every second while running)."""
    words = line.split()
    return " ".join(w for w in words if not _is_duration(w))


def _is_duration(word: str) -> bool:
    return word[:1].isdigit() and word.rstrip("0123456789.").endswith(("s", "m"))


@click.command()
@click.argument("run", shell_complete=complete_runs)
@namespace_option
@output_option
def get(run: str, namespace: str | None, output: str) -> int:
    """A run's tasks as a tree, with durations, messages and the verdict."""

    async def body(session: Session) -> int:
        found = await read_run(session, run)
        if output == "table":
            click.echo("\n".join(render.tree(found)))
        else:
            click.echo(render.dump(found, output))
        return OK

    return run_async(with_session(body)(namespace))


@click.command()
@click.argument("run", shell_complete=complete_runs)
@click.option("--timeout", default=3600.0, show_default=True, help="seconds to watch at most")
@namespace_option
@output_option
def watch(run: str, timeout: float, namespace: str | None, output: str) -> int:
    """Follow a run live until it finishes; exit 0 on pass or warning, 1 on fail."""

    async def body(session: Session) -> int:
        return await follow(session, run, output, timeout)

    return run_async(with_session(body)(namespace))


# ------------------------------------------------------------------ list
@click.command(name="list")
@click.option("--shipyard", help="only runs of this Shipyard")
@click.option("--stage", help="only runs in this stage")
@click.option("--sequence", help="only runs of this sequence")
@click.option(
    "--phase",
    type=click.Choice(["running", "pending", "finished"]),
    help="only runs in this state",
)
@click.option("--result", type=click.Choice(["pass", "warning", "fail"]), help="only this verdict")
@click.option("--limit", type=int, default=0, help="the newest N only (0: all)")
@namespace_option
@output_option
def list_runs(
    shipyard: str | None,
    stage: str | None,
    sequence: str | None,
    phase: str | None,
    result: str | None,
    limit: int,
    namespace: str | None,
    output: str,
) -> int:
    """The runs of the namespace, newest first, with filters."""
    selector = ",".join(
        f"{label}={value}"
        for label, value in (
            (LABEL_SHIPYARD, shipyard),
            (LABEL_STAGE, stage),
            (LABEL_SEQUENCE, sequence),
        )
        if value
    )
    wanted_phase = {"running": "Started", "pending": None, "finished": "Finished"}

    def keep(run: Body) -> bool:
        status = run.get("status") or {}
        if phase is not None:
            current = status.get("phase")
            if phase == "pending" and current in ("Started", "Finished"):
                return False
            if phase != "pending" and current != wanted_phase[phase]:
                return False
        return result is None or status.get("result") == result

    async def body(session: Session) -> list[Body]:
        return await session.kube.list(SEQUENCERUN_PLURAL, session.namespace, selector)

    runs = [r for r in run_async(with_session(body)(namespace)) if keep(r)]
    runs.sort(key=lambda r: r["metadata"].get("creationTimestamp", ""), reverse=True)
    if limit > 0:
        runs = runs[:limit]
    if output != "table":
        click.echo(render.dump([render.summary(r) for r in runs], output))
    elif not runs:
        click.echo("no runs match", err=True)
    else:
        header = ["NAME", "STAGE.SEQUENCE", "SHIPYARD", "STATE", "TASK", "DURATION", "AGE"]
        click.echo(render.table(header, [render.run_row(r) for r in runs]))
    return OK


# ------------------------------------------------------------------ abort and rerun
@click.command()
@click.argument("run", shell_complete=complete_runs)
@namespace_option
@output_option
def abort(run: str, namespace: str | None, output: str) -> int:
    """Stop a run: its running task ends `fail` (Aborted), nothing further starts."""

    async def body(session: Session) -> int:
        found = await read_run(session, run)
        if _finished(found):
            message = f"run {run} already finished ({found['status'].get('result')}): unchanged"
        else:
            found = await session.kube.patch(
                _ref(session.namespace, run), {"spec": {"abort": True}}
            )
            message = f"run {session.namespace}/{run} aborting (spec.abort set)"
        _say(output, message, {"name": run, "namespace": session.namespace, "abort": True})
        return OK

    return run_async(with_session(body)(namespace))


@click.command()
@click.argument("run", shell_complete=complete_runs)
@click.option("--wait", is_flag=True, help="follow the new run until it finishes")
@namespace_option
@output_option
def rerun(run: str, wait: bool, namespace: str | None, output: str) -> int:
    """Start a new run of the same sequence with the same inputs as RUN."""

    async def body(session: Session) -> int:
        found = await read_run(session, run)
        spec = found.get("spec") or {}
        labels = (found.get("metadata") or {}).get("labels") or {}
        new = await session.kube.ensure_created(
            SEQUENCERUN_PLURAL,
            session.namespace,
            {
                "apiVersion": found["apiVersion"],
                "kind": "SequenceRun",
                "metadata": {
                    "generateName": f"{run[:50]}-r-",
                    "labels": {
                        k: v
                        for k, v in labels.items()
                        if k in (LABEL_SHIPYARD, LABEL_STAGE, LABEL_SEQUENCE)
                    },
                    "annotations": {ANNOTATION_RERUN_OF: run},
                },
                "spec": {
                    k: spec[k] for k in ("shipyard", "stage", "sequence", "data") if k in spec
                },
            },
        )
        if new is None:  # generateName never collides; the API server says so otherwise
            fail(f"rerun of {run}: the new run's name was taken; try again", FAILED)
        name = new["metadata"]["name"]
        if wait and output != "table":  # scripts get the new run's states, one per line
            return await follow(session, name, output, 3600.0)
        _say(
            output,
            f"run {session.namespace}/{name} started: {spec.get('stage')}.{spec.get('sequence')} "
            f"again with the inputs of {run}",
            {"name": name, "namespace": session.namespace, "rerunOf": run},
        )
        return await follow(session, name, output, 3600.0) if wait else OK

    return run_async(with_session(body)(namespace))


def _say(output: str, message: str, document: dict[str, Any]) -> None:
    click.echo(message if output == "table" else render.dump(document, output))


COMMANDS: list[Callable[..., Any]] = [capabilities, trigger, get, watch, list_runs, abort, rerun]
