"""Privacy officers' HTTP API: query the audit records and verify the log.

A privacy officer of organisation X reads the records where X is source or target; the
platform's privacy officer reads all (shared/policy.py). Every read is itself logged: an
`AuditRead` record (who, which filter, how many results) is on audit.reads.v1, and so on its way
into this log, before the answer leaves.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.audit.exports import ExportContext, Format, render
from services.audit.leaf import leaf_bytes
from services.audit.proofs import cosigned
from services.audit.report import SubjectAccessReport, Version, build_report
from services.audit.search import (
    PSEUDONYM_PATTERN,
    InvalidCursorError,
    SearchCriteria,
    SearchRequest,
    SubjectLookup,
    page_of,
    split_page,
    to_query,
)
from services.audit.store import AuditStore, RecordQuery, every_page, in_scope
from services.audit.verification import LastVerification, verify_store
from services.http_auth import Grant, require
from shared.contracts.events import AuditRead
from shared.kafka import SignedPublisher
from shared.policy import ALL_RECORDS, Action
from shared.registry import Registry
from shared.tlog import merkle
from shared.tlog.checkpoint import CosignatureVerifier
from shared.tlog.note import parse_note
from shared.topics import AUDIT_READS

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses={401: {}, 403: {}, 429: {}})


def get_store(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.store
    return store


def get_read_log(request: Request) -> SignedPublisher:
    publisher: SignedPublisher = request.app.state.read_log
    return publisher


StoreDep = Annotated[AuditStore, Depends(get_store)]
ReadLogDep = Annotated[SignedPublisher, Depends(get_read_log)]


async def log_read(
    request: Request,
    read_log: SignedPublisher,
    grant: Grant,
    criteria: dict[str, str],
    results: int,
    subject: str | None = None,
) -> None:
    """Every read of the log is itself logged (who, scope, filter, count), before the answer."""
    read = AuditRead(
        reader=grant.principal.organisation,
        actor=grant.principal.actor,
        scope=grant.verdict.audit_scope or grant.principal.organisation,
        filter=criteria,
        results=results,
        read_at=datetime.now(UTC),
    )
    await read_log.publish(
        AUDIT_READS, read.reader, read, subject=subject, correlation_id=request.state.correlation_id
    )


@router.get("/records")
async def list_records(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.READ_AUDIT))],
    store: StoreDep,
    read_log: ReadLogDep,
    signal_id: Annotated[str | None, Query(max_length=36)] = None,
    correlation_id: Annotated[str | None, Query(max_length=32)] = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[
        str | None, Query(pattern=r"^[0-9a-f]{32}$", description="A subject pseudonym.")
    ] = None,
    organisation: Annotated[str | None, Query(max_length=100, description="As source or target.")] = None,
) -> list[dict[str, Any]]:
    """Audit records matching every given criterion within your scope, ordered by event time."""
    scope = grant.verdict.audit_scope
    query = RecordQuery(
        signal_id,
        correlation_id,
        event_type,
        subject,
        organisation,
        within=None if scope == ALL_RECORDS else scope,
    )
    records = await asyncio.to_thread(store.records, query)
    await log_read(request, read_log, grant, query.criteria(), len(records), subject)
    return records


def get_lookup(request: Request) -> SubjectLookup:
    lookup: SubjectLookup = request.app.state.subject_lookup
    return lookup


LookupDep = Annotated[SubjectLookup, Depends(get_lookup)]


def _scoped_query(criteria: SearchCriteria, lookup: SubjectLookup, grant: Grant) -> RecordQuery:
    try:
        return to_query(criteria, lookup, grant.verdict.audit_scope)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


class SearchPage(BaseModel):
    records: list[dict[str, Any]]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


@router.post("/search", response_model=SearchPage)
async def search(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.READ_AUDIT))],
    store: StoreDep,
    read_log: ReadLogDep,
    lookup: LookupDep,
    body: SearchRequest,
) -> SearchPage:
    """Records matching every criterion within your scope, a page at a time (keyset: `next`
    leads on, stable while the log grows), newest first unless asked otherwise. A BSN goes in
    this body, never in a URL; it is pseudonymised here and neither kept, logged nor echoed."""
    query = _scoped_query(body, lookup, grant)
    try:
        page = page_of(body)
    except InvalidCursorError as error:
        raise HTTPException(422, str(error)) from None
    found = await asyncio.to_thread(store.page, query, page)
    records, following = split_page(found, body.limit)
    await log_read(request, read_log, grant, query.criteria(), len(records), query.subject)
    return SearchPage(records=records, next=following)


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bsn: SecretStr | None = Field(default=None, description="The citizen's BSN (or give `subject`).")
    subject: str | None = Field(default=None, pattern=PSEUDONYM_PATTERN)
    version: Version = Field(
        default=Version.CITIZEN,
        description="citizen: for the person (confidential exchanges withheld until released, no"
        " names of staff); officer: everything in your scope, confidential ones marked.",
    )


async def subject_access_report(
    request: Request,
    grant: Grant,
    store: AuditStore,
    read_log: SignedPublisher,
    subject: str,
    version: Version,
) -> SubjectAccessReport:
    """The report for `subject` within the grant's scope; the read is logged before it is given."""
    query = to_query(
        SearchCriteria(subject=subject), request.app.state.subject_lookup, grant.verdict.audit_scope
    )
    records = await asyncio.to_thread(store.records, query)
    checkpoints = await asyncio.to_thread(store.checkpoints)
    registry: Registry = request.app.state.registry
    now = datetime.now(UTC)
    report = build_report(
        records,
        subject=subject,
        scope=grant.verdict.audit_scope or grant.principal.organisation,
        names={org: registry.get(org).name for org in registry.all_ids()},
        version=version,
        today=now.date(),
        generated_at=now,
        log_size=await asyncio.to_thread(store.size),
        checkpoint_size=checkpoints[-1].size if checkpoints else None,
    )
    criteria = {"subject": subject, "report": version.value}
    await log_read(request, read_log, grant, criteria, len(records), subject)
    return report


