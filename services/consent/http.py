"""Consent's HTTP API: agreements (list, get, validate, new version, suspend), subject
directives, and explain (a dry run of the decision). Changes need an organisation's token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.consent.admin import AgreementAdmin, AgreementConflict, DirectiveAdmin, Explainer
from services.consent.agreements import validate_text
from services.consent.decision import SignalFacts
from shared.auth import authenticate
from shared.contracts.agreements import Agreement, DirectiveKind, DirectiveScope
from shared.contracts.signal import Category
from shared.registry import OrganisationKind

router = APIRouter(prefix="/v1")
PSEUDONYM = r"^[0-9a-f]{32}$"


def get_caller(request: Request) -> str:
    caller = authenticate(
        request.headers.get("authorization"),
        request.app.state.token_key,
        request.app.state.registry,
        kinds=(OrganisationKind.MUNICIPALITY, OrganisationKind.PARTNER),
    )
    if caller is None:
        raise HTTPException(401, "send Authorization: Bearer <api token>")
    return caller


def get_agreements(request: Request) -> AgreementAdmin:
    admin: AgreementAdmin = request.app.state.agreement_admin
    return admin


def get_directives(request: Request) -> DirectiveAdmin:
    admin: DirectiveAdmin = request.app.state.directive_admin
    return admin


def get_explainer(request: Request) -> Explainer:
    explainer: Explainer = request.app.state.explainer
    return explainer


CallerDep = Annotated[str, Depends(get_caller)]
AgreementsDep = Annotated[AgreementAdmin, Depends(get_agreements)]
DirectivesDep = Annotated[DirectiveAdmin, Depends(get_directives)]
ExplainerDep = Annotated[Explainer, Depends(get_explainer)]


@router.get("/agreements", tags=["agreements"])
async def list_agreements(request: Request) -> list[dict[str, Any]]:
    """Every agreement at its current version, with its status (suspended ones included)."""
    return [agreement.model_dump(mode="json") for agreement in request.app.state.state.latest_agreements()]


@router.get("/agreements/{agreement_id}", tags=["agreements"])
async def get_agreement(agreements: AgreementsDep, agreement_id: str) -> dict[str, Any]:
    current = agreements.current(agreement_id)
    if current is None:
        raise HTTPException(404, f"no agreement {agreement_id}")
    return current.model_dump(mode="json")


@router.post("/agreements/validate", tags=["agreements"])
async def validate_agreement(text: Annotated[str, Body(media_type="application/yaml")]) -> JSONResponse:
    """Check an agreement file (YAML or JSON) without publishing it; problems carry line numbers."""
    agreement, problems = validate_text(text, "body")
    body = {
        "valid": agreement is not None,
        "problems": [{"line": p.line, "location": p.location, "message": p.message} for p in problems],
    }
    return JSONResponse(body, status_code=200 if agreement else 422)


@router.post("/agreements", tags=["agreements"], status_code=201)
async def publish_agreement(
    agreements: AgreementsDep, caller: CallerDep, agreement: Agreement
) -> dict[str, Any]:
    """Publish a new version (the current version + 1, or 1 for a new agreement)."""
    try:
        published = await agreements.new_version(agreement, caller)
    except AgreementConflict as conflict:
        raise HTTPException(409, str(conflict)) from conflict
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    return published.model_dump(mode="json")


@router.post("/agreements/{agreement_id}/suspend", tags=["agreements"])
async def suspend_agreement(
    agreements: AgreementsDep, caller: CallerDep, agreement_id: str
) -> dict[str, Any]:
    """Suspend an agreement: a new version with status suspended; nothing flows under it."""
    try:
        return (await agreements.suspend(agreement_id, caller)).model_dump(mode="json")
    except KeyError as missing:
        raise HTTPException(404, f"no agreement {agreement_id}") from missing


class DirectiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DirectiveKind
    scope: DirectiveScope


@router.post("/subjects/{pseudonym}/directives", tags=["subjects"], status_code=201)
async def record_directive(
    directives: DirectivesDep,
    caller: CallerDep,
    request_body: DirectiveRequest,
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM)],
) -> dict[str, Any]:
    """Record consent given or withdrawn, or an objection (AVG art. 21), for one subject."""
    event = await directives.record(pseudonym, request_body.kind, request_body.scope, caller)
    return event.model_dump(mode="json")


@router.get("/subjects/{pseudonym}/directives", tags=["subjects"])
async def list_directives(
    request: Request, caller: CallerDep, pseudonym: Annotated[str, Path(pattern=PSEUDONYM)]
) -> list[dict[str, Any]]:
    return [d.model_dump(mode="json") for d in request.app.state.state.directives_of(pseudonym)]


class ExplainRequest(BaseModel):
    """A hypothetical signal: its metadata, and optionally whose it is and for whom."""

    model_config = ConfigDict(extra="forbid")

    municipality: str
    category: Category
    purpose: str
    subject_pseudonym: str | None = Field(default=None, pattern=PSEUDONYM)
    recipient: str | None = None


@router.post("/decisions/explain", tags=["decisions"])
async def explain(explainer: ExplainerDep, question: ExplainRequest) -> list[dict[str, Any]]:
    """The decision for each (or one) partner and why; nothing is delivered or logged as sent."""
    facts = SignalFacts(question.municipality, question.category, question.purpose)
    answers = await explainer.explain(facts, question.subject_pseudonym, question.recipient)
    return [
        {
            "recipient": answer.recipient,
            "decision": answer.outcome.decision.value,
            "reasons": list(answer.outcome.reasons),
            "agreement": (
                {"id": answer.outcome.agreement.id, "version": answer.outcome.agreement.version}
                if answer.outcome.agreement
                else None
            ),
            "obligations": (
                {
                    "fields": list(answer.outcome.obligations.fields),
                    "identifying": answer.outcome.obligations.identifying,
                    "retention_days": answer.outcome.obligations.retention_days,
                    "purpose": answer.outcome.obligations.purpose,
                    "legal_basis": answer.outcome.obligations.legal_basis,
                }
                if answer.outcome.obligations
                else None
            ),
        }
        for answer in answers
    ]
