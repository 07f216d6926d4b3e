"""What a use case says happened, before it is a Kafka record.

A use case (the intake pipeline, enforcement, erasure) returns `Emitted` events and
`Tombstone`s; one record writer (shared/plumbing/record_writer.py) turns each into the signed
record that carries it. What the writer derives is not repeated here: the topic comes from the
topic table (shared.contracts.topics, by the event's type, or the recipient's own topic), the
CloudEvents type from the event, the source from the writing service. What it cannot derive is:
the record key, the subject, the correlation id, the extensions and, where it matters, the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeAlias, TypeVar

from shared.contracts.events import Event

EventT_co = TypeVar("EventT_co", bound=Event, covariant=True)


@dataclass(frozen=True)
class Emitted(Generic[EventT_co]):
    """One event and the facts its record needs besides the event itself."""

    event: EventT_co
    key: str
    subject: str | None = None
    correlation_id: str | None = None  # None: the record starts a trace of its own
    recipient: str | None = None  # the partner whose own topic carries it; None: a central topic
    # By name, as the event declares them (Event.envelope_headers); None leaves out an optional one.
    extensions: Mapping[str, str | None] = field(default_factory=dict)
    time: datetime | None = None  # the envelope's ce_time; None: when the record is written


@dataclass(frozen=True)
class Tombstone:
    """The deletion of what a compacted topic holds under `key`: a record with no value, of the
    type of the events it deletes, whose signed envelope says who deleted what."""

    of: type[Event]
    key: str
    subject: str | None = None
    correlation_id: str | None = None
    extensions: Mapping[str, str | None] = field(default_factory=dict)
    time: datetime | None = None


Outgoing: TypeAlias = Emitted[Event] | Tombstone
"""Anything a use case hands to the record writer."""
