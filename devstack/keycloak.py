"""A real Keycloak on 127.0.0.1, without Docker: the organisations' identity providers.

The distribution (`org.keycloak:keycloak-quarkus-dist`, pinned in `devstack/keycloak-pom.xml`)
comes from Maven Central through Maven and is unpacked once into `.cache/keycloak/dist`
(git-ignored; `make keycloak`). `LocalKeycloak` gives each run a home of its own (the
distribution's `bin` copied, its `lib`, `conf`, `themes` and `providers` linked) so that
`kc.sh start-dev --import-realm` imports that run's realms (devstack/realms.py, one per
organisation, generated from config/organisations.yaml) from `<home>/data/import`, with an
in-memory database (`--db=dev-mem`: every start begins from the generated realms). It listens
on a free port of 127.0.0.1 with a bootstrap admin whose password is generated into the run's
folder, and is tied to its parent with PR_SET_PDEATHSIG as the local Kafka broker is.

Unpacking ends with one `start-dev` that rebuilds the distribution for development mode
(Quarkus augmentation, kept in the cache), so no later start pays for it: a start with every
organisation's realm then takes 20-30 s on two cores beside a running Kafka broker.

`KeycloakAdmin` is the admin REST API, for what a test or an operator does to a realm: disable
a person or a client, add a client.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from devstack.kafka import PROJECT_ROOT, _die_with_parent, free_port, maven_copy_dependencies, stop_process
from devstack.realms import CONSOLE_CLIENT, GeneratedRealms, generate, issuer_entries
from shared.contracts.yamlload import safe_load

POM: Final = Path(__file__).resolve().parent / "keycloak-pom.xml"
CACHE_DIR: Final = PROJECT_ROOT / ".cache" / "keycloak"
DIST_DIR: Final = CACHE_DIR / "dist"
_STAMP: Final = CACHE_DIR / ".pom-sha256"
ADMIN_USER: Final = "admin"
_LINKED: Final = ("lib", "conf", "themes", "providers")


class LocalKeycloakError(RuntimeError):
    """Keycloak could not be fetched, unpacked or started."""


def prepared_distributions() -> Path:
    """Where prepared distributions are kept between clones, by the pom's digest, as Maven's
    ~/.m2 keeps the archive: a fresh clone copies one (seconds) instead of unpacking and
    augmenting it again (20-40 s)."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "safety-chain" / "keycloak"


def ensure_distribution() -> Path:
    """The pinned Keycloak, fetched, unpacked and prepared once; again only when the pom
    changes."""
    pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if _STAMP.exists() and _STAMP.read_text().strip() == pom_digest and (DIST_DIR / "bin" / "kc.sh").exists():
        return DIST_DIR
    kept = prepared_distributions() / pom_digest
    if (kept / "bin" / "kc.sh").exists():
        shutil.rmtree(DIST_DIR, ignore_errors=True)
        DIST_DIR.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(kept, DIST_DIR, symlinks=True)
        _STAMP.write_text(pom_digest)
        return DIST_DIR
    _prepare(pom_digest)
    _keep(DIST_DIR, kept)
    return DIST_DIR


def _keep(dist: Path, kept: Path) -> None:
    """A copy of the prepared `dist` at `kept`, for the next clone; put in place whole (a
    rename), so a concurrent clone sees all of it or none."""
    kept.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=kept.parent, prefix=".staging-"))
    try:
        shutil.copytree(dist, staging / "dist", symlinks=True)
        (staging / "dist").rename(kept)
    except OSError:
        pass  # another clone kept one first: theirs is as good
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare(pom_digest: str) -> None:
    """Fetch the distribution through Maven, unpack it into DIST_DIR and augment it for
    development."""
    if shutil.which("mvn") is None:
        raise LocalKeycloakError("Maven (mvn) is needed to fetch Keycloak")
    download = CACHE_DIR / "download"
    shutil.rmtree(download, ignore_errors=True)
    result = maven_copy_dependencies(POM, download)
    archives = sorted(download.glob("keycloak-quarkus-dist-*.tar.gz"))
    if result.returncode != 0 or len(archives) != 1:
        raise LocalKeycloakError(f"fetching Keycloak failed:\n{result.stdout}\n{result.stderr}")
    unpacked = CACHE_DIR / "unpacking"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(archives[0]) as archive:
        archive.extractall(unpacked, filter="data")
    (top,) = list(unpacked.iterdir())  # keycloak-<version>/
    shutil.rmtree(DIST_DIR, ignore_errors=True)
    top.rename(DIST_DIR)
    shutil.rmtree(unpacked)
    shutil.rmtree(download)
    (DIST_DIR / "bin" / "kc.sh").chmod(0o755)
    _augment_for_development(DIST_DIR)
    _STAMP.write_text(pom_digest)


