"""Privacy officers' HTTP API: query the audit records and verify the chain."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services.audit.store import AuditStore

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
) -> list[dict[str, Any]]:
    """Audit records, all or of one signal or request, ordered by event time."""
    return await asyncio.to_thread(store.records, signal_id, correlation_id)


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
