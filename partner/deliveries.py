"""Open one record of the partner's topic: a delivery, or an erasure notice.

Check consent's signature over the exact bytes, then decrypt (a delivery) or read (a notice).
Every identifier a partner sees is its own: the delivery id, the subject's pseudonym and the
trace id are keyed per partner, so no two partners can join their records.

The signature covers the value and every ce_ header (shared.contracts.crypto.signing), so the obligation
headers (`ce_purpose`, `ce_legalbasis`, `ce_retentiondays`, ...) are consent's word as much as
the value is; they must also agree with the value, or the delivery is refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.crypto.sealing import b64decode, delivery_context, open_sealed
from shared.contracts.crypto.signing import verify_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import ErasureNotice, Event, SignalDelivered
from shared.contracts.sources import parse_source


class ReceivedSignal(BaseModel):
    """One opened delivery: the obligations in clear, the agreed data decrypted.

    The partner must use `data` only for `purpose`, and delete it after `retention_days`.
    """

    model_config = ConfigDict(frozen=True)

    delivery_id: str = Field(description="Your id of this delivery; echo it, never expect a signal id.")
    municipality: str
    agreement_id: str
    agreement_version: int
    purpose: str
    legal_basis: str
    retention_days: int
    fields: tuple[str, ...]
    partner_pseudonym: str
    data: dict[str, Any]
    delivered_at: datetime
    correlation_id: str


class ErasureRequest(BaseModel):
    """An erasure notice (AVG art. 17 and 19): the subject's data was erased at the source.
    Erase what you hold under `partner_pseudonym` that `municipality` provided (the
    `municipality` of its deliveries); when `municipality` is None, everything under it (the
    platform's privacy officer erased what every municipality provided)."""

    model_config = ConfigDict(frozen=True)

    notice_id: str
    partner_pseudonym: str
    municipality: str | None
    legal_basis: str
    erased_at: datetime
    correlation_id: str


class DeliveryRefused(ValueError):
    """The record is not one this partner can trust and open; `reason` says why."""

    def __init__(self, reason: str, delivery_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delivery_id = delivery_id


def record_type(headers: Headers) -> str | None:
    """The ce_type a record claims (not yet verified: only to pick how to open it)."""
    claimed = [value for name, value in headers if name == "ce_type"]
    if len(claimed) != 1 or not isinstance(claimed[0], bytes):
        return None
    return claimed[0].decode("utf-8", errors="replace")


def open_notice(
    partner_id: str,
    consent_key: Ed25519PublicKey,
    headers: Headers,
    value: bytes,
    consent_source: str | None = None,
) -> ErasureRequest:
    """Verify an erasure notice; raises DeliveryRefused for anything but a genuine one.
    `consent_source`: consent's CloudEvents source, which the notice must carry (see
    `open_delivery`)."""
    try:
        notice = ErasureNotice.model_validate_json(value)
    except ValueError as error:
        raise DeliveryRefused(f"not an erasure notice: {type(error).__name__}") from error
    try:
        envelope = _verified(
            consent_key,
            value,
            headers,
            ErasureNotice,
            partner_id,
            notice.recipient,
            notice.partner_pseudonym,
            {"noticeid": str(notice.notice_id), "recipient": notice.recipient},
            consent_source,
        )
    except ValueError as error:
        raise DeliveryRefused(str(error) or type(error).__name__) from error
    return ErasureRequest(
        notice_id=str(notice.notice_id),
        partner_pseudonym=notice.partner_pseudonym,
        municipality=notice.municipality,
        legal_basis=notice.legal_basis,
        erased_at=notice.erased_at,
        correlation_id=envelope.correlation_id,
    )


def open_delivery(
    partner_id: str,
    private_key: X25519PrivateKey,
    consent_key: Ed25519PublicKey,
    headers: Headers,
    value: bytes,
    consent_source: str | None = None,
) -> ReceivedSignal:
    """Verify, then decrypt. Raises DeliveryRefused for anything else than a genuine delivery.

    `consent_source`: consent's CloudEvents source (`Registry.source("consent")`,
    urn:nld:oin:<platform OIN>:systeem:consent); a record that names another is refused. Without
    it the source must still be such a URN. PartnerClient always passes it."""
    try:
        delivered = SignalDelivered.model_validate_json(value)
    except ValueError as error:
        raise DeliveryRefused(f"not a delivery: {type(error).__name__}") from error
    delivery_id = str(delivered.delivery_id)
    try:
        envelope = _verified(
            consent_key,
            value,
            headers,
            SignalDelivered,
            partner_id,
            delivered.recipient,
            delivered.partner_pseudonym,
            _obligation_headers(delivered),
            consent_source,
        )
        data = json.loads(
            open_sealed(
                private_key,
                b64decode(delivered.payload.ciphertext),
                delivery_context(delivery_id, partner_id),
            )
        )
    except ValueError as error:  # SignatureError and SealError are ValueErrors
        raise DeliveryRefused(str(error) or type(error).__name__, delivery_id) from error
    return ReceivedSignal(
        delivery_id=delivery_id,
        municipality=delivered.municipality,
        agreement_id=delivered.agreement_id,
        agreement_version=delivered.agreement_version,
        purpose=delivered.purpose,
        legal_basis=delivered.legal_basis,
        retention_days=delivered.retention_days,
        fields=delivered.fields,
        partner_pseudonym=delivered.partner_pseudonym,
        data=data,
        delivered_at=delivered.delivered_at,
        correlation_id=envelope.correlation_id,
    )


def _verified(
    consent_key: Ed25519PublicKey,
    value: bytes,
    headers: Headers,
    event: type[Event],
    partner_id: str,
    recipient: str,
    subject: str,
    extensions: dict[str, str],
    consent_source: str | None,
) -> Envelope:
    """The envelope of a record consent signed as consent (its source), of type `event`,
    addressed to `partner_id`, whose headers (which a partner may act on unopened) say what its
    signed value says."""
    verify_record([consent_key], value, headers)
    envelope = Envelope.from_headers(headers)
    parse_source(envelope.source)  # MalformedSourceError is a ValueError
    if consent_source is not None and envelope.source != consent_source:
        raise ValueError("ce_source is not the consent service's")
    if envelope.type != event.event_type:
        raise ValueError(f"unexpected event type {envelope.type}")
    if recipient != partner_id:
        raise ValueError(f"addressed to {recipient}")
    for name, expected in extensions.items():
        if envelope.extensions.get(name) != expected:
            raise ValueError(f"header ce_{name} disagrees with the value")
    if envelope.subject != subject:
        raise ValueError("header ce_subject disagrees with the value")
    return envelope


def _obligation_headers(delivered: SignalDelivered) -> dict[str, str]:
    return {
        "deliveryid": str(delivered.delivery_id),
        "recipient": delivered.recipient,
        "agreementid": delivered.agreement_id,
        "agreementversion": str(delivered.agreement_version),
        "purpose": delivered.purpose,
        "legalbasis": delivered.legal_basis,
        "retentiondays": str(delivered.retention_days),
    }
