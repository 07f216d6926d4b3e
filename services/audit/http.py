"""Privacy officers' HTTP API: query the audit records and verify the log.

A privacy officer of a municipality reads the records where it is source or target, a
partner's privacy officer what reached the partner (its deliveries, erasure notices and
receipts, under its own pseudonyms and delivery ids), the platform's privacy officer all
(shared/plumbing/policy.py; services.audit.queries.search.reader_scope). Every view is built
from verified facts only (services.audit.log.facts.is_fact); what the log flagged has its own
view (`/flagged`). Every list is paged (at most MAX_PAGE records a page, keyset). Every read is
itself logged: an `AuditRead` record (who, which filter, how many results) is on
audit.reads.v1, and so on its way into this log, before the answer leaves.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.audit.log.leaf import leaf_bytes
from services.audit.log.proofs import cosigned
from services.audit.log.query import Page, ReaderScope, RecordQuery, in_scope
from services.audit.log.record import AuditRecord
from services.audit.log.store import AuditStore, every_page
from services.audit.log.verification import LogVerifier
from services.audit.queries.exports import Format, render
from services.audit.queries.exports.context import ExportContext
from services.audit.queries.report import SubjectAccessReport, Version, build_report
from services.audit.queries.search import (
    MAX_PAGE,
    PSEUDONYM_PATTERN,
    InvalidCursorError,
    SearchCriteria,
    SearchRequest,
    SubjectLookup,
    decode_cursor,
    deliveries_confidential_until,
    echoed,
    page_of,
    reader_scope,
    split_page,
    subject_of,
    to_query,
)
from services.http_auth import Grant, require
from shared.contracts.events import AuditRead
from shared.contracts.registry import Registry
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import CosignatureVerifier
from shared.contracts.tlog.note import parse_note
from shared.plumbing.kafka import SignedPublisher
from shared.plumbing.policy import Action

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
    await read_log.publish(read.reader, read, subject=subject, correlation_id=request.state.correlation_id)


def scope_of(grant: Grant) -> ReaderScope:
    """The reader's audit scope, from the policy's verdict (services.audit.queries.search.reader_scope)."""
    return reader_scope(grant.principal, grant.verdict.audit_scope)


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Records a page (at most {MAX_PAGE}).")]
After = Annotated[str | None, Query(max_length=200, description="The cursor of the `next` link.")]


def _page(limit: int, after: str | None, newest_first: bool, linked: bool = False) -> Page:
    """The store page for a list request: one record more than asked, to know whether more follow."""
    try:
        position = decode_cursor(after) if after else None
    except InvalidCursorError as error:
        raise HTTPException(422, str(error)) from None
    return Page(limit=limit + 1, after=position, newest_first=newest_first, linked=linked)


def _link_next(request: Request, response: Response, following: str | None) -> None:
    """RFC 8288: the next page's URL in `Link` (rel=next); none on the last page."""
    if following is not None:
        url = request.url.include_query_params(after=following)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


@router.get("/records")
async def list_records(
    request: Request,
    response: Response,
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
    limit: Limit = MAX_PAGE,
    after: After = None,
    newest_first: bool = False,
) -> list[AuditRecord]:
    """Audit records matching every given criterion within your scope, oldest first (by event
    time), a page at a time: at most `limit` records, and while more follow a `Link` header
    whose rel="next" URL (the same keyset cursor as POST /search's `next`) gives the next page.
    Asked by signal, trace or subject, the partner-side records its deliveries lead to are in
    the answer too."""
    query = scope_of(grant).query(
        signal_id=signal_id,
        correlation_id=correlation_id,
        event_type=event_type,
        subject=subject,
        organisation=organisation,
    )
    found = await asyncio.to_thread(store.page, query, _page(limit, after, newest_first, linked=True))
    records, following = split_page(found, limit)
    await log_read(request, read_log, grant, query.criteria(), len(records), subject)
    _link_next(request, response, following)
    return records


@router.get("/flagged")
async def list_flagged(
    request: Request,
    response: Response,
    grant: Annotated[Grant, Depends(require(Action.READ_AUDIT))],
    store: StoreDep,
    read_log: ReadLogDep,
    limit: Limit = 50,
    after: After = None,
    newest_first: bool = True,
) -> list[AuditRecord]:
    """The integrity view: records within your scope that the log could not believe (forged,
    unverifiable, unreadable). They stay in the log as evidence and never feed another view.
    Newest first, paged like /records (`Link` rel="next")."""
    query = scope_of(grant).query(flagged=True)
    found = await asyncio.to_thread(store.page, query, _page(limit, after, newest_first))
    records, following = split_page(found, limit)
    await log_read(request, read_log, grant, query.criteria(), len(records))
    _link_next(request, response, following)
    return records


