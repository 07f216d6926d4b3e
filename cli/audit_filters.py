"""The criteria of an audit search, declared once for every command that takes them (`audit
search`, `audit export`): each field of `Filters` is one option, and `with_filters` gives a
command all of them and hands it one `Filters`.

A BSN is never an argument (it would stay in the shell's history and the process list):
`--bsn` asks for it, without echoing, and it travels in the request body only.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any, get_type_hints

import typer

from cli.common import fail
from shared.contracts.signal import Category, passes_eleven_test

AskBsn = Annotated[bool, typer.Option("--bsn", help="Ask for a citizen's BSN (not echoed, never stored).")]
Subject = Annotated[str | None, typer.Option(help="A subject pseudonym (32 hex digits).")]
"""The person asked about: also the subject access report's two options."""


@dataclass(frozen=True)
class Filters:
    ask_bsn: AskBsn = False
    subject: Subject = None
    organisation: Annotated[str | None, typer.Option("--organisation", help="As source or target.")] = None
    category: Annotated[Category | None, typer.Option(help="The signal's category.")] = None
    event_type: Annotated[str | None, typer.Option(help="e.g. nl.safetychain.exchange.decided.v1")] = None
    decision: Annotated[str | None, typer.Option(help="e.g. permit, deny, rejected, delivered.")] = None
    agreement: Annotated[str | None, typer.Option("--agreement", help="An agreement id.")] = None
    agreement_version: Annotated[
        int | None, typer.Option("--agreement-version", help="That agreement's version.")
    ] = None
    since: Annotated[datetime | None, typer.Option(help="From (inclusive), e.g. 2026-11-01 (UTC).")] = None
    until: Annotated[datetime | None, typer.Option(help="Before (exclusive).")] = None
    signal_id: Annotated[str | None, typer.Option(help="One signal's records.")] = None

    def criteria(self) -> dict[str, Any]:
        """The request body's criteria (the BSN, when asked for, only here)."""
        given: dict[str, Any] = {
            "subject": self.subject,
            "organisation": self.organisation,
            "category": self.category.value if self.category else None,
            "event_type": self.event_type,
            "decision": self.decision,
            "agreement_id": self.agreement,
            "agreement_version": self.agreement_version,
            "since": _utc(self.since),
            "until": _utc(self.until),
            "signal_id": self.signal_id,
        }
        if self.ask_bsn:
            given["bsn"] = read_bsn()
        return {name: value for name, value in given.items() if value is not None}


def read_bsn() -> str:
    """From the terminal without echo, or the first line of a pipe (`... --bsn < file`)."""
    bsn = typer.prompt("BSN", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
    bsn = bsn.strip()
    if not passes_eleven_test(bsn):
        fail({"error": "that is no BSN (nine digits passing the eleven-test)"}, code=2)
    return str(bsn)


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (
        moment if moment.tzinfo else moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
    ).isoformat()


def with_filters(command: Callable[..., None]) -> Callable[..., None]:
    """`command(..., filters: Filters, ...)` as Typer sees it: every field of `Filters` an
    option of its own, where `filters` stands."""
    signature = inspect.signature(command, eval_str=True)
    hints = get_type_hints(Filters, include_extras=True)
    options = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
        for f in fields(Filters)
    ]
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        own = parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        parameters += options if parameter.name == "filters" else [own]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        filters = Filters(**{f.name: given.pop(f.name) for f in fields(Filters)})
        command(filters=filters, **given)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return run
