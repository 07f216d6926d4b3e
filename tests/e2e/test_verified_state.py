"""Consent believes what it reads only where the writer signed it (real broker, real services):
an injected agreement, a forged data-key tombstone and an accepted signal signed by someone else
change nothing, and the audit log flags them as forgeries.

The broker's ACLs already keep everyone but the topic's own writer off these topics
(tests/integration/test_kafka_authorisation.py); the records here are injected with that
writer's Kafka credential, as a compromised or buggy writer would: the signature check is the
second wall."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.agreements import Agreement, AgreementPublished, AgreementStatus, PartySignature
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.signing import sign_record
from shared.contracts.envelope import Envelope
from shared.contracts.events import SubjectDataKey, data_key_id
from shared.contracts.registry import Registry
from shared.plumbing.policy import Role
from tests.e2e.stack import CONFIG_DIR, Stack, header
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

DV = "huiselijk-geweld-amsterdam"
VT = "veilig-thuis-amsterdam"


Headers = list[tuple[str, bytes]]


def inject(
    stack: Stack, topic: str, key: str, value: bytes | None, headers: Headers, as_principal: str
) -> str:
    """Write one record with `as_principal`'s Kafka credential; returns `topic[partition]@offset`."""

    async def send() -> str:
        producer = AIOKafkaProducer(**stack.kafka_options(as_principal), acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(stack.topic(topic), value, key=key.encode(), headers=headers)
            return f"{stack.topic(topic)}[{sent.partition}]@{sent.offset}"
        finally:
            await producer.stop()

    return asyncio.run(send())


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
    # It even carries the parties' genuine signatures of the version in force, copied.
    proof = httpx.get(
        f"{stack.url('consent')}/v1/agreements/{DV}/signatures",
        headers=stack.bearer("safety-chain", Role.PRIVACY_OFFICER),
        timeout=30,
    )
    proof.raise_for_status()
    forged = AgreementPublished(
        agreement=Agreement.model_validate(
            {**before, "version": before["version"] + 1, "status": AgreementStatus.SUSPENDED.value}
        ),
        published_by="gm0363",
        published_at=datetime.now(UTC),
        approved=Agreement.model_validate(proof.json()["approved"]),
        signatures=tuple(PartySignature.model_validate(s) for s in proof.json()["signatures"]),
    )
    headers = Envelope(
        source=Registry.load(CONFIG_DIR).source("consent"), type=AgreementPublished.event_type
    ).to_headers()
    inject(stack, "consent.agreements.v1", DV, forged.to_bytes(), headers, as_principal="consent")

    # Consent still holds the signed version, and signals still flow under it.
    delivered(stack)
    assert current_agreement(stack) == before

    # The audit log took the injected record in as a forgery, never as an agreement change.
    def flagged() -> list[dict[str, Any]]:
        return [
            r
            for r in stack.audit_records(event_type=AgreementPublished.event_type)
            if r["agreement_id"] == DV and r["agreement_version"] == before["version"] + 1
        ]

    (record,) = eventually(flagged)
    assert record["decision"] == "forged" and "claimed agreement-suspended" in record["reasons"]


def test_a_forged_data_key_tombstone_erases_nobody(stack: Stack) -> None:
    first = delivered(stack)
    subject = first["subject_pseudonym"]
    # Unsigned, as anyone who can write the topic could send it, for gm0363's key of the subject.
    headers = Envelope(
        source=Registry.load(CONFIG_DIR).source("signals"),
        type=SubjectDataKey.event_type,
        subject=subject,
        extensions=SubjectDataKey.envelope_extensions(municipality="gm0363"),
    ).to_headers()
    inject(stack, "subjects.keys.v1", data_key_id(subject, "gm0363"), None, headers, as_principal="signals")

    # The subject's next signal is still decided with its key and delivered, not denied as erased.
    second = delivered(stack)
    assert second["subject_pseudonym"] == subject
    decisions = [
        r
        for r in stack.audit_records(signal_id=second["signal_id"])
        if r["event_type"].endswith("decided.v1") and r["target"] == VT
    ]
    assert decisions and decisions[0]["decision"] == "permit"


def test_an_accepted_signal_signed_by_anyone_but_signals_is_dead_lettered_and_never_decided(
    stack: Stack,
) -> None:
    genuine = delivered(stack)
    record = next(
        r for r in stack.read_topic("signals.accepted.v1") if header(r, "ce_signalid") == genuine["signal_id"]
    )
    # The same accepted signal under a new id, signed with a municipality's genuine key.
    forged_id = str(uuid.uuid4())
    value = (record.value or b"").replace(genuine["signal_id"].encode(), forged_id.encode())
    unsigned = [
        (name, forged_id.encode() if name == "ce_signalid" else raw)
        for name, raw in record.headers
        if not name.startswith("ce_signature")
    ]
    municipality_key = KeyRing(stack.keys_dir, generate_missing=False).ed25519_private("gm0363")
    signed = sign_record(municipality_key, value, unsigned)
    where = inject(stack, "signals.accepted.v1", (record.key or b"").decode(), value, signed, "signals")

    # Consent dead-letters it (channel consent; an untrusted record's ids are not repeated, its
    # position is), and the audit log flags it as forged.
    def dead_letter() -> list[dict[str, Any]]:
        return [
            letter
            for r in stack.read_topic("signals.rejected.v1")
            if (letter := json.loads(r.value or b"{}"))["channel"] == "consent"
            and letter["errors"][0]["message"].startswith(f"{where}:")
        ]

    (letter,) = eventually(dead_letter)
    assert letter["reason"] == "unknown_key" and letter["signal_id"] is None, letter

    def flagged() -> list[dict[str, Any]]:
        return [
            r
            for r in stack.audit_records()
            if f"{r['kafka_topic']}[{r['kafka_partition']}]@{r['kafka_offset']}" == where
        ]

    (fact,) = eventually(flagged)
    assert fact["decision"] == "forged", fact

    # Never decided, never delivered; the genuine signal's decisions are untouched.
    decided = {header(r, "ce_signalid") for r in stack.read_topic("exchange.decisions.v1")}
    assert forged_id not in decided and genuine["signal_id"] in decided
