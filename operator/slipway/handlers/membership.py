"""Active-active replicas: each holds a Lease of its own; runs are split by rendezvous hashing.

Every replica runs `Membership.run`: it creates its Lease (`kube/leases.py`), renews it every
`lease_renew` seconds, lists its peers' Leases (label `slipway.dev/member-of=<scope>`), and
takes the holders of fresh Leases as the live members. A run, with its TaskExecutions and
their Jobs, belongs to the live member that `engine/ownership.owner` picks for
`namespace/run`. On every change of the live members the supervisor stops the workers of
objects this replica no longer owns and starts those it now owns (from the watch's bodies it
keeps), a line is logged with the share it owns, and the share is written into its Lease's
annotations.

Fencing. A replica acts only while it may (`may_act`): its own Lease was renewed less than
`lease_duration - lease_renew` seconds ago by its own monotonic clock (so it stops before its
peers, who wait the whole `lease_duration` by the Lease's renewTime, take its runs over), and
it has been a member for one renewal period after (re)joining (so its peers have seen it
before it acts; the list it acts on was made since it rejoined). Every write a worker
makes of a run's or an execution's status, and every TaskExecution and linked run it
creates, calls `check` first (`Kube`'s `fence`), and statuses are written with the
`resourceVersion` the decision was made from: an owner that lost its run between the check
and the write (a paused process) has its write refused by the API server, because the new
owner's first write changed the version. Names are deterministic and `.triggered` ids are
`<namespace>/<execution>/<provider>/<attempt>` with the attempt recorded under CAS, so two
replicas that briefly both think they own a run create no twin and send no task under two
ids; at most the same id twice (at-least-once, as after a restart).

kopf's own peering is off (`standalone=True` in `app.py`): it pauses every operator but the
one with the highest priority, for the whole operator, with no per-object locks — one active
replica, which is what this module replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slipway import metrics
from slipway.constants import GROUP, SEQUENCERUN_PLURAL
from slipway.engine.ownership import (
    LeaseView,
    NotOwnerError,
    live_members,
    next_expiry,
    owner,
    ownership_key,
    share,
)
from slipway.kube.leases import LeaseStore, micro_time, parse_time

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
Body = dict[str, Any]

LABEL_MEMBER_OF = f"{GROUP}/member-of"
ANNOTATION_SHARE = f"{GROUP}/owned-share"
ANNOTATION_RUNS = f"{GROUP}/owned-runs"
ANNOTATION_MEMBERS = f"{GROUP}/members"


def default_identity() -> str:
    """The host name and a random suffix (out of a cluster; in one, POD_NAME is used)."""
    return f"{socket.gethostname()}-{os.urandom(3).hex()}"


def lease_name(identity: str) -> str:
    """A valid object name for `identity`'s Lease: `slipway-<identity>`, lower-cased, other
    characters replaced, a hash appended when anything was changed or cut."""
    clean = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-")
    name = f"slipway-{clean}"
    if clean != identity or len(name) > 63:
        digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def scope_label(namespace: str | None) -> str:
    """The value of LABEL_MEMBER_OF: replicas that watch the same scope are peers."""
    return namespace or "all-namespaces"


def lease_view(body: Body) -> LeaseView:
    spec = body.get("spec") or {}
    return LeaseView(
        holder=str(spec.get("holderIdentity") or ""),
        renewed=parse_time(spec.get("renewTime")),
        duration=float(spec.get("leaseDurationSeconds") or 0),
    )


class Membership:
    """This replica's Lease, its view of the live members, and the ownership it implies."""

    def __init__(
        self,
        store: LeaseStore | None,
        identity: str,
        scope: str | None,
        duration: float,
        renew: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store: Any = store  # set by MemberThread when it runs on its own thread
        self.identity = identity
        self.scope = scope_label(scope)
        self.duration = duration
        self.renew = renew
        self.lease = lease_name(identity)
        self.members: tuple[str, ...] = ()
        self._clock = clock
        self._renewed: float | None = None  # monotonic time the last good renewal was sent
        self._joined: float | None = None  # when the current unbroken membership began
        self._listed: float | None = None  # when `members` was last listed
        self.on_change: Callable[[], None] = lambda: None
        self._share = (0, 0)

    # ------------------------------------------------------------ ownership
    def valid(self) -> bool:
        """Whether this replica's own Lease is surely fresh: renewed less than
        duration - renew seconds ago (by this process's clock)."""
        renewed = self._renewed
        return renewed is not None and self._clock() < renewed + self.duration - self.renew

    def may_act(self) -> bool:
        """Valid, a member for one renewal period (at once when it is the only one), and its
        member list was listed since it (re)joined."""
        joined, listed = self._joined, self._listed
        alone = self.members == (self.identity,)  # no peer needs to see it first
        return (
            self.valid()
            and joined is not None
            and (alone or self._clock() >= joined + self.renew)
            and listed is not None
            and listed >= joined
        )

    def owner_of(self, namespace: str, run: str) -> str | None:
        return owner(ownership_key(namespace, run), self.members)

    def owns(self, namespace: str, run: str) -> bool:
        return self.may_act() and self.owner_of(namespace, run) == self.identity

    def owns_object(self, key: Key, body: Body) -> bool:
        """For the supervisor: a run is owned by its own name, an execution by its run's."""
        plural, namespace, name = key
        run = name if plural == SEQUENCERUN_PLURAL else str((body.get("spec") or {}).get("run"))
        return self.owns(namespace, run)

    def check(self, namespace: str, run: str) -> None:
        """The fence before a write: raise NotOwnerError unless this replica owns the run."""
        if not self.may_act():
            raise NotOwnerError(f"{self.identity} is not a fresh member (its Lease may expire)")
        found = self.owner_of(namespace, run)
        if found != self.identity:
            raise NotOwnerError(f"run {namespace}/{run} belongs to {found}, not {self.identity}")

    def fence(self, namespace: str, run: str) -> Callable[[], None]:
        """`check` for one run, as `Kube`'s `fence` argument."""
        return lambda: self.check(namespace, run)

    def record_share(self, running: list[Key]) -> tuple[int, int]:
        """How many of these running runs this replica owns now (kept for its Lease)."""
        keys = [ownership_key(ns, name) for _, ns, name in running]
        self._share = share(keys, self.members, self.identity) if self.may_act() else (0, len(keys))
        return self._share

    # ------------------------------------------------------------ the loop
    def _lease_body(self, now: datetime) -> Body:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.lease,
                "labels": {LABEL_MEMBER_OF: self.scope},
                "annotations": self._annotations(),
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.duration)),
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
            },
        }

    def _annotations(self) -> dict[str, str]:
        owned, total = self._share
        return {
            ANNOTATION_SHARE: f"{owned / total:.2f}" if total else "0.00",
            ANNOTATION_RUNS: f"{owned}/{total}",
            ANNOTATION_MEMBERS: ",".join(self.members),
        }

    async def _renew(self) -> None:
        """Renew (or create) this replica's Lease; on success, note when it was sent."""
        sent = self._clock()
        now = datetime.now(UTC)
        patch = {
            "metadata": {"annotations": self._annotations()},
            "spec": {"holderIdentity": self.identity, "renewTime": micro_time(now)},
        }
        done = await self.store.patch(self.lease, patch)
        if done is None:
            done = await self.store.create(self._lease_body(now))
            if done is None:  # created meanwhile by a process of the same identity
                done = await self.store.patch(self.lease, patch)
        if done is None:
            raise RuntimeError(f"Lease {self.lease} could not be written")
        if not self.valid():
            self._joined = sent  # (re)joined: act only after one more period
        self._renewed = sent

    async def _look(self) -> float | None:
        """List the peers; returns seconds until the first peer's Lease expires."""
        listed_at = self._clock()
        items = await self.store.list(f"{LABEL_MEMBER_OF}={self.scope}")
        leases = [lease_view(item) for item in items]
        now = datetime.now(UTC)
        members = live_members(leases, now)
        if self.valid() and self.identity not in members:
            members = tuple(sorted({*members, self.identity}))
        if not self.valid():
            members = tuple(m for m in members if m != self.identity)
        self._listed = listed_at
        if members != self.members:
            before = self.members
            self.members = members
            log.info(
                "members: %s (was %s)", ", ".join(members) or "none", ", ".join(before) or "none"
            )
        return next_expiry(leases, now, skip=self.identity)

    async def run(self) -> None:
        """Renew and look, each on its own cadence, until cancelled (then the Lease is
        deleted). Separate, so a slow list never delays a renewal."""
        renewed_once = asyncio.Event()
        try:
            await asyncio.gather(self._renewing(renewed_once), self._looking(renewed_once))
        finally:
            self._renewed = None
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.delete(self.lease))

    async def _renewing(self, renewed_once: asyncio.Event) -> None:
        # Each renewal is bounded by how long this replica's Lease is surely fresh: a slow
        # API server makes it fail (and this replica stop acting), never stalls the loop.
        while True:
            started = self._clock()
            try:
                await asyncio.wait_for(self._renew(), self.duration - self.renew)
            except Exception as error:  # the API server may be away: keep trying
                log.warning("cannot renew Lease %s: %r", self.lease, error)
            renewed_once.set()
            await asyncio.sleep(max(0.05, self.renew - (self._clock() - started)))

    async def _looking(self, renewed_once: asyncio.Event) -> None:
        # The first look after the first renewal: a replica may act once listed after it
        # joined, so a look before that would hold it back a whole period (at start-up,
        # alone, 5 s of not acting for nothing).
        await renewed_once.wait()
        while True:
            started = self._clock()
            expiry = None
            try:
                expiry = await asyncio.wait_for(self._look(), self.duration - self.renew)
            except Exception as error:
                log.warning("cannot list member Leases: %r", error)
            # Every look: the supervisor starts and stops workers as ownership says (cheap
            # when nothing changed), and a change is logged.
            self.on_change()
            delay = self.renew - (self._clock() - started)
            if self._joined is not None and not self.may_act() and self.valid():
                delay = min(delay, self._joined + self.renew - self._clock())
            if expiry is not None:
                delay = min(delay, expiry + 0.05)
            await asyncio.sleep(max(0.05, delay))


