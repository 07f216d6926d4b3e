"""A throwaway PostgreSQL server for tests: initdb in a folder, pg_ctl on a free loopback port.

PostgreSQL refuses to run as root; when the tests run as root (as CI does) the server runs as
the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.kafka import free_port


class LocalPostgresError(RuntimeError):
    pass


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise LocalPostgresError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int = 0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_server_user(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return ["runuser", "-u", "postgres", "--", *command]

    def start(self) -> LocalPostgres:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.data_dir, *self.data_dir.parents):
                if path == Path("/"):
                    break
                os.chmod(path, os.stat(path).st_mode | 0o011)  # let the server user traverse
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        pgdata = self.data_dir / "pgdata"
        self._run([_bin("initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self._run(
            [
                _bin("pg_ctl"),
                "-D",
                str(pgdata),
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c fsync=off",
                "start",
            ]
        )
        return self

    def stop(self) -> None:
        pgdata = self.data_dir / "pgdata"
        if pgdata.exists():
            subprocess.run(
                self._as_server_user([_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                check=False,
            )

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self._as_server_user(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalPostgresError(f"{command[0]} failed:\n{result.stdout}{result.stderr}")
