"""The partner SDK: verified, decrypted deliveries, acknowledged with signed receipts."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from partner import DeliveryRefused, PartnerClient, PartnerIdentity, ProcessedSignals, ReceivedSignal
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.signing import sign_record, verify_record
from shared.contracts.envelope import Envelope, new_correlation_id
from shared.contracts.events import DeliveryProvenance, ExchangeReceipt, SignalDelivered
from shared.contracts.registry import Registry
from tests.e2e.stack import CONFIG_DIR, Stack, header
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

PARTNER = "veilig-thuis-amsterdam"


def receipts_in_audit(stack: Stack, signal_id: str) -> list[dict[str, Any]] | None:
    found = [r for r in stack.audit_records(signal_id=signal_id) if r["decision"] == "receipt-opened"]
    return found or None


def publish(stack: Stack, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = stack.post_signal(domestic_violence_signal(signal_id=str(uuid.uuid4())))
        assert response.status_code == 202
        ids.append(response.json()["signal_id"])
    return ids


def test_the_sdk_hands_over_each_delivery_once_and_signs_a_receipt_for_it(stack: Stack) -> None:
    # Three signals reach Veilig Thuis.
    ids = publish(stack, 3)
    client = stack.partner(PARTNER)
    own_ids = {stack.delivery_id(PARTNER, signal_id) for signal_id in ids}  # the partner's own ids
    eventually(lambda: {d.delivery_id for d in stack.deliveries(PARTNER)} >= own_ids or None)

    # The partner's application processes its deliveries through the SDK.
    handled: list[ReceivedSignal] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal)

    asyncio.run(client.process(handle, wait_seconds=5))
    assert own_ids <= {signal.delivery_id for signal in handled}
    assert all(signal.data["category"] == "huiselijk_geweld" for signal in handled)

    # A second run continues after the acknowledged ones: nothing is handed over twice.
    again: list[ReceivedSignal] = []

    async def handle_again(signal: ReceivedSignal) -> None:
        again.append(signal)

    asyncio.run(client.process(handle_again, wait_seconds=2))
    assert not {s.delivery_id for s in again} & own_ids

    # Each delivery has a receipt signed by the partner, and the audit log holds it as genuine.
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    partner_key = Registry.load(CONFIG_DIR, keys).ed25519_public(PARTNER)
    receipts = {}
    for record in stack.read_topic("exchange.receipts.v1"):
        verify_record([partner_key], record.value, list(record.headers))
        receipt = ExchangeReceipt.model_validate_json(record.value)
        receipts[str(receipt.delivery_id)] = receipt
    assert all(receipts[delivery_id].status == "opened" for delivery_id in own_ids)
    # The audit log leads from each signal to its delivery's receipt (the partner named neither).
    for signal_id in ids:
        trail = eventually(partial(receipts_in_audit, stack, signal_id))
        assert trail[0]["source"] == PARTNER
    # ... and counts them per partner and status (at /metrics: no ids, no pseudonyms)
    scraped = httpx.get(f"{stack.url('audit')}/metrics", timeout=10).text
    series = f'safetychain_receipts_total{{partner="{PARTNER}",status="opened"}}'
    counted = next(line for line in scraped.splitlines() if line.startswith(series + " "))
    assert float(counted.rsplit(" ", 1)[1]) >= len(ids)


def test_processed_signals_are_not_handed_over_again_after_a_crash(stack: Stack) -> None:
    # The application handled a delivery, then crashed before it was acknowledged.
    [signal_id] = publish(stack, 1)
    delivery = eventually(lambda: stack.delivery_of(PARTNER, signal_id))
    processed = ProcessedSignals(stack.workdir / "processed.db")
    processed.add(delivery.delivery_id)
    base = stack.partner(PARTNER)
    client = PartnerClient(
        base._identity,
        base._consent_key,
        stack.kafka_options(PARTNER),
        stack.prefix,
        group_id=f"{stack.prefix}{PARTNER}.recovering",
        processed=processed,
    )
    handled: list[str] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal.delivery_id)

    # On restart the SDK skips the handler for it, yet acknowledges it.
    asyncio.run(client.process(handle, wait_seconds=4))
    assert delivery.delivery_id not in handled
    eventually(
        lambda: (
            [r for r in stack.audit_records(signal_id=signal_id) if r["decision"] == "receipt-opened"] or None
        )
    )


def test_a_partner_without_the_recipient_key_cannot_read_a_delivery(stack: Stack) -> None:
    [signal_id] = publish(stack, 1)
    delivery = eventually(lambda: stack.delivery_of(PARTNER, signal_id))
    record = next(
        r
        for r in stack.read_topic(f"partner.{PARTNER}.signals.v1")
        if header(r, "ce_deliveryid") == delivery.delivery_id
    )
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    consent_key = Registry.load(CONFIG_DIR, keys).ed25519_public("consent")
    # The RIEC holds its own keys, not Veilig Thuis's: even posing as the recipient it cannot open it.
    intruder = PartnerClient(
        PartnerIdentity(
            PARTNER, keys.x25519_private("riec-amsterdam"), keys.ed25519_private("riec-amsterdam")
        ),
        consent_key,
        stack.kafka_options(PARTNER),
        stack.prefix,
    )
    with pytest.raises(DeliveryRefused):
        intruder.open(record)


def test_a_receipt_signed_by_someone_else_is_logged_as_forged(stack: Stack) -> None:
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    receipt = ExchangeReceipt(
        delivery_id=uuid.uuid4(),
        recipient=PARTNER,
        status="opened",
        delivery=DeliveryProvenance(topic="x", partition=0, offset=0),
        received_at=datetime.now(UTC),
    )
    value = receipt.to_bytes()
    headers = sign_record(
        keys.ed25519_private("riec-amsterdam"),
        value,
        Envelope(
            source=Registry.load(CONFIG_DIR).source(PARTNER),  # the partner's own: only the key is not
            type=ExchangeReceipt.event_type,
            extensions=ExchangeReceipt.envelope_extensions(deliveryid=str(receipt.delivery_id)),
        ).to_headers(),
    )

    async def send() -> None:
        producer = AIOKafkaProducer(**stack.kafka_options())
        await producer.start()
        await producer.send_and_wait(stack.topic("exchange.receipts.v1"), value, headers=headers)
        await producer.stop()

    asyncio.run(send())

    def logged() -> list[dict[str, Any]] | None:
        found = [r for r in stack.audit_records() if r["delivery_id"] == str(receipt.delivery_id)]
        return found or None

    records = eventually(logged)
    assert records[0]["decision"] == "receipt-forged"
    assert records[0]["reasons"][0] == f"not signed by {PARTNER}"
    assert records[0]["source"] == PARTNER  # privacy officers see the organisation, not its URN


CASE_CONFERENCE = (  # config/agreements/zvh-casusoverleg-amsterdam.yaml: each gets other fields
    "zvh-amsterdam",
    "politie-eenheid-amsterdam",
    "om-arrondissement-amsterdam",
    "veilig-thuis-amsterdam",
)


def identifiers(record: ConsumerRecord) -> set[str]:
    """Every value in a delivery record that could name the exchange or the person."""
    delivered = SignalDelivered.model_validate_json(record.value)
    traceparent = header(record, "ce_traceparent") or ""
    named = {
        record.key.decode(),
        header(record, "ce_id"),
        header(record, "ce_subject"),
        header(record, "ce_deliveryid"),
        traceparent.split("-")[1],
        str(delivered.delivery_id),
        delivered.partner_pseudonym,
    }
    return {value for value in named if value}


def test_partners_that_receive_one_signal_share_no_identifier_to_link_their_records(stack: Stack) -> None:
    # A case-conference signal goes to four partners, each with its own fields.
    correlation_id = new_correlation_id()
    signal = domestic_violence_signal(
        category="verward_gedrag",
        purpose="zorg_en_veiligheid_casusoverleg",
        attributes={"danger_to_others": True, "police_code": "E33"},
    )
    response = stack.post_signal(signal, **{"x-correlation-id": correlation_id})
    assert response.status_code == 202, response.text
    signal_id, subject = response.json()["signal_id"], response.json()["subject_pseudonym"]

    def delivered_to(partner: str) -> ConsumerRecord | None:
        own_id = stack.delivery_id(partner, signal_id)
        records = stack.read_topic(f"partner.{partner}.signals.v1")
        return next((r for r in records if header(r, "ce_deliveryid") == own_id), None)

    records = {partner: eventually(partial(delivered_to, partner)) for partner in CASE_CONFERENCE}

    # No platform-wide identifier reaches any partner: not the signal id, not the subject's
    # platform pseudonym, not the trace id of the request, in no header and no value.
    for record in records.values():
        wire = record.value + b"".join(value for _, value in record.headers) + record.key
        for platform_id in (signal_id, subject, correlation_id):
            assert platform_id.encode() not in wire

    # And no two partners hold one identifier in common (key, ids, pseudonyms, trace ids).
    for first, second in itertools.combinations(CASE_CONFERENCE, 2):
        assert identifiers(records[first]).isdisjoint(identifiers(records[second])), (first, second)

    # Each opens its own delivery, with its own fields, and acknowledges it by its own id.
    opened = {partner: stack.delivery_of(partner, signal_id) for partner in CASE_CONFERENCE}
    assert all(delivery is not None for delivery in opened.values())
    for partner in CASE_CONFERENCE:
        asyncio.run(stack.partner(partner).process(_ignore, wait_seconds=2))
    receipts = [r for r in stack.read_topic("exchange.receipts.v1") if signal_id.encode() in r.value]
    assert receipts == []

    # Inside the platform, the audit log still leads from the signal to every delivery and receipt.
    def trail() -> list[dict[str, Any]] | None:
        records = stack.audit_records(signal_id=signal_id)
        receipts = [r for r in records if r["decision"] == "receipt-opened"]
        return records if len(receipts) == len(CASE_CONFERENCE) else None

    delivered = [r for r in eventually(trail) if r["decision"] == "delivered"]
    assert sorted(r["target"] for r in delivered) == sorted(CASE_CONFERENCE)


async def _ignore(signal: ReceivedSignal) -> None:
    return None
