"""Consent's HTTP API: agreements (list, get, validate, new version, approve or reject a
widening change, suspend), subject directives, and explain (a dry run of the decision).

Every route names its action; services/http_auth.py authenticates the caller and asks the policy
(shared/plumbing/policy.py) with what the loaders below find out about the target.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.consent.admin import (
    AgreementAdmin,
    AgreementConflict,
    ChangeOutcome,
    InvalidSignatureError,
    NoProposalError,
    NotAllowedError,
    signers_resource,
)
from services.consent.agreements import validate_text
from services.consent.decision import SignalFacts
from services.consent.directives import DirectiveAdmin, visible_to
from services.consent.explain import Explainer
from services.consent.state import ConsentState
from services.http_auth import CallerDep, Grant, check, require
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementStatus,
    DirectiveKind,
    DirectiveScope,
    SignatureType,
)
from shared.contracts.signal import Category
from shared.plumbing.policy import Action, Resource, authorise

router = APIRouter(prefix="/v1", responses={401: {}, 403: {}, 429: {}})
PSEUDONYM = r"^[0-9a-f]{32}$"
SubjectPath = Annotated[str, Path(pattern=PSEUDONYM)]


def correlation_id(request: Request) -> str:
    """The request's correlation id: it travels with the change onto Kafka and into the audit log."""
    value: str = request.state.correlation_id
    return value


def get_agreements(request: Request) -> AgreementAdmin:
    admin: AgreementAdmin = request.app.state.agreement_admin
    return admin


def get_directives(request: Request) -> DirectiveAdmin:
    admin: DirectiveAdmin = request.app.state.directive_admin
    return admin


def get_explainer(request: Request) -> Explainer:
    explainer: Explainer = request.app.state.explainer
    return explainer


def get_state(request: Request) -> ConsentState:
    state: ConsentState = request.app.state.state
    return state


AgreementsDep = Annotated[AgreementAdmin, Depends(get_agreements)]
DirectivesDep = Annotated[DirectiveAdmin, Depends(get_directives)]
ExplainerDep = Annotated[Explainer, Depends(get_explainer)]
StateDep = Annotated[ConsentState, Depends(get_state)]


# -- what the policy needs to know about the target ------------------------------------------


def agreement_resource(agreement: Agreement, proposal: AgreementProposed | None = None) -> Resource:
    """An agreement's parties and governing providers; with a pending proposal, the proposed
    version's parties too (they read what they are asked to sign)."""
    parties = agreement.parties | (proposal.agreement.parties if proposal else frozenset())
    return Resource(
        parties=parties,
        providers=frozenset(agreement.providers),
        proposed_by=proposal.proposed_by if proposal else None,
    )


async def existing_agreement(agreements: AgreementsDep, agreement_id: str) -> Resource:
    """The agreement's parties and providers (its current version); 404 when there is none."""
    await agreements.refreshed()
    current = agreements.current(agreement_id)
    if current is None:
        raise HTTPException(404, f"no agreement {agreement_id}")
    # Not the pending proposal's parties: naming someone in a proposal shows them that
    # proposal (to sign it), never the version in force they are no party to.
    return agreement_resource(current)


async def proposed_agreement(agreements: AgreementsDep, agreement_id: str) -> Resource:
    """Who governs a pending proposal: the current version's providers, or for a new agreement
    the proposal's own; who is party to either; and who proposed it (four eyes)."""
    await agreements.refreshed()
    proposal = agreements.proposal(agreement_id)
    if proposal is None:
        raise HTTPException(404, f"no pending proposal for {agreement_id}")
    governing = agreements.current(agreement_id) or proposal.agreement
    return agreement_resource(governing, proposal)


async def signable_proposal(agreements: AgreementsDep, agreement_id: str) -> Resource:
    """Who may sign a pending proposal: the parties of the proposed version, not its proposer.
    (Asked again under the lock when the signature is added.)"""
    await agreements.refreshed()
    proposal = agreements.proposal(agreement_id)
    if proposal is None:
        raise HTTPException(404, f"no pending proposal for {agreement_id}")
    return signers_resource(proposal)


