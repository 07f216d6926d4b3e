"""The intake pipeline on real keys and real SQLite stores, fed records as the Kafka intake
would: a harness for the tests of what the pipeline makes of each kind of intake record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.keys import prepare_development_keys
from services.signals.intake import IntakeLimits, IntakePipeline, IntakeRecord
from services.signals.kafka_intake import naming_the_intake_record
from services.signals.keystore import SqlKeyStore
from services.signals.ledger import SqlSignalLedger
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.envelope import Headers
from shared.contracts.events import SignalAccepted, SignalRejected
from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.contracts.sources import source_urn
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter


@dataclass(frozen=True)
class Written:
    """The pipeline's outcome of one intake record, and the records the Kafka intake writes of it."""

    accepted: SignalAccepted | None
    rejected: SignalRejected | None
    records: list[OutgoingRecord]


@dataclass(frozen=True)
class Parties:
    """The development key ceremony's keys (signals' and every publisher's) and the registry on
    them, shared by every harness of a test session: no test changes a key. What the ceremony
    leaves to the service itself (its key-encryption key, its pseudonym secret) is made on first
    use, as signals makes it in development."""

    keys: KeyRing
    registry: Registry

    @classmethod
    def made_in(cls, keys_dir: Path, config_dir: Path) -> Parties:
        prepare_development_keys(keys_dir, config_dir)
        keys = KeyRing(keys_dir, generate_missing=True)
        return cls(keys, Registry.load(config_dir, keys))


class Harness:
    def __init__(self, root: Path, parties: Parties) -> None:
        self.root = root
        self.keys = parties.keys  # plays signals and every publisher
        self.registry = parties.registry
        self.url = f"sqlite:///{root / 'signals.db'}"
        self.keystore = SqlKeyStore(self.url, self.keys.secret("key-encryption-key"))
        self.ledger = SqlSignalLedger(self.url)
        self.now = datetime.now(UTC)
        self.pipeline = self.restarted()
        self.writer = RecordWriter(
            self.keys.ed25519_private("signals"), self.registry.source("signals"), "t."
        )
        self.offset = 0

    def restarted(self) -> IntakePipeline:
        """A pipeline on these stores, as a (re)started service makes it."""
        return IntakePipeline(
            self.registry,
            self.keys.secret("subject-pseudonyms"),
            self.keystore,
            self.ledger,
            self.keys.ed25519_private("signals").public_key(),
            self.keys.x25519_private("signals"),
            IntakeLimits(max_record_bytes=8 * 1024),
            clock=lambda: self.now,
        )

    def intake(self, signal: dict[str, Any], publisher: str = "gm0363") -> IntakeRecord:
        """A signed, sealed intake record of `signal`, at the next offset."""
        self.offset += 1
        return IntakeRecord(*self.record(signal, publisher), f"t.signals.intake.v1:0:{self.offset}")

    def record(
        self, signal: dict[str, Any] | bytes, publisher: str = "gm0363", signer: str | None = None
    ) -> tuple[bytes, Headers]:
        raw = signal if isinstance(signal, bytes) else json.dumps(signal).encode()
        return intake_record(
            raw,
            self.source(publisher),
            self.keys.ed25519_private(signer or publisher),
            self.keys.x25519_public("signals"),
        )

    def source(self, publisher: str) -> str:
        """The publisher's CloudEvents source; for one the registry does not know, a well-formed
        source of an OIN nobody holds."""
        if publisher in self.registry.all_ids():
            return self.registry.source(publisher)
        return source_urn("99999999000009999000", "safety-chain-publisher")

    def process(self, value: bytes, headers: Headers) -> Written:
        self.offset += 1
        return self.process_record(IntakeRecord(value, headers, f"t.signals.intake.v1:0:{self.offset}"))

    def process_record(self, record: IntakeRecord) -> Written:
        """As the Kafka intake does: the pipeline decides, the record writer writes what it
        emitted, and the batch (of one) commits."""
        outcome = self.pipeline.process(record)
        emitted = naming_the_intake_record(outcome.emitted, record.provenance)
        written = Written(outcome.accepted, outcome.rejected, self.writer.records(emitted))
        self.pipeline.commit_pending()
        self.pipeline.committed()
        return written


def rejected(outcome: Written) -> SignalRejected:
    assert outcome.rejected is not None, "expected a rejection"
    assert len(outcome.records) == 1 and outcome.records[0].topic == "t.signals.rejected.v1"
    return outcome.rejected
