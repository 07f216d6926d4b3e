"""Commands of privacy officers: read and verify the audit log, prove one record."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.common import AUDIT_URL, PLATFORM, AuditUrl, Token, bearer, call, emit, fail, respond, token_for
from partner.witness import AcceptedCheckpoint, Witness, WitnessRefused
from services.audit.api import verify_database
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.registry import Registry
from shared.contracts.tlog.checkpoint import (
    Checkpoint,
    build_proof_file,
    open_checkpoint,
    parse_proof_file,
    verify_proof_file,
)
from shared.contracts.tlog.note import Verifier
from shared.plumbing.policy import Role
from shared.plumbing.settings import CommonSettings

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
    limit: Annotated[int, typer.Option(min=1, max=500, help="Records per page.")] = 500,
    every_page: Annotated[bool, typer.Option("--all/--first-page", help="Follow every page.")] = True,
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Print audit records as JSON, oldest first (your scope's; all for the platform's privacy
    officer), following the service's pages (at most 500 records each). Every page read is
    itself logged."""
    wanted = {
        "signal_id": signal_id,
        "correlation_id": correlation_id,
        "subject": subject,
        "organisation": organisation,
        "limit": str(limit),
    }
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    found: list[dict[str, object]] = []
    url: str | None = f"{audit_url}/v1/audit/records"
    params: dict[str, str] | None = {k: v for k, v in wanted.items() if v}
    while url is not None:
        answer = call("GET", url, params=params, headers=headers)
        if answer.status_code != 200:
            respond(answer)
        found += answer.json()
        following = answer.links.get("next", {}).get("url")
        url, params = (f"{audit_url}{following}", None) if following and every_page else (None, None)
    emit(found)


@audit_app.command("verify")
def verify(
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
    database: Annotated[
        str | None,
        typer.Option(
            help="Verify this audit store here instead of asking the service (SQLAlchemy URL,"
            " read only), with a progress bar; the checkpoints are read from the topic as audit."
        ),
    ] = None,
    witness_state: Annotated[
        list[Path] | None,
        typer.Option(help="A witness's accepted checkpoint (its --state file) to hold the store to too."),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option(
            help="With --database: encode every record with the reference RFC 8785 implementation,"
            " not only a sample (about five times slower)."
        ),
    ] = False,
) -> None:
    """Exit 0 when the audit log is intact; otherwise exit 1 naming the first bad record."""
    if database is not None:
        _verify_locally(database, witness_state or [], deep)
        return
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    respond(call("GET", f"{audit_url}/v1/audit/verify", headers=headers))


