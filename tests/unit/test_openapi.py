"""The OpenAPI document of POST /v1/signals describes the body the route validates: the signal
contract, with every schema it refers to in components/schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from devstack.keys import prepare_development_keys
from services.http_common import PROBLEM_JSON
from services.signals.app import create_app
from services.signals.http import router
from services.signals.openapi import document_signal_contract
from services.signals.settings import SignalsSettings
from shared.contracts.signal import Category, signal_adapter
from tests.unit.test_signal_contract import INVALID_SUBMISSIONS, valid_submission

DOCUMENT_URI = "https://safety-chain.nl/openapi/signals.json"
OPERATION = ("paths", "/v1/signals", "post")


def signals_openapi() -> dict[str, Any]:
    app = FastAPI()
    app.include_router(router)
    document_signal_contract(app)
    return app.openapi()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return signals_openapi()


def operation(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"]["/v1/signals"]["post"]
    return found


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def body_validator(document: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A JSON Schema validator for the documented request body, resolving $refs in the document."""
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    schema = operation(document)["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator(
        {"$ref": DOCUMENT_URI + schema["$ref"]}, registry=registry, format_checker=jsonschema.FormatChecker()
    )


def test_the_request_body_is_the_signal_contract(document: dict[str, Any]) -> None:
    body = operation(document)["requestBody"]
    assert body["required"] is True
    documented = resolve(document, body["content"]["application/json"]["schema"]["$ref"])

    # The same schema as the contract's, its $defs now in components/schemas.
    contract = signal_adapter.json_schema(ref_template="#/components/schemas/{model}")
    definitions = contract.pop("$defs")
    assert documented == contract
    for name, schema in definitions.items():
        assert document["components"]["schemas"][name] == schema, name


def test_every_category_is_a_variant_of_the_documented_body(document: dict[str, Any]) -> None:
    body = operation(document)["requestBody"]["content"]["application/json"]["schema"]
    documented = resolve(document, body["$ref"])
    assert documented["discriminator"]["propertyName"] == "category"
    assert set(documented["discriminator"]["mapping"]) == {category.value for category in Category}
    for category, ref in documented["discriminator"]["mapping"].items():
        assert resolve(document, ref)["properties"]["category"]["const"] == category


def test_every_ref_in_the_document_resolves(document: dict[str, Any]) -> None:
    found = set(refs(document))
    assert found  # the body, the answers and the contract's own references
    for ref in found:
        assert resolve(document, ref) is not None, ref


def test_a_valid_signal_fits_the_documented_body(document: dict[str, Any]) -> None:
    for valid in (
        valid_submission(),
        valid_submission(
            category="woonoverlast",
            subject={"kind": "address", "postcode": "1012AB", "house_number": 12},
            attributes={"address": {"postcode": "1012AB", "house_number": 12}, "nuisance_type": "geluid"},
        ),
    ):
        signal_adapter.validate_python(valid)  # the model agrees
        assert list(body_validator(document).iter_errors(valid)) == []


@pytest.mark.parametrize("invalid", INVALID_SUBMISSIONS.values(), ids=INVALID_SUBMISSIONS.keys())
def test_an_invalid_signal_fits_neither_the_model_nor_the_documented_body(
    document: dict[str, Any], invalid: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        signal_adapter.validate_python(invalid)
    assert list(body_validator(document).iter_errors(invalid)) != []


def test_the_answers_are_documented(document: dict[str, Any]) -> None:
    responses = operation(document)["responses"]
    accepted = resolve(document, responses["202"]["content"]["application/json"]["schema"]["$ref"])
    assert {"signal_id", "status", "subject_pseudonym", "accepted_at"} <= set(accepted["required"])
    for status in ("401", "403", "409", "413", "415", "422", "503"):
        problem = resolve(document, responses[status]["content"][PROBLEM_JSON]["schema"]["$ref"])
        assert {"type", "title", "status", "detail"} <= set(problem["required"]), status
    assert "Retry-After" in responses["503"]["headers"]


def test_the_service_documents_the_same_body(tmp_path: Path) -> None:
    # The signals service as it is built for `make run` (no broker is contacted until start-up).
    settings = SignalsSettings(
        keys_dir=tmp_path / "keys", signals_database_url=f"sqlite:///{tmp_path / 's.db'}"
    )
    prepare_development_keys(settings.keys_dir, settings.config_dir)
    served = create_app(settings).openapi()
    assert operation(served)["requestBody"] == operation(signals_openapi())["requestBody"]
    assert list(body_validator(served).iter_errors(valid_submission())) == []
