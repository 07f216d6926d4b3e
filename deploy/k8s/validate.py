"""Validate the Kubernetes manifests offline: `kustomize build` the base and every overlay, then
check every object it builds against the Kubernetes, Strimzi and KEDA schemas.

    python -m deploy.k8s.validate          # exit 1 when a build fails or an object is invalid
    make deploy-check                      # the same

`make test` runs the same checks (tests/deploy/test_k8s_schemas.py). What it needs is
pinned below and fetched once, by the project itself, into .cache/deploy/ (`make clean` forgets
it; nothing has to be installed by hand):

  kustomize            sigs.k8s.io/kustomize/kustomize/v5 at KUSTOMIZE_VERSION, built with
                       `go install` from the Go module proxy (checked against the Go checksum
                       database); Go itself is the machine's (/usr/local/go/bin/go or on PATH)
  Kubernetes schemas   the strict JSON schemas that the PyPI package kubernetes-validate ships:
                       its wheel only (pip download, pinned by SHA-256), nothing installed; strict
                       means an unknown field is an error, as `kubectl apply` (field validation
                       Strict) makes it
  Strimzi schemas      crds/v1/ of the Maven artifact io.strimzi:api:<version>:jar:tests (mvn,
                       pinned by SHA-256), for both ends of the supported range that Maven Central
                       serves; each CRD's openAPIV3Schema is made strict the same way (an unknown
                       field is an error, not silently pruned) and its CEL rules are evaluated
                       from a table here (an unknown rule fails the check rather than pass unseen)
  KEDA schemas         config/crd/bases/ of the Go module github.com/kedacore/keda/v2 (the
                       ScaledObject and TriggerAuthentication CRDs the production overlay uses),
                       the module's zip fetched from the Go module proxy (pinned by SHA-256, the
                       same file `go mod download` checks against the Go checksum database), for
                       both ends of the KEDA range the overlay supports; made strict and CEL
                       checked as Strimzi's are

A first run takes about a minute (building kustomize); after that, seconds.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Final

import yaml
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry, Resource

from deploy.tool_cache import SetupError as SetupError  # what main reports, and the tests expect
from deploy.tool_cache import go_build_env, locked, require_go

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
K8S_DIR: Final = REPO_ROOT / "deploy" / "k8s"
BUILDS: Final = {"base": K8S_DIR / "base", "production": K8S_DIR / "overlays" / "production"}
"""Every kustomization that is deployed: the base and each overlay."""
CACHE_DIR: Final = REPO_ROOT / ".cache" / "deploy"

# ------------------------------------------------------------------------------------------ pins

KUSTOMIZE_MODULE: Final = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION: Final = "v5.8.1"
"""v5.8.1 builds with Go 1.24 and later; v5.8.3 needs Go 1.27."""

KUBERNETES_VALIDATE_VERSION: Final = "1.37.0"
KUBERNETES_VALIDATE_SHA256: Final = "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
KUBERNETES_VERSIONS: Final = ("1.30.0", "1.37.0")
"""The oldest Kubernetes the manifests support (Strimzi 0.51 and 1.0 need 1.30) and the newest
that kubernetes-validate ships: every object must be valid in both."""

STRIMZI_RANGE: Final = ("0.50.1", "1.0.x")
"""The Strimzi releases that run Kafka 4.1 with the kafka.strimzi.io/v1 API: 0.50.1 (0.50.0 has
CVE-2026-27133/27134) up to 1.0.x; Strimzi 1.1 dropped Kafka 4.1. base/kafka.yaml says so."""
STRIMZI_API_SHA256: Final = {
    "0.50.1": "ce55d893889b64bdf2513749eb520250e2afa69bcc464fb02da6a8bc111e6f57",
    "0.51.0": "b99f69303dc507ca505b74345d93f5260621bb084b8b79447f726e54b6e66a1d",
}
"""The CRDs validated against: both ends of STRIMZI_RANGE that Maven Central serves (io.strimzi:api
1.0.x is not published there; 1.0 removed only the old API versions, which nothing here uses)."""
MAVEN_DEPENDENCY_PLUGIN: Final = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

KEDA_MODULE: Final = "github.com/kedacore/keda/v2"
KEDA_RANGE: Final = ("2.16", "2.21")
"""The KEDA releases whose ScaledObject and TriggerAuthentication the production overlay is
validated against (overlays/production/autoscaling.yaml says the same)."""
KEDA_MODULE_SHA256: Final = {
    "v2.16.1": "ccb104c6e2cf35d16c9ceac520fa8d92afd9377b58ff62a668e5946eb4f18e2c",
    "v2.21.1": "872fa4b9d4282969ece753727ca31a7a31eaf341a52fa0972148297521ca9a75",
}
"""The module zips (both ends of KEDA_RANGE) as the Go module proxy serves them."""
KEDA_CRDS: Final = ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")
GO_PROXY: Final = "https://proxy.golang.org"

CEL_RULES: Final[Mapping[str, Callable[[Any], bool]]] = {
    # Kafka .spec.kafka.metricsConfig and .spec.cruiseControl.metricsConfig
    "self.type != 'jmxPrometheusExporter' || has(self.valueFrom)": lambda node: (
        node.get("type") != "jmxPrometheusExporter" or "valueFrom" in node
    ),
    # Kafka .spec.cruiseControl.metricsConfig
    "self.type != 'strimziMetricsReporter'": lambda node: node.get("type") != "strimziMetricsReporter",
    # KEDA ScaledObject .spec (2.21); a count of the wrong type is the schema's error, not this rule's
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount"
    " : 100)": lambda node: (
        not isinstance(node.get("minReplicaCount"), int)
        or not isinstance(node.get("maxReplicaCount", 100), int)
        or node["minReplicaCount"] <= node.get("maxReplicaCount", 100)
    ),
}
"""The CEL rules (x-kubernetes-validations) of the pinned Strimzi and KEDA CRDs, in Python. A rule
that is not here fails validation wherever an object reaches it: add its translation."""

_OBJECT_META: Final = (
    "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)

Manifest = dict[str, Any]


# ---------------------------------------------------------------------------------------- fetch


def _run(command: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> str:
    try:
        result = subprocess.run(
            list(command), capture_output=True, text=True, timeout=900, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SetupError(f"{what}: {error}") from error
    if result.returncode != 0:
        raise SetupError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kustomize() -> Path:
    """The pinned kustomize, built once into .cache/deploy/bin."""
    binary = CACHE_DIR / "bin" / "kustomize"
    stamp = CACHE_DIR / "bin" / "kustomize.version"
    with locked(CACHE_DIR):
        if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == KUSTOMIZE_VERSION:
            return binary
        binary.parent.mkdir(parents=True, exist_ok=True)
        go = require_go("to build kustomize")
        with go_build_env(CACHE_DIR, GOBIN=str(binary.parent)) as env:
            _run([go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"], "go install kustomize", env)
        version = _run([str(binary), "version"], "kustomize version").strip()
        if version != KUSTOMIZE_VERSION:
            raise SetupError(f"built kustomize says {version!r}, expected {KUSTOMIZE_VERSION}")
        stamp.write_text(KUSTOMIZE_VERSION + "\n")
        return binary


def kubernetes_schemas(version: str) -> Path:
    """The strict JSON schemas of one Kubernetes version, from the pinned kubernetes-validate wheel."""
    if version not in KUBERNETES_VERSIONS:
        raise ValueError(f"Kubernetes {version} is not among {KUBERNETES_VERSIONS}")
    root = CACHE_DIR / "kubernetes"
    stamp = root / "kubernetes-validate.sha256"
    with locked(CACHE_DIR):
        unpacked = all((root / wanted / "_definitions.json").is_file() for wanted in KUBERNETES_VERSIONS)
        if unpacked and stamp.is_file() and stamp.read_text().strip() == KUBERNETES_VALIDATE_SHA256:
            return root / version
        shutil.rmtree(root, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="pip-") as work:
            requirements = Path(work) / "requirements.txt"
            pin = f"kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"
            requirements.write_text(f"{pin} --hash=sha256:{KUBERNETES_VALIDATE_SHA256}\n")
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--require-hashes",
                    "--dest",
                    f"{work}/wheel",
                    "--requirement",
                    str(requirements),
                ],
                "pip download kubernetes-validate",
            )
            (wheel,) = Path(work, "wheel").glob("*.whl")
            if _sha256(wheel) != KUBERNETES_VALIDATE_SHA256:
                raise SetupError(f"{wheel.name}: unexpected SHA-256")
            with zipfile.ZipFile(wheel) as archive:
                for wanted in KUBERNETES_VERSIONS:
                    prefix = f"kubernetes_validate/kubernetes-json-schema/v{wanted}-local-strict/"
                    names = [name for name in archive.namelist() if name.startswith(prefix)]
                    if not names:
                        raise SetupError(f"kubernetes-validate {KUBERNETES_VALIDATE_VERSION} has no {wanted}")
                    target = root / wanted
                    target.mkdir(parents=True, exist_ok=True)
                    for name in names:
                        (target / name.removeprefix(prefix)).write_bytes(archive.read(name))
        stamp.write_text(KUBERNETES_VALIDATE_SHA256 + "\n")
        return root / version


def strimzi_crds(version: str) -> Path:
    """crds/v1/ of io.strimzi:api:<version>:jar:tests, fetched with Maven once."""
    expected = STRIMZI_API_SHA256[version]
    target = CACHE_DIR / "strimzi" / version
    stamp = target / "api-tests.sha256"
    with locked(CACHE_DIR):
        if stamp.is_file() and stamp.read_text().strip() == expected:
            return target
        if shutil.which("mvn") is None:
            raise SetupError("Maven (mvn) is needed to fetch the Strimzi CRDs")
        shutil.rmtree(target, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="mvn-") as work:
            _run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-Dstyle.color=never",
                    f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                    f"-Dartifact=io.strimzi:api:{version}:jar:tests",
                    f"-DoutputDirectory={work}",
                ],
                f"mvn: io.strimzi:api:{version}:jar:tests",
            )
            jar = Path(work) / f"api-{version}-tests.jar"
            if not jar.is_file() or _sha256(jar) != expected:
                raise SetupError(f"io.strimzi:api:{version}:jar:tests: missing or unexpected SHA-256")
            target.mkdir(parents=True)
            with zipfile.ZipFile(jar) as archive:
                for name in archive.namelist():
                    if name.startswith("crds/v1/") and name.endswith(".yaml"):
                        (target / Path(name).name).write_bytes(archive.read(name))
        if not list(target.glob("*.yaml")):
            raise SetupError(f"io.strimzi:api:{version}:jar:tests holds no crds/v1/")
        stamp.write_text(expected + "\n")
        return target


def keda_crds(version: str) -> Path:
    """The ScaledObject and TriggerAuthentication CRDs of KEDA <version>, from its module zip."""
    expected = KEDA_MODULE_SHA256[version]
    target = CACHE_DIR / "keda" / version
    stamp = target / "module.sha256"
    with locked(CACHE_DIR):
        if stamp.is_file() and stamp.read_text().strip() == expected:
            return target
        shutil.rmtree(target, ignore_errors=True)
        url = f"{GO_PROXY}/{KEDA_MODULE}/@v/{version}.zip"
        try:
            with urllib.request.urlopen(url, timeout=120) as answer:
                data = answer.read()
        except OSError as error:
            raise SetupError(f"the KEDA CRDs: {url}: {error}") from error
        if hashlib.sha256(data).hexdigest() != expected:
            raise SetupError(f"{url}: unexpected SHA-256")
        target.mkdir(parents=True)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in KEDA_CRDS:
                (target / name).write_bytes(archive.read(f"{KEDA_MODULE}@{version}/config/crd/bases/{name}"))
        stamp.write_text(expected + "\n")
        return target


# ---------------------------------------------------------------------------------------- build


def build(kustomization: Path) -> list[Manifest]:
    """`kustomize build` of one kustomization: the objects exactly as they would be applied."""
    output = _run([str(kustomize()), "build", str(kustomization)], f"kustomize build {kustomization}")
    return [doc for doc in yaml.safe_load_all(output) if doc is not None]


# ------------------------------------------------------------------------------------- validate


@cache
def load_crd(path: Path) -> dict[str, Any]:
    """One CRD file, parsed once per process (libyaml where PyYAML has it: the Kafka CRD is big)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return crd


