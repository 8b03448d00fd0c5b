"""Which replica works which run: rendezvous (highest-random-weight) hashing over live members.

Pure: no clock, no I/O. Each operator replica holds a Lease of its own (`handlers/membership.py`);
the live members are those whose Lease is fresh (`live_members`). A SequenceRun belongs to the
live member with the highest weight `hash(member, namespace/run)`; its TaskExecutions and Jobs
belong to the run's owner (`ownership_key` of the run's name), so one replica drives a whole
run. Every replica computes the same owner from the same member list, with no coordination and
no race for buckets; the spread is even in expectation (each key picks a uniformly random
member), and when a member joins or leaves only the keys it wins or held move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


class NotOwnerError(Exception):
    """This replica may not write for an object now: another live member owns its run, or
    this replica's own Lease is not known fresh (it may have expired, e.g. the process was
    paused). Raised by the fence before a write; the worker stops quietly."""


@dataclass(frozen=True)
class LeaseView:
    """What ownership needs of one member's Lease."""

    holder: str
    renewed: datetime | None
    duration: float


def ownership_key(namespace: str, run: str) -> str:
    """The key hashed for a run and everything of it (its executions, their Jobs)."""
    return f"{namespace}/{run}"


def weight(member: str, key: str) -> int:
    """The rendezvous weight of `member` for `key`: 64 bits of a cryptographic hash, so
    weights are independent across members and keys."""
    digest = hashlib.blake2b(f"{member}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, members: Iterable[str]) -> str | None:
    """The member that owns `key` (None: no live member). Ties (practically impossible)
    go to the greater name, so every replica agrees."""
    best: tuple[int, str] | None = None
    for member in members:
        candidate = (weight(member, key), member)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def fresh(lease: LeaseView, now: datetime) -> bool:
    """Whether a Lease was renewed within its duration before `now`."""
    if lease.renewed is None:
        return False
    return lease.renewed + timedelta(seconds=lease.duration) > now


def live_members(leases: Iterable[LeaseView], now: datetime) -> tuple[str, ...]:
    """The holders of fresh Leases, sorted and without repeats."""
    return tuple(sorted({lease.holder for lease in leases if fresh(lease, now)}))


def next_expiry(leases: Iterable[LeaseView], now: datetime, skip: str = "") -> float | None:
    """Seconds from `now` until the first fresh Lease (other than `skip`'s) expires, if
    one is not renewed meanwhile: when membership must be looked at again."""
    waits = [
        (lease.renewed + timedelta(seconds=lease.duration) - now).total_seconds()
        for lease in leases
        if lease.holder != skip and lease.renewed is not None and fresh(lease, now)
    ]
    return min(waits) if waits else None


def share(keys: Sequence[str], members: Iterable[str], me: str) -> tuple[int, int]:
    """(how many of `keys` `me` owns, how many keys there are)."""
    live = tuple(members)
    return sum(1 for key in keys if owner(key, live) == me), len(keys)
