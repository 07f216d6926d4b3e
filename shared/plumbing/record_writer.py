"""The one record writer: what a use case emitted, as the signed Kafka record that carries it.

Every record a service writes about what happened goes through `RecordWriter.record`: the topic
from the topic table (shared.contracts.topics.topic_carrying), the CloudEvents type from the
event, the extensions checked against the event's declaration (shared.contracts.events), the
source of the writing service, and the Ed25519 signature over the exact value bytes and every
ce_ header (shared.contracts.crypto.signing). Sending the record is its caller's: the
transactional loop (shared/plumbing/transactional.py) or a producer outside any transaction.

Call it inside the span the record is written in: its `ce_traceparent` names that span.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.crypto.signing import sign_record
from shared.contracts.emitted import Emitted, Outgoing
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import Event
from shared.contracts.topics import is_compacted, topic_carrying
from shared.plumbing.tracing import traced_headers


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes | None  # None: a tombstone on a compacted topic
    headers: Headers


class RecordWriter:
    """Writes the records of one service: signed with its key, in its name (`source`, its
    CloudEvents source, `Registry.source(<service>)`), on the topics of one deployment
    (`topic_prefix`)."""

    def __init__(self, signing_key: Ed25519PrivateKey, source: str, topic_prefix: str) -> None:
        self._signing_key = signing_key
        self._source = source
        self._prefix = topic_prefix

    def record(self, outgoing: Outgoing) -> OutgoingRecord:
        """The signed record of `outgoing`. Raises NoTopicError for an event no topic carries
        (for that recipient), ValueError for extensions the event does not declare (or lacks)
        and for a tombstone on a topic that is not compacted."""
        if isinstance(outgoing, Emitted):
            kind: type[Event] = type(outgoing.event)
            topic = topic_carrying(kind.event_type, outgoing.recipient)
            value: bytes | None = outgoing.event.to_bytes()
        else:
            kind, value = outgoing.of, None
            topic = topic_carrying(kind.event_type)
            if not is_compacted(topic):
                raise ValueError(f"a tombstone on {topic.name}, which is not compacted, deletes nothing")
        # Unset, the envelope's own defaults apply: a new trace, stamped now.
        optional: dict[str, Any] = {}
        if outgoing.correlation_id is not None:
            optional["correlation_id"] = outgoing.correlation_id
        if outgoing.time is not None:
            optional["time"] = outgoing.time
        envelope = Envelope(
            source=self._source,
            type=kind.event_type,
            subject=outgoing.subject,
            extensions=kind.envelope_extensions(**outgoing.extensions),
            **optional,
        )
        # A tombstone is signed over the empty value: a reader believes a deletion only from the
        # one who may delete (its ce_subject names the key).
        headers = sign_record(self._signing_key, value or b"", traced_headers(envelope))
        return OutgoingRecord(topic.prefixed(self._prefix), outgoing.key.encode(), value, headers)

    def records(self, outgoing: Iterable[Outgoing]) -> list[OutgoingRecord]:
        """The records of `outgoing`, in its order (the order they are to be produced in)."""
        return [self.record(each) for each in outgoing]
