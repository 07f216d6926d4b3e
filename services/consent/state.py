"""Consent's state, rebuilt from compacted topics: agreements, subject directives, data keys.

A `CompactedView` follows one compacted topic from its start (no consumer group: every
instance holds the whole state) and keeps the latest value per key, and which keys a tombstone
removed. `catch_up()` reads up to the topic's end offsets as they are now: after it returns,
every write committed before the call is visible. The processor catches up agreements,
directives, data keys and recipients before each batch, which is what makes a change (or an
erasure) take effect for the very next signal decided, and an erasure reach every partner a
delivery just reached.

A view believes only what its writer signed, and of that only what is not older than what it
holds (`order`: an agreement's version, a directive set's or a recipients record's sequence),
so a genuine earlier record copied back onto the topic cannot resume a suspended agreement or
lift an objection; on subjects.keys.v1 a tombstone is final (a data key is never issued again),
so a replayed key cannot undo an erasure (ADR 0009).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import ValidationError

from services.consent.approvals import KeyOf, verified
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    AgreementStatus,
    Directive,
    SubjectDirectives,
)
from shared.contracts.crypto.sealing import SealError, b64decode, data_key_context, open_sealed
from shared.contracts.crypto.signing import SignatureError, verify_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import SubjectDataKey, SubjectRecipients, data_key_id
from shared.contracts.topics import (
    CONSENT_AGREEMENTS,
    CONSENT_DIRECTIVES,
    CONSENT_PROPOSALS,
    SUBJECT_RECIPIENTS,
    SUBJECTS_KEYS,
    TopicSpec,
)
from shared.kafka_records import install as install_forgiving_record_parsing
from shared.plumbing.kafka import client_options, topic_partitions
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import STATE_VIEW_LAG
from shared.plumbing.settings import CommonSettings

log = get_logger()
T = TypeVar("T")
CATCH_UP_SECONDS = 30.0


@dataclass(frozen=True)
class Writer:
    """Who alone writes a state topic, and what: a record is believed only when that key signed
    it (value and every ce_ header), its signed type is `event_type`, and it is about the key it
    is filed under (a value's own id; a tombstone's signed ce_subject, or `tombstone_key` of
    its signed envelope). Anything else, injected by whoever can write the topic or replayed
    under another key, is ignored and logged; the audit log flags the forgeries on the topics it
    covers."""

    key: Ed25519PublicKey
    event_type: str
    tombstone_key: Callable[[Envelope], str | None] = lambda envelope: envelope.subject


@dataclass(frozen=True)
class Ordering(Generic[T]):
    """Which of two genuine records under one key is the newer: a view ignores a value whose
    `of` is below the one it holds (also after a tombstone), and with `final_tombstones` every
    record after a tombstone."""

    of: Callable[[T], int] | None = None
    final_tombstones: bool = False


class CompactedView(Generic[T]):
    def __init__(
        self,
        settings: CommonSettings,
        topic: TopicSpec,
        parse: Callable[[bytes], T],
        writer: Writer,
        key_of: Callable[[T], str],
        ordering: Ordering[T] | None = None,
    ) -> None:
        self._settings = settings
        self._topic = topic.prefixed(settings.topic_prefix)
        self.spec = topic
        self._parse = parse
        self._writer = writer
        self._key_of = key_of
        self.untrusted = 0  # records ignored because they did not verify (or could not be read)
        self.outdated = 0  # genuine records ignored because the view holds a newer one
        self._ordering: Ordering[T] = ordering or Ordering()
        self._orders: dict[str, int] = {}  # per key, the highest order applied (kept past tombstones)
        self._values: dict[str, T] = {}
        self._removed: set[str] = set()  # keys whose latest record is a tombstone
        self._consumer: AIOKafkaConsumer | None = None
        # End offsets come from a second client: on the follower's connection a ListOffsets
        # request would wait behind its long-polling fetch (up to fetch.max.wait.ms).
        self._probe: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._waiting = 0

    async def start(self, catch_up_seconds: float = CATCH_UP_SECONDS) -> None:
        """Follow the topic from its beginning; return once it is replayed (within
        `catch_up_seconds`: at start-up the whole topic, see ConsentSettings)."""
        install_forgiving_record_parsing()  # a header name that is not UTF-8 must not stop the view
        self._consumer = AIOKafkaConsumer(
            **client_options(self._settings), enable_auto_commit=False, isolation_level="read_committed"
        )
        await self._consumer.start()
        self._probe = AIOKafkaConsumer(**client_options(self._settings), isolation_level="read_committed")
        await self._probe.start()
        self._partitions = await topic_partitions(self._consumer, self._topic)
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.create_task(self._follow(), name=f"view:{self._topic}")
        await self.catch_up(catch_up_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._consumer, self._probe):
            if client is not None:
                await client.stop()

    @property
    def following(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def waiting(self) -> int:
        """How many callers wait in `catch_up` for this view (e.g. a batch that may not be
        decided before the view has what was committed)."""
        return self._waiting

    def get(self, key: str) -> T | None:
        return self._values.get(key)

    def removed(self, key: str) -> bool:
        """Whether the latest record under `key` is a tombstone (seen since this view started)."""
        return key in self._removed

    def values(self) -> list[T]:
        return list(self._values.values())

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    key = record.key.decode(errors="replace") if record.key else ""
                    try:
                        self._apply(key, record.value, list(record.headers))
                    except Exception:  # a record no check foresaw: never the end of the view
                        self.untrusted += 1
                        log.exception("state_record_failed", topic=self._topic, offset=record.offset)
            await self._report_lag()
            async with self._progress:
                self._progress.notify_all()

    async def _report_lag(self) -> None:
        """How many committed records the view has yet to read (the fetcher's last stable
        offsets against its positions; the broker is not asked)."""
        assert self._consumer is not None
        behind = 0
        for partition in self._partitions:
            end = self._consumer.last_stable_offset(partition) or self._consumer.highwater(partition)
            if end is not None:
                behind += max(end - await self._consumer.position(partition), 0)
        STATE_VIEW_LAG.labels(self.spec.name).set(behind)

    def _untrusted(self, key: str, value: bytes | None, headers: Headers) -> str | None:
        """Why the record is not to be believed, or None."""
        try:
            envelope = Envelope.from_headers(headers)
            verify_record([self._writer.key], value or b"", headers)
        except SignatureError as error:
            return error.reason
        except (ValueError, TypeError, AttributeError):  # headers that are no envelope at all
            return "malformed_envelope"
        if envelope.type != self._writer.event_type:
            return f"type {envelope.type} does not belong on {self._topic}"
        if value is None and self._writer.tombstone_key(envelope) != key:
            return "a tombstone signed for another key"
        return None

    def _apply(self, key: str, value: bytes | None, headers: Headers) -> None:
        problem = self._untrusted(key, value, headers)
        if problem is None and value is not None:
            try:
                parsed = self._parse(value)
            except (ValueError, ValidationError, SealError) as error:
                log.error("state_record_unreadable", topic=self._topic, key=key, error=type(error).__name__)
                return
            if self._key_of(parsed) != key:
                problem = "a value filed under another key"
        if problem is not None:
            self.untrusted += 1
            log.error("state_record_untrusted", topic=self._topic, key=key, problem=problem)
            return
        if self._ordering.final_tombstones and key in self._removed and value is not None:
            self.outdated += 1
            log.warning("state_record_after_final_tombstone", topic=self._topic, key=key)
            return
        if value is None:
            self._values.pop(key, None)  # a tombstone
            self._removed.add(key)
            return
        if self._ordering.of is not None:
            order, held = self._ordering.of(parsed), self._orders.get(key)
            if held is not None and order < held:
                self.outdated += 1
                log.warning("state_record_outdated", topic=self._topic, key=key, order=order, held=held)
                return
            self._orders[key] = order
        self._values[key] = parsed
        self._removed.discard(key)

    async def catch_up(self, seconds: float = CATCH_UP_SECONDS) -> None:
        """Return once everything committed to the topic before this call has been applied."""
        assert self._consumer is not None and self._probe is not None
        target = await self._probe.end_offsets(self._partitions)

        async def reached() -> bool:
            assert self._consumer is not None
            return all([await self._consumer.position(tp) >= target[tp] for tp in self._partitions])

        self._waiting += 1
        try:
            async with asyncio.timeout(seconds):
                while not await reached():
                    async with self._progress:
                        with contextlib.suppress(TimeoutError):  # re-check the positions every second
                            await asyncio.wait_for(self._progress.wait(), 1.0)
        finally:
            self._waiting -= 1


def in_force(agreements: list[Agreement], now: datetime) -> list[Agreement]:
    return [a for a in agreements if a.status is AgreementStatus.ACTIVE and a.valid_at(now)]


def agreements_view(
    settings: CommonSettings, consent_key: Ed25519PublicKey, party_key: KeyOf
) -> CompactedView[AgreementPublished]:
    """Every agreement's latest version, each believed only when consent signed the record and
    every party signed the version (or the version it narrows): services/consent/approvals.py.
    A version that fails is unreadable here, so it can neither permit nor block anything."""
    return CompactedView(
        settings,
        CONSENT_AGREEMENTS,
        lambda raw: verified(AgreementPublished.model_validate_json(raw), party_key),
        Writer(consent_key, AgreementPublished.event_type),
        lambda published: published.agreement.id,
        Ordering(lambda published: published.agreement.version),
    )


def directives_view(
    settings: CommonSettings, consent_key: Ed25519PublicKey
) -> CompactedView[SubjectDirectives]:
    return CompactedView(
        settings,
        CONSENT_DIRECTIVES,
        SubjectDirectives.model_validate_json,
        Writer(consent_key, SubjectDirectives.event_type),
        lambda directives: directives.subject_pseudonym,
        Ordering(lambda directives: directives.sequence),
    )


def _data_key_of(envelope: Envelope) -> str | None:
    municipality = envelope.extensions.get("municipality")
    if envelope.subject is None or municipality is None:
        return None
    return data_key_id(envelope.subject, municipality)


class DataKeyUnavailableError(LookupError):
    """A data key is neither known nor destroyed (yet): no decision can be made.

    Signals commits a subject's key before (or with) its accepted signal, so after catching up
    it is there, or its tombstone is. Anything else (a slow or lagging keys view, a sealed key
    this instance cannot open) is a fault to retry, never a reason to decide.
    """


class SubjectKeys:
    """Data keys per subject and providing municipality, sealed to consent on subjects.keys.v1
    (ADR 0003, ADR 0009)."""

    def __init__(
        self,
        settings: CommonSettings,
        recipient: str,
        private_key: X25519PrivateKey,
        signals_key: Ed25519PublicKey,
    ) -> None:
        self._recipient = recipient
        self._private_key = private_key
        # Only the signals service issues and destroys data keys: a tombstone it did not sign
        # would otherwise erase a subject. A tombstone is final: a replayed key stays ignored.
        self.view: CompactedView[SubjectDataKey] = CompactedView(
            settings,
            SUBJECTS_KEYS,
            SubjectDataKey.model_validate_json,
            Writer(signals_key, SubjectDataKey.event_type, _data_key_of),
            lambda data_key: data_key_id(data_key.subject_pseudonym, data_key.municipality),
            Ordering(final_tombstones=True),
        )

    def data_key(self, subject: str, municipality: str) -> bytes | None:
        """The data key of what `municipality` provided about `subject`; None only when its
        tombstone says it was destroyed.

        Call after catching up the view. Raises DataKeyUnavailableError when the key is not
        (yet) here: the caller aborts its batch and retries, it never decides without the key.
        """
        key = data_key_id(subject, municipality)
        if self.view.removed(key):
            return None
        event = self.view.get(key)
        if event is None:
            raise DataKeyUnavailableError(f"no data key (nor its tombstone) for {key}")
        try:
            return open_sealed(
                self._private_key,
                b64decode(event.sealed_key.ciphertext),
                data_key_context(subject, municipality, self._recipient),
            )
        except (ValueError, SealError) as error:
            log.error("subject_key_unreadable", subject=subject, municipality=municipality)
            raise DataKeyUnavailableError(f"the data key {key} does not open") from error


class ConsentState:
    """Everything consent decides on, each part following its own compacted topic."""

    def __init__(
        self,
        settings: CommonSettings,
        recipient: str,
        private_key: X25519PrivateKey,
        consent_key: Ed25519PublicKey,
        signals_key: Ed25519PublicKey,
        party_key: KeyOf,
    ) -> None:
        """`consent_key` verifies what consent itself wrote (agreements, proposals, directives,
        recipients), `signals_key` the subjects' data keys, `party_key` each party's signature
        on an agreement version."""
        self.agreements = agreements_view(settings, consent_key, party_key)
        self.directives = directives_view(settings, consent_key)
        self.keys = SubjectKeys(settings, recipient, private_key, signals_key)
        # Per municipality that signalled each subject (who may exercise rights over its own
        # data), the partners that received its data (whom its erasure notice must reach).
        self.recipients: CompactedView[SubjectRecipients] = CompactedView(
            settings,
            SUBJECT_RECIPIENTS,
            SubjectRecipients.model_validate_json,
            Writer(consent_key, SubjectRecipients.event_type),
            lambda memory: memory.subject_pseudonym,
            Ordering(lambda memory: memory.sequence),
        )
        # Widening agreement changes waiting for their second pair of eyes.
        self.proposals: CompactedView[AgreementProposed] = CompactedView(
            settings,
            CONSENT_PROPOSALS,
            AgreementProposed.model_validate_json,
            Writer(consent_key, AgreementProposed.event_type),
            lambda proposal: proposal.agreement.id,
            Ordering(lambda proposal: proposal.sequence),
        )

    @property
    def views(self) -> tuple[CompactedView[Any], ...]:
        return (self.agreements, self.directives, self.keys.view, self.recipients, self.proposals)

    async def start(self, catch_up_seconds: float = CATCH_UP_SECONDS) -> None:
        for view in self.views:
            await view.start(catch_up_seconds)

    async def stop(self) -> None:
        for view in self.views:
            await view.stop()

    @property
    def following(self) -> bool:
        return all(view.following for view in self.views)

    async def catch_up(self) -> None:
        """Apply every change committed before this call: agreements, directives, erasures, and
        who received what (so an erasure right after a delivery reaches its recipient, and one
        batch never writes a subject's recipients over an earlier batch's)."""
        await asyncio.gather(
            self.agreements.catch_up(),
            self.directives.catch_up(),
            self.keys.view.catch_up(),
            self.recipients.catch_up(),
        )

    def latest_agreements(self) -> list[Agreement]:
        """The latest version of every agreement, suspended and expired ones included (a
        decision names them in its reasons)."""
        return sorted((p.agreement for p in self.agreements.values()), key=lambda agreement: agreement.id)

    def agreements_in_force(self, now: datetime) -> list[Agreement]:
        """The agreements that can permit anything at `now`: active and valid."""
        return in_force(self.latest_agreements(), now)

    def directives_of(self, subject: str) -> tuple[Directive, ...]:
        """Every directive of the subject, whoever recorded it (`standing` picks the ones that
        govern a signal: its municipality's and the platform's)."""
        found = self.directives.get(subject)
        return found.directives if found else ()

    def directive_sequence(self, subject: str) -> int:
        """The sequence of the subject's latest directive set (0: none yet)."""
        found = self.directives.get(subject)
        return found.sequence if found else 0

    async def signalled_by(self, subject: str) -> frozenset[str]:
        """The municipalities whose signals about `subject` consent has decided on."""
        await self.recipients.catch_up()
        known = self.recipients.get(subject)
        return frozenset(known.signalled_by) if known else frozenset()
