"""Commands of privacy officers: read and verify the audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import AUDIT_URL, AuditUrl, call, respond

audit_app = typer.Typer(help="Inspect the audit log (privacy officers).", no_args_is_help=True)


@audit_app.command("records")
def records(
    signal_id: Annotated[str | None, typer.Option(help="Only the records of this signal.")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Only the records of this request.")] = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Print audit records as JSON."""
    wanted = {"signal_id": signal_id, "correlation_id": correlation_id}
    respond(call("GET", f"{audit_url}/v1/audit/records", params={k: v for k, v in wanted.items() if v}))


@audit_app.command("verify")
def verify(audit_url: AuditUrl = AUDIT_URL) -> None:
    """Exit 0 when the audit chain is intact; otherwise exit 1 naming the first bad record."""
    respond(call("GET", f"{audit_url}/v1/audit/verify"))
