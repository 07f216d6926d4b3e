"""The compliance map is shown in the console from docs/compliance.md: Markdown with tables,
its raw HTML escaped and no script link made; without the file, a 404 page says so."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.audit.console import add_console
from services.audit.console.compliance import markdown_to_html
from services.audit.settings import AuditSettings
from services.http_common import access_for, add_access_control
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry


def test_markdown_becomes_html_with_tables_and_without_the_sources_html() -> None:
    html = markdown_to_html(
        "# Duties\n\n| duty | control |\n| --- | --- |\n| AVG art. 15 | report |\n\n"
        "<script>alert(1)</script>\n\n[click](javascript:alert(1)) [tests](https://example.org/t)\n"
    )
    assert "<h1>Duties</h1>" in html and "<td>AVG art. 15</td>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert '<a href="https://example.org/t">tests</a>' in html


async def compliance_page(tmp_path: Path, document: Path) -> httpx.Response:
    """GET /console/compliance, without a session, from a browser that prefers English."""
    settings = AuditSettings.model_validate(
        {"keys_dir": tmp_path / "keys", "revoked_tokens_file": tmp_path / "revoked.txt"}
    )
    keys = KeyRing.for_service("audit", settings.keys_dir, generate_missing=False)
    registry = Registry.load(settings.config_dir, keys)
    app = FastAPI()
    add_access_control(app, access_for(settings, registry, keys, "audit"), settings.max_request_bytes)
    add_console(app, settings, registry, sign_in_key=bytes(32), compliance_document=document)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        return await client.get("/console/compliance", headers={"accept-language": "en"})


async def test_the_compliance_map_is_a_console_page_anyone_may_read(tmp_path: Path) -> None:
    document = tmp_path / "compliance.md"
    document.write_text("# Compliance map\n\nAVG art. 15: the subject access report.\n", encoding="utf-8")
    page = await compliance_page(tmp_path, document)
    assert page.status_code == 200
    assert "<h1>Compliance map</h1>" in page.text and '<html lang="en">' in page.text


async def test_without_the_document_the_console_says_it_is_missing(tmp_path: Path) -> None:
    page = await compliance_page(tmp_path, tmp_path / "absent.md")
    assert page.status_code == 404
    assert "docs/compliance.md is not part of this installation" in page.text
