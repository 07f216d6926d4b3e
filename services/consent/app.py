"""Composition root of the consent service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from services.consent.admin import AgreementAdmin, ConfiguredAgreement
from services.consent.agreements import load_agreements, load_signatures, registry_problems
from services.consent.directives import DirectiveAdmin
from services.consent.enforcement import SERVICE_ID, Enforcer
from services.consent.explain import Explainer
from services.consent.http import router
from services.consent.settings import ConsentSettings
from services.consent.state import ConsentState
from services.consent.transport import consent_processor
from services.http_common import (
    access_for,
    add_access_control,
    add_health_routes,
    task_alive,
)
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.plumbing.kafka import SignedPublisher, ensure_declared_topics
from shared.plumbing.logging import get_logger
from shared.plumbing.record_writer import RecordWriter
from shared.plumbing.tracing import NO_NATIVE_TELEMETRY, configure_tracing

log = get_logger()


def create_app(settings: ConsentSettings) -> FastAPI:
    # Its own private keys only (SERVICE_KEYS): everyone else's are public, from the registry.
    configure_tracing(SERVICE_ID, settings.otlp_endpoint)  # off unless SC_OTLP_ENDPOINT is set
    keys = KeyRing.for_service(SERVICE_ID, settings.keys_dir, generate_missing=settings.generate_missing_keys)
    registry = Registry.load(settings.config_dir, keys)
    configured = load_agreements(settings.config_dir / "agreements")
    problems = [f"{a.id}: {p}" for a in configured for p in registry_problems(a, registry)]
    if problems:
        raise ValueError("agreements name unknown parties: " + "; ".join(problems))
    # Fail at start-up, not at the first delivery, when a partner's public key is not configured.
    for partner in registry.partner_ids:
        registry.x25519_public(partner)
    signing_key = keys.ed25519_private(SERVICE_ID)
    enforcer = Enforcer(registry, keys.secret("partner-pseudonyms"))
    writer = RecordWriter(signing_key, registry.source(SERVICE_ID), settings.topic_prefix)
    state = ConsentState(
        settings,
        SERVICE_ID,
        keys.x25519_private(SERVICE_ID),
        signing_key.public_key(),
        registry.ed25519_public("signals"),
        registry.ed25519_public,
    )
    publisher = SignedPublisher(settings, signing_key, registry.source(SERVICE_ID))
    agreement_admin = AgreementAdmin(state, publisher, registry)
    processor = consent_processor(settings, enforcer, writer, state, registry.ed25519_public("signals"))
    tasks: dict[str, asyncio.Task[None]] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_declared_topics(settings, registry.partner_ids)
        await state.start(settings.startup_catch_up_seconds)
        await publisher.start()
        # Agreements live on consent.agreements.v1; the files only seed versions it lacks.
        seeded = await agreement_admin.seed(
            [
                ConfiguredAgreement(
                    agreement, load_signatures(settings.agreement_signature_folders, agreement)
                )
                for agreement in configured
            ]
        )
        await processor.start()
        tasks["loop"] = asyncio.create_task(processor.run(), name="consent-processor")
        log.info(
            "consent_started",
            port=settings.http_port,
            seeded=seeded,
            agreements=[a.id for a in state.agreements_in_force(datetime.now(UTC))],
        )
        yield
        tasks["loop"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks["loop"]
        await processor.stop()
        await publisher.stop()
        await state.stop()

    app = FastAPI(title="safety-chain consent", version="1", lifespan=lifespan, telemetry=NO_NATIVE_TELEMETRY)
    app.state.loop_tasks = tasks  # what /healthz watches
    app.state.registry = registry
    app.state.state = state
    app.state.agreement_admin = agreement_admin
    app.state.directive_admin = DirectiveAdmin(state, publisher)
    app.state.explainer = Explainer(state, registry)
    add_access_control(app, access_for(settings, registry, keys, SERVICE_ID), settings.max_request_bytes)

    async def readiness() -> dict[str, bool]:
        loop = tasks.get("loop")
        return {
            "kafka": processor.ready,
            "processor": loop is not None and not loop.done(),
            "state": state.following,
        }

    def liveness() -> dict[str, bool]:
        return {"loop": task_alive(tasks.get("loop")) and processor.alive}

    add_health_routes(app, readiness, liveness)
    app.include_router(router)
    return app
