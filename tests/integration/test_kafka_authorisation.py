"""The broker enforces the topic table: every principal, topic and operation on the real
authorizer.

The session's broker authenticates (SASL/SCRAM) and authorises (StandardAuthorizer, nothing
allowed without an ACL), provisioned as `make run` provisions it. Each principal of the registry
tries to describe, read and write every topic of a fresh prefix, to join its own and others'
consumer groups and to take transactional ids: allowed exactly where the topic table
(shared/contracts/topics.py) says, an authorisation error everywhere else. The expectation is computed
from the table itself, not from shared/plumbing/acls.py, so a wrong derivation fails here.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from devstack.kafka import KafkaAccess
from devstack.provision import provision
from shared.contracts.topics import TRANSACTIONAL, Party, TopicSpec, partner_id_of, partner_topic
from shared.contracts.topics import all_topics as every_topic
from shared.plumbing.acls import Deployment, Principal
from shared.plumbing.kafka_admin import ClusterAdmin, admin_config
from tests.conftest import fresh_prefix
from tests.polling import eventually_async

pytestmark = pytest.mark.kafka

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEPLOYMENT = Deployment.from_registry(CONFIG)


def all_topics() -> list[TopicSpec]:
    return every_topic(DEPLOYMENT.partner_ids)


def may(principal: Principal, spec: TopicSpec, action: str) -> bool:
    """What the table says, read directly: producers write, consumers read; a partner topic is
    the partner's own only; describing comes with either."""
    owner = partner_id_of(spec.name)
    if principal.party is Party.PARTNER and owner is not None and owner != principal.organisation:
        return False
    reads, writes = principal.party in spec.consumers, principal.party in spec.producers
    return {"read": reads, "write": writes, "describe": reads or writes}[action]


async def visible_topics(options: dict[str, Any], prefix: str) -> set[str]:
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        return {topic for topic in await admin.list_topics() if topic.startswith(prefix)}
    finally:
        await admin.close()


async def can_write(producer: AIOKafkaProducer, topic: str) -> bool:
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"authorisation probe", key=b"probe"), 20)
    except TopicAuthorizationFailedError:
        return False
    return True


async def can_read(consumer: AIOKafkaConsumer, topic: str) -> bool:
    """Fetch the probe record: the broker refuses a fetch (TopicAuthorizationFailed) or, for a
    topic the principal may not even describe, the metadata that would route one."""
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)  # the probe record (no offset lookup: it waits out a refusal)

    async def fetched_or_refused() -> str | None:
        try:
            records = await consumer.getmany(partition, timeout_ms=300)
        except TopicAuthorizationFailedError:
            return "refused"
        if records.get(partition):
            return "fetched"
        if topic in consumer._client.cluster.unauthorized_topics:
            return "refused"
        return None

    answer = await eventually_async(
        fetched_or_refused, what=f"{topic}: the probe record fetched or refused", timeout=20, interval=0
    )
    return answer == "fetched"


@pytest.fixture(scope="module", autouse=True)
def authenticating_cluster(kafka_access: KafkaAccess) -> None:
    if kafka_access.credentials_dir is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names a cluster without credentials: no authorizer to test")


@pytest.fixture(scope="module")
def probed_prefix(kafka_access: KafkaAccess) -> str:
    """A provisioned prefix whose every topic holds one record on partition 0 (so an allowed
    fetch returns at once)."""
    prefix = fresh_prefix()

    async def prepare() -> None:
        await provision(kafka_access, CONFIG, prefix)
        producer = AIOKafkaProducer(**kafka_access.client_options())
        await producer.start()
        try:
            for spec in all_topics():
                await producer.send_and_wait(spec.prefixed(prefix), b"seed", key=b"seed", partition=0)
        finally:
            await producer.stop()

    asyncio.run(prepare())
    return prefix


