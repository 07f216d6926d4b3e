"""Privacy officers' HTTP API: query the audit records and verify the chain."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services.audit.store import AuditStore, RecordQuery

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def get_store(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.store
    return store


StoreDep = Annotated[AuditStore, Depends(get_store)]


@router.get("/records")
async def list_records(
    store: StoreDep,
    signal_id: Annotated[str | None, Query(max_length=36)] = None,
    correlation_id: Annotated[str | None, Query(max_length=32)] = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[str | None, Query(max_length=64, description="A subject pseudonym.")] = None,
    organisation: Annotated[str | None, Query(max_length=100, description="As source or target.")] = None,
) -> list[dict[str, Any]]:
    """Audit records matching every given criterion, ordered by event time."""
    query = RecordQuery(signal_id, correlation_id, event_type, subject, organisation)
    return await asyncio.to_thread(store.records, query)


@router.get("/verify")
async def verify(store: StoreDep) -> JSONResponse:
    """Recompute the chain. 200 when intact; 409 naming the first bad record otherwise."""
    result = await asyncio.to_thread(store.verify)
    body = {
        "intact": result.intact,
        "records_checked": result.records_checked,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
    }
    return JSONResponse(body, status_code=200 if result.intact else 409)
