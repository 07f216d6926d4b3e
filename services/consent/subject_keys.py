"""Consent's view of the subjects' data keys: the compacted topic subjects.keys.v1.

The signals service writes a subject's data key, sealed to consent, before (or in the same
transaction as) the subject's accepted signal. So when consent lacks the key of a signal it
reads, it catches up with the key topic to its current end: then the key is there, or the
subject was erased (a tombstone removed it) and the payload is unreadable by design.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.contracts.events import SubjectDataKey
from shared.crypto.sealing import SealError, b64decode, data_key_context, open_sealed
from shared.kafka import client_options
from shared.logging import get_logger
from shared.settings import CommonSettings
from shared.topics import SUBJECTS_KEYS

log = get_logger()
CATCH_UP_SECONDS = 30.0


class SubjectKeyCache:
    def __init__(self, settings: CommonSettings, recipient: str, private_key: X25519PrivateKey) -> None:
        self._settings = settings
        self._recipient = recipient
        self._private_key = private_key
        self._topic = SUBJECTS_KEYS.prefixed(settings.topic_prefix)
        self._keys: dict[str, bytes] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # No consumer group: every instance reads the whole compacted topic from the start.
        self._consumer = AIOKafkaConsumer(
            **client_options(self._settings), enable_auto_commit=False, isolation_level="read_committed"
        )
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        if not partitions:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self._topic) or set()
        self._partitions = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.create_task(self._follow(), name="subject-keys")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def following(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    subject = record.key.decode() if record.key else ""
                    if record.value is None:
                        self._keys.pop(subject, None)  # tombstone: the key was destroyed
                    else:
                        self._keys[subject] = record.value
            async with self._progress:
                self._progress.notify_all()

    async def _caught_up(self) -> None:
        assert self._consumer is not None
        target = await self._consumer.end_offsets(self._partitions)

        async def reached() -> bool:
            assert self._consumer is not None
            return all([await self._consumer.position(tp) >= target[tp] for tp in self._partitions])

        async with asyncio.timeout(CATCH_UP_SECONDS):
            while not await reached():
                async with self._progress:
                    with contextlib.suppress(TimeoutError):  # re-check the positions at least every second
                        await asyncio.wait_for(self._progress.wait(), 1.0)

    async def data_key(self, subject: str) -> bytes | None:
        """The subject's data key, or None when it was destroyed (or never issued)."""
        if subject not in self._keys:
            with contextlib.suppress(TimeoutError):
                await self._caught_up()
        raw = self._keys.get(subject)
        if raw is None:
            return None
        try:
            event = SubjectDataKey.model_validate_json(raw)
            return open_sealed(
                self._private_key,
                b64decode(event.sealed_key.ciphertext),
                data_key_context(subject, self._recipient),
            )
        except (ValueError, SealError):
            log.error("subject_key_unreadable", subject=subject)
            return None
