"""Commands about agreements and decisions: validate files, publish versions, explain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from cli.common import CONSENT_URL, PLATFORM, ConsentUrl, Token, bearer, call, fail, respond
from services.consent.agreements import registry_problems, signature_path, validate_file, validate_folder
from shared.contracts.agreements import AgreementProposed, SignatureType
from shared.contracts.crypto.approvals import sign_version
from shared.contracts.crypto.keys import KeyRing, KeyScope, MissingKeyError
from shared.contracts.registry import Registry
from shared.contracts.signal import Category
from shared.plumbing.policy import Role
from shared.plumbing.settings import CommonSettings

agreements_app = typer.Typer(help="Sharing agreements (convenanten).", no_args_is_help=True)
consent_app = typer.Typer(help="Ask the consent service why.", no_args_is_help=True)
Organisation = Annotated[str, typer.Option("--as", help="Your organisation id (development token).")]
AsRole = Annotated[Role, typer.Option("--role", help="Your role (development token).")]
Person = Annotated[str | None, typer.Option(help="Who you are (development token); four eyes tell apart.")]


@agreements_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="An agreement file, or a folder of them.", exists=True)],
    check_registry: Annotated[
        bool, typer.Option(help="Also check that the parties are registered (config/organisations.yaml).")
    ] = True,
) -> None:
    """Check agreement files; prints FILE:LINE: problems and exits 1 when there are any."""
    if path.is_dir():
        agreements, problems = validate_folder(path)
    else:
        agreement, problems = validate_file(path)
        agreements = [agreement] if agreement else []
    messages = [str(problem) for problem in problems]
    if check_registry:
        settings = CommonSettings()
        registry = Registry.load(settings.config_dir, KeyRing(settings.keys_dir, generate_missing=False))
        messages += [f"{a.id}: {problem}" for a in agreements for problem in registry_problems(a, registry)]
    for message in messages:
        typer.echo(message, err=True)
    if messages:
        raise typer.Exit(1)
    typer.echo(f"{len(agreements)} agreement(s) valid")


@agreements_app.command("list")
def list_agreements(
    organisation: Annotated[
        str, typer.Option("--as", help="Your organisation (development token); default the platform.")
    ] = PLATFORM,
    role: AsRole = Role.PRIVACY_OFFICER,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """The agreements you are party to (all for the platform's privacy officer), at their
    current versions."""
    respond(call("GET", f"{consent_url}/v1/agreements", headers=bearer(token, organisation, role, "consent")))


@agreements_app.command("publish")
def publish(
    file: Annotated[
        Path, typer.Argument(help="The agreement file with the next version number.", exists=True)
    ],
    organisation: Organisation,
    role: AsRole = Role.AGREEMENT_ADMINISTRATOR,
    person: Person = None,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Publish a new version of an agreement. A narrowing one is in force for the next signal
    decided; one that widens what anyone receives waits until every party signed it
    (prints the pending proposal and who must still sign)."""
    agreement, problems = validate_file(file)
    if agreement is None:
        fail({"problems": [str(problem) for problem in problems]})
    headers = bearer(token, organisation, role, "consent", person)
    response = call(
        "POST", f"{consent_url}/v1/agreements", json=agreement.model_dump(mode="json"), headers=headers
    )
    respond(response, ok=(201, 202))


@agreements_app.command("proposal")
def proposal(
    agreement_id: Annotated[str, typer.Argument()],
    organisation: Organisation,
    role: AsRole = Role.PRIVACY_OFFICER,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """The change waiting for approval, and what it widens."""
    headers = bearer(token, organisation, role, "consent")
    respond(call("GET", f"{consent_url}/v1/agreements/{agreement_id}/proposal", headers=headers))


KeyFolder = Annotated[
    Path | None,
    typer.Option(
        "--keys-dir",
        help="The folder holding your organisation's Ed25519 key (<organisation>.ed25519);"
        " default SC_KEYS_DIR.",
    ),
]


def organisation_key(organisation: str, keys_dir: Path | None) -> Ed25519PrivateKey:
    """Your organisation's own signing key: an agreement is signed with it, never with a token."""
    folder = keys_dir or CommonSettings().keys_dir
    ring = KeyRing(folder, generate_missing=False, scope=KeyScope.organisation(organisation))
    try:
        return ring.ed25519_private(organisation)
    except MissingKeyError:
        fail({"error": f"no signing key of {organisation} in {folder}"})


def _sign_proposal(
    verdict: str,
    agreement_id: str,
    version: int,
    organisation: str,
    person: str | None,
    token: str | None,
    consent_url: str,
    keys_dir: Path | None,
) -> None:
    """Fetch the proposal, recompute the content hash of what it shows (never trust the
    service's word for it), sign that for your organisation and send the signature."""
    headers = bearer(token, organisation, Role.PRIVACY_OFFICER, "consent", person)
    shown = call("GET", f"{consent_url}/v1/agreements/{agreement_id}/proposal", headers=headers)
    if shown.status_code != 200:
        respond(shown)
    proposal = AgreementProposed.model_validate({k: v for k, v in shown.json().items() if k != "awaiting"})
    agreement = proposal.agreement
    if agreement.version != version:
        fail({"error": f"the pending proposal is v{agreement.version}, not v{version}"})
    if agreement.content_hash != proposal.content_hash:
        fail({"error": "the service's content hash is not the hash of the content it shows"})
    kind = SignatureType.ACCEPT if verdict == "approve" else SignatureType.REJECT
    jws = sign_version(organisation_key(organisation, keys_dir), agreement, organisation, kind)
    url = f"{consent_url}/v1/agreements/{agreement_id}/proposal/{version}/{verdict}"
    respond(call("POST", url, json={"jws": jws}, headers=headers))


ProposedVersion = Annotated[int, typer.Argument(help="The proposed version.")]


@agreements_app.command("approve")
def approve(
    agreement_id: Annotated[str, typer.Argument()],
    version: ProposedVersion,
    organisation: Organisation,
    person: Person = None,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
    keys_dir: KeyFolder = None,
) -> None:
    """As a privacy officer of a party (a providing municipality or a recipient partner; not
    the proposer), sign the proposed content with your organisation's key. The version comes
    into force once every party has signed."""
    _sign_proposal("approve", agreement_id, version, organisation, person, token, consent_url, keys_dir)


@agreements_app.command("reject")
def reject(
    agreement_id: Annotated[str, typer.Argument()],
    version: ProposedVersion,
    organisation: Organisation,
    person: Person = None,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
    keys_dir: KeyFolder = None,
) -> None:
    """Refuse a proposed version for your organisation (signed); the agreement stays as it is."""
    _sign_proposal("reject", agreement_id, version, organisation, person, token, consent_url, keys_dir)


@agreements_app.command("withdraw")
def withdraw(
    agreement_id: Annotated[str, typer.Argument()],
    version: ProposedVersion,
    organisation: Organisation,
    role: AsRole = Role.AGREEMENT_ADMINISTRATOR,
    person: Person = None,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Withdraw a pending proposal and every signature given to it."""
    headers = bearer(token, organisation, role, "consent", person)
    url = f"{consent_url}/v1/agreements/{agreement_id}/proposal/{version}/withdraw"
    respond(call("POST", url, headers=headers))


@agreements_app.command("sign")
def sign(
    file: Annotated[
        Path, typer.Argument(help="The agreement file, as the operator will configure it.", exists=True)
    ],
    organisation: Organisation,
    output: Annotated[
        Path, typer.Option("--into", help="The signatures folder (<config>/agreements/signatures).")
    ] = Path("config/agreements/signatures"),
    keys_dir: KeyFolder = None,
) -> None:
    """Sign an agreement file's exact content for your organisation, for the operator's
    configuration: writes <into>/<id>/v<version>/<organisation>.jws. Consent brings the version
    into force at start once every party's signature is there."""
    agreement, problems = validate_file(file)
    if agreement is None:
        fail({"problems": [str(problem) for problem in problems]})
    if organisation not in agreement.parties:
        fail({"error": f"{organisation} is not a party to {agreement.label}"})
    path = signature_path(output, agreement, organisation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sign_version(organisation_key(organisation, keys_dir), agreement, organisation) + "\n")
    typer.echo(f"{path}: {organisation} signed {agreement.label} ({agreement.content_hash})")


def _end(action: str, agreement_id: str, organisation: str, role: Role, token: str | None, url: str) -> None:
    headers = bearer(token, organisation, role, "consent")
    respond(call("POST", f"{url}/v1/agreements/{agreement_id}/{action}", headers=headers))


@agreements_app.command("suspend")
def suspend(
    agreement_id: Annotated[str, typer.Argument()],
    organisation: Organisation,
    role: AsRole = Role.AGREEMENT_ADMINISTRATOR,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Suspend an agreement at once: nothing flows under it until every party signs a version
    that resumes it."""
    _end("suspend", agreement_id, organisation, role, token, consent_url)


@agreements_app.command("revoke")
def revoke(
    agreement_id: Annotated[str, typer.Argument()],
    organisation: Organisation,
    role: AsRole = Role.AGREEMENT_ADMINISTRATOR,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Revoke an agreement, at once and for good: nothing flows under it again."""
    _end("revoke", agreement_id, organisation, role, token, consent_url)


@consent_app.command("explain")
def explain(
    municipality: Annotated[str, typer.Option(help="The providing municipality, e.g. gm0363.")],
    category: Annotated[Category, typer.Option(help="The signal's category.")],
    purpose: Annotated[str, typer.Option(help="The purpose code.")],
    subject: Annotated[str | None, typer.Option(help="A subject pseudonym, to weigh its directives.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Only this partner.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    organisation: Annotated[
        str | None,
        typer.Option("--as", help="Your organisation (development token); default --municipality."),
    ] = None,
    role: AsRole = Role.SUBJECT_RIGHTS,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Would each partner receive such a signal, and why? Nothing is delivered."""
    question = {
        "municipality": municipality,
        "category": category.value,
        "purpose": purpose,
        "subject_pseudonym": subject,
        "recipient": recipient,
    }
    headers = bearer(token, organisation or municipality, role, "consent")
    response = call("POST", f"{consent_url}/v1/decisions/explain", json=question, headers=headers)
    if as_json or response.status_code != 200:
        respond(response)
        return
    table = Table(title=f"{category.value} from {municipality} for {purpose}", show_lines=True)
    for column in ("recipient", "decision", "why", "obligations"):
        table.add_column(column)
    for answer in response.json():
        obligations = answer["obligations"]
        table.add_row(
            answer["recipient"],
            answer["decision"],
            "\n".join(answer["reasons"]),
            yaml.safe_dump(obligations, sort_keys=False).strip() if obligations else "",
        )
    Console().print(table)
