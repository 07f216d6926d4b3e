"""The NL GOV profile for CloudEvents 1.0 (Logius), on every record of every topic.

A representative flow runs through the real services (a permitted and a denied signal over
HTTP, one over Kafka with the publisher SDK, a rejected one, a directive, an erasure with its
key tombstone and partner notice, the partner SDK's receipts, audit reads); then every record
on every topic of the stack, aborted transactions and tombstones included, is held to the
profile: specversion 1.0, an id, a `source` of the form urn:nld:oin:<OIN>:systeem:<name> that
names an organisation of the registry (and one that may write that topic), a reverse-DNS `type`
with one version, an RFC 3339 `time`, only the context attributes this topic allows, and (the
profile's privacy section) no BSN or name in any key or attribute: keys are pseudonyms or ids.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from functools import partial
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from partner import ErasureRequest, ReceivedSignal
from publisher import IntakePublisher
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import OrganisationKind, Registry
from shared.contracts.sources import parse_source
from shared.plumbing.policy import Role
from tests.e2e.stack import CONFIG_DIR, Stack
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

VT = "veilig-thuis-amsterdam"
PEOPLE = {  # BSN -> name; each a valid BSN (eleven-test), each name distinctive
    "999990019": "Xaviera Quirijnsdochter",
    "111222333": "Ysbrand Wolterink-Oomkes",
    "123456782": "Zwaantje Hildebrandsma",
}
(PERMITTED, DENIED, OVER_KAFKA) = PEOPLE

SOURCE = re.compile(r"^urn:nld:oin:\d{20}:systeem:[a-z0-9-]+$")
TYPE = re.compile(r"^nl\.safetychain(\.[a-z][a-z0-9-]*[a-z0-9])+\.v[1-9][0-9]*$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PSEUDONYM = re.compile(r"^[0-9a-f]{32}$")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")

CORE = frozenset(
    {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_traceparent",
        "content-type",
        "ce_signature",
        "ce_signaturekeyid",
    }
)
"""Every record carries exactly these (the signature's two belong to the record)."""

PARTNER_TOPIC = "partner.*.signals.v1"
ALLOWED: dict[str, frozenset[str]] = {
    # topic: what a record may carry beyond CORE. Written out here, not derived from the code
    # under test: a new header is a decision about what travels in clear, to be made here too.
    "signals.intake.v1": frozenset({"ce_signalid", "ce_channel"}),
    # ce_intakerecord: where the decided intake record was read (topic, partition, offset), so
    # any signals replica answers the HTTP caller waiting for it (ADR 0022); nothing personal
    "signals.accepted.v1": frozenset({"ce_subject", "ce_signalid", "ce_intakerecord"}),
    "signals.rejected.v1": frozenset({"ce_signalid", "ce_intakerecord"}),
    "exchange.decisions.v1": frozenset({"ce_subject", "ce_signalid", "ce_recipient"}),
    "exchange.receipts.v1": frozenset({"ce_subject", "ce_deliveryid", "ce_noticeid"}),
    "consent.agreements.v1": frozenset(),
    "consent.proposals.v1": frozenset(),
    "consent.directives.v1": frozenset({"ce_subject"}),
    "consent.recipients.v1": frozenset({"ce_subject"}),
    "subjects.erasure.v1": frozenset({"ce_subject"}),
    "subjects.keys.v1": frozenset({"ce_subject", "ce_municipality"}),  # one key per provider (ADR 0009)
    "audit.reads.v1": frozenset({"ce_subject"}),
    "audit.checkpoints.v1": frozenset(),
    PARTNER_TOPIC: frozenset(
        {
            "ce_subject",
            "ce_deliveryid",
            "ce_noticeid",
            "ce_recipient",
            "ce_agreementid",
            "ce_agreementversion",
            "ce_purpose",
            "ce_legalbasis",
            "ce_retentiondays",
        }
    ),
}
UNSIGNED = {"correlation_id"}
"""Not CloudEvents: FastStream adds it to what the signals service publishes through it (a
random id, outside the signature; README "Events on Kafka"). Nothing else may appear."""

WRITERS: dict[str, set[str]] = {
    "signals.intake.v1": {"municipality"},  # the publisher SDK, or signals on the caller's behalf
    "signals.accepted.v1": {"signals"},
    "signals.rejected.v1": {"signals", "consent"},
    "exchange.decisions.v1": {"consent"},
    "exchange.receipts.v1": {"partner"},
    "consent.agreements.v1": {"consent"},
    "consent.proposals.v1": {"consent"},
    "consent.directives.v1": {"consent"},
    "consent.recipients.v1": {"consent"},
    "subjects.erasure.v1": {"signals"},
    "subjects.keys.v1": {"signals"},
    "audit.reads.v1": {"audit"},
    "audit.checkpoints.v1": {"audit"},
    PARTNER_TOPIC: {"consent"},
}
KEYS: dict[str, re.Pattern[str]] = {
    "signals.intake.v1": UUID,
    "signals.accepted.v1": PSEUDONYM,
    "signals.rejected.v1": UUID,
    # a decision by signal id; an erasure forwarded to a recipient by the subject's pseudonym
    "exchange.decisions.v1": re.compile(f"{UUID.pattern}|{PSEUDONYM.pattern}"),
    "exchange.receipts.v1": UUID,
    "consent.agreements.v1": SLUG,
    "consent.proposals.v1": SLUG,
    "consent.directives.v1": PSEUDONYM,
    "consent.recipients.v1": PSEUDONYM,
    "subjects.erasure.v1": PSEUDONYM,
    "subjects.keys.v1": re.compile(r"^[0-9a-f]{32}:gm[0-9]{4}$"),  # subject pseudonym:municipality
    "audit.reads.v1": SLUG,  # the reading organisation's id
    "audit.checkpoints.v1": SLUG,
    PARTNER_TOPIC: PSEUDONYM,  # the partner's own pseudonym of the subject
}


def table_name(topic: str) -> str:
    return PARTNER_TOPIC if re.fullmatch(r"partner\.[a-z0-9-]+\.signals\.v1", topic) else topic


def person(bsn: str, **overrides: Any) -> dict[str, Any]:
    return domestic_violence_signal(subject={"kind": "person", "bsn": bsn, "name": PEOPLE[bsn]}, **overrides)


def audited(stack: Stack, **params: str) -> list[dict[str, Any]]:
    return stack.audit_records(**params)


def decided(stack: Stack, signal_id: str) -> list[dict[str, Any]]:
    return [r for r in audited(stack, signal_id=signal_id) if r["decision"] in ("permit", "deny")]


def drive_the_flow(stack: Stack) -> None:
    # Over HTTP: one signal an agreement permits (to Veilig Thuis), one no agreement covers.
    permitted = stack.post_signal(person(PERMITTED))
    assert permitted.status_code == 202, permitted.text
    permitted_subject = permitted.json()["subject_pseudonym"]
    denied = stack.post_signal(
        person(DENIED, category="radicalisering", attributes={"online_activity": True})
    )
    assert denied.status_code == 202, denied.text
    # One refused: the personal data of a refused signal must not leak either.
    refused = stack.post_signal(person(PERMITTED, category="onbekend"))
    assert refused.status_code == 422, refused.text
    # Over Kafka, with the publisher SDK, as the municipality's own principal.
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    over_kafka = person(OVER_KAFKA)
    sdk = IntakePublisher(
        "gm0363",
        keys.ed25519_private("gm0363"),
        Registry.load(CONFIG_DIR, keys).x25519_public("signals"),
        stack.kafka_options("gm0363"),
        stack.prefix,
    )
    asyncio.run(sdk.publish([over_kafka]))
    for signal_id in (permitted.json()["signal_id"], denied.json()["signal_id"], over_kafka["signal_id"]):
        eventually(partial(decided, stack, signal_id))

    # A directive: the municipality records an objection for the denied signal's subject.
    rights = stack.bearer("gm0363", Role.SUBJECT_RIGHTS)
    directive = httpx.post(
        f"{stack.url('consent')}/v1/subjects/{denied.json()['subject_pseudonym']}/directives",
        json={"kind": "objection", "scope": {"category": "huiselijk_geweld"}},
        headers=rights,
        timeout=30,
    )
    assert directive.status_code == 201, directive.text

    # Veilig Thuis receives its deliveries with the partner SDK, and acknowledges them.
    handled: list[ReceivedSignal] = []
    erased: list[ErasureRequest] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal)

    async def erase(notice: ErasureRequest) -> None:
        erased.append(notice)

    vt = stack.partner(VT)
    asyncio.run(vt.process(handle, wait_seconds=4, on_erasure=erase))
    assert len(handled) >= 2  # the permitted signal, and the one over Kafka

    # An erasure of the permitted subject: the key's tombstone, the erasure, a notice to Veilig
    # Thuis, which acknowledges it.
    erasure = httpx.post(
        f"{stack.url('signals')}/v1/subjects/{permitted_subject}/erasure", headers=rights, timeout=30
    )
    assert erasure.status_code == 202, erasure.text
    eventually(lambda: [r for r in audited(stack) if r["decision"] == "erasure-notified"])

    def acknowledged() -> list[ErasureRequest]:
        asyncio.run(vt.process(handle, wait_seconds=2, on_erasure=erase))
        return erased

    eventually(acknowledged)
    # Audit reads are records too (every read above was one); a read about a subject as well.
    audited(stack, subject=permitted_subject)
    eventually(lambda: [r for r in audited(stack) if r["decision"] == "receipt-erased"])
    eventually(lambda: [r for r in audited(stack) if r["event_type"] == "nl.safetychain.audit.read.v1"])


