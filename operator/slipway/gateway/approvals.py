"""People decide approval tasks:

    POST /v1/namespaces/{ns}/taskexecutions/{name}/approval   {"decision": "approve"|"reject",
                                                              "comment": "..."}

The caller sends `Authorization: Bearer <Kubernetes token>`. The API server says who they
are (TokenReview) and whether they may use the verb `approve` on that TaskExecution
(SubjectAccessReview); then the approval's own rules apply (`approvers`, the four-eyes rule;
`slipway.engine.approvals`). The decision is written into the execution's status (who, when,
what, the comment) and posted as an Event on it. Answers: 200 with where the approval
stands; 400 malformed; 401/403; 404 no such execution; 409 nothing waits, or already decided;
413 over a limit; 415 not JSON; 503 with Retry-After when the API server is slow or down. The
body is read as every gateway body is (`errors.read_json`: size, time and JSON limits) and each
Kubernetes call is bounded in time (`limits.api_call`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slipway.api.taskexecution import ApprovalDecisionKind, TaskExecutionStatus
from slipway.api.taskprovider import ApprovalProvider, TaskProviderSpec
from slipway.constants import (
    ANNOTATION_TRIGGERED_BY,
    SEQUENCERUN_PLURAL,
    TASKEXECUTION_PLURAL,
    TASKPROVIDER_PLURAL,
)
from slipway.engine.approvals import ApprovalRefusedError, Decided, decide
from slipway.engine.decisions import KubeEvent
from slipway.engine.objects import build_event, involved
from slipway.gateway.auth import AuthError, KubernetesAuthorizer, bearer_token
from slipway.gateway.errors import check_names, problem, read_json
from slipway.gateway.limits import GatewayLimits, UnavailableError, api_call
from slipway.kube.client import Kube, Ref
from slipway.kube.errors import KubeError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The custom RBAC verb a person needs on `taskexecutions` to decide an approval.
VERB = "approve"
EVENT_REASON = "ApprovalDecision"
MAX_BODY = 16 * 1024


class DecisionRequest(BaseModel):
    """The body of a decision."""

    model_config = ConfigDict(extra="forbid")

    decision: ApprovalDecisionKind
    comment: str | None = Field(default=None, max_length=1024)


def add_routes(
    app: web.Application,
    kube: Kube,
    authorizer: KubernetesAuthorizer,
    wake: Callable[[tuple[str, str, str]], None],
    limits: GatewayLimits,
) -> None:
    """Register the approval route on the gateway's application."""
    route = ApprovalRoute(kube, authorizer, wake, limits)
    app.router.add_post(
        "/v1/namespaces/{namespace}/taskexecutions/{name}/approval", route.post_decision
    )


class ApprovalRoute:
    def __init__(
        self,
        kube: Kube,
        authorizer: KubernetesAuthorizer,
        wake: Callable[[tuple[str, str, str]], None],
        limits: GatewayLimits,
    ) -> None:
        self.kube = kube
        self.authorizer = authorizer
        self.wake = wake
        self.limits = limits

    async def _api(self, call: Awaitable[T]) -> T:
        """One Kubernetes API call, bounded in time (503 when the API server is slow or
        down)."""
        return await api_call(call, self.limits.api_timeout)

    async def post_decision(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        name = request.match_info["name"]
        check_names(namespace, name, "execution name")
        # the body first, as on the event route: a malformed one costs no review
        document = await read_json(request, self.limits, MAX_BODY)
        try:
            body = DecisionRequest.model_validate(document)
        except ValidationError as error:
            return problem(
                400,
                "bad_request",
                'send JSON {"decision": "approve" or "reject", "comment": "..."}: '
                + str(error).splitlines()[0],
            )
        try:
            token = bearer_token(request.headers.get("Authorization"))
            caller = await self.authorizer.caller(
                token, VERB, namespace, resource=TASKEXECUTION_PLURAL, name=name
            )
        except AuthError as error:
            kind = "unauthorized" if error.status == 401 else "forbidden"
            return problem(error.status, kind, error.message)
        ref = Ref(TASKEXECUTION_PLURAL, namespace, name)
        execution = await self._api(self.kube.get(ref))
        if execution is None:
            return problem(404, "not_found", f"TaskExecution {namespace}/{name} does not exist")
        approvals = await self._approvals(namespace)
        run_name = execution.get("spec", {}).get("run", "")
        run = None
        if run_name:
            run = await self._api(self.kube.get(Ref(SEQUENCERUN_PLURAL, namespace, run_name)))
        triggered_by = ((run or {}).get("metadata", {}).get("annotations") or {}).get(
            ANNOTATION_TRIGGERED_BY
        )
        now = datetime.now(UTC)
        outcome: dict[str, Decided] = {}

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            decided = decide(
                TaskExecutionStatus.model_validate(current.get("status") or {}),
                approvals,
                user=caller.username,
                groups=caller.groups,
                decision=body.decision,
                comment=body.comment,
                triggered_by=triggered_by,
                at=now,
            )
            outcome["decided"] = decided
            return decided.patch or None

        try:
            updated = await self._api(self.kube.update_status(ref, change, known=execution))
        except ApprovalRefusedError as error:
            kind = {403: "forbidden", 404: "not_found"}.get(error.status, "conflict")
            return problem(error.status, kind, error.message)
        if updated is None or "decided" not in outcome:
            return problem(404, "not_found", f"TaskExecution {namespace}/{name} does not exist")
        decided = outcome["decided"]
        self.wake((TASKEXECUTION_PLURAL, namespace, name))
        event = KubeEvent(
            "Normal" if body.decision == ApprovalDecisionKind.APPROVE else "Warning",
            EVENT_REASON,
            f"{caller.username} decided {body.decision.value}: {decided.summary}",
        )
        meta = updated["metadata"]
        about = involved("TaskExecution", namespace, name, meta.get("uid", ""))
        try:  # the decision is recorded: an Event that cannot be posted does not undo it
            await self._api(self.kube.post_event(build_event(about, event, now)))
        except (UnavailableError, KubeError) as error:
            log.warning("no Event for the decision on %s/%s: %s", namespace, name, error)
        return web.json_response(
            {
                "namespace": namespace,
                "execution": name,
                "user": caller.username,
                "decision": body.decision.value,
                "summary": decided.summary,
                "finished": decided.finished,
            }
        )

    async def _approvals(self, namespace: str) -> dict[str, ApprovalProvider]:
        """The approval TaskProviders of the namespace, by name (as they are now: a change
        of `approvers` applies to approvals already waiting)."""
        found: dict[str, ApprovalProvider] = {}
        for item in await self._api(self.kube.list(TASKPROVIDER_PLURAL, namespace)):
            try:
                spec = TaskProviderSpec.model_validate(item.get("spec") or {})
            except ValidationError:
                continue
            if spec.approval is not None:
                found[item["metadata"]["name"]] = spec.approval
        return found
