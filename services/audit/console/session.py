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

Three ways in:
- at the organisation's identity provider, with OpenID Connect (providers.py): the person
  chooses their organisation, signs in on the provider's own page, and the access token it
  issues for this service becomes the session; signing out ends the session there too;
- development sign-in, offered only where the development issuer is (development settings
  and its key in the key folder): choose an organisation, type a name, and the server issues a
  development token with the privacy-officer role, addressed to this service;
- outside production, paste an access token from any configured issuer (for trying tokens out).
Whichever way, the token must allow `SIGN_IN_ACTION` (reading the audit log): a publisher's
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
from authlib.integrations.starlette_client import OAuthError
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.audit.console.i18n import language_of, local_path, translate
from services.audit.console.providers import (
    PROVIDER_COOKIE,
    Provider,
    SignInFailed,
    provider_answer,
    providers_of,
    send_to_provider,
)
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
PROVIDER_SIGN_IN_PATH: Final = "/console/sign-in/provider"
GO_BACK_SECONDS: Final = 60
"""An ended session goes back to its provider without a prompt at most once in this time."""
WENT_BACK_AT: Final = "went_back_at"
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


def _may_go_back(request: Request) -> bool:
    """Whether an ended session may go back to its provider without asking: not again within
    `GO_BACK_SECONDS` of the last time (a session that ends at once would go round and round)."""
    now = time.time()
    if now - float(request.session.get(WENT_BACK_AT, 0)) < GO_BACK_SECONDS:
        return False
    request.session[WENT_BACK_AT] = now
    return True


def sign_in_redirect(request: Request, error: Exception) -> Response:
    """303 to the sign-in page, coming back to `next_page` afterwards; an ended session's cookie
    is cleared. A session that began at an identity provider goes back there instead: while the
    person's session at the provider lives, it answers without asking anything."""
    assert isinstance(error, SignInRequired)
    next_page = quote(error.next_page, safe="/")
    provider = _session_provider(request) if error.ended and _may_go_back(request) else None
    if provider is not None:
        location = f"{PROVIDER_SIGN_IN_PATH}?provider={provider.key}&next={next_page}"
    else:
        location = f"{SIGN_IN_PATH}?next={next_page}" + ("&session=ended" if error.ended else "")
    response = RedirectResponse(location, status_code=303)
    if error.ended:
        clear_session(request, response, keep_provider=provider is not None)
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


def _cookie(request: Request, name: str = SESSION_COOKIE) -> SessionCookie:
    """The session cookie (or, by `name`, its companion that holds the provider's ID token)."""
    if getattr(request.app.state, "secure_session_cookie", True) or request.url.scheme == "https":
        return SessionCookie("__Host-" + name, "/", secure=True)
    return SessionCookie(name, COOKIE_PATH, secure=False)


def _delete_cookie(request: Request, response: Response, name: str) -> None:
    cookie = _cookie(request, name)
    response.delete_cookie(
        cookie.name, path=cookie.path, secure=cookie.secure, httponly=True, samesite="strict"
    )


def set_session(
    request: Request, response: Response, token: str, expires_at: int, *, id_token: str | None = None
) -> None:
    """Keep `token` as the session until `expires_at`; with the provider's `id_token` beside it
    (for sign-out at the provider, and the way back there when the session ends), else none."""
    max_age = max(0, expires_at - int(time.time()))
    for name, value in ((SESSION_COOKIE, token), (PROVIDER_COOKIE, id_token)):
        if value is None:
            _delete_cookie(request, response, name)
            continue
        cookie = _cookie(request, name)
        response.set_cookie(
            cookie.name,
            value,
            # the ID token outlives the session a little: it finds the way back to the provider
            max_age=max_age if name == SESSION_COOKIE else MAX_LIFETIME_SECONDS * 12,
            path=cookie.path,
            secure=cookie.secure,
            httponly=True,
            samesite="strict",
        )


def clear_session(request: Request, response: Response, *, keep_provider: bool = False) -> None:
    for name in (SESSION_COOKIE,) if keep_provider else (SESSION_COOKIE, PROVIDER_COOKIE):
        _delete_cookie(request, response, name)


def _session_id_token(request: Request) -> str | None:
    return request.cookies.get(_cookie(request, PROVIDER_COOKIE).name)


