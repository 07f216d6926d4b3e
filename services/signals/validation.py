"""Turn the bytes a municipal system sent into a signal, or into FieldErrors.

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
from shared.contracts.registry import OrganisationKind, Registry
from shared.contracts.signal import (
    SUBJECT_KINDS,
    Category,
    SignalSubmission,
    UncategorisedSignal,
    signal_adapter,
)

_CATEGORY_TAGS = frozenset(category.value for category in Category)
_VALUE_ERROR_REASONS = {
    "bsn": RejectionReason.INVALID_BSN,
    "postcode": RejectionReason.INVALID_POSTCODE,
    "kvk_number": RejectionReason.INVALID_KVK,
    "occurred_at": RejectionReason.FUTURE_TIME,
}


@dataclass(frozen=True)
class Invalid:
    """Why a submission was refused, plus what could safely be read from it."""

    errors: tuple[FieldError, ...]
    signal_id: str | None = None
    municipality: str | None = None

    @property
    def reason(self) -> RejectionReason:
        return self.errors[0].reason

    @classmethod
    def because(cls, reason: RejectionReason, message: str, location: str = "") -> Invalid:
        return cls((FieldError(reason=reason, location=location, message=message),))


def _path(error: ErrorDetails) -> list[str]:
    """Field path without the union tags pydantic inserts (huiselijk_geweld.subject.person.bsn)."""
    parts = [str(part) for part in error["loc"]]
    if parts and parts[0] in _CATEGORY_TAGS:
        del parts[0]
    if len(parts) > 2 and parts[0] == "subject" and parts[1] in SUBJECT_KINDS:
        del parts[1]
    return parts


def _field_error(error: ErrorDetails) -> FieldError:
    path = _path(error)
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        reason = (
            RejectionReason.UNKNOWN_CATEGORY if kind == "union_tag_invalid" else RejectionReason.MISSING_FIELD
        )
        message = (
            f"category must be one of: {', '.join(sorted(_CATEGORY_TAGS))}"
            if kind == "union_tag_invalid"
            else "Field required"
        )
        return FieldError(reason=reason, location="category", message=message)
    if kind == "missing":
        reason = RejectionReason.MISSING_FIELD
    elif kind == "extra_forbidden":
        reason = RejectionReason.UNKNOWN_FIELD
    elif path == ["summary"] and kind == "string_too_long":
        reason = RejectionReason.SUMMARY_TOO_LONG
    elif kind == "value_error" and path and path[-1] in _VALUE_ERROR_REASONS:
        reason = _VALUE_ERROR_REASONS[path[-1]]
    else:
        reason = RejectionReason.SCHEMA_VIOLATION
    return FieldError(reason=reason, location=".".join(path), message=error["msg"])


def _field_errors(error: ValidationError) -> list[FieldError]:
    details = error.errors(include_url=False, include_input=False, include_context=False)
    return [_field_error(detail) for detail in details]


def _safe_hints(document: object, registry: Registry) -> tuple[str | None, str | None]:
    """The signal id and municipality, where valid: they are not personal data."""
    if not isinstance(document, dict):
        return None, None
    raw_id, municipality = document.get("signal_id"), document.get("municipality")
    try:
        signal_id = str(uuid.UUID(str(raw_id))) if raw_id is not None else None
    except ValueError:
        signal_id = None
    known = isinstance(municipality, str) and registry.is_kind(municipality, OrganisationKind.MUNICIPALITY)
    return signal_id, municipality if known else None


def decode_json(raw: bytes) -> object | Invalid:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Invalid.because(RejectionReason.NOT_UTF8, f"body is not UTF-8 (byte {error.start})")
    try:
        document: object = json.loads(text)
    except json.JSONDecodeError as error:
        return Invalid.because(
            RejectionReason.MALFORMED_JSON, f"body is not JSON ({error.msg} at position {error.pos})"
        )
    except RecursionError:  # json.loads recurses per level: a few thousand `[` exhaust the stack
        return Invalid.because(RejectionReason.MALFORMED_JSON, "body is nested too deeply")
    return document


def parse_submission(
    raw: bytes, registry: Registry, default_signal_id: uuid.UUID | None = None
) -> SignalSubmission | Invalid:
    """`default_signal_id` stands in for a missing `signal_id`; it must be stable for the
    submission (the pipeline derives it from the intake record), or retries would not match."""
    document = decode_json(raw)
    if isinstance(document, Invalid):
        return document
    if default_signal_id is not None and isinstance(document, dict) and "signal_id" not in document:
        document = {"signal_id": str(default_signal_id), **document}
    signal_id, municipality = _safe_hints(document, registry)
    errors: list[FieldError] = []
    submission: SignalSubmission | None = None
    try:
        submission = signal_adapter.validate_python(document)
    except ValidationError as error:
        errors.extend(_field_errors(error))
        if errors[0].location == "category" and isinstance(document, dict):
            # Without a known category pydantic stops at the tag; check the shared fields too.
            try:
                UncategorisedSignal.model_validate(document)
            except ValidationError as shared_fields:
                errors.extend(e for e in _field_errors(shared_fields) if e.location != "category")
    named = document.get("municipality") if isinstance(document, dict) else None
    if (
        isinstance(named, str)
        and municipality is None
        and not any(e.location == "municipality" for e in errors)
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
