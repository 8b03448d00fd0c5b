"""Names on the wire: extension attributes, content types, reserved data keys, limits."""

from __future__ import annotations

from typing import Final, Literal, get_args

from slipway.api.common import ResultName

#: Run context id; every event of a run (and of the runs it links to) carries it.
SLIPWAYCONTEXT: Final = "slipwaycontext"
#: On a response: the `id` of the `.triggered` event it answers.
TRIGGEREDID: Final = "triggeredid"
#: On a task's `.triggered`: the URL to POST `.started`/`.status.changed`/`.finished` to.
SLIPWAYCALLBACK: Final = "slipwaycallback"
#: On a task's `.triggered`: the bearer token to send with responses (`Authorization: Bearer`).
SLIPWAYTOKEN: Final = "slipwaytoken"

SPECVERSION: Final = "1.0"
#: Content type of a structured-mode body.
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
#: `datacontenttype` of every event Slipway sends; the only kind of data it reads.
JSON_CONTENT_TYPE: Final = "application/json"

#: `source` of the events the operator sends (a URI reference, as CloudEvents requires).
SOURCE: Final = "slipway.dev/operator"

#: Default largest accepted body, in bytes (1 MiB).
MAX_EVENT_SIZE: Final = 1 << 20

#: How an event travels over HTTP (a TaskProvider's `cloudEvent.mode`).
Mode = Literal["structured", "binary"]

#: The verdict of a task or a sequence; anything else a tool reports counts as `fail`.
Result = ResultName
RESULTS: Final[tuple[Result, ...]] = get_args(Result)
#: Optional `status` of a tool's `.finished`; `errored` makes the result `fail`.
Status = Literal["succeeded", "errored"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

#: Top-level data keys Slipway owns. `.triggered` data carries `shipyard`, `stage`,
#: `sequence`, `task` and `run` (Slipway's values win over same-named run data); a tool's
#: `.finished` carries `result`, `status` and `message`. None of them is part of a task's
#: output, so a tool echoing its input back does not copy them into the run's data. The key
#: `<task>` (the task's properties on the way in) is deliberately not reserved: tools may put
#: their output under their own task name, and later tasks read it from there.
RESERVED_DATA_KEYS: Final = frozenset(
    {"result", "status", "message", "shipyard", "stage", "sequence", "task", "run"}
)
