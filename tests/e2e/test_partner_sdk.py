"""The partner SDK: verified, decrypted deliveries, acknowledged with signed receipts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from partner import DeliveryRefused, PartnerClient, PartnerIdentity, ProcessedSignals, ReceivedSignal
from shared.contracts.events import DeliveryProvenance, ExchangeReceipt
from shared.crypto.keys import KeyRing
from shared.crypto.signing import sign_record, verify_record
from shared.envelope import Envelope
from shared.registry import Registry
from tests.e2e.stack import CONFIG_DIR, Stack, eventually, header
from tests.e2e.test_signal_flow import domestic_violence_signal

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
    eventually(lambda: {d.signal_id for d in stack.deliveries(PARTNER)} >= set(ids) or None)

    # The partner's application processes its deliveries through the SDK.
    handled: list[ReceivedSignal] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal)

    asyncio.run(client.process(handle, wait_seconds=5))
    assert set(ids) <= {signal.signal_id for signal in handled}
    assert all(signal.data["category"] == "huiselijk_geweld" for signal in handled)

    # A second run continues after the acknowledged ones: nothing is handed over twice.
    again: list[ReceivedSignal] = []

    async def handle_again(signal: ReceivedSignal) -> None:
        again.append(signal)

    asyncio.run(client.process(handle_again, wait_seconds=2))
    assert not {s.signal_id for s in again} & set(ids)

    # Each delivery has a receipt signed by the partner, and the audit log holds it as genuine.
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    partner_key = Registry.load(CONFIG_DIR, keys).ed25519_public(PARTNER)
    receipts = {}
    for record in stack.read_topic("exchange.receipts.v1"):
        verify_record([partner_key], record.value, list(record.headers))
        receipt = ExchangeReceipt.model_validate_json(record.value)
        receipts[str(receipt.signal_id)] = receipt
    assert all(receipts[signal_id].status == "opened" for signal_id in ids)
    for signal_id in ids:
        trail = eventually(partial(receipts_in_audit, stack, signal_id))
        assert trail[0]["source"] == PARTNER


def test_processed_signals_are_not_handed_over_again_after_a_crash(stack: Stack) -> None:
    # The application handled a delivery, then crashed before it was acknowledged.
    [signal_id] = publish(stack, 1)
    eventually(lambda: any(d.signal_id == signal_id for d in stack.deliveries(PARTNER)) or None)
    processed = ProcessedSignals(stack.workdir / "processed.db")
    processed.add(signal_id)
    base = stack.partner(PARTNER)
    client = PartnerClient(
        base._identity,
        base._consent_key,
        {"bootstrap_servers": stack.bootstrap},
        stack.prefix,
        group_id=f"{stack.prefix}{PARTNER}.recovering",
        processed=processed,
    )
    handled: list[str] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal.signal_id)

    # On restart the SDK skips the handler for it, yet acknowledges it.
    asyncio.run(client.process(handle, wait_seconds=4))
    assert signal_id not in handled
    eventually(
        lambda: (
            [r for r in stack.audit_records(signal_id=signal_id) if r["decision"] == "receipt-opened"] or None
        )
    )


def test_a_partner_without_the_recipient_key_cannot_read_a_delivery(stack: Stack) -> None:
    [signal_id] = publish(stack, 1)
    eventually(lambda: any(d.signal_id == signal_id for d in stack.deliveries(PARTNER)) or None)
    record = next(
        r for r in stack.read_topic(f"partner.{PARTNER}.signals.v1") if header(r, "ce_signalid") == signal_id
    )
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    consent_key = Registry.load(CONFIG_DIR, keys).ed25519_public("consent")
    # The RIEC holds its own keys, not Veilig Thuis's: even posing as the recipient it cannot open it.
    intruder = PartnerClient(
        PartnerIdentity(
            PARTNER, keys.x25519_private("riec-amsterdam"), keys.ed25519_private("riec-amsterdam")
        ),
        consent_key,
        {"bootstrap_servers": stack.bootstrap},
        stack.prefix,
    )
    with pytest.raises(DeliveryRefused):
        intruder.open(record)


def test_a_receipt_signed_by_someone_else_is_logged_as_forged(stack: Stack) -> None:
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    receipt = ExchangeReceipt(
        signal_id=uuid.uuid4(),
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
            source=PARTNER, type=ExchangeReceipt.event_type, extensions={"signalid": str(receipt.signal_id)}
        ).to_headers(),
    )

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
        await producer.start()
        await producer.send_and_wait(stack.topic("exchange.receipts.v1"), value, headers=headers)
        await producer.stop()

    asyncio.run(send())
    records = eventually(lambda: stack.audit_records(signal_id=str(receipt.signal_id)) or None)
    assert records[0]["decision"] == "receipt-forged"