def _verify_locally(database: str, witness_states: list[Path], deep: bool = False) -> None:
    witnessed: list[Checkpoint] = []
    for state in witness_states:  # what a witness accepted: outside the store, and outside Kafka
        accepted = AcceptedCheckpoint.load(state)
        if accepted is None:
            fail({"error": f"no accepted checkpoint in {state}"}, code=2)
        witnessed.append(Checkpoint(accepted.origin, accepted.size, accepted.root_hash))
    with Progress(
        TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    ) as progress:
        task = progress.add_task("records", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = verify_database(database, _audit_key(), also_outside=witnessed, progress=advance, deep=deep)
    document = {**dataclasses.asdict(result), "witnesses": list(result.witnesses)}
    if result.intact:
        emit(document)
    else:
        fail(document)


def _audit_key() -> Ed25519PublicKey:
    """The audit service's public key, from the registry (organisations.yaml, or in development
    the public key files): what a proof is checked against, never what the proof says."""
    settings = CommonSettings()
    keys = KeyRing(settings.keys_dir, generate_missing=False)
    return Registry.load(settings.config_dir, keys).ed25519_public("audit")


def _log_verifier(origin: str) -> Verifier:
    return Verifier(origin, _audit_key())


@audit_app.command("prove")
def prove(
    seq: Annotated[int, typer.Argument(help="The record's sequence number.", min=1)],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the proof (default <seq>.tlog-proof).")
    ] = None,
    officer: Officer = PLATFORM,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Write one record with its proof: a C2SP tlog-proof file (the newest checkpoint with its
    witnesses' cosignatures, the record's index and inclusion path, the record's exact bytes as
    its extra data), checkable offline with `safety-chain audit check-proof`."""
    headers = bearer(token, officer, Role.PRIVACY_OFFICER, "audit")
    signed = call("GET", f"{audit_url}/v1/audit/checkpoint", headers=headers)
    if signed.status_code != 200:
        respond(signed)
    origin = signed.text.split("\n", 1)[0]
    size = open_checkpoint(signed.text, _log_verifier(origin)).checkpoint.size
    answer = call(
        "GET",
        f"{audit_url}/v1/audit/records/{seq}/inclusion",
        params={"tree_size": size},
        headers=headers,
    )
    if answer.status_code != 200:
        respond(answer)
    proven = answer.json()
    leaf = base64.b64decode(proven["leaf"])
    path = [base64.b64decode(node) for node in proven["proof"]]
    text = build_proof_file(proven["leaf_index"], path, signed.text, extra=leaf)
    verify_proof_file(text, leaf, _log_verifier(origin))  # never hand out a proof that does not hold
    target = out or Path(f"{seq}.tlog-proof")
    target.write_text(text, encoding="utf-8")
    emit({"seq": seq, "tree_size": size, "origin": origin, "file": str(target)})


@audit_app.command("check-proof")
def check_proof(
    proof_file: Annotated[Path, typer.Argument(help="A .tlog-proof file from `audit prove`.")],
) -> None:
    """Check a proof offline: the record (its bytes in the file) is in the log whose checkpoint
    the audit service's key signed. Needs no service: only the file and the registry's key."""
    text = proof_file.read_text(encoding="utf-8")
    try:
        parsed = parse_proof_file(text)
        if parsed.extra is None:
            raise ValueError("the file carries no record")
        origin = parsed.signed_checkpoint.split("\n", 1)[0]
        verified = verify_proof_file(text, parsed.extra, _log_verifier(origin))
    except ValueError as error:  # NoteError, CheckpointError, ProofError
        fail({"verified": False, "problem": str(error)})
    emit(
        {
            "verified": True,
            "seq": verified.index + 1,
            "tree_size": verified.size,
            "origin": verified.checkpoint.origin,
            "witnesses": list(verified.witnesses),
            "record": json.loads(parsed.extra),
        }
    )


@audit_app.command("witness")
def witness(
    organisation: Annotated[str, typer.Option("--as", help="Your organisation: the witness's name and key.")],
    state: Annotated[
        Path | None,
        typer.Option(help="The last checkpoint you accepted (default .local/witness/<org>.json)."),
    ] = None,
    token: Token = None,
    audit_url: AuditUrl = AUDIT_URL,
) -> None:
    """Witness the audit log once: accept its newest checkpoint only if it extends the last one
    you accepted (consistency proof), then cosign it with your organisation's key. Exit 1 when
    the log shows a rollback, a split view or a rewritten history (nothing is cosigned)."""
    settings = CommonSettings()
    keys = KeyRing(settings.keys_dir, generate_missing=False, scope=KeyScope.organisation(organisation))
    runner = Witness(
        organisation,
        keys.ed25519_private(organisation),
        _audit_key(),
        state or settings.keys_dir.parent / "witness" / f"{organisation}.json",
        audit_url,
        lambda: token_for(token, organisation, Role.PRIVACY_OFFICER, "audit"),
    )
    try:
        done = runner.witness()
    except WitnessRefused as refused:
        fail({"cosigned": False, "refused": refused.reason})
    except httpx.HTTPStatusError as error:  # e.g. no checkpoint issued yet, or a refused token
        fail({"cosigned": False, "error": f"{error.request.url.path}: {error.response.status_code}"})
    emit({"cosigned": True, "size": done.size, "previous_size": done.previous_size, "witness": organisation})
