"""Operators' commands: back up and restore the stores, rotate the key-encryption key.
The runbooks are docs/operations.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import emit, fail
from services.audit.api import database_url as audit_database_url
from services.signals.kek_rotation import rotate_kek
from services.signals.settings import SignalsSettings
from shared.plumbing.backup import BackupError, create_backup, restore_backup

backup_app = typer.Typer(help="Back up and restore the stores (signals' keys and ledger, the audit log).")
keys_app = typer.Typer(help="Rotate the key-encryption key of the signals key store.", no_args_is_help=True)

SignalsDatabase = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL of signals' store (default: its setting).")
]
AuditDatabase = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL of the audit log (default: its setting).")
]


@backup_app.command("create")
def create(
    to: Annotated[Path, typer.Option("--to", help="A new folder for this backup.")],
    signals_database: SignalsDatabase = None,
    audit_database: AuditDatabase = None,
) -> None:
    """A consistent online backup of each store (SQLite's backup API, or pg_dump), with a
    manifest of checksums. The KEK is not in it: keep it apart."""
    stores = {
        "signals": signals_database or SignalsSettings().signals_database_url,
        "audit": audit_database or audit_database_url(),
    }
    try:
        manifest = create_backup(stores, to)
    except BackupError as error:
        fail({"error": str(error)})
    emit({"folder": str(to), "created_at": manifest.created_at, "stores": [s.name for s in manifest.stores]})


@backup_app.command("restore")
def restore(
    source: Annotated[Path, typer.Option("--from", help="A backup folder (from `backup create`).")],
    signals_database: Annotated[str, typer.Option(help="Where to restore signals' store (empty).")],
    audit_database: Annotated[str, typer.Option(help="Where to restore the audit log (empty).")],
) -> None:
    """Restore a backup into empty stores; checksums are checked first. Then run `safety-chain
    audit verify --database URL` on the restored log before the services use it."""
    try:
        manifest = restore_backup(source, {"signals": signals_database, "audit": audit_database})
    except BackupError as error:
        fail({"error": str(error)})
    emit({"restored": [s.name for s in manifest.stores], "backup_created_at": manifest.created_at})


@keys_app.command("rotate")
def rotate(
    signals_database: SignalsDatabase = None,
    keys_dir: Annotated[Path | None, typer.Option(help="Signals' key folder (default: SC_KEYS_DIR).")] = None,
    old_kek: Annotated[
        list[Path] | None,
        typer.Option(help="An older KEK file that still wraps keys (a restored backup's); repeatable."),
    ] = None,
) -> None:
    """A new key-encryption key; every live data key rewrapped with it in one transaction
    (payloads stay readable, erased subjects stay erased). Stop signals first; if interrupted,
    run it again. Keep the previous KEK it leaves as long as backups taken before it."""
    settings = SignalsSettings()
    older = tuple(path.read_bytes() for path in old_kek or [])
    try:
        done = rotate_kek(
            keys_dir or settings.keys_dir, signals_database or settings.signals_database_url, older
        )
    except (ValueError, OSError) as error:
        fail({"error": str(error)})
    emit({"rewrapped": done.rewrapped, "resumed": done.resumed, "previous_kek": str(done.previous_file)})
