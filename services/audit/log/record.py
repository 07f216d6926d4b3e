"""One record of the audit log, as a store keeps it and every view reads it.

A record is a fact (services.audit.log.facts.AuditFact) at its place in the log: `seq` (leaf
index + 1) and `recorded_at`, when the log took it. Its JSON (`document`) is what the HTTP API
serves, what an NDJSON export carries and what its leaf bytes are made of (leaf.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.audit.log.catalogue import Role, role_of
from services.audit.log.facts import AuditFact


class AuditRecord(BaseModel):
    """The fields are those of AuditFact after `seq` and `recorded_at`, in the same order. Times
    stay the RFC 3339 text the store holds: the leaf bytes are made of that text, so it is never
    parsed and written again. A column a store keeps beside the record is ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    seq: int
    recorded_at: str
    event_type: str
    event_id: str
    event_time: str
    source: str
    target: str | None = None
    signal_id: str | None = None
    subject_pseudonym: str | None = None
    category: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    agreement_id: str | None = None
    agreement_version: int | None = None
    fields: tuple[str, ...] = ()
    delivery_id: str | None = None
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    confidential_until: date | None = None
    correlation_id: str
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int

    @classmethod
    def new(cls, seq: int, fact: AuditFact) -> AuditRecord:
        """The record `fact` becomes at `seq`, recorded now."""
        return cls.appended(seq, fact)[0]

    @classmethod
    def appended(cls, seq: int, fact: AuditFact) -> tuple[AuditRecord, dict[str, Any]]:
        """`new`, with the record's JSON document (`document()`, made once for a store's append)."""
        recorded_at = datetime.now(UTC).isoformat()
        document = {"seq": seq, "recorded_at": recorded_at, **fact.model_dump(mode="json")}
        return cls.model_validate(document), document

    @property
    def role(self) -> Role | None:
        """What it is in a signal's and a subject's story: its type's row in the catalogue; None
        for a type the catalogue has no row for (a record the log could not read)."""
        return role_of(self.event_type)

    def document(self) -> dict[str, Any]:
        """The record as JSON: lists for `fields` and `reasons`, absent values as null."""
        return self.model_dump(mode="json")
