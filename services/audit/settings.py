from __future__ import annotations

from pydantic import Field

from services.audit.queries.exports.context import DEVELOPMENT_REGISTER_URL
from shared.plumbing.settings import PROJECT_ROOT, CommonSettings


class AuditSettings(CommonSettings):
    kafka_sasl_username: str | None = "audit"
    http_port: int = 8003
    audit_database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / '.local' / 'audit.db'}",
        description="SQLAlchemy URL of the audit store: sqlite:///... or postgresql+psycopg://...",
    )
    audit_log_origin: str = Field(
        default="safety-chain.local/audit-log",
        pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)*$",
        description="The log's origin in its checkpoints (and the name of its note key): unique per"
        " deployment, e.g. audit.safety-chain.gemeente.nl/log.",
    )
    checkpoint_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Issue a checkpoint this often when the log grew: a record is provable within"
        " about this long.",
    )
    checkpoint_every_records: int | None = Field(
        default=None, ge=1, description="...and also once this many records arrived (off by default)."
    )
    audit_max_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="At most this many records are appended to the log in one transaction.",
    )
    audit_gather_ms: int = Field(
        default=100,
        ge=0,
        le=5_000,
        description="When few records are waiting, a poll waits up to this long for more (up to"
        " 64 KiB): at a low rate the log appends several signals' facts per transaction instead"
        " of one, with fewer fsyncs and broker fetches; a burst fills a poll at once.",
    )
    audit_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long the sequencer's lease lasts unrenewed (renewed every third of it): a"
        " standby takes over the log this long after its holder stopped.",
    )
    processing_register_url: str = Field(
        default=DEVELOPMENT_REGISTER_URL,
        description="Base URL of the register of processing activities (verwerkingsregister) that"
        " LDV and VWL exports link each agreement to.",
    )

    @property
    def shared_stores(self) -> dict[str, str]:
        return {"SC_AUDIT_DATABASE_URL": self.audit_database_url}
