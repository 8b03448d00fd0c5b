"""The operator's log output: readable lines, or one JSON object per line.

With `SLIPWAY_LOG_FORMAT=json` every record becomes one object with `time`, `level`,
`logger` and `message`; a record about an object (kopf's per-object logger, which the
handlers use) also carries its `kind`, `namespace` and `name`, and, for a SequenceRun or a
TaskExecution, the run's `context` (its correlation id), looked up from what the process
knows of the object (`context_from`). An exception adds `error` with its traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: (kind, namespace, name) -> the context of that object, or None when unknown.
ContextSource = Callable[[str, str, str], str | None]
_context_source: ContextSource | None = None


def context_from(source: ContextSource | None) -> None:
    """Where JSON records find a run's context (the supervisor's last view of objects)."""
    global _context_source
    _context_source = source


_events = logging.getLogger("slipway.events")


def event(kind: str, namespace: str, name: str, reason: str, message: str) -> None:
    """Log a Kubernetes Event the operator posts about an object (a run's start and end,
    what went wrong), so the log tells a run's story too: JSON lines carry the object and
    its run's context."""
    _events.info(
        "%s: %s",
        reason,
        message,
        extra={"k8s_ref": {"kind": kind, "namespace": namespace, "name": name}},
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            kind, namespace, name = ref.get("kind"), ref.get("namespace"), ref.get("name")
            entry.update({"kind": kind, "namespace": namespace, "name": name})
            source = _context_source
            if source is not None and kind and namespace and name:
                try:
                    context = source(str(kind), str(namespace), str(name))
                except Exception:  # a log line must never fail for its decoration
                    context = None
                if context:
                    entry["context"] = context
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_format: str, verbose: bool) -> None:
    """Set up the root logger once, in `log_format` (`text` or `json`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if not verbose:
        # kopf logs every handler call ("Handler 'x' succeeded") at INFO: on every watch
        # event of every run that is most of the log. Keep its warnings, and the messages
        # Slipway's own code writes through kopf's per-object logger.
        logging.getLogger("kopf.objects").addFilter(_quiet_kopf)


#: kopf's own informational lines about objects (kopf/_core/actions/execution.py,
#: kopf/_core/reactor/processing.py): "Handler 'x' succeeded.", "Creation is processed: …",
#: "… is superseded by …". Slipway's lines go through the same per-object logger, so they
#: are told apart by their text.
_KOPF_CHATTER = (" succeeded.", " is processed: ", " is superseded by ")


def _quiet_kopf(record: logging.LogRecord) -> bool:
    """Drop kopf's informational chatter about objects; keep warnings and errors, and what
    Slipway's code writes through kopf's per-object logger."""
    if record.levelno >= logging.WARNING:
        return True
    message = str(record.msg)
    return not (message.endswith(_KOPF_CHATTER[0]) or any(p in message for p in _KOPF_CHATTER[1:]))