@router.post("/reports/subject-access", response_model=SubjectAccessReport)
async def subject_access(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.READ_AUDIT))],
    store: StoreDep,
    read_log: ReadLogDep,
    lookup: LookupDep,
    body: ReportRequest,
) -> SubjectAccessReport:
    """Everything exchanged about one person within your scope (AVG art. 15), grouped by
    recipient: category, field names, when, agreement, purpose, legal basis, decision and
    reasons, delivery and receipt; the person's consent, objections and erasures."""
    if (body.bsn is None) == (body.subject is None):
        raise HTTPException(422, "give the BSN or the subject pseudonym")
    subject = lookup.pseudonym(body.bsn) if body.bsn is not None else body.subject
    assert subject is not None
    return await subject_access_report(request, grant, store, read_log, subject, body.version)


class ExportRequest(SearchCriteria):
    format: Format = Field(description="ndjson, csv, ldv (Logboek Dataverwerkingen) or vwl (VNG).")
    citizen: bool = Field(
        default=False, description="The citizen's version: confidential records and staff names left out."
    )


@router.post(
    "/exports",
    response_class=StreamingResponse,
    responses={200: {"content": {f.media_type.split(";")[0]: {} for f in Format}}},
)
async def export(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.READ_AUDIT))],
    store: StoreDep,
    read_log: ReadLogDep,
    lookup: LookupDep,
    body: ExportRequest,
) -> StreamingResponse:
    """Every record matching the criteria within your scope, oldest first, streamed in the
    format asked, each with the reference to its inclusion proof. `X-Record-Count` says how many
    records match (a format may write fewer lines: LDV writes only records about a subject)."""
    query = _scoped_query(body, lookup, grant)
    total = await asyncio.to_thread(store.count, query)
    checkpoints = await asyncio.to_thread(store.checkpoints)
    context = ExportContext(
        registry=request.app.state.registry,
        register_url=request.app.state.processing_register_url,
        today=datetime.now(UTC).date(),
        checkpoint_size=checkpoints[-1].size if checkpoints else None,
        citizen=body.citizen,
    )
    criteria = {**query.criteria(), "export": body.format.value}
    await log_read(request, read_log, grant, criteria, total, query.subject)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        render(body.format, every_page(store, query), context),
        media_type=body.format.media_type,
        headers={
            "X-Record-Count": str(total),
            "Content-Disposition": f'attachment; filename="audit-{stamp}.{body.format.extension}"',
        },
    )


