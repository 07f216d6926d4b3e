"""What the audit log keeps of a Kafka record: metadata only, and every writer's word checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.log.facts import UnreadableRecordError, fact_from_record
from services.audit.log.ingest import registry_sources
from shared.contracts.crypto.signing import SignatureError, sign_record, verify_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import (
    DeliveryProvenance,
    ExchangeReceipt,
    SealedPayload,
    SignalDelivered,
    SubjectErased,
)
from shared.contracts.registry import Registry
from shared.plumbing.settings import PROJECT_ROOT

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
REGISTRY = Registry.load(PROJECT_ROOT / "config")
SOURCES = registry_sources(REGISTRY)  # ce_source (urn:nld:oin:...) -> organisation, as audit maps it


def src(organisation: str) -> str:
    """The CloudEvents source `organisation` writes its records with."""
    return REGISTRY.source(organisation)


def receipt_record() -> tuple[bytes, Headers]:
    receipt = ExchangeReceipt(
        delivery_id=uuid.uuid4(),
        recipient="veilig-thuis-amsterdam",
        status="opened",
        agreement_id="huiselijk-geweld-amsterdam",
        agreement_version=1,
        partner_pseudonym="a" * 32,
        delivery=DeliveryProvenance(topic="partner.veilig-thuis-amsterdam.signals.v1", partition=0, offset=3),
        received_at=NOW,
    )
    envelope = Envelope(source=src("veilig-thuis-amsterdam"), type=ExchangeReceipt.event_type, time=NOW)
    return receipt.to_bytes(), envelope.to_headers()


@pytest.mark.parametrize(
    ("check", "decision"),
    [(True, "receipt-opened"), (False, "receipt-forged"), (None, "receipt-unverifiable")],
)
def test_a_receipt_is_logged_as_genuine_forged_or_unverifiable(check: bool | None, decision: str) -> None:
    value, headers = receipt_record()
    fact = fact_from_record("exchange.receipts.v1", 0, 9, headers, value, lambda *_: check, sources=SOURCES)
    assert fact.decision == decision
    assert fact.source == "veilig-thuis-amsterdam"
    assert (fact.kafka_topic, fact.kafka_partition, fact.kafka_offset) == ("exchange.receipts.v1", 0, 9)


def test_a_record_of_an_unknown_type_is_unreadable_without_echoing_its_content() -> None:
    headers = Envelope(source=src("consent"), type="nl.safetychain.unknown.v1").to_headers()
    with pytest.raises(UnreadableRecordError) as raised:
        fact_from_record("t", 0, 0, headers, b'{"bsn": "999990019"}')
    assert "999990019" not in str(raised.value)


def test_a_record_without_an_envelope_is_unreadable() -> None:
    with pytest.raises(UnreadableRecordError):
        fact_from_record("t", 0, 0, [], b"{}")


# --- Every record is checked against the key of the party that must have written it ------------

KEYS = {org: Ed25519PrivateKey.generate() for org in ("signals", "consent", "veilig-thuis-amsterdam")}
WITHOUT_KEY = "politie-eenheid-amsterdam"  # known, but no public key configured here


def signed_by(organisation: str, value: bytes, headers: Headers) -> bool | None:
    """As services.audit.log.ingest.registry_signature_check does it with the registry."""
    if organisation == WITHOUT_KEY:
        return None
    if organisation not in KEYS:
        return False
    try:
        verify_record([KEYS[organisation].public_key()], value, headers)
    except SignatureError:
        return False
    return True


def delivery(recipient: str = "veilig-thuis-amsterdam") -> SignalDelivered:
    return SignalDelivered(
        delivery_id=uuid.uuid4(),
        municipality="gm0363",
        recipient=recipient,
        agreement_id="huiselijk-geweld-amsterdam",
        agreement_version=1,
        purpose="veiligheid_huiselijk_geweld",
        legal_basis="Wmo 2015 art. 5.2.6",
        retention_days=365,
        fields=("category",),
        partner_pseudonym="b" * 32,
        payload=SealedPayload(recipient=recipient, ciphertext="c2VhbGVk"),
        delivered_at=NOW,
    )


def delivery_record(source: str = "consent", signer: str = "consent") -> tuple[bytes, Headers]:
    event = delivery()
    envelope = Envelope(
        source=src(source),
        type=SignalDelivered.event_type,
        time=NOW,
        subject=event.partner_pseudonym,
        extensions=SignalDelivered.envelope_extensions(
            deliveryid=str(event.delivery_id),
            recipient=event.recipient,
            agreementid=event.agreement_id,
            agreementversion=str(event.agreement_version),
            purpose=event.purpose,
            legalbasis=event.legal_basis,
            retentiondays=str(event.retention_days),
        ),
    )
    value = event.to_bytes()
    return value, sign_record(KEYS[signer], value, envelope.to_headers())


def erased_record(signer: str = "signals") -> tuple[bytes, Headers]:
    event = SubjectErased(
        subject_pseudonym="c" * 32,
        municipality="gm0363",
        requested_by="gm0363",
        erased_at=NOW,
        had_data_key=True,
    )
    envelope = Envelope(source=src("signals"), type=SubjectErased.event_type, time=NOW, subject="c" * 32)
    value = event.to_bytes()
    return value, sign_record(KEYS[signer], value, envelope.to_headers())


def test_a_delivery_signed_by_consent_is_logged_as_delivered() -> None:
    value, headers = delivery_record()
    fact = fact_from_record(
        "partner.veilig-thuis-amsterdam.signals.v1", 0, 1, headers, value, signed_by, sources=SOURCES
    )
    assert fact.decision == "delivered" and fact.purpose == "veiligheid_huiselijk_geweld"


@pytest.mark.parametrize(
    "tamper",
    ["changed-purpose", "dropped-retentiondays", "added-header", "changed-time", "dropped-time"],
)
def test_a_delivery_whose_headers_were_tampered_with_is_logged_as_forged(tamper: str) -> None:
    value, headers = delivery_record()
    if tamper == "changed-purpose":
        headers = [(n, b"marketing" if n == "ce_purpose" else v) for n, v in headers]
    elif tamper == "dropped-retentiondays":
        headers = [(n, v) for n, v in headers if n != "ce_retentiondays"]
    elif tamper == "added-header":
        headers = [*headers, ("ce_onwardrecipient", b"riec-amsterdam")]
    elif tamper == "changed-time":
        headers = [(n, b"2026-11-28T12:00:01+00:00" if n == "ce_time" else v) for n, v in headers]
    else:
        headers = [(n, v) for n, v in headers if n != "ce_time"]
    fact = fact_from_record(
        "partner.veilig-thuis-amsterdam.signals.v1", 0, 1, headers, value, signed_by, sources=SOURCES
    )
    assert fact.decision == "forged"
    assert fact.reasons[:2] == ("not signed by consent", "claimed delivered")


def test_a_record_signed_by_a_service_that_may_not_write_it_is_logged_as_forged() -> None:
    # signals has a genuine key, but deliveries are consent's to write.
    value, headers = delivery_record(source="signals", signer="signals")
    fact = fact_from_record(
        "partner.veilig-thuis-amsterdam.signals.v1", 0, 1, headers, value, signed_by, sources=SOURCES
    )
    assert fact.decision == "forged"
    assert fact.reasons[0] == f"ce_source signals may not write {SignalDelivered.event_type}"


def test_a_record_that_names_its_writer_but_carries_another_key_is_logged_as_forged() -> None:
    value, headers = erased_record(signer="consent")
    fact = fact_from_record("subjects.erasure.v1", 0, 1, headers, value, signed_by, sources=SOURCES)
    assert fact.decision == "forged"


def test_an_erasure_signed_by_signals_is_logged_as_an_erasure() -> None:
    value, headers = erased_record()
    assert (
        fact_from_record("subjects.erasure.v1", 0, 1, headers, value, signed_by, sources=SOURCES).decision
        == "erased"
    )


def test_a_receipt_by_a_partner_whose_key_is_not_configured_is_unverifiable_not_forged() -> None:
    receipt = ExchangeReceipt(
        delivery_id=uuid.uuid4(),
        recipient=WITHOUT_KEY,
        status="opened",
        delivery=DeliveryProvenance(topic=f"partner.{WITHOUT_KEY}.signals.v1", partition=0, offset=3),
        received_at=NOW,
    )
    headers = Envelope(source=src(WITHOUT_KEY), type=ExchangeReceipt.event_type, time=NOW).to_headers()
    fact = fact_from_record(
        "exchange.receipts.v1", 0, 1, headers, receipt.to_bytes(), signed_by, sources=SOURCES
    )
    assert fact.decision == "receipt-unverifiable"


def test_a_receipt_in_the_name_of_another_partner_is_forged() -> None:
    value, headers = receipt_record()
    headers = [(n, src("riec-amsterdam").encode() if n == "ce_source" else v) for n, v in headers]
    fact = fact_from_record("exchange.receipts.v1", 0, 1, headers, value, signed_by, sources=SOURCES)
    assert fact.decision == "receipt-forged"


@pytest.mark.parametrize(
    "source",
    [
        b"consent",  # an organisation id, as sources were before the NL GOV profile
        b"urn:nld:oin:12345678901234567890:systeem:consent",  # a system name, an unknown OIN
        b"urn:nld:oin:00000001002564440000:systeem:consent",  # a known OIN, not its system
        b"",
    ],
)
def test_a_record_whose_source_names_no_registered_organisation_is_forged(source: bytes) -> None:
    """Even signed with the genuine writer's key: the source is signed, so it is the writer's
    word, and a word that names no organisation is not believed."""
    value, headers = delivery_record()
    headers = [(n, source if n == "ce_source" else v) for n, v in headers if not n.startswith("ce_signature")]
    headers = sign_record(KEYS["consent"], value, headers)
    fact = fact_from_record(
        "partner.veilig-thuis-amsterdam.signals.v1", 0, 1, headers, value, signed_by, sources=SOURCES
    )
    assert fact.decision == "forged"
    assert fact.reasons[:2] == (
        "ce_source names no registered organisation (urn:nld:oin:<OIN>:systeem:<name>)",
        "claimed delivered",
    )
    assert fact.source == "gm0363"  # the fact is still about the municipality's signal


def test_a_genuine_record_without_ce_time_is_unreadable_rather_than_given_a_time() -> None:
    event = delivery()
    envelope = Envelope(source=src("consent"), type=SignalDelivered.event_type, time=None, subject="b" * 32)
    value = event.to_bytes()
    headers = sign_record(KEYS["consent"], value, envelope.to_headers())
    with pytest.raises(UnreadableRecordError, match="ce_time"):
        fact_from_record(
            "partner.veilig-thuis-amsterdam.signals.v1", 0, 1, headers, value, signed_by, sources=SOURCES
        )


@pytest.mark.parametrize(
    ("topic", "prefix"),
    [
        ("exchange.decisions.v1", ""),  # a genuine delivery replayed among the decisions
        ("t.partner.riec-amsterdam.signals.v1", "t."),  # a delivery type does belong on partner topics
        ("t.consent.agreements.v1", "t."),
    ],
)
def test_a_genuine_record_on_a_topic_its_type_does_not_belong_on_is_a_forgery(
    topic: str, prefix: str
) -> None:
    value, headers = delivery_record()
    fact = fact_from_record(topic, 0, 1, headers, value, signed_by, prefix, SOURCES)
    if "partner." in topic:
        # A delivery belongs on partner topics: whose topic is for the recipient header to say.
        assert fact.decision == "delivered"
        return
    assert fact.decision == "forged"
    assert fact.reasons[:2] == (
        f"{SignalDelivered.event_type} does not belong on {topic.removeprefix(prefix)}",
        "claimed delivered",
    )


def test_the_event_types_of_every_topic_are_what_the_asyncapi_document_says_travels_on_it(
    asyncapi: dict[str, Any],
) -> None:
    """One table (shared/contracts/topics.py): the documented messages per channel follow from it."""
    from shared.contracts.topics import CENTRAL_TOPICS, partner_topic

    document = asyncapi
    components = document["components"]

    def ce_type(message_ref: str) -> str | None:
        message = components["messages"][message_ref.rsplit("/", 1)[1]]
        headers = components["schemas"][message["headers"]["$ref"].rsplit("/", 1)[1]]
        value: str | None = headers["properties"]["ce_type"].get("const")
        return value

    for spec in (*CENTRAL_TOPICS, partner_topic("{partnerId}")):
        channel = document["channels"][spec.name.replace("{", "").replace("}", "")]
        types = {ce_type(ref["$ref"]) for ref in channel.get("messages", {}).values()}
        assert types - {None} == set(spec.event_types), spec.name
