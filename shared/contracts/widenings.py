"""What a proposed agreement version widens: a stable code with parameters per kind of widening,
and the one English sentence each is written as (`widens: <sentence>` in the proposal's audit
record, and in `AgreementProposed.widens`).

As with consent's reasons (reasons.py), a record carries the sentence only, and these templates
are the contract between consent, which writes them (services/consent/changes.py), and the
audit console, which reads them back into codes and says them in the reader's language. A unit
test holds that every widening consent names parses.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from shared.contracts.sentences import Phrase, Sentences


class WideningCode(StrEnum):
    NEW_AGREEMENT = "new_agreement"
    RESUMES = "resumes"
    PROVIDER_ADDED = "provider_added"
    RECIPIENT_ADDED = "recipient_added"
    FIELD_ADDED = "field_added"
    WITHHELD_LONGER = "withheld_longer"
    IDENTIFYING = "identifying"
    FREE_TEXT = "free_text"
    CATEGORY_ADDED = "category_added"
    PURPOSE_ADDED = "purpose_added"
    RETAINED_LONGER = "retained_longer"
    CONSENT_DROPPED = "consent_dropped"
    OBJECTION_DROPPED = "objection_dropped"
    LEGAL_BASIS = "legal_basis"
    STARTS_EARLIER = "starts_earlier"
    ENDS_LATER = "ends_later"
    OPEN_ENDED = "open_ended"


TEMPLATES: Final[dict[WideningCode, str]] = {
    WideningCode.NEW_AGREEMENT: "a new agreement",
    WideningCode.RESUMES: "resumes a suspended agreement",
    WideningCode.PROVIDER_ADDED: "provider {provider} added",
    WideningCode.RECIPIENT_ADDED: "recipient {recipient} added",
    WideningCode.FIELD_ADDED: "{recipient} receives {field}",
    WideningCode.WITHHELD_LONGER: (
        "{recipient}'s exchanges withheld from citizens for {days} days instead of {before}"
    ),
    WideningCode.IDENTIFYING: "identifying data may be shared",
    WideningCode.FREE_TEXT: "free text may be shared without identity",
    WideningCode.CATEGORY_ADDED: "category {category} added",
    WideningCode.PURPOSE_ADDED: "purpose {purpose} added",
    WideningCode.RETAINED_LONGER: "retention {before} -> {days} days",
    WideningCode.CONSENT_DROPPED: "no longer requires the subject's consent",
    WideningCode.OBJECTION_DROPPED: "an objection no longer stops sharing",
    WideningCode.LEGAL_BASIS: "legal basis {before} -> {legal_basis}",
    WideningCode.STARTS_EARLIER: "valid from {date} instead of {before}",
    WideningCode.OPEN_ENDED: "valid until further notice",
    WideningCode.ENDS_LATER: "valid until {date}",
}
"""Each code's English sentence, exactly as records carry it (change one and old records stop
parsing: add a code instead). OPEN_ENDED comes before ENDS_LATER: the first that matches wins."""

WIDENINGS: Final = Sentences(TEMPLATES)


def widening(code: WideningCode, **params: object) -> str:
    """The sentence for `code` with `params`, as consent writes it."""
    return WIDENINGS.write(code, **params)


def parse_widening(text: str) -> Phrase[WideningCode] | None:
    """The code of a sentence consent wrote; None for any other text (show it as it is)."""
    return WIDENINGS.read(text)
