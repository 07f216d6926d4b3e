"""Composition root of the signals service: settings -> keys, stores, broker -> app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from services.http_common import (
    access_for,
    add_access_control,
    add_health_routes,
    task_alive,
)
from services.signals.erasure import Erasure
from services.signals.http import router
from services.signals.intake import SERVICE_ID, IntakeLimits, IntakePipeline
from services.signals.kafka_intake import intake_processor
from services.signals.kek_rotation import refuse_interrupted_rotation
from services.signals.keystore import SqlKeyStore
from services.signals.ledger import SqlSignalLedger
from services.signals.openapi import document_signal_contract
from services.signals.outcomes import OutcomeBoard, VerdictFollower
from services.signals.publishing import KafkaGateway
from services.signals.settings import SignalsSettings
from services.signals.submissions import HttpSubmissions
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.plumbing.kafka import ensure_declared_topics, faststream_broker
from shared.plumbing.logging import get_logger
from shared.plumbing.record_writer import RecordWriter
from shared.plumbing.sql import ensure_parent
from shared.plumbing.tracing import NO_NATIVE_TELEMETRY, configure_tracing

log = get_logger()


def create_app(settings: SignalsSettings) -> FastAPI:
    # Its own private keys only (SERVICE_KEYS): everyone else's are public, from the registry.
    refuse_interrupted_rotation(settings.keys_dir)  # some keys may be wrapped with the next KEK
    configure_tracing(SERVICE_ID, settings.otlp_endpoint)  # off unless SC_OTLP_ENDPOINT is set
    keys = KeyRing.for_service(SERVICE_ID, settings.keys_dir, generate_missing=settings.generate_missing_keys)
    registry = Registry.load(settings.config_dir, keys)
    database_url = ensure_parent(settings.signals_database_url)
    keystore = SqlKeyStore(database_url, keys.secret("key-encryption-key"))
    ledger = SqlSignalLedger(database_url)
    # Fail at start-up, not at the first accepted signal, when consent's public key is missing.
    registry.x25519_public("consent")
    signing_key = keys.ed25519_private(SERVICE_ID)
    writer = RecordWriter(signing_key, registry.source(SERVICE_ID), settings.topic_prefix)
    pipeline = IntakePipeline(
        registry,
        keys.secret("subject-pseudonyms"),
        keystore,
        ledger,
        signing_key.public_key(),
        keys.x25519_private(SERVICE_ID),
        IntakeLimits(
            max_record_bytes=settings.max_body_bytes,
            replay_window=timedelta(seconds=settings.replay_window_seconds),
        ),
    )
    board = OutcomeBoard()
    verdicts = VerdictFollower(settings, board, signing_key.public_key())
    processor = intake_processor(settings, pipeline, writer, board, settings.instance_id, settings.max_batch)
    broker = faststream_broker(settings, "safety-chain-signals", enable_idempotence=True, acks="all")
    gateway = KafkaGateway(broker, writer, settings.topic_prefix)
    tasks: dict[str, asyncio.Task[None]] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_declared_topics(settings, registry.partner_ids)
        await broker.start()
        await verdicts.start()  # before the HTTP intake writes: its callers' verdicts are followed
        await processor.start()
        tasks["verdicts"] = asyncio.create_task(verdicts.run(), name="signals-verdicts")
        tasks["intake"] = asyncio.create_task(processor.run(), name="signals-intake")
        log.info(
            "signals_started",
            port=settings.http_port,
            topic_prefix=settings.topic_prefix,
            instance=settings.instance_id,
        )
        yield
        for task in tasks.values():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        await processor.stop()
        await verdicts.stop()
        await broker.stop()

    app = FastAPI(title="safety-chain signals", version="1", lifespan=lifespan, telemetry=NO_NATIVE_TELEMETRY)
    app.state.loop_tasks = tasks  # what /healthz watches
    app.state.processor = processor
    app.state.registry = registry
    app.state.ledger = ledger
    app.state.submissions = HttpSubmissions(
        registry,
        pipeline,
        ledger,
        gateway,
        board,
        settings.max_body_bytes,
        signing_key,
        keys.x25519_private(SERVICE_ID).public_key(),
        settings.verdict_timeout_seconds,
    )
    app.state.erasure = Erasure(keystore, gateway)
    add_access_control(app, access_for(settings, registry, keys, SERVICE_ID), settings.max_request_bytes)

    async def readiness() -> dict[str, bool]:
        loop = tasks.get("intake")
        return {
            "kafka": await broker.ping(timeout=2.0),
            "intake": processor.ready and loop is not None and not loop.done(),
            "store": keystore.ping() and ledger.ping(),
        }

    def liveness() -> dict[str, bool]:
        return {
            "intake": task_alive(tasks.get("intake")) and processor.alive,
            "verdicts": task_alive(tasks.get("verdicts")),
        }

    add_health_routes(app, readiness, liveness)
    app.include_router(router)
    document_signal_contract(app)
    return app
