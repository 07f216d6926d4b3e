"""Agreements in force and their history, from the audit log's records of every change.

Each published version (who published it, who proposed it and who signed it for each party, its
status and legal basis) and each proposal (pending, approved, rejected or withdrawn, by whom,
what it widens and whose signature it awaits), per agreement, newest first. The version in force
is the newest published one, unless that one suspends or revokes the agreement. Built from
verified facts only (services.audit.log.facts.is_fact): a forged change names any parties its writer
likes, so it could neither show a version nor make anyone a party of the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.audit.log.catalogue import Role
from services.audit.log.facts import is_fact
from services.audit.log.record import AuditRecord
from services.audit.log.statements import PARTIES_PREFIX
from shared.contracts.agreements import AgreementPublished


def _after(reasons: Sequence[str], prefix: str) -> str | None:
    return next((r.removeprefix(prefix) for r in reasons if r.startswith(prefix)), None)


@dataclass(frozen=True)
class Change:
    """One recorded change: a published version or a proposal."""

    record: AuditRecord

    @property
    def kind(self) -> str:
        return "published" if self.record.event_type == AgreementPublished.event_type else "proposal"

    @property
    def version(self) -> int | None:
        return self.record.agreement_version

    @property
    def status(self) -> str:
        return (self.record.decision or "").split("-", 1)[-1]  # agreement-active, proposal-pending

    @property
    def title(self) -> str | None:
        """The agreement's title: the first reason of every change (a proposal logged before
        issue 18 started with its proposer instead)."""
        first = self.record.reasons[0] if self.record.reasons else None
        return None if first is None or first.startswith("proposed by ") else first

    @property
    def organisation(self) -> str:
        return self.record.source

    @property
    def proposed_by(self) -> str | None:
        return _after(self.record.reasons, "proposed by ")

    @property
    def signers(self) -> list[str]:
        """Who signed for each party (`approved by gm0363/f.fg for gm0363`), in signing order."""
        return [
            r.removeprefix("approved by ").split(" for ", 1)[0]
            for r in self.record.reasons
            if r.startswith("approved by ")
        ]

    @property
    def approved_by(self) -> str | None:
        return ", ".join(self.signers) or None

    @property
    def decided_by(self) -> str | None:
        return _after(self.record.reasons, f"{self.status} by ") if self.kind == "proposal" else None

    @property
    def parties(self) -> frozenset[str]:
        listed = _after(self.record.reasons, PARTIES_PREFIX)
        return frozenset(listed.split(", ")) if listed else frozenset()

    @property
    def awaiting(self) -> list[str]:
        """The parties whose signature a pending proposal still waits for."""
        return [r.removeprefix("awaiting ") for r in self.record.reasons if r.startswith("awaiting ")]

    @property
    def widens(self) -> list[str]:
        return [r.removeprefix("widens: ") for r in self.record.reasons if r.startswith("widens: ")]


@dataclass
class AgreementHistory:
    agreement_id: str
    changes: list[Change] = field(default_factory=list)  # newest first

    @property
    def in_force(self) -> Change | None:
        published = [c for c in self.changes if c.kind == "published"]
        newest = published[0] if published else None
        return newest if newest is not None and newest.status == "active" else None

    @property
    def not_in_force(self) -> str:
        """Why no version is in force: `suspended`, `revoked`, or `unsigned` (none yet)."""
        published = [c for c in self.changes if c.kind == "published"]
        return published[0].status if published else "unsigned"

    @property
    def title(self) -> str:
        return next((c.title for c in self.changes if c.title), self.agreement_id)

    @property
    def parties(self) -> frozenset[str]:
        """Every organisation any version made a party (who may read this history)."""
        return frozenset().union(*(change.parties for change in self.changes))


def histories(records: list[AuditRecord]) -> list[AgreementHistory]:
    """Per agreement (by id), its verified changes newest first; agreements by id."""
    found: dict[str, AgreementHistory] = {}
    for record in sorted(records, key=lambda r: (r.event_time, r.seq), reverse=True):
        if not is_fact(record):
            continue
        agreement = record.agreement_id
        if record.role is Role.AGREEMENT and agreement:
            found.setdefault(agreement, AgreementHistory(agreement)).changes.append(Change(record))
    return [found[key] for key in sorted(found)]
