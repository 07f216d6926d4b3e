"""Does a new version of an agreement widen what anyone receives?

A widening change (a field, identifying data, a recipient, a provider, a category, a purpose, a
longer retention or validity, a weaker consent or objection rule, another legal basis, or
resuming a suspended agreement) takes effect only after a privacy officer of a providing
municipality approves it (four eyes). Anything else narrows, and takes effect at once.
"""

from __future__ import annotations

from datetime import date

from shared.contracts.agreements import Agreement, AgreementStatus


def _later(first: date | None, second: date | None) -> bool:
    """Is `second` a later end than `first` (None: no end)?"""
    if second is None:
        return first is not None
    return first is not None and second > first


def widenings(current: Agreement | None, proposed: Agreement) -> tuple[str, ...]:
    """What `proposed` widens compared with `current`, in words; empty when nothing."""
    if current is None:
        return ("a new agreement",)
    found: list[str] = []
    if current.status is AgreementStatus.SUSPENDED and proposed.status is AgreementStatus.ACTIVE:
        found.append("resumes a suspended agreement")
    found += [f"provider {p} added" for p in proposed.providers if p not in current.providers]
    for recipient in proposed.recipients:
        before = current.recipient(recipient.partner)
        if before is None:
            found.append(f"recipient {recipient.partner} added")
            continue
        found += [
            f"{recipient.partner} receives {name}" for name in recipient.fields if name not in before.fields
        ]
        if (recipient.confidential_days or 0) > (before.confidential_days or 0):
            # Confidentiality restricts the citizen's right of access (AVG art. 15, 23): longer
            # is a change the privacy officer approves, like any other widening.
            found.append(
                f"{recipient.partner}'s exchanges withheld from citizens for"
                f" {recipient.confidential_days} days instead of {before.confidential_days or 0}"
            )
    if proposed.identifying and not current.identifying:
        found.append("identifying data may be shared")
    if proposed.free_text_without_identity and not current.free_text_without_identity:
        found.append("free text may be shared without identity")
    found += [f"category {c} added" for c in proposed.categories if c not in current.categories]
    found += [f"purpose {p} added" for p in proposed.purposes if p not in current.purposes]
    if proposed.retention_days > current.retention_days:
        found.append(f"retention {current.retention_days} -> {proposed.retention_days} days")
    if current.requires_subject_consent and not proposed.requires_subject_consent:
        found.append("no longer requires the subject's consent")
    if current.objection_blocks and not proposed.objection_blocks:
        found.append("an objection no longer stops sharing")
    if proposed.legal_basis != current.legal_basis:
        found.append(f"legal basis {current.legal_basis} -> {proposed.legal_basis}")
    if proposed.valid_from < current.valid_from:
        found.append(f"valid from {proposed.valid_from} instead of {current.valid_from}")
    if _later(current.valid_until, proposed.valid_until):
        found.append(f"valid until {proposed.valid_until or 'further notice'}")
    return tuple(found)