def check(record: ConsumerRecord, topic: str, registry: Registry) -> list[str]:
    """What is wrong with one record, by the profile and this topic's allowlist."""
    problems: list[str] = []
    names = [name for name, _ in record.headers]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        problems.append(f"repeated headers {repeated}")
    values = {name: value.decode("utf-8") for name, value in record.headers}
    missing = sorted(CORE - set(values))
    if missing:
        problems.append(f"missing {missing}")
    extra = sorted(set(values) - CORE - ALLOWED[topic] - UNSIGNED)
    if extra:
        problems.append(f"attributes not allowed on {topic}: {extra}")
    if values.get("ce_specversion") != "1.0":
        problems.append("specversion is not 1.0")
    if not values.get("ce_id"):
        problems.append("no id")
    source = values.get("ce_source", "")
    if not SOURCE.fullmatch(source):
        problems.append(f"source {source!r} is no urn:nld:oin:<OIN>:systeem:<name>")
    else:
        organisation = registry.organisation_at(source)  # raises for one the registry lacks
        assert parse_source(source).oin == organisation.oin
        if {organisation.id, organisation.kind.value}.isdisjoint(WRITERS[topic]):
            problems.append(f"{organisation.id} may not write {topic}")
    event_type = values.get("ce_type", "")
    if not TYPE.fullmatch(event_type) or len(re.findall(r"\.v\d+(?=\.|$)", event_type)) != 1:
        problems.append(f"type {event_type!r} is not reverse-DNS with one version")
    if not RFC3339.fullmatch(values.get("ce_time", "")):
        problems.append(f"time {values.get('ce_time')!r} is not RFC 3339")
    if not TRACEPARENT.fullmatch(values.get("ce_traceparent", "")):
        problems.append("traceparent is no W3C traceparent")
    if "ce_subject" in values and not PSEUDONYM.fullmatch(values["ce_subject"]):
        problems.append("subject is no pseudonym")
    if values.get("content-type") != "application/json":
        problems.append("content-type is not application/json")
    key = (record.key or b"").decode("utf-8")
    if not KEYS[topic].fullmatch(key):
        problems.append(f"key {key!r} is neither a pseudonym nor an id of {topic}")
    for bsn, name in PEOPLE.items():
        for what, text in (("key", key), *values.items()):
            if bsn in text or name in text or name.split()[0] in text:
                problems.append(f"personal data in {what}")
    return problems


