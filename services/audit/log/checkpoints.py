"""Signed checkpoints of the audit log (C2SP tlog-checkpoint), issued as the log grows.

A checkpoint commits the log to its root at one size: the audit service signs it as a note with
its Ed25519 key under the log's origin, publishes it on audit.checkpoints.v1 (so a copy lives
outside the audit store, where whoever can write the store cannot rewrite it) and then keeps it
in the store. One issuer (the service's) issues one every `every_seconds` when the log grew since
the last (SC_CHECKPOINT_INTERVAL_SECONDS, 5 s): a record is provable within seconds, and a day
holds at most 17,280 checkpoints whatever the load (one per 100 records made 1.5 million a day at
250 signals a second). `every_records` can bound the records between two as well (off by
default). Never two for one size.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.audit.log.store import AuditStore, StoredCheckpoint
from shared.contracts.events import AuditCheckpoint
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import Checkpoint, sign_checkpoint
from shared.contracts.tlog.note import Signer
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import AUDIT_CHECKPOINTS

log = get_logger()

Publish = Callable[[AuditCheckpoint], Awaitable[None]]


@dataclass
class CheckpointIssuer:
    store: AuditStore
    signer: Signer  # its name is the log's origin
    publish: Publish
    every_records: int | None = None  # also issue once this many records arrived (off: by time)
    every_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _last_issued_at: float = field(default=0.0, init=False)
    _last_size: int | None = field(default=None, init=False)  # read from the store once

    @property
    def origin(self) -> str:
        return self.signer.name

    def _stored_last_size(self) -> int:
        newest = self.store.latest_checkpoint()
        return newest.size if newest else 0

    def due(self, size: int, last_size: int) -> bool:
        if size <= last_size:
            return False
        waited = self.clock() - self._last_issued_at
        grown = self.every_records is not None and size - last_size >= self.every_records
        return grown or waited >= self.every_seconds

    async def issue_if_due(self) -> StoredCheckpoint | None:
        size = await asyncio.to_thread(self.store.size)
        if self._last_size is None:  # this issuer writes every later one, so it remembers them
            self._last_size = await asyncio.to_thread(self._stored_last_size)
        if not self.due(size, self._last_size):
            return None
        return await self.issue(size)

    async def issue(self, size: int) -> StoredCheckpoint:
        """Sign, publish (acks=all) and keep the checkpoint of the first `size` records."""
        root = await asyncio.to_thread(merkle.root, size, self.store)
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
        issued_at = datetime.now(UTC)
        await self.publish(
            AuditCheckpoint(
                origin=self.origin,
                size=size,
                root_hash=base64.b64encode(root).decode(),
                note=note,
                issued_at=issued_at,
            )
        )
        stored = StoredCheckpoint(size, root, note, issued_at.isoformat())
        await asyncio.to_thread(self.store.add_checkpoint, stored)
        AUDIT_CHECKPOINTS.inc()
        self._last_issued_at = self.clock()
        self._last_size = size
        log.info("audit_checkpoint_issued", size=size, root_hash=root.hex())
        return stored

    async def run(self) -> None:
        """Issue checkpoints as they fall due, until cancelled; a failure is retried next tick."""
        tick = min(1.0, self.every_seconds)
        while True:
            await asyncio.sleep(tick)
            try:
                await self.issue_if_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit_checkpoint_failed")
