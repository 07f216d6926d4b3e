"""HTTP pieces every service shares: health probes, correlation ids and the server runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from shared.envelope import is_correlation_id, new_correlation_id
from shared.logging import bind_correlation_id
from shared.settings import CommonSettings

CORRELATION_HEADER = "X-Correlation-ID"
ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def add_health_routes(app: FastAPI, readiness: ReadinessCheck) -> None:
    """`/healthz`: the process answers. `/readyz`: its Kafka link and store work."""

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def add_correlation_middleware(app: FastAPI) -> None:
    """Take the caller's correlation id (or make one) and echo it; logs carry it."""

    @app.middleware("http")
    async def correlate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        offered = request.headers.get(CORRELATION_HEADER, "").lower()
        correlation_id = offered if is_correlation_id(offered) else new_correlation_id()
        request.state.correlation_id = correlation_id
        bind_correlation_id(correlation_id)
        response = await call_next(request)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response


def serve(app: FastAPI, settings: CommonSettings) -> None:
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
