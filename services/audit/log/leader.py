"""What the audit service does while it holds the sequencer's lease (sequencer.py `Duties`).

After a failover it first publishes the fact of it (AuditFailover on audit.reads.v1, signed as
every record of audit's; its own intake logs it as it logs the reads), so no replica appends
before the change of writer is on the bus. Then it runs the intake, which names the lease's
epoch in every append and resumes where the store's offsets end (ADR 0020), and the checkpoint
issuer, which reads the newest checkpoint from the store and goes on with the same tree.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.ingest import AuditIntake
from services.audit.log.lease import LeaseLostError, Takeover
from shared.contracts.events import AuditFailover
from shared.plumbing.logging import get_logger

log = get_logger()

PublishFailover = Callable[[AuditFailover], Awaitable[None]]


def failover_of(takeover: Takeover, taken_at: datetime) -> AuditFailover:
    """The fact of a failover (Takeover.is_failover): replicas' ids and sizes, nobody's data."""
    assert takeover.previous is not None
    return AuditFailover(
        previous_holder=takeover.previous.holder,
        holder=takeover.lease.holder,
        epoch=takeover.lease.epoch,
        continued_from=takeover.continued_from,
        taken_at=taken_at,
    )


class LeaderDuties:
    """The intake and the checkpoint issuer, as loop tasks in `tasks` (what /healthz watches)
    while they run; `intake` is the running intake, None while this replica stands by."""

    def __init__(
        self,
        new_intake: Callable[[int], AuditIntake],
        new_issuer: Callable[[], CheckpointIssuer],
        publish_failover: PublishFailover,
        tasks: dict[str, asyncio.Task[None]],
    ) -> None:
        self._new_intake = new_intake
        self._new_issuer = new_issuer
        self._publish_failover = publish_failover
        self._tasks = tasks
        self._lost = asyncio.Event()
        self._announced = 0  # the epoch whose failover is on the bus
        self._starting: AuditIntake | None = None
        self.intake: AuditIntake | None = None

    async def start(self, takeover: Takeover) -> None:
        epoch = takeover.lease.epoch
        self._lost.clear()
        if takeover.is_failover and self._announced != epoch:
            await self._publish_failover(failover_of(takeover, datetime.now(UTC)))
            self._announced = epoch
        self._starting = intake = self._new_intake(epoch)
        await intake.start()
        self._tasks["intake"] = asyncio.create_task(self._consume(intake), name="audit-intake")
        self._tasks["checkpoints"] = asyncio.create_task(self._new_issuer().run(), name="audit-checkpoints")
        self.intake = intake

    async def lost(self) -> None:
        await self._lost.wait()

    async def stop(self) -> None:
        self.intake = None
        running = [self._tasks.pop(name) for name in ("intake", "checkpoints") if name in self._tasks]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        intake, self._starting = self._starting, None
        if intake is not None:
            with contextlib.suppress(Exception):
                await intake.stop()

    async def _consume(self, intake: AuditIntake) -> None:
        try:
            await intake.run()
        except LeaseLostError:
            log.warning("audit_append_refused_for_a_stale_epoch")
            self._lost.set()
