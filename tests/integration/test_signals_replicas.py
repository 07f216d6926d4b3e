"""Two replicas of the signals service on the real broker and one PostgreSQL: an HTTP caller
gets the committed verdict whichever replica it reached, also when the other one decided it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from devstack.kafka import KafkaAccess
from devstack.keys import development_issuer, prepare_development_keys
from services.signals.app import create_app
from services.signals.settings import SignalsSettings
from shared.contracts.events import SignalAccepted
from shared.contracts.topics import SIGNALS_INTAKE
from shared.plumbing.policy import Role
from shared.plumbing.transactional import TransactionalProcessor
from tests.e2e.stack import read_all
from tests.polling import eventually_async
from tests.unit.test_signal_contract import valid_submission

pytestmark = pytest.mark.kafka


@dataclass
class Replica:
    client: httpx.AsyncClient
    processor: TransactionalProcessor

    def owns(self, partition: int) -> bool:
        return any(tp.partition == partition for tp in self.processor.consumer.assignment())

    async def post(self, body: dict[str, Any], token: str) -> httpx.Response:
        return await self.client.post(
            "/v1/signals", json=body, headers={"authorization": f"Bearer {token}"}, timeout=60
        )


@dataclass
class Replicas:
    first: Replica
    second: Replica
    settings: SignalsSettings


@pytest.fixture
async def replicas(
    kafka_access: KafkaAccess, kafka_prefix: str, postgres_url: str, tmp_path: Path
) -> AsyncIterator[Replicas]:
    keys_dir = tmp_path / "keys"  # one service, one set of keys, whichever replica
    async with AsyncExitStack() as stack:
        started = []
        for instance in ("0", "1"):
            settings = SignalsSettings(
                **kafka_access.settings("signals"),
                instance_id_setting=instance,
                topic_prefix=kafka_prefix,
                keys_dir=keys_dir,
                signals_database_url=postgres_url,
                replicas=2,
                verdict_timeout_seconds=30.0,
            )
            prepare_development_keys(settings.keys_dir, settings.config_dir)
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signals")
            )
            started.append(Replica(client, app.state.processor))

        async def shared_out() -> bool:
            owned = [{tp for tp in r.processor.consumer.assignment()} for r in started]
            return all(owned) and len(owned[0] | owned[1]) == SIGNALS_INTAKE.partitions

        await eventually_async(shared_out, what="both replicas own intake partitions", timeout=90)
        yield Replicas(started[0], started[1], settings)


def _partition_of(signal_id: str) -> int:
    every = list(range(SIGNALS_INTAKE.partitions))
    return int(DefaultPartitioner()(signal_id.encode(), every, every))


def _signal_decided_by(owner: Replica) -> str:
    """A signal id whose intake record lands on a partition `owner` processes."""
    while not owner.owns(_partition_of(signal_id := str(uuid.uuid4()))):
        pass
    return signal_id


async def test_a_caller_gets_the_verdict_on_the_replica_it_reached_whoever_decided(
    replicas: Replicas, kafka_access: KafkaAccess, tmp_path: Path
) -> None:
    first, second = replicas.first, replicas.second
    token = development_issuer(tmp_path / "keys").issue("gm0363", [Role.PUBLISHER], "signals")
    requests = []
    for number in range(8):
        reached, decider = (first, second) if number % 2 == 0 else (second, first)
        signal_id = _signal_decided_by(decider)
        subject = {"kind": "person", "bsn": "999990019", "name": f"Persoon {number}"}
        requests.append((reached, signal_id, valid_submission(signal_id=signal_id, subject=subject)))

    answers = await asyncio.gather(*(reached.post(body, token) for reached, _, body in requests))
    # Every caller got the committed verdict, none a 503, though another replica decided each.
    assert [answer.status_code for answer in answers] == [202] * len(requests), [a.text for a in answers]
    assert [answer.json()["signal_id"] for answer in answers] == [signal_id for _, signal_id, _ in requests]
    accepted = await read_all(kafka_access.client_options(), replicas.settings.topic("signals.accepted.v1"))
    ids = [str(SignalAccepted.model_validate_json(record.value).signal_id) for record in accepted]
    assert sorted(ids) == sorted(signal_id for _, signal_id, _ in requests)  # each once

    # The replicas keep one ledger: a repeat on the other replica gets the first result.
    _, signal_id, body = requests[0]
    again = await second.post(body, token)
    assert again.status_code == 409 and again.json()["first_result"]["signal_id"] == signal_id