def get_lookup(request: Request) -> SubjectLookup:
    lookup: SubjectLookup = request.app.state.subject_lookup
    return lookup


LookupDep = Annotated[SubjectLookup, Depends(get_lookup)]


async def _scoped_query(
    criteria: SearchCriteria,
    lookup: SubjectLookup,
    grant: Grant,
    store: AuditStore,
    flagged: bool | None = None,
) -> RecordQuery:
    try:
        return await asyncio.to_thread(to_query, criteria, lookup, scope_of(grant), store, flagged)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


class SearchPage(BaseModel):
    records: list[AuditRecord]
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
    query = await _scoped_query(body, lookup, grant, store)
    try:
        page = page_of(body)
    except InvalidCursorError as error:
        raise HTTPException(422, str(error)) from None
    found = await asyncio.to_thread(store.page, query, page)
    records, following = split_page(found, body.limit)
    await log_read(request, read_log, grant, query.criteria(), len(records), echoed(query.subject))
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
    """The report for `subject` within the grant's scope, from verified facts only; the read is
    logged before it is given."""
    scope = scope_of(grant)
    records = await asyncio.to_thread(store.records, scope.query(subject=subject, flagged=False))
    # a partner sees its deliveries, not the decisions that say how long each is confidential
    confidential = (
        await asyncio.to_thread(deliveries_confidential_until, store, records)
        if scope.received_only
        else None
    )
    newest = await asyncio.to_thread(store.latest_checkpoint)
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
        checkpoint_size=newest.size if newest else None,
        confidential_until=confidential,
    )
    criteria = {"subject": subject, "report": version.value}
    await log_read(request, read_log, grant, criteria, len(records), echoed(subject))
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
    subject = await asyncio.to_thread(subject_of, body.bsn, body.subject, lookup, scope_of(grant), store)
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
    query = await _scoped_query(body, lookup, grant, store, flagged=False)  # facts only
    total = await asyncio.to_thread(store.count, query)
    newest = await asyncio.to_thread(store.latest_checkpoint)
    context = ExportContext(
        registry=request.app.state.registry,
        register_url=request.app.state.processing_register_url,
        today=datetime.now(UTC).date(),
        checkpoint_size=newest.size if newest else None,
        citizen=body.citizen,
    )
    criteria = {**query.criteria(), "export": body.format.value}
    await log_read(request, read_log, grant, criteria, total, echoed(query.subject))
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
    grant: Annotated[Grant, Depends(require(Action.VERIFY_AUDIT))], request: Request
) -> JSONResponse:
    """Hold the records to the Merkle tree, the stored nodes and checkpoints, and the store to the
    checkpoints kept outside it (audit.checkpoints.v1): a cut tail or a rewritten history shows.
    200 when intact; 409 naming the first bad record otherwise. One verification runs at a time,
    off the event loop: a request during a run gets that run's answer. After the process's first
    (full) run, only the records appended since the last intact one are read (`kind`:
    incremental, `records_read`), and the stored tree must extend the verified one; the full
    re-read of every record is the operator's `safety-chain audit verify --database`."""
    verifier: LogVerifier = request.app.state.verifier
    done = await verifier.verify(grant.principal.actor)
    request.app.state.last_verification = done
    result = done.result
    body = {
        "intact": result.intact,
        "records_checked": result.records_checked,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
        "size": result.size,
        "root_hash": result.root_hash,
        "newest_checkpoint": result.newest_checkpoint,
        "witnesses": list(result.witnesses),
        "kind": done.kind,
        "records_read": done.records_read,
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
    newest = await asyncio.to_thread(store.latest_checkpoint)
    if newest is None:
        raise HTTPException(404, "no checkpoint issued yet")
    signed = await asyncio.to_thread(cosigned, store, newest)
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
    if record is None or not in_scope(record, scope_of(grant)):
        raise HTTPException(404, "no such record in your scope")
    if tree_size is None:
        newest = await asyncio.to_thread(store.latest_checkpoint)
        tree_size = newest.size if newest else await asyncio.to_thread(store.size)
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
    cosigned_checkpoint = await asyncio.to_thread(store.checkpoint, body.size)
    if cosigned_checkpoint is None:
        raise HTTPException(404, "no checkpoint of that size")
    text, _ = parse_note(cosigned_checkpoint.note)
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
