from __future__ import annotations

from pydantic import Field

from shared.settings import PROJECT_ROOT, CommonSettings


class AuditSettings(CommonSettings):
    kafka_sasl_username: str | None = "audit"
    http_port: int = 8003
    audit_database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / '.local' / 'audit.db'}",
        description="SQLAlchemy URL of the audit store: sqlite:///... or postgresql+psycopg://...",
    )
