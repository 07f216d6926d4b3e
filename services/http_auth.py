"""Authentication, rate limits and authorisation for every HTTP endpoint, as FastAPI dependencies.

A route declares what it does: `Depends(require(Action.X, resource_loader))`. The dependency
verifies the bearer token (401 otherwise), counts the call against the caller's rate limit
(429 with Retry-After), loads what the rule needs to know about the target, and asks the one
policy (shared/policy.py) whether the caller may (403 with the reason otherwise). Handlers get
the `Grant` and never check anything themselves.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from shared.credentials import InvalidCredentialError, TokenVerifier
from shared.logging import get_logger
from shared.policy import Action, Principal, Resource, Verdict, authorise

log = get_logger()
ResourceLoader = Callable[..., Awaitable[Resource]]


class Access:
    """The token verifier and the rate limiter of one service."""

    def __init__(self, verifier: TokenVerifier, rate_limit: str) -> None:
        self.verifier = verifier
        self._limit = parse(rate_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

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
        # Failed attempts are limited per client address, so guessing costs time too.
        access.throttle(f"unauthenticated:{request.client.host if request.client else '-'}")
        log.info("credential_refused", reason=str(error))
        raise _unauthenticated(str(error)) from error
    request.state.principal = principal
    access.throttle(f"principal:{principal.actor}")
    return principal


CallerDep = Annotated[Principal, Depends(caller)]


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
