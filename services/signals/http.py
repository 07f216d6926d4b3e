"""HTTP intake: POST /v1/signals and POST /v1/subjects/{pseudonym}/erasure.

Routes only translate: the caller is authenticated and authorised by services/http_auth.py
(the policy in shared/plumbing/policy.py), the route reads the body within its limit, calls the use case
and renders its answer (problem+json for refusals). A submission that is refused for who sent
it is dead-lettered and audited like any other refused signal.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from services.http_auth import Grant, caller, recorded_refusals, require
from services.http_common import PROBLEM_JSON
from services.signals.erasure import Erasure
from services.signals.ledger import SignalLedger
from services.signals.openapi import submission_operation
from services.signals.submissions import Answer, HttpSubmissions
from services.signals.validation import Invalid
from shared.contracts.events import RejectionReason
from shared.plumbing.policy import Action, Principal, Resource, authorise

router = APIRouter(prefix="/v1", tags=["signals"])


def get_submissions(request: Request) -> HttpSubmissions:
    submissions: HttpSubmissions = request.app.state.submissions
    return submissions


def get_erasure(request: Request) -> Erasure:
    erasure: Erasure = request.app.state.erasure
    return erasure


async def submitter(request: Request) -> Principal | Invalid:
    """A caller who may submit signals, or why not (to be dead-lettered and audited)."""
    try:
        principal = await caller(request)
    except HTTPException as refused:
        recorded = recorded_refusals(request)
        if refused.status_code != 401 or recorded is None:
            # over its rate limit, or its address already on record this interval: counted only
            raise
        # one dead letter per client address per interval, with how many refusals it stands for
        return Invalid.because(RejectionReason.UNAUTHENTICATED, str(refused.detail), f"refusals={recorded}")
    verdict = authorise(principal, Action.SUBMIT_SIGNAL)
    if not verdict.allowed:
        return Invalid(
            Invalid.because(RejectionReason.FORBIDDEN, verdict.reason).errors,
            municipality=principal.organisation,
        )
    return principal


async def subject_signallers(
    request: Request, pseudonym: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
) -> Resource:
    """Who has signalled the subject: the ledger knows."""
    ledger: SignalLedger = request.app.state.ledger
    return Resource(signalled_by=await asyncio.to_thread(ledger.signalled_by, pseudonym))


SubmissionsDep = Annotated[HttpSubmissions, Depends(get_submissions)]
ErasureDep = Annotated[Erasure, Depends(get_erasure)]
SubmitterDep = Annotated[Principal | Invalid, Depends(submitter)]


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
async def submit_signal(
    request: Request, submissions: SubmissionsDep, publisher: SubmitterDep
) -> JSONResponse:
    """Submit one signal as the municipality your access token names (role `publisher`). 202
    with the verdict; problem+json naming every error when refused; 409 for a known id (with the
    first result when it was yours); 503 with Retry-After when no committed verdict came in time."""
    correlation_id: str = request.state.correlation_id
    if isinstance(publisher, Invalid):
        return render(await submissions.refuse(publisher, correlation_id))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return render(
            await submissions.refuse(
                Invalid(
                    Invalid.because(
                        RejectionReason.WRONG_CONTENT_TYPE, "send the signal as application/json"
                    ).errors,
                    municipality=publisher.organisation,
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
                    municipality=publisher.organisation,
                ),
                correlation_id,
            )
        )
    return render(await submissions.submit(publisher, body, correlation_id))


@router.post(
    "/subjects/{pseudonym}/erasure", status_code=202, tags=["subjects"], responses={401: {}, 403: {}, 429: {}}
)
async def erase_subject(
    request: Request,
    erasure: ErasureDep,
    grant: Annotated[Grant, Depends(require(Action.ERASE_SUBJECT, subject_signallers))],
    pseudonym: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
) -> JSONResponse:
    """Destroy data keys of the subject. A municipality that has signalled the subject erases
    what it provided (every other municipality's data stays); the platform's privacy officer
    erases what every municipality provided. What was erased becomes unreadable everywhere."""
    principal = grant.principal
    event = await erasure.erase(
        pseudonym,
        principal.organisation,
        request.state.correlation_id,
        actor=principal.actor,
        municipality=None if principal.is_platform_privacy_officer else principal.organisation,
    )
    return JSONResponse(event.model_dump(mode="json"), status_code=202)
