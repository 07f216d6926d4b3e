"""Commands of privacy officers: read and verify the audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import AUDIT_URL, PLATFORM, AuditUrl, Token, bearer, call, respond
from shared.policy import Role

audit_app = typer.Typer(help="Inspect the audit log (privacy officers).", no_args_is_help=True)
Officer = Annotated[
    str,
    typer.Option(
        "--as", help="Your organisation (development token of its privacy officer); default the platform."
    ),
]


@audit_app.command("records")
def records(
    signal_id: Annotated[str | None, typer.Option(help="Only the records of this signal.")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Only the records of this request.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only the records about this pseudonym.")] = None,
    organisation: Annotated[str | None, typer.Option(help="Only where it is source or target.")] = None,
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Print audit records as JSON (your organisation's; all for the platform's privacy
    officer). The read itself is logged."""
    wanted = {
        "signal_id": signal_id,
        "correlation_id": correlation_id,
        "subject": subject,
        "organisation": organisation,
    }
    respond(
        call(
            "GET",
            f"{audit_url}/v1/audit/records",
            params={k: v for k, v in wanted.items() if v},
            headers=bearer(token, officer, Role.PRIVACY_OFFICER, "audit"),
        )
    )


@audit_app.command("verify")
def verify(officer: Officer = PLATFORM, token: Token = None, audit_url: AuditUrl = AUDIT_URL) -> None:
    """Exit 0 when the audit chain is intact; otherwise exit 1 naming the first bad record."""
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    respond(call("GET", f"{audit_url}/v1/audit/verify", headers=headers))
