"""Privacy officers sign in to the console; every console page depends on `console_grant`.

A session is an OAuth access token (the same tokens the JSON API takes) kept in a cookie:
HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), living no
longer than the token. In production, and over https (behind a trusted proxy: X-Forwarded-Proto),
it is `__Host-sc_console_session`: Secure, Path=/ and no Domain, which the browser enforces, so no
plain-http page and no sibling subdomain can set or overwrite it. Only a laptop's plain-http
`make run` gets the unprefixed `sc_console_session`, scoped to /console. Failed sign-ins are
limited per client address, the real one behind a trusted proxy (services/http_common.py
`serve`). Each request verifies it again through the service's `Access` (issuer, signature,
audience, expiry, revocation, rate limit), exactly as `services.http_auth.caller` verifies a
bearer token, and the one policy decides through `services.http_auth.check`: authenticated is
not authorised.

Two ways in:
- paste an access token from the organisation's identity provider (any configured issuer);
- development sign-in, offered only where the development issuer is (development settings
  and its key in the key folder): choose an organisation, type a name, and the server issues a
  development token with the privacy-officer role, addressed to this service.
Either way the token must allow `SIGN_IN_ACTION` (reading the audit log): a publisher's
token is refused with 403 and never becomes a session.

A form that changes something (POST) must come from this console: its Origin (else its
Referer) must name this host (`same_origin`), on top of SameSite=Strict.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import quote, urlsplit

import jwt
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.audit.console.i18n import language_of, local_path, translate
from services.audit.console.templating import console_state, render
from services.http_auth import Access, Grant, check, client_address
from shared.contracts.registry import OrganisationKind, UnknownOrganisationError
from shared.plumbing.credentials import CALLER_KINDS, MAX_LIFETIME_SECONDS, InvalidCredentialError
from shared.plumbing.logging import get_logger
from shared.plumbing.policy import Action, Principal, Resource, Role
from shared.plumbing.settings import CommonSettings, Environment

log = get_logger()

SESSION_COOKIE: Final = "sc_console_session"
SECURE_SESSION_COOKIE: Final = "__Host-" + SESSION_COOKIE
"""The production and https name: the prefix makes the browser insist on Secure, Path=/, no Domain."""
COOKIE_PATH: Final = "/console"
SIGN_IN_PATH: Final = "/console/sign-in"
SIGN_IN_ACTION: Final = Action.READ_AUDIT
"""What a token must allow to become a console session: the privacy officers' read."""
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
PERSON_NAME: Final = re.compile(r"^[\w][\w .'@-]{0,63}$")
KIND_ORDER: Final = (OrganisationKind.PLATFORM, OrganisationKind.MUNICIPALITY, OrganisationKind.PARTNER)
SESSION_NOTICES: Final = {"ended": "sign_in.expired", "signed-out": "sign_in.signed_out"}
"""The sign-in page's `session` parameter -> the notice it shows (catalogue keys)."""
ResourceLoader = Callable[..., Awaitable[Resource]]


class SignInRequired(Exception):
    """No valid session: the console answers with a redirect to the sign-in page."""

    def __init__(self, next_page: str, *, ended: bool) -> None:
        super().__init__("sign in first")
        self.next_page = next_page
        self.ended = ended  # a cookie was there, but its token no longer proves anything


def sign_in_redirect(request: Request, error: Exception) -> Response:
    """303 to the sign-in page, coming back to `next_page` afterwards; an ended session's cookie
    is cleared."""
    assert isinstance(error, SignInRequired)
    location = f"{SIGN_IN_PATH}?next={quote(error.next_page, safe='/')}"
    response = RedirectResponse(location + ("&session=ended" if error.ended else ""), status_code=303)
    if error.ended:
        clear_session(request, response)
    return response


class CrossSiteRequestError(HTTPException):
    """A form that changes something came from another site (or would not say where from)."""

    def __init__(self) -> None:
        super().__init__(403, "cross-site request refused")