@pytest.mark.parametrize("principal", DEPLOYMENT.principals, ids=lambda p: p.user)
def test_each_principal_may_do_exactly_what_the_topic_table_says(
    kafka_access: KafkaAccess, probed_prefix: str, principal: Principal
) -> None:
    options = kafka_access.client_options(principal.user)

    async def probe() -> dict[tuple[str, str], bool]:
        outcome: dict[tuple[str, str], bool] = {}
        described = await visible_topics(options, probed_prefix)
        producer = AIOKafkaProducer(**options, request_timeout_ms=15_000)
        consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
        await producer.start()
        await consumer.start()
        try:
            for spec in all_topics():
                topic = spec.prefixed(probed_prefix)
                outcome[spec.name, "describe"] = topic in described
                outcome[spec.name, "read"] = await can_read(consumer, topic)
                outcome[spec.name, "write"] = await can_write(producer, topic)
        finally:
            await consumer.stop()
            await producer.stop()
        return outcome

    found = asyncio.run(probe())
    expected = {
        (spec.name, action): may(principal, spec, action)
        for spec in all_topics()
        for action in ("describe", "read", "write")
    }
    wrong = {key: allowed for key, allowed in found.items() if expected[key] != allowed}
    assert not wrong, f"{principal.user}: allowed/refused against the table: {wrong}"


def test_the_matrix_includes_the_refusals_that_matter() -> None:
    """The cases the trust model rests on, named, so a table change cannot silently allow them."""
    partner = DEPLOYMENT.principal("riec-amsterdam")
    municipality = DEPLOYMENT.principal("gm0363")
    topics = {spec.name: spec for spec in all_topics()}
    other_partner_topic = partner_topic("veilig-thuis-amsterdam").name
    assert not may(partner, topics[other_partner_topic], "read")
    assert not may(partner, topics["signals.accepted.v1"], "read")
    assert not may(partner, topics["signals.accepted.v1"], "write")
    assert not may(partner, topics["consent.agreements.v1"], "write")
    assert may(partner, topics[partner_topic("riec-amsterdam").name], "read")
    assert may(partner, topics["exchange.receipts.v1"], "write")
    for name, spec in topics.items():
        if partner_id_of(name) is not None:
            assert not may(municipality, spec, "read"), name
    assert not may(municipality, topics["signals.accepted.v1"], "write")
    assert may(municipality, topics["signals.intake.v1"], "write")


