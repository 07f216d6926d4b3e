"""HTTP pieces every service shares: health probes, correlation ids, problem+json errors, the
request body limit, the access log, the access set-up and the server runner."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.http_auth import Access, UnauthenticatedRefusals
from shared.contracts.crypto.keys import KeyRing, MissingKeyError
from shared.contracts.envelope import is_correlation_id, new_correlation_id
from shared.contracts.registry import Registry
from shared.plumbing.credentials import DEVELOPMENT_ISSUER_KEY, RevocationList, TokenVerifier, load_issuers
from shared.plumbing.logging import bind_correlation_id, get_logger
from shared.plumbing.metrics import exposition
from shared.plumbing.policy import Principal
from shared.plumbing.settings import CommonSettings
from shared.plumbing.tracing import span

CORRELATION_HEADER = "X-Correlation-ID"
PROBLEM_JSON = "application/problem+json"
ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
LivenessCheck = Callable[[], dict[str, bool]]
"""Per loop of the process, whether it still runs and is not failing for good."""


def task_alive(task: asyncio.Task[None] | None) -> bool:
    """A loop task that was started and has not ended (a crash ends it)."""
    return task is not None and not task.done()


log = get_logger()


def problem_body(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }


_TITLES = {
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    422: "Unprocessable",
    429: "Too many requests",
}


def add_problem_responses(app: FastAPI) -> None:
    """Every HTTPException answers application/problem+json (RFC 9457), headers kept."""

    async def as_problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        body = problem_body(error.status_code, detail)
        if error.status_code == 401:
            body["reason"] = "unauthenticated"  # the stable code, as the signals intake answers it
        return JSONResponse(
            body,
            status_code=error.status_code,
            media_type=PROBLEM_JSON,
            headers=error.headers,
        )

    app.add_exception_handler(StarletteHTTPException, as_problem)

    async def invalid_request(request: Request, error: Exception) -> Response:
        # FastAPI's default echoes each rejected value: a BSN typed wrongly would come back in
        # the answer (and in any proxy's log). Where and why, never what.
        assert isinstance(error, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        body = {**problem_body(422, "the request does not match its schema"), "errors": errors}
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)

    app.add_exception_handler(RequestValidationError, invalid_request)


def access_for(settings: CommonSettings, registry: Registry, keys: KeyRing, service_id: str) -> Access:
    """Verify access tokens of the configured issuers, addressed to this service."""
    issuers = load_issuers(settings.config_dir, allow_development=settings.generate_missing_keys)
    try:
        development_key = (
            keys.ed25519_public(DEVELOPMENT_ISSUER_KEY) if any(i.development for i in issuers) else None
        )
    except MissingKeyError:
        development_key = None  # no development tokens on this machine
    verifier = TokenVerifier(
        issuers,
        registry,
        settings.token_audience or service_id,
        RevocationList(settings.revoked_tokens_file),
        development_key,
    )
    return Access(verifier, settings.rate_limit, UnauthenticatedRefusals(settings.refusal_record_seconds))


class _TooLarge(HTTPException):
    """Raised from `receive`: an HTTPException, so FastAPI's body reading passes it on (it turns
    other errors into 400) and the problem handler renders it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413, whether it declares its length or
    streams: no endpoint ever buffers more than the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._limit:
                    raise _TooLarge(self._limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(problem_body(413, f"the request body exceeds {self._limit} bytes")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})


def add_health_routes(app: FastAPI, readiness: ReadinessCheck, liveness: LivenessCheck | None = None) -> None:
    """`/healthz`: the process and its loops live (503 naming the one that stopped or keeps
    failing, so the orchestrator restarts the process). `/readyz`: its Kafka link and store
    work. `/metrics`: Prometheus' text format (shared/plumbing/metrics.py; no personal data)."""

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        checks = liveness() if liveness is not None else {}
        alive = all(checks.values())
        body = {"status": "alive" if alive else "dead", "checks": checks}
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        content, media_type = exposition()
        return Response(content, media_type=media_type)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def add_correlation_middleware(app: FastAPI) -> None:
    """Take the caller's correlation id (or make one) and echo it; logs carry it. Each call is
    written to the access log: route *template* (never the path, which may hold a pseudonym),
    status, duration and the caller's organisation and token id, never a person or a query."""

    @app.middleware("http")
    async def correlate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        offered = request.headers.get(CORRELATION_HEADER, "").lower()
        correlation_id = offered if is_correlation_id(offered) else new_correlation_id()
        request.state.correlation_id = correlation_id
        bind_correlation_id(correlation_id)
        started = time.perf_counter()
        with span(
            f"HTTP {request.method}",
            kind=SpanKind.SERVER,
            correlation_id=correlation_id,
            traceparent=request.headers.get("traceparent"),
            attributes={"http.request.method": request.method},
        ) as current:
            response = await call_next(request)
            route_template = getattr(request.scope.get("route"), "path", "unmatched")
            current.update_name(f"{request.method} {route_template}")  # a template, never the path
            current.set_attribute("http.route", route_template)
            current.set_attribute("http.response.status_code", response.status_code)
        response.headers[CORRELATION_HEADER] = correlation_id
        route = request.scope.get("route")
        principal: Principal | None = getattr(request.state, "principal", None)
        log.info(
            "api_call",
            method=request.method,
            route=getattr(route, "path", "unmatched"),
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            organisation=principal.organisation if principal else None,
            token_id=principal.token_id if principal else None,
        )
        return response


def add_access_control(app: FastAPI, access: Access, max_request_bytes: int) -> None:
    """Tokens, limits, correlation ids, the access log and problem+json answers, the same in
    every service. The body limit sits inside the correlation middleware (added last, so
    outermost): its 413 is raised in the route's own task, rendered as problem+json, logged."""
    app.state.access = access
    add_problem_responses(app)
    app.add_middleware(BodyLimit, limit=max_request_bytes)
    add_correlation_middleware(app)


def serve(app: FastAPI, settings: CommonSettings) -> None:
    """Run `app` under uvicorn. Only a peer in SC_TRUSTED_PROXIES (the Ingress controller) has its
    X-Forwarded-For and X-Forwarded-Proto believed: the request is then seen from the client's
    address (what the failed-login limit and the refusal records key on) and with the scheme the
    client used (https: the console's Secure cookie). Anyone else's headers are ignored. Set
    explicitly: uvicorn on its own would trust loopback, and FORWARDED_ALLOW_IPS, by default."""
    trusted = settings.trusted_proxy_networks
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )
