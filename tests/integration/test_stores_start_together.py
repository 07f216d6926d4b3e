"""Replicas that start at the same moment against one empty PostgreSQL database each find their
store's schema made, by one of them, and none fails on a table another just created."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from services.audit.log.sql_store import SqlAuditStore
from services.signals.keystore import SqlKeyStore
from services.signals.ledger import SqlSignalLedger
from tests.conftest import fresh_database

REPLICAS = 4


def test_replicas_starting_together_create_each_store_schema_once(postgres_url: str) -> None:
    database = fresh_database(postgres_url)
    ready = threading.Barrier(REPLICAS)

    def start_replica(_: int) -> bool:
        ready.wait()  # every replica opens its stores at once, as a StatefulSet's pods do
        audit = SqlAuditStore(database)
        keys = SqlKeyStore(database, os.urandom(32))
        ledger = SqlSignalLedger(database)
        answered = audit.ping() and keys.ping() and ledger.ping()
        for engine in (audit.engine, keys.engine):
            engine.dispose()
        return answered

    with ThreadPoolExecutor(REPLICAS) as replicas:
        assert list(replicas.map(start_replica, range(REPLICAS))) == [True] * REPLICAS
