"""HTTP intake: POST /v1/signals and POST /v1/subjects/{pseudonym}/erasure.

Routes only translate: they authenticate the caller, read the body within its limit, call the
use case and render its answer (problem+json for refusals).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from services.signals.erasure import Erasure
from services.signals.openapi import PROBLEM_JSON, submission_operation
from services.signals.submissions import Answer, HttpSubmissions
from services.signals.validation import Invalid
from shared.auth import authenticate
from shared.contracts.events import RejectionReason

router = APIRouter(prefix="/v1", tags=["signals"])


def get_submissions(request: Request) -> HttpSubmissions:
    submissions: HttpSubmissions = request.app.state.submissions
    return submissions


def get_erasure(request: Request) -> Erasure:
    erasure: Erasure = request.app.state.erasure
    return erasure


def get_caller(request: Request) -> str | None:
    """The municipality the bearer token proves, or None."""
    return authenticate(
        request.headers.get("authorization"), request.app.state.token_key, request.app.state.registry
    )


SubmissionsDep = Annotated[HttpSubmissions, Depends(get_submissions)]
ErasureDep = Annotated[Erasure, Depends(get_erasure)]
CallerDep = Annotated[str | None, Depends(get_caller)]


def render(answer: Answer) -> JSONResponse:
    return JSONResponse(
        answer.body,
        status_code=answer.status,
        media_type=PROBLEM_JSON if answer.problem else None,
        headers=answer.headers,
    )


async def _read_limited(request: Request, limit: int) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


# The route reads the raw body itself; the OpenAPI document still shows the contract it enforces.
@router.post("/signals", status_code=202, openapi_extra=submission_operation())
async def submit_signal(request: Request, submissions: SubmissionsDep, caller: CallerDep) -> JSONResponse:
    """Submit one signal as the municipality your bearer token names. 202 with the verdict;
    problem+json naming every error when refused; 409 for a known id (with the first result when
    it was yours); 503 with Retry-After when no committed verdict came in time."""
    correlation_id: str = request.state.correlation_id
    if caller is None:
        return render(
            await submissions.refuse(
                Invalid.because(RejectionReason.UNAUTHENTICATED, "send Authorization: Bearer <api token>"),
                correlation_id,
            )
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return render(
            await submissions.refuse(
                Invalid(
                    Invalid.because(
                        RejectionReason.WRONG_CONTENT_TYPE, "send the signal as application/json"
                    ).errors,
                    municipality=caller,
                ),
                correlation_id,
            )
        )
    body = await _read_limited(request, submissions.max_body_bytes)
    if body is None:
        return render(
            await submissions.refuse(
                Invalid(
                    Invalid.because(
                        RejectionReason.OVERSIZED, f"body exceeds {submissions.max_body_bytes} bytes"
                    ).errors,
                    municipality=caller,
                ),
                correlation_id,
            )
        )
    return render(await submissions.submit(caller, body, correlation_id))


@router.post("/subjects/{pseudonym}/erasure", status_code=202, tags=["subjects"], responses={401: {}})
async def erase_subject(
    request: Request,
    erasure: ErasureDep,
    caller: CallerDep,
    pseudonym: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
) -> JSONResponse:
    """Destroy the subject's data key: every stored payload of this subject becomes unreadable."""
    if caller is None:
        return JSONResponse(
            {"title": "Unauthenticated", "status": 401, "detail": "send Authorization: Bearer <api token>"},
            status_code=401,
            media_type=PROBLEM_JSON,
        )
    event = await erasure.erase(pseudonym, caller, request.state.correlation_id)
    return JSONResponse(event.model_dump(mode="json"), status_code=202)
