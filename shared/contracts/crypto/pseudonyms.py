"""Keyed pseudonyms: stable per subject, unlinkable without the key.

subject pseudonym  = hex(HMAC-SHA256(key, "<kind>:<identifier>"))[:32]
partner pseudonym  = hex(HMAC-SHA256(key, "partner:<partner id>:<subject pseudonym>"))[:32]
recipient trace id = hex(HMAC-SHA256(key, "trace:<partner id>:<trace id>"))[:32]
delivery id        = UUID from HMAC-SHA256(key, "delivery:<partner id>:<signal id>")[:16],
                     with the RFC 9562 version 8 and variant bits set
128 bits keep collisions out of reach; a partner's pseudonyms and delivery ids cannot be joined
with another partner's, because each needs the key that only the safety-chain services hold.
The platform-wide signal id never reaches a partner: it gets its own delivery id, from which
only the platform (consent's decision record, the audit log) leads back to the signal.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid


def _hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def subject_pseudonym(key: bytes, kind: str, identifier: str) -> str:
    return _hmac_hex(key, f"{kind}:{identifier}")


def partner_pseudonym(key: bytes, partner_id: str, subject: str) -> str:
    return _hmac_hex(key, f"partner:{partner_id}:{subject}")


def recipient_trace_id(key: bytes, partner_id: str, trace_id: str) -> str:
    """The trace id a partner sees: the platform's correlation id would link its records with
    every other partner's records of the same exchange."""
    return _hmac_hex(key, f"trace:{partner_id}:{trace_id}")


def delivery_id(key: bytes, partner_id: str, signal_id: str) -> uuid.UUID:
    digest = bytearray(
        hmac.new(key, f"delivery:{partner_id}:{signal_id}".encode(), hashlib.sha256).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: a custom, here keyed, UUID
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 9562 variant
    return uuid.UUID(bytes=bytes(digest))
