"""The console's pages. A placeholder: the home page only, until the pages of issue 11
(search, timeline, report, agreements, dashboard, integrity) replace it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.audit.console.session import console_grant
from services.audit.console.templating import render
from services.http_auth import Grant
from shared.policy import Action

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/")
async def home(
    request: Request, grant: Annotated[Grant, Depends(console_grant(Action.READ_AUDIT))]
) -> Response:
    return render(request, "home.html")
