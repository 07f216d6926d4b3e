from __future__ import annotations

from shared.settings import CommonSettings


class SignalsSettings(CommonSettings):
    http_port: int = 8001
    max_body_bytes: int = 64 * 1024
