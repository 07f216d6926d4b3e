"""Consent believes its state topics only where their writer signed them (real broker, real
services): an injected agreement and a forged data-key tombstone change nothing, and the audit
log flags the injected agreement as a forgery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.agreements import Agreement, AgreementPublished, AgreementStatus
from shared.contracts.events import SubjectDataKey
from shared.envelope import Envelope
from shared.policy import Role
from shared.registry import Registry
from tests.e2e.stack import CONFIG_DIR, Stack, eventually
from tests.e2e.test_signal_flow import domestic_violence_signal

DV = "huiselijk-geweld-amsterdam"
VT = "veilig-thuis-amsterdam"


def inject(stack: Stack, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(stack.topic(topic), value, key=key.encode(), headers=headers)
        finally:
            await producer.stop()

    asyncio.run(send())


def current_agreement(stack: Stack) -> dict[str, Any]:
    response = httpx.get(
        f"{stack.url('consent')}/v1/agreements/{DV}",
        headers=stack.bearer("safety-chain", Role.PRIVACY_OFFICER),
        timeout=30,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def delivered(stack: Stack, **overrides: Any) -> dict[str, Any]:
    response = stack.post_signal(domestic_violence_signal(**overrides))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    eventually(lambda: stack.delivery_of(VT, body["signal_id"]))
    return body


def test_an_unsigned_agreement_on_its_topic_is_ignored_and_flagged(stack: Stack) -> None:
    before = current_agreement(stack)
    forged = AgreementPublished(
        agreement=Agreement.model_validate(
            {**before, "version": before["version"] + 1, "status": AgreementStatus.SUSPENDED.value}
        ),
        published_by="gm0363",
        published_at=datetime.now(UTC),
    )
    headers = Envelope(
        source=Registry.load(CONFIG_DIR).source("consent"), type=AgreementPublished.event_type
    ).to_headers()
    inject(stack, "consent.agreements.v1", DV, forged.to_bytes(), headers)

    # Consent still holds the signed version, and signals still flow under it.
    delivered(stack)
    assert current_agreement(stack) == before

    # The audit log took the injected record in as a forgery, never as an agreement change.
    def flagged() -> list[dict[str, Any]]:
        return [
            r
            for r in stack.audit_records(event_type=AgreementPublished.event_type)
            if r["agreement_version"] == before["version"] + 1
        ]

    (record,) = eventually(flagged)
    assert record["decision"] == "forged" and "claimed agreement-suspended" in record["reasons"]


def test_a_forged_data_key_tombstone_erases_nobody(stack: Stack) -> None:
    first = delivered(stack)
    subject = first["subject_pseudonym"]
    # Unsigned, as anyone who can write the topic could send it.
    headers = Envelope(
        source=Registry.load(CONFIG_DIR).source("signals"), type=SubjectDataKey.event_type, subject=subject
    ).to_headers()
    inject(stack, "subjects.keys.v1", subject, None, headers)

    # The subject's next signal is still decided with its key and delivered, not denied as erased.
    second = delivered(stack)
    assert second["subject_pseudonym"] == subject
    decisions = [
        r
        for r in stack.audit_records(signal_id=second["signal_id"])
        if r["event_type"].endswith("decided.v1") and r["target"] == VT
    ]
    assert decisions and decisions[0]["decision"] == "permit"
