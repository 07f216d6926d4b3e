"""The compliance map (docs/compliance.md), shown in the console for anyone who asks: it
describes the system, not anyone's data, so it needs no session."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from markdown_it import MarkdownIt
from markupsafe import Markup

from services.audit.console.i18n import language_of, translate
from services.audit.console.templating import console_state, render

router = APIRouter(prefix="/console", include_in_schema=False)


def markdown_to_html(text: str) -> Markup:
    """CommonMark with tables; raw HTML in the source is escaped and unsafe links (javascript:,
    data:) are not made, so the result is safe to place in a page."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    return Markup(parser.render(text))  # html off: the renderer escaped the source


@router.get("/compliance")
async def compliance(request: Request) -> Response:
    path = console_state(request).compliance_document
    if not path.is_file():
        raise HTTPException(404, translate(language_of(request), "compliance.missing"))
    document = markdown_to_html(path.read_text(encoding="utf-8"))
    return render(request, "compliance.html", {"document": document})
