"""The console's pages for investigating: search, one signal's timeline, the subject access
report. Every page is for a signed-in privacy officer whom the policy lets read the audit log
(`console_grant(Action.READ_AUDIT)`), shows only the records in that officer's scope, and logs
the read (an `AuditRead` on audit.reads.v1, without a BSN) before it answers.

A BSN is typed into a form that is POSTed: it never appears in a URL. The page that answers
carries the subject's pseudonym forward (the next page, the report's download), never the BSN.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import SecretStr, ValidationError

from services.audit.console.i18n import Language, language_of, translate
from services.audit.console.session import console_grant
from services.audit.console.templating import console_state, render
from services.audit.http import log_read, scope_of, subject_access_report
from services.audit.log.catalogue import CATALOGUE
from services.audit.log.facts import FLAGGED_DECISIONS
from services.audit.log.statements import DECISIONS
from services.audit.log.store import AuditStore
from services.audit.queries.report import Version
from services.audit.queries.search import (
    InvalidCursorError,
    SearchCriteria,
    SearchRequest,
    decode_cursor,
    echoed,
    page_of,
    split_page,
    subject_of,
    to_query,
)
from services.audit.queries.timeline import build_timeline
from services.http_auth import Grant
from shared.contracts.signal import Category
from shared.plumbing.policy import Action

router = APIRouter(prefix="/console", include_in_schema=False)
Officer = Annotated[Grant, Depends(console_grant(Action.READ_AUDIT))]
FILTERS = (
    "subject", "organisation", "category", "event_type", "decision", "agreement_id",
    "agreement_version", "since", "until", "signal_id",
)  # fmt: skip
"""The search form's criteria, besides the BSN (never echoed)."""


