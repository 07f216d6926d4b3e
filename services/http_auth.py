"""Authentication, rate limits and authorisation for every HTTP endpoint, as FastAPI dependencies.

A route declares what it does: `Depends(require(Action.X, resource_loader))`. The dependency
verifies the bearer token (401 otherwise), counts the call against the caller's rate limit
(429 with Retry-After), loads what the rule needs to know about the target, and asks the one
policy (shared/plumbing/policy.py) whether the caller may (403 with the reason otherwise). Handlers get
the `Grant` and never check anything themselves.

An unauthenticated caller costs no permanent record per request: each refusal is counted
(`safetychain_http_unauthenticated_total`) and throttled per client address, but written to the
log, and dead-lettered into the audit log by the signals intake, at most once per client address
per interval, carrying how many refusals it stands for (`UnauthenticatedRefusals`). An
authenticated caller the policy refuses (403) is logged every time, as before.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from shared.plumbing.credentials import InvalidCredentialError, TokenVerifier
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import UNAUTHENTICATED
from shared.plumbing.policy import Action, Principal, Resource, Verdict, authorise

log = get_logger()
ResourceLoader = Callable[..., Awaitable[Resource]]
REFUSAL_RECORD_SECONDS: Final = 60.0
"""At most one record of unauthenticated refusals per client address per this many seconds."""
MAX_TRACKED_CLIENTS: Final = 10_000
"""Client addresses held at once; beyond, the rest share one entry (memory stays bounded)."""
OTHER_CLIENTS: Final = "other"


def client_address(request: Request) -> str:
    """The caller's address: the connecting peer's, or behind a trusted proxy the client's that
    the proxy named (services/http_common.py `serve`, SC_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "-"


@dataclass
class _Window:
    opened: float
    held_back: int = 0


class UnauthenticatedRefusals:
    """Which unauthenticated refusals to write down: the first from a client address, then none
    from it until `interval` seconds have passed; the next one after that is written with the
    count of those held back since. Every refusal is in some record's count except those of a
    window still open. Thread-safe (token verification runs in worker threads)."""

    def __init__(
        self,
        interval: float = REFUSAL_RECORD_SECONDS,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._max_clients = max_clients
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def refused(self, address: str) -> int | None:
        """Count one refusal of `address`: how many refusals the record to write now stands for
        (this one and those held back before it), or None: held back, write nothing."""
        now = self._clock()
        with self._lock:
            if address not in self._windows and len(self._windows) >= self._max_clients:
                self._forget_closed(now)
                if len(self._windows) >= self._max_clients:
                    address = OTHER_CLIENTS
            window = self._windows.get(address)
            if window is not None and now - window.opened < self._interval:
                window.held_back += 1
                return None
            count = 1 + (window.held_back if window is not None else 0)
            self._windows[address] = _Window(now)
            return count

    def _forget_closed(self, now: float) -> None:
        """Drop windows that closed with nothing held back: their next refusal opens a new one
        with the same count (1) it would get anyway."""
        for address in [a for a, w in self._windows.items() if now - w.opened >= self._interval]:
            if self._windows[address].held_back == 0:
                del self._windows[address]


class Access:
    """The token verifier and the rate limiter of one service."""

    def __init__(
        self,
        verifier: TokenVerifier,
        rate_limit: str,
        refusals: UnauthenticatedRefusals | None = None,
    ) -> None:
        self.verifier = verifier
        self._limit = parse(rate_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.refusals = refusals or UnauthenticatedRefusals()

    def refused(self, address: str, surface: str, reason: str = "") -> int | None:
        """One caller from `address` without a valid credential on `surface` (api, console):
        counted, throttled (429 beyond the limit: guessing costs time too), and logged only when
        `refusals` says so, with the count. The count the record stands for, or None."""
        UNAUTHENTICATED.labels(surface).inc()
        self.throttle(f"unauthenticated:{address}")
        count = self.refusals.refused(address)
        if count is not None:
            log.info("credential_refused", surface=surface, client=address, refusals=count, reason=reason)
        return count

    async def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidCredentialError("send Authorization: Bearer <access token>")
        return await asyncio.to_thread(self.verifier.verify, token.strip())

    def throttle(self, key: str) -> None:
        """Count one call of `key`; raise 429 when it is over its limit."""
        if self._limiter.hit(self._limit, key):
            return
        reset_at, _ = self._limiter.get_window_stats(self._limit, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            429,
            f"more than {self._limit} calls; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def _unauthenticated(reason: str) -> HTTPException:
    return HTTPException(
        401,
        f"unauthenticated: {reason}",
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


async def caller(request: Request) -> Principal:
    """The verified caller, counted against its rate limit."""
    access: Access = request.app.state.access
    try:
        principal = await access.authenticate(request.headers.get("authorization"))
    except InvalidCredentialError as error:
        request.state.refusal_record = access.refused(client_address(request), "api", str(error))
        raise _unauthenticated(str(error)) from error
    request.state.principal = principal
    access.throttle(f"principal:{principal.actor}")
    return principal


CallerDep = Annotated[Principal, Depends(caller)]


def recorded_refusals(request: Request) -> int | None:
    """After `caller` refused this request as unauthenticated: how many refusals of its client
    address a record written now stands for, or None when this one is held back (no record)."""
    count: int | None = getattr(request.state, "refusal_record", None)
    return count


@dataclass(frozen=True)
class Grant:
    """A caller the policy allowed, what about, and why (with the audit scope for reads)."""

    principal: Principal
    resource: Resource
    verdict: Verdict


async def _no_resource() -> Resource:
    return Resource()


def require(action: Action, resource: ResourceLoader = _no_resource) -> Callable[..., Awaitable[Grant]]:
    """A dependency: the caller may do `action` on what `resource` loads, or the request ends
    (401 unauthenticated, 429 over its limit, 403 not allowed, or whatever the loader raises,
    such as 404)."""

    # Defaults, not Annotated: the loader is a closure variable, which a postponed annotation
    # could not name.
    async def authorised(
        principal: Principal = Depends(caller),  # noqa: B008
        target: Resource = Depends(resource),  # noqa: B008
    ) -> Grant:
        return check(principal, action, target)

    return authorised


def check(principal: Principal, action: Action, resource: Resource) -> Grant:
    """The policy's answer as a Grant, or 403 with its reason. `require` uses it; call it
    directly only where the resource depends on the request body (explain)."""
    verdict = authorise(principal, action, resource)
    if not verdict.allowed:
        log.info("access_denied", action=action.name, organisation=principal.organisation)
        raise HTTPException(403, f"forbidden: {verdict.reason}")
    return Grant(principal, resource, verdict)
