"""The partner SDK believes a delivery or an erasure notice only from consent's own source
(urn:nld:oin:<platform OIN>:systeem:consent), and signs its receipts with its own."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from partner import DeliveryRefused, PartnerClient, PartnerIdentity, open_delivery, open_notice
from shared.contracts.crypto.sealing import b64encode, delivery_context, seal
from shared.contracts.crypto.signing import sign_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import DeliveryProvenance, ErasureNotice, SealedPayload, SignalDelivered
from shared.contracts.registry import Registry
from tests.unit.test_audit_facts import delivery as a_delivery

VT = "veilig-thuis-amsterdam"
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
CONSENT_KEY = Ed25519PrivateKey.generate()
VT_KEY = X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def registry(project_config_dir: Path) -> Registry:
    return Registry.load(project_config_dir)


def delivery(source: str) -> tuple[bytes, Headers]:
    """A genuine delivery to Veilig Thuis, signed with consent's key, claiming `source`."""
    delivery_id = uuid.uuid4()
    sealed = seal(
        VT_KEY.public_key(), b'{"category": "huiselijk_geweld"}', delivery_context(str(delivery_id), VT)
    )
    event = a_delivery(VT).model_copy(
        update={
            "delivery_id": delivery_id,
            "payload": SealedPayload(recipient=VT, ciphertext=b64encode(sealed)),
            "delivered_at": NOW,
        }
    )
    envelope = Envelope(
        source=source,
        type=SignalDelivered.event_type,
        time=NOW,
        subject=event.partner_pseudonym,
        extensions=SignalDelivered.envelope_extensions(
            deliveryid=str(delivery_id),
            recipient=VT,
            agreementid=event.agreement_id,
            agreementversion="1",
            purpose=event.purpose,
            legalbasis=event.legal_basis,
            retentiondays="365",
        ),
    )
    value = event.to_bytes()
    return value, sign_record(CONSENT_KEY, value, envelope.to_headers())


def notice(source: str, municipality: str | None = None) -> tuple[bytes, Headers]:
    event = ErasureNotice(
        notice_id=uuid.uuid4(),
        recipient=VT,
        partner_pseudonym="b" * 32,
        municipality=municipality,
        erased_at=NOW,
    )
    envelope = Envelope(
        source=source,
        type=ErasureNotice.event_type,
        time=NOW,
        subject=event.partner_pseudonym,
        extensions=ErasureNotice.envelope_extensions(noticeid=str(event.notice_id), recipient=VT),
    )
    value = event.to_bytes()
    return value, sign_record(CONSENT_KEY, value, envelope.to_headers())


def test_a_delivery_from_consents_source_is_opened(registry: Registry) -> None:
    value, headers = delivery(registry.source("consent"))
    opened = open_delivery(VT, VT_KEY, CONSENT_KEY.public_key(), headers, value, registry.source("consent"))
    assert opened.data == {"category": "huiselijk_geweld"}
    value, headers = notice(registry.source("consent"))
    assert open_notice(VT, CONSENT_KEY.public_key(), headers, value, registry.source("consent")).legal_basis


@pytest.mark.parametrize("municipality", ["gm0363", None])
def test_an_erasure_request_says_whose_data_to_erase(registry: Registry, municipality: str | None) -> None:
    # A municipality's erasure covers what it provided; the platform's (None) everything.
    value, headers = notice(registry.source("consent"), municipality)
    request = open_notice(VT, CONSENT_KEY.public_key(), headers, value, registry.source("consent"))
    assert request.municipality == municipality


@pytest.mark.parametrize(
    "claimed",
    [
        "consent",  # an organisation id: no source under the profile
        "org:signals",  # another of the platform's systems
        f"org:{VT}",  # the recipient itself
        "urn:nld:oin:99999999900000001000:systeem:reporting",  # the platform's OIN, no such system
    ],
)
def test_a_delivery_or_notice_that_names_another_source_is_refused(registry: Registry, claimed: str) -> None:
    """Signed with consent's genuine key: only the source is wrong, and that is enough."""
    source = registry.source(claimed.removeprefix("org:")) if claimed.startswith("org:") else claimed
    value, headers = delivery(source)
    with pytest.raises(DeliveryRefused, match="ce_source"):
        open_delivery(VT, VT_KEY, CONSENT_KEY.public_key(), headers, value, registry.source("consent"))
    value, headers = notice(source)
    with pytest.raises(DeliveryRefused, match="ce_source"):
        open_notice(VT, CONSENT_KEY.public_key(), headers, value, registry.source("consent"))


def test_without_consents_source_a_malformed_one_is_still_refused(registry: Registry) -> None:
    value, headers = delivery("consent")
    with pytest.raises(DeliveryRefused, match="ce_source"):
        open_delivery(VT, VT_KEY, CONSENT_KEY.public_key(), headers, value)


class _Capture:
    def __init__(self) -> None:
        self.sent: list[Headers] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes, headers: Headers) -> Any:
        self.sent.append(headers)


def test_the_client_checks_consents_source_from_the_registry_and_signs_receipts_with_its_own(
    registry: Registry,
) -> None:
    identity = PartnerIdentity(VT, VT_KEY, Ed25519PrivateKey.generate())
    client = PartnerClient(identity, CONSENT_KEY.public_key(), {}, "t.")  # sources from the registry
    value, headers = delivery(registry.source("signals"))
    record: Any = type("Record", (), {"headers": headers, "value": value})()
    with pytest.raises(DeliveryRefused, match="ce_source"):
        client.open(record)
    value, headers = delivery(registry.source("consent"))
    genuine: Any = type("Record", (), {"headers": headers, "value": value})()
    assert client.open(genuine).data == {"category": "huiselijk_geweld"}


def test_receipts_carry_the_partners_own_source(registry: Registry) -> None:
    identity = PartnerIdentity(VT, VT_KEY, Ed25519PrivateKey.generate())
    client = PartnerClient(identity, CONSENT_KEY.public_key(), {}, "t.")
    capture = _Capture()
    provenance = DeliveryProvenance(topic=f"t.partner.{VT}.signals.v1", partition=0, offset=0)
    asyncio.run(
        client._acknowledge(cast(AIOKafkaProducer, capture), provenance, refused=DeliveryRefused("x"))
    )
    (headers,) = capture.sent
    assert dict(headers)["ce_source"] == registry.source(VT).encode()
    assert registry.organisation_at(registry.source(VT)).id == VT


def test_a_malformed_source_given_to_the_client_is_refused() -> None:
    identity = PartnerIdentity(VT, VT_KEY, Ed25519PrivateKey.generate(), source=VT)
    with pytest.raises(ValueError):
        PartnerClient(identity, CONSENT_KEY.public_key(), {}, "t.", consent_source="consent")
