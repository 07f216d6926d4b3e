"""CloudEvents 1.0 envelope in Kafka binary content mode.

Each attribute travels as a record header `ce_<attribute>`; the record value is the event's
JSON data and its media type sits in `content-type`. Correlation uses the CloudEvents
distributed-tracing extension: `ce_traceparent` holds a W3C traceparent whose trace id is the
correlation id of the request that started the exchange.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
TYPE_PREFIX = "nl.safetychain."

Headers = list[tuple[str, bytes]]


def new_correlation_id() -> str:
    """A W3C trace id: 32 lower-case hex digits, not all zero."""
    return secrets.token_hex(16)


def is_correlation_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value) and set(value) != {"0"}


ENVELOPE_PROBLEM = "the CloudEvents headers are missing, without a value, not UTF-8 or not CloudEvents 1.0"
"""What to say of a record whose headers `Envelope.from_headers` refuses: its own message may
quote a header the record carried, so a reader that keeps or echoes the problem says this."""


class Envelope(BaseModel):
    """The CloudEvents context attributes of one record."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str = Field(description="The producing organisation or service, e.g. gm0363.")
    type: str = Field(description="Versioned event type, e.g. nl.safetychain.signal.accepted.v1.")
    time: datetime | None = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When the event happened; a new envelope is stamped now. None only for a"
        " received record that carried no ce_time (CloudEvents makes it optional): nothing is"
        " invented for it, so a consumer that needs a time MUST refuse such a record.",
    )
    subject: str | None = Field(default=None, description="Subject pseudonym, where one applies.")
    correlation_id: str = Field(default_factory=new_correlation_id)
    content_type: str = JSON_CONTENT_TYPE
    extensions: dict[str, str] = Field(
        default_factory=dict, description="Further ce_ attributes, e.g. signalid, agreementid."
    )

    def traceparent(self, parent_span_id: str | None = None) -> str:
        """W3C traceparent: the correlation id's trace, with `parent_span_id` (16 hex, the
        span the record was written in, see shared/plumbing/tracing.py) or a fresh span id."""
        return f"00-{self.correlation_id}-{parent_span_id or secrets.token_hex(8)}-01"

    def to_headers(self, parent_span_id: str | None = None) -> Headers:
        headers: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("content-type", self.content_type.encode()),
            ("ce_traceparent", self.traceparent(parent_span_id).encode()),
        ]
        if self.time is not None:
            headers.insert(4, ("ce_time", self.time.isoformat().encode()))
        if self.subject is not None:
            headers.append(("ce_subject", self.subject.encode()))
        headers.extend((f"ce_{name}", value.encode()) for name, value in sorted(self.extensions.items()))
        return headers

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]]) -> Envelope:
        """Parse binary-mode headers; raises ValueError when a required attribute is missing,
        or when a CloudEvents header (or content-type) has no value or is not UTF-8.

        Only `ce_*` headers and `content-type` are read: other headers carry no meaning here
        (and are outside the signature, see shared.contracts.crypto.signing). `time` is None when no
        `ce_time` was sent.
        """
        values: dict[str, str] = {}
        for name, raw in headers:
            if not (name.startswith("ce_") or name == "content-type"):
                continue
            if not isinstance(raw, bytes):  # Kafka allows a null header value
                raise ValueError(f"header {name!r} has no value")
            values[name] = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
        missing = [name for name in ("ce_specversion", "ce_id", "ce_source", "ce_type") if name not in values]
        if missing:
            raise ValueError(f"missing CloudEvents headers: {', '.join(missing)}")
        if values["ce_specversion"] != SPEC_VERSION:
            raise ValueError(f"unsupported specversion {values['ce_specversion']!r}")
        traceparent = values.get("ce_traceparent", "")
        parts = traceparent.split("-")
        correlation_id = parts[1] if len(parts) == 4 and is_correlation_id(parts[1]) else new_correlation_id()
        known = {
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "ce_traceparent",
            "content-type",
            "ce_signature",  # signature headers belong to the record, not to the event
            "ce_signaturekeyid",
        }
        return cls(
            id=values["ce_id"],
            source=values["ce_source"],
            type=values["ce_type"],
            time=datetime.fromisoformat(values["ce_time"]) if "ce_time" in values else None,
            subject=values.get("ce_subject"),
            correlation_id=correlation_id,
            content_type=values.get("content-type", JSON_CONTENT_TYPE),
            extensions={
                name.removeprefix("ce_"): value
                for name, value in values.items()
                if name.startswith("ce_") and name not in known
            },
        )