class MemberThread:
    """Runs `Membership.run` on a thread of its own, with its own event loop and API client:
    a renewal must not wait behind the work of the operator's loop (a replica busy with
    hundreds of runs on a loaded machine would otherwise miss its own renewals and drop out,
    and its runs would move for nothing). Membership changes are handed to the operator's
    loop (`on_change` runs there); `Membership`'s fields are read across threads, each
    replaced whole (no torn reads under the GIL)."""

    def __init__(self, membership: Membership, open_store: Callable[[], Awaitable[Any]]) -> None:
        self.membership = membership
        self._open = open_store
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()

    def start(self) -> None:
        main = asyncio.get_running_loop()
        on_change = self.membership.on_change

        def hand_over() -> None:
            main.call_soon_threadsafe(on_change)

        self.membership.on_change = hand_over
        self._thread = threading.Thread(target=self._main, name="membership", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            store = await self._open()
        finally:
            self._started.set()
        self.membership.store = store
        try:
            await self.membership.run()
        except asyncio.CancelledError:
            pass
        finally:
            await store.close()

    async def stop(self) -> None:
        """Stop renewing, delete the Lease, wait for the thread."""
        if self._thread is None:
            return
        await asyncio.to_thread(self._started.wait, 30)
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        await asyncio.to_thread(self._thread.join, 30)


class Rebalancer:
    """Calls the supervisor's rebalance on membership ticks and logs ownership changes."""

    def __init__(self, membership: Membership, supervisor: Any) -> None:
        self.membership = membership
        self.supervisor = supervisor
        self._last: tuple[tuple[str, ...], bool] | None = None

    def __call__(self) -> None:
        stopped, started = self.supervisor.rebalance()
        members = self.membership.members
        acting = self.membership.may_act()
        owned, total = self.membership.record_share(self.supervisor.running(SEQUENCERUN_PLURAL))
        metrics.ownership(owned, total, len(members))
        if (members, acting) != self._last or stopped or started:
            self._last = (members, acting)
            percent = f"{100 * owned / total:.0f} %" if total else "n/a"
            log.info(
                "ownership: %s of %d live members (%s), %s; owns %s of running runs "
                "(%d of %d); workers stopped %d, started %d",
                self.membership.identity,
                len(members),
                ", ".join(members),
                "acting" if acting else "not acting",
                percent,
                owned,
                total,
                stopped,
                started,
            )
