"""`safety-chain`: a thin client of the services' HTTP APIs and of the SDKs."""

from __future__ import annotations

import os
import sys

import typer

from cli import audit_queries  # noqa: F401  (registers audit search, report and export)
from cli.audit import audit_app
from cli.consent import agreements_app, consent_app
from cli.kafka import kafka_app
from cli.operations import backup_app, keys_app
from cli.partner import partner_app
from cli.signals import signal_app, token_app
from cli.subjects import subject_app

app = typer.Typer(
    help="safety-chain: exchange safety signals between municipalities and chain partners.",
    no_args_is_help=True,
)
app.add_typer(signal_app, name="signal")
app.add_typer(partner_app, name="partner")
app.add_typer(audit_app, name="audit")
app.add_typer(agreements_app, name="agreements")
app.add_typer(consent_app, name="consent")
app.add_typer(subject_app, name="subject")
app.add_typer(token_app, name="token")
app.add_typer(kafka_app, name="kafka")
app.add_typer(keys_app, name="keys")
app.add_typer(backup_app, name="backup")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name=os.path.basename(sys.argv[0]))
