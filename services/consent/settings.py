from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.plumbing.settings import CommonSettings

DEVELOPMENT_SIGNATURES = "agreement-signatures"


class ConsentSettings(CommonSettings):
    kafka_sasl_username: str | None = "consent"
    http_port: int = 8002
    max_batch: int = Field(default=100, ge=1, le=10_000)
    startup_catch_up_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long consent may take at start to replay its state topics (agreements,"
        " directives, data keys, recipients, proposals) before it gives up; the orchestrator's"
        " startup probe must allow at least as long (deploy/k8s).",
    )

    @property
    def agreement_signature_folders(self) -> list[Path]:
        """Where the parties' signatures on the configured agreements are: the operator's
        (`<config_dir>/agreements/signatures`, reviewed with the files) and the development key
        ceremony's (`<keys_dir>/agreement-signatures`, made with the development keys). Reading
        both is safe: consent believes a signature only when the party's key verifies it."""
        return [self.config_dir / "agreements" / "signatures", self.keys_dir / DEVELOPMENT_SIGNATURES]