def _session_provider(request: Request) -> Provider | None:
    """The identity provider this browser's session began at, if it is one we know. The ID
    token is not verified here: it only chooses which configured provider to send the person
    to, or to tell of a sign-out."""
    id_token = _session_id_token(request)
    if not id_token:
        return None
    try:
        issuer = jwt.decode(id_token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return providers_of(request).of_issuer(issuer) if isinstance(issuer, str) else None


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
    console = console_state(request)
    context: dict[str, Any] = {
        "next_page": local_path(next_page),
        "notice": notice,
        "errors": errors or {},
        "values": {"organisation": "safety-chain", "person": "", **(values or {})},
        "organisations": _organisations(request),
        "provider_organisations": providers_of(request).organisations(console.registry),
        "token_sign_in": console.token_sign_in,
    }
    return render(request, "sign_in.html", context, status_code=status_code)


@router.get("/sign-in", name="sign_in_form")
async def sign_in_form(
    request: Request,
    next_page: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
    session: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    notice = SESSION_NOTICES.get(session or "")
    return _sign_in_page(request, next_page or "/console/", notice=notice)


async def _start_session(
    request: Request,
    token: str,
    next_page: str,
    *,
    provider: Provider | None = None,
    id_token: str | None = None,
) -> Response:
    """Verify `token` as every request will, ask the policy whether it may use the console,
    and keep it in the session cookie; the sign-in page again with the reason if it is no
    valid token, the 403 page if the policy refuses it. A token from an identity provider's
    sign-in must have been issued by that provider."""
    access: Access = request.app.state.access
    field = "provider" if provider else "token"
    try:
        principal = await access.authenticate(f"Bearer {token}")
        claims = jwt.decode(token, options={"verify_signature": False})  # verified just now
        if provider is not None and claims.get("iss") != provider.issuer.issuer:
            raise InvalidCredentialError("issued by another provider than the one signed in at")
    except InvalidCredentialError as error:
        access.refused(client_address(request), "console", f"sign-in: {error}")
        reason = translate(language_of(request), f"sign_in.error.{field}", reason=str(error))
        return _sign_in_page(request, next_page, errors={field: reason}, status_code=400)
    access.throttle(f"principal:{principal.actor}")
    check(principal, SIGN_IN_ACTION, Resource())  # 403: authenticated is not authorised
    request.state.principal = principal
    log.info("console_signed_in", organisation=principal.organisation, token_id=principal.token_id)
    if provider is None:
        response: Response = RedirectResponse(local_path(next_page), status_code=303)
    else:
        # A page of ours that goes on, not a redirect: the browser came here from the provider's
        # site, and a redirect would carry that along, so that the SameSite=Strict session cookie
        # would not be sent with the next page's request.
        response = render(request, "signed_in.html", {"next_page": local_path(next_page)})
    set_session(request, response, token, int(claims["exp"]), id_token=id_token)
    return response


@router.get("/sign-in/provider")
async def sign_in_at_provider(
    request: Request,
    organisation: Annotated[str | None, Query(max_length=100)] = None,
    provider_key: Annotated[str | None, Query(alias="provider", max_length=64)] = None,
    next_page: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    """Send the person to the identity provider of `organisation` (or the provider `provider`
    names, on the way back after a session ended)."""
    providers = providers_of(request)
    provider = providers.get(provider_key) if provider_key else providers.for_organisation(organisation or "")
    target = local_path(next_page)
    if provider is None:
        error = translate(language_of(request), "sign_in.error.no_provider")
        return _sign_in_page(request, target, errors={"provider": error}, status_code=400)
    return await send_to_provider(request, provider, target, language_of(request).value)


@router.get("/sign-in/callback", name="provider_callback")
async def provider_callback(
    request: Request, state: Annotated[str | None, Query(max_length=512)] = None
) -> Response:
    """Where the identity provider sends the person back, with a code for their tokens."""
    try:
        answer = await provider_answer(request, state)
    except SignInFailed as failed:
        access: Access = request.app.state.access
        access.refused(client_address(request), "console", f"provider sign-in: {failed.reason}")
        reason = translate(language_of(request), "sign_in.error.provider", reason=failed.reason)
        return _sign_in_page(request, "/console/", errors={"provider": reason}, status_code=400)
    return await _start_session(
        request, answer.access_token, answer.next_page, provider=answer.provider, id_token=answer.id_token
    )


@router.post("/sign-in/token", dependencies=[Depends(same_origin)])
async def sign_in_with_token(
    request: Request,
    token: Annotated[str, Form(max_length=16384)],
    next_page: Annotated[str, Form(alias="next", max_length=2048)] = "/console/",
) -> Response:
    if not console_state(request).token_sign_in:
        raise HTTPException(404, "sign-in with a pasted token is not available here")
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


@router.get("/sign-in/signed-out", name="signed_out_at_provider")
async def signed_out_at_provider(request: Request) -> Response:
    """Where a provider comes back after signing the person out there: the sign-in page tells
    so when the answer's `state` is the one this browser's sign-out sent."""
    for provider in providers_of(request):
        try:
            await provider.client.validate_logout_response(request)  # type: ignore[no-untyped-call]
        except OAuthError:
            continue
        return RedirectResponse(f"{SIGN_IN_PATH}?session=signed-out", status_code=303)
    return RedirectResponse(SIGN_IN_PATH, status_code=303)


@router.post("/sign-out", dependencies=[Depends(same_origin)])
async def sign_out(request: Request) -> Response:
    """Forget the session, and where it began at an identity provider, end it there too (the
    provider comes back to the sign-in page). The access token itself lives on until it
    expires, an hour at most."""
    signed_out = str(request.url_for("signed_out_at_provider"))
    provider, id_token = _session_provider(request), _session_id_token(request)
    response: Response
    if provider is not None and id_token:
        response = await provider.client.logout_redirect(
            request, post_logout_redirect_uri=signed_out, id_token_hint=id_token
        )
        response.status_code = 303  # the form's POST becomes the provider's GET
        log.info("console_signed_out", provider=provider.issuer.issuer)
    else:
        response = RedirectResponse(f"{SIGN_IN_PATH}?session=signed-out", status_code=303)
    clear_session(request, response)
    return response
