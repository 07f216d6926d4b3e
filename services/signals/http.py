"""HTTP intake: POST /v1/signals. Translates requests into Intake.submit, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from services.signals.intake import Accepted, Intake
from services.signals.validation import Invalid
from shared.contracts.events import FieldError, RejectionReason

PROBLEM_JSON = "application/problem+json"

router = APIRouter(prefix="/v1", tags=["signals"])


def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]

_STATUS_BY_REASON = {
    RejectionReason.OVERSIZED: 413,
    RejectionReason.WRONG_CONTENT_TYPE: 415,
}


def _problem(
    invalid_errors: tuple[FieldError, ...], reason: RejectionReason, signal_id: str | None
) -> JSONResponse:
    status = _STATUS_BY_REASON.get(reason, 422)
    return JSONResponse(
        {
            "type": f"https://safety-chain.nl/problems/{reason.value.replace('_', '-')}",
            "title": "Signal rejected",
            "status": status,
            "detail": f"{len(invalid_errors)} problem(s) with the submitted signal",
            "reason": reason.value,
            "signal_id": signal_id,
            "errors": [error.model_dump(mode="json") for error in invalid_errors],
        },
        status_code=status,
        media_type=PROBLEM_JSON,
    )


@router.post("/signals", status_code=202, responses={413: {}, 415: {}, 422: {}})
async def submit_signal(request: Request, intake: IntakeDep) -> JSONResponse:
    """Submit one signal. 202 with its id when accepted; problem+json when refused."""
    correlation_id: str = request.state.correlation_id
    limit: int = request.app.state.max_body_bytes
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        invalid = Invalid(
            (
                FieldError(
                    reason=RejectionReason.WRONG_CONTENT_TYPE,
                    location="",
                    message="send the signal as application/json",
                ),
            )
        )
        rejected = await intake.reject(invalid, "http", correlation_id)
        return _problem(invalid.errors, rejected.event.reason, None)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            invalid = Invalid(
                (
                    FieldError(
                        reason=RejectionReason.OVERSIZED,
                        location="",
                        message=f"body exceeds {limit} bytes",
                    ),
                )
            )
            rejected = await intake.reject(invalid, "http", correlation_id)
            return _problem(invalid.errors, rejected.event.reason, None)
    outcome = await intake.submit(bytes(body), "http", correlation_id)
    if isinstance(outcome, Accepted):
        return JSONResponse(
            {
                "signal_id": str(outcome.event.signal_id),
                "status": "accepted",
                "subject_pseudonym": outcome.event.subject_pseudonym,
                "correlation_id": correlation_id,
            },
            status_code=202,
        )
    event = outcome.event
    return _problem(event.errors, event.reason, str(event.signal_id) if event.signal_id else None)
