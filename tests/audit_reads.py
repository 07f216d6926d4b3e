"""Genuine AuditRead records, signed by the audit service's development key, written straight
to audit.reads.v1: a backlog for the audit intake's tests to ingest (integration and e2e)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.signing import sign_record
from shared.contracts.envelope import Envelope
from shared.contracts.events import AuditRead
from shared.contracts.registry import Registry


async def produce_audit_reads(
    kafka_options: dict[str, Any],
    keys_dir: Path,
    config_dir: Path,
    topic: str,
    count: int,
    *,
    actor: str,
    key_of: Callable[[int], bytes],
) -> None:
    """`count` reads by gm0363's `actor` on `topic`, the n-th under record key `key_of(n)`."""
    keys = KeyRing(keys_dir, generate_missing=False)
    key = keys.ed25519_private("audit")
    source = Registry.load(config_dir, keys).source("audit")
    producer = AIOKafkaProducer(**kafka_options, acks="all", linger_ms=20)
    await producer.start()
    try:
        sent = []
        for number in range(count):
            read = AuditRead(
                reader="gm0363",
                actor=actor,
                scope="gm0363",
                filter={"n": str(number)},
                results=0,
                read_at=datetime.now(UTC),
            )
            value = read.to_bytes()
            headers = sign_record(key, value, Envelope(source=source, type=AuditRead.event_type).to_headers())
            sent.append(await producer.send(topic, value, key=key_of(number), headers=headers))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
