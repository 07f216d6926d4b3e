"""OpenTelemetry traces across HTTP, Kafka and the stores, continuing the W3C `traceparent`
every record already carries (`ce_traceparent`, whose trace id is the correlation id).

Off unless configured: with `SC_OTLP_ENDPOINT` set (e.g. http://otel-collector:4318/v1/traces)
a service exports its spans over OTLP/HTTP; without it no span is recorded and records carry a
fresh span id as before. One trace per correlation id: an HTTP call's span, the processing span
of each record it caused and the store calls inside them share the trace id that the logs name.

Span names and attributes carry routes (never paths), topics, partitions, offsets, store
operations and status codes (no event types yet: a record's span is named by its topic): never
a record's key (a pseudonym), a signal or delivery id, or anything from a payload. A partner's
records carry its own trace id (the platform's would link partners), so a partner's traces never
join the platform's.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from typing import Any, Final

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    set_span_in_context,
)

from shared.contracts.envelope import Envelope, Headers

TRACER_NAME: Final = "safety-chain"
NO_NATIVE_TELEMETRY: Final[TelemetryConfig] = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own telemetry records every request's path and query, which here can hold a
subject's pseudonym: the services make their own HTTP spans (route templates only)."""
_configured: dict[str, TracerProvider] = {}


def configure_tracing(
    service: str,
    endpoint: str | None,
    exporter: SpanExporter | None = None,
    processor: SpanProcessor | None = None,
) -> TracerProvider | None:
    """Install a tracer provider exporting to `endpoint` (OTLP/HTTP), or to `exporter` /
    `processor` (tests); with none of them, tracing stays off. Idempotent per process."""
    if endpoint is None and exporter is None and processor is None:
        return None
    if "provider" in _configured:
        provider = _configured["provider"]
    else:
        provider = TracerProvider(resource=Resource.create({"service.name": f"safety-chain-{service}"}))
        trace.set_tracer_provider(provider)
        _configured["provider"] = provider
    if processor is not None:
        provider.add_span_processor(processor)
    elif exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def parent_of(correlation_id: str, traceparent: str | None = None) -> Any:
    """The context whose trace id is `correlation_id`: as the remote parent the traceparent
    names when it belongs to that trace, else a root of it."""
    span_id = secrets.randbits(64) or 1
    if traceparent:
        parts = traceparent.split("-")
        if len(parts) == 4 and parts[1] == correlation_id and len(parts[2]) == 16:
            with contextlib.suppress(ValueError):
                span_id = int(parts[2], 16) or span_id
    if len(correlation_id) != 32:
        return None  # not a W3C trace id (a poison record's): no parent
    try:
        trace_id = int(correlation_id, 16)
    except ValueError:
        return None
    if not trace_id:
        return None
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return set_span_in_context(NonRecordingSpan(remote))


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    correlation_id: str | None = None,
    traceparent: str | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span]:
    """A span, child of the current one, or of the record's or request's trace when given."""
    context = parent_of(correlation_id, traceparent) if correlation_id else None
    with tracer().start_as_current_span(name, context=context, kind=kind, attributes=attributes) as current:
        yield current


def span_id_for(correlation_id: str) -> str | None:
    """The current span's id (16 hex) when it records and belongs to `correlation_id`'s trace:
    what a record produced inside it names as its parent in `ce_traceparent`."""
    context = trace.get_current_span().get_span_context()
    if not (context.is_valid and trace.get_current_span().is_recording()):
        return None
    if f"{context.trace_id:032x}" != correlation_id:
        return None
    return f"{context.span_id:016x}"


def traced_headers(envelope: Envelope) -> Headers:
    """`envelope`'s headers, its `ce_traceparent` naming the current span as the parent."""
    return envelope.to_headers(span_id_for(envelope.correlation_id))
