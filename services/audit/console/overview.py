"""The console's overview pages: agreements and their history, the dashboard, the log's
integrity and the proof of one record. Like pages.py: signed-in privacy officers only, scoped
by the policy, every read of records logged."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.audit.console.i18n import CATALOGUES, language_of, translate
from services.audit.console.pages import names_of, store_of
from services.audit.console.session import console_grant
from services.audit.console.templating import render
from services.audit.http import log_read, scope_of
from services.audit.log.proofs import NotYetProvable, RecordProof, prove
from services.audit.log.query import Page, RecordQuery, in_scope
from services.audit.log.record import AuditRecord
from services.audit.log.store import every_page
from services.audit.log.verification import LogVerifier
from services.audit.queries.agreement_history import histories
from services.audit.queries.search import InvalidCursorError, decode_cursor, record_time, split_page
from services.audit.queries.statistics import Statistics, count
from services.http_auth import Grant
from shared.contracts.agreements import AgreementProposed, AgreementPublished
from shared.contracts.events import ExchangeDecided, SignalDelivered, SignalRejected
from shared.plumbing.policy import Action, Resource, authorise

router = APIRouter(prefix="/console", include_in_schema=False)
Officer = Annotated[Grant, Depends(console_grant(Action.READ_AUDIT))]
Verifier = Annotated[Grant, Depends(console_grant(Action.VERIFY_AUDIT))]
PERIODS = (7, 30, 90)
RECENT_CHECKPOINTS = 200  # how far back the integrity page looks for each witness's cosignature
PALETTE = ("#154273", "#a2231d", "#39870c", "#e17000", "#6d2f9b", "#007bc7", "#5c5c5c", "#b35900")
"""Chart colours: the Rijkshuisstijl's dark blue, red, green, orange, violet, light blue, grey,
brown; each with at least 3:1 contrast on white (WCAG 1.4.11)."""


@router.get("/agreements")
async def agreements(request: Request, grant: Officer) -> Response:
    """Agreements the officer's organisation is party to (every one for the platform's), as
    READ_AGREEMENT allows: the parties are in each change's record."""
    store = store_of(request)
    records = []
    for event_type in (AgreementPublished.event_type, AgreementProposed.event_type):
        # verified changes only: a forged one names whatever parties its writer likes
        records += await asyncio.to_thread(store.records, RecordQuery(event_type=event_type, flagged=False))
    found = [
        history
        for history in histories(records)
        if authorise(grant.principal, Action.READ_AGREEMENT, Resource(parties=history.parties))
    ]
    shown = sum(len(history.changes) for history in found)
    await log_read(request, request.app.state.read_log, grant, {"page": "agreements"}, shown)
    return render(request, "agreements.html", {"agreements": found, "names": names_of(request)})


def chart_configs(statistics: Statistics, names: dict[str, str], language: Any) -> dict[str, Any]:
    """Chart.js configurations (data only; console.js draws them)."""
    days = [day.isoformat() for day in statistics.days]
    flow = {
        "type": "bar",
        "data": {
            "labels": days,
            "datasets": [
                {"label": names.get(recipient, recipient), "data": counts, "backgroundColor": PALETTE[n % 8]}
                for n, (recipient, counts) in enumerate(statistics.per_day.items())
            ],
        },
        "options": {
            "animation": False,
            "maintainAspectRatio": False,
            "scales": {
                "x": {"stacked": True},
                "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
            },
        },
    }
    refusals = {
        "type": "bar",
        "data": {
            "labels": [reason_text(language, reason) for reason in statistics.refusals],
            "datasets": [
                {
                    "label": translate(language, "dashboard.refusals"),
                    "data": list(statistics.refusals.values()),
                    "backgroundColor": PALETTE[1],
                }
            ],
        },
        "options": {
            "animation": False,
            "maintainAspectRatio": False,
            "indexAxis": "y",
            "plugins": {"legend": {"display": False}},
            "scales": {"x": {"beginAtZero": True, "ticks": {"precision": 0}}},
        },
    }
    return {"flow": flow, "refusals": refusals}


def reason_text(language: Any, reason: str) -> str:
    if reason.startswith("intake:"):
        code = reason.removeprefix("intake:")
        named = CATALOGUES[language].get(f"rejection.{code}", code)  # a code of later: as it is
        return translate(language, "dashboard.reason.intake", code=named)
    return translate(language, f"dashboard.reason.{reason}")


