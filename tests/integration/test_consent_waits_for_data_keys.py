"""Consent decides only with a subject's data key or its tombstone, never without, on the real broker.

The consent service runs in this process (its real app and processor). The records it reads
come from the real intake pipeline, and the test produces them itself, so it can hold back a
subject's data key while the subject's accepted signal is already there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from devstack.kafka import KafkaAccess
from devstack.keys import prepare_development_keys
from services.consent.app import create_app
from services.consent.enforcement import ERASED
from services.consent.settings import ConsentSettings
from services.consent.state import ConsentState
from services.signals.intake import IntakePipeline, IntakeRecord
from services.signals.keystore import SqlKeyStore
from services.signals.ledger import SqlSignalLedger
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.emitted import Tombstone
from shared.contracts.events import ExchangeDecided, SubjectDataKey, data_key_id
from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.contracts.topics import EXCHANGE_DECISIONS, SIGNALS_ACCEPTED, SUBJECTS_KEYS, partner_topic
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter
from tests.e2e.stack import read_all
from tests.polling import eventually_async
from tests.unit.test_signal_contract import valid_submission

pytestmark = pytest.mark.kafka

RECIPIENT = "veilig-thuis-amsterdam"  # the huiselijk_geweld agreement of config/agreements permits it


@dataclass
class Consent:
    settings: ConsentSettings
    client: httpx.AsyncClient
    pipeline: IntakePipeline
    signals: RecordWriter  # what the signals service writes, as it writes it (the test plays signals)
    producer: AIOKafkaProducer
    admin_options: dict[str, Any]  # to read what consent wrote, as the test (the cluster admin)
    state: ConsentState  # the running app's state views
    offset: int = 0

    def accept(
        self, bsn: str, municipality: str = "gm0363", **overrides: Any
    ) -> tuple[str, OutgoingRecord, OutgoingRecord]:
        """(signal id, data key record, accepted record), as the signals service makes them."""
        signal_id, records = self.accept_records(bsn, municipality, **overrides)
        key_record, accepted_record = records
        return signal_id, key_record, accepted_record

    def accept_records(
        self, bsn: str, municipality: str = "gm0363", **overrides: Any
    ) -> tuple[str, list[OutgoingRecord]]:
        """(signal id, the records the signals service writes of it), as it makes them: its
        transaction commits (the key store and ledger first) before the records are produced."""
        keys = KeyRing(self.settings.keys_dir, generate_missing=True)
        signal_id = str(uuid.uuid4())
        document = valid_submission(
            signal_id=signal_id,
            municipality=municipality,
            subject={"kind": "person", "bsn": bsn, "name": "J. Jansen"},
            **overrides,
        )
        value, headers = intake_record(
            json.dumps(document).encode(),
            Registry.load(self.settings.config_dir).source(municipality),
            keys.ed25519_private(municipality),
            keys.x25519_public("signals"),
        )
        self.offset += 1
        outcome = self.pipeline.process(IntakeRecord(value, headers, f"intake:0:{self.offset}"))
        self.pipeline.commit_pending()
        self.pipeline.committed()
        assert outcome.accepted is not None, outcome.rejected
        return signal_id, self.signals.records(outcome.emitted)

    async def produce(self, record: OutgoingRecord) -> None:
        await self.producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)

    async def decisions(self, signal_id: str) -> list[ExchangeDecided]:
        records = await read_all(self.admin_options, self.settings.topic(EXCHANGE_DECISIONS.name))
        decided = [ExchangeDecided.model_validate_json(r.value) for r in records]
        return [d for d in decided if str(d.signal_id) == signal_id]

    async def decided(self, signal_id: str) -> dict[str, ExchangeDecided]:
        """Consent's decisions on the signal, by recipient, once it wrote them (all in one
        transaction)."""
        decisions = await eventually_async(
            lambda: self.decisions(signal_id),
            what=f"consent's decision on {signal_id}",
            timeout=60,
            interval=0.5,
        )
        return {d.recipient: d for d in decisions}

    async def ready(self) -> bool:
        return (await self.client.get("/readyz")).status_code == 200


@pytest.fixture
async def consent(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path, project_config_dir: Path
) -> AsyncIterator[Consent]:
    settings = ConsentSettings(
        **kafka_access.settings("consent"), topic_prefix=kafka_prefix, keys_dir=tmp_path / "keys"
    )
    prepare_development_keys(settings.keys_dir, project_config_dir)
    keys = KeyRing(settings.keys_dir, generate_missing=True)  # the test plays signals and gm0363
    registry = Registry.load(project_config_dir, keys)
    database = f"sqlite:///{tmp_path / 'signals.db'}"
    pipeline = IntakePipeline(
        registry,
        keys.secret("subject-pseudonyms"),
        SqlKeyStore(database, keys.secret("key-encryption-key")),
        SqlSignalLedger(database),
        keys.ed25519_private("signals").public_key(),
        keys.x25519_private("signals"),
    )
    signals = RecordWriter(keys.ed25519_private("signals"), registry.source("signals"), settings.topic_prefix)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        producer = AIOKafkaProducer(**kafka_access.client_options("signals"), acks="all")
        await producer.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://c"
            ) as client:
                yield Consent(
                    settings,
                    client,
                    pipeline,
                    signals,
                    producer,
                    kafka_access.client_options(),
                    app.state.state,
                )
        finally:
            await producer.stop()


async def test_a_held_back_data_key_delays_the_decision_and_never_becomes_an_erasure(
    consent: Consent,
) -> None:
    signal_id, key_record, accepted_record = consent.accept("999990019")

    # The accepted signal arrives; its subject's data key does not (a slow or lagging keys topic).
    await consent.produce(accepted_record)
    # retried, not decided: consent turns unready
    await eventually_async(lambda: _not(consent.ready), what="consent unready", timeout=60, interval=0.5)
    assert await consent.decisions(signal_id) == []

    # The key appears: the signal is decided and delivered, and consent is ready again.
    await consent.produce(key_record)
    decisions = await consent.decided(signal_id)
    assert decisions[RECIPIENT].decision == "permit"
    assert not any(ERASED in reason for d in decisions.values() for reason in d.reasons)
    await eventually_async(consent.ready, what="consent ready again", timeout=60, interval=0.5)
    deliveries = await read_all(consent.admin_options, consent.settings.topic(partner_topic(RECIPIENT).name))
    assert len(deliveries) == 1


async def test_an_erased_subject_is_still_denied_as_erased(consent: Consent) -> None:
    signal_id, key_record, accepted_record = consent.accept("111222333")
    subject = accepted_record.key.decode()

    # The key was issued and then destroyed (its tombstone) before consent reads the signal.
    await consent.produce(key_record)
    # ... as the signals service destroys it: a tombstone it signed for this subject's gm0363 key.
    tombstone = Tombstone(
        SubjectDataKey,
        key=data_key_id(subject, "gm0363"),
        subject=subject,
        extensions={"municipality": "gm0363"},
    )
    await consent.produce(consent.signals.record(tombstone))
    await consent.produce(accepted_record)

    decisions = await consent.decided(signal_id)
    assert decisions[RECIPIENT].decision == "deny"
    assert ERASED in decisions[RECIPIENT].reasons
    assert all(d.decision == "deny" for d in decisions.values())
    assert await read_all(consent.admin_options, consent.settings.topic(partner_topic(RECIPIENT).name)) == []


async def test_an_existing_subjects_second_signal_carries_no_data_key_and_is_still_decided(
    consent: Consent,
) -> None:
    # The subject's first signal brings its data key along; consent decides it.
    first, key_record, accepted_record = consent.accept("999990019")
    await consent.produce(key_record)
    await consent.produce(accepted_record)
    assert (await consent.decided(first))[RECIPIENT].decision == "permit"

    # The second signal about the subject is written without a data-key record ...
    second, records = consent.accept_records("999990019")
    assert [record.topic for record in records] == [consent.settings.topic(SIGNALS_ACCEPTED.name)]
    await consent.produce(records[0])

    # ... and consent decides it with the key the first one brought, as it decided the first.
    decisions = await consent.decided(second)
    assert decisions[RECIPIENT].decision == "permit"
    assert not any(ERASED in reason for d in decisions.values() for reason in d.reasons)
    deliveries = await read_all(consent.admin_options, consent.settings.topic(partner_topic(RECIPIENT).name))
    assert len(deliveries) == 2
    keys = await read_all(consent.admin_options, consent.settings.topic(SUBJECTS_KEYS.name))
    assert len(keys) == 1
    assert await consent.ready()


async def _not(probe: Callable[[], Awaitable[bool]]) -> bool:
    return not await probe()