async def subject_signallers(state: StateDep, pseudonym: SubjectPath) -> Resource:
    """Which municipalities signalled the subject (consent's memory of the subject)."""
    return Resource(signalled_by=await state.signalled_by(pseudonym))


# -- agreements ------------------------------------------------------------------------------


def _proposal_body(proposal: AgreementProposed) -> dict[str, Any]:
    """A proposal as the API shows it: what it is, what it widens, who signed, who must still."""
    return {**proposal.model_dump(mode="json"), "awaiting": sorted(proposal.awaiting)}


def _outcome(outcome: ChangeOutcome) -> JSONResponse:
    if outcome.pending:
        assert outcome.proposal is not None
        return JSONResponse(
            {"status": "pending-approval", "proposal": _proposal_body(outcome.proposal)}, status_code=202
        )
    return JSONResponse(outcome.agreement.model_dump(mode="json"), status_code=201)


@router.get("/agreements", tags=["agreements"])
async def list_agreements(state: StateDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The agreements you are party to (all, for the platform's privacy officer), each at its
    current version and status, suspended ones included."""
    await state.agreements.catch_up()
    return [
        agreement.model_dump(mode="json")
        for agreement in state.latest_agreements()
        if authorise(caller, Action.READ_AGREEMENT, agreement_resource(agreement)).allowed
    ]


@router.get("/agreements/{agreement_id}", tags=["agreements"])
async def get_agreement(
    agreements: AgreementsDep,
    agreement_id: str,
    grant: Annotated[Grant, Depends(require(Action.READ_AGREEMENT, existing_agreement))],
) -> dict[str, Any]:
    current = agreements.current(agreement_id)
    assert current is not None  # the loader answered 404 otherwise
    return current.model_dump(mode="json")


@router.get("/agreements/{agreement_id}/proposal", tags=["agreements"])
async def get_proposal(
    agreements: AgreementsDep,
    agreement_id: str,
    grant: Annotated[Grant, Depends(require(Action.READ_AGREEMENT, proposed_agreement))],
) -> dict[str, Any]:
    """The change waiting for approval, and what it widens."""
    proposal = agreements.proposal(agreement_id)
    assert proposal is not None  # the loader answered 404 otherwise
    return _proposal_body(proposal)


@router.post("/agreements/validate", tags=["agreements"])
async def validate_agreement(
    caller: CallerDep, text: Annotated[str, Body(media_type="application/yaml")]
) -> JSONResponse:
    """Check an agreement file (YAML or JSON) without publishing it; problems carry line numbers."""
    agreement, problems = await asyncio.to_thread(validate_text, text, "body")  # parsing can be slow
    body = {
        "valid": agreement is not None,
        "problems": [{"line": p.line, "location": p.location, "message": p.message} for p in problems],
    }
    return JSONResponse(body, status_code=200 if agreement else 422)


async def proposal_for(agreements: AgreementsDep, agreement: Agreement) -> tuple[Agreement, Resource]:
    """The proposed version, governed by the current version's providers (a new agreement's
    by its own): nobody takes over an agreement by naming themselves a provider."""
    await agreements.refreshed()
    governing = agreements.current(agreement.id) or agreement
    return agreement, agreement_resource(governing)


async def proposal_resource(
    proposed: Annotated[tuple[Agreement, Resource], Depends(proposal_for)],
) -> Resource:
    return proposed[1]


@router.post("/agreements", tags=["agreements"], status_code=201, responses={202: {}, 409: {}})
async def publish_agreement(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.PROPOSE_AGREEMENT, proposal_resource))],
    agreements: AgreementsDep,
    proposed: Annotated[tuple[Agreement, Resource], Depends(proposal_for)],
) -> JSONResponse:
    """A new version (the current version + 1, or 1 for a new agreement). 201 and in force at
    once when it narrows; 202 pending-approval when it widens what anyone receives: every
    party, each providing municipality and each recipient partner, must sign its content
    (`awaiting` names who has not yet). 409 while another proposal is pending."""
    try:
        return _outcome(await agreements.new_version(proposed[0], grant.principal, correlation_id(request)))
    except AgreementConflict as conflict:
        raise HTTPException(409, str(conflict)) from conflict
    except ValueError as error:
        raise HTTPException(422, str(error)) from error


# Before the verdict route: `withdraw` is no verdict, and the first matching path wins.
@router.post("/agreements/{agreement_id}/proposal/{version}/withdraw", tags=["agreements"])
async def withdraw_proposal(
    request: Request,
    agreements: AgreementsDep,
    agreement_id: str,
    version: Annotated[int, Path(ge=1)],
    grant: Annotated[Grant, Depends(require(Action.PROPOSE_AGREEMENT, proposed_agreement))],
) -> JSONResponse:
    """Withdraw a pending proposal and every signature given to it, so another can be made."""
    try:
        outcome = await agreements.withdraw(agreement_id, version, grant.principal, correlation_id(request))
    except NoProposalError as missing:
        raise HTTPException(404, str(missing)) from missing
    except NotAllowedError as refused:
        raise HTTPException(403, str(refused)) from refused
    assert outcome.proposal is not None
    return JSONResponse(_proposal_body(outcome.proposal), status_code=200)


class ProposalVerdict(StrEnum):
    APPROVE = "approve"  # the caller's organisation accepts the proposed content
    REJECT = "reject"  # the caller's organisation rejects it: the proposal ends


VERDICT_SIGNATURE = {
    ProposalVerdict.APPROVE: SignatureType.ACCEPT,
    ProposalVerdict.REJECT: SignatureType.REJECT,
}


class SignatureRequest(BaseModel):
    """One party's signed word on the proposed version's content (shared/contracts/crypto/approvals.py)."""

    model_config = ConfigDict(extra="forbid")

    jws: str = Field(
        min_length=20,
        max_length=4000,
        description="Compact JWS (EdDSA, the organisation's own key) over the statement: agreement id,"
        " version, contract_content_hash, organisation, type (accept or reject), signed_at.",
    )


@router.post(
    "/agreements/{agreement_id}/proposal/{version}/{verdict}",
    tags=["agreements"],
    responses={404: {}, 409: {}, 422: {}},
)
async def decide_proposal(
    request: Request,
    agreements: AgreementsDep,
    agreement_id: str,
    version: Annotated[int, Path(ge=1)],
    verdict: ProposalVerdict,
    signature: SignatureRequest,
    grant: Annotated[Grant, Depends(require(Action.APPROVE_AGREEMENT, signable_proposal))],
) -> JSONResponse:
    """A party's privacy officer signs the proposed content for its organisation: `approve`
    (accept) or `reject`. The version comes into force with the last party's acceptance; one
    rejection ends the proposal. The proposal, with every signature so far."""
    try:
        outcome = await agreements.sign(
            agreement_id,
            version,
            signature.jws,
            VERDICT_SIGNATURE[verdict],
            grant.principal,
            correlation_id(request),
        )
    except NoProposalError as missing:
        raise HTTPException(404, str(missing)) from missing
    except NotAllowedError as refused:
        raise HTTPException(403, str(refused)) from refused
    except InvalidSignatureError as invalid:
        raise HTTPException(422, str(invalid)) from invalid
    except AgreementConflict as conflict:
        raise HTTPException(409, str(conflict)) from conflict
    assert outcome.proposal is not None
    return JSONResponse(_proposal_body(outcome.proposal), status_code=200)


async def _ended(
    request: Request, agreements: AgreementAdmin, agreement_id: str, grant: Grant, status: AgreementStatus
) -> dict[str, Any]:
    try:
        ended = await agreements.end(agreement_id, status, grant.principal, correlation_id(request))
    except KeyError as missing:
        raise HTTPException(404, f"no agreement {agreement_id}") from missing
    return ended.model_dump(mode="json")


EndGrant = Annotated[Grant, Depends(require(Action.SUSPEND_AGREEMENT, existing_agreement))]


@router.post("/agreements/{agreement_id}/suspend", tags=["agreements"])
async def suspend_agreement(
    request: Request, agreements: AgreementsDep, agreement_id: str, grant: EndGrant
) -> dict[str, Any]:
    """Suspend an agreement at once: nothing flows until a version every party signed resumes it."""
    return await _ended(request, agreements, agreement_id, grant, AgreementStatus.SUSPENDED)


@router.post("/agreements/{agreement_id}/revoke", tags=["agreements"])
async def revoke_agreement(
    request: Request, agreements: AgreementsDep, agreement_id: str, grant: EndGrant
) -> dict[str, Any]:
    """Revoke an agreement, at once and for good: nothing flows under it again."""
    return await _ended(request, agreements, agreement_id, grant, AgreementStatus.REVOKED)


@router.get("/agreements/{agreement_id}/signatures", tags=["agreements"])
async def get_signatures(
    agreements: AgreementsDep,
    agreement_id: str,
    grant: Annotated[Grant, Depends(require(Action.READ_AGREEMENT, existing_agreement))],
) -> dict[str, Any]:
    """The proof behind the current version: the version every party signed, its content hash,
    and each party's signature (a compact JWS anyone can check with the party's public key)."""
    record = agreements.current_record(agreement_id)
    assert record is not None  # the loader answered 404 otherwise
    return {
        "version": record.agreement.version,
        "approved": record.approved.model_dump(mode="json"),
        "content_hash": record.approved.content_hash,
        "signatures": [signature.model_dump(mode="json") for signature in record.signatures],
    }


# -- subjects ----------------------------------------------------------------------------------


class DirectiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DirectiveKind
    scope: DirectiveScope


@router.post("/subjects/{pseudonym}/directives", tags=["subjects"], status_code=201)
async def record_directive(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.RECORD_DIRECTIVE, subject_signallers))],
    directives: DirectivesDep,
    request_body: DirectiveRequest,
    pseudonym: SubjectPath,
) -> dict[str, Any]:
    """Record consent given or withdrawn, or an objection (AVG art. 21), for one subject. A
    municipality's directive governs what it provided; the platform's privacy officer's, what
    every municipality provided (ADR 0009). The directives you may read, with the new one."""
    event = await directives.record(
        pseudonym, request_body.kind, request_body.scope, grant.principal, correlation_id(request)
    )
    return {
        **event.model_dump(mode="json", exclude={"directives"}),
        "directives": [d.model_dump(mode="json") for d in visible_to(event.directives, grant.principal)],
    }


@router.get("/subjects/{pseudonym}/directives", tags=["subjects"])
async def list_directives(
    state: StateDep,
    pseudonym: SubjectPath,
    grant: Annotated[Grant, Depends(require(Action.READ_DIRECTIVES, subject_signallers))],
) -> list[dict[str, Any]]:
    """The subject's directives that govern your data (yours and the platform's); the platform's
    privacy officer reads all."""
    await state.directives.catch_up()
    return [d.model_dump(mode="json") for d in visible_to(state.directives_of(pseudonym), grant.principal)]


# -- explain -----------------------------------------------------------------------------------


class ExplainRequest(BaseModel):
    """A hypothetical signal: its metadata, and optionally whose it is and for whom."""

    model_config = ConfigDict(extra="forbid")

    municipality: str
    category: Category
    purpose: str
    subject_pseudonym: str | None = Field(default=None, pattern=PSEUDONYM)
    recipient: str | None = None


async def explained(state: StateDep, question: ExplainRequest) -> tuple[ExplainRequest, Resource]:
    signalled_by = (
        await state.signalled_by(question.subject_pseudonym) if question.subject_pseudonym else frozenset()
    )
    resource = Resource(
        municipality=question.municipality, recipient=question.recipient, signalled_by=signalled_by
    )
    return question, resource


async def explain_grant(
    caller: CallerDep, asked: Annotated[tuple[ExplainRequest, Resource], Depends(explained)]
) -> Grant:
    """With a subject, the question touches the subject's directives: the stricter rule."""
    question, resource = asked
    action = Action.EXPLAIN_FOR_SUBJECT if question.subject_pseudonym else Action.EXPLAIN
    return check(caller, action, resource)


@router.post("/decisions/explain", tags=["decisions"])
async def explain(
    grant: Annotated[Grant, Depends(explain_grant)],
    explainer: ExplainerDep,
    asked: Annotated[tuple[ExplainRequest, Resource], Depends(explained)],
) -> list[dict[str, Any]]:
    """The decision for each (or one) partner and why; nothing is delivered or logged as sent."""
    question = asked[0]
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
