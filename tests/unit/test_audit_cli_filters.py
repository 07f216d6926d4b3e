"""The audit search criteria in the terminal are declared once (cli/audit_filters.py) and every
command that takes them offers each as the same option and sends it the same way."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from cli import audit_queries
from cli.audit_filters import Filters
from cli.main import app

FILTER_OPTIONS = {
    "ask_bsn": ["--bsn"],
    "subject": ["--subject"],
    "organisation": ["--organisation"],
    "category": ["--category"],
    "event_type": ["--event-type"],
    "decision": ["--decision"],
    "agreement": ["--agreement"],
    "agreement_version": ["--agreement-version"],
    "since": ["--since"],
    "until": ["--until"],
    "signal_id": ["--signal-id"],
}


def audit_command(name: str) -> Any:
    """The command as Typer builds it from the function (its params are the options)."""
    return typer.main.get_command(app).commands["audit"].commands[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["search", "export"])
def test_search_and_export_offer_every_filter_as_the_same_option(command: str) -> None:
    options = {param.name: param.opts for param in audit_command(command).params}
    assert [f.name for f in fields(Filters)] == list(FILTER_OPTIONS)
    assert {name: options[name] for name in FILTER_OPTIONS} == FILTER_OPTIONS


def test_a_search_sends_the_filters_given_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    def answer(method: str, url: str, **options: Any) -> httpx.Response:
        sent.append(options["json"])
        return httpx.Response(200, json={"records": [], "next": None})

    monkeypatch.setattr(audit_queries, "call", answer)
    arguments = ["--subject", "a" * 32, "--decision", "permit", "--agreement-version", "2", "--category"]
    result = CliRunner().invoke(
        app, ["audit", "search", *arguments, "huiselijk_geweld", "--json", "--token", "t", "--limit", "5"]
    )
    assert result.exit_code == 0, result.output
    assert sent == [
        {
            "subject": "a" * 32,
            "decision": "permit",
            "agreement_version": 2,
            "category": "huiselijk_geweld",
            "limit": 5,
            "newest_first": True,
        }
    ]
