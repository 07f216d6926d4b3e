"""Privacy officers' questions in the terminal: search, the subject access report, exports.

A BSN is never an argument (it would stay in the shell's history and the process list):
`--bsn` asks for it, without echoing, and it travels in the request body only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.audit import Officer, audit_app
from cli.audit_filters import AskBsn, Filters, Subject, read_bsn, with_filters
from cli.common import AUDIT_URL, PLATFORM, AuditUrl, Token, bearer, call, emit, fail, respond
from services.audit.api import Format, SubjectAccessReport, Version
from shared.plumbing.policy import Role


def _table(records: list[dict[str, Any]]) -> Table:
    table = Table("seq", "time", "event", "from", "to", "category", "decision", "agreement", "fields")
    for record in records:
        table.add_row(
            str(record["seq"]),
            record["event_time"][:19].replace("T", " "),
            record["event_type"].removeprefix("nl.safetychain.").removesuffix(".v1"),
            record["source"],
            record["target"] or "",
            record["category"] or "",
            record["decision"] or "",
            f"{record['agreement_id']} v{record['agreement_version']}" if record["agreement_id"] else "",
            ", ".join(record["fields"]),
        )
    return table


@audit_app.command("search")
@with_filters
def search(
    filters: Filters,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Records per page.")] = 50,
    every_page: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    oldest_first: Annotated[bool, typer.Option(help="Oldest first (default newest first).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Search the audit log within your scope (every search is itself logged, without a BSN)."""
    body = filters.criteria()
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = {
            **body,
            "limit": limit,
            "newest_first": not oldest_first,
            **({"after": after} if after else {}),
        }
        answer = call("POST", f"{audit_url}/v1/audit/search", json=page, headers=headers)
        if answer.status_code != 200:
            respond(answer)
        document = answer.json()
        found += document["records"]
        after = document["next"]
        if not (every_page and after):
            break
    if as_json:
        emit({"records": found, "next": after})
        return
    console = Console()
    console.print(_table(found))
    console.print(f"{len(found)} records" + (f"; more: --all (next page {after})" if after else ""))


@audit_app.command("report")
def report(
    ask_bsn: AskBsn = False,
    subject: Subject = None,
    version: Annotated[
        Version, typer.Option(help="citizen: confidential exchanges withheld.")
    ] = Version.CITIZEN,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False,
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """The subject access report (AVG art. 15): every exchange about one person within your
    scope, by recipient. Give --bsn (asked for, not echoed) or --subject."""
    if ask_bsn == (subject is not None):
        fail({"error": "give --bsn (you will be asked for it) or --subject"}, code=2)
    body: dict[str, Any] = {"version": version.value}
    body |= {"bsn": read_bsn()} if ask_bsn else {"subject": subject}
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    answer = call("POST", f"{audit_url}/v1/audit/reports/subject-access", json=body, headers=headers)
    if answer.status_code != 200 or as_json:
        respond(answer)
        return
    print_report(SubjectAccessReport.model_validate(answer.json()), Console())


def print_report(document: SubjectAccessReport, console: Console) -> None:
    console.print(
        f"[bold]Subject access report[/bold] ({document.version.value} version) for pseudonym"
        f" {document.subject}, scope {document.scope}, {document.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    if not document.recipients and not document.signals:
        console.print("No exchanges about this person are recorded in your scope.")
    for section in document.recipients:
        table = Table(
            "decided", "from", "category", "fields", "agreement", "purpose", "legal basis", "decision",
            "delivered", "receipt", title=f"{section.name} ({section.recipient})", title_justify="left",
        )  # fmt: skip
        for exchange in section.exchanges:
            marked = f" [red](confidential until {exchange.confidential_until})[/red]" if (
                exchange.confidentiality.value == "vertrouwelijk"
            ) else ""  # fmt: skip
            table.add_row(
                f"{exchange.decided_at:%Y-%m-%d %H:%M}",
                exchange.provider,
                exchange.category or "",
                ", ".join(exchange.fields) or "-",
                f"{exchange.agreement_id} v{exchange.agreement_version}" if exchange.agreement_id else "-",
                exchange.purpose or "",
                exchange.legal_basis or "",
                exchange.decision + marked,
                f"{exchange.delivered_at:%Y-%m-%d %H:%M}" if exchange.delivered_at else "-",
                exchange.receipt or "-",
            )
        console.print(table)
    for directive in document.directives:
        console.print(
            f"{directive.recorded_at:%Y-%m-%d %H:%M} {directive.kind} recorded by {directive.recorded_by}"
        )
    for erasure in document.erasures:
        console.print(f"{erasure.erased_at:%Y-%m-%d %H:%M} erased at the request of {erasure.requested_by}")
    if document.withheld:
        console.print(f"{document.withheld} confidential exchanges are left out of the citizen's version.")


@audit_app.command("export")
@with_filters
def export(
    format: Annotated[Format, typer.Option(help="ndjson, csv, ldv (Logboek Dataverwerkingen), vwl (VNG).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    filters: Filters,
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Export every record matching the criteria within your scope, each with the reference to
    its inclusion proof; a progress bar shows how far it is."""
    body = filters.criteria()
    body["format"] = format.value
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    try:
        with httpx.stream(
            "POST", f"{audit_url}/v1/audit/exports", json=body, headers=headers, timeout=60
        ) as answer:
            if answer.status_code != 200:
                answer.read()
                respond(answer)
            total = int(answer.headers.get("x-record-count", "0")) or None
            written = 0
            with output.open("wb") as target, _export_progress() as progress:
                task = progress.add_task("records", total=total)
                for line in answer.iter_lines():
                    target.write(line.encode() + b"\n")
                    written += 1
                    progress.update(task, completed=min(written, total or written))
    except httpx.HTTPError as error:
        fail({"error": f"cannot reach {audit_url}: {error}"}, code=2)
    emit(
        {
            "format": format.value,
            "file": str(output),
            "records": int(answer.headers.get("x-record-count", "0")),
        }
    )


def _export_progress() -> Progress:
    return Progress(
        TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    )
