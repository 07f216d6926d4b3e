"""Traces on the real broker, signals in this process: one trace per correlation id from the
HTTP call through the intake record's processing to the key store, continued in the records it
writes, and nothing in any span that names a person."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devstack.kafka import KafkaAccess
from devstack.keys import development_issuer, prepare_development_keys
from services.signals.app import create_app
from services.signals.settings import SignalsSettings
from shared.plumbing.policy import Role
from shared.plumbing.tracing import configure_tracing
from tests.e2e.stack import read_all
from tests.unit.test_signal_contract import valid_submission

pytestmark = pytest.mark.kafka
SPANS = InMemorySpanExporter()


async def test_one_trace_runs_from_the_http_call_through_intake_into_the_records_written(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    configure_tracing("signals", None, processor=SimpleSpanProcessor(SPANS))
    settings = SignalsSettings(
        **kafka_access.settings("signals"),
        topic_prefix=kafka_prefix,
        keys_dir=tmp_path / "keys",
        signals_database_url=f"sqlite:///{tmp_path / 'signals.db'}",
    )
    prepare_development_keys(settings.keys_dir, settings.config_dir)
    token = development_issuer(settings.keys_dir).issue("gm0363", [Role.PUBLISHER], "signals")
    correlation_id, caller_span = uuid.uuid4().hex, "00f067aa0ba902b7"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signals") as client:
            answer = await client.post(
                "/v1/signals",
                json=valid_submission(),
                headers={
                    "authorization": f"Bearer {token}",
                    "x-correlation-id": correlation_id,
                    "traceparent": f"00-{correlation_id}-{caller_span}-01",
                },
                timeout=60,
            )
            assert answer.status_code == 202, answer.text
            accepted = await read_all(kafka_access.client_options(), settings.topic("signals.accepted.v1"))
            # a path that names a subject: its span names the route template only
            clerk = development_issuer(settings.keys_dir).issue("gm0363", [Role.SUBJECT_RIGHTS], "signals")
            erased = await client.post(
                f"/v1/subjects/{answer.json()['subject_pseudonym']}/erasure",
                headers={"authorization": f"Bearer {clerk}"},
                timeout=60,
            )
            assert erased.status_code == 202, erased.text

    mine = [s for s in SPANS.get_finished_spans() if f"{s.context.trace_id:032x}" == correlation_id]
    by_name = {s.name: s for s in mine}
    assert [s.name for s in mine if s.kind is SpanKind.SERVER] == ["POST /v1/signals"]  # FastAPI's own: off
    http = by_name["POST /v1/signals"]
    assert http.kind is SpanKind.SERVER and http.parent is not None
    assert f"{http.parent.span_id:016x}" == caller_span  # the caller's traceparent continued
    intake = by_name["process signals.intake.v1"]
    assert intake.kind is SpanKind.CONSUMER and intake.parent is not None
    assert http.context.span_id in ancestors(intake, mine)  # the intake record carried the call's trace
    keystore = by_name["keystore.data_key"]
    assert keystore.parent is not None and keystore.parent.span_id == intake.context.span_id
    # the accepted record names the processing span as its parent
    traceparents = [dict(r.headers)["ce_traceparent"].decode() for r in accepted]
    assert f"00-{correlation_id}-{intake.context.span_id:016x}-01" in traceparents
    # nothing personal in any span of the trace
    everything = SPANS.get_finished_spans()
    assert any(s.name == "POST /v1/subjects/{pseudonym}/erasure" for s in everything)
    text = json.dumps([{"name": s.name, "attributes": dict(s.attributes or {})} for s in everything])
    named = answer.json()
    for secret in (valid_submission()["subject"]["bsn"], named["signal_id"], named["subject_pseudonym"]):
        assert secret not in text


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> set[int]:
    """The span ids above `span`, following parents through `spans`."""
    by_id = {s.context.span_id: s for s in spans}
    found: set[int] = set()
    while span.parent is not None and span.parent.span_id not in found:
        found.add(span.parent.span_id)
        if span.parent.span_id not in by_id:
            break
        span = by_id[span.parent.span_id]
    return found