def _origin_of(value: str) -> str | None:
    parts = urlsplit(value)
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def same_origin(request: Request) -> None:
    """Refuse (403) a request whose Origin, or without one its Referer, is not this host: a
    form on another site cannot post into the console, signed in or not. A dependency; every
    `console_grant` runs it for methods other than GET, HEAD and OPTIONS."""
    origin = request.headers.get("origin")
    claimed = _origin_of(origin) if origin and origin != "null" else None
    if claimed is None and not origin:
        referer = request.headers.get("referer")
        claimed = _origin_of(referer) if referer else None
    host = request.headers.get("host", "").lower()
    if claimed is None or not host or claimed != host:
        log.info("console_cross_site_refused", path=request.url.path)
        raise CrossSiteRequestError()


def _requested_page(request: Request) -> str:
    if request.method not in SAFE_METHODS:
        return "/console/"  # a form's target is no page to come back to
    return local_path(request.url.path + (f"?{request.url.query}" if request.url.query else ""))


async def console_principal(request: Request) -> Principal:
    """The signed-in caller, verified and counted as `services.http_auth.caller` does, from the
    session cookie instead of the Authorization header. No valid session: SignInRequired."""
    if request.method not in SAFE_METHODS:
        same_origin(request)
    token = request.cookies.get(_cookie(request).name)
    if not token:
        raise SignInRequired(_requested_page(request), ended=False)
    access: Access = request.app.state.access
    try:
        principal = await access.authenticate(f"Bearer {token}")
    except InvalidCredentialError as error:
        # counted and throttled; logged at most once per client address per interval
        access.refused(client_address(request), "console", f"session: {error}")
        raise SignInRequired(_requested_page(request), ended=True) from error
    request.state.principal = principal
    access.throttle(f"principal:{principal.actor}")
    return principal


ConsolePrincipalDep = Annotated[Principal, Depends(console_principal)]


async def _no_resource() -> Resource:
    return Resource()


def console_grant(action: Action, resource: ResourceLoader = _no_resource) -> Callable[..., Awaitable[Grant]]:
    """A dependency for console pages, like `services.http_auth.require`: the signed-in caller
    may do `action` on what `resource` loads, or the page is not shown (no session: 303 to the
    sign-in page; refused by the policy: the 403 page with its reason; POST from elsewhere:
    403). The loader runs only for a signed-in caller."""

    async def granted(
        principal: Principal = Depends(console_principal),  # noqa: B008
        target: Resource = Depends(resource),  # noqa: B008
    ) -> Grant:
        return check(principal, action, target)

    return granted


@dataclass(frozen=True)
class SessionCookie:
    name: str
    path: str
    secure: bool


def secure_cookies_only(app: FastAPI, settings: CommonSettings) -> None:
    """In production the session cookie is always `__Host-` and Secure, whatever the request's
    scheme says (a proxy that forgot X-Forwarded-Proto must not downgrade it)."""
    app.state.secure_session_cookie = settings.environment is Environment.PRODUCTION


def _cookie(request: Request) -> SessionCookie:
    if getattr(request.app.state, "secure_session_cookie", True) or request.url.scheme == "https":
        return SessionCookie(SECURE_SESSION_COOKIE, "/", secure=True)
    return SessionCookie(SESSION_COOKIE, COOKIE_PATH, secure=False)


def set_session(request: Request, response: Response, token: str, expires_at: int) -> None:
    cookie = _cookie(request)
    response.set_cookie(
        cookie.name,
        token,
        max_age=max(0, expires_at - int(time.time())),
        path=cookie.path,
        secure=cookie.secure,
        httponly=True,
        samesite="strict",
    )


def clear_session(request: Request, response: Response) -> None:
    cookie = _cookie(request)
    response.delete_cookie(
        cookie.name,
        path=cookie.path,
        secure=cookie.secure,
        httponly=True,
        samesite="strict",
    )


router = APIRouter(prefix="/console", include_in_schema=False)