def test_every_record_on_every_topic_follows_the_nl_gov_profile(stack: Stack) -> None:
    drive_the_flow(stack)
    registry = Registry.load(CONFIG_DIR)
    topics = sorted(stack.prefixed_topics())
    assert {table_name(t.removeprefix(stack.prefix)) for t in topics} >= set(ALLOWED) - {
        "audit.checkpoints.v1"
    }

    seen: Counter[str] = Counter()
    sources: set[str] = set()
    tombstones = 0
    problems: list[str] = []
    for topic in topics:
        name = topic.removeprefix(stack.prefix)
        for record in stack.read_topic(name, isolation_level="read_uncommitted"):
            seen[table_name(name)] += 1
            tombstones += record.value is None
            sources.add(dict(record.headers)["ce_source"].decode())
            problems += [
                f"{name}@{record.partition}:{record.offset}: {p}"
                for p in check(record, table_name(name), registry)
            ]
    assert problems == []

    # The flow reached every kind of record the profile is held to here.
    for topic in set(ALLOWED) - {"audit.checkpoints.v1", "consent.proposals.v1"}:
        assert seen[topic] >= 1, f"no record on {topic}"
    assert tombstones >= 1  # the erased subject's data key
    writers = {registry.organisation_at(source).id for source in sources}
    assert {"gm0363", "signals", "consent", "audit", VT} <= writers
    assert all(registry.get(org).kind is not OrganisationKind.PLATFORM for org in writers)


