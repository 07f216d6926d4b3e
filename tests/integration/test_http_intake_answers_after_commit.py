"""The HTTP intake answers only what a committed Kafka transaction holds, on the real broker.

The signals service runs in this process (its real app, processor and SQLite stores); the
ledger's database is write-locked from outside to make the intake batch abort after its
transform, as a full disk or a lost database connection would.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.kafka import KafkaAccess
from devstack.keys import development_issuer, prepare_development_keys
from services.signals.app import create_app
from services.signals.settings import SignalsSettings
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.events import SignalAccepted
from shared.plumbing.policy import Role
from tests.e2e.stack import read_all
from tests.polling import eventually_async
from tests.unit.test_signal_contract import valid_submission

pytestmark = pytest.mark.kafka


@dataclass
class Signals:
    client: httpx.AsyncClient
    settings: SignalsSettings
    database: Path
    keys: KeyRing
    admin_options: dict[str, Any]  # to read what signals wrote, as the test (the cluster admin)

    async def post(self, document: dict[str, Any], municipality: str = "gm0363") -> httpx.Response:
        token = development_issuer(self.settings.keys_dir).issue(municipality, [Role.PUBLISHER], "signals")
        return await self.client.post(
            "/v1/signals", json=document, headers={"authorization": f"Bearer {token}"}, timeout=60
        )

    async def accepted_ids(self) -> list[str]:
        topic = self.settings.topic("signals.accepted.v1")
        records = await read_all(self.admin_options, topic)
        return [str(SignalAccepted.model_validate_json(r.value).signal_id) for r in records]


@pytest.fixture
async def signals(kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path) -> AsyncIterator[Signals]:
    database = tmp_path / "signals.db"
    settings = SignalsSettings(
        **kafka_access.settings("signals"),
        topic_prefix=kafka_prefix,
        keys_dir=tmp_path / "keys",
        signals_database_url=f"sqlite:///{database}",
        verdict_timeout_seconds=3.0,
    )
    prepare_development_keys(settings.keys_dir, settings.config_dir)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signals") as client:
            yield Signals(
                client,
                settings,
                database,
                KeyRing(settings.keys_dir, generate_missing=True),
                kafka_access.client_options(),
            )


async def accepted(signals: Signals, signal_id: str) -> list[str]:
    """Every signal id accepted, once `signal_id` is among them."""

    async def including_it() -> list[str] | None:
        ids = await signals.accepted_ids()
        return ids if signal_id in ids else None

    return await eventually_async(including_it, what=f"{signal_id} accepted", timeout=60, interval=0.5)


async def test_no_202_for_a_batch_that_aborted_and_the_signal_arrives_once_it_commits(
    signals: Signals,
) -> None:
    # A first signal of the subject goes through (its data key now exists).
    first = await signals.post(valid_submission(signal_id=str(uuid.uuid4())))
    assert first.status_code == 202, first.text

    # The ledger cannot be written: every intake batch aborts after its transform.
    lock = sqlite3.connect(signals.database, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    signal_id = str(uuid.uuid4())
    try:
        answer = await signals.post(valid_submission(signal_id=signal_id))
        # Not "accepted": nothing is committed. A pending verdict, with a time to come back.
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert answer.json()["signal_id"] == signal_id
        assert signal_id not in await signals.accepted_ids()
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    # The stored intake record is retried transparently and accepted exactly once.
    ids = await accepted(signals, signal_id)
    assert ids.count(signal_id) == 1
    # Asking again tells the caller the result of its own signal.
    again = await signals.post(valid_submission(signal_id=signal_id))
    assert again.status_code == 409
    assert again.json()["first_result"]["signal_id"] == signal_id


async def test_a_duplicate_from_another_municipality_does_not_see_the_first_result(
    signals: Signals,
) -> None:
    signal_id = str(uuid.uuid4())
    first = await signals.post(valid_submission(signal_id=signal_id))
    assert first.status_code == 202, first.text

    # gm0518 reuses gm0363's signal id: refused as a duplicate, without gm0363's result.
    other = await signals.post(valid_submission(signal_id=signal_id, municipality="gm0518"), "gm0518")
    assert other.status_code == 409, other.text
    assert other.json()["reason"] == "duplicate"
    assert "first_result" not in other.json()
    assert first.json()["subject_pseudonym"] not in other.text

    # gm0363 itself still gets its first result.
    own = await signals.post(valid_submission(signal_id=signal_id))
    assert own.status_code == 409
    assert own.json()["first_result"]["subject_pseudonym"] == first.json()["subject_pseudonym"]
