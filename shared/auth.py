"""Who is calling: API tokens of the organisations that use the services' HTTP APIs.

A token is `<organisation id>.<hex HMAC-SHA256(token key, organisation id)>`: the service
checks it without a token table, and rotating the token key (the `api-tokens` secret) revokes
every token at once. `safety-chain token issue` prints one for an organisation.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.registry import OrganisationKind, Registry


def issue_token(token_key: bytes, organisation: str) -> str:
    digest = hmac.new(token_key, f"api-token:{organisation}".encode(), hashlib.sha256).hexdigest()
    return f"{organisation}.{digest}"


def authenticate(
    authorization: str | None,
    token_key: bytes,
    registry: Registry,
    kinds: tuple[OrganisationKind, ...] = (OrganisationKind.MUNICIPALITY,),
) -> str | None:
    """The organisation (of one of `kinds`) a `Bearer` token belongs to, or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    organisation, _, _ = authorization.removeprefix("Bearer ").strip().partition(".")
    expected = issue_token(token_key, organisation)
    presented = authorization.removeprefix("Bearer ").strip()
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        return None
    return organisation if any(registry.is_kind(organisation, kind) for kind in kinds) else None
