"""Open one delivery: check consent's signature over the exact bytes, then decrypt.

The signature covers the value and every ce_ header (shared.crypto.signing), so the obligation
headers (`ce_purpose`, `ce_legalbasis`, `ce_retentiondays`, ...) are consent's word as much as
the value is; they must also agree with the value, or the delivery is refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict

from shared.contracts.events import SignalDelivered
from shared.crypto.sealing import b64decode, delivery_context, open_sealed
from shared.crypto.signing import verify_record
from shared.envelope import Envelope, Headers


class ReceivedSignal(BaseModel):
    """One opened delivery: the obligations in clear, the agreed data decrypted.

    The partner must use `data` only for `purpose`, and delete it after `retention_days`.
    """

    model_config = ConfigDict(frozen=True)

    signal_id: str
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


class DeliveryRefused(ValueError):
    """The record is not a delivery this partner can trust and open; `reason` says why."""

    def __init__(self, reason: str, signal_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signal_id = signal_id


def open_delivery(
    partner_id: str,
    private_key: X25519PrivateKey,
    consent_key: Ed25519PublicKey,
    headers: Headers,
    value: bytes,
) -> ReceivedSignal:
    """Verify, then decrypt. Raises DeliveryRefused for anything else than a genuine delivery."""
    try:
        delivered = SignalDelivered.model_validate_json(value)
    except ValueError as error:
        raise DeliveryRefused(f"not a delivery: {type(error).__name__}") from error
    signal_id = str(delivered.signal_id)
    try:
        verify_record([consent_key], value, headers)
        envelope = Envelope.from_headers(headers)
        if envelope.type != SignalDelivered.event_type:
            raise ValueError(f"unexpected event type {envelope.type}")
        if delivered.recipient != partner_id:
            raise ValueError(f"addressed to {delivered.recipient}")
        _check_obligation_headers(envelope, delivered)
        data = json.loads(
            open_sealed(
                private_key, b64decode(delivered.payload.ciphertext), delivery_context(signal_id, partner_id)
            )
        )
    except ValueError as error:  # SignatureError and SealError are ValueErrors
        raise DeliveryRefused(str(error) or type(error).__name__, signal_id) from error
    return ReceivedSignal(
        signal_id=signal_id,
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


def _check_obligation_headers(envelope: Envelope, delivered: SignalDelivered) -> None:
    """The headers a partner may act on unopened say what the (signed) value says."""
    expected = {
        "signalid": str(delivered.signal_id),
        "recipient": delivered.recipient,
        "agreementid": delivered.agreement_id,
        "agreementversion": str(delivered.agreement_version),
        "purpose": delivered.purpose,
        "legalbasis": delivered.legal_basis,
        "retentiondays": str(delivered.retention_days),
    }
    for name, value in expected.items():
        if envelope.extensions.get(name) != value:
            raise ValueError(f"header ce_{name} disagrees with the delivery")
    if envelope.subject != delivered.partner_pseudonym:
        raise ValueError("header ce_subject disagrees with the delivery")
