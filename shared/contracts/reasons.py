"""Why consent permitted or denied an exchange: a stable code with parameters per reason, and
the one English sentence each code is written as in `ExchangeDecided.reasons`.

The policy keeps its codes; people read sentences. Consent writes every reason through
`Reason.text` (services/consent/decision.py), so the sentence in a record is a fixed template
filled with parameters, and `parse_reason` turns any sentence consent ever wrote back into its
codes: the audit console translates code and parameters into the reader's language. A record
carries the sentence only (its bytes are in the audit log's Merkle tree, so it keeps that
shape); these templates are the contract between the two sides, held by a unit test that every
reason `decide` gives parses.

One reason sentence is either a single reason (`no agreement names X as recipient`, `... permits
...`) or an agreement's refusal: `agreement <id> v<version>: <failure>; <failure>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from shared.contracts.sentences import template_pattern


class ReasonCode(StrEnum):
    NO_AGREEMENT = "no_agreement"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    NOT_A_PROVIDER = "not_a_provider"
    CATEGORY_NOT_COVERED = "category_not_covered"
    PURPOSE_NOT_COVERED = "purpose_not_covered"
    NOT_VALID = "not_valid"
    CONSENT_ABSENT = "consent_absent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OBJECTED = "objected"
    OBJECTION_OVERRIDDEN = "objection_overridden"
    PERMITTED = "permitted"
    ALSO_PERMITS = "also_permits"
    ERASED = "erased"


TEMPLATES: Final[dict[ReasonCode, str]] = {
    ReasonCode.NO_AGREEMENT: "no agreement names {recipient} as recipient",
    ReasonCode.SUSPENDED: "suspended",
    ReasonCode.REVOKED: "revoked",
    ReasonCode.NOT_A_PROVIDER: "municipality {municipality} is not a provider",
    ReasonCode.CATEGORY_NOT_COVERED: "category {category} is not covered",
    ReasonCode.PURPOSE_NOT_COVERED: "purpose {purpose} is not covered",
    ReasonCode.NOT_VALID: "not valid on {date}",
    ReasonCode.CONSENT_ABSENT: "subject consent is required but absent",
    ReasonCode.CONSENT_WITHDRAWN: "subject consent is required but was withdrawn",
    ReasonCode.OBJECTED: "the subject objected (AVG art. 21)",
    ReasonCode.OBJECTION_OVERRIDDEN: "the subject objected, but {legal_basis} overrides the objection",
    ReasonCode.PERMITTED: "{agreement} permits {recipient} to receive {category} for {purpose}",
    ReasonCode.ALSO_PERMITS: "{agreement} also permits; it shares more fields",
    ReasonCode.ERASED: "the subject's data was erased: nothing can be delivered",
}
"""Each code's English sentence, exactly as records carry it (change one and old records stop
parsing: add a code instead)."""

FAILURES: Final = frozenset(
    {
        ReasonCode.SUSPENDED,
        ReasonCode.REVOKED,
        ReasonCode.NOT_A_PROVIDER,
        ReasonCode.CATEGORY_NOT_COVERED,
        ReasonCode.PURPOSE_NOT_COVERED,
        ReasonCode.NOT_VALID,
        ReasonCode.CONSENT_ABSENT,
        ReasonCode.CONSENT_WITHDRAWN,
        ReasonCode.OBJECTED,
    }
)
"""What keeps one agreement from permitting: listed after its label, joined by "; "."""

AGREEMENT_LABEL: Final = re.compile(r"^agreement (?P<id>\S+) v(?P<version>\d+)$")


def agreement_label(agreement_id: str, version: int) -> str:
    return f"agreement {agreement_id} v{version}"


@dataclass(frozen=True)
class Reason:
    """One reason: its code and the parameters its sentence names."""

    code: ReasonCode
    params: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The English sentence a record carries."""
        return TEMPLATES[self.code].format(**self.params)


@dataclass(frozen=True)
class ReasonSentence:
    """One entry of `reasons`, read back: the agreement it is about (for a refusal by one
    agreement) and its reasons."""

    reasons: tuple[Reason, ...]
    agreement_id: str | None = None
    agreement_version: int | None = None


def refusal(agreement_id: str, version: int, failures: list[Reason]) -> str:
    """One agreement's refusal, as a record carries it."""
    return f"{agreement_label(agreement_id, version)}: {'; '.join(f.text for f in failures)}"


PATTERNS: Final = {code: template_pattern(template) for code, template in TEMPLATES.items()}


def _one(text: str, codes: frozenset[ReasonCode] | None = None) -> Reason | None:
    for code, pattern in PATTERNS.items():
        if codes is not None and code not in codes:
            continue
        found = pattern.match(text)
        if found:
            return Reason(code, found.groupdict())
    return None


def parse_reason(text: str) -> ReasonSentence | None:
    """The codes of a sentence consent wrote; None for any other text (a record's reasons from
    elsewhere, or a wording older than these templates): show that as it is."""
    single = _one(text)
    if single is not None:
        return ReasonSentence((single,))
    label, separator, rest = text.partition(": ")
    named = AGREEMENT_LABEL.match(label)
    if not separator or named is None:
        return None
    failures = [_one(part, FAILURES) for part in rest.split("; ")]
    if any(failure is None for failure in failures):
        return None
    return ReasonSentence(tuple(f for f in failures if f is not None), named["id"], int(named["version"]))
