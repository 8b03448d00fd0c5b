"""A replica's membership with a fake Lease store and clock: when it may act, what it owns,
and the fence before writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.engine.ownership import NotOwnerError, owner, ownership_key
from slipway.handlers.membership import Membership, lease_name
from slipway.kube.leases import micro_time
from tests.helpers import run_async


class FakeStore:
    """Leases in a dict, as the API server would keep them (no clock of its own)."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}

    async def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        name = body["metadata"]["name"]
        if name in self.leases:
            return None
        self.leases[name] = body
        return body

    async def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        if name not in self.leases:
            return None
        lease = self.leases[name]
        lease["spec"].update(patch.get("spec", {}))
        lease["metadata"].setdefault("annotations", {}).update(
            patch.get("metadata", {}).get("annotations", {})
        )
        return lease

    async def list(self, label_selector: str) -> list[dict[str, Any]]:
        key, _, value = label_selector.partition("=")
        return [b for b in self.leases.values() if b["metadata"]["labels"].get(key) == value]

    async def delete(self, name: str) -> None:
        self.leases.pop(name, None)

    def peer(self, identity: str, renewed: datetime, duration: int = 10) -> None:
        self.leases[lease_name(identity)] = {
            "metadata": {"name": lease_name(identity), "labels": {"slipway.dev/member-of": "ns"}},
            "spec": {
                "holderIdentity": identity,
                "renewTime": micro_time(renewed),
                "leaseDurationSeconds": duration,
            },
        }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def member(store: FakeStore, clock: Clock, identity: str = "me") -> Membership:
    return Membership(store, identity, "ns", duration=10, renew=2, clock=clock)  # type: ignore[arg-type]


def tick(m: Membership) -> None:
    async def both() -> None:
        await m._renew()
        await m._look()

    run_async(both())


def test_a_new_member_acts_only_after_one_renewal_period() -> None:
    """Its first renewal makes it a member; with a peer, it acts once a period has passed
    (the peer has seen it) and it has looked at its peers since it joined."""
    store, clock = FakeStore(), Clock()
    store.peer("peer", datetime.now(UTC))
    m = member(store, clock)
    assert not m.may_act()
    tick(m)
    assert m.members == ("me", "peer")
    assert store.leases[lease_name("me")]["spec"]["holderIdentity"] == "me"
    assert not m.may_act()
    clock.now += 2
    tick(m)
    assert m.may_act()


def test_a_lone_member_acts_at_once() -> None:
    """With no live peer nobody needs to see it first: it acts after its first look."""
    store, clock = FakeStore(), Clock()
    m = member(store, clock)
    tick(m)
    assert m.members == ("me",)
    assert m.may_act()
    assert m.owns("ns", "any-run")


def test_it_owns_what_rendezvous_hashing_gives_it_among_fresh_peers() -> None:
    """A fresh peer shares the runs; a peer whose Lease expired does not."""
    store, clock = FakeStore(), Clock()
    now = datetime.now(UTC)
    store.peer("fresh", now)
    store.peer("stale", now - timedelta(seconds=30))
    m = member(store, clock)
    tick(m)
    clock.now += 2
    tick(m)
    assert m.members == ("fresh", "me")
    runs = [f"run-{i}" for i in range(200)]
    mine = {r for r in runs if m.owns("ns", r)}
    assert mine == {r for r in runs if owner(ownership_key("ns", r), ["fresh", "me"]) == "me"}
    assert 60 < len(mine) < 140
    theirs = next(r for r in runs if r not in mine)
    with pytest.raises(NotOwnerError, match="belongs to fresh"):
        m.check("ns", theirs)
    m.check("ns", next(iter(mine)))


def test_a_member_that_missed_its_renewals_stops_before_its_peers_take_over() -> None:
    """Paused past duration - renew (its own clock), it may not write; after it renews it
    waits one more period before acting again."""
    store, clock = FakeStore(), Clock()
    store.peer("peer", datetime.now(UTC), duration=60)
    m = member(store, clock)
    tick(m)
    clock.now += 2
    tick(m)
    assert m.may_act()
    clock.now += 8.1  # 8.1 s since the last renewal was sent: beyond 10 - 2
    assert not m.may_act()
    with pytest.raises(NotOwnerError, match="not a fresh member"):
        m.check("ns", "r")
    tick(m)  # woke up: renewed and looked again
    assert not m.may_act()
    clock.now += 2
    tick(m)
    assert m.may_act()


def test_stopping_deletes_the_lease() -> None:
    """A clean stop removes the Lease, so peers take over at their next look."""
    import asyncio

    store, clock = FakeStore(), Clock()
    m = member(store, clock)
    looked = asyncio.Event()
    m.on_change = looked.set

    async def scenario() -> None:
        task = asyncio.create_task(m.run())
        await asyncio.wait_for(looked.wait(), 5)
        assert lease_name("me") in store.leases
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run_async(scenario())
    assert store.leases == {}
    assert not m.valid()


def test_lease_names_are_valid_object_names() -> None:
    assert lease_name("slipway-7d9c-abcde") == "slipway-slipway-7d9c-abcde"
    odd = lease_name("Host_Name.example/42")
    assert odd.startswith("slipway-host-name-example-42-")
    assert len(lease_name("x" * 300)) <= 63
