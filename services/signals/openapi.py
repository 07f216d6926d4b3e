"""What the OpenAPI document says about POST /v1/signals: the signal contract itself.

The route reads the raw body (so it can refuse an oversized body, a wrong content type or
malformed JSON with its own problem+json), so FastAPI cannot see the body it validates. The
route's `openapi_extra` therefore documents the request body as the discriminated union
`SignalSubmission` of shared/contracts/signal.py, the 202 answer and the problem+json refusals;
`document_signal_contract` puts the schemas they refer to into components/schemas, where
every `$ref` resolves. Both come from the same pydantic models the intake validates with, so
the document cannot drift from what is enforced.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from services.http_common import PROBLEM_JSON
from shared.contracts.events import FieldError, RejectionReason
from shared.contracts.signal import signal_adapter

COMPONENTS_REF = "#/components/schemas/{model}"
SUBMISSION_SCHEMA = "SignalSubmission"


class SubmissionAccepted(BaseModel):
    """202: the signal was accepted and committed (or, in `first_result`, was accepted before)."""

    model_config = ConfigDict(frozen=True)

    signal_id: uuid.UUID
    status: Literal["accepted"]
    subject_pseudonym: str = Field(pattern=r"^[0-9a-f]{32}$", description="The subject's keyed pseudonym.")
    accepted_at: datetime
    correlation_id: str | None = Field(default=None, description="Follows the request through every record.")


class Problem(BaseModel):
    """A refusal (RFC 9457 problem details): one entry per problem, never the submitted value."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description="https://safety-chain.nl/problems/<reason with dashes>")
    title: str
    status: int
    detail: str
    reason: RejectionReason | None = Field(default=None, description="Absent on 503 verdict-pending.")
    signal_id: uuid.UUID | None = None
    errors: list[FieldError] = Field(default_factory=list)
    first_result: SubmissionAccepted | None = Field(
        default=None, description="409 duplicate: the first result, only to the municipality that sent it."
    )
    correlation_id: str | None = None


def _hoisted(adapter: TypeAdapter[Any], name: str) -> dict[str, Any]:
    """The adapter's schema under `name`, with its $defs beside it: components/schemas entries."""
    schema = adapter.json_schema(ref_template=COMPONENTS_REF)
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, name: schema}


def component_schemas() -> dict[str, Any]:
    """Every schema the operation refers to, by its components/schemas name."""
    schemas: dict[str, Any] = {}
    for adapter, name in (
        (signal_adapter, SUBMISSION_SCHEMA),
        (TypeAdapter(SubmissionAccepted), SubmissionAccepted.__name__),
        (TypeAdapter(Problem), Problem.__name__),
    ):
        for key, schema in _hoisted(adapter, name).items():
            if schemas.setdefault(key, schema) != schema:
                raise ValueError(f"two different schemas are named {key}")
    return schemas


def _ref(name: str) -> dict[str, str]:
    return {"$ref": COMPONENTS_REF.format(model=name)}


def _problem(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _ref(Problem.__name__)}},
        **extra,
    }


def submission_operation() -> dict[str, Any]:
    """`openapi_extra` of POST /v1/signals: the request body and every answer."""
    return {
        "requestBody": {
            "required": True,
            "description": "One signal; `category` picks the model (docs/schemas/signal.submission.v1.json).",
            "content": {"application/json": {"schema": _ref(SUBMISSION_SCHEMA)}},
        },
        "responses": {
            "202": {
                "description": "Accepted and committed.",
                "content": {"application/json": {"schema": _ref(SubmissionAccepted.__name__)}},
            },
            "401": _problem("unauthenticated: no valid access token (expired, revoked, wrong audience...)."),
            "403": _problem(
                "forbidden: the token's organisation is no municipality or lacks the publisher role;"
                " wrong_publisher: another municipality's signal."
            ),
            "409": _problem("duplicate (a known signal_id) or subject_erased."),
            "413": _problem("oversized: the body exceeds the limit."),
            "415": _problem("wrong_content_type: send application/json."),
            "422": _problem("The signal does not meet the contract: one entry per problem."),
            "429": _problem(
                "Too many calls with this credential.",
                headers={"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
            ),
            "503": _problem(
                "Stored, but no committed verdict in time: retry with the same signal_id.",
                headers={"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
            ),
        },
    }


def document_signal_contract(app: FastAPI) -> None:
    """Add the schemas `submission_operation` refers to to the app's components/schemas."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in component_schemas().items():
                if schemas.setdefault(name, schema) != schema:
                    raise ValueError(f"components/schemas/{name} is already another schema")
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
