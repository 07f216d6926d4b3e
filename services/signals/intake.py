"""The intake pipeline: one intake record in, the records to produce out.

Both intakes end here. A municipal system that speaks Kafka writes a record signed with its
own Ed25519 key to signals.intake.v1; the HTTP intake writes the same kind of record, signed
by this service on behalf of the caller it authenticated. For each record the pipeline:

  1. checks size, envelope, signature (who published it) and time (replays),
  2. validates the value as a signal (validation.py) from that municipality, and
     pseudonymises the subject (`check`);
  3. refuses a signal id accepted before from another record (ledger.py),
  4. encrypts the personal payload with the data key of the subject and the submitting
     municipality (ADR 0009), made when the pair has none yet (`decide`),
  5. returns what happened: the accepted event, preceded by the data key sealed to consent
     when that key's record is not (known to be) on subjects.keys.v1 yet, or a rejection
     with its reason code. The Kafka intake has the record writer sign them and produces them
     in one Kafka transaction.

It works per batch (`process_batch`): every record is checked, then the stores are asked once
for the whole batch (`look_up`: the keys and the ledger entries of its signals), then each
record is decided. The batch's acceptances and new keys are written in one database
transaction before its Kafka transaction commits (`commit_pending`), and forgotten when it
aborts (`discard_pending`); `committed` records which key records it published
(services/signals/keystore.py explains why a key's record is written once, and why that is
safe across a crash).

The BSN and name never leave this module in clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.signals.keystore import KeyStore, KeyWrites, NewKey, Pair, StoredKey
from services.signals.ledger import LedgerEntry, SignalLedger
from services.signals.validation import Invalid, parse_submission
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.pseudonyms import subject_pseudonym
from shared.contracts.crypto.sealing import (
    SealError,
    b64decode,
    b64encode,
    data_key_context,
    intake_context,
    open_sealed,
    personal_payload_context,
    seal,
)
from shared.contracts.crypto.signing import SignatureError, key_id, verify_record
from shared.contracts.emitted import Emitted
from shared.contracts.envelope import ENVELOPE_PROBLEM, Envelope, Headers, new_correlation_id
from shared.contracts.events import (
    EncryptedPayload,
    Event,
    FieldError,
    RejectionReason,
    SealedPayload,
    SignalAccepted,
    SignalRejected,
    SubjectDataKey,
    data_key_id,
)
from shared.contracts.personal import PersonalPayload
from shared.contracts.registry import OrganisationKind, Registry, UnknownSourceError
from shared.contracts.signal import SignalSubmission
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import timed
from shared.plumbing.policy import Action, Principal, Resource, Role, authorise

SERVICE_ID = "signals"
KEY_RECIPIENT = "consent"

log = get_logger()


@dataclass(frozen=True)
class IntakeRecord:
    """One record of signals.intake.v1: the value as sent, its headers, where it was read."""

    value: bytes
    headers: Headers
    provenance: str  # "<topic>:<partition>:<offset>", unique per record
    # When the broker appended it (the intake topic uses LogAppendTime, so no publisher can
    # set it). A replay is a record whose signed ce_time is far from when it was written;
    # a record that merely waited in the topic while this service was down is not one.
    written_at: datetime | None = None


@dataclass(frozen=True)
class IntakeLimits:
    max_record_bytes: int = 64 * 1024
    replay_window: timedelta = timedelta(minutes=10)
    clock_skew: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class Outcome:
    """What became of one intake record: the events to write, in their order, and the verdict."""

    emitted: list[Emitted[Event]]
    accepted: SignalAccepted | None = None
    rejected: SignalRejected | None = None


@dataclass(frozen=True)
class Checked:
    """An intake record that passed every check of its own (envelope, signature, time, seal,
    the signal, who may submit it): whether it is accepted is now the stores' say."""

    record: IntakeRecord
    envelope: Envelope
    submission: SignalSubmission
    publisher: str
    authenticated_by: str
    subject: str  # the subject's pseudonym

    @property
    def pair(self) -> Pair:
        """Whose data key encrypts it: the submitting municipality's of the subject."""
        return (self.submission.municipality, self.subject)


