"""What every export format needs besides the records: the context, the counts, the proof
reference, and the shape of a format's writer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from services.audit.log.record import AuditRecord
from shared.contracts.registry import Organisation, Registry

DEFAULT_BEWAARTERMIJN: Final = "P10Y"
"""VWL `bewaartermijn` when the caller's retention lookup gives none. The retention of the log
entry, not of the data (VWL B9559: the log's term is the application's to set, not the
register's). P10Y is the standard's own example value, not a legal determination: give a lookup
that follows the municipality's archive rules, or None to leave the field out (VWL: "verplicht
indien te bepalen")."""

DEVELOPMENT_REGISTER_URL: Final = "https://register.safetychain.example/verwerkingsactiviteiten"
"""A register base URL for development only (like the 99999999 OINs): set the real register of
processing activities (verwerkingsactiviteitenregister) in production."""

ISO_DURATION: Final = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")

RetentionLookup = Callable[[AuditRecord], str | None]
"""A record -> its VWL `bewaartermijn` (ISO 8601 duration such as P10Y), or None: the default."""
ProcessorUrl = Callable[[Organisation], str]
"""An organisation -> the URL of its application, for LDV `dpl.core.foreign_operation.processor`."""


@dataclass(frozen=True)
class ProofReference:
    """Where a record's inclusion proof is: its `seq`, the size of the newest checkpoint that
    covers it (None while no checkpoint does yet) and the audit API's relative URL of the proof
    in that tree (None without a covering checkpoint: a proof needs a signed tree to hold on to)."""

    seq: int
    tree_size: int | None

    @classmethod
    def of(cls, seq: int, checkpoint_size: int | None) -> ProofReference:
        """`checkpoint_size`: the newest checkpoint's tree size, or None when there is none."""
        covered = checkpoint_size is not None and seq <= checkpoint_size
        return cls(seq, checkpoint_size if covered else None)

    @property
    def inclusion(self) -> str | None:
        if self.tree_size is None:
            return None
        return f"/v1/audit/records/{self.seq}/inclusion?tree_size={self.tree_size}"

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "tree_size": self.tree_size, "inclusion": self.inclusion}


@dataclass(frozen=True)
class ExportContext:
    """What every format needs besides the records.

    registry: organisations (OIN, system) by id. register_url: base URL of the register of
    processing activities (no trailing slash needed). today: the date confidentiality is judged
    on. checkpoint_size: the newest checkpoint's tree size (None: no checkpoint yet). citizen:
    the citizen's version (see the package). retention: VWL bewaartermijn per record, falling
    back to default_retention (None: left out). processor_url: the URL of an organisation's
    application for LDV; default its CloudEvents source URN (see ldv.py)."""

    registry: Registry
    register_url: str
    today: date
    checkpoint_size: int | None = None
    citizen: bool = False
    retention: RetentionLookup | None = None
    default_retention: str | None = DEFAULT_BEWAARTERMIJN
    processor_url: ProcessorUrl | None = None

    def __post_init__(self) -> None:
        if not self.register_url.startswith(("https://", "http://")):
            raise ValueError("register_url must be an absolute http(s) URL")
        if self.default_retention is not None and not ISO_DURATION.match(self.default_retention):
            raise ValueError(f"default_retention {self.default_retention!r} is no ISO 8601 duration")

    def proof(self, record: AuditRecord) -> ProofReference:
        return ProofReference.of(record.seq, self.checkpoint_size)


@dataclass
class ExportCounts:
    """What an export did, filled in as it streams (e.g. for a progress bar or a summary)."""

    written: int = 0
    withheld: int = 0  # citizen's version: still vertrouwelijk (VWL: also without a subject)
    without_subject: int = 0  # LDV: no data subject, so no log line


Writer = Callable[[Iterable[AuditRecord], ExportContext, ExportCounts | None], Iterator[str]]
"""One format: (records, context, counts) -> the export's text chunks, one line at a time."""


def retention_days(days: int) -> str:
    """An ISO 8601 duration of whole days (e.g. an agreement's retention_days)."""
    if days < 1:
        raise ValueError("a retention is at least one day")
    return f"P{days}D"
