from __future__ import annotations

from pydantic import Field

from shared.plumbing.settings import PROJECT_ROOT, CommonSettings


class SignalsSettings(CommonSettings):
    kafka_sasl_username: str | None = "signals"
    http_port: int = 8001
    max_body_bytes: int = Field(default=64 * 1024, description="Largest HTTP body or intake record.")
    replay_window_seconds: int = Field(default=600, ge=1, description="Oldest ce_time accepted on intake.")
    signals_database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / '.local' / 'signals.db'}",
        description="Key store and ledger: sqlite:///... or postgresql+psycopg://...",
    )
    instance_id: str = Field(default="0", description="Stable per replica: names its transactional id.")
    max_batch: int = Field(default=100, ge=1, le=10_000)
    verdict_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long POST /v1/signals waits for a committed verdict before 503."
    )