def _organisations(request: Request) -> list[dict[str, str]]:
    """Who may sign in through the development issuer: every organisation that calls the APIs."""
    registry = console_state(request).registry
    callers = [registry.get(org_id) for org_id in registry.all_ids()]
    ordered = sorted(
        (org for org in callers if org.kind in CALLER_KINDS),
        key=lambda org: (KIND_ORDER.index(org.kind), org.name.lower()),
    )
    return [{"id": org.id, "name": org.name} for org in ordered]


def _sign_in_page(
    request: Request,
    next_page: str,
    *,
    notice: str | None = None,  # a catalogue key
    errors: dict[str, str] | None = None,  # field -> its message, translated
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "next_page": local_path(next_page),
        "notice": notice,
        "errors": errors or {},
        "values": {"organisation": "safety-chain", "person": "", **(values or {})},
        "organisations": _organisations(request),
    }
    return render(request, "sign_in.html", context, status_code=status_code)


@router.get("/sign-in")
async def sign_in_form(
    request: Request,
    next_page: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
    session: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    notice = SESSION_NOTICES.get(session or "")
    return _sign_in_page(request, next_page or "/console/", notice=notice)


async def _start_session(request: Request, token: str, next_page: str) -> Response:
    """Verify `token` as every request will, ask the policy whether it may use the console,
    and keep it in the session cookie; the sign-in page again with the reason if it is no
    valid token, the 403 page if the policy refuses it."""
    access: Access = request.app.state.access
    try:
        principal = await access.authenticate(f"Bearer {token}")
    except InvalidCredentialError as error:
        access.refused(client_address(request), "console", f"sign-in: {error}")
        reason = translate(language_of(request), "sign_in.error.token", reason=str(error))
        return _sign_in_page(request, next_page, errors={"token": reason}, status_code=400)
    access.throttle(f"principal:{principal.actor}")
    check(principal, SIGN_IN_ACTION, Resource())  # 403: authenticated is not authorised
    request.state.principal = principal
    expires_at = int(jwt.decode(token, options={"verify_signature": False})["exp"])
    log.info("console_signed_in", organisation=principal.organisation, token_id=principal.token_id)
    response = RedirectResponse(local_path(next_page), status_code=303)
    set_session(request, response, token, expires_at)
    return response


@router.post("/sign-in/token", dependencies=[Depends(same_origin)])
async def sign_in_with_token(
    request: Request,
    token: Annotated[str, Form(max_length=16384)],
    next_page: Annotated[str, Form(alias="next", max_length=2048)] = "/console/",
) -> Response:
    return await _start_session(request, token.strip(), next_page)


@router.post("/sign-in/development", dependencies=[Depends(same_origin)])
async def sign_in_for_development(
    request: Request,
    organisation: Annotated[str, Form(max_length=100)],
    person: Annotated[str, Form(max_length=200)],
    next_page: Annotated[str, Form(alias="next", max_length=2048)] = "/console/",
) -> Response:
    console = console_state(request)
    if console.development is None:
        raise HTTPException(404, "development sign-in is not available here")
    person = " ".join(person.split())
    values = {"organisation": organisation, "person": person}
    errors: dict[str, str] = {}
    try:
        known = console.registry.get(organisation).kind in CALLER_KINDS
    except UnknownOrganisationError:
        known = False
    language = language_of(request)
    if not known:
        errors["organisation"] = translate(language, "sign_in.error.organisation")
    if not PERSON_NAME.fullmatch(person):
        errors["person"] = translate(language, "sign_in.error.person")
    if errors:
        return _sign_in_page(request, next_page, errors=errors, values=values, status_code=400)
    token = console.development.issue(
        organisation,
        [Role.PRIVACY_OFFICER],
        console.audience,
        person=person,
        lifetime_seconds=MAX_LIFETIME_SECONDS,
    )
    return await _start_session(request, token, next_page)


@router.post("/sign-out", dependencies=[Depends(same_origin)])
async def sign_out(request: Request) -> Response:
    """Forget the session (the token itself lives on until it expires, an hour at most)."""
    response = RedirectResponse(f"{SIGN_IN_PATH}?session=signed-out", status_code=303)
    clear_session(request, response)
    return response