def test_the_check_finds_what_the_profile_forbids(stack: Stack) -> None:
    """The conformance check above is no check that cannot fail: each violation is caught."""
    registry = Registry.load(CONFIG_DIR)
    good_headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", registry.source("signals").encode()),
        ("ce_type", b"nl.safetychain.signal.accepted.v1"),
        ("ce_time", b"2026-11-29T08:00:00.123456+00:00"),
        ("content-type", b"application/json"),
        ("ce_traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),
        ("ce_subject", b"c" * 32),
        ("ce_signalid", str(uuid.uuid4()).encode()),
        ("ce_signature", b"x"),
        ("ce_signaturekeyid", b"y"),
    ]

    def problems(
        key: bytes = b"c" * 32, topic: str = "signals.accepted.v1", **changes: bytes | None
    ) -> list[str]:
        headers = [(n, changes.get(n, v)) for n, v in good_headers if changes.get(n, v) is not None]
        headers += [(n, v) for n, v in changes.items() if v is not None and n not in dict(good_headers)]
        record = ConsumerRecord(topic, 0, 0, 0, 0, key, b"{}", None, 0, 0, headers)
        return check(record, topic, registry)

    assert problems() == []
    assert problems(ce_source=b"signals")  # an organisation id, as sources were before the profile
    assert problems(ce_source=registry.source("consent").encode())  # consent does not write this topic
    assert problems(ce_type=b"nl.safetychain.signal.accepted")
    assert problems(ce_type=b"nl.safetychain.v1.signal.accepted.v2")
    assert problems(ce_time=b"2026-11-29 08:00:00")
    assert problems(ce_time=None)
    assert problems(ce_specversion=b"0.3")
    assert problems(ce_bsn=b"123456782")  # an attribute this topic does not allow
    assert problems(ce_subject=b"999990019")  # a BSN where a pseudonym belongs
    assert problems(key=b"999990019")
    assert problems(ce_signalid=b"Zwaantje")
