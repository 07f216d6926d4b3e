"""The authorisation policy as a table: every action, the callers it allows and those it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.contracts.registry import OrganisationKind
from shared.plumbing.policy import (
    ALL_RECORDS,
    PUBLIC,
    ROLE_DESCRIPTIONS,
    RULES,
    Action,
    Principal,
    Resource,
    Role,
    authorise,
)

M, P, X = OrganisationKind.MUNICIPALITY, OrganisationKind.PARTNER, OrganisationKind.PLATFORM
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def who(organisation: str, kind: OrganisationKind, *roles: Role, person: str = "someone") -> Principal:
    return Principal(organisation, kind, frozenset(roles), f"{organisation}/{person}", "jti")


AMS_PUBLISHER = who("gm0363", M, Role.PUBLISHER)
AMS_RIGHTS = who("gm0363", M, Role.SUBJECT_RIGHTS)
AMS_ADMIN = who("gm0363", M, Role.AGREEMENT_ADMINISTRATOR, person="admin")
AMS_OFFICER = who("gm0363", M, Role.PRIVACY_OFFICER, person="fg")
AMS_OFFICER_WHO_PROPOSED = who(
    "gm0363", M, Role.PRIVACY_OFFICER, Role.AGREEMENT_ADMINISTRATOR, person="admin"
)
AMS_NO_ROLE = who("gm0363", M)
RDAM_PUBLISHER = who("gm0599", M, Role.PUBLISHER)
RDAM_RIGHTS = who("gm0599", M, Role.SUBJECT_RIGHTS)
RDAM_ADMIN = who("gm0599", M, Role.AGREEMENT_ADMINISTRATOR)
RDAM_OFFICER = who("gm0599", M, Role.PRIVACY_OFFICER)
VT_RECIPIENT = who("veilig-thuis-amsterdam", P, Role.RECIPIENT)
VT_OFFICER = who("veilig-thuis-amsterdam", P, Role.PRIVACY_OFFICER)
VT_EVERYTHING = who("veilig-thuis-amsterdam", P, *Role)
POLICE_OFFICER = who("politie-eenheid-amsterdam", P, Role.PRIVACY_OFFICER)
PLATFORM_OFFICER = who("safety-chain", X, Role.PRIVACY_OFFICER)
PLATFORM_OTHER = who("safety-chain", X, Role.AGREEMENT_ADMINISTRATOR)

OWN_SIGNAL = Resource(municipality="gm0363")
SIGNALLED_BY_AMS = Resource(signalled_by=frozenset({"gm0363"}))
BOTH_SIGNALLED = frozenset({"gm0363", "gm0599"})
DV_AGREEMENT = Resource(
    parties=frozenset({"gm0363", "veilig-thuis-amsterdam"}),
    providers=frozenset({"gm0363"}),
    proposed_by="gm0363/admin",
)

CASES: list[tuple[Principal, Action, Resource, bool]] = [
    # submit a signal: a municipality's publisher, its own signals only
    (AMS_PUBLISHER, Action.SUBMIT_SIGNAL, OWN_SIGNAL, True),
    (AMS_PUBLISHER, Action.SUBMIT_SIGNAL, Resource(), True),
    (RDAM_PUBLISHER, Action.SUBMIT_SIGNAL, OWN_SIGNAL, False),
    (AMS_RIGHTS, Action.SUBMIT_SIGNAL, OWN_SIGNAL, False),
    (AMS_OFFICER, Action.SUBMIT_SIGNAL, OWN_SIGNAL, False),
    (VT_EVERYTHING, Action.SUBMIT_SIGNAL, Resource(), False),
    (PLATFORM_OFFICER, Action.SUBMIT_SIGNAL, Resource(), False),
    # erase, directives, explain with a subject: who signalled it, or the platform's officer
    *[
        case
        for action in (
            Action.ERASE_SUBJECT,
            Action.RECORD_DIRECTIVE,
            Action.READ_DIRECTIVES,
            Action.EXPLAIN_FOR_SUBJECT,
        )
        for case in (
            (AMS_RIGHTS, action, SIGNALLED_BY_AMS, True),
            (AMS_OFFICER, action, SIGNALLED_BY_AMS, True),
            (PLATFORM_OFFICER, action, Resource(), True),
            (AMS_PUBLISHER, action, SIGNALLED_BY_AMS, False),
            (AMS_ADMIN, action, SIGNALLED_BY_AMS, False),
            (AMS_RIGHTS, action, Resource(), False),
            (RDAM_RIGHTS, action, SIGNALLED_BY_AMS, False),
            (RDAM_OFFICER, action, SIGNALLED_BY_AMS, False),
            (VT_EVERYTHING, action, Resource(signalled_by=frozenset({"veilig-thuis-amsterdam"})), False),
            (POLICE_OFFICER, action, SIGNALLED_BY_AMS, False),
            (PLATFORM_OTHER, action, SIGNALLED_BY_AMS, False),
        )
    ],
    # ... and each municipality only as the controller of its own signals (ADR 0009)
    (
        AMS_RIGHTS,
        Action.EXPLAIN_FOR_SUBJECT,
        Resource(municipality="gm0363", signalled_by=BOTH_SIGNALLED),
        True,
    ),
    (
        RDAM_RIGHTS,
        Action.EXPLAIN_FOR_SUBJECT,
        Resource(municipality="gm0363", signalled_by=BOTH_SIGNALLED),
        False,
    ),
    (PLATFORM_OFFICER, Action.EXPLAIN_FOR_SUBJECT, Resource(municipality="gm0363"), True),
    # explain without a subject
    (AMS_PUBLISHER, Action.EXPLAIN, OWN_SIGNAL, True),
    (RDAM_PUBLISHER, Action.EXPLAIN, OWN_SIGNAL, False),
    (VT_RECIPIENT, Action.EXPLAIN, Resource(municipality="gm0363", recipient="veilig-thuis-amsterdam"), True),
    (VT_RECIPIENT, Action.EXPLAIN, Resource(municipality="gm0363"), False),
    (VT_RECIPIENT, Action.EXPLAIN, Resource(municipality="gm0363", recipient="riec-amsterdam"), False),
    (PLATFORM_OFFICER, Action.EXPLAIN, OWN_SIGNAL, True),
    # read an agreement: its parties and the platform's officer
    (AMS_PUBLISHER, Action.READ_AGREEMENT, DV_AGREEMENT, True),
    (VT_RECIPIENT, Action.READ_AGREEMENT, DV_AGREEMENT, True),
    (PLATFORM_OFFICER, Action.READ_AGREEMENT, DV_AGREEMENT, True),
    (RDAM_OFFICER, Action.READ_AGREEMENT, DV_AGREEMENT, False),
    (POLICE_OFFICER, Action.READ_AGREEMENT, DV_AGREEMENT, False),
    (PLATFORM_OTHER, Action.READ_AGREEMENT, DV_AGREEMENT, False),
    # new version, suspension: an agreement administrator of a providing municipality
    *[
        case
        for action in (Action.PROPOSE_AGREEMENT, Action.SUSPEND_AGREEMENT)
        for case in (
            (AMS_ADMIN, action, DV_AGREEMENT, True),
            (AMS_OFFICER, action, DV_AGREEMENT, False),
            (AMS_PUBLISHER, action, DV_AGREEMENT, False),
            (RDAM_ADMIN, action, DV_AGREEMENT, False),
            (VT_EVERYTHING, action, DV_AGREEMENT, False),
            (PLATFORM_OFFICER, action, DV_AGREEMENT, False),
        )
    ],
    # sign (approve): a privacy officer of every party to the proposed version, providing
    # municipality and recipient partner alike, who did not propose it
    (AMS_OFFICER, Action.APPROVE_AGREEMENT, DV_AGREEMENT, True),
    (VT_OFFICER, Action.APPROVE_AGREEMENT, DV_AGREEMENT, True),
    (AMS_OFFICER_WHO_PROPOSED, Action.APPROVE_AGREEMENT, DV_AGREEMENT, False),
    (AMS_ADMIN, Action.APPROVE_AGREEMENT, DV_AGREEMENT, False),
    (VT_RECIPIENT, Action.APPROVE_AGREEMENT, DV_AGREEMENT, False),
    (RDAM_OFFICER, Action.APPROVE_AGREEMENT, DV_AGREEMENT, False),
    (POLICE_OFFICER, Action.APPROVE_AGREEMENT, DV_AGREEMENT, False),
    (PLATFORM_OFFICER, Action.APPROVE_AGREEMENT, DV_AGREEMENT, False),
    # audit: privacy officers
    (AMS_OFFICER, Action.READ_AUDIT, Resource(), True),
    (VT_OFFICER, Action.READ_AUDIT, Resource(), True),
    (PLATFORM_OFFICER, Action.READ_AUDIT, Resource(), True),
    (AMS_PUBLISHER, Action.READ_AUDIT, Resource(), False),
    (AMS_ADMIN, Action.READ_AUDIT, Resource(), False),
    (VT_RECIPIENT, Action.READ_AUDIT, Resource(), False),
    (PLATFORM_OTHER, Action.READ_AUDIT, Resource(), False),
    (AMS_OFFICER, Action.VERIFY_AUDIT, Resource(), True),
    (AMS_PUBLISHER, Action.VERIFY_AUDIT, Resource(), False),
    (AMS_PUBLISHER, Action.READ_CHECKPOINT, Resource(), True),
    (AMS_OFFICER, Action.READ_CHECKPOINT, Resource(), True),
    (VT_RECIPIENT, Action.READ_CHECKPOINT, Resource(), True),
    (who("gm0363", M), Action.READ_CHECKPOINT, Resource(), False),
    (VT_RECIPIENT, Action.COSIGN_CHECKPOINT, Resource(), True),
    (who("veilig-thuis-amsterdam", P), Action.COSIGN_CHECKPOINT, Resource(), False),
]


@pytest.mark.parametrize(
    ("principal", "action", "resource", "allowed"),
    CASES,
    ids=[f"{p.actor}:{'+'.join(sorted(p.roles))}:{a.name}:{allowed}" for p, a, _, allowed in CASES],
)
def test_the_policy_allows_exactly_what_its_table_says(
    principal: Principal, action: Action, resource: Resource, allowed: bool
) -> None:
    verdict = authorise(principal, action, resource)
    assert verdict.allowed is allowed, verdict.reason
    assert verdict.reason  # a refusal always says why


def test_every_action_has_a_rule_and_is_tested_both_ways() -> None:
    assert set(RULES) == set(Action)
    for action in Action:
        outcomes = {allowed for _, a, _, allowed in CASES if a is action}
        assert outcomes == {True, False}, f"{action} lacks an allowed or a refused case"


def test_audit_scope_is_the_readers_own_organisation_unless_platform() -> None:
    assert authorise(AMS_OFFICER, Action.READ_AUDIT).audit_scope == "gm0363"
    assert authorise(VT_OFFICER, Action.READ_AUDIT).audit_scope == "veilig-thuis-amsterdam"
    assert authorise(PLATFORM_OFFICER, Action.READ_AUDIT).audit_scope == ALL_RECORDS


def _documented_rows(section: str) -> dict[str, str]:
    """The two-column table rows of one `## section` of docs/security.md."""
    text = DOCS.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        match = re.fullmatch(r"\|\s*(?P<key>[^|]+?)\s*\|\s*(?P<value>[^|]+?)\s*\|", line.strip())
        if match and match["value"] not in ("allowed", "who", "---"):
            rows[match["key"]] = match["value"]
    return rows


def test_docs_security_shows_the_policy_table() -> None:
    """docs/security.md's table is the policy's RULES, word for word, plus the public endpoints."""
    expected = {action.value: rule.allowed for action, rule in RULES.items()}
    expected.update({endpoint: "anyone" for endpoint in PUBLIC})
    assert _documented_rows("The policy") == expected


def test_docs_security_names_every_role() -> None:
    expected = {f"`{role.value}`": description for role, description in ROLE_DESCRIPTIONS.items()}
    assert _documented_rows("Callers: organisations, roles and actors") == expected
