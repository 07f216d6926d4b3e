"""The contract documents in docs/ are generated from the models, and stay in step with them.

`jsonschema` is not a dependency, so `violations` below checks instances against the subset
of JSON Schema that pydantic emits for these models ($ref, oneOf/anyOf/allOf, const, enum,
type, properties, required, patternProperties, additionalProperties, items, lengths, bounds,
pattern). It ignores `format`. Enough to show that the schemas and the models agree on real examples.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import unquote

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from partner.client import PartnerClient, PartnerIdentity
from partner.deliveries import DeliveryRefused, open_delivery, open_notice
from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.facts import AuditFact
from services.audit.log.leader import failover_of
from services.audit.log.lease import Lease, Takeover
from services.audit.log.memory_store import InMemoryAuditStore
from services.consent.agreements import load_agreements
from services.consent.enforcement import Enforcer
from services.consent.transport import _dead_letter
from services.signals.erasure import Erasure
from services.signals.publishing import KafkaGateway
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    Directive,
    DirectiveKind,
    DirectiveScope,
    LegalBasis,
    PartySignature,
    ProposalStatus,
    Recipient,
    SubjectDirectives,
)
from shared.contracts.crypto.approvals import sign_version, unverified_statement
from shared.contracts.crypto.signing import KEY_ID_HEADER, SIGNATURE_HEADER, is_signed_header, sign_record
from shared.contracts.emitted import Outgoing
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import (
    AuditCheckpoint,
    AuditFailover,
    AuditRead,
    Decision,
    DeliveryProvenance,
    EncryptedPayload,
    ErasureForwarded,
    ErasureNotice,
    ExchangeDecided,
    ExchangeReceipt,
    FieldError,
    ProvidedTo,
    RejectionReason,
    SealedPayload,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectDataKey,
    SubjectErased,
    SubjectRecipients,
)
from shared.contracts.intake import intake_record
from shared.contracts.signal import Category, Classification, Severity, signal_adapter
from shared.contracts.sources import source_urn
from shared.contracts.tlog.note import Signer
from shared.contracts.topics import (
    CENTRAL_TOPICS,
    PARTNER_TOPIC_TEMPLATE,
    partner_id_of,
)
from shared.contracts.yamlload import safe_load
from shared.plumbing import contract_docs
from shared.plumbing.contract_docs import (
    asyncapi_document,
    event_models,
    json_schemas,
    main,
    schema_file,
    stale,
    write,
)
from shared.plumbing.kafka import SignedPublisher
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter
from shared.plumbing.settings import CommonSettings
from tests.unit.intake_harness import Harness, Parties
from tests.unit.test_signal_contract import INVALID_SUBMISSIONS, valid_submission

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "regenerate with: python -m shared.plumbing.contract_docs"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SIGNAL_ID = uuid.UUID("6f1c5a52-3f5e-4d2b-9a51-2f0b8f6c7d10")
DELIVERY_ID = uuid.UUID("3b0e8a1f-5c2d-8e4f-9a6b-7c8d9e0f1a2b")
PSEUDONYM = "0123456789abcdef0123456789abcdef"


# --- A checker for the subset of JSON Schema the models produce ----------------------------


def _resolve(root: dict[str, Any], pointer: str) -> dict[str, Any]:
    assert pointer.startswith("#/"), f"only local references: {pointer}"
    node: Any = root
    for part in pointer[2:].split("/"):
        node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
    assert isinstance(node, dict)
    return node


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def violations(root: dict[str, Any], schema: dict[str, Any], value: Any, at: str = "$") -> list[str]:
    """What is wrong with `value` under `schema` (references resolved against `root`)."""
    if "$ref" in schema:
        siblings = {key: item for key, item in schema.items() if key != "$ref"}
        return violations(root, _resolve(root, schema["$ref"]), value, at) + violations(
            root, siblings, value, at
        )
    problems: list[str] = []
    if "oneOf" in schema:
        fitting = sum(not violations(root, option, value, at) for option in schema["oneOf"])
        if fitting != 1:
            problems.append(f"{at}: fits {fitting} of the oneOf options, not exactly one")
    if "anyOf" in schema and all(violations(root, option, value, at) for option in schema["anyOf"]):
        problems.append(f"{at}: fits none of the anyOf options")
    for option in schema.get("allOf", []):
        problems += violations(root, option, value, at)
    if "const" in schema and value != schema["const"]:
        problems.append(f"{at}: is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}: is not one of {schema['enum']}")
    kind = _type_of(value)
    expected = schema.get("type")
    if expected is not None and kind != expected and not (expected == "number" and kind == "integer"):
        return [*problems, f"{at}: is {kind}, not {expected}"]
    if kind == "object":
        properties = schema.get("properties", {})
        problems += [f"{at}: lacks {name}" for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            patterns = [
                pattern for pattern in schema.get("patternProperties", {}) if re.search(pattern, name)
            ]
            for pattern in patterns:
                problems += violations(root, schema["patternProperties"][pattern], item, f"{at}.{name}")
            if name in properties:
                problems += violations(root, properties[name], item, f"{at}.{name}")
            elif patterns:
                continue
            elif schema.get("additionalProperties") is False:
                problems.append(f"{at}: has no property {name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += violations(root, schema["additionalProperties"], item, f"{at}.{name}")
    if kind == "array":
        if "items" in schema:
            for index, item in enumerate(value):
                problems += violations(root, schema["items"], item, f"{at}[{index}]")
        if len(value) > schema.get("maxItems", len(value)):
            problems.append(f"{at}: more than {schema['maxItems']} items")
    if kind == "string":
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            problems.append(f"{at}: length out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{at}: does not match {schema['pattern']}")
    if kind in ("integer", "number") and not (
        schema.get("minimum", value) <= value <= schema.get("maximum", value)
    ):
        problems.append(f"{at}: out of bounds")
    return problems


def fits(schema: dict[str, Any], value: Any) -> list[str]:
    return violations(schema, schema, value)


# --- Real examples ---------------------------------------------------------------------------


def huiselijk_geweld_submission(**overrides: Any) -> dict[str, Any]:
    """The valid submission of the signal contract's tests, with an id, its attributes and a
    retention period."""
    attributes = {"children_present": True, "children_count": 2, "risk_assessment": "hoog"}
    return valid_submission(
        **{"signal_id": str(SIGNAL_ID), "attributes": attributes, "retention_days": 365, **overrides}
    )


SEALED = SealedPayload(recipient="consent", ciphertext="c2VhbGVk")

PARTY_KEY = Ed25519PrivateKey.generate()
AGREEMENT_EXAMPLE = Agreement(
    id="huiselijk-geweld-amsterdam",
    version=2,
    title="Convenant huiselijk geweld",
    legal_basis=LegalBasis(law="Wmo 2015", article="art. 5.2.6"),
    providers=("gm0363",),
    recipients=(Recipient(partner="veilig-thuis-amsterdam", fields=("category", "subject.name")),),
    categories=(Category.HUISELIJK_GEWELD,),
    purposes=("veiligheid_huiselijk_geweld",),
    identifying=True,
    valid_from=NOW.date(),
    retention_days=365,
)

EXAMPLES: dict[str, BaseModel] = {
    "consent.agreement.v1.json": AgreementPublished(
        agreement=AGREEMENT_EXAMPLE,
        published_by="gm0363",
        published_at=NOW,
        approved=AGREEMENT_EXAMPLE,
        signatures=tuple(
            PartySignature(
                statement=unverified_statement(
                    jws := sign_version(PARTY_KEY, AGREEMENT_EXAMPLE, party, signed_at=NOW)
                ),
                signed_by=f"{party}/fg",
                jws=jws,
            )
            for party in sorted(AGREEMENT_EXAMPLE.parties)
        ),
    ),
    "consent.directives.v1.json": SubjectDirectives(
        subject_pseudonym="0" * 32,
        sequence=1,
        directives=(
            Directive(
                kind=DirectiveKind.OBJECTION,
                scope=DirectiveScope(category=Category.HUISELIJK_GEWELD),
                municipality="gm0363",
                recorded_at=NOW,
                recorded_by="gm0363",
            ),
        ),
    ),
    "exchange.receipt.v1.json": ExchangeReceipt(
        delivery_id=DELIVERY_ID,
        recipient="veilig-thuis-amsterdam",
        status="opened",
        agreement_id="huiselijk-geweld-amsterdam",
        agreement_version=1,
        partner_pseudonym="0" * 32,
        delivery=DeliveryProvenance(topic="partner.veilig-thuis-amsterdam.signals.v1", partition=0, offset=7),
        received_at=NOW,
    ),
    "sealed-payload.v1.json": SealedPayload(recipient="signals", ciphertext="c2VhbGVkIHNpZ25hbA=="),
    "signal.accepted.v1.json": SignalAccepted(
        signal_id=SIGNAL_ID,
        municipality="gm0363",
        category=Category.HUISELIJK_GEWELD,
        severity=Severity.HOOG,
        occurred_at=NOW,
        purpose="veiligheid_huiselijk_geweld",
        legal_basis=None,
        retention_days=365,
        classification=Classification.BBN2,
        subject_kind="person",
        subject_pseudonym=PSEUDONYM,
        publisher="gm0363",
        authenticated_by="signature",
        accepted_at=NOW,
        personal=EncryptedPayload(subject=PSEUDONYM, ciphertext="ZW5jcnlwdGVk"),
    ),
    "signal.rejected.v1.json": SignalRejected(
        signal_id=SIGNAL_ID,
        municipality="gm0363",
        channel="kafka",
        reason=RejectionReason.INVALID_BSN,
        errors=(
            FieldError(reason=RejectionReason.INVALID_BSN, location="subject.bsn", message="eleven-test"),
        ),
        rejected_at=NOW,
    ),
    "exchange.decided.v1.json": ExchangeDecided(
        signal_id=SIGNAL_ID,
        municipality="gm0363",
        recipient="veilig-thuis-amsterdam",
        category=Category.HUISELIJK_GEWELD,
        purpose="veiligheid_huiselijk_geweld",
        subject_pseudonym=PSEUDONYM,
        decision=Decision.PERMIT,
        reasons=("agreement covers category and purpose",),
        agreement_id="convenant-huiselijk-geweld",
        agreement_version=2,
        legal_basis="Wet verplichte meldcode",
        fields=("summary", "attributes.children_present"),
        decided_at=NOW,
        delivery_id=DELIVERY_ID,
    ),
    "signal.delivered.v1.json": SignalDelivered(
        delivery_id=DELIVERY_ID,
        municipality="gm0363",
        recipient="veilig-thuis-amsterdam",
        agreement_id="convenant-huiselijk-geweld",
        agreement_version=2,
        purpose="veiligheid_huiselijk_geweld",
        legal_basis="Wet verplichte meldcode",
        retention_days=365,
        fields=("summary",),
        partner_pseudonym="fedcba9876543210fedcba9876543210",
        payload=SealedPayload(recipient="veilig-thuis-amsterdam", ciphertext="c2VhbGVk"),
        delivered_at=NOW,
    ),
    "subject.datakey.v1.json": SubjectDataKey(
        subject_pseudonym=PSEUDONYM, municipality="gm0363", sealed_key=SEALED, issued_at=NOW
    ),
    "subject.erased.v1.json": SubjectErased(
        subject_pseudonym=PSEUDONYM,
        municipality="gm0363",
        requested_by="gm0363",
        actor="gm0363/f.fg",
        erased_at=NOW,
        had_data_key=True,
    ),
    "subject.erasure-notice.v1.json": ErasureNotice(
        notice_id=DELIVERY_ID,
        recipient="veilig-thuis-amsterdam",
        partner_pseudonym="fedcba9876543210fedcba9876543210",
        municipality="gm0363",
        erased_at=NOW,
    ),
    "subject.erasure-forwarded.v1.json": ErasureForwarded(
        subject_pseudonym=PSEUDONYM,
        recipient="veilig-thuis-amsterdam",
        municipality="gm0363",
        notice_id=DELIVERY_ID,
        forwarded_at=NOW,
    ),
    "subject.recipients.v1.json": SubjectRecipients(
        subject_pseudonym=PSEUDONYM,
        sequence=2,
        provided=(
            ProvidedTo(
                municipality="gm0363", recipients=("politie-eenheid-amsterdam", "veilig-thuis-amsterdam")
            ),
            ProvidedTo(municipality="gm0518", recipients=()),
        ),
    ),
    "audit.read.v1.json": AuditRead(
        reader="gm0363",
        actor="gm0363/f.fg",
        scope="gm0363",
        filter={"subject": PSEUDONYM},
        results=3,
        read_at=NOW,
    ),
    "audit.failover.v1.json": AuditFailover(
        previous_holder="audit-0", holder="audit-1", epoch=2, continued_from=3, taken_at=NOW
    ),
    "audit.checkpoint.v1.json": AuditCheckpoint(
        origin="safety-chain.local/audit-log",
        size=3,
        root_hash="N8sRvrjdZkTuXCHNU4LMx4HhMg9dSinjJpLSqFpgfRg=",
        note="safety-chain.local/audit-log\n3\nN8sRvrjdZkTuXCHNU4LMx4HhMg9dSinjJpLSqFpgfRg=\n\n"
        "\u2014 safety-chain.local/audit-log AAAA\n",
        issued_at=NOW,
    ),
}
AUDIT_FACT = AuditFact(
    event_type="nl.safetychain.signal.accepted.v1",
    event_id="e-1",
    event_time=NOW,
    source="gm0363",
    correlation_id="a" * 32,
    kafka_topic="t.signals.accepted.v1",
    kafka_partition=0,
    kafka_offset=0,
)
EXAMPLES["consent.agreement.proposal.v1.json"] = AgreementProposed(
    agreement=AGREEMENT_EXAMPLE,
    content_hash=AGREEMENT_EXAMPLE.content_hash,
    organisation="gm0363",
    proposed_by="gm0363/a.admin",
    proposed_at=NOW,
    widens=("veilig-thuis-amsterdam receives subject.name",),
    status=ProposalStatus.APPROVED,
    decided_by="gm0363/f.fg",
    decided_at=NOW,
)
"""One real instance per JSON Schema file but the submission (a dict, validated below)."""


def as_json(model: BaseModel) -> dict[str, Any]:
    value = json.loads(model.model_dump_json())
    assert isinstance(value, dict)
    return value


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return json_schemas()


@pytest.fixture(scope="module")
def rendered_once() -> Iterator[None]:
    """What the models render, rendered once for the tests of what the generator does with the
    files: it is deterministic (a test below) and held to the committed files."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(contract_docs, "rendered", functools.cache(contract_docs.rendered))
        yield


