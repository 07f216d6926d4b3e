from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class ConsentSettings(CommonSettings):
    kafka_sasl_username: str | None = "consent"
    http_port: int = 8002
    instance_id: str = Field(
        default="0",
        description="Stable per replica: the transactional id fences a zombie of the same replica.",
    )
    max_batch: int = Field(default=100, ge=1, le=10_000)
