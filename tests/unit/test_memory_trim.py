"""The operator hands freed memory back to the system (app.release_freed_memory)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from slipway.app import _malloc_trim, release_freed_memory


def test_zero_seconds_means_never() -> None:
    """SLIPWAY_MEMORY_TRIM_SECONDS=0 ends the task at once: nothing is trimmed."""
    asyncio.run(asyncio.wait_for(release_freed_memory(0), 5))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_trim_is_found_and_answers() -> None:
    """On Linux with glibc, malloc_trim is found and answers 0 or 1 (whether it released)."""
    trim = _malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)
