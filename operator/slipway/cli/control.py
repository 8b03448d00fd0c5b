"""Sequence control from a shell: decide approvals, suspend and resume runs.

`approve`/`reject` go through the event gateway (the gateway checks RBAC's `approve` verb, the
approvers and the four-eyes rule); `suspend`/`resume` patch the run's `spec.suspend`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from slipway.cli.common import (
    OK,
    Session,
    fail,
    namespace_option,
    output_option,
    run_async,
    with_session,
)
from slipway.cli.runs import _gateway, _ref, _say, complete_runs, read_run


def _decide(verb: str) -> Callable[..., Any]:
    @click.command(name=verb)
    @click.argument("taskexecution")
    @click.option("--comment", help="why (kept with the decision)")
    @click.option("--gateway", help="the gateway's URL (default: SLIPWAY_GATEWAY_URL)")
    @click.option("--token", help="a Kubernetes bearer token (default: the kubeconfig user's)")
    @namespace_option
    @output_option
    @click.pass_context
    def command(
        ctx: click.Context,
        taskexecution: str,
        comment: str | None,
        gateway: str | None,
        token: str | None,
        namespace: str | None,
        output: str,
    ) -> int:
        url = (gateway or ctx.obj.settings().gateway_url).rstrip("/")

        async def body(session: Session) -> int:
            import aiohttp

            bearer = token or session.token
            if not bearer:
                fail("the gateway needs a Kubernetes bearer token: pass --token")
            path = f"/v1/namespaces/{session.namespace}/taskexecutions/{taskexecution}/approval"
            payload = {"decision": verb, **({"comment": comment} if comment else {})}
            headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
            async with aiohttp.ClientSession() as http:
                answer = await _gateway(http, "POST", url + path, headers, json.dumps(payload))
            message = f"taskexecution {session.namespace}/{taskexecution}: {answer.get('summary')}"
            _say(output, message, answer)
            return OK

        return run_async(with_session(body)(namespace))

    command.__doc__ = (
        "Approve an approval task (through the gateway)."
        if verb == "approve"
        else "Reject an approval task: it fails, and the run stops."
    )
    return command


def _control(verb: str, suspend: bool) -> Callable[..., Any]:
    @click.command(name=verb)
    @click.argument("run", shell_complete=complete_runs)
    @namespace_option
    @output_option
    def command(run: str, namespace: str | None, output: str) -> int:
        async def body(session: Session) -> int:
            await read_run(session, run)
            await session.kube.patch(_ref(session.namespace, run), {"spec": {"suspend": suspend}})
            what = "suspended: it holds before its next task" if suspend else "resumed"
            _say(
                output,
                f"sequencerun {session.namespace}/{run} {what}",
                {"name": run, "namespace": session.namespace, "suspend": suspend},
            )
            return OK

        return run_async(with_session(body)(namespace))

    command.__doc__ = (
        "Hold a run before its next task (the running task finishes)."
        if suspend
        else "Let a suspended run go on."
    )
    return command


CONTROL_COMMANDS = [
    _decide("approve"),
    _decide("reject"),
    _control("suspend", True),
    _control("resume", False),
]