@router.get("/verify")
async def verify(
    grant: Annotated[Grant, Depends(require(Action.VERIFY_AUDIT))], store: StoreDep, request: Request
) -> JSONResponse:
    """Recompute the Merkle tree from the records, hold every stored node and checkpoint to it,
    and the store to the checkpoints kept outside it (audit.checkpoints.v1): a cut tail or a
    rewritten history shows. 200 when intact; 409 naming the first bad record otherwise."""
    outside = await request.app.state.outside_checkpoints()
    result = await asyncio.to_thread(verify_store, store, None, outside, request.app.state.log_key)
    request.app.state.last_verification = LastVerification(datetime.now(UTC), grant.principal.actor, result)
    body = {
        "intact": result.intact,
        "records_checked": result.records_checked,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
        "size": result.size,
        "root_hash": result.root_hash,
        "newest_checkpoint": result.newest_checkpoint,
        "witnesses": list(result.witnesses),
    }
    return JSONResponse(body, status_code=200 if result.intact else 409)


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 404: {"description": "No checkpoint issued yet."}},
)
async def checkpoint(
    _: Annotated[Grant, Depends(require(Action.READ_CHECKPOINT))], store: StoreDep
) -> PlainTextResponse:
    """The newest checkpoint: a C2SP tlog-checkpoint note signed by the audit service (its key
    name is the log's origin), with the cosignatures witnesses gave it. Plain text, verbatim."""
    checkpoints = await asyncio.to_thread(store.checkpoints)
    if not checkpoints:
        raise HTTPException(404, "no checkpoint issued yet")
    signed = await asyncio.to_thread(cosigned, store, checkpoints[-1])
    return PlainTextResponse(signed, media_type="text/plain; charset=utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/records/{seq}/inclusion")
async def inclusion(
    request: Request,
    grant: Annotated[Grant, Depends(require(Action.READ_AUDIT))],
    store: StoreDep,
    read_log: ReadLogDep,
    seq: Annotated[int, FastApiPath(ge=1)],
    tree_size: Annotated[
        int | None, Query(ge=1, description="Default: the newest checkpoint's size.")
    ] = None,
) -> dict[str, Any]:
    """The record's exact leaf bytes and its RFC 9162 inclusion proof in the tree of `tree_size`
    records: with a checkpoint of that size, anyone can check the record is in the log. Within
    your scope only; logged as a read."""
    record = await asyncio.to_thread(store.record, seq)
    scope = grant.verdict.audit_scope
    if record is None or not in_scope(record, scope):
        raise HTTPException(404, "no such record in your scope")
    if tree_size is None:
        checkpoints = await asyncio.to_thread(store.checkpoints)
        tree_size = checkpoints[-1].size if checkpoints else await asyncio.to_thread(store.size)
    if not seq <= tree_size <= await asyncio.to_thread(store.size):
        raise HTTPException(422, "tree_size must cover the record and not exceed the log")
    proof = await asyncio.to_thread(merkle.inclusion_proof, seq - 1, tree_size, store)
    await log_read(request, read_log, grant, {"seq": str(seq), "tree_size": str(tree_size)}, 1)
    return {
        "leaf_index": seq - 1,
        "tree_size": tree_size,
        "leaf": _b64(leaf_bytes(record)),
        "proof": [_b64(node) for node in proof],
    }


@router.get("/consistency")
async def consistency(
    _: Annotated[Grant, Depends(require(Action.READ_CHECKPOINT))],
    store: StoreDep,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """The RFC 9162 consistency proof between the trees of `first` and `second` records: a
    witness checks that the newer checkpoint extends the one it accepted, nothing rewritten."""
    if not first <= second <= await asyncio.to_thread(store.size):
        raise HTTPException(422, "need first <= second <= the log's size")
    proof = await asyncio.to_thread(merkle.consistency_proof, first, second, store)
    return {"first": first, "second": second, "proof": [_b64(node) for node in proof]}


class CosignatureIn(BaseModel):
    size: int = Field(ge=1, description="The size of the checkpoint cosigned.")
    cosignature: str = Field(max_length=500, description="The C2SP tlog-cosignature line.")


@router.post("/checkpoint/cosignatures", status_code=201)
async def cosign(
    grant: Annotated[Grant, Depends(require(Action.COSIGN_CHECKPOINT))],
    store: StoreDep,
    request: Request,
    body: CosignatureIn,
) -> dict[str, Any]:
    """A witness hands over its cosignature of a checkpoint it found consistent: kept beside the
    checkpoint once it verifies with the witness organisation's own key (from the registry)."""
    witness = grant.principal.organisation
    checkpoints = {c.size: c for c in await asyncio.to_thread(store.checkpoints)}
    if body.size not in checkpoints:
        raise HTTPException(404, "no checkpoint of that size")
    text, _ = parse_note(checkpoints[body.size].note)
    try:
        (signature,) = parse_note(text + "\n" + body.cosignature.rstrip("\n") + "\n")[1]
    except ValueError:
        raise HTTPException(422, "not one signature line") from None
    if signature.name != witness:
        raise HTTPException(403, "a witness cosigns in its own name only")
    registry: Registry = request.app.state.registry
    verifier = CosignatureVerifier(witness, registry.ed25519_public(witness))
    if signature.key_id != verifier.key_id or not verifier.verify(text.encode(), signature.signature):
        raise HTTPException(422, "the cosignature does not verify with the witness's key")
    await asyncio.to_thread(store.add_cosignature, body.size, witness, signature.line)
    return {"size": body.size, "witness": witness}
