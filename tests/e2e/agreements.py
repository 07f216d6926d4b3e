"""Signing agreement proposals in tests, as each party's privacy officer does: with the
organisation's own (development) key, over the content the proposal shows."""

from __future__ import annotations

from typing import Any

import httpx

from shared.contracts.agreements import Agreement, SignatureType
from shared.contracts.crypto.approvals import sign_version
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.plumbing.policy import Role
from tests.e2e.stack import Stack


def signature(
    stack: Stack, organisation: str, agreement: dict[str, Any], kind: SignatureType = SignatureType.ACCEPT
) -> str:
    """`organisation`'s compact JWS on the exact content of `agreement` (an API document)."""
    ring = KeyRing(stack.keys_dir, generate_missing=False, scope=KeyScope.organisation(organisation))
    version = Agreement.model_validate(agreement)
    return sign_version(ring.ed25519_private(organisation), version, organisation, kind)


def sign_proposal(
    stack: Stack,
    organisation: str,
    agreement_id: str,
    verdict: str = "approve",
    person: str = "fg",
    roles: tuple[Role, ...] = (Role.PRIVACY_OFFICER,),
    jws: str | None = None,
) -> httpx.Response:
    """As `organisation`'s privacy officer: read the pending proposal, sign what it shows, send
    the signature. `jws` sends another signature instead (an attack)."""
    headers = stack.bearer(organisation, *roles, person=person)
    consent = stack.url("consent")
    shown = httpx.get(f"{consent}/v1/agreements/{agreement_id}/proposal", headers=headers, timeout=30)
    if shown.status_code != 200:
        return shown
    proposed = shown.json()["agreement"]
    kind = SignatureType.ACCEPT if verdict == "approve" else SignatureType.REJECT
    body = {"jws": jws or signature(stack, organisation, proposed, kind)}
    url = f"{consent}/v1/agreements/{agreement_id}/proposal/{proposed['version']}/{verdict}"
    return httpx.post(url, json=body, headers=headers, timeout=30)


def sign_by_every_party(stack: Stack, agreement_id: str, skip: tuple[str, ...] = ()) -> httpx.Response:
    """Every party that has not signed yet signs (but those in `skip`): the last answer."""
    headers = stack.bearer("safety-chain", Role.PRIVACY_OFFICER)
    shown = httpx.get(
        f"{stack.url('consent')}/v1/agreements/{agreement_id}/proposal", headers=headers, timeout=30
    )
    shown.raise_for_status()
    answer = shown
    for party in shown.json()["awaiting"]:
        if party not in skip:
            answer = sign_proposal(stack, party, agreement_id)
            assert answer.status_code == 200, answer.text
    return answer
