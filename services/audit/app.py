"""Composition root of the audit service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.audit.http import router
from services.audit.settings import AuditSettings
from services.audit.store import AuditStore, SqlAuditStore
from services.audit.transport import register_audit_subscriber, registry_signature_check
from services.http_common import add_correlation_middleware, add_health_routes
from shared.crypto.keys import KeyRing
from shared.kafka import ensure_declared_topics, faststream_broker
from shared.logging import get_logger
from shared.registry import Registry

log = get_logger()


def create_app(settings: AuditSettings, store: AuditStore | None = None) -> FastAPI:
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
    registry = Registry.load(settings.config_dir, keys)
    store = store or SqlAuditStore(settings.audit_database_url)
    # Metadata refreshes every 10 s so the pattern subscription sees partner topics added later.
    broker = faststream_broker(settings, "safety-chain-audit", metadata_max_age_ms=10_000)
    register_audit_subscriber(broker, store, settings, registry_signature_check(registry))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Topics must exist before the pattern subscription is made, or it would match none
        # until the next metadata refresh.
        await ensure_declared_topics(settings, registry.partner_ids)
        await broker.start()
        log.info("audit_started", port=settings.http_port)
        yield
        await broker.stop()

    app = FastAPI(title="safety-chain audit", version="1", lifespan=lifespan)
    app.state.store = store
    add_correlation_middleware(app)

    async def readiness() -> dict[str, bool]:
        return {"kafka": await broker.ping(timeout=2.0), "store": store.ping()}

    add_health_routes(app, readiness)
    app.include_router(router)
    return app
