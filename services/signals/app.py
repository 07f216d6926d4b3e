"""Composition root of the signals service: settings -> registry, keys, broker -> app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.http_common import add_correlation_middleware, add_health_routes
from services.signals.http import router
from services.signals.intake import Intake
from services.signals.publishing import KafkaEventPublisher
from services.signals.settings import SignalsSettings
from shared.crypto.keys import KeyRing
from shared.kafka import ensure_declared_topics, faststream_broker
from shared.logging import get_logger
from shared.registry import Registry

log = get_logger()


def create_app(settings: SignalsSettings) -> FastAPI:
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
    registry = Registry.load(settings.config_dir, keys)
    broker = faststream_broker(settings, "safety-chain-signals", enable_idempotence=True, acks="all")
    intake = Intake(registry, keys.secret("subject-pseudonyms"), KafkaEventPublisher(broker, settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_declared_topics(settings, registry.partner_ids)
        await broker.start()
        log.info("signals_started", port=settings.http_port, topic_prefix=settings.topic_prefix)
        yield
        await broker.stop()

    app = FastAPI(title="safety-chain signals", version="1", lifespan=lifespan)
    app.state.intake = intake
    app.state.max_body_bytes = settings.max_body_bytes
    add_correlation_middleware(app)

    async def readiness() -> dict[str, bool]:
        return {"kafka": await broker.ping(timeout=2.0)}

    add_health_routes(app, readiness)
    app.include_router(router)
    return app
