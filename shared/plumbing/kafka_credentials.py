"""Development Kafka credentials: one SCRAM password per principal, one file each.

The development stack (devstack) makes a password for every principal of the registry (each
service, municipality and partner) and registers it with the local broker; services, the CLI
and the SDKs find their own in `<credentials_dir>/<principal>.password` (settings
`kafka_credentials_dir`, default `<keys_dir>/kafka`, made by the development key ceremony).
Production passes real credentials (SC_KAFKA_SASL_PASSWORD, from the Secret Strimzi writes per
KafkaUser) and never reads here.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Final

KAFKA_CREDENTIALS_FOLDER: Final = "kafka"
"""Where, under the keys folder, the development passwords live by default."""

_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


class MissingCredential(LookupError):
    """No development password for a principal: run the key ceremony (make run does)."""


def password_path(credentials_dir: Path, principal: str) -> Path:
    if not _PRINCIPAL.fullmatch(principal):
        raise ValueError(f"not a principal name: {principal!r}")
    return Path(credentials_dir) / f"{principal}.password"


def read_password(credentials_dir: Path, principal: str) -> str:
    path = password_path(credentials_dir, principal)
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise MissingCredential(
            f"no Kafka password for {principal!r} in {credentials_dir}; `make run` (or"
            " `python -m devstack.keys`) makes the development credentials"
        ) from None


def ensure_passwords(credentials_dir: Path, principals: Iterable[str]) -> dict[str, str]:
    """Every principal's password, making the missing ones (0600 files in a 0700 folder)."""
    folder = Path(credentials_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    passwords: dict[str, str] = {}
    for principal in principals:
        path = password_path(folder, principal)
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
        passwords[principal] = read_password(folder, principal)
    return passwords
