"""How console pages are rendered: one Jinja2 environment (autoescape on, undefined names are
errors), and one context every page gets without asking for it.

A page handler returns `render(request, "search.html", {"results": ...})`. The template extends
`base.html` and fills the blocks `title` and `content` (and `head` for a page's own script).
The shared context (`console_context`) is added to every page and wins over the page's own
names, so a page must not use these: `request`, `lang`, `t`, `languages`, `principal`,
`organisation_name`, `person`, `nav`, `static`, `development`, `words` (the names of codes and
dates in the page's language: vocabulary.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from services.audit.console.i18n import CATALOGUES, LANGUAGE_NAMES, language_of, translator
from services.audit.console.vocabulary import Words
from shared.contracts.registry import Registry, UnknownOrganisationError
from shared.plumbing.credentials import DevelopmentIssuer
from shared.plumbing.policy import Principal

HERE: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = HERE / "templates"
STATIC_DIR: Final = HERE / "static"
STATIC_PREFIX: Final = "/console/static"


@dataclass(frozen=True)
class NavItem:
    key: str  # its text in the catalogue
    href: str


NAVIGATION: Final = (
    NavItem("nav.search", "/console/search"),
    NavItem("nav.report", "/console/report"),
    NavItem("nav.agreements", "/console/agreements"),
    NavItem("nav.dashboard", "/console/dashboard"),
    NavItem("nav.integrity", "/console/integrity"),
)


@dataclass(frozen=True)
class Console:
    """What the console keeps on `app.state.console`."""

    registry: Registry
    development: DevelopmentIssuer | None  # None: no development sign-in here
    audience: str  # the `aud` of the tokens the development sign-in issues
    compliance_document: Path
    token_sign_in: bool = False  # whether a pasted access token may become a session (not in production)


def console_state(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def static_url(path: str) -> str:
    return f"{STATIC_PREFIX}/{path}"


def _here(request: Request) -> str:
    """Where the language switch comes back to: this page, or the start page after a form
    (a POST's address is no page to load)."""
    if request.method not in ("GET", "HEAD"):
        return "/console/"
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def console_context(request: Request) -> dict[str, Any]:
    """The names every console template may use."""
    language = language_of(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    organisation_name = person = None
    if principal is not None:
        # the name their provider gives, else who the log records them as
        person = principal.name or principal.actor.partition("/")[2] or principal.actor
        try:
            organisation_name = console_state(request).registry.get(principal.organisation).name
        except UnknownOrganisationError:
            organisation_name = principal.organisation
    here = quote(_here(request), safe="/")
    registry = console_state(request).registry
    organisations = {org: registry.get(org).name for org in registry.all_ids()}
    return {
        "lang": language.value,
        "t": translator(language),
        "languages": [
            {
                "code": code.value,
                "name": name,
                "href": f"/console/language/{code.value}?next={here}",
                "current": code is language,
            }
            for code, name in LANGUAGE_NAMES.items()
        ],
        "principal": principal,
        "organisation_name": organisation_name,
        "person": person,
        "nav": [
            {"key": item.key, "href": item.href, "current": request.url.path.startswith(item.href)}
            for item in NAVIGATION
        ],
        "static": static_url,
        "development": console_state(request).development is not None,
        "words": Words(CATALOGUES[language], organisations),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template is HTML
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page (and its test)
        trim_blocks=True,
        lstrip_blocks=True,
    )


templates: Final = Jinja2Templates(env=_environment(), context_processors=[console_context])
"""The console's templates. Prefer `render`."""


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A console page: `template` with the page's `context` and the shared one."""
    return templates.TemplateResponse(
        request, template, dict(context or {}), status_code=status_code, headers=headers
    )