# --- The committed files are current ---------------------------------------------------------


def test_the_committed_json_schemas_match_the_models(schemas: dict[str, dict[str, Any]]) -> None:
    for name, schema in schemas.items():
        path = DOCS / "schemas" / name
        assert path.is_file(), f"docs/schemas/{name} is missing: {REGENERATE}"
        assert json.loads(path.read_text(encoding="utf-8")) == schema, f"docs/schemas/{name}: {REGENERATE}"
    committed = sorted(path.name for path in (DOCS / "schemas").glob("*.json"))
    assert committed == sorted(schemas), f"docs/schemas has files no model produces: {REGENERATE}"


def test_the_committed_asyncapi_document_is_current(asyncapi: dict[str, Any]) -> None:
    committed = safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert committed == asyncapi, f"docs/asyncapi.yaml: {REGENERATE}"


@pytest.mark.usefixtures("rendered_once")
def test_the_committed_files_are_exactly_what_the_generator_writes() -> None:
    assert stale(DOCS) == [], REGENERATE


@pytest.mark.usefixtures("rendered_once")
def test_the_generator_names_every_missing_changed_or_left_over_file(tmp_path: Path) -> None:
    # Given freshly generated documents
    write(tmp_path)
    assert stale(tmp_path) == []
    assert main(["--check", "--docs", str(tmp_path)]) == 0
    # When one is edited, one is gone and one no model produces is left behind
    (tmp_path / "schemas" / "signal.accepted.v1.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "asyncapi.yaml").unlink()
    (tmp_path / "schemas" / "signal.withdrawn.v0.json").write_text("{}\n", encoding="utf-8")
    # Then the check names all three and fails
    assert stale(tmp_path) == [
        "asyncapi.yaml",
        "schemas/signal.accepted.v1.json",
        "schemas/signal.withdrawn.v0.json",
    ]
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    # And regenerating puts everything right again
    write(tmp_path)
    assert stale(tmp_path) == []


def test_the_documents_are_deterministic() -> None:
    assert json_schemas() == json_schemas()
    assert asyncapi_document() == asyncapi_document()


# --- The JSON Schemas ------------------------------------------------------------------------


def test_every_event_type_has_a_schema_named_after_it(schemas: dict[str, dict[str, Any]]) -> None:
    expected = {schema_file(event) for event in event_models()}
    assert {"signal.accepted.v1.json", "exchange.decided.v1.json", "subject.erased.v1.json"} <= expected
    assert set(schemas) == expected | {"signal.submission.v1.json", "sealed-payload.v1.json"}


def test_every_schema_names_its_dialect_id_and_title(schemas: dict[str, dict[str, Any]]) -> None:
    for name, schema in schemas.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"https://safety-chain.nl/schemas/{name}"
        assert schema["title"]


def test_every_schema_has_a_real_example(schemas: dict[str, dict[str, Any]]) -> None:
    assert set(EXAMPLES) | {"signal.submission.v1.json"} == set(schemas)


def test_a_valid_huiselijk_geweld_submission_fits_the_submission_schema(
    schemas: dict[str, dict[str, Any]],
) -> None:
    submission = huiselijk_geweld_submission()
    signal_adapter.validate_python(submission)  # the model agrees it is valid
    assert fits(schemas["signal.submission.v1.json"], submission) == []


@pytest.mark.parametrize("submission", INVALID_SUBMISSIONS.values(), ids=INVALID_SUBMISSIONS.keys())
def test_an_invalid_submission_fits_neither_the_model_nor_the_schema(
    schemas: dict[str, dict[str, Any]], submission: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        signal_adapter.validate_python(submission)
    assert fits(schemas["signal.submission.v1.json"], submission) != []


def test_the_submission_schema_has_one_variant_per_category(schemas: dict[str, dict[str, Any]]) -> None:
    schema = schemas["signal.submission.v1.json"]
    assert schema["discriminator"]["propertyName"] == "category"
    assert set(schema["discriminator"]["mapping"]) == {category.value for category in Category}
    assert len(schema["oneOf"]) == len(Category)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_schema_fits_a_real_record_value_and_refuses_a_tampered_one(
    schemas: dict[str, dict[str, Any]], name: str
) -> None:
    schema, value = schemas[name], as_json(EXAMPLES[name])
    assert fits(schema, value) == []
    # an unknown field, or a missing required one, does not fit
    assert fits(schema, {**value, "unexpected": 1}) != []
    for required in schema["required"]:
        assert fits(schema, {k: v for k, v in value.items() if k != required}) != [], required


# --- The AsyncAPI document -------------------------------------------------------------------


def test_the_asyncapi_document_is_asyncapi_3(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"].startswith("3.")
    assert asyncapi["info"]["title"] == "safety-chain"
    assert asyncapi["info"]["version"] == "1.0.0"


def test_every_central_topic_has_a_channel_named_after_it(asyncapi: dict[str, Any]) -> None:
    for topic in CENTRAL_TOPICS:
        channel = asyncapi["channels"][topic.name]
        assert channel["address"] == topic.name
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions


def test_the_partner_topics_are_one_channel_with_a_partner_id_parameter(asyncapi: dict[str, Any]) -> None:
    address = PARTNER_TOPIC_TEMPLATE.format(partner_id="{partnerId}")
    (channel,) = [channel for channel in asyncapi["channels"].values() if channel["address"] == address]
    assert set(channel["parameters"]) == {"partnerId"}
    for example in channel["parameters"]["partnerId"]["examples"]:
        assert partner_id_of(PARTNER_TOPIC_TEMPLATE.format(partner_id=example)) == example
    assert set(asyncapi["channels"]) == {topic.name for topic in CENTRAL_TOPICS} | {
        "partner.partnerId.signals.v1"
    }


def test_every_channel_message_references_a_payload_schema(asyncapi: dict[str, Any]) -> None:
    for name, channel in asyncapi["channels"].items():
        assert channel["messages"], f"{name} carries no message"
        for reference in channel["messages"].values():
            message = _resolve(asyncapi, reference["$ref"])
            payload = _resolve(asyncapi, message["payload"]["$ref"])
            assert payload["type"] == "object", name
            assert message["payload"]["$ref"].startswith("#/components/schemas/")


def test_every_operation_sends_or_receives_a_message_of_its_own_channel(asyncapi: dict[str, Any]) -> None:
    for operation_id, operation in asyncapi["operations"].items():
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        _resolve(asyncapi, channel_ref)
        assert operation["messages"], operation_id
        for reference in operation["messages"]:
            assert reference["$ref"].startswith(channel_ref + "/messages/"), operation_id
            _resolve(asyncapi, reference["$ref"])


def test_the_path_of_a_signal_is_written_and_read_on_every_topic(asyncapi: dict[str, Any]) -> None:
    actions: dict[str, set[str]] = {}
    for operation in asyncapi["operations"].values():
        actions.setdefault(operation["channel"]["$ref"], set()).add(operation["action"])
    for name in asyncapi["channels"]:
        assert f"#/channels/{name}" in actions, f"no operation uses {name}"
    flow = ("signals.intake.v1", "signals.accepted.v1", "subjects.keys.v1", "exchange.decisions.v1")
    for name in (*flow, "partner.partnerId.signals.v1", "signals.rejected.v1", "subjects.erasure.v1"):
        assert actions[f"#/channels/{name}"] == {"send", "receive"}, name


def test_every_event_travels_with_its_cloudevents_type_and_model(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    for event in event_models():
        (message,) = [m for m in messages.values() if m["payload"]["$ref"].endswith(f"/{event.__name__}")]
        headers = _resolve(asyncapi, message["headers"]["$ref"])
        assert headers["properties"]["ce_type"]["const"] == event.event_type


def test_the_asyncapi_payload_schemas_fit_real_record_values(asyncapi: dict[str, Any]) -> None:
    for model in EXAMPLES.values():
        schema = asyncapi["components"]["schemas"][type(model).__name__]
        assert violations(asyncapi, schema, as_json(model)) == [], type(model).__name__


def test_a_message_headers_schema_refuses_a_wrong_type_an_undeclared_ce_header_and_no_signature(
    asyncapi: dict[str, Any],
) -> None:
    event = EXAMPLES["signal.accepted.v1.json"]
    envelope = Envelope(
        source=source_urn("99999999000000000001", "signals"),
        type=SignalAccepted.event_type,
        subject=PSEUDONYM,
        extensions=SignalAccepted.envelope_extensions(signalid=str(SIGNAL_ID)),
    )
    signed = sign_record(
        Ed25519PrivateKey.generate(), event.model_dump_json().encode(), envelope.to_headers()
    )
    headers = {name: value.decode() for name, value in signed}
    schema = _resolve(asyncapi, asyncapi["components"]["messages"]["SignalAccepted"]["headers"]["$ref"])
    assert violations(asyncapi, schema, headers) == []
    # Headers outside the signature (FastStream adds correlation_id) are allowed, and meaningless.
    assert violations(asyncapi, schema, {**headers, "correlation_id": "x"}) == []
    assert violations(asyncapi, schema, {**headers, "ce_type": "nl.safetychain.other.v1"}) != []
    assert violations(asyncapi, schema, {**headers, "ce_purpose": "x"}) != []
    assert violations(asyncapi, schema, {**headers, "ce_source": "signals"}) != []  # not an NL GOV source
    for required in (SIGNATURE_HEADER, KEY_ID_HEADER, "ce_signalid", "ce_subject", "ce_time"):
        assert violations(asyncapi, schema, {k: v for k, v in headers.items() if k != required}) != []


def test_the_local_and_the_production_servers_are_described(asyncapi: dict[str, Any]) -> None:
    servers = asyncapi["servers"]
    assert servers["local"] == {**servers["local"], "host": "127.0.0.1:9092", "protocol": "kafka"}
    production = servers["production"]
    assert "SCRAM" in production["description"]
    (security,) = production["security"]
    assert _resolve(asyncapi, security["$ref"])["type"] == "scramSha512"


# --- The documented headers are the headers the producers write --------------------------------


class _CapturingProducer:
    """Stands in for an aiokafka producer: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, Headers]] = []

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Headers | None = None
    ) -> None:
        self.sent.append((topic, value, list(headers or [])))


class _CapturingGateway:
    """Stands in for the signals service's KafkaGateway: keeps the records it would have sent."""

    def __init__(self, writer: RecordWriter) -> None:
        self._writer = writer
        self.sent: list[OutgoingRecord] = []

    async def publish(self, outgoing: Outgoing) -> None:
        self.sent.append(self._writer.record(outgoing))


def produced_records(root: Path, config_dir: Path) -> list[Headers]:
    """The headers of real records, each built by the producer's own code path: the publisher SDK
    and the HTTP intake (intake records), the intake pipeline (data key, accepted, rejected),
    the consent enforcer (decisions, deliveries, dead letters), consent's state publisher
    (agreements, directives), the partner SDK (receipts, opened and refused) and the erasure."""
    harness = Harness(root, Parties.made_in(root / "keys", config_dir))
    keys, registry = harness.keys, harness.registry
    produced: list[Headers] = []
    # Intake records, by the publisher SDK and as the HTTP intake writes them.
    submission = valid_submission()
    value, headers = harness.record(submission)
    produced.append(headers)
    produced.append(
        intake_record(
            json.dumps(submission).encode(),
            registry.source("gm0363"),
            keys.ed25519_private("signals"),
            keys.x25519_public("signals"),
            extensions={"signalid": str(uuid.uuid4()), "channel": "http"},
        )[1]
    )
    # The intake pipeline: accepted (with its data key), and rejections with and without a signal id.
    outcome = harness.process(value, headers)
    assert outcome.accepted is not None
    produced += [record.headers for record in outcome.records]
    produced += [record.headers for record in harness.process(value, headers).records]  # a duplicate
    produced += [record.headers for record in harness.process(b"{}", []).records]  # no envelope at all
    # Consent: a decision per partner and a delivery per permit, and a dead letter.
    enforcer = Enforcer(registry, keys.secret("partner-pseudonyms"))
    consent = RecordWriter(keys.ed25519_private("consent"), registry.source("consent"), "t.")
    accepted = outcome.accepted
    data_key = harness.keystore.data_key(accepted.municipality, accepted.subject_pseudonym)
    agreements = load_agreements(config_dir / "agreements")
    enforced = consent.records(enforcer.enforce(accepted, "a" * 32, data_key, agreements))
    produced += [record.headers for record in enforced]
    unreadable = cast(ConsumerRecord, SimpleNamespace(topic="t.signals.accepted.v1", partition=0, offset=1))
    produced.append(consent.record(_dead_letter(unreadable, RejectionReason.MALFORMED_EVENT, "x")).headers)
    # Consent's state topics.
    state = SignedPublisher(
        CommonSettings(topic_prefix="t."), keys.ed25519_private("consent"), registry.source("consent")
    )
    state_producer = _CapturingProducer()
    state._producer = cast(AIOKafkaProducer, state_producer)
    agreement = EXAMPLES["consent.agreement.v1.json"]
    directives = EXAMPLES["consent.directives.v1.json"]
    assert isinstance(agreement, AgreementPublished) and isinstance(directives, SubjectDirectives)
    asyncio.run(state.publish("a", agreement))
    asyncio.run(state.publish(PSEUDONYM, directives, subject=PSEUDONYM))
    proposal = EXAMPLES["consent.agreement.proposal.v1.json"]
    assert isinstance(proposal, AgreementProposed)
    asyncio.run(state.publish("a", proposal))
    produced += [headers for _, _, headers in state_producer.sent]
    # The audit service's record of a read (services/audit/http.py), about a subject and not.
    read_log = SignedPublisher(
        CommonSettings(topic_prefix="t."), keys.ed25519_private("audit"), registry.source("audit")
    )
    read_producer = _CapturingProducer()
    read_log._producer = cast(AIOKafkaProducer, read_producer)
    read = EXAMPLES["audit.read.v1.json"]
    assert isinstance(read, AuditRead)
    asyncio.run(read_log.publish("gm0363", read, subject=PSEUDONYM, correlation_id="d" * 32))
    asyncio.run(read_log.publish("gm0363", read))
    # ...and its checkpoints (services/audit/log/checkpoints.py), published the same way.
    log_store = InMemoryAuditStore()
    log_store.append(AUDIT_FACT)

    async def publish_checkpoint(checkpoint: AuditCheckpoint) -> None:
        await read_log.publish("audit", checkpoint)

    issuer = CheckpointIssuer(
        log_store, Signer("t.local/log", keys.ed25519_private("audit")), publish_checkpoint
    )
    asyncio.run(issuer.issue(1))
    # ...and the fact of a failover (services/audit/log/leader.py), the same way.
    takeover = Takeover(Lease("audit-1", 2, 30.0), Lease("audit-0", 1, 10.0), continued_from=1)
    asyncio.run(read_log.publish("audit", failover_of(takeover, NOW)))
    produced += [headers for _, _, headers in read_producer.sent]
    # The partner SDK's receipts: for a delivery it opened, and for a record it refused.
    (delivery, *_) = [record for record in enforced if record.topic.startswith("t.partner.")]
    partner = partner_id_of(delivery.topic, "t.")
    assert partner is not None and delivery.value is not None
    identity = PartnerIdentity(partner, keys.x25519_private(partner), keys.ed25519_private(partner))
    client = PartnerClient(identity, registry.ed25519_public("consent"), {}, "t.")
    opened = open_delivery(
        partner, identity.decryption_key, registry.ed25519_public("consent"), delivery.headers, delivery.value
    )
    receipts = _CapturingProducer()
    provenance = DeliveryProvenance(topic=delivery.topic, partition=0, offset=0)
    acknowledge = client._acknowledge
    asyncio.run(acknowledge(cast(AIOKafkaProducer, receipts), provenance, signal=opened))
    asyncio.run(acknowledge(cast(AIOKafkaProducer, receipts), provenance, refused=DeliveryRefused("x")))
    # Consent's memory of recipients, and an erasure forwarded to that partner as a notice.
    provided = {accepted.municipality: frozenset({partner})}
    remembered = enforcer.remembered_recipients(accepted.subject_pseudonym, 1, provided, "c" * 32)
    produced.append(consent.record(remembered).headers)
    erased = EXAMPLES["subject.erased.v1.json"]
    assert isinstance(erased, SubjectErased)
    forwarded = consent.records(enforcer.erasure_notices(erased, (partner,), "c" * 32))
    produced += [record.headers for record in forwarded]
    (notice_record,) = [record for record in forwarded if record.topic.startswith("t.partner.")]
    assert notice_record.value is not None
    notice = open_notice(
        partner, registry.ed25519_public("consent"), notice_record.headers, notice_record.value
    )
    asyncio.run(acknowledge(cast(AIOKafkaProducer, receipts), provenance, notice=notice))
    produced += [headers for _, _, headers in receipts.sent]
    # An erasure: the erasure event (and the unsigned key tombstone).
    gateway = _CapturingGateway(harness.writer)
    erasure = Erasure(harness.keystore, cast(KafkaGateway, gateway))
    asyncio.run(erasure.erase(accepted.subject_pseudonym, "gm0363", "b" * 32))
    produced += [record.headers for record in gateway.sent if record.value is not None]
    return produced


def documented_headers(root: dict[str, Any], schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(every header name the schema lists, the required ones), through $ref and allOf."""
    if "$ref" in schema:
        return documented_headers(root, _resolve(root, schema["$ref"]))
    listed, required = set(schema.get("properties", {})), set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more_listed, more_required = documented_headers(root, part)
        listed |= more_listed
        required |= more_required
    return listed, required


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory, project_config_dir: Path) -> list[Headers]:
    return produced_records(tmp_path_factory.mktemp("producers"), project_config_dir)


def test_the_documented_headers_of_each_message_are_exactly_those_its_producers_write(
    asyncapi: dict[str, Any], produced: list[Headers]
) -> None:
    messages = asyncapi["components"]["messages"]
    by_type: dict[str, str] = {}
    for name, message in messages.items():
        ce_type = _const_ce_type(asyncapi, message["headers"])
        if ce_type is not None:
            by_type[ce_type] = name
    written: dict[str, set[str]] = {}
    for headers in produced:
        names = [name for name, _ in headers]
        ce_type = dict(headers)["ce_type"].decode()
        name = by_type[ce_type]
        listed, required = documented_headers(asyncapi, messages[name]["headers"])
        meaningful = {header for header in names if header.startswith("ce_") or header == "content-type"}
        # Nothing is written that the document does not list, nothing it requires is left out.
        assert meaningful <= listed, (name, sorted(meaningful - listed))
        assert required <= set(names), (name, sorted(required - set(names)))
        assert violations(asyncapi, messages[name]["headers"], {k: v.decode() for k, v in headers}) == []
        written.setdefault(name, set()).update(meaningful)
    # Every message that travels is produced here, and every header it lists is written by some producer.
    assert set(written) == set(by_type.values())
    for name, sent in written.items():
        listed, _ = documented_headers(asyncapi, messages[name]["headers"])
        assert listed == sent, (name, sorted(listed - sent))


def _const_ce_type(root: dict[str, Any], schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return _const_ce_type(root, _resolve(root, schema["$ref"]))
    const = schema.get("properties", {}).get("ce_type", {}).get("const")
    for part in schema.get("allOf", []):
        const = const or _const_ce_type(root, part)
    return const if isinstance(const, str) else None


def test_every_header_the_producers_write_is_signed(produced: list[Headers]) -> None:
    for headers in produced:
        if any(name == SIGNATURE_HEADER for name, _ in headers):
            unsigned = {name for name, _ in headers if not is_signed_header(name)}
            assert unsigned == {SIGNATURE_HEADER, KEY_ID_HEADER}, unsigned
