"""Every object kustomize builds from deploy/k8s, validated offline against the Kubernetes,
Strimzi and KEDA schemas (deploy/k8s/validate.py): the pinned tools and schemas are fetched into
.cache/deploy/ once; when they cannot be, these tests fail rather than skip."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from deploy import tool_cache
from deploy.k8s import validate

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def schemas() -> dict[str, validate.Schemas]:
    return validate.all_schemas()


@pytest.fixture(scope="module")
def first(schemas: dict[str, validate.Schemas]) -> validate.Schemas:
    return next(iter(schemas.values()))


@pytest.mark.parametrize("build", sorted(validate.BUILDS))
def test_every_built_object_is_valid_against_the_kubernetes_and_strimzi_schemas(
    builds: dict[str, list[Manifest]], schemas: dict[str, validate.Schemas], build: str
) -> None:
    manifests = builds[build]
    kinds = {doc["kind"] for doc in manifests}
    assert {"StatefulSet", "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "NetworkPolicy"} <= kinds
    assert {"PodDisruptionBudget", "Ingress", "ConfigMap", "Service"} <= kinds
    if build == "production":
        assert {"ScaledObject", "TriggerAuthentication"} <= kinds
    assert len(schemas) == len(validate.KUBERNETES_VERSIONS) * len(validate.STRIMZI_API_SHA256)
    assert len(validate.KEDA_MODULE_SHA256) == len(validate.STRIMZI_API_SHA256), "paired in all_schemas"
    assert validate.validate({build: manifests}, schemas) == []


def _find(manifests: list[Manifest], kind: str) -> Manifest:
    found: Manifest = copy.deepcopy(next(doc for doc in manifests if doc["kind"] == kind))
    return found


def test_an_unknown_field_a_wrong_type_and_a_broken_cel_rule_are_each_caught(
    builds: dict[str, list[Manifest]], first: validate.Schemas
) -> None:
    base = builds["base"]
    deployment = _find(base, "StatefulSet")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert any("imagePullPolicyy" in error for error in first.errors(deployment))

    kafka = _find(base, "Kafka")
    kafka["spec"]["kafka"]["listeners"][0]["authentication"]["tpye"] = "scram-sha-512"
    assert any("tpye" in error for error in first.errors(kafka)), "unknown CRD fields are not pruned silently"

    kafka = _find(base, "Kafka")
    del kafka["spec"]["kafka"]["metricsConfig"]["valueFrom"]
    assert any("valueFrom property is required" in error for error in first.errors(kafka))

    topic = _find(base, "KafkaTopic")
    topic["spec"]["partitions"] = "3"
    assert any("partitions" in error for error in first.errors(topic))

    policy = _find(base, "NetworkPolicy")
    policy["metadata"]["labelz"] = {}
    assert any("labelz" in error for error in first.errors(policy)), "metadata is ObjectMeta for CRs too"

    pool = _find(base, "KafkaNodePool")
    pool["metadata"]["labelz"] = {}
    assert any("labelz" in error for error in first.errors(pool)), "metadata is ObjectMeta for CRs too"


def test_a_broken_keda_object_is_caught_by_every_pinned_keda_schema(
    builds: dict[str, list[Manifest]], schemas: dict[str, validate.Schemas]
) -> None:
    production = builds["production"]
    for label, schema in schemas.items():
        scaler = _find(production, "ScaledObject")
        assert schema.errors(scaler) == [], label
        scaler["spec"]["triggers"][0]["metdata"] = scaler["spec"]["triggers"][0].pop("metadata")
        assert any("metdata" in error for error in schema.errors(scaler)), label
        scaler = _find(production, "ScaledObject")
        scaler["spec"]["maxReplicaCount"] = "12"
        assert any("maxReplicaCount" in error for error in schema.errors(scaler)), label
        authentication = _find(production, "TriggerAuthentication")
        authentication["spec"]["secretTargetRef"][0]["secret"] = authentication["spec"]["secretTargetRef"][
            0
        ].pop("name")
        assert schema.errors(authentication), label
    newest = list(schemas.values())[-1]
    scaler = _find(production, "ScaledObject")
    scaler["spec"]["minReplicaCount"] = scaler["spec"]["maxReplicaCount"] + 1
    assert any("minReplicaCount" in error for error in newest.errors(scaler)), "KEDA 2.21's CEL rule"


def test_an_object_without_a_schema_is_an_error_not_a_pass(first: validate.Schemas) -> None:
    unknown = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert first.errors(unknown) == ["Widget/w: no schema for example.org/v1 Widget"]
    old = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": {"name": "k"}, "spec": {}}
    assert first.errors(old), "Strimzi 1.0 serves kafka.strimzi.io/v1 only"


def test_a_cel_rule_without_a_translation_fails_wherever_an_object_reaches_it(
    first: validate.Schemas,
) -> None:
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.size() > 0"}]}
    validator = validate._StrictValidator(schema)
    (error,) = validator.iter_errors({"a": 1})
    assert "not translated" in error.message


def test_every_cel_rule_of_the_strimzi_and_keda_resources_used_here_is_translated(
    schemas: dict[str, validate.Schemas],
) -> None:
    rules: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            rules.update(rule["rule"] for rule in node.get("x-kubernetes-validations", []))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    for version in validate.STRIMZI_API_SHA256:
        for path in validate.strimzi_crds(version).glob("*.yaml"):
            crd = validate.load_crd(path)
            if crd["spec"]["names"]["kind"] in ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"):
                collect(crd["spec"]["versions"])
    for version in validate.KEDA_MODULE_SHA256:
        for path in validate.keda_crds(version).glob("*.yaml"):
            collect(validate.load_crd(path)["spec"]["versions"])
    assert rules and rules <= set(validate.CEL_RULES)


def test_the_openapi_conversion_keeps_nullable_int_or_string_and_open_maps() -> None:
    converted = validate.strict_openapi(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": True},
                "b": {"x-kubernetes-int-or-string": True},
                "c": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
                "d": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    )
    assert converted["additionalProperties"] is False
    assert converted["properties"]["a"]["type"] == ["string", "null"]
    assert converted["properties"]["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert "additionalProperties" not in converted["properties"]["c"]
    assert converted["properties"]["d"]["additionalProperties"] == {"type": "string"}


def test_every_tool_and_schema_is_pinned_to_one_version_and_digest() -> None:
    assert re.fullmatch(r"v\d+\.\d+\.\d+", validate.KUSTOMIZE_VERSION)
    assert re.fullmatch(r"\d+\.\d+\.\d+", validate.KUBERNETES_VALIDATE_VERSION)
    assert re.fullmatch(r"[0-9a-f]{64}", validate.KUBERNETES_VALIDATE_SHA256)
    assert re.fullmatch(r"[^:]+:[^:]+:\d+\.\d+\.\d+", validate.MAVEN_DEPENDENCY_PLUGIN)
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in validate.KUBERNETES_VERSIONS)
    for version, digest in validate.STRIMZI_API_SHA256.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version) and re.fullmatch(r"[0-9a-f]{64}", digest)
    for version, digest in validate.KEDA_MODULE_SHA256.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+", version) and re.fullmatch(r"[0-9a-f]{64}", digest)
        assert version.removeprefix("v").rsplit(".", 1)[0] in validate.KEDA_RANGE, "both ends of the range"
    assert validate.CACHE_DIR.is_relative_to(validate.REPO_ROOT / ".cache")


def test_what_cannot_be_fetched_fails_validation_rather_than_skipping_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn, no go
    with pytest.raises(validate.SetupError, match="Maven"):
        validate.strimzi_crds("0.51.0")
    monkeypatch.setattr(validate, "GO_PROXY", "https://127.0.0.1:9")  # nothing answers there
    with pytest.raises(validate.SetupError, match="KEDA"):
        validate.keda_crds(next(iter(validate.KEDA_MODULE_SHA256)))
    monkeypatch.setattr(tool_cache, "GO_FALLBACK", tmp_path / "no-go")
    with pytest.raises(validate.SetupError, match="Go is needed"):
        validate.kustomize()
    assert validate.main([]) == 2
