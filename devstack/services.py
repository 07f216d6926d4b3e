"""Run safety-chain services as separate OS processes (for `make run` and e2e tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.kafka import PROJECT_ROOT, _die_with_parent, stop_process

DEFAULT_PORTS = {"signals": 8001, "consent": 8002, "audit": 8003}


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path | None = None
    service: str | None = None  # the service it runs, when `name` names one of its replicas
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env, "SC_HTTP_PORT": str(self.port), "SC_HTTP_HOST": "127.0.0.1"}
        output = self.log_path.open("ab") if self.log_path else None
        self._process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service or self.name}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
        )
        if output:
            output.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path or 'its output'}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready within {timeout}s; see {self.log_path or 'its output'}")

    def stop(self, timeout: float = 15.0) -> None:
        stop_process(self._process, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash a test wants to survive."""
        if self.running:
            assert self._process is not None
            self._process.kill()
            self._process.wait()
