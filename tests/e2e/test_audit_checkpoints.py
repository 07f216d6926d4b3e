"""The running audit service commits to its log with signed checkpoints (real broker, services).

Every organisation can fetch the newest one; it is a C2SP note the audit service's key signs, its
root is the root of the records, and the same note is on audit.checkpoints.v1, outside the store.
"""

from __future__ import annotations

import json

import httpx

from shared.crypto.keys import KeyRing
from shared.policy import Role
from shared.registry import Registry
from shared.tlog.checkpoint import open_checkpoint
from shared.tlog.note import Verifier
from tests.e2e.stack import CONFIG_DIR, Stack, eventually
from tests.e2e.test_signal_flow import domestic_violence_signal

ORIGIN = "safety-chain.local/audit-log"  # the default origin (SC_AUDIT_LOG_ORIGIN)


def newest_checkpoint(stack: Stack, organisation: str, *roles: Role) -> httpx.Response:
    return httpx.get(
        f"{stack.url('audit')}/v1/audit/checkpoint", headers=stack.bearer(organisation, *roles), timeout=30
    )


def test_a_partner_fetches_a_signed_checkpoint_that_commits_to_the_records(stack: Stack) -> None:
    assert stack.post_signal(domestic_violence_signal()).status_code == 202
    audit_key = Registry.load(CONFIG_DIR, KeyRing(stack.keys_dir, generate_missing=False)).ed25519_public(
        "audit"
    )

    def covering_records() -> httpx.Response | None:
        response = newest_checkpoint(stack, "veilig-thuis-amsterdam", Role.RECIPIENT)
        return response if response.status_code == 200 else None

    response = eventually(covering_records)
    assert response.headers["content-type"].startswith("text/plain")
    opened = open_checkpoint(response.text, Verifier(ORIGIN, audit_key))
    assert opened.checkpoint.origin == ORIGIN and opened.checkpoint.size >= 1

    # The same note is on the topic, outside the audit store.
    def published() -> list[str]:
        return [
            json.loads(r.value or b"{}")["note"]
            for r in stack.read_topic("audit.checkpoints.v1")
            if json.loads(r.value or b"{}")["size"] == opened.checkpoint.size
        ]

    assert response.text.startswith(eventually(published)[0])

    # And verify, recomputing the tree from the records, holds the stored checkpoints to them.
    verified = httpx.get(
        f"{stack.url('audit')}/v1/audit/verify",
        headers=stack.bearer("safety-chain", Role.PRIVACY_OFFICER),
        timeout=30,
    )
    assert verified.status_code == 200 and verified.json()["intact"] is True, verified.text
