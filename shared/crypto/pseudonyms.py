"""Keyed pseudonyms: stable per subject, unlinkable without the key.

subject pseudonym  = hex(HMAC-SHA256(key, "<kind>:<identifier>"))[:32]
partner pseudonym  = hex(HMAC-SHA256(key, "partner:<partner id>:<subject pseudonym>"))[:32]
128 bits keep collisions out of reach; a partner's pseudonyms cannot be joined with another
partner's, because each needs the key that only the safety-chain services hold.
"""

from __future__ import annotations

import hashlib
import hmac


def _hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def subject_pseudonym(key: bytes, kind: str, identifier: str) -> str:
    return _hmac_hex(key, f"{kind}:{identifier}")


def partner_pseudonym(key: bytes, partner_id: str, subject: str) -> str:
    return _hmac_hex(key, f"partner:{partner_id}:{subject}")
