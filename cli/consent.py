"""Commands about agreements and decisions: validate files, publish versions, explain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cli.common import CONSENT_URL, PLATFORM, ConsentUrl, Token, bearer, call, fail, respond
from services.consent.admin import registry_problems
from services.consent.agreements import validate_file, validate_folder
from shared.contracts.signal import Category
from shared.crypto.keys import KeyRing
from shared.policy import Role
from shared.registry import Registry
from shared.settings import CommonSettings

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
    decided; one that widens what anyone receives waits for a privacy officer's approval
    (prints the pending proposal)."""
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


def _decide(
    verdict: str,
    agreement_id: str,
    version: int,
    organisation: str,
    person: str | None,
    token: str | None,
    consent_url: str,
) -> None:
    headers = bearer(token, organisation, Role.PRIVACY_OFFICER, "consent", person)
    url = f"{consent_url}/v1/agreements/{agreement_id}/proposal/{version}/{verdict}"
    respond(call("POST", url, headers=headers))


ProposedVersion = Annotated[int, typer.Argument(help="The proposed version.")]


@agreements_app.command("approve")
def approve(
    agreement_id: Annotated[str, typer.Argument()],
    version: ProposedVersion,
    organisation: Organisation,
    person: Person = None,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Four eyes: as a privacy officer of a providing municipality (not the proposer), bring a
    widening change into force."""
    _decide("approve", agreement_id, version, organisation, person, token, consent_url)


@agreements_app.command("reject")
def reject(
    agreement_id: Annotated[str, typer.Argument()],
    version: ProposedVersion,
    organisation: Organisation,
    person: Person = None,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Refuse a widening change; the agreement stays as it is."""
    _decide("reject", agreement_id, version, organisation, person, token, consent_url)


@agreements_app.command("suspend")
def suspend(
    agreement_id: Annotated[str, typer.Argument()],
    organisation: Organisation,
    role: AsRole = Role.AGREEMENT_ADMINISTRATOR,
    token: Token = None,
    consent_url: ConsentUrl = CONSENT_URL,
) -> None:
    """Suspend an agreement: nothing flows under it until a new active version is published."""
    headers = bearer(token, organisation, role, "consent")
    respond(call("POST", f"{consent_url}/v1/agreements/{agreement_id}/suspend", headers=headers))


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
