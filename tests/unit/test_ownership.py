"""Rendezvous hashing of runs over live members: deterministic, even, minimal movement."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from slipway.engine.ownership import (
    LeaseView,
    live_members,
    next_expiry,
    owner,
    ownership_key,
    share,
)

KEYS = [ownership_key(f"ns-{i % 7}", f"run-{i}") for i in range(6000)]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_owner_is_deterministic_and_independent_of_member_order() -> None:
    """Every replica computes the same owner, whatever order it lists the members in."""
    members = ["r0", "r1", "r2"]
    for key in KEYS[:500]:
        assert owner(key, members) == owner(key, reversed(members)) == owner(key, sorted(members))
    assert owner("ns/x", []) is None
    assert owner("ns/x", ["only"]) == "only"


def test_three_members_split_keys_evenly() -> None:
    """Over 6000 keys each of three members owns close to a third (26-40 %)."""
    counts = Counter(owner(key, ["r0", "r1", "r2"]) for key in KEYS)
    assert set(counts) == {"r0", "r1", "r2"}
    for member, count in counts.items():
        assert 0.26 < count / len(KEYS) < 0.40, (member, count)


def test_three_hundred_runs_split_within_the_issue_bounds_for_many_member_names() -> None:
    """300 runs over 3 members: each owns 20-46 % for any of 50 sets of member names."""
    runs = [ownership_key("ns", f"run-{i}") for i in range(300)]
    for trial in range(50):
        members = [f"slipway-{trial}-{m}" for m in "abc"]
        counts = Counter(owner(key, members) for key in runs)
        assert all(0.20 <= counts[m] / 300 <= 0.46 for m in members), counts


def test_a_leaving_member_moves_only_its_own_keys() -> None:
    """When r2 leaves, only r2's keys change owner; they spread over both others."""
    before = {key: owner(key, ["r0", "r1", "r2"]) for key in KEYS}
    after = {key: owner(key, ["r0", "r1"]) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert moved
    assert all(before[key] == "r2" for key in moved)
    assert len(moved) == sum(1 for key in KEYS if before[key] == "r2")
    taken = Counter(after[key] for key in moved)
    assert min(taken.values()) / len(moved) > 0.4


def test_a_joining_member_takes_about_its_share_and_nothing_else_moves() -> None:
    """A fourth member takes about a quarter of the keys, each from its former owner only."""
    before = {key: owner(key, ["r0", "r1", "r2"]) for key in KEYS}
    after = {key: owner(key, ["r0", "r1", "r2", "r3"]) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == "r3" for key in moved)
    assert 0.19 < len(moved) / len(KEYS) < 0.31


def test_live_members_are_holders_of_fresh_leases() -> None:
    """A Lease is fresh until renewTime + duration; an unrenewed one is not a member."""
    leases = [
        LeaseView("a", T0, 10),
        LeaseView("b", T0 - timedelta(seconds=11), 10),
        LeaseView("c", None, 10),
        LeaseView("a", T0 - timedelta(seconds=1), 10),
        LeaseView("d", T0 - timedelta(seconds=4), 5),
    ]
    assert live_members(leases, T0) == ("a", "d")
    assert live_members(leases, T0 + timedelta(seconds=1)) == ("a",)
    assert next_expiry(leases, T0) == 1.0
    assert next_expiry(leases, T0, skip="d") == 9.0
    assert next_expiry([], T0) is None


def test_share_counts_what_one_member_owns() -> None:
    owned, total = share(KEYS[:300], ["r0", "r1", "r2"], "r1")
    assert total == 300
    assert owned == sum(1 for key in KEYS[:300] if owner(key, ["r0", "r1", "r2"]) == "r1")
    assert share(KEYS[:10], [], "r1") == (0, 10)
