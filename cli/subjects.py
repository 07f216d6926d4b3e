"""Commands about subjects' rights: erasure (signals) and directives (consent)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import (
    CONSENT_URL,
    SIGNALS_URL,
    ConsentUrl,
    SignalsUrl,
    Token,
    bearer,
    call,
    respond,
)
from shared.contracts.agreements import DirectiveKind
from shared.contracts.signal import Category
from shared.plumbing.policy import Role

subject_app = typer.Typer(help="Subjects' rights: erasure, consent and objection.", no_args_is_help=True)
Pseudonym = Annotated[str, typer.Argument(help="The subject pseudonym (32 hex digits).")]
Organisation = Annotated[str, typer.Option("--as", help="Your organisation id (development token).")]
AsRole = Annotated[Role, typer.Option("--role", help="Your role (development token).")]


@subject_app.command("erase")
def erase(
    pseudonym: Pseudonym,
    organisation: Organisation,
    role: AsRole = Role.SUBJECT_RIGHTS,
    token: Token = None,
    signals_url: SignalsUrl = SIGNALS_URL,
) -> None:
    """Destroy the subject's data key: all its stored payloads become unreadable. A municipality
    that signalled the subject, or the platform's privacy officer."""
    headers = bearer(token, organisation, role, "signals")
    respond(call("POST", f"{signals_url}/v1/subjects/{pseudonym}/erasure", headers=headers), ok=(202,))


@subject_app.command("directive")
def directive(
    pseudonym: Pseudonym,
    kind: Annotated[DirectiveKind, typer.Argument(help="What the subject said.")],
    organisation: Organisation,
    agreement: Annotated[str | None, typer.Option(help="Scope: one agreement.")] = None,
    category: Annotated[Category | None, typer.Option(help="Scope: one category.")] = None,
    role: AsRole = Role.SUBJECT_RIGHTS,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Record consent given or withdrawn, or an objection; in force for the next signal decided."""
    scope = {"agreement_id": agreement, "category": category.value if category else None}
    headers = bearer(token, organisation, role, "consent")
    response = call(
        "POST",
        f"{consent_url}/v1/subjects/{pseudonym}/directives",
        json={"kind": kind.value, "scope": scope},
        headers=headers,
    )
    respond(response, ok=(201,))