def _make_home(dist: Path, home: Path) -> None:
    """A Keycloak home of its own: kc.sh finds its home from its own (resolved) path, so `bin`
    is copied; the rest is linked (what start-dev writes into `lib` is kept for every home)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copytree(dist / "bin", home / "bin")
    for name in _LINKED:
        (home / name).symlink_to(dist / name)


def _start_dev(
    home: Path, port: int, *options: str, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                str(home / "bin" / "kc.sh"),
                "start-dev",
                "--http-host=127.0.0.1",
                f"--http-port={port}",
                "--db=dev-mem",
                *options,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )


def _augment_for_development(dist: Path, timeout: float = 300.0) -> None:
    """The distribution is built for production; the first `start-dev` rebuilds it for
    development (Quarkus augmentation, 15-25 s on two cores) into `lib/quarkus`. Done here, once:
    started until it says it runs in development mode, then stopped."""
    home = CACHE_DIR / "augmenting"
    _make_home(dist, home)
    log = home / "augment.log"
    process = _start_dev(home, free_port(), log=log, env={})
    deadline = time.monotonic() + timeout
    try:
        while "Running the server in development mode" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise LocalKeycloakError(f"Keycloak's first start failed; see {log}")
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(30)
    shutil.rmtree(home)


class KeycloakAdmin:
    """Keycloak's admin REST API as the bootstrap admin (master realm)."""

    def __init__(self, base_url: str, password: str) -> None:
        self.base_url = base_url
        self._password = password

    def _headers(self) -> dict[str, str]:
        response = httpx.post(
            f"{self.base_url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": ADMIN_USER,
                "password": self._password,
            },
            timeout=30,
        )
        response.raise_for_status()
        return {"authorization": f"Bearer {response.json()['access_token']}"}

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        response = httpx.request(
            method, f"{self.base_url}/admin/realms{path}", headers=self._headers(), timeout=30, **options
        )
        response.raise_for_status()
        return response

    def client(self, realm: str, client_id: str) -> dict[str, Any]:
        (found,) = self._call("GET", f"/{realm}/clients", params={"clientId": client_id}).json()
        return dict(found)

    def user(self, realm: str, username: str) -> dict[str, Any]:
        (found,) = self._call("GET", f"/{realm}/users", params={"username": username, "exact": "true"}).json()
        return dict(found)

    def set_client_enabled(self, realm: str, client_id: str, enabled: bool) -> None:
        """A disabled client gets no more tokens (its tokens already issued live on until exp)."""
        client = self.client(realm, client_id)
        self._call("PUT", f"/{realm}/clients/{client['id']}", json={**client, "enabled": enabled})

    def set_user_enabled(self, realm: str, username: str, enabled: bool) -> None:
        """A disabled person can no longer sign in; their sessions end."""
        user = self.user(realm, username)
        self._call("PUT", f"/{realm}/users/{user['id']}", json={**user, "enabled": enabled})
        if not enabled:
            self._call("POST", f"/{realm}/users/{user['id']}/logout")

    def create_client(self, realm: str, representation: dict[str, Any]) -> None:
        self._call("POST", f"/{realm}/clients", json=representation)

    def delete_client(self, realm: str, client_id: str) -> None:
        self._call("DELETE", f"/{realm}/clients/{self.client(realm, client_id)['id']}")

    def add_service_account_roles(self, realm: str, client_id: str, roles: Iterable[str]) -> None:
        client = self.client(realm, client_id)
        account = self._call("GET", f"/{realm}/clients/{client['id']}/service-account-user").json()
        wanted = [self._call("GET", f"/{realm}/roles/{role}").json() for role in roles]
        self._call("POST", f"/{realm}/users/{account['id']}/role-mappings/realm", json=wanted)


