"""The one retry policy of outbound calls: bounded attempts, bounded total time, full-jitter
exponential backoff. A tool's delivery (`providers/cloudevent.py`) and an SLI fetch
(`providers/sli/fetch.py`) both use it; each caller owns its loop and its notion of what is
retryable, the waits come from here."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of one outbound call and its retries."""

    attempts: int = 5
    """Requests at most (1 + retries)."""
    total: float = 60.0
    """Seconds all attempts and the waits between them may take together."""
    base_delay: float = 0.5
    """The first retry waits up to this long; each further one up to twice as long."""
    max_delay: float = 10.0
    """No wait is longer (nor is an honoured `Retry-After`)."""

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """How long to wait before retry number `retry` (0 for the first): full jitter, or
        the server's `Retry-After` (capped) when it sent one."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))  # jitter
