"""Who may do what: the one authorisation policy of safety-chain.

Pure: `authorise(principal, action, resource)` looks at nothing but its arguments. Every HTTP
endpoint reaches it through services/http_auth.py and every CLI command through those
endpoints; the intake pipeline asks it whether a publisher may submit for the municipality a
signal names. docs/security.md shows this table (`RULES`), and a test keeps the two equal.

Deny by default: an action is allowed only when its rule says so. Authenticated is not
authorised: a valid token says who calls, this module says whether they may.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from shared.contracts.registry import OrganisationKind


class Role(StrEnum):
    """What a person or system does for its organisation (the token's `roles` claim)."""

    PUBLISHER = "publisher"
    SUBJECT_RIGHTS = "subject-rights"
    AGREEMENT_ADMINISTRATOR = "agreement-administrator"
    PRIVACY_OFFICER = "privacy-officer"
    RECIPIENT = "recipient"


ROLE_DESCRIPTIONS: Final[dict[Role, str]] = {
    Role.PUBLISHER: "a municipality's safety system that submits signals",
    Role.SUBJECT_RIGHTS: "handles citizens' requests for its organisation: objection, consent, erasure",
    Role.AGREEMENT_ADMINISTRATOR: (
        "proposes new versions of its municipality's agreements, suspends or revokes them"
    ),
    Role.PRIVACY_OFFICER: (
        "the organisation's privacy officer (FG): reads its audit records, signs agreement"
        " versions for its organisation; the platform's privacy officer reads the whole log"
    ),
    Role.RECIPIENT: "a chain partner's system: reads the agreements it is party to",
}


@dataclass(frozen=True)
class Principal:
    """Who calls: an organisation, the roles its identity provider gave the caller, and the
    caller itself (`actor`: organisation/person or client), from a verified access token."""

    organisation: str
    kind: OrganisationKind
    roles: frozenset[Role]
    actor: str
    token_id: str = ""
    name: str = ""  # the person's name as their identity provider gives it (`name`), for display only

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_platform_privacy_officer(self) -> bool:
        return self.kind is OrganisationKind.PLATFORM and Role.PRIVACY_OFFICER in self.roles


class Action(StrEnum):
    SUBMIT_SIGNAL = "submit a signal"
    ERASE_SUBJECT = "erase a subject"
    RECORD_DIRECTIVE = "record a subject's directive"
    READ_DIRECTIVES = "read a subject's directives"
    EXPLAIN_FOR_SUBJECT = "explain a decision with a subject"
    EXPLAIN = "explain a decision without a subject"
    READ_AGREEMENT = "read an agreement, its history and proposals"
    PROPOSE_AGREEMENT = "publish a new version of an agreement, or withdraw its pending proposal"
    SUSPEND_AGREEMENT = "suspend or revoke an agreement"
    APPROVE_AGREEMENT = "sign (accept or reject) a proposed agreement version for its organisation"
    READ_AUDIT = "read audit records"
    VERIFY_AUDIT = "verify the audit log"
    READ_CHECKPOINT = "read the audit log's checkpoint and consistency proofs"
    COSIGN_CHECKPOINT = "cosign the audit log's checkpoint as a witness"


@dataclass(frozen=True)
class Resource:
    """What the action is about, as far as the rule needs to know."""

    municipality: str | None = None  # the signal's (or the question's) municipality
    recipient: str | None = None  # the partner a question is limited to
    signalled_by: frozenset[str] = frozenset()  # municipalities that have signalled the subject
    parties: frozenset[str] = frozenset()  # an agreement's providers and recipients
    providers: frozenset[str] = frozenset()  # the providing municipalities that govern it
    proposed_by: str | None = None  # the actor who proposed the change to approve


ALL_RECORDS: Final = "*"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    audit_scope: str | None = None  # READ_AUDIT: the organisation whose records, or ALL_RECORDS

    def __bool__(self) -> bool:
        return self.allowed


def _allow(reason: str, audit_scope: str | None = None) -> Verdict:
    return Verdict(True, reason, audit_scope)


def _deny(reason: str) -> Verdict:
    return Verdict(False, reason)


def _municipality(principal: Principal) -> bool:
    return principal.kind is OrganisationKind.MUNICIPALITY


def _submit(p: Principal, r: Resource) -> Verdict:
    if not (_municipality(p) and p.has(Role.PUBLISHER)):
        return _deny("only a municipality's publisher submits signals")
    if r.municipality is not None and r.municipality != p.organisation:
        return _deny(f"authenticated as {p.organisation}; a municipality submits only its own signals")
    return _allow("a municipality's publisher, for its own signals")


def _subject_rights(p: Principal, r: Resource) -> Verdict:
    if p.is_platform_privacy_officer:
        return _allow("the platform's privacy officer")
    if not _municipality(p):
        return _deny("only a municipality that signalled the subject, or the platform's privacy officer")
    if not p.has(Role.SUBJECT_RIGHTS, Role.PRIVACY_OFFICER):
        return _deny("needs the subject-rights or privacy-officer role")
    if p.organisation not in r.signalled_by:
        return _deny(f"{p.organisation} has not signalled this subject")
    if r.municipality is not None and r.municipality != p.organisation:
        # Explaining another municipality's signal with the subject would show that municipality's
        # directives: each municipality is the controller of its own signals only.
        return _deny(f"{p.organisation} asks about its own signals about this subject only")
    # It acts as the controller of what it provided, and of nothing another municipality
    # provided: the use cases scope what it does to its own data (ADR 0009).
    return _allow(f"{p.organisation} has signalled this subject: for what it provided")


def _explain(p: Principal, r: Resource) -> Verdict:
    if p.is_platform_privacy_officer:
        return _allow("the platform's privacy officer")
    if _municipality(p) and r.municipality == p.organisation:
        return _allow("a municipality asking about its own signals")
    if p.kind is OrganisationKind.PARTNER and r.recipient == p.organisation:
        return _allow("a partner asking about what it would receive")
    return _deny("a municipality asks about its own signals, a partner about what it would receive")


def _read_agreement(p: Principal, r: Resource) -> Verdict:
    if p.is_platform_privacy_officer:
        return _allow("the platform's privacy officer")
    if p.organisation in r.parties:
        return _allow(f"{p.organisation} is party to the agreement")
    return _deny(f"{p.organisation} is not party to the agreement")


def _administer(p: Principal, r: Resource) -> Verdict:
    if not (_municipality(p) and p.has(Role.AGREEMENT_ADMINISTRATOR)):
        return _deny("only an agreement administrator of a providing municipality")
    if p.organisation not in r.providers:
        return _deny(f"{p.organisation} is not a providing municipality of the agreement")
    return _allow(f"agreement administrator of providing municipality {p.organisation}")


def _approve(p: Principal, r: Resource) -> Verdict:
    parties = (OrganisationKind.MUNICIPALITY, OrganisationKind.PARTNER)
    if not (p.kind in parties and p.has(Role.PRIVACY_OFFICER)):
        return _deny("only a privacy officer of a party to the proposed version")
    if p.organisation not in r.parties:
        return _deny(f"{p.organisation} is not a party to the proposed version")
    if r.proposed_by is not None and r.proposed_by == p.actor:
        return _deny("four eyes: the proposer cannot approve their own change")
    return _allow(f"privacy officer of {p.organisation}, a party to the proposed version, not the proposer")


def _read_audit(p: Principal, r: Resource) -> Verdict:
    # The scope is the organisation; what it covers follows from its kind (services/audit/queries/search.py
    # reader_scope): a municipality what it provided, a partner only what reached it.
    if p.is_platform_privacy_officer:
        return _allow("the platform's privacy officer reads every record", ALL_RECORDS)
    if not p.has(Role.PRIVACY_OFFICER):
        return _deny("only privacy officers read the audit log")
    if p.kind is OrganisationKind.MUNICIPALITY:
        return _allow(
            f"privacy officer of {p.organisation}: the records where it is source or target", p.organisation
        )
    if p.kind is OrganisationKind.PARTNER:
        return _allow(
            f"privacy officer of {p.organisation}: what reached it"
            " (its deliveries, erasure notices and receipts)",
            p.organisation,
        )
    return _deny("only privacy officers read the audit log")


def _verify_audit(p: Principal, r: Resource) -> Verdict:
    if p.has(Role.PRIVACY_OFFICER):
        return _allow("a privacy officer")
    return _deny("only privacy officers verify the audit log")


def _read_checkpoint(p: Principal, r: Resource) -> Verdict:
    # Hashes and a size, no record: every organisation may witness the log it is party to.
    if not p.roles:
        return _deny("a credential without a role witnesses nothing")
    return _allow(f"{p.organisation} may witness the log")


@dataclass(frozen=True)
class Rule:
    allowed: str  # who, in words: the table in docs/security.md
    check: Callable[[Principal, Resource], Verdict] = field(repr=False)


RULES: Final[dict[Action, Rule]] = {
    Action.SUBMIT_SIGNAL: Rule("a municipality's publisher, for its own signals only", _submit),
    Action.ERASE_SUBJECT: Rule(
        "a municipality that has signalled the subject (subject-rights or privacy-officer role),"
        " erasing what it provided and nothing another municipality provided; the platform's"
        " privacy officer, erasing what every municipality provided",
        _subject_rights,
    ),
    Action.RECORD_DIRECTIVE: Rule(
        "a municipality that has signalled the subject (subject-rights or privacy-officer role),"
        " for what it provided (another municipality's directives stay as they are); the"
        " platform's privacy officer, for what every municipality provided; never a partner",
        _subject_rights,
    ),
    Action.READ_DIRECTIVES: Rule(
        "a municipality that has signalled the subject (subject-rights or privacy-officer role):"
        " the directives that govern what it provided (its own and the platform's); the"
        " platform's privacy officer: all; never a partner",
        _subject_rights,
    ),
    Action.EXPLAIN_FOR_SUBJECT: Rule(
        "a municipality that has signalled the subject (subject-rights or privacy-officer role),"
        " about its own signals; the platform's privacy officer; never a partner",
        _subject_rights,
    ),
    Action.EXPLAIN: Rule(
        "a municipality about its own signals, a partner about what it would receive,"
        " the platform's privacy officer",
        _explain,
    ),
    Action.READ_AGREEMENT: Rule("its parties and the platform's privacy officer", _read_agreement),
    Action.PROPOSE_AGREEMENT: Rule(
        "an agreement administrator of a providing municipality; a widening change waits for"
        " every party's signature, a narrowing one takes effect at once; withdraws a pending one",
        _administer,
    ),
    Action.SUSPEND_AGREEMENT: Rule(
        "an agreement administrator of a providing municipality; suspending or revoking takes effect at once",
        _administer,
    ),
    Action.APPROVE_AGREEMENT: Rule(
        "a privacy officer of each party to the proposed version (every providing municipality and"
        " every recipient partner), for its own organisation, with its organisation's key, who did"
        " not propose the change (four eyes); in force once every party accepted",
        _approve,
    ),
    Action.READ_AUDIT: Rule(
        "a privacy officer of a municipality: the records where it is source or target; of a"
        " partner: what reached the partner (its deliveries, erasure notices and receipts, under its"
        " own pseudonyms and delivery ids; by BSN only where a delivery carried that BSN); the"
        " platform's privacy officer: all. Views show verified facts only. Every read is itself logged",
        _read_audit,
    ),
    Action.VERIFY_AUDIT: Rule("any privacy officer", _verify_audit),
    Action.READ_CHECKPOINT: Rule(
        "any registered organisation with a role (each may witness the log: hashes and sizes only)",
        _read_checkpoint,
    ),
    Action.COSIGN_CHECKPOINT: Rule(
        "any registered organisation with a role, in its own name and with its own key only",
        _read_checkpoint,
    ),
}

PUBLIC: Final = ("health (/healthz), readiness (/readyz)", "OpenAPI documents (/docs, /openapi.json)")
"""What anyone may do without a credential."""


def authorise(principal: Principal, action: Action, resource: Resource | None = None) -> Verdict:
    """May `principal` do `action` on `resource`? Deny by default, with the reason either way."""
    rule = RULES.get(action)
    if rule is None:
        return _deny(f"no rule allows {action}")
    return rule.check(principal, resource or Resource())