async def _group_allowed(options: dict[str, Any], group: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(**options, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.committed(TopicPartition(topic, 0))
    except GroupAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()
    return True


def test_a_principal_joins_its_own_consumer_groups_and_no_one_elses(
    kafka_access: KafkaAccess, probed_prefix: str
) -> None:
    readers = [p for p in DEPLOYMENT.principals if p.party is not Party.MUNICIPALITY]

    async def probe() -> dict[tuple[str, str], bool]:
        outcome = {}
        for principal in readers:
            # a topic it may read, so only the group decides
            topic = next(
                spec.prefixed(probed_prefix) for spec in all_topics() if may(principal, spec, "read")
            )
            options = kafka_access.client_options(principal.user)
            for owner in readers:
                for group in (owner.organisation, f"{owner.organisation}.worker"):
                    outcome[principal.user, group] = await _group_allowed(
                        options, f"{probed_prefix}{group}", topic
                    )
        return outcome

    found = asyncio.run(probe())
    wrong = {
        key: allowed
        for key, allowed in found.items()
        if allowed != (key[1].split(".")[0] == DEPLOYMENT.principal(key[0]).organisation)
    }
    assert not wrong, wrong


async def _transactions_allowed(options: dict[str, Any], transactional_id: str) -> bool:
    producer = AIOKafkaProducer(**options, transactional_id=transactional_id)
    try:
        await producer.start()
    except TransactionalIdAuthorizationFailed:
        return False
    finally:
        await producer.stop()
    return True


def test_only_a_transactional_service_takes_its_own_transactional_ids(
    kafka_access: KafkaAccess, probed_prefix: str
) -> None:
    services = [p for p in DEPLOYMENT.principals if p.party in TRANSACTIONAL]
    assert {p.user for p in services} == {"signals", "consent"}
    candidates = [
        DEPLOYMENT.principal(user) for user in ("signals", "consent", "audit", "gm0363", "riec-amsterdam")
    ]

    async def probe() -> dict[tuple[str, str], bool]:
        return {
            (principal.user, service.user): await _transactions_allowed(
                kafka_access.client_options(principal.user), f"{probed_prefix}{service.user}-0"
            )
            for principal in candidates
            for service in services
        }

    found = asyncio.run(probe())
    assert found == {(p, s): p == s for p, s in found}, found


def test_an_unauthenticated_client_or_a_wrong_password_gets_nowhere(kafka_access: KafkaAccess) -> None:
    async def connect(options: dict[str, Any]) -> None:
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=5_000)
        try:
            await asyncio.wait_for(admin.start(), 15)
            await asyncio.wait_for(admin.list_topics(), 15)
        finally:
            await admin.close()

    plain = {"bootstrap_servers": kafka_access.bootstrap_servers}
    with pytest.raises((KafkaError, KafkaConnectionError, asyncio.TimeoutError, OSError)):
        asyncio.run(connect(plain))
    wrong = {**kafka_access.client_options("gm0363"), "sasl_plain_password": "not-the-password"}
    with pytest.raises((KafkaError, KafkaConnectionError, asyncio.TimeoutError, OSError)):
        asyncio.run(connect(wrong))
    unknown = {**kafka_access.client_options("gm0363"), "sasl_plain_username": "nobody"}
    with pytest.raises((KafkaError, KafkaConnectionError, asyncio.TimeoutError, OSError)):
        asyncio.run(connect(unknown))
    asyncio.run(connect(kafka_access.client_options("gm0363")))  # the genuine credential does connect


def test_the_tls_listener_authenticates_with_the_local_ca(
    kafka_access: KafkaAccess, probed_prefix: str
) -> None:
    assert kafka_access.tls_bootstrap_servers and kafka_access.ca_file
    base = {
        **kafka_access.client_options("gm0363"),
        "bootstrap_servers": kafka_access.tls_bootstrap_servers,
        "security_protocol": "SASL_SSL",
    }

    async def publish(context: ssl.SSLContext) -> None:
        producer = AIOKafkaProducer(**base, ssl_context=context)
        try:
            await asyncio.wait_for(producer.start(), 15)
            await producer.send_and_wait(f"{probed_prefix}signals.intake.v1", b"over tls")
        finally:
            await producer.stop()

    asyncio.run(publish(ssl.create_default_context(cafile=str(kafka_access.ca_file))))
    untrusting = ssl.create_default_context()  # the system CAs do not know the local CA
    with pytest.raises((KafkaError, KafkaConnectionError, asyncio.TimeoutError, OSError)):
        asyncio.run(publish(untrusting))


def test_applying_the_acls_again_changes_nothing_and_removes_what_is_not_derived(
    kafka_access: KafkaAccess, probed_prefix: str
) -> None:
    admin = ClusterAdmin(kafka_access.client_options())
    again = admin.apply_acls(DEPLOYMENT.principals, DEPLOYMENT.partner_ids, probed_prefix)
    assert (again.created, again.deleted) == ([], []) and again.kept > 0
    # A stray grant (someone allowed a partner to read the accepted signals by hand) is removed.
    stray = AclBinding(
        ResourceType.TOPIC,
        f"{probed_prefix}signals.accepted.v1",
        ResourcePatternType.LITERAL,
        "User:riec-amsterdam",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    by_hand = AdminClient(admin_config(kafka_access.client_options()))
    for future in by_hand.create_acls([stray]).values():
        future.result()
    repaired = admin.apply_acls(DEPLOYMENT.principals, DEPLOYMENT.partner_ids, probed_prefix)
    assert [binding[2] for binding in repaired.deleted] == [f"{probed_prefix}signals.accepted.v1"]
    assert repaired.created == []