def store_of(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.store
    return store


def names_of(request: Request) -> dict[str, str]:
    registry = console_state(request).registry
    return {org: registry.get(org).name for org in registry.all_ids()}


def form_choices(request: Request) -> dict[str, Any]:
    """The search form's lists: organisations, categories, event types."""
    return {
        "organisations": sorted(names_of(request).items(), key=lambda item: item[1]),
        "categories": [category.value for category in Category],
        "event_types": sorted(CATALOGUE),
        "decisions": sorted(DECISIONS | FLAGGED_DECISIONS),
    }


@router.get("/")
async def home(request: Request, grant: Officer) -> Response:
    return render(request, "home.html")


def _criteria_from(form: dict[str, str]) -> dict[str, Any]:
    """The form's non-empty fields as search criteria; dates are whole days in UTC (until:
    the day itself included)."""
    given: dict[str, Any] = {name: form[name].strip() for name in FILTERS if form.get(name, "").strip()}
    for name, moment in (("since", time.min), ("until", time.max)):
        if name in given:
            given[name] = datetime.combine(parse_day(given[name]), moment, tzinfo=UTC)
    bsn = form.get("bsn", "").strip()
    if bsn:
        given["bsn"] = SecretStr(bsn)
    return given


DAY_FORMATS: Final = ("%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d")
"""How a person types a date, in either language: day first (31-12-2026, 31/12/2026), or ISO."""


class InvalidDayError(ValueError):
    """Not a date in any of DAY_FORMATS."""


def parse_day(text: str) -> date:
    for pattern in DAY_FORMATS:
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise InvalidDayError(text)


FIELD_LABELS: Final = {
    "bsn": "search.bsn",
    "subject": "search.subject",
    "organisation": "search.organisation",
    "category": "search.category",
    "event_type": "search.event_type",
    "decision": "search.decision",
    "agreement_id": "search.agreement",
    "agreement_version": "search.agreement_version",
    "signal_id": "search.signal",
    "since": "search.since",
    "until": "search.until",
}
"""A form field -> the catalogue key of its label, to say which field a problem is in."""
FIELD_PROBLEMS: Final = {"bsn": "problem.bsn", "subject": "problem.subject", "category": "problem.choice"}
"""Fields whose problem has words of its own; any other says it is not filled in well."""


def _problems(language: Language, error: ValidationError) -> list[str]:
    """What is wrong, by field, in the page's language, never with the value (a BSN typed
    wrongly stays unsaid)."""
    problems = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        label = translate(language, FIELD_LABELS[name]) if name in FIELD_LABELS else name
        problems.append(translate(language, FIELD_PROBLEMS.get(name, "problem.field"), field=label))
    return list(dict.fromkeys(problems))


def _refusal(language: Language, error: ValueError) -> str:
    """A search the query refused as a whole: both a BSN and a pseudonym, or a page link that
    is not ours."""
    if isinstance(error, InvalidCursorError):
        return translate(language, "problem.cursor")
    return translate(language, "problem.bsn_and_subject")


@router.get("/search")
async def search_form(request: Request, grant: Officer) -> Response:
    return render(
        request,
        "search.html",
        {
            **form_choices(request),
            "values": dict.fromkeys(FILTERS, ""),
            "records": None,
            "following": None,
            "problems": [],
        },
    )


@router.post("/search")
async def search(request: Request, grant: Officer) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    context: dict[str, Any] = {**form_choices(request), "records": None, "following": None, "problems": []}
    values = {name: form.get(name, "") for name in FILTERS}
    try:
        criteria = SearchRequest(**_criteria_from(form), after=form.get("after") or None, limit=50)
        if criteria.after:
            decode_cursor(criteria.after)
        query = await asyncio.to_thread(
            to_query, criteria, request.app.state.subject_lookup, scope_of(grant), store_of(request)
        )
    except ValidationError as error:
        return render(
            request,
            "search.html",
            {**context, "values": values, "problems": _problems(language_of(request), error)},
            status_code=422,
        )
    except InvalidDayError:
        problems = [translate(language_of(request), "search.date.invalid")]
        return render(
            request, "search.html", {**context, "values": values, "problems": problems}, status_code=422
        )
    except ValueError as error:  # both a BSN and a pseudonym; a cursor not ours
        problems = [_refusal(language_of(request), error)]
        return render(
            request, "search.html", {**context, "values": values, "problems": problems}, status_code=422
        )
    store = store_of(request)
    found = await asyncio.to_thread(store.page, query, page_of(criteria))
    records, following = split_page(found, criteria.limit)
    subject = echoed(query.subject)
    await log_read(request, request.app.state.read_log, grant, query.criteria(), len(records), subject)
    values["subject"] = subject or ""  # the BSN becomes the pseudonym on the page (one the reader may know)
    context |= {"values": values, "records": records, "following": following, "names": names_of(request)}
    return render(request, "search.html", context)


@router.get("/signals/{signal_id}")
async def signal_timeline(request: Request, grant: Officer, signal_id: str) -> Response:
    if len(signal_id) > 36:
        raise HTTPException(404, "no such signal")
    store = store_of(request)
    scope = scope_of(grant)
    records = await asyncio.to_thread(store.records, scope.query(signal_id=signal_id))
    if not records:
        raise HTTPException(404, "no records of this signal in your scope")
    subject = next((r.subject_pseudonym for r in records if r.signal_id and r.subject_pseudonym), None)
    about = await asyncio.to_thread(store.records, scope.query(subject=subject)) if subject else []
    timeline = build_timeline(signal_id, records, about)
    await log_read(
        request, request.app.state.read_log, grant, {"signal_id": signal_id}, len(timeline.records), subject
    )
    return render(request, "timeline.html", {"timeline": timeline, "names": names_of(request)})


@router.get("/report")
async def report_form(request: Request, grant: Officer) -> Response:
    return render(request, "report_form.html", {"problems": [], "subject": ""})


async def _report(request: Request, grant: Grant, form: dict[str, str]) -> tuple[Any, list[str]]:
    bsn, subject = form.get("bsn", "").strip(), form.get("subject", "").strip()
    try:
        version = Version(form.get("version", Version.CITIZEN.value))
        criteria = SearchCriteria(bsn=SecretStr(bsn) if bsn else None, subject=subject or None)
        if criteria.bsn is None and criteria.subject is None:
            raise ValueError("give the BSN or the subject pseudonym")
        store = store_of(request)
        wanted = await asyncio.to_thread(
            subject_of,
            criteria.bsn,
            criteria.subject,
            request.app.state.subject_lookup,
            scope_of(grant),
            store,
        )
    except ValidationError as error:
        return None, _problems(language_of(request), error)
    except ValueError as error:
        return None, [_refusal(language_of(request), error)]
    assert wanted is not None
    report = await subject_access_report(request, grant, store, request.app.state.read_log, wanted, version)
    return report, []


@router.post("/report")
async def report(request: Request, grant: Officer) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    document, problems = await _report(request, grant, form)
    if document is None:
        context = {"problems": problems, "subject": form.get("subject", "")}
        return render(request, "report_form.html", context, status_code=422)
    return render(request, "report.html", {"report": document, "names": names_of(request)})


@router.post("/report/download")
async def report_download(request: Request, grant: Officer) -> Response:
    """The report as JSON, to keep with the answer to the citizen."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    document, problems = await _report(request, grant, {**form, "bsn": ""})
    if document is None:
        raise HTTPException(422, "; ".join(problems))
    filename = f"inzage-{document.subject[:8]}-{document.version.value}-{document.generated_at:%Y%m%d}.json"
    return Response(
        document.model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
