"""Does a new version of an agreement widen what anyone receives?

A widening change (a field, identifying data, a recipient, a provider, a category, a purpose, a
longer retention or validity, a weaker consent or objection rule, another legal basis, or
resuming a suspended agreement) takes effect only after a privacy officer of a providing
municipality approves it (four eyes). Anything else narrows, and takes effect at once.
"""

from __future__ import annotations

from datetime import date

from shared.contracts.agreements import Agreement, AgreementStatus
from shared.contracts.widenings import WideningCode as W
from shared.contracts.widenings import widening


def _later(first: date | None, second: date | None) -> bool:
    """Is `second` a later end than `first` (None: no end)?"""
    if second is None:
        return first is not None
    return first is not None and second > first


def widenings(current: Agreement | None, proposed: Agreement) -> tuple[str, ...]:
    """What `proposed` widens compared with `current`, in words; empty when nothing."""
    if current is None:
        return (widening(W.NEW_AGREEMENT),)
    found: list[str] = []
    if current.status is AgreementStatus.SUSPENDED and proposed.status is AgreementStatus.ACTIVE:
        found.append(widening(W.RESUMES))
    found += [
        widening(W.PROVIDER_ADDED, provider=p) for p in proposed.providers if p not in current.providers
    ]
    for recipient in proposed.recipients:
        before = current.recipient(recipient.partner)
        if before is None:
            found.append(widening(W.RECIPIENT_ADDED, recipient=recipient.partner))
            continue
        found += [
            widening(W.FIELD_ADDED, recipient=recipient.partner, field=name)
            for name in recipient.fields
            if name not in before.fields
        ]
        if (recipient.confidential_days or 0) > (before.confidential_days or 0):
            # Confidentiality restricts the citizen's right of access (AVG art. 15, 23): longer
            # is a change the privacy officer approves, like any other widening.
            found.append(
                widening(
                    W.WITHHELD_LONGER,
                    recipient=recipient.partner,
                    days=recipient.confidential_days,
                    before=before.confidential_days or 0,
                )
            )
    if proposed.identifying and not current.identifying:
        found.append(widening(W.IDENTIFYING))
    if proposed.free_text_without_identity and not current.free_text_without_identity:
        found.append(widening(W.FREE_TEXT))
    found += [
        widening(W.CATEGORY_ADDED, category=c) for c in proposed.categories if c not in current.categories
    ]
    found += [widening(W.PURPOSE_ADDED, purpose=p) for p in proposed.purposes if p not in current.purposes]
    if proposed.retention_days > current.retention_days:
        found.append(widening(W.RETAINED_LONGER, before=current.retention_days, days=proposed.retention_days))
    if current.requires_subject_consent and not proposed.requires_subject_consent:
        found.append(widening(W.CONSENT_DROPPED))
    if current.objection_blocks and not proposed.objection_blocks:
        found.append(widening(W.OBJECTION_DROPPED))
    if proposed.legal_basis != current.legal_basis:
        found.append(widening(W.LEGAL_BASIS, before=current.legal_basis, legal_basis=proposed.legal_basis))
    if proposed.valid_from < current.valid_from:
        found.append(widening(W.STARTS_EARLIER, date=proposed.valid_from, before=current.valid_from))
    if _later(current.valid_until, proposed.valid_until):
        ends = proposed.valid_until
        found.append(widening(W.ENDS_LATER, date=ends) if ends else widening(W.OPEN_ENDED))
    return tuple(found)