@dataclass(frozen=True)
class Found:
    """What the stores hold for a batch of checked records, each read once."""

    keys: Mapping[Pair, StoredKey]
    accepted: Mapping[str, LedgerEntry]


class IntakePipeline:
    def __init__(
        self,
        registry: Registry,
        pseudonym_key: bytes,
        keystore: KeyStore,
        ledger: SignalLedger,
        service_key: Ed25519PublicKey,
        intake_key: X25519PrivateKey,
        limits: IntakeLimits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`service_key`: this service's own signing key, with which the HTTP intake signs the
        records it writes on behalf of the municipality it authenticated."""
        self._registry = registry
        self._pseudonym_key = pseudonym_key
        self._keystore = keystore
        self._ledger = ledger
        self._service_key = service_key
        self._intake_key = intake_key
        self._limits = limits or IntakeLimits()
        self._clock = clock
        self._key_owners = {
            key_id(registry.ed25519_public(org.id)): org.id
            for org in registry.of_kind(OrganisationKind.MUNICIPALITY)
        }
        # Data keys, from a batch's first record until its Kafka transaction committed or
        # aborted (all of them one batch when nobody says: `process` alone):
        self._created: dict[Pair, NewKey] = {}  # made, not yet written (commit_pending)
        self._made: dict[Pair, bytes] = {}  # made by this batch (written or not)
        self._announcing: set[Pair] = set()  # whose key records this batch carries
        # Key records committed by earlier batches, not yet marked published in the store.
        self._published: set[Pair] = set()

    # -- the pipeline --------------------------------------------------------------------

    def process(self, record: IntakeRecord) -> Outcome:
        """One record: a batch of one."""
        return self.process_batch([record])[0]

    def process_batch(self, records: Sequence[IntakeRecord]) -> list[Outcome]:
        """Each record's outcome, in order: every record checked, the stores read once for the
        batch, then each decided."""
        checked = [self.check(record) for record in records]
        found = self.look_up([c for c in checked if isinstance(c, Checked)])
        return [c if isinstance(c, Outcome) else self.decide(c, found) for c in checked]

    def look_up(self, checked: Sequence[Checked]) -> Found:
        """The data keys and ledger entries of the checked records' signals: one read each."""
        if not checked:
            return Found({}, {})
        return Found(
            self._keystore.look_up({c.pair for c in checked}),
            self._ledger.find_many({str(c.submission.signal_id) for c in checked}),
        )

    def check(self, record: IntakeRecord) -> Checked | Outcome:
        """The record checked on its own: what `decide` takes, or its rejection."""
        try:
            envelope = Envelope.from_headers(record.headers)
        except ValueError:  # its message may quote a header: it stays out of the dead letter
            return self._reject(
                Invalid.because(RejectionReason.SCHEMA_VIOLATION, ENVELOPE_PROBLEM, "headers"), "kafka", None
            )
        publisher = self._publisher(envelope)
        if isinstance(publisher, Invalid):
            return self._reject(publisher, "kafka", envelope)
        checked = self._check_record(record, envelope, publisher)
        if isinstance(checked, Invalid):
            return self._reject(checked, "kafka", envelope, publisher)
        authenticated_by = checked
        signal_json = self._open(record.value, envelope)
        if isinstance(signal_json, Invalid):
            return self._reject(signal_json, "kafka", envelope, publisher)
        parsed = parse_submission(signal_json, self._registry, record_signal_id(envelope, publisher))
        if isinstance(parsed, Invalid):
            return self._reject(parsed, "kafka", envelope, publisher)
        # The key that signed the record is the municipality's publisher credential; whether it
        # may submit for the municipality the signal names is the policy's to say.
        signer = Principal(publisher, OrganisationKind.MUNICIPALITY, frozenset({Role.PUBLISHER}), publisher)
        verdict = authorise(signer, Action.SUBMIT_SIGNAL, Resource(municipality=parsed.municipality))
        if not verdict.allowed:
            return self._reject(
                Invalid(
                    (_error(RejectionReason.WRONG_PUBLISHER, "municipality", verdict.reason),),
                    str(parsed.signal_id),
                    publisher,
                ),
                "kafka",
                envelope,
            )
        subject = subject_pseudonym(self._pseudonym_key, parsed.subject.kind, parsed.subject.identifier())
        return Checked(record, envelope, parsed, publisher, authenticated_by, subject)

    def _publisher(self, envelope: Envelope) -> str | Invalid:
        """The municipality the record's source names (urn:nld:oin:<OIN>:systeem:<name>, through
        the registry); a malformed source, or one of no registered municipality, is refused."""
        try:
            organisation = self._registry.organisation_at(envelope.source)
        except UnknownSourceError:
            organisation = None
        if organisation is None or organisation.kind is not OrganisationKind.MUNICIPALITY:
            return Invalid.because(
                RejectionReason.UNKNOWN_MUNICIPALITY,
                "ce_source names no registered municipality (urn:nld:oin:<OIN>:systeem:<name>)",
                "ce_source",
            )
        return organisation.id

    def _check_record(self, record: IntakeRecord, envelope: Envelope, publisher: str) -> str | Invalid:
        """Size, signature and time; returns how the publisher was authenticated."""
        if len(record.value) > self._limits.max_record_bytes:
            return Invalid.because(
                RejectionReason.OVERSIZED, f"record exceeds {self._limits.max_record_bytes} bytes"
            )
        own_key = self._registry.ed25519_public(publisher)
        try:
            verified = verify_record([own_key, self._service_key], record.value, record.headers)
        except SignatureError as error:
            return Invalid.because(self._signature_reason(error, record.headers), str(error), "ce_signature")
        now = record.written_at or self._clock()
        if envelope.time is None:
            # Without a (signed) time a record could be replayed forever.
            return Invalid.because(RejectionReason.REPLAY, "ce_time is required on intake records", "ce_time")
        if envelope.time.utcoffset() is None:
            # A time without an offset names no instant (and cannot be compared with one).
            return Invalid.because(RejectionReason.REPLAY, "ce_time must carry a UTC offset", "ce_time")
        if not (now - self._limits.replay_window <= envelope.time <= now + self._limits.clock_skew):
            return Invalid.because(
                RejectionReason.REPLAY, "ce_time lies outside the accepted window", "ce_time"
            )
        return "api-token" if _same_key(verified, self._service_key) else "signature"

    def _open(self, value: bytes, envelope: Envelope) -> bytes | Invalid:
        """The signal's bytes, unsealed: intake values are sealed to this service."""
        try:
            sealed = SealedPayload.model_validate_json(value)
            if sealed.recipient != SERVICE_ID:
                raise ValueError(f"sealed to {sealed.recipient}")
            signal_json = open_sealed(
                self._intake_key, b64decode(sealed.ciphertext), intake_context(envelope.id, SERVICE_ID)
            )
        except (ValueError, SealError):
            return Invalid.because(
                RejectionReason.NOT_ENCRYPTED,
                "the value must be the signal sealed to the signals service",
                "value",
            )
        if len(signal_json) > self._limits.max_record_bytes:
            return Invalid.because(
                RejectionReason.OVERSIZED, f"signal exceeds {self._limits.max_record_bytes} bytes"
            )
        return signal_json

    def _signature_reason(self, error: SignatureError, headers: Headers) -> RejectionReason:
        if error.reason == "unknown_key":
            named = next(
                (value.decode(errors="replace") for name, value in headers if name == "ce_signaturekeyid"), ""
            )
            if named in self._key_owners:
                return RejectionReason.WRONG_PUBLISHER  # a real key, of another municipality
            return RejectionReason.UNKNOWN_KEY
        return RejectionReason(error.reason)

    def decide(self, checked: Checked, found: Found) -> Outcome:
        """Accept the checked record, or refuse it as a duplicate or about an erased subject;
        `found`: the stores' answers for its batch (`look_up`)."""
        submission, record, envelope = checked.submission, checked.record, checked.envelope
        publisher, subject = checked.publisher, checked.subject
        signal_id = str(submission.signal_id)
        stored = found.keys.get(checked.pair)
        if stored is not None and stored.erased:
            return self._reject(
                Invalid(
                    (_error(RejectionReason.SUBJECT_ERASED, "subject", "the subject's data was erased"),),
                    signal_id,
                    submission.municipality,
                ),
                "kafka",
                envelope,
            )
        now = self._clock()
        earlier = self._ledger.record(
            LedgerEntry(signal_id, record.provenance, subject, now, submission.municipality), found.accepted
        )
        if earlier is not None:
            # The first result belongs to whoever submitted first; nobody else learns of it.
            own = earlier.municipality == submission.municipality
            rejected = self._reject(
                Invalid(
                    (_error(RejectionReason.DUPLICATE, "signal_id", "this signal id was accepted before"),),
                    signal_id,
                    submission.municipality,
                ),
                "kafka",
                envelope,
                first_accepted_at=earlier.accepted_at if own else None,
            )
            return rejected
        data_key, announce = self._data_key(checked.pair, stored)
        personal = PersonalPayload.of(submission).to_bytes()
        accepted = SignalAccepted(
            signal_id=submission.signal_id,
            municipality=submission.municipality,
            category=submission.category,
            severity=submission.severity,
            occurred_at=submission.occurred_at,
            purpose=submission.purpose,
            legal_basis=submission.legal_basis,
            retention_days=submission.retention_days,
            classification=submission.classification,
            subject_kind=submission.subject.kind,
            subject_pseudonym=subject,
            publisher=publisher,
            authenticated_by="api-token" if checked.authenticated_by == "api-token" else "signature",
            accepted_at=now,
            personal=EncryptedPayload(
                subject=subject,
                ciphertext=b64encode(
                    datakeys.encrypt(data_key, personal, personal_payload_context(signal_id, subject))
                ),
            ),
        )
        emitted: list[Emitted[Event]] = [
            Emitted(
                accepted,
                key=subject,
                subject=subject,
                correlation_id=envelope.correlation_id,
                extensions={"signalid": signal_id},
                time=now,
            )
        ]
        if announce:
            # The key first: whoever reads the accepted record finds its key already committed
            # (with it, or in an earlier transaction when it is not announced again).
            emitted.insert(
                0,
                self._issued_data_key(
                    subject, submission.municipality, data_key, envelope.correlation_id, now
                ),
            )
        log.info("signal_accepted", signal_id=signal_id, category=accepted.category, subject=subject)
        return Outcome(emitted, accepted=accepted)

    @timed("keystore", "data_key")
    def _data_key(self, pair: Pair, stored: StoredKey | None) -> tuple[bytes, bool]:
        """The data key of `pair` for an accepted signal (made when the pair has none), and
        whether the signal's records must carry the key's record: when the key is new, or its
        record is not known to be committed and no earlier signal of this batch carries it."""
        made = self._made.get(pair)
        if made is not None:
            return made, False
        if stored is None:
            new = self._keystore.new_key(*pair)
            self._created[pair] = new
            self._made[pair] = new.key
            self._announcing.add(pair)
            return new.key, True
        assert stored.key is not None, "an erased key is refused before"
        if stored.published or pair in self._published or pair in self._announcing:
            return stored.key, False
        self._announcing.add(pair)
        return stored.key, True

    def _issued_data_key(
        self, subject: str, municipality: str, data_key: bytes, correlation_id: str, now: datetime
    ) -> Emitted[SubjectDataKey]:
        """The data key of what `municipality` provides about `subject`, sealed to consent."""
        sealed = seal(
            self._registry.x25519_public(KEY_RECIPIENT),
            data_key,
            data_key_context(subject, municipality, KEY_RECIPIENT),
        )
        event = SubjectDataKey(
            subject_pseudonym=subject,
            municipality=municipality,
            sealed_key=SealedPayload(recipient=KEY_RECIPIENT, ciphertext=b64encode(sealed)),
            issued_at=now,
        )
        return Emitted(
            event,
            key=data_key_id(subject, municipality),
            subject=subject,
            correlation_id=correlation_id,
            extensions={"municipality": municipality},
            time=now,
        )

    def commit_pending(self) -> None:
        """Make this batch's acceptances and new data keys durable, in one database transaction
        (with the key records earlier batches published); call before its Kafka transaction
        commits. Raises SubjectErasedError when the platform's erasure of a subject raced with
        a new key of it: the batch must abort (read again, its signal is refused)."""
        created = tuple(self._created.values())
        published = tuple(sorted(self._published))
        self._ledger.flush(KeyWrites(created, published))
        self._created.clear()
        self._published.difference_update(published)
        self._keystore.settle_created(created)

    def discard_pending(self) -> None:
        """Forget this batch's acceptances and keys; call when its Kafka transaction aborted.
        A key it made may be stored already: read again, the batch publishes it again."""
        self._ledger.discard()
        self._created.clear()
        self._made.clear()
        self._announcing.clear()

    def committed(self) -> None:
        """This batch's Kafka transaction committed: the key records it carried are published
        (marked in the store with the next batch's flush)."""
        self._published.update(self._announcing)
        self._created.clear()
        self._made.clear()
        self._announcing.clear()

    # -- rejections ----------------------------------------------------------------------

    def rejection(
        self,
        invalid: Invalid,
        channel: str,
        correlation_id: str,
        first_accepted_at: datetime | None = None,
    ) -> Emitted[SignalRejected]:
        """The dead letter of `invalid`."""
        event = SignalRejected(
            signal_id=invalid.signal_id,
            municipality=invalid.municipality,
            channel=channel,
            reason=invalid.reason,
            errors=invalid.errors,
            rejected_at=self._clock(),
            first_accepted_at=first_accepted_at,
        )
        log.info(
            "signal_rejected",
            reason=event.reason,
            channel=channel,
            signal_id=invalid.signal_id,
            errors=[f"{e.reason.value}:{e.location}" for e in invalid.errors],
        )
        return Emitted(
            event,
            key=invalid.signal_id or str(event.rejection_id),
            correlation_id=correlation_id,
            extensions={"signalid": invalid.signal_id},
            time=event.rejected_at,
        )

    def _reject(
        self,
        invalid: Invalid,
        channel: str,
        envelope: Envelope | None,
        publisher: str | None = None,
        first_accepted_at: datetime | None = None,
    ) -> Outcome:
        """`publisher`: the municipality the record's source names, once that is known."""
        if invalid.municipality is None and publisher is not None:
            invalid = Invalid(invalid.errors, invalid.signal_id, publisher)
        correlation_id = envelope.correlation_id if envelope else new_correlation_id()
        channel = "http" if envelope is not None and envelope.extensions.get("channel") == "http" else channel
        rejected = self.rejection(invalid, channel, correlation_id, first_accepted_at)
        return Outcome([rejected], rejected=rejected.event)


def record_signal_id(envelope: Envelope, publisher: str) -> uuid.UUID:
    """The signal id of an intake record whose signal names none: derived from the record's
    own (signed) identity, its publisher and id, so a redelivered record keeps the same id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"safety-chain:intake:{publisher}:{envelope.id}")


def _error(reason: RejectionReason, location: str, message: str) -> FieldError:
    return FieldError(reason=reason, location=location, message=message)


def _same_key(a: Ed25519PublicKey, b: Ed25519PublicKey) -> bool:
    return key_id(a) == key_id(b)