@cache
def _json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _cel(
    validator: Validator, rules: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The keyword x-kubernetes-validations: each CEL rule, by its translation in CEL_RULES."""
    if not isinstance(instance, dict):
        return
    for rule in rules:
        check = CEL_RULES.get(rule["rule"])
        if check is None:
            yield ValidationError(f"CEL rule {rule['rule']!r} is not translated in deploy/k8s/validate.py")
        elif not check(instance):
            yield ValidationError(f"{rule.get('message', 'CEL rule failed')}: {rule['rule']}")


_StrictValidator: Any = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"x-kubernetes-validations": _cel}
)


def strict_openapi(schema: Any) -> Any:
    """A CRD's structural openAPIV3Schema as JSON Schema that refuses unknown fields (the API
    server would prune them silently, or refuse them under strict field validation)."""
    if isinstance(schema, list):
        return [strict_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: strict_openapi(value) for key, value in schema.items()}
    if converted.pop("x-kubernetes-int-or-string", False):
        converted.pop("type", None)
        converted["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if converted.pop("nullable", False) and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    if (
        "properties" in converted
        and "additionalProperties" not in converted
        and not converted.get("x-kubernetes-preserve-unknown-fields", False)
        and not any(  # a combinator that adds properties of its own keeps the object open
            "properties" in branch
            for key in ("allOf", "anyOf", "oneOf")
            for branch in converted.get(key, [])
            if isinstance(branch, dict)
        )
    ):
        converted["additionalProperties"] = False
    return converted


@dataclass
class Schemas:
    """The schemas of one Kubernetes version, one Strimzi version and one KEDA version."""

    kubernetes: Path
    strimzi: Path
    keda: Path

    @cached_property
    def _registry(self) -> Registry[Any]:
        definitions = _json(self.kubernetes / "_definitions.json")
        registry: Registry[Any] = Registry().with_resource(
            definitions["$id"], Resource.from_contents(definitions)
        )
        return registry

    @cached_property
    def _crds(self) -> dict[tuple[str, str], dict[str, Any]]:
        crds: dict[tuple[str, str], dict[str, Any]] = {}
        for path in [*sorted(self.strimzi.glob("*.yaml")), *sorted(self.keda.glob("*.yaml"))]:
            crd = load_crd(path)
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", False):
                    continue
                schema = strict_openapi(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema["properties"]["metadata"] = {"$ref": _OBJECT_META}
                schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
                crds[(f"{group}/{version['name']}", kind)] = schema
        return crds

    def schema_for(self, api_version: str, kind: str) -> dict[str, Any] | None:
        if (api_version, kind) in self._crds:
            return self._crds[(api_version, kind)]
        group, _, version = api_version.rpartition("/")
        name = f"{kind.lower()}-{group.split('.')[0]}-{version}" if group else f"{kind.lower()}-{version}"
        path = self.kubernetes / f"{name}.json"
        if not path.is_file():
            return None
        return _json(path)

    def errors(self, manifest: Manifest) -> list[str]:
        """What is wrong with one object (empty: it is valid)."""
        api_version, kind = manifest.get("apiVersion", ""), manifest.get("kind", "")
        name = f"{kind}/{manifest.get('metadata', {}).get('name', '?')}"
        schema = self.schema_for(api_version, kind)
        if schema is None:
            return [f"{name}: no schema for {api_version} {kind}"]
        validator = _StrictValidator(schema, registry=self._registry)
        return [
            f"{name}: {'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
            for error in sorted(validator.iter_errors(manifest), key=lambda error: list(error.absolute_path))
        ]


def all_schemas() -> dict[str, Schemas]:
    """Every combination the manifests must satisfy, by a readable label; fetched as needed. The
    oldest Strimzi goes with the oldest KEDA, the newest with the newest: each version of each is
    checked with both Kubernetes versions."""
    return {
        f"Kubernetes {k8s} + Strimzi {strimzi} + KEDA {keda}": Schemas(
            kubernetes_schemas(k8s), strimzi_crds(strimzi), keda_crds(keda)
        )
        for k8s in KUBERNETES_VERSIONS
        for strimzi, keda in zip(STRIMZI_API_SHA256, KEDA_MODULE_SHA256, strict=True)
    }


def validate(builds: Mapping[str, Sequence[Manifest]], schemas: Mapping[str, Schemas]) -> list[str]:
    return [
        f"{build_name} against {label}: {error}"
        for build_name, manifests in builds.items()
        for label, schema in schemas.items()
        for manifest in manifests
        for error in schema.errors(manifest)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.k8s.validate",
        description="kustomize build the base and the overlays and validate every object offline.",
    )
    parser.parse_args(argv)
    try:
        builds = {name: build(path) for name, path in BUILDS.items()}
        schemas = all_schemas()
    except SetupError as failure:
        print(f"error: cannot validate: {failure}", file=sys.stderr)
        return 2
    errors = validate(builds, schemas)
    for line in errors:
        print(line, file=sys.stderr)
    for name, manifests in builds.items():
        bad = sum(1 for error in errors if error.startswith(f"{name} against "))
        print(f"{name}: {len(manifests)} objects, {f'{bad} errors' if bad else 'valid'}")
    print("schemas: " + "; ".join(schemas))
    for name, path in BUILDS.items():
        marked = [
            f"{file.relative_to(REPO_ROOT)}:{number}"
            for file in sorted(path.glob("*.yaml"))
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1)
            if "PLACEHOLDER" in line
        ]
        if marked:
            print(f"{name}: replace the placeholders before deploying: {', '.join(marked)}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
