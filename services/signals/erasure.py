"""Erasure by crypto-shredding: destroy a subject's data key, everywhere it lives.

The key store forgets the key (a tombstone row keeps the erasure permanent), a tombstone on
the compacted subjects.keys.v1 replaces consent's copy, and subjects.erasure.v1 tells every
service and the audit log. Every accepted record of the subject stays on Kafka, unreadable.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.signals.keystore import KeyStore
from services.signals.publishing import KafkaGateway
from shared.contracts.events import SubjectDataKey, SubjectErased
from shared.envelope import Envelope
from shared.logging import get_logger
from shared.topics import SUBJECTS_ERASURE, SUBJECTS_KEYS
from shared.transactional import signed_record, signed_tombstone

log = get_logger()


class Erasure:
    def __init__(
        self,
        keystore: KeyStore,
        gateway: KafkaGateway,
        signing_key: Ed25519PrivateKey,
        topic_prefix: str,
        source: str,
    ) -> None:
        """`source`: this service's CloudEvents source (`Registry.source("signals")`)."""
        self._keystore = keystore
        self._source = source
        self._gateway = gateway
        self._signing_key = signing_key
        self._prefix = topic_prefix

    async def erase(
        self, subject: str, requested_by: str, correlation_id: str, actor: str | None = None
    ) -> SubjectErased:
        had_key = await asyncio.to_thread(self._keystore.destroy, subject)
        now = datetime.now(UTC)
        tombstone = signed_tombstone(
            self._signing_key,
            SUBJECTS_KEYS.prefixed(self._prefix),
            subject,
            Envelope(
                source=self._source,
                type=SubjectDataKey.event_type,
                time=now,
                subject=subject,
                correlation_id=correlation_id,
            ),
        )
        await self._gateway.publish(tombstone)
        event = SubjectErased(
            subject_pseudonym=subject,
            requested_by=requested_by,
            actor=actor,
            erased_at=now,
            had_data_key=had_key,
        )
        envelope = Envelope(
            source=self._source,
            type=SubjectErased.event_type,
            time=now,
            subject=subject,
            correlation_id=correlation_id,
        )
        await self._gateway.publish(
            signed_record(
                self._signing_key, SUBJECTS_ERASURE.prefixed(self._prefix), subject, event, envelope
            )
        )
        log.info("subject_erased", subject=subject, requested_by=requested_by, had_data_key=had_key)
        return event
