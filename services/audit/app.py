"""Composition root of the audit service.

Every replica serves queries and the console from the store; the one that holds the
sequencer's lease also consumes, appends and issues checkpoints (services/audit/log/sequencer.py,
leader.py). /readyz is ready for a healthy standby too; its checks name `intake` on the replica
that leads and `standby` on one that stands by.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.audit.console import add_console
from services.audit.console.providers import state_key
from services.audit.http import router
from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.ingest import AuditIntake, registry_signature_check, registry_sources
from services.audit.log.leader import LeaderDuties
from services.audit.log.outside import PublishedCheckpoints
from services.audit.log.sequencer import Sequencer
from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.store import AuditStore
from services.audit.log.verification import LogVerifier
from services.audit.queries.search import SubjectLookup
from services.audit.settings import AuditSettings
from services.http_common import (
    access_for,
    add_access_control,
    add_health_routes,
    task_alive,
)
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.events import AuditCheckpoint, AuditFailover
from shared.contracts.registry import Registry
from shared.contracts.tlog.note import Signer, Verifier
from shared.plumbing.kafka import SignedPublisher, ensure_declared_topics
from shared.plumbing.logging import get_logger
from shared.plumbing.tracing import NO_NATIVE_TELEMETRY, configure_tracing

log = get_logger()
SERVICE_ID = "audit"


def create_app(settings: AuditSettings, store: AuditStore | None = None) -> FastAPI:
    # Its own private keys only (SERVICE_KEYS): everyone else's are public, from the registry.
    configure_tracing(SERVICE_ID, settings.otlp_endpoint)  # off unless SC_OTLP_ENDPOINT is set
    keys = KeyRing.for_service("audit", settings.keys_dir, generate_missing=settings.generate_missing_keys)
    registry = Registry.load(settings.config_dir, keys)
    store = store or SqlAuditStore(settings.audit_database_url)
    read_log = SignedPublisher(settings, keys.ed25519_private(SERVICE_ID), registry.source(SERVICE_ID))

    def new_intake(epoch: int) -> AuditIntake:
        return AuditIntake(
            store,
            settings,
            registry_signature_check(registry),
            registry_sources(registry),
            max_batch=settings.audit_max_batch,
            gather_ms=settings.audit_gather_ms,
            epoch=epoch,
        )

    async def publish_checkpoint(checkpoint: AuditCheckpoint) -> None:
        await read_log.publish(SERVICE_ID, checkpoint)

    def new_issuer() -> CheckpointIssuer:
        return CheckpointIssuer(
            store,
            Signer(settings.audit_log_origin, keys.ed25519_private(SERVICE_ID)),
            publish_checkpoint,
            every_records=settings.checkpoint_every_records,
            every_seconds=settings.checkpoint_interval_seconds,
        )

    async def publish_failover(failover: AuditFailover) -> None:
        await read_log.publish(SERVICE_ID, failover)

    tasks: dict[str, asyncio.Task[None]] = {}
    leader = LeaderDuties(new_intake, new_issuer, publish_failover, tasks)
    sequencer = Sequencer(store, settings.instance_id, leader, lease_seconds=settings.audit_lease_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Topics must exist before the pattern subscription is made, or it would match none
        # until the next metadata refresh.
        await ensure_declared_topics(settings, registry.partner_ids)
        await read_log.start()
        await sequencer.start()
        tasks["sequencer"] = asyncio.create_task(sequencer.run(), name="audit-sequencer")
        log.info(
            "audit_started",
            port=settings.http_port,
            origin=settings.audit_log_origin,
            leads=sequencer.on_duty,
        )
        yield
        sequencer_task = tasks["sequencer"]
        sequencer_task.cancel()  # stops the intake and the issuer, lets the lease go
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(sequencer_task, return_exceptions=True)
        await read_log.stop()

    app = FastAPI(title="safety-chain audit", version="1", lifespan=lifespan, telemetry=NO_NATIVE_TELEMETRY)
    app.state.loop_tasks = tasks  # what /healthz watches
    app.state.sequencer = sequencer
    app.state.store = store
    app.state.read_log = read_log
    app.state.registry = registry
    app.state.subject_lookup = SubjectLookup(keys.secret("subject-pseudonyms"))
    app.state.processing_register_url = settings.processing_register_url
    app.state.last_verification = None  # services.audit.log.verification.LastVerification, once run
    log_key = Verifier(settings.audit_log_origin, keys.ed25519_public(SERVICE_ID))

    # read incrementally: each verification reads only the checkpoints published since the last
    outside_checkpoints = PublishedCheckpoints(settings, keys.ed25519_public(SERVICE_ID), log_key)
    app.state.outside_checkpoints = outside_checkpoints
    app.state.log_key = log_key
    app.state.verifier = LogVerifier(store, outside_checkpoints, log_key)  # one run at a time
    add_access_control(app, access_for(settings, registry, keys, SERVICE_ID), settings.max_request_bytes)

    async def readiness() -> dict[str, bool]:
        # A standby is ready: it serves queries from the same store.
        checks = {"store": store.ping(), "sequencer": task_alive(tasks.get("sequencer"))}
        intake = leader.intake
        if intake is None:
            return checks | {"standby": True}
        return checks | {"intake": intake.ready and task_alive(tasks.get("intake"))}

    def liveness() -> dict[str, bool]:
        # A standby consumes nothing: only its sequencer must run.
        checks = {"sequencer": task_alive(tasks.get("sequencer"))}
        intake = leader.intake
        if intake is None:
            return checks
        return checks | {
            "intake": task_alive(tasks.get("intake")) and intake.alive,
            "checkpoints": task_alive(tasks.get("checkpoints")),
        }

    add_health_routes(app, readiness, liveness)
    app.include_router(router)
    add_console(app, settings, registry, sign_in_key=state_key(keys.ed25519_private(SERVICE_ID)))
    return app
