"""One sequencer, hot standbys (ADR 0022): which replica of the audit service appends to the log.

Every replica runs a Sequencer over the same store and serves queries from it. A standby polls
the lease (lease.py) every `poll_seconds` and takes it once it expired, or at once when it is its
own (a restart). The holder starts its duties (services/audit/log/leader.py: the fact of a
failover, the intake, the checkpoint issuer) and renews the lease every third of
`lease_seconds` from the moment it took it (starting them can take longer than the lease). It
stops them at once and stands by again when a renewal finds the lease taken, when its duties
report an append refused for a stale epoch, or when the store has not answered a renewal before
the lease expired (it can no longer know it is the only writer). Duties that fail to start are
started again at each renewal, the lease kept: the failover they must publish first stays the
holder's to publish. Cancelled (the process stops), it stops them and lets the lease expire at
once, so a standby takes over within a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from services.audit.log.lease import Lease, Takeover
from services.audit.log.store import AuditStore
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import AUDIT_SEQUENCER_EPOCH

log = get_logger()


class Duties(Protocol):
    """What the lease holder does while it holds the lease."""

    async def start(self, takeover: Takeover) -> None:
        """Begin under `takeover.lease`'s epoch; raises when they could not begin (to be retried)."""

    async def lost(self) -> None:
        """Returns once the duties found the lease lost: an append refused for a stale epoch."""

    async def stop(self) -> None:
        """End them at once (also when they only partly started)."""


class Sequencer:
    def __init__(
        self,
        store: AuditStore,
        holder: str,
        duties: Duties,
        *,
        lease_seconds: float = 10.0,
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._holder = holder
        self._duties = duties
        self._lease_seconds = lease_seconds
        self._renew_seconds = lease_seconds / 3
        self._poll_seconds = min(poll_seconds, self._renew_seconds)
        self._clock = clock
        self._takeover: Takeover | None = None  # while this replica holds the lease
        self._lease: Lease | None = None
        self._on_duty = False

    @property
    def lease(self) -> Lease | None:
        """The lease this replica holds, or None: it stands by."""
        return self._lease

    @property
    def on_duty(self) -> bool:
        """It holds the lease and its duties run."""
        return self._lease is not None and self._on_duty

    async def start(self) -> None:
        """One attempt to take the lease, before the replica serves: a lone replica leads from
        its first request on."""
        await self.stand_by_once()

    async def run(self) -> None:
        """Stand by and lead, in turn, until cancelled."""
        try:
            while True:
                if self._lease is None:
                    await asyncio.sleep(self._poll_seconds)
                    await self.stand_by_once()
                else:
                    await self.hold_once(self._renew_seconds)
        finally:
            await self.step_down("stopped")

    async def stand_by_once(self) -> None:
        """Take the lease if it may be taken now, and start the duties under it."""
        try:
            takeover = await asyncio.to_thread(
                self._store.take_lease, self._holder, self._clock(), self._lease_seconds
            )
        except Exception:
            log.exception("audit_lease_not_read")
            return
        if takeover is None:
            return
        self._takeover, self._lease = takeover, takeover.lease
        AUDIT_SEQUENCER_EPOCH.set(takeover.lease.epoch)
        previous = takeover.previous
        log.info(
            "audit_sequencer_leads",
            holder=self._holder,
            epoch=takeover.lease.epoch,
            previous_holder=previous.holder if previous else None,
            continued_from=takeover.continued_from,
        )
        await self._start_duties()

    async def hold_once(self, wait_seconds: float) -> None:
        """Wait up to `wait_seconds` for the duties to find the lease lost, then renew it; step
        down when either says it is no longer this replica's."""
        lost = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._duties.lost(), wait_seconds)
            lost = True
        if lost:
            await self.step_down("an append was refused: another replica took the lease")
        elif not await self._renewed():
            await self.step_down("the lease could not be renewed")
        elif not self._on_duty:
            await self._start_duties()

    async def step_down(self, reason: str) -> None:
        """Stop the duties and let the lease expire now (a no-op when another took it)."""
        lease = self._lease
        if lease is None:
            return
        self._lease = self._takeover = None
        self._on_duty = False
        AUDIT_SEQUENCER_EPOCH.set(0)
        await self._duties.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._store.release_lease, lease)
        log.warning("audit_sequencer_stands_by", holder=self._holder, epoch=lease.epoch, reason=reason)

    async def _renewed(self) -> bool:
        """Whether the lease is still this replica's: renewed, or unanswered but not expired."""
        lease = self._lease
        assert lease is not None
        try:
            renewed = await asyncio.to_thread(
                self._store.renew_lease, lease, self._clock(), self._lease_seconds
            )
        except Exception:
            log.exception("audit_lease_not_renewed", epoch=lease.epoch)
            return not lease.expired(self._clock())
        if renewed is None:
            return False
        self._lease = renewed
        return True

    async def _start_duties(self) -> None:
        """Start the duties, renewing the lease meanwhile (a consumer joining its group can take
        longer than the lease lasts); step down if a renewal fails."""
        assert self._takeover is not None
        starting = asyncio.create_task(self._duties.start(self._takeover), name="audit-duties-start")
        try:
            while not (await asyncio.wait({starting}, timeout=self._renew_seconds))[0]:
                if not await self._renewed():
                    starting.cancel()
                    await asyncio.gather(starting, return_exceptions=True)
                    await self.step_down("the lease could not be renewed")
                    return
        finally:
            starting.cancel()  # when this is cancelled itself; a no-op once it finished
        if starting.cancelled() or starting.exception() is not None:
            log.error(
                "audit_duties_not_started", epoch=self._takeover.lease.epoch, exc_info=starting.exception()
            )
            await self._duties.stop()
            return
        self._on_duty = True
