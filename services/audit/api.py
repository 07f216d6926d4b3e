"""The audit service's public module for tools such as the `safety-chain` CLI: the models its
HTTP API speaks, and an offline verification of an audit store. A tool imports this module,
never the log's or the queries' internals (a store, the verifier)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.log.outside import published_checkpoints
from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.verification import Progress, Verification, verify_store
from services.audit.queries.exports import Format
from services.audit.queries.report import SubjectAccessReport, Version
from services.audit.settings import AuditSettings
from shared.contracts.tlog.checkpoint import Checkpoint
from shared.contracts.tlog.note import Verifier

__all__ = [
    "Format",
    "Progress",
    "SubjectAccessReport",
    "Verification",
    "Version",
    "database_url",
    "verify_database",
]


def database_url() -> str:
    """The audit store's URL as this deployment configures it (SC_AUDIT_DATABASE_URL)."""
    return AuditSettings().audit_database_url


def verify_database(
    url: str,
    audit_key: Ed25519PublicKey,
    *,
    also_outside: Sequence[Checkpoint] = (),
    progress: Progress | None = None,
    deep: bool = False,
) -> Verification:
    """Verify the audit store at `url` (a SQLAlchemy URL, only read) in full, here: every record
    hashed again, the stored tree and checkpoints held to them, and the store held to the
    checkpoints published on audit.checkpoints.v1 (read with the audit service's settings) and to
    `also_outside` (e.g. what witnesses accepted). `audit_key`: the audit service's public key
    from the caller's registry, never from the store. `deep`: every record encoded by the
    reference RFC 8785 implementation, not only a sample. Runs its own event loop to read the
    topic: call it from synchronous code."""
    settings = AuditSettings()
    log_key = Verifier(settings.audit_log_origin, audit_key)
    published = asyncio.run(published_checkpoints(settings, audit_key, log_key))
    store = SqlAuditStore(url)
    try:
        return verify_store(store, progress, [*published, *also_outside], log_key, deep)
    finally:
        store.engine.dispose()
