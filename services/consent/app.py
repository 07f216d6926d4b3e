"""Composition root of the consent service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.consent.agreements import load_agreements
from services.consent.enforcement import SERVICE_ID, Enforcer
from services.consent.settings import ConsentSettings
from services.consent.subject_keys import SubjectKeyCache
from services.consent.transport import consent_processor
from services.http_common import add_correlation_middleware, add_health_routes
from shared.crypto.keys import KeyRing
from shared.kafka import ensure_declared_topics
from shared.logging import get_logger
from shared.registry import Registry

log = get_logger()


def create_app(settings: ConsentSettings) -> FastAPI:
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
    registry = Registry.load(settings.config_dir, keys)
    agreements = load_agreements(settings.config_dir / "agreements")
    enforcer = Enforcer(
        registry,
        agreements,
        keys.ed25519_private(SERVICE_ID),
        keys.secret("partner-pseudonyms"),
        settings.topic_prefix,
    )
    subject_keys = SubjectKeyCache(settings, SERVICE_ID, keys.x25519_private(SERVICE_ID))
    processor = consent_processor(settings, enforcer, subject_keys, registry.ed25519_public("signals"))
    tasks: dict[str, asyncio.Task[None]] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_declared_topics(settings, registry.partner_ids)
        await subject_keys.start()
        await processor.start()
        tasks["loop"] = asyncio.create_task(processor.run(), name="consent-processor")
        log.info("consent_started", port=settings.http_port, agreements=[a.id for a in agreements])
        yield
        tasks["loop"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks["loop"]
        await processor.stop()
        await subject_keys.stop()

    app = FastAPI(title="safety-chain consent", version="1", lifespan=lifespan)
    add_correlation_middleware(app)

    async def readiness() -> dict[str, bool]:
        loop = tasks.get("loop")
        return {
            "kafka": processor.ready,
            "processor": loop is not None and not loop.done(),
            "subject_keys": subject_keys.following,
        }

    add_health_routes(app, readiness)

    @app.get("/v1/agreements", tags=["agreements"])
    async def list_agreements() -> list[dict[str, object]]:
        return [agreement.model_dump(mode="json") for agreement in agreements]

    return app
