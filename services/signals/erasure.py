"""Erasure by crypto-shredding: destroy data keys, everywhere they live.

Each municipality is the controller of what it provided (ADR 0009): its erasure destroys the
data key of what it provided about the subject, and no other municipality's; the platform's
privacy officer's erasure destroys every municipality's key of the subject and bars new ones.
The key store forgets the key (a tombstone row keeps the erasure permanent), a tombstone per
destroyed key on the compacted subjects.keys.v1 replaces consent's copy, and subjects.erasure.v1
tells every service and the audit log (consent notifies the partners that received what was
erased). Every accepted record stays on Kafka; what the destroyed keys encrypted is unreadable.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.signals.keystore import KeyStore
from services.signals.publishing import KafkaGateway
from shared.contracts.emitted import Emitted, Tombstone
from shared.contracts.events import SubjectDataKey, SubjectErased, data_key_id
from shared.plumbing.logging import get_logger

log = get_logger()


class Erasure:
    def __init__(self, keystore: KeyStore, gateway: KafkaGateway) -> None:
        self._keystore = keystore
        self._gateway = gateway

    async def erase(
        self,
        subject: str,
        requested_by: str,
        correlation_id: str,
        actor: str | None = None,
        municipality: str | None = None,
    ) -> SubjectErased:
        """Erase what `municipality` provided about `subject`; with None, everything any
        municipality provided (the platform's privacy officer only: the caller authorised it)."""
        if municipality is None:
            municipalities, had_key = await asyncio.to_thread(self._keystore.destroy_subject, subject)
        else:
            had_key = await asyncio.to_thread(self._keystore.destroy, municipality, subject)
            municipalities = (municipality,)
        now = datetime.now(UTC)
        for owner in municipalities:
            # Also for a key that was already gone: a tombstone lost to a crash is written now.
            await self._gateway.publish(
                Tombstone(
                    SubjectDataKey,
                    key=data_key_id(subject, owner),
                    subject=subject,
                    correlation_id=correlation_id,
                    extensions={"municipality": owner},
                    time=now,
                )
            )
        event = SubjectErased(
            subject_pseudonym=subject,
            municipality=municipality,
            requested_by=requested_by,
            actor=actor,
            erased_at=now,
            had_data_key=had_key,
        )
        await self._gateway.publish(
            Emitted(event, key=subject, subject=subject, correlation_id=correlation_id, time=now)
        )
        log.info(
            "subject_erased",
            subject=subject,
            requested_by=requested_by,
            scope=municipality or "all",
            had_data_key=had_key,
        )
        return event
