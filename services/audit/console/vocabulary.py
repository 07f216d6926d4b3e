# ruff: noqa: E501  (a catalogue of names: one line each reads best)
"""Human names for the codes the log holds, in Dutch and English: categories, purposes, event
types, decisions, roles and field names, and consent's reasons as sentences.

The log keeps codes (`huiselijk_geweld`, `deny`, `nl.safetychain.exchange.decided.v1`); a page
shows their names. The codes come from where they are defined (`Category`, the catalogue of
event types, the enums behind each decision, the policy's roles, the deliverable fields; the
purposes from the agreements in config/), and tests/unit/test_console_vocabulary.py holds that
every one has a name in both languages: a new category without a name fails that test.

Consent's reasons arrive as the English sentences of shared/contracts/reasons.py; `Words.reason`
reads them back into codes and says them in the page's language. A sentence that is no reason
consent writes (a record from before the codes, a partner's own words) is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from services.audit.log.flags import FlagCode, parse_flag
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.reasons import ReasonCode, ReasonSentence, parse_reason
from shared.contracts.sentences import Phrase
from shared.contracts.widenings import WideningCode, parse_widening

NL: Final[dict[str, str]] = {
    # why the log flagged a record (services/audit/log/flags.py)
    "flag.unregistered_source": "de afzender is geen geregistreerde organisatie",
    "flag.may_not_write": "{organisation} mag geen {event} schrijven",
    "flag.not_signed": "niet ondertekend door {organisation}",
    "flag.no_key": "geen sleutel van {organisation} bekend: de handtekening is niet te controleren",
    "flag.misplaced": "{event} hoort niet in {topic}",
    "flag.claimed": "beweerde: {decision}",
    "flag.fact": "een feit",
    "actor.configuration": "configuratie",  # agreements signed in config/ (services/consent)
    # what a proposed agreement version widens (shared/contracts/widenings.py)
    "widening.new_agreement": "een nieuw convenant",
    "widening.resumes": "een opgeschort convenant gaat weer gelden",
    "widening.provider_added": "{provider} gaat gegevens verstrekken",
    "widening.recipient_added": "{recipient} gaat gegevens ontvangen",
    "widening.field_added": "{recipient} ontvangt ook: {field}",
    "widening.withheld_longer": "uitwisselingen met {recipient} blijven {days} dagen voor burgers verborgen (was {before})",
    "widening.identifying": "gegevens waarmee iemand te herkennen is, mogen worden gedeeld",
    "widening.free_text": "vrije tekst mag worden gedeeld zonder wie het betreft",
    "widening.category_added": "nieuwe soort melding: {category}",
    "widening.purpose_added": "nieuw doel: {purpose}",
    "widening.retained_longer": "gegevens worden langer bewaard: {days} dagen (was {before})",
    "widening.consent_dropped": "toestemming van de persoon is niet meer nodig",
    "widening.objection_dropped": "bezwaar van de persoon houdt het delen niet meer tegen",
    "widening.legal_basis": "andere wettelijke grondslag: {legal_basis} (was {before})",
    "widening.starts_earlier": "geldt eerder, vanaf {date} (was {before})",
    "widening.ends_later": "geldt langer, tot {date}",
    "widening.open_ended": "geldt zonder einddatum",
    # why intake refused a submission (shared/contracts/events.py RejectionReason)
    "rejection.malformed_json": "geen geldige JSON",
    "rejection.not_utf8": "geen UTF-8-tekst",
    "rejection.wrong_content_type": "verkeerd soort inhoud",
    "rejection.oversized": "te groot",
    "rejection.not_encrypted": "niet versleuteld",
    "rejection.schema_violation": "voldoet niet aan het schema",
    "rejection.missing_field": "verplicht veld ontbreekt",
    "rejection.unknown_field": "onbekend veld",
    "rejection.unknown_category": "onbekende categorie",
    "rejection.unknown_municipality": "onbekende gemeente",
    "rejection.invalid_bsn": "ongeldig BSN",
    "rejection.invalid_postcode": "ongeldige postcode",
    "rejection.invalid_kvk": "ongeldig KvK-nummer",
    "rejection.summary_too_long": "beschrijving te lang",
    "rejection.future_time": "tijdstip in de toekomst",
    "rejection.unauthenticated": "afzender niet aangemeld",
    "rejection.forbidden": "afzender mag niet melden",
    "rejection.wrong_publisher": "melding voor een andere gemeente",
    "rejection.missing_signature": "handtekening ontbreekt",
    "rejection.malformed_signature": "handtekening onleesbaar",
    "rejection.bad_signature": "handtekening klopt niet",
    "rejection.unknown_key": "onbekende sleutel",
    "rejection.replay": "herhaald bericht",
    "rejection.duplicate": "dubbele melding",
    "rejection.subject_erased": "gegevens van de persoon zijn gewist",
    "rejection.malformed_event": "onleesbaar bericht",
    "rejection.processing_failed": "verwerking mislukt",
    # categories (shared/contracts/signal.py Category)
    "category.huiselijk_geweld": "Huiselijk geweld",
    "category.kindermishandeling": "Kindermishandeling",
    "category.verward_gedrag": "Verward gedrag",
    "category.radicalisering": "Radicalisering",
    "category.ondermijning": "Ondermijning",
    "category.woonoverlast": "Woonoverlast",
    "category.mensenhandel": "Mensenhandel",
    "category.jeugdcriminaliteit": "Jeugdcriminaliteit",
    "category.zorgmijding": "Zorgmijding",
    # purposes (the agreements' `purposes`)
    "purpose.veiligheid_huiselijk_geweld": "Veiligheid bij huiselijk geweld en kindermishandeling",
    "purpose.zorg_en_veiligheid_casusoverleg": "Overleg over zorg en veiligheid rond een persoon (casusoverleg)",
    "purpose.bestuurlijke_aanpak_ondermijning": "Aanpak van ondermijnende criminaliteit door de overheid",
    # event types (services/audit/log/catalogue.py), without prefix and version
    "event.signal.accepted": "Signaal ontvangen",
    "event.signal.rejected": "Signaal geweigerd bij ontvangst",
    "event.exchange.decided": "Besluit over delen",
    "event.signal.delivered": "Signaal geleverd",
    "event.exchange.receipt": "Ontvangstbevestiging",
    "event.subject.erased": "Gegevens gewist",
    "event.subject.erasure-forwarded": "Wisverzoek doorgestuurd",
    "event.subject.erasure-notice": "Wisverzoek aan ontvanger",
    "event.consent.agreement": "Convenant gepubliceerd",
    "event.consent.agreement.proposal": "Wijziging van convenant voorgesteld",
    "event.consent.directives": "Toestemming of bezwaar",
    "event.audit.read": "Logboek ingezien",
    "event.audit.failover": "Schrijven van het logboek overgenomen",
    "event.audit.unreadable": "Onleesbaar bericht",
    # decisions (services/audit/log/statements.py DECISIONS)
    "decision.accepted": "Ontvangen",
    "decision.permit": "Gedeeld",
    "decision.deny": "Niet gedeeld",
    "decision.rejected": "Geweigerd",
    "decision.delivered": "Geleverd",
    "decision.receipt-opened": "Geopend",
    "decision.receipt-refused": "Geweigerd door ontvanger",
    "decision.receipt-erased": "Gewist door ontvanger",
    "decision.agreement-active": "Van kracht",
    "decision.agreement-suspended": "Opgeschort",
    "decision.agreement-revoked": "Ingetrokken",
    "decision.proposal-pending": "Voorstel wacht op handtekeningen",
    "decision.proposal-approved": "Voorstel goedgekeurd",
    "decision.proposal-rejected": "Voorstel afgewezen",
    "decision.proposal-withdrawn": "Voorstel ingetrokken",
    "decision.directive-consent_given": "Toestemming gegeven",
    "decision.directive-consent_withdrawn": "Toestemming ingetrokken",
    "decision.directive-objection": "Bezwaar gemaakt",
    "decision.directive-objection_withdrawn": "Bezwaar ingetrokken",
    "decision.directives-cleared": "Toestemming en bezwaar vervallen",
    "decision.erased": "Gewist",
    "decision.erased-without-key": "Gewist (er waren geen gegevens)",
    "decision.erasure-forwarded": "Wisverzoek doorgestuurd",
    "decision.erasure-notified": "Wisverzoek ontvangen",
    "decision.read": "Ingezien",
    "decision.failover": "Overgenomen",
    "decision.forged": "Vervalst",
    "decision.unverifiable": "Niet te controleren",
    "decision.unreadable": "Onleesbaar",
    "decision.receipt-forged": "Vervalste bevestiging",
    "decision.receipt-unverifiable": "Bevestiging niet te controleren",
    # roles (shared/plumbing/policy.py Role)
    "role.publisher": "Verstrekker van signalen",
    "role.subject-rights": "Behandelaar van rechten van betrokkenen",
    "role.agreement-administrator": "Beheerder van convenanten",
    "role.privacy-officer": "Functionaris gegevensbescherming",
    "role.recipient": "Ontvanger",
    # deliverable fields (shared/contracts/agreements.py DELIVERABLE_FIELDS)
    "field.attributes": "alle kenmerken van de melding",
    "field.attributes.address": "adres waar het speelt",
    "field.attributes.care_refused": "welke zorg is geweigerd",
    "field.attributes.child_birth_date": "geboortedatum van het kind",
    "field.attributes.children_count": "aantal kinderen",
    "field.attributes.children_present": "of er kinderen bij waren",
    "field.attributes.danger_to_others": "gevaar voor anderen",
    "field.attributes.danger_to_self": "gevaar voor zichzelf",
    "field.attributes.duration_weeks": "hoe lang het al duurt",
    "field.attributes.exploitation_type": "soort uitbuiting",
    "field.attributes.first_offence": "of het de eerste keer is",
    "field.attributes.indicators": "aanwijzingen",
    "field.attributes.kvk_number": "KvK-nummer van het bedrijf",
    "field.attributes.living_conditions": "woonomstandigheden",
    "field.attributes.nuisance_type": "soort overlast",
    "field.attributes.offence_type": "soort strafbaar feit",
    "field.attributes.online_activity": "activiteit op internet",
    "field.attributes.perpetrator_known": "of de dader bekend is",
    "field.attributes.phase": "fase",
    "field.attributes.police_code": "code van de politie",
    "field.attributes.risk_assessment": "inschatting van het risico",
    "field.attributes.school_attendance": "schoolbezoek",
    "field.attributes.school_reported": "of de school het meldde",
    "field.attributes.sector": "sector",
    "field.attributes.signs": "signalen",
    "field.attributes.victim_minor": "of het slachtoffer minderjarig is",
    "field.category": "soort melding",
    "field.municipality": "gemeente",
    "field.occurred_at": "wanneer het gebeurde",
    "field.purpose": "doel",
    "field.severity": "ernst",
    "field.subject.address": "adres",
    "field.subject.birth_date": "geboortedatum",
    "field.subject.bsn": "burgerservicenummer (BSN)",
    "field.subject.kind": "persoon, adres of organisatie",
    "field.subject.kvk_number": "KvK-nummer",
    "field.subject.name": "naam",
    "field.subject.trade_name": "handelsnaam",
    "field.summary": "korte beschrijving",
    # consent's reasons (shared/contracts/reasons.py ReasonCode)
    "reason.no_agreement": "geen convenant noemt {recipient} als ontvanger",
    "reason.suspended": "het convenant is opgeschort",
    "reason.revoked": "het convenant is ingetrokken",
    "reason.not_a_provider": "{municipality} levert onder dit convenant geen gegevens",
    "reason.category_not_covered": "de soort melding ({category}) valt niet onder dit convenant",
    "reason.purpose_not_covered": "het doel ({purpose}) valt niet onder dit convenant",
    "reason.not_valid": "het convenant gold niet op {date}",
    "reason.consent_absent": "toestemming van de persoon is nodig, maar ontbreekt",
    "reason.consent_withdrawn": "toestemming van de persoon is nodig, maar is ingetrokken",
    "reason.objected": "de persoon heeft bezwaar gemaakt (AVG art. 21)",
    "reason.objection_overridden": "de persoon heeft bezwaar gemaakt, maar {legal_basis} gaat voor",
    "reason.permitted": "{agreement} staat toe dat {recipient} dit ontvangt ({category}, voor {purpose})",
    "reason.also_permits": "{agreement} staat het ook toe, maar deelt meer gegevens",
    "reason.erased": "de gegevens van de persoon zijn gewist: er kan niets worden geleverd",
    "reason.agreement": "convenant {agreement} (versie {version})",
    "reason.refusal": "{agreement}: {failures}",
    # dates
    "date.months": "januari februari maart april mei juni juli augustus september oktober november december",
    "date.day": "{day} {month} {year}",
    "date.moment": "{day} {month} {year}, {time}",
}

EN: Final[dict[str, str]] = {
    # why the log flagged a record (services/audit/log/flags.py)
    "flag.unregistered_source": "the sender is no registered organisation",
    "flag.may_not_write": "{organisation} may not write {event}",
    "flag.not_signed": "not signed by {organisation}",
    "flag.no_key": "no key of {organisation} known: the signature cannot be checked",
    "flag.misplaced": "{event} does not belong in {topic}",
    "flag.claimed": "claimed: {decision}",
    "flag.fact": "a fact",
    "actor.configuration": "configuration",  # agreements signed in config/ (services/consent)
    # what a proposed agreement version widens (shared/contracts/widenings.py)
    "widening.new_agreement": "a new agreement",
    "widening.resumes": "a suspended agreement applies again",
    "widening.provider_added": "{provider} will provide data",
    "widening.recipient_added": "{recipient} will receive data",
    "widening.field_added": "{recipient} also receives: {field}",
    "widening.withheld_longer": "exchanges with {recipient} stay hidden from citizens for {days} days (was {before})",
    "widening.identifying": "data that identifies a person may be shared",
    "widening.free_text": "free text may be shared without whom it is about",
    "widening.category_added": "new kind of signal: {category}",
    "widening.purpose_added": "new purpose: {purpose}",
    "widening.retained_longer": "data is kept longer: {days} days (was {before})",
    "widening.consent_dropped": "the person's consent is no longer needed",
    "widening.objection_dropped": "the person's objection no longer stops sharing",
    "widening.legal_basis": "another legal basis: {legal_basis} (was {before})",
    "widening.starts_earlier": "applies earlier, from {date} (was {before})",
    "widening.ends_later": "applies longer, until {date}",
    "widening.open_ended": "applies without an end date",
    # why intake refused a submission (shared/contracts/events.py RejectionReason)
    "rejection.malformed_json": "not valid JSON",
    "rejection.not_utf8": "not UTF-8 text",
    "rejection.wrong_content_type": "wrong content type",
    "rejection.oversized": "too large",
    "rejection.not_encrypted": "not encrypted",
    "rejection.schema_violation": "does not match the schema",
    "rejection.missing_field": "a required field is missing",
    "rejection.unknown_field": "unknown field",
    "rejection.unknown_category": "unknown category",
    "rejection.unknown_municipality": "unknown municipality",
    "rejection.invalid_bsn": "invalid BSN",
    "rejection.invalid_postcode": "invalid postcode",
    "rejection.invalid_kvk": "invalid Chamber of Commerce number",
    "rejection.summary_too_long": "summary too long",
    "rejection.future_time": "a time in the future",
    "rejection.unauthenticated": "sender not signed in",
    "rejection.forbidden": "sender may not submit signals",
    "rejection.wrong_publisher": "a signal for another municipality",
    "rejection.missing_signature": "signature missing",
    "rejection.malformed_signature": "signature unreadable",
    "rejection.bad_signature": "signature does not verify",
    "rejection.unknown_key": "unknown key",
    "rejection.replay": "a replayed message",
    "rejection.duplicate": "a duplicate signal",
    "rejection.subject_erased": "the person's data was erased",
    "rejection.malformed_event": "unreadable message",
    "rejection.processing_failed": "processing failed",
    "category.huiselijk_geweld": "Domestic violence",
    "category.kindermishandeling": "Child abuse",
    "category.verward_gedrag": "Confused behaviour",
    "category.radicalisering": "Radicalisation",
    "category.ondermijning": "Organised crime undermining society",
    "category.woonoverlast": "Residential nuisance",
    "category.mensenhandel": "Human trafficking",
    "category.jeugdcriminaliteit": "Youth crime",
    "category.zorgmijding": "Care avoidance",
    "purpose.veiligheid_huiselijk_geweld": "Safety in cases of domestic violence and child abuse",
    "purpose.zorg_en_veiligheid_casusoverleg": "Case conference on care and safety around a person",
    "purpose.bestuurlijke_aanpak_ondermijning": "Administrative approach to organised crime",
    "event.signal.accepted": "Signal received",
    "event.signal.rejected": "Signal refused at intake",
    "event.exchange.decided": "Decision on sharing",
    "event.signal.delivered": "Signal delivered",
    "event.exchange.receipt": "Receipt",
    "event.subject.erased": "Data erased",
    "event.subject.erasure-forwarded": "Erasure request passed on",
    "event.subject.erasure-notice": "Erasure request to the recipient",
    "event.consent.agreement": "Agreement published",
    "event.consent.agreement.proposal": "Change of agreement proposed",
    "event.consent.directives": "Consent or objection",
    "event.audit.read": "Log read",
    "event.audit.failover": "Writing the log taken over",
    "event.audit.unreadable": "Unreadable message",
    "decision.accepted": "Received",
    "decision.permit": "Shared",
    "decision.deny": "Not shared",
    "decision.rejected": "Refused",
    "decision.delivered": "Delivered",
    "decision.receipt-opened": "Opened",
    "decision.receipt-refused": "Refused by the recipient",
    "decision.receipt-erased": "Erased by the recipient",
    "decision.agreement-active": "In force",
    "decision.agreement-suspended": "Suspended",
    "decision.agreement-revoked": "Revoked",
    "decision.proposal-pending": "Proposal awaiting signatures",
    "decision.proposal-approved": "Proposal approved",
    "decision.proposal-rejected": "Proposal rejected",
    "decision.proposal-withdrawn": "Proposal withdrawn",
    "decision.directive-consent_given": "Consent given",
    "decision.directive-consent_withdrawn": "Consent withdrawn",
    "decision.directive-objection": "Objected",
    "decision.directive-objection_withdrawn": "Objection withdrawn",
    "decision.directives-cleared": "Consent and objection lapsed",
    "decision.erased": "Erased",
    "decision.erased-without-key": "Erased (there were no data)",
    "decision.erasure-forwarded": "Erasure request passed on",
    "decision.erasure-notified": "Erasure request received",
    "decision.read": "Read",
    "decision.failover": "Taken over",
    "decision.forged": "Forged",
    "decision.unverifiable": "Cannot be verified",
    "decision.unreadable": "Unreadable",
    "decision.receipt-forged": "Forged receipt",
    "decision.receipt-unverifiable": "Receipt cannot be verified",
    "role.publisher": "Provider of signals",
    "role.subject-rights": "Handler of data subjects' rights",
    "role.agreement-administrator": "Administrator of agreements",
    "role.privacy-officer": "Data protection officer",
    "role.recipient": "Recipient",
    "field.attributes": "every detail of the signal",
    "field.attributes.address": "address where it happens",
    "field.attributes.care_refused": "which care was refused",
    "field.attributes.child_birth_date": "the child's date of birth",
    "field.attributes.children_count": "number of children",
    "field.attributes.children_present": "whether children were present",
    "field.attributes.danger_to_others": "danger to others",
    "field.attributes.danger_to_self": "danger to oneself",
    "field.attributes.duration_weeks": "how long it has been going on",
    "field.attributes.exploitation_type": "kind of exploitation",
    "field.attributes.first_offence": "whether it is the first time",
    "field.attributes.indicators": "indications",
    "field.attributes.kvk_number": "the business's Chamber of Commerce number",
    "field.attributes.living_conditions": "living conditions",
    "field.attributes.nuisance_type": "kind of nuisance",
    "field.attributes.offence_type": "kind of offence",
    "field.attributes.online_activity": "activity on the internet",
    "field.attributes.perpetrator_known": "whether the perpetrator is known",
    "field.attributes.phase": "phase",
    "field.attributes.police_code": "police code",
    "field.attributes.risk_assessment": "risk assessment",
    "field.attributes.school_attendance": "school attendance",
    "field.attributes.school_reported": "whether the school reported it",
    "field.attributes.sector": "sector",
    "field.attributes.signs": "signs",
    "field.attributes.victim_minor": "whether the victim is a minor",
    "field.category": "kind of signal",
    "field.municipality": "municipality",
    "field.occurred_at": "when it happened",
    "field.purpose": "purpose",
    "field.severity": "severity",
    "field.subject.address": "address",
    "field.subject.birth_date": "date of birth",
    "field.subject.bsn": "citizen service number (BSN)",
    "field.subject.kind": "person, address or organisation",
    "field.subject.kvk_number": "Chamber of Commerce number",
    "field.subject.name": "name",
    "field.subject.trade_name": "trade name",
    "field.summary": "short description",
    "reason.no_agreement": "no agreement names {recipient} as a recipient",
    "reason.suspended": "the agreement is suspended",
    "reason.revoked": "the agreement is revoked",
    "reason.not_a_provider": "{municipality} provides no data under this agreement",
    "reason.category_not_covered": "the kind of signal ({category}) is outside this agreement",
    "reason.purpose_not_covered": "the purpose ({purpose}) is outside this agreement",
    "reason.not_valid": "the agreement was not in force on {date}",
    "reason.consent_absent": "the person's consent is required, but missing",
    "reason.consent_withdrawn": "the person's consent is required, but was withdrawn",
    "reason.objected": "the person objected (GDPR art. 21)",
    "reason.objection_overridden": "the person objected, but {legal_basis} takes precedence",
    "reason.permitted": "{agreement} lets {recipient} receive this ({category}, for {purpose})",
    "reason.also_permits": "{agreement} allows it too, but shares more data",
    "reason.erased": "the person's data were erased: nothing can be delivered",
    "reason.agreement": "agreement {agreement} (version {version})",
    "reason.refusal": "{agreement}: {failures}",
    "date.months": "January February March April May June July August September October November December",
    "date.day": "{day} {month} {year}",
    "date.moment": "{day} {month} {year}, {time}",
}

ORGANISATION_PARAMETERS: Final = frozenset({"recipient", "municipality", "provider", "organisation"})
"""Parameters of sentences with codes that name an organisation by its id."""
EVENT_TYPE: Final = re.compile(re.escape(TYPE_PREFIX) + r"[\w.-]+\.v\d+")


def event_key(event_type: str) -> str:
    """`nl.safetychain.exchange.decided.v1` -> `event.exchange.decided`."""
    short = event_type.removeprefix(TYPE_PREFIX)
    head, dot, version = short.rpartition(".")
    if dot and version.startswith("v") and version[1:].isdigit():
        short = head
    return f"event.{short}"


def lowered(name: str) -> str:
    """A name inside a sentence: its first letter small (no name here starts with a proper noun
    that would mind)."""
    return name[:1].lower() + name[1:]


@dataclass(frozen=True)
class Words:
    """The names of codes in one language; what templates call as `words`. An unknown code (a
    category added without a name: a unit test prevents it) is shown as it is rather than
    failing the page."""

    catalogue: Mapping[str, str]
    organisations: Mapping[str, str]  # id -> display name

    def _name(self, key: str, code: str) -> str:
        return self.catalogue.get(key, code)

    def category(self, code: str | None) -> str:
        return self._name(f"category.{code}", code) if code else ""

    def purpose(self, code: str | None) -> str:
        return self._name(f"purpose.{code}", code) if code else ""

    def event(self, event_type: str) -> str:
        return self._name(event_key(event_type), event_type)

    def decision(self, code: str | None) -> str:
        return self._name(f"decision.{code}", code) if code else ""

    def rejection(self, code: str) -> str:
        return self._name(f"rejection.{code}", code)

    def widening(self, text: str) -> str:
        """What a proposal widens (`category zorgmijding added`), said in this language; a
        sentence consent did not write this way is shown as it is."""
        read = parse_widening(text)
        if read is None:
            return text
        dates = ("date", "before") if read.code is WideningCode.STARTS_EARLIER else ("date",)
        params = self._said(read.params, dates)
        return self.catalogue.get(f"widening.{read.code.value}", text).format(**params)

    def actor(self, actor: str | None) -> str:
        """Who acted (`gm0363/f.fg`): the organisation's name and the person (`configuration`,
        the agreements in config/, in words)."""
        if not actor:
            return ""
        organisation, _, person = actor.partition("/")
        if not person:
            return self.catalogue.get(f"actor.{organisation}", self.organisation(organisation))
        return f"{self.organisation(organisation)} ({self.catalogue.get(f'actor.{person}', person)})"

    def role(self, code: str) -> str:
        return self._name(f"role.{code}", code)

    def field(self, name: str) -> str:
        return self._name(f"field.{name}", name)

    def fields(self, names: Iterable[str]) -> str:
        return ", ".join(self.field(name) for name in names)

    def organisation(self, org: str | None) -> str:
        return self.organisations.get(org, org) if org else ""

    # dates -----------------------------------------------------------------------------------

    def day(self, value: date | datetime | str | None) -> str:
        """A date in the page's language: `3 maart 2026` / `3 March 2026`."""
        moment = _as_datetime(value)
        if moment is None:
            return ""
        return self.catalogue["date.day"].format(**self._parts(moment))

    def moment(self, value: date | datetime | str | None) -> str:
        """A moment (UTC) to the minute: `3 maart 2026, 21:15`."""
        moment = _as_datetime(value)
        if moment is None:
            return ""
        return self.catalogue["date.moment"].format(**self._parts(moment), time=f"{moment:%H:%M}")

    def _parts(self, moment: datetime) -> dict[str, object]:
        month = self.catalogue["date.months"].split()[moment.month - 1]
        return {"day": moment.day, "month": month, "year": moment.year}

    # consent's reasons -----------------------------------------------------------------------

    def reason(self, text: str) -> str:
        """One of a decision's reasons in the page's language, or the text itself when it is no
        reason consent writes (`shared.contracts.reasons`)."""
        sentence = parse_reason(text)
        if sentence is not None:
            return self.sentence(sentence)
        flagged = parse_flag(text)
        if flagged is not None:
            return self.flag(flagged)
        return EVENT_TYPE.sub(lambda found: self.event(found[0]), text)  # another's words: no codes at least

    def flag(self, flagged: Phrase[FlagCode]) -> str:
        """Why the log flagged a record, in this language."""
        params = self._said(flagged.params)
        return self.catalogue[f"flag.{flagged.code.value}"].format(**params)

    def reasons(self, texts: Iterable[str]) -> list[str]:
        return [self.reason(text) for text in texts]

    def sentence(self, sentence: ReasonSentence) -> str:
        said = "; ".join(self._reason(r.code, r.params) for r in sentence.reasons)
        if sentence.agreement_id is None:
            return said[:1].upper() + said[1:]
        agreement = self._agreement(sentence.agreement_id, sentence.agreement_version)
        said = self.catalogue["reason.refusal"].format(agreement=agreement, failures=said)
        return said[:1].upper() + said[1:]

    def _agreement(self, agreement_id: str, version: int | str | None) -> str:
        return self.catalogue["reason.agreement"].format(agreement=agreement_id, version=version)

    def _said(self, params: Mapping[str, str], dates: Iterable[str] = ("date",)) -> dict[str, str]:
        """The parameters of a sentence with codes (a reason, a widening, a flag), each said in
        this language by its name; `dates` names those that are days."""
        said: dict[str, str] = {}
        for name, value in params.items():
            if name in ORGANISATION_PARAMETERS:
                said[name] = self.organisation(value)
            elif name == "category":
                said[name] = lowered(self.category(value))
            elif name == "purpose":
                said[name] = lowered(self.purpose(value))
            elif name == "field":
                said[name] = self.field(value)
            elif name in dates:
                said[name] = self.day(value) or value
            elif name == "event_type":
                said["event"] = lowered(self.event(value))
            elif name == "decision":
                said[name] = self.catalogue["flag.fact"] if value == "fact" else lowered(self.decision(value))
            elif name == "agreement":
                label = value.removeprefix("agreement ")
                agreement_id, _, version = label.rpartition(" v")
                said[name] = self._agreement(agreement_id, version) if agreement_id else value
            else:
                said[name] = value
        return said

    def _reason(self, code: ReasonCode, params: Mapping[str, str]) -> str:
        said = self._said(params)
        return self.catalogue[f"reason.{code.value}"].format(**said)


def _as_datetime(value: date | datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
