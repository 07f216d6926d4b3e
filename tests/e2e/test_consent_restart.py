"""A kill -9 of the consent service in the middle of 2,000 signals loses and duplicates nothing.

Consent produces decisions, deliveries and its consumed offsets in one Kafka transaction per
batch, so a SIGKILL between any two steps leaves either the whole batch or none of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.kafka import KafkaAccess
from publisher import IntakePublisher
from shared.contracts.crypto.keys import KeyRing
from tests.conftest import fresh_prefix
from tests.e2e.stack import Stack, header
from tests.e2e.test_signal_flow import ALL_PARTNERS, domestic_violence_signal
from tests.polling import eventually

SIGNALS = 2000
DENIED_EVERY = 4  # every fourth signal is radicalisation: no agreement covers it
VT_TOPIC = "partner.veilig-thuis-amsterdam.signals.v1"


@pytest.fixture(scope="module")
def restart_stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Small batches, so the kill lands between transactions and inside one.
    workdir = tmp_path_factory.mktemp("restart")
    with Stack(kafka_access, fresh_prefix(), workdir, extra_env={"SC_MAX_BATCH": "5"}) as running:
        yield running


def committed(stack: Stack, topic: str) -> int:
    """Committed records on the topic (offsets alone would count transaction markers too)."""
    return len(stack.read_topic(topic))


def signals() -> tuple[list[dict[str, Any]], set[str], set[str]]:
    documents: list[dict[str, Any]] = []
    permitted: set[str] = set()
    denied: set[str] = set()
    for i in range(SIGNALS):
        category = "radicalisering" if i % DENIED_EVERY == 0 else "huiselijk_geweld"
        signal = domestic_violence_signal(
            signal_id=str(uuid.uuid4()),
            category=category,
            subject={"kind": "person", "bsn": "999990019", "name": f"Persoon {i}"},
            attributes={} if category == "radicalisering" else {"children_present": False},
        )
        documents.append(signal)
        (denied if category == "radicalisering" else permitted).add(signal["signal_id"])
    return documents, permitted, denied


def publish_over_kafka(stack: Stack, documents: list[dict[str, Any]]) -> None:
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    publisher = IntakePublisher(
        "gm0363",
        keys.ed25519_private("gm0363"),
        keys.x25519_public("signals"),
        stack.kafka_options("gm0363"),
        stack.prefix,
    )
    asyncio.run(publisher.publish(documents))


def test_killing_consent_mid_stream_of_2000_signals_loses_and_duplicates_nothing(
    restart_stack: Stack,
) -> None:
    stack = restart_stack
    documents, permitted, denied = signals()

    # A municipality publishes 2,000 signals over Kafka; consent starts delivering.
    with ThreadPoolExecutor(1) as background:
        publishing = background.submit(publish_over_kafka, stack, documents)
        eventually(lambda: committed(stack, VT_TOPIC) >= 50, timeout=120, interval=0.1)

        # Consent is killed without warning, mid-stream.
        stack.services["consent"].kill()
        delivered_before_restart = committed(stack, VT_TOPIC)
        assert delivered_before_restart < len(permitted), "the kill came too late to prove anything"
        publishing.result(timeout=300)

    # Consent comes back.
    stack.restart("consent")

    # Every permitted signal is delivered exactly once (read_committed), no denied one at all.
    eventually(lambda: committed(stack, VT_TOPIC) >= len(permitted), timeout=300, interval=2.0)
    expected = {stack.delivery_id("veilig-thuis-amsterdam", signal_id) for signal_id in permitted}
    deliveries = Counter(header(r, "ce_deliveryid") for r in stack.read_topic(VT_TOPIC))
    assert set(deliveries) == expected
    assert max(deliveries.values()) == 1
    for partner in ALL_PARTNERS:
        if partner != "veilig-thuis-amsterdam":
            assert committed(stack, f"partner.{partner}.signals.v1") == 0

    # Each signal is decided once for each candidate partner.
    decisions = Counter(
        (header(r, "ce_signalid"), header(r, "ce_recipient"))
        for r in stack.read_topic("exchange.decisions.v1")
    )
    assert len(decisions) == SIGNALS * len(ALL_PARTNERS)
    assert max(decisions.values()) == 1
    assert {signal for signal, _ in decisions} == permitted | denied

    # The audit log, too, records each delivery once.
    def audited_deliveries() -> list[dict[str, Any]] | None:
        records = stack.audit_records(event_type="nl.safetychain.signal.delivered.v1")  # every page
        return records if len(records) >= len(permitted) else None

    # ~13,500 facts (accepted, five decisions each, deliveries), each a durable append.
    delivered = eventually(audited_deliveries, timeout=300, interval=2.0)
    assert Counter(r["delivery_id"] for r in delivered) == Counter({d: 1 for d in expected})
