"""Where the HTTP intake waits for the pipeline's verdict on the record it submitted.

The intake processor posts the outcome of every record it committed under its provenance; the
HTTP handler that wrote the record waits for it. Both run in one process: when another replica
consumed the record, the handler stops waiting after SC_VERDICT_TIMEOUT_SECONDS and answers 503
verdict-pending with Retry-After (ADR 0006). Outcomes nobody waits for (Kafka intake records)
are forgotten oldest first beyond _MAX_PENDING.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from services.signals.intake import Outcome

_MAX_PENDING = 10_000


class OutcomeBoard:
    def __init__(self) -> None:
        self._futures: OrderedDict[str, asyncio.Future[Outcome]] = OrderedDict()

    def _future(self, provenance: str) -> asyncio.Future[Outcome]:
        future = self._futures.get(provenance)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._futures[provenance] = future
            while len(self._futures) > _MAX_PENDING:  # outcomes nobody waits for: forget the oldest
                self._futures.popitem(last=False)
        return future

    def post(self, provenance: str, outcome: Outcome) -> None:
        future = self._future(provenance)
        if not future.done():
            future.set_result(outcome)

    async def wait(self, provenance: str, seconds: float) -> Outcome | None:
        future = self._future(provenance)
        try:
            return await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            return None
        finally:
            self._futures.pop(provenance, None)
