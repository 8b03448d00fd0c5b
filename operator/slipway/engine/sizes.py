"""How big data is, as the API server will store it, and the bounds on a run's data.

The API server stores an object of at most about 1.5 MiB, and a run's data is stored more
than once: a SequenceRun holds its trigger's data (`spec.data`), the merged data
(`status.data`) and a copy of each task's output (`status.tasks[].output`); a TaskExecution
its input and its providers' outputs. `DataLimits` keeps every copy well below the object
limit: with the defaults a run is at most 3 x 512 KiB of data, an execution 512 KiB + 2 x
256 KiB. What is over a limit fails the task or run with reason `DataTooLarge`, never a
write the API server refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataLimits:
    """`max_run_data`: bytes of a run's data (JSON), at its trigger and after each merge;
    also the bound of all task output copies a run keeps. `max_task_output`: bytes of one
    task's output, all its providers together. The defaults are the settings' defaults."""

    max_run_data: int = 512 * 1024
    max_task_output: int = 256 * 1024


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON (what a status field costs in its object)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
