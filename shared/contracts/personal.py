"""The personal payload of an accepted signal: the contract between signals and consent that no
topic shows, because it only ever travels encrypted.

`SignalAccepted.personal` holds it, encrypted with the data key of its subject and providing
municipality (shared.contracts.crypto.datakeys, ADR 0009). The signals service writes it from
the validated submission; consent opens it only to deliver the fields an agreement permits
(services/consent/enforcement.py).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from shared.contracts.signal import SignalSubmission, Subject


class PersonalPayload(BaseModel):
    """Who a signal is about, what happened, and the attributes of its category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: Subject = Field(description="The subject as submitted: BSN and name, address, or KvK number.")
    summary: str = Field(description="What happened, in the municipality's words.")
    # JSON as validated at intake, by the category's own model (shared.contracts.signal).
    # Validating it again on reading would apply rules that depend on the day (a child's age)
    # to a signal that was accepted.
    attributes: dict[str, JsonValue] = Field(description="The category's attributes, by name.")

    @classmethod
    def of(cls, submission: SignalSubmission) -> PersonalPayload:
        return cls(
            subject=submission.subject,
            summary=submission.summary,
            attributes=submission.attributes.model_dump(mode="json"),
        )

    def to_bytes(self) -> bytes:
        # json.dumps rather than model_dump_json: the very bytes the signals service wrote before
        # this model existed (non-ASCII escaped, a space after each separator).
        return json.dumps(self.model_dump(mode="json")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> PersonalPayload:
        """Raises pydantic.ValidationError (a ValueError) for anything that is not such a payload."""
        return cls.model_validate_json(raw)
