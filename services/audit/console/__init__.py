"""The privacy officers' web console, served by the audit service under /console.

Server-rendered pages (Jinja2, templates/), a little plain JavaScript and Chart.js served from
static/ (never a CDN), Dutch by default and English on request (i18n.py). Every page is for a
signed-in privacy officer (session.py: `console_grant`), decided by the one policy, and every
console response carries a Content-Security-Policy that allows nothing but this origin's own
files: no inline script, no framing.

`add_console` wires it into an app that already has the service's access control
(`services.http_common.add_access_control`): the console verifies its sessions with the same
`app.state.access`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.audit.console import compliance, i18n, overview, pages, session
from services.audit.console.i18n import language_of, translate
from services.audit.console.providers import Providers, keep_sign_in_state
from services.audit.console.session import CrossSiteRequestError, SignInRequired, sign_in_redirect
from services.audit.console.templating import STATIC_DIR, STATIC_PREFIX, Console, render
from shared.contracts.crypto.keys import KeyRing, KeyScope, MissingKeyError
from shared.contracts.registry import Registry
from shared.plumbing.credentials import DEVELOPMENT_ISSUER_KEY, DevelopmentIssuer, load_issuers
from shared.plumbing.settings import PROJECT_ROOT, CommonSettings, Environment

CONSOLE_PREFIX: Final = "/console"


def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    """Nothing but this origin's own files: no inline script, no framing. Forms may lead only
    here, or to the identity providers people sign in and out at (`form_targets`, their
    origins): a browser applies form-action to where a form's answer redirects too."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            " ".join(("form-action 'self'", *sorted(set(form_targets)))),
            "frame-ancestors 'none'",
        )
    )


CONTENT_SECURITY_POLICY: Final = content_security_policy()
"""The policy of a console without identity providers."""
OTHER_SECURITY_HEADERS: Final = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
ERROR_TITLES: Final = {status: f"error.{status}" for status in (400, 401, 403, 404, 405, 413, 422, 429)}
"""Status -> the catalogue key of its title on the error page (others: error.other)."""


def is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(f"{CONSOLE_PREFIX}/")


class ConsoleHeaders:
    """Security headers on every console response; pages (not static files) are never cached,
    since they show audit records."""

    def __init__(self, app: ASGIApp, policy: str = CONTENT_SECURITY_POLICY) -> None:
        self._app = app
        self._headers = ((b"content-security-policy", policy.encode()), *OTHER_SECURITY_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not is_console(path):
            await self._app(scope, receive, send)
            return
        static = path.startswith(f"{STATIC_PREFIX}/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers.extend(self._headers)
                headers.append((b"cache-control", b"no-cache" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, with_headers)


def development_issuer(settings: CommonSettings) -> DevelopmentIssuer | None:
    """The development issuer where this service may use it: development settings, the
    development issuer configured, and its key in the key folder (never generated here)."""
    issuers = load_issuers(settings.config_dir, allow_development=settings.generate_missing_keys)
    if not any(issuer.development for issuer in issuers):
        return None
    scope = KeyScope(DEVELOPMENT_ISSUER_KEY, frozenset({"ed25519"}))
    try:
        key = KeyRing(settings.keys_dir, generate_missing=False, scope=scope).ed25519_private(
            DEVELOPMENT_ISSUER_KEY
        )
    except MissingKeyError:
        return None
    return DevelopmentIssuer(key)


def add_console(
    app: FastAPI,
    settings: CommonSettings,
    registry: Registry,
    *,
    sign_in_key: bytes,
    service_id: str = "audit",
    compliance_document: Path = PROJECT_ROOT / "docs" / "compliance.md",
) -> None:
    """Serve the console on `app`: static files at /console/static, sign-in (at the
    organisations' identity providers, providers.py) and sign-out, the language switch, the
    compliance map, the pages (pages.py), HTML error pages and security headers for /console.
    `sign_in_key` signs sign-ins in flight; every replica must have the same
    (`providers.state_key`). Call it after `add_access_control`."""
    production = settings.environment is Environment.PRODUCTION
    app.state.console = Console(
        registry=registry,
        development=development_issuer(settings),
        audience=settings.token_audience or service_id,
        compliance_document=compliance_document,
        token_sign_in=not production,
    )
    providers = Providers(load_issuers(settings.config_dir, allow_development=settings.generate_missing_keys))
    app.state.console_providers = providers
    session.secure_cookies_only(app, settings)  # production: __Host- and Secure, always
    keep_sign_in_state(app, sign_in_key, secure=production)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="console-static")
    for router in (session.router, i18n.router, compliance.router, pages.router, overview.router):
        app.include_router(router)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    previous = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    async def error_page(request: Request, error: Exception) -> Response:
        """Console paths answer errors with a page in the console's language; the rest of the
        service keeps its own answers (problem+json)."""
        assert isinstance(error, StarletteHTTPException)
        if not is_console(request.url.path):
            answer = previous(request, error)
            return await answer if inspect.isawaitable(answer) else answer
        title = ERROR_TITLES.get(error.status_code, "error.other")
        detail = error.detail if isinstance(error.detail, str) else None
        if error.status_code == 404 and detail == "Not Found":
            detail = translate(language_of(request), "error.not_found")
        elif isinstance(error, CrossSiteRequestError):
            detail = translate(language_of(request), "error.cross_site")
        context = {"status": error.status_code, "title_key": title, "detail": detail}
        return render(request, "error.html", context, status_code=error.status_code, headers=error.headers)

    app.add_exception_handler(StarletteHTTPException, error_page)
    app.add_middleware(ConsoleHeaders, policy=content_security_policy(providers.origins()))
