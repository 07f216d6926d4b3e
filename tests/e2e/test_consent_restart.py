"""A crash of the consent service mid-stream loses and duplicates no delivery.

Consent produces decisions, deliveries and its consumed offsets in one Kafka transaction per
batch, so a SIGKILL between any two steps leaves either the whole batch or none of it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import fresh_prefix
from tests.e2e.stack import Stack, eventually, header
from tests.e2e.test_signal_flow import domestic_violence_signal

SIGNALS = 300
PARTNERS = 5


@pytest.fixture(scope="module")
def small_batch_stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One signal per transaction, so the kill lands between transactions and inside one.
    running = Stack(
        kafka_bootstrap, fresh_prefix(), tmp_path_factory.mktemp("restart"), extra_env={"SC_MAX_BATCH": "1"}
    ).start()
    try:
        yield running
    finally:
        running.stop()


def committed_deliveries(stack: Stack, topic: str) -> int:
    """Committed records on the topic (offsets alone would count transaction markers too)."""
    return len(stack.read_topic(topic))


def publish_many(stack: Stack, count: int) -> list[str]:
    documents = [
        domestic_violence_signal(
            signal_id=str(uuid.uuid4()),
            subject={"kind": "person", "bsn": "999990019", "name": f"Persoon {i}"},
        )
        for i in range(count)
    ]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(stack.post_signal, documents))
    assert all(r.status_code == 202 for r in responses), {r.status_code for r in responses}
    return [d["signal_id"] for d in documents]


def test_killing_consent_mid_stream_loses_and_duplicates_no_delivery(small_batch_stack: Stack) -> None:
    stack = small_batch_stack
    partner_topic = "partner.veilig-thuis-amsterdam.signals.v1"

    # Municipalities keep publishing; consent starts delivering.
    with ThreadPoolExecutor(1) as background:
        publishing = background.submit(publish_many, stack, SIGNALS)
        eventually(lambda: committed_deliveries(stack, partner_topic) >= 10, interval=0.05)

        # Consent is killed without warning, mid-stream, while signals keep arriving.
        stack.services["consent"].kill()
        assert not publishing.done(), "the kill came too late to prove anything"
        delivered_before_restart = committed_deliveries(stack, partner_topic)
        assert delivered_before_restart < SIGNALS
        published = publishing.result(timeout=300)

    # Consent comes back after the last signal was accepted.
    stack.restart("consent")

    # Every signal is delivered exactly once (read_committed), and decided once per partner.
    eventually(lambda: committed_deliveries(stack, partner_topic) >= SIGNALS, timeout=120, interval=1.0)
    deliveries = Counter(header(r, "ce_signalid") for r in stack.read_topic(partner_topic))
    assert set(deliveries) == set(published)
    assert max(deliveries.values()) == 1
    decisions = Counter(
        (header(r, "ce_signalid"), header(r, "ce_recipient"))
        for r in stack.read_topic("exchange.decisions.v1")
    )
    assert len(decisions) == SIGNALS * PARTNERS
    assert max(decisions.values()) == 1

    # The audit log, too, records each delivery once.
    def audited_deliveries() -> list[dict[str, Any]] | None:
        records = [r for r in stack.audit_records() if r["event_type"].endswith("delivered.v1")]
        return records if len(records) >= SIGNALS else None

    delivered = eventually(audited_deliveries, timeout=60)
    assert Counter(r["signal_id"] for r in delivered) == Counter({s: 1 for s in published})
