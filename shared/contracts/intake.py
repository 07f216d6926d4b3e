"""The intake record format (signals.intake.v1): one signal sealed to the signals service, the
whole record signed by the publishing municipality. The publisher SDK writes it, the signals
service writes it for its HTTP submissions and reads it from Kafka."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from shared.contracts.crypto.sealing import b64encode, intake_context, seal
from shared.contracts.crypto.signing import sign_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import SIGNAL_SUBMITTED_HEADERS, SIGNAL_SUBMITTED_TYPE, SealedPayload
from shared.contracts.sources import parse_source

SUBMITTED_TYPE = SIGNAL_SUBMITTED_TYPE
INTAKE_RECIPIENT = "signals"


def intake_record(
    signal_json: bytes,
    source: str,
    signing_key: Ed25519PrivateKey,
    signals_key: X25519PublicKey,
    correlation_id: str | None = None,
    extensions: dict[str, str] | None = None,
    parent_span_id: str | None = None,
) -> tuple[bytes, Headers]:
    """The value and headers of one intake record: the signal sealed to the signals service,
    the whole record signed with `signing_key`. `source` is the publishing municipality's
    CloudEvents source, urn:nld:oin:<its OIN>:systeem:<its system> (`Registry.source`); the
    signals service accepts the record only from the organisation that source names (ValueError
    here for a malformed one). The signal's bytes are sealed exactly as given. `extensions` may
    hold only the ones declared in SIGNAL_SUBMITTED_HEADERS (ValueError). `parent_span_id`: the
    span the record is written in, named as the parent in its `ce_traceparent`."""
    parse_source(source)
    envelope = Envelope(
        source=source,
        type=SUBMITTED_TYPE,
        extensions=SIGNAL_SUBMITTED_HEADERS.values("intake record", **(extensions or {})),
        **({"correlation_id": correlation_id} if correlation_id else {}),
    )
    sealed = seal(signals_key, signal_json, intake_context(envelope.id, INTAKE_RECIPIENT))
    value = SealedPayload(recipient=INTAKE_RECIPIENT, ciphertext=b64encode(sealed)).model_dump_json().encode()
    return value, sign_record(signing_key, value, envelope.to_headers(parent_span_id))
