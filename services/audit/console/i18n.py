"""The console's two languages: Dutch (the default, the Dutch government's language) and English.

One plain dict per language, key -> text, the same keys in both (a unit test holds them equal
and checks that every `t("...")` in the templates exists). Texts may name parameters in
`str.format` style: `t("home.welcome", person="J. de Vries")`. An unknown key raises KeyError,
so a missing text fails a test instead of showing a key to a privacy officer.

The language of a request: the `lang` cookie (set by the switch link in the layout, see
`router`), else the best of `Accept-Language`, else Dutch. Templates call `t("key")` (the
context every console page gets binds it to the request's language); Python code calls
`translate(language_of(request), "key")`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from services.audit.console import page_texts, vocabulary


class Language(StrEnum):
    NL = "nl"
    EN = "en"


DEFAULT_LANGUAGE: Final = Language.NL
LANGUAGE_COOKIE: Final = "lang"
LANGUAGE_NAMES: Final[dict[Language, str]] = {Language.NL: "Nederlands", Language.EN: "English"}
"""Each language named in itself, as a language switch shows it."""

NL: Final[dict[str, str]] = {
    "product": "Safety-chain auditconsole",
    "skip_to_content": "Naar de inhoud",
    "nav.label": "Hoofdmenu",
    "nav.home": "Start",
    "nav.search": "Zoeken",
    "nav.report": "Inzageverzoek",
    "nav.agreements": "Overeenkomsten",
    "nav.dashboard": "Dashboard",
    "nav.integrity": "Integriteit",
    "language.label": "Taal",
    "signed_in_as": "Aangemeld als",
    "sign_out": "Afmelden",
    "footer.metadata": "Dit logboek bevat metagegevens van uitwisselingen, nooit de inhoud van signalen.",
    "footer.compliance": "Verantwoording: AVG, BIO, Logboek Dataverwerkingen en Verwerkingenlogging",
    "sign_in.title": "Aanmelden",
    "sign_in.intro": (
        "Deze console is voor functionarissen gegevensbescherming (privacy officers) van de"
        " deelnemende organisaties. Wat u hier leest, wordt zelf ook gelogd."
    ),
    "sign_in.development.title": "Aanmelden voor ontwikkeling",
    "sign_in.development.warning": (
        "Alleen in een ontwikkelomgeving: de server geeft hier zelf een toegangstoken uit."
        " In productie bestaat deze aanmelding niet."
    ),
    "sign_in.organisation": "Organisatie",
    "sign_in.person": "Uw naam",
    "sign_in.person.hint": "Onder deze naam worden uw inzages in het logboek vastgelegd.",
    "sign_in.development.submit": "Aanmelden als privacy officer",
    "sign_in.token.title": "Aanmelden met een toegangstoken",
    "sign_in.token.label": "Toegangstoken (OAuth 2.0, JWT)",
    "sign_in.token.hint": (
        "Van de identiteitsprovider van uw organisatie: voor deze dienst (audience audit),"
        " met de rol privacy-officer."
    ),
    "sign_in.token.submit": "Aanmelden met token",
    "sign_in.error.token": "Dit token is niet geldig ({reason}).",
    "sign_in.error.person": (
        "Vul uw naam in: letters, cijfers, spaties, punt, apostrof, @ of koppelteken, hoogstens 64 tekens."
    ),
    "sign_in.error.organisation": "Kies een organisatie uit de lijst.",
    "sign_in.error.development": "Aanmelden voor ontwikkeling is hier niet beschikbaar.",
    "sign_in.expired": "Uw sessie is verlopen of niet geldig. Meld u opnieuw aan.",
    "sign_in.signed_out": "U bent afgemeld.",
    "sign_in.provider.title": "Aanmelden bij uw organisatie",
    "sign_in.provider.intro": (
        "Kies uw organisatie. U meldt zich aan op de inlogpagina van uw eigen organisatie en komt"
        " daarna hier terug."
    ),
    "sign_in.provider.submit": "Verder naar de inlogpagina",
    "sign_in.error.provider": "Aanmelden bij uw organisatie is niet gelukt ({reason}).",
    "sign_in.error.no_provider": "Voor deze organisatie is geen inlogpagina ingesteld.",
    "signed_in.title": "U bent aangemeld",
    "signed_in.continue": "Ga verder",
    "error.reason": "Reden",
    "error.back": "Naar de startpagina",
    "error.sign_in": "Aanmelden met een ander account",
    "error.400": "Het verzoek is niet juist",
    "error.401": "Niet aangemeld",
    "error.403": "Geen toegang",
    "error.404": "Niet gevonden",
    "error.405": "Deze handeling kan hier niet",
    "error.413": "Het verzoek is te groot",
    "error.422": "De invoer is niet juist",
    "error.429": "Te veel verzoeken; probeer het zo opnieuw",
    "error.other": "Er ging iets mis",
    "error.cross_site": "Dit formulier kwam niet van deze console en is geweigerd.",
    "error.not_found": "Deze pagina bestaat niet.",
    "home.title": "Start",
    "home.welcome": "Welkom, {person}",
    "home.intro": "Kies wat u wilt doen.",
    "compliance.title": "Verantwoording",
    "compliance.missing": "Het document docs/compliance.md is niet aanwezig in deze installatie.",
}

EN: Final[dict[str, str]] = {
    "product": "Safety-chain audit console",
    "skip_to_content": "Skip to content",
    "nav.label": "Main menu",
    "nav.home": "Home",
    "nav.search": "Search",
    "nav.report": "Subject access",
    "nav.agreements": "Agreements",
    "nav.dashboard": "Dashboard",
    "nav.integrity": "Integrity",
    "language.label": "Language",
    "signed_in_as": "Signed in as",
    "sign_out": "Sign out",
    "footer.metadata": "This log holds metadata of exchanges, never the contents of signals.",
    "footer.compliance": "Compliance map: GDPR, BIO, Logboek Dataverwerkingen and Verwerkingenlogging",
    "sign_in.title": "Sign in",
    "sign_in.intro": (
        "This console is for the privacy officers (data protection officers) of the participating"
        " organisations. What you read here is itself logged."
    ),
    "sign_in.development.title": "Development sign-in",
    "sign_in.development.warning": (
        "Development only: the server issues an access token itself. Production has no such sign-in."
    ),
    "sign_in.organisation": "Organisation",
    "sign_in.person": "Your name",
    "sign_in.person.hint": "Your reads are recorded in the log under this name.",
    "sign_in.development.submit": "Sign in as privacy officer",
    "sign_in.token.title": "Sign in with an access token",
    "sign_in.token.label": "Access token (OAuth 2.0, JWT)",
    "sign_in.token.hint": (
        "From your organisation's identity provider: for this service (audience audit),"
        " with the privacy-officer role."
    ),
    "sign_in.token.submit": "Sign in with token",
    "sign_in.error.token": "This token is not valid ({reason}).",
    "sign_in.error.person": (
        "Enter your name: letters, digits, spaces, full stop, apostrophe, @ or hyphen, 64 characters at most."
    ),
    "sign_in.error.organisation": "Choose an organisation from the list.",
    "sign_in.error.development": "Development sign-in is not available here.",
    "sign_in.expired": "Your session has ended or is not valid. Please sign in again.",
    "sign_in.signed_out": "You have signed out.",
    "sign_in.provider.title": "Sign in at your organisation",
    "sign_in.provider.intro": (
        "Choose your organisation. You sign in on your own organisation's sign-in page and then"
        " come back here."
    ),
    "sign_in.provider.submit": "Continue to the sign-in page",
    "sign_in.error.provider": "Signing in at your organisation did not succeed ({reason}).",
    "sign_in.error.no_provider": "No sign-in page is set up for this organisation.",
    "signed_in.title": "You are signed in",
    "signed_in.continue": "Continue",
    "error.reason": "Reason",
    "error.back": "Go to the start page",
    "error.sign_in": "Sign in with another account",
    "error.400": "The request is not valid",
    "error.401": "Not signed in",
    "error.403": "Access denied",
    "error.404": "Not found",
    "error.405": "This action is not possible here",
    "error.413": "The request is too large",
    "error.422": "The input is not valid",
    "error.429": "Too many requests; please try again shortly",
    "error.other": "Something went wrong",
    "error.cross_site": "This form did not come from this console and was refused.",
    "error.not_found": "This page does not exist.",
    "home.title": "Home",
    "home.welcome": "Welcome, {person}",
    "home.intro": "Choose what you want to do.",
    "compliance.title": "Compliance map",
    "compliance.missing": "The document docs/compliance.md is not part of this installation.",
}

NL.update(page_texts.NL)
EN.update(page_texts.EN)
NL.update(vocabulary.NL)
EN.update(vocabulary.EN)

CATALOGUES: Final[dict[Language, dict[str, str]]] = {Language.NL: NL, Language.EN: EN}

Translator = Callable[..., str]


def translate(language: Language, key: str, **params: object) -> str:
    """The text of `key` in `language`, with `params` filled in; KeyError for an unknown key."""
    text = CATALOGUES[language][key]
    return text.format(**params) if params else text


def translator(language: Language) -> Translator:
    """`t(key, **params)` bound to one language: what templates call."""

    def t(key: str, **params: object) -> str:
        return translate(language, key, **params)

    return t


def parse_language(value: str | None) -> Language | None:
    try:
        return Language((value or "").strip().lower())
    except ValueError:
        return None


def from_accept_language(header: str | None) -> Language | None:
    """The supported language the browser prefers most (RFC 9110 quality values), if any."""
    best: tuple[float, int, Language] | None = None
    for position, part in enumerate((header or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = parse_language(tag.split("-", 1)[0])
        if language is None or quality <= 0:
            continue
        # higher quality wins; between equals, the one named first
        if best is None or (quality, -position) > (best[0], best[1]):
            best = (quality, -position, language)
    return best[2] if best else None


def language_of(request: Request) -> Language:
    """The request's language: the `lang` cookie, else Accept-Language, else Dutch."""
    return (
        parse_language(request.cookies.get(LANGUAGE_COOKIE))
        or from_accept_language(request.headers.get("accept-language"))
        or DEFAULT_LANGUAGE
    )


def local_path(target: str | None, default: str = "/console/") -> str:
    """`target` if it is a path inside the console, else `default`: redirects never leave it
    (no scheme, no host, no `//`, no backslash)."""
    if (
        target
        and target.startswith("/console")
        and not target.startswith("//")
        and "\\" not in target
        and all(ord(character) > 31 for character in target)
    ):
        return target
    return default


router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/language/{code}")
async def switch_language(
    request: Request, code: str, next_page: Annotated[str | None, Query(alias="next")] = None
) -> RedirectResponse:
    """Remember the chosen language (a cookie for a year) and go back to the page."""
    language = parse_language(code)
    if language is None:
        raise HTTPException(404, f"no language {code!r}")
    response = RedirectResponse(local_path(next_page), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        language.value,
        max_age=365 * 24 * 3600,
        path="/console",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response