@router.get("/dashboard")
async def dashboard(
    request: Request, grant: Officer, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> Response:
    store = store_of(request)
    scope = scope_of(grant)
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    since = record_time(datetime.combine(first, datetime.min.time(), tzinfo=UTC))

    # A partner's scope holds what reached it, never a decision: its exchanges are its deliveries.
    by_deliveries = scope.received_only
    counted = (SignalDelivered if by_deliveries else ExchangeDecided).event_type

    def gather() -> list[AuditRecord]:
        found: list[AuditRecord] = []
        for event_type in (counted, SignalRejected.event_type):
            found += every_page(store, scope.query(event_type=event_type, since=since, flagged=False))
        return found

    records = await asyncio.to_thread(gather)
    statistics = count(records, first, last, by_deliveries)
    await log_read(
        request, request.app.state.read_log, grant, {"page": "dashboard", "days": str(days)}, len(records)
    )
    names = names_of(request)
    language = language_of(request)
    return render(
        request,
        "dashboard.html",
        {
            "statistics": statistics,
            "charts": chart_configs(statistics, names, language),
            "reasons": {reason: reason_text(language, reason) for reason in statistics.refusals},
            "names": names,
            "period": days,
            "periods": PERIODS,
        },
    )


@router.get("/integrity")
async def integrity(request: Request, grant: Officer) -> Response:
    store = store_of(request)
    recent = await asyncio.to_thread(store.recent_checkpoints, RECENT_CHECKPOINTS)
    newest = recent[0] if recent else None

    def last_cosigned() -> dict[str, int]:
        """Per witness, the largest recent checkpoint it cosigned (a witness runs on its own
        schedule, so the newest checkpoint may not have its cosignature yet)."""
        found: dict[str, int] = {}
        for checkpoint in recent:
            for witness in store.cosignatures(checkpoint.size):
                found.setdefault(witness, checkpoint.size)
        return dict(sorted(found.items()))

    context = {
        "newest": newest,
        "root": base64.b64encode(newest.root_hash).decode() if newest else None,
        "witnesses": await asyncio.to_thread(last_cosigned),
        "size": await asyncio.to_thread(store.size),
        "last": getattr(request.app.state, "last_verification", None),
        "names": names_of(request),
    }
    return render(request, "integrity.html", context)


FLAGGED_PAGE = 50


@router.get("/integrity/flagged")
async def flagged(
    request: Request, grant: Officer, after: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """The records in the officer's scope that the log could not believe (forged, unverifiable,
    unreadable), newest first: evidence kept in the log, shown here and in no other view."""
    store = store_of(request)
    query = scope_of(grant).query(flagged=True)
    try:
        position = decode_cursor(after) if after else None
    except InvalidCursorError as error:
        raise HTTPException(422, str(error)) from None
    page = Page(limit=FLAGGED_PAGE + 1, after=position, newest_first=True)
    records, following = split_page(await asyncio.to_thread(store.page, query, page), FLAGGED_PAGE)
    await log_read(
        request, request.app.state.read_log, grant, {"page": "flagged", **query.criteria()}, len(records)
    )
    context = {"records": records, "following": following, "names": names_of(request)}
    return render(request, "flagged.html", context)


@router.post("/integrity/verify")
async def verify_now(request: Request, grant: Verifier) -> Response:
    """Verify the log now, as GET /v1/audit/verify does (the same run when one is under way)."""
    verifier: LogVerifier = request.app.state.verifier
    request.app.state.last_verification = await verifier.verify(grant.principal.actor)
    return RedirectResponse("/console/integrity#verification", status_code=303)


@router.get("/proof")
async def proof_of(request: Request, grant: Officer, seq: Annotated[int, Query(ge=1)]) -> Response:
    """The integrity page's "prove this record" form lands here."""
    return RedirectResponse(f"/console/records/{seq}/proof", status_code=303)


async def _proof(request: Request, grant: Grant, seq: int) -> RecordProof | None:
    store = store_of(request)
    record = await asyncio.to_thread(store.record, seq)
    if record is None or not in_scope(record, scope_of(grant)):
        raise HTTPException(404, "no such record in your scope")
    try:
        proof = await asyncio.to_thread(prove, store, record, request.app.state.log_key)
    except NotYetProvable:
        proof = None
    criteria = {"seq": str(seq), "tree_size": str(proof.checkpoint.size) if proof else "none"}
    await log_read(request, request.app.state.read_log, grant, criteria, 1, record.subject_pseudonym)
    return proof


@router.get("/records/{seq}/proof")
async def record_proof(request: Request, grant: Officer, seq: int) -> Response:
    proof = await _proof(request, grant, seq)
    context: dict[str, Any] = {"seq": seq, "proof": proof, "names": names_of(request)}
    if proof is not None:
        context |= {
            "record_json": json.dumps(proof.record.document(), indent=2, ensure_ascii=False),
            "path": [base64.b64encode(node).decode() for node in proof.path],
            "witnessed_by": list(proof.verified.witnesses),
        }
    return render(request, "proof.html", context, status_code=200 if proof else 409)


@router.get("/records/{seq}/proof.tlog-proof")
async def record_proof_file(request: Request, grant: Officer, seq: int) -> Response:
    proof = await _proof(request, grant, seq)
    if proof is None:
        raise HTTPException(409, "no checkpoint covers this record yet")
    return Response(
        proof.file,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{proof.filename}"'},
    )
