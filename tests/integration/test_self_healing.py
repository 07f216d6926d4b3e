"""Each service, on the real broker, in this process: /healthz answers 200 while its loops run
and 503 naming the loop once one has stopped, so the orchestrator restarts the process; its
/metrics carries the loop's and the exchange's series, and nothing that names a person."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devstack.kafka import KafkaAccess
from devstack.keys import development_issuer, prepare_development_keys
from services.audit.app import create_app as audit_app
from services.audit.settings import AuditSettings
from services.consent.app import create_app as consent_app
from services.consent.settings import ConsentSettings
from services.signals.app import create_app as signals_app
from services.signals.settings import SignalsSettings
from shared.plumbing.policy import Role
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import DEAD_AFTER_FAILURES, TransactionalProcessor
from tests.polling import eventually_async
from tests.unit.test_signal_contract import valid_submission

pytestmark = pytest.mark.kafka


def settings_of(service: str, access: KafkaAccess, prefix: str, folder: Path) -> CommonSettings:
    common: dict[str, Any] = {**access.settings(service), "topic_prefix": prefix, "keys_dir": folder / "keys"}
    if service == "signals":
        return SignalsSettings(**common, signals_database_url=f"sqlite:///{folder / 'signals.db'}")
    if service == "consent":
        return ConsentSettings(**common)
    return AuditSettings(**common, audit_database_url=f"sqlite:///{folder / 'audit.db'}")


APPS: dict[str, Callable[[Any], FastAPI]] = {
    "signals": signals_app,
    "consent": consent_app,
    "audit": audit_app,
}
LOOPS = {"signals": "intake", "consent": "loop", "audit": "checkpoints"}
SERIES = {  # what each service's /metrics shows from its start
    "signals": ['safetychain_seconds_since_last_commit{processor="signals"}'],
    "consent": [
        'safetychain_seconds_since_last_commit{processor="consent"}',
        'safetychain_state_view_lag_records{view="consent.agreements.v1"} 0.0',
        'safetychain_state_view_lag_records{view="subjects.keys.v1"} 0.0',
    ],
    "audit": ["safetychain_audit_checkpoints_total"],
}


async def running(service: str, settings: CommonSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = APPS[service](settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as client:
            yield app, client


@pytest.mark.parametrize("service", sorted(APPS))
async def test_health_turns_unhealthy_when_the_loop_stops(
    service: str, kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    settings = settings_of(service, kafka_access, kafka_prefix, tmp_path)
    prepare_development_keys(settings.keys_dir, settings.config_dir)
    async for app, client in running(service, settings):
        healthy = await client.get("/healthz")
        assert healthy.status_code == 200, healthy.text
        scraped = (await client.get("/metrics")).text
        assert all(series in scraped for series in SERIES[service]), scraped
        assert healthy.json()["checks"][LOOPS[service]] is True
        task: asyncio.Task[None] = app.state.loop_tasks[LOOPS[service]]
        task.cancel()  # as a crash ends it
        await asyncio.wait([task], timeout=10)
        dead = await client.get("/healthz")
        assert dead.status_code == 503, dead.text
        assert dead.json() == {"status": "dead", "checks": dead.json()["checks"]}
        assert dead.json()["checks"][LOOPS[service]] is False


async def test_signals_metrics_count_what_committed_and_name_no_one(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    settings = settings_of("signals", kafka_access, kafka_prefix, tmp_path)
    prepare_development_keys(settings.keys_dir, settings.config_dir)
    token = development_issuer(settings.keys_dir).issue("gm0363", [Role.PUBLISHER], "signals")
    async for _, client in running("signals", settings):
        before = await client.get("/metrics")
        accepted_before = _value(before.text, 'safetychain_signals_total{outcome="accepted",reason=""}')
        document = valid_submission()
        answer = await client.post("/v1/signals", json=document, headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 202, answer.text
        bad = {**valid_submission(), "category": "no-such-category"}
        refused = await client.post("/v1/signals", json=bad, headers={"authorization": f"Bearer {token}"})
        assert refused.status_code == 422
        scraped = (await client.get("/metrics")).text
        assert (
            _value(scraped, 'safetychain_signals_total{outcome="accepted",reason=""}') == accepted_before + 1
        )
        assert re.search(r'safetychain_signals_total\{outcome="rejected",reason="[a-z_]+"\} [1-9]', scraped)
        assert re.search(
            r'safetychain_batches_total\{outcome="committed",processor="signals"\} [1-9]', scraped
        )
        assert 'safetychain_seconds_since_last_commit{processor="signals"}' in scraped
        lag = 'safetychain_consumer_lag_records{consumer="signals",topic="signals.intake.v1"}'
        # measured every few seconds
        scraped = await eventually_async(
            partial(_metrics_with, client, lag), what=f"{lag} in /metrics", timeout=30, interval=1
        )
        assert _value(scraped, lag) >= 0
        keystore = 'safetychain_store_seconds_count{operation="data_key",store="keystore"}'
        assert _value(scraped, keystore) >= 1
        # no pseudonym, signal id or BSN in any label or value
        assert answer.json()["signal_id"] not in scraped and answer.json()["subject_pseudonym"] not in scraped
        assert document["subject"]["bsn"] not in scraped
        assert not re.search(r'"[0-9a-f]{32}"', scraped)
        assert not re.search(r'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', scraped)


async def _metrics_with(client: httpx.AsyncClient, series: str) -> str | None:
    """The service's metrics, once they hold `series`."""
    text = (await client.get("/metrics")).text
    return text if series in text else None


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_loop_that_keeps_failing_is_no_longer_alive(kafka_access: KafkaAccess) -> None:
    def transform(record: Any) -> list[Any]:
        return []

    processor = TransactionalProcessor(
        CommonSettings(**kafka_access.settings("signals")),
        name=f"test-{uuid.uuid4().hex[:6]}",
        topics=["t"],
        transactional_id="t",
        transform=transform,
    )
    assert processor.alive
    processor._failures_in_a_row = DEAD_AFTER_FAILURES - 1
    assert processor.alive and not processor.ready
    processor._failures_in_a_row = DEAD_AFTER_FAILURES
    assert not processor.alive
