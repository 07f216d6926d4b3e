"""Turn the bytes a municipal system sent into a SignalSubmission, or into FieldErrors.

Pure: no I/O. Errors name the field and the rule, never the offending value, because they
travel to signals.rejected.v1, the audit log and the service's logs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.contracts.events import FieldError, RejectionReason
from shared.contracts.signal import SignalSubmission
from shared.registry import OrganisationKind, Registry

SUBJECT_KINDS = frozenset({"person"})


@dataclass(frozen=True)
class Invalid:
    """Why a submission was refused, plus what could safely be read from it."""

    errors: tuple[FieldError, ...]
    signal_id: str | None = None
    municipality: str | None = None

    @property
    def reason(self) -> RejectionReason:
        return self.errors[0].reason


def _reason_for(error: ErrorDetails) -> RejectionReason:
    location = tuple(_location(error).split("."))
    if error["type"] == "missing":
        return RejectionReason.MISSING_FIELD
    if location == ("category",):
        return RejectionReason.UNKNOWN_CATEGORY
    if location[-1:] == ("bsn",) and error["type"] == "value_error":
        return RejectionReason.INVALID_BSN
    if location == ("occurred_at",) and error["type"] == "value_error":
        return RejectionReason.FUTURE_TIME
    return RejectionReason.SCHEMA_VIOLATION


def _location(error: ErrorDetails) -> str:
    """Dotted field path, without the union tag pydantic inserts (subject.person.bsn)."""
    parts = [str(part) for part in error["loc"]]
    if len(parts) > 2 and parts[0] == "subject" and parts[1] in SUBJECT_KINDS:
        del parts[1]
    return ".".join(parts)


def _safe_hints(document: object, registry: Registry) -> tuple[str | None, str | None]:
    """The signal id and municipality, where valid: they are not personal data."""
    if not isinstance(document, dict):
        return None, None
    signal_id = document.get("signal_id")
    municipality = document.get("municipality")
    try:
        signal_id = str(uuid.UUID(str(signal_id))) if signal_id is not None else None
    except ValueError:
        signal_id = None
    known = isinstance(municipality, str) and registry.is_kind(municipality, OrganisationKind.MUNICIPALITY)
    return signal_id, municipality if known else None


def parse_submission(raw: bytes, registry: Registry) -> SignalSubmission | Invalid:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Invalid(
            (
                FieldError(
                    reason=RejectionReason.MALFORMED_JSON,
                    location="",
                    message=f"body is not UTF-8 JSON ({type(error).__name__}"
                    f" at position {getattr(error, 'pos', 0)})",
                ),
            )
        )
    signal_id, municipality = _safe_hints(document, registry)
    errors: list[FieldError] = []
    submission: SignalSubmission | None = None
    try:
        submission = SignalSubmission.model_validate(document)
    except ValidationError as error:
        errors.extend(
            FieldError(
                reason=_reason_for(detail),
                location=_location(detail),
                message=detail["msg"],
            )
            for detail in error.errors(include_url=False, include_input=False, include_context=False)
        )
    if (
        isinstance(document, dict)
        and isinstance(document.get("municipality"), str)
        and municipality is None
        and not any(error.location == "municipality" for error in errors)
    ):
        errors.append(
            FieldError(
                reason=RejectionReason.UNKNOWN_MUNICIPALITY,
                location="municipality",
                message="municipality is not a registered participant",
            )
        )
    if errors or submission is None:
        return Invalid(tuple(errors), signal_id=signal_id, municipality=municipality)
    return submission
