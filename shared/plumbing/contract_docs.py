"""The contract documents generated from the code: JSON Schemas and the AsyncAPI document.

    python -m shared.plumbing.contract_docs           # regenerate docs/schemas/*.json and docs/asyncapi.yaml
    python -m shared.plumbing.contract_docs --check   # exit 1, naming the files that are not current

docs/schemas/ holds one JSON Schema (draft 2020-12) per contract: the signal submission, each
versioned event (named after its CloudEvents type without the `nl.safetychain.` prefix) and
the sealed payload. docs/asyncapi.yaml describes every topic; who sends and receives what is
derived from the topic table (shared/contracts/topics.py) in shared/plumbing/asyncapi.py. Both are
deterministic (no timestamps, stable order), so a unit test compares the committed files with
what this module produces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from shared.contracts import agreements, events
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.events import Event, SealedPayload
from shared.contracts.signal import signal_adapter
from shared.contracts.yamlload import SAFE_DUMPER
from shared.plumbing.generated_files import Generator

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
SCHEMAS = "schemas"
ASYNCAPI = "asyncapi.yaml"
SCHEMA_BASE_URI = "https://safety-chain.nl/schemas/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_models() -> list[type[Event]]:
    """Every event in the contract modules that declares its own CloudEvents type."""
    return [
        value
        for module in (events, agreements)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Event)
        and "event_type" in vars(value)
        and value.__module__ == module.__name__
    ]


def schema_file(event: type[Event]) -> str:
    return event.event_type.removeprefix(TYPE_PREFIX) + ".json"


def _document(file: str, title: str, schema: dict[str, Any], comment: str) -> dict[str, Any]:
    body = {key: value for key, value in schema.items() if key != "title"}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + file,
        "title": title,
        "$comment": comment,
        **body,
    }


def _model_document(file: str, model: type[BaseModel], comment: str) -> dict[str, Any]:
    return _document(file, model.__name__, model.model_json_schema(), comment)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, sorted by file name."""
    submission = "signal.submission.v1.json"
    documents = {
        submission: _document(
            submission,
            "SignalSubmission",
            signal_adapter.json_schema(),
            "What a municipal system submits: POST /v1/signals, or sealed in an intake record on"
            " signals.intake.v1. One variant per category, chosen by `category`.",
        ),
        "sealed-payload.v1.json": _model_document(
            "sealed-payload.v1.json",
            SealedPayload,
            "The value of an intake record (sealed to the signals service), the payload of a"
            " delivery (sealed to its partner) and a subject's sealed data key.",
        ),
    }
    for event in event_models():
        file = schema_file(event)
        documents[file] = _model_document(
            file, event, f"The value of a record whose ce_type header is {event.event_type}."
        )
    return dict(sorted(documents.items()))


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic, built with FastStream (shared/plumbing/asyncapi.py)
    from the topic table (shared/contracts/topics.py)."""
    # Imported here so the contracts do not load FastStream otherwise.
    from shared.plumbing.asyncapi import asyncapi_document as build

    return build()


class _Dumper(SAFE_DUMPER):  # type: ignore[misc]  # libyaml's emitter when there is one
    """Block style for multi-line text, no anchors: a document a person reads."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.BaseDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def rendered() -> dict[str, str]:
    """Path relative to the docs folder -> exact file content."""
    files = {
        f"{SCHEMAS}/{name}": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in json_schemas().items()
    }
    files[ASYNCAPI] = to_yaml(asyncapi_document())
    return files


def _render(docs: Path) -> dict[Path, str]:
    # `rendered` is looked up on each call, so that a test may cache it
    return {Path(name): content for name, content in rendered().items()}


GENERATOR = Generator(
    command="python -m shared.plumbing.contract_docs",
    description="Regenerate (or --check) docs/schemas/*.json and docs/asyncapi.yaml.",
    render=_render,
    root=DOCS_DIR,
    root_option="--docs",
    owned=(f"{SCHEMAS}/*.json",),  # a schema no model produces any more is removed
)


def write(folder: Path) -> list[Path]:
    """Bring every document in `folder` (docs/) up to date and remove schema files no model
    produces; returns the paths (relative to `folder`) changed."""
    return GENERATOR.write(folder)


def stale(folder: Path) -> list[str]:
    """Names (relative to `folder`) of documents that are missing, differ, or are left over."""
    return sorted(path.as_posix() for path in GENERATOR.stale(folder))


def main(argv: list[str] | None = None) -> int:
    return GENERATOR.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
