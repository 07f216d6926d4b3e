"""The exact bytes of one audit record as a leaf of the Merkle log (documented, stable).

leaf bytes = RFC 8785 (JSON Canonicalization Scheme) of the record object:
  every field of services.audit.log.record.AuditRecord ("seq", "recorded_at", then the fact's)
with `fields` and `reasons` as arrays, absent values as null and times as RFC 3339 strings.
RFC 8785 fixes key order (UTF-16 code units), number and string forms and whitespace, so anyone
can rebuild these bytes from a record in any JSON library that implements it (the `rfc8785`
package here). The leaf hash is SHA-256(0x00 || leaf bytes) (RFC 9162); leaf index = seq - 1, and
`seq` is inside the bytes, so a record cannot be moved to another position and still prove.

Fields added to the record after the log's first release (`ADDED_FIELDS`) are in the bytes only
when they have a value: every leaf written before they existed keeps its exact bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import rfc8785

from services.audit.log.record import AuditRecord
from shared.contracts.tlog.merkle import leaf_hash

ADDED_FIELDS: Final = ("confidential_until",)
"""Later fields: in a leaf only when set (a leaf without them reads exactly as before)."""

LEAF_FIELDS: Final = tuple(f for f in AuditRecord.model_fields if f not in ADDED_FIELDS)
"""What every leaf holds (storage columns such as the leaf hash are not in it)."""


def leaf_bytes(record: AuditRecord | Mapping[str, Any]) -> bytes:
    """The leaf of a stored record, or of its JSON document (e.g. an NDJSON export's line
    without its `proof`): anyone holding the document can rebuild the leaf."""
    document = record.document() if isinstance(record, AuditRecord) else record
    content = {name: document.get(name) for name in LEAF_FIELDS}
    content |= {name: document[name] for name in ADDED_FIELDS if document.get(name) is not None}
    content["fields"] = list(content["fields"] or ())
    content["reasons"] = list(content["reasons"] or ())
    return rfc8785.dumps(content)


def record_leaf_hash(record: AuditRecord | Mapping[str, Any]) -> bytes:
    return leaf_hash(leaf_bytes(record))