@dataclass
class LocalKeycloak:
    """Keycloak in development mode with the organisations' realms; `base_url` after `start()`."""

    workdir: Path
    config_dir: Path
    keys_dir: Path
    console_origins: tuple[str, ...] = ()
    port: int = 0
    heap: str = "768m"
    realms: GeneratedRealms | None = field(default=None, init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.port = self.port or free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, organisation: str) -> str:
        return f"{self.base_url}/realms/{organisation}"

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def log(self) -> Path:
        return self.workdir / "keycloak.log"

    def _admin_password(self) -> str:
        path = self.workdir / "admin.password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(hashlib.sha256(os.urandom(32)).hexdigest())
        return path.read_text(encoding="utf-8").strip()

    @property
    def admin(self) -> KeycloakAdmin:
        return KeycloakAdmin(self.base_url, self._admin_password())

    def _prepare_home(self, dist: Path) -> None:
        _make_home(dist, self.home)
        imports = self.home / "data" / "import"
        imports.mkdir(parents=True)
        assert self.realms is not None
        for realm_file in self.realms.import_dir.glob("*-realm.json"):
            shutil.copy2(realm_file, imports / realm_file.name)

    def start(self, timeout: float = 180.0) -> LocalKeycloak:
        self.launch()
        self.wait_until_ready(timeout)
        return self

    def launch(self) -> LocalKeycloak:
        """Start Keycloak without waiting for it (`wait_until_ready`): it takes 20-30 s, which
        a caller may spend on other work. Call it from the thread that outlives Keycloak: the
        process dies with the thread that started it (PR_SET_PDEATHSIG)."""
        dist = ensure_distribution()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o700)  # the admin password, the realms' secrets
        self.realms = generate(
            self.config_dir,
            self.keys_dir,
            self.workdir / "realms",
            ("http://127.0.0.1", *self.console_origins),
        )
        self._prepare_home(dist)
        env = {
            "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self._admin_password(),
            "JAVA_OPTS_APPEND": f"-Xms{self.heap} -Xmx{self.heap} -XX:TieredStopAtLevel=1",
        }
        self._process = _start_dev(self.home, self.port, "--import-realm", log=self.log, env=env)
        return self

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        # the realms are imported before Keycloak listens: one answering realm means all are in
        assert self.realms is not None
        probe = f"{self.issuer(self.realms.organisations[-1])}/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalKeycloakError(f"Keycloak exited with {self._process.returncode}; see {self.log}")
            try:
                if httpx.get(probe, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise LocalKeycloakError(f"Keycloak did not start within {timeout}s; see {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self._process, timeout)

    def __enter__(self) -> LocalKeycloak:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def issuers(self) -> list[dict[str, Any]]:
        """The issuers.yaml entries that trust this Keycloak's realms, each for its organisation."""
        assert self.realms is not None
        realms = self.realms
        console_secrets = {
            org: realms.client_secret_file(org, CONSOLE_CLIENT) for org in realms.organisations
        }
        return issuer_entries(self.base_url, realms.organisations, console_secrets)

    def write_config(self, config_dir: Path, target: Path) -> Path:
        """A copy of `config_dir` at `target` whose issuers.yaml also trusts this Keycloak."""
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(config_dir, target)
        issuers_file = target / "issuers.yaml"
        document = safe_load(issuers_file.read_text(encoding="utf-8"))
        document["issuers"] = [*document["issuers"], *self.issuers()]
        issuers_file.write_text(
            "# config/issuers.yaml and the local Keycloak's realms (devstack/keycloak.py)\n"
            + yaml.safe_dump(document, sort_keys=False),
            encoding="utf-8",
        )
        return target
