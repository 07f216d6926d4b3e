"""The AsyncAPI document's operations are the topic table's producers and consumers.

shared/contracts/topics.py declares per topic who produces it, who consumes it and which messages it
carries; shared/plumbing/asyncapi.py derives one operation per (party, topic, message) from it and
keeps only the prose per operation. These tests read the generated document and compare it
with the table directly, and show that a table and descriptions that disagree are named and
not documented.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import shared.plumbing.asyncapi
from shared.contracts.topics import CENTRAL_TOPICS, SIGNALS_ACCEPTED, SIGNALS_REJECTED, Party, partner_topic
from shared.plumbing.asyncapi import DESCRIPTIONS, DOCUMENTED_TOPICS, asyncapi_document, drift, operations


def table_operations() -> set[tuple[str, str, str, str]]:
    """(channel, action, party, message) for every producer and every consumer of every
    message in the table, read straight from shared.contracts.topics."""
    declared: set[tuple[str, str, str, str]] = set()
    for spec in (*CENTRAL_TOPICS, partner_topic("{partnerId}")):
        channel = spec.name.replace("{", "").replace("}", "")
        for message in spec.messages:
            declared |= {(channel, "send", party.value, message.name) for party in spec.producers}
            declared |= {(channel, "receive", party.value, message.name) for party in spec.consumers}
    return declared


def test_the_operations_of_every_channel_are_the_tables_producers_and_consumers_of_its_messages(
    asyncapi: dict[str, Any],
) -> None:
    documented: set[tuple[str, str, str, str]] = set()
    for operation_id, operation in asyncapi["operations"].items():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        (message_ref,) = operation["messages"]
        message = message_ref["$ref"].rsplit("/", 1)[1]
        party = operation_id.split(".", 1)[0]
        # The id says who does what: <party>.<action><message>.
        assert operation_id == f"{party}.{operation['action']}{message}"
        assert operation["description"].strip(), operation_id
        documented.add((channel, operation["action"], party, message))
    assert len(documented) == len(asyncapi["operations"])
    assert documented == table_operations()
    # Among them what only the table says: the HTTP intake writes the intake topic, and reads it;
    # a partner reads (only) its own topic.
    assert ("signals.intake.v1", "send", "signals", "SignalSubmitted") in documented
    assert ("signals.intake.v1", "receive", "signals", "SignalSubmitted") in documented
    assert ("partner.partnerId.signals.v1", "receive", "partner", "SignalDelivered") in documented


def test_every_operation_of_the_table_has_a_description_and_every_description_an_operation() -> None:
    assert drift(operations(), DESCRIPTIONS) == []
    assert {operation.id for operation in operations()} == set(DESCRIPTIONS)


def test_a_table_that_drifts_from_the_descriptions_is_named() -> None:
    # A consumer the descriptions do not know (a partner reading accepted signals) ...
    widened = dataclasses.replace(SIGNALS_ACCEPTED, consumers=(*SIGNALS_ACCEPTED.consumers, Party.PARTNER))
    # ... and a producer the table no longer has (consent no longer dead-letters).
    narrowed = dataclasses.replace(SIGNALS_REJECTED, producers=(Party.SIGNALS,))
    replaced = {SIGNALS_ACCEPTED.name: widened, SIGNALS_REJECTED.name: narrowed}
    topics = [replaced.get(spec.name, spec) for spec in DOCUMENTED_TOPICS]
    problems = drift(operations(topics), DESCRIPTIONS)
    assert len(problems) == 2, problems
    assert problems[0].startswith(
        "partner.receiveSignalAccepted: partner receives SignalAccepted on signals.accepted.v1"
    )
    assert problems[1].startswith("consent.sendSignalRejected: DESCRIPTIONS describes it, but")
    # An empty description is no description.
    assert drift(operations(), {**DESCRIPTIONS, "audit.sendAuditRead": " "}) == [
        "audit.sendAuditRead: audit sends AuditRead on audit.reads.v1 (shared/contracts/topics.py), but"
        " DESCRIPTIONS does not describe it"
    ]
    # One message on two topics would give two operations one id.
    copy = dataclasses.replace(SIGNALS_ACCEPTED, name="signals.accepted.v2")
    assert "signals.sendSignalAccepted: two operations have this id" in drift(
        operations([SIGNALS_ACCEPTED, copy]), DESCRIPTIONS
    )


def test_the_document_is_not_built_while_the_table_and_the_descriptions_disagree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    undescribed = {key: text for key, text in DESCRIPTIONS.items() if key != "consent.sendSignalDelivered"}
    monkeypatch.setattr(shared.plumbing.asyncapi, "DESCRIPTIONS", undescribed)
    with pytest.raises(ValueError, match=r"consent\.sendSignalDelivered: consent sends SignalDelivered"):
        asyncapi_document()
    monkeypatch.setattr(
        shared.plumbing.asyncapi, "DESCRIPTIONS", {**DESCRIPTIONS, "audit.sendSignalAccepted": "x"}
    )
    with pytest.raises(ValueError, match=r"audit\.sendSignalAccepted: DESCRIPTIONS describes it"):
        asyncapi_document()


def test_the_local_server_authenticates_with_scram(asyncapi: dict[str, Any]) -> None:
    local = asyncapi["servers"]["local"]
    assert local["host"] == "127.0.0.1:9092"
    assert "SASL/SCRAM-SHA-512 (SASL_PLAINTEXT)" in local["description"]
    assert "development key ceremony" in local["description"]
