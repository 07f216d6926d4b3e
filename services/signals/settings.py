from __future__ import annotations

from pydantic import Field

from shared.plumbing.settings import PROJECT_ROOT, CommonSettings

BULK_SUBMISSION_RATE_LIMIT = "6000/minute"
"""The signals service's default SC_RATE_LIMIT (the other services keep CommonSettings' 600/minute)."""


class SignalsSettings(CommonSettings):
    kafka_sasl_username: str | None = "signals"
    http_port: int = 8001
    max_body_bytes: int = Field(default=64 * 1024, description="Largest HTTP body or intake record.")
    replay_window_seconds: int = Field(default=600, ge=1, description="Oldest ce_time accepted on intake.")
    signals_database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / '.local' / 'signals.db'}",
        description="Key store and ledger: sqlite:///... or postgresql+psycopg://...",
    )
    max_batch: int = Field(default=100, ge=1, le=10_000)
    rate_limit: str = Field(
        default=BULK_SUBMISSION_RATE_LIMIT,
        description="Calls per credential (a moving window; 429 with Retry-After beyond; it also"
        " bounds failed attempts per client address). Sized for a municipal system's bulk"
        " submission (a backlog after an outage, a migration): 100 signals a second sustained, so"
        " 10,000 signals take under two minutes, while a third of the HTTP intake's target load"
        " (150/s) stays free for the other municipalities. A larger"
        " backlog goes over the Kafka intake, where nobody waits for an answer per signal.",
    )
    verdict_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long POST /v1/signals waits for a committed verdict before 503."
    )

    @property
    def shared_stores(self) -> dict[str, str]:
        return {"SC_SIGNALS_DATABASE_URL": self.signals_database_url}
