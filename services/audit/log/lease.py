"""The sequencer's lease: which replica of the audit service may append to the log (ADR 0022).

One lease per store: its holder (a replica's SC_INSTANCE_ID), its epoch and when it expires.
Whoever takes it raises the epoch by one; the holder renews it well before it expires. Every
batch the holder appends names its epoch, and the store checks it in the append's own
transaction (store.py `append_batch`), so a holder that lost the lease (paused, partitioned)
cannot append once another took it: its append raises LeaseLostError and nothing of it is kept.

Clocks decide only *when* a takeover may happen (a replica whose clock runs ahead takes over
early); the epoch decides who may append, so two writers are impossible whatever the clocks say.
"""

from __future__ import annotations

from dataclasses import dataclass


class LeaseLostError(RuntimeError):
    """The lease is no longer at the epoch an append named: another replica took it."""


@dataclass(frozen=True)
class Lease:
    holder: str  # the replica's stable id (settings.instance_id)
    epoch: int  # 1 for the first holder, one more at each taking
    expires_at: float  # seconds since the Unix epoch

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def renewed(self, now: float, seconds: float) -> Lease:
        """The same lease, held until `now + seconds`."""
        return Lease(self.holder, self.epoch, now + seconds)

    def released(self) -> Lease:
        """The same lease, expired: a standby may take it at once."""
        return Lease(self.holder, self.epoch, 0.0)


def may_take(current: Lease | None, holder: str, now: float) -> bool:
    """Whether `holder` may take the lease at `now`: nobody ever held it, it expired, or it is
    `holder`'s own (a restarted replica fences its former self at once instead of waiting)."""
    return current is None or current.expired(now) or current.holder == holder


def taken(current: Lease | None, holder: str, now: float, seconds: float) -> Lease:
    """The lease `holder` holds once it took `current`: the next epoch, for `seconds`."""
    return Lease(holder, (current.epoch if current else 0) + 1, now + seconds)


@dataclass(frozen=True)
class Takeover:
    """A taking of the lease: the lease now held, what it replaced, and the log's size then
    (where the new holder continues the tree)."""

    lease: Lease
    previous: Lease | None
    continued_from: int

    @property
    def is_failover(self) -> bool:
        """Another replica held it before: a fact for the log. Neither the very first taking of
        a store's lease nor a replica retaking its own (a restart) is one."""
        return self.previous is not None and self.previous.holder != self.lease.holder
