"""The exact bytes of one audit record as a leaf of the Merkle log (documented, stable).

leaf bytes = RFC 8785 (JSON Canonicalization Scheme) of the record object:
  every field of services.audit.log.record.AuditRecord ("seq", "recorded_at", then the fact's)
with `fields` and `reasons` as arrays, absent values as null and times as RFC 3339 strings.
RFC 8785 fixes key order (UTF-16 code units), number and string forms and whitespace, so anyone
can rebuild these bytes from a record in any JSON library that implements it (the `rfc8785`
package here is the reference). The leaf hash is SHA-256(0x00 || leaf bytes) (RFC 9162); leaf
index = seq - 1, and `seq` is inside the bytes, so a record cannot be moved to another position
and still prove.

Fields added to the record after the log's first release (`ADDED_FIELDS`) are in the bytes only
when they have a value: every leaf written before they existed keeps its exact bytes.

Encoding. What a leaf holds is plain: ASCII keys, strings, null, integers and arrays of strings.
For exactly that, the standard library's C JSON encoder (sorted keys, no whitespace, no ASCII
escaping) writes RFC 8785's bytes: its string escapes are RFC 8785's (`\\"`, `\\\\`, `\\b`,
`\\f`, `\\n`, `\\r`, `\\t`, other controls as lowercase `\\u00xx`, everything else as UTF-8),
code point order is UTF-16 order for ASCII keys, and an integer within +-(2**53 - 1) is its
decimal digits in both. `canonical` uses it there, about six times faster than the reference,
and the reference for anything else (which refuses what RFC 8785 cannot encode: a larger
integer, a lone surrogate). tests/unit/test_audit_leaf.py holds the two to the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import rfc8785

from services.audit.log.record import AuditRecord
from shared.contracts.tlog.merkle import leaf_hash

ADDED_FIELDS: Final = ("confidential_until",)
"""Later fields: in a leaf only when set (a leaf without them reads exactly as before)."""

LEAF_FIELDS: Final = tuple(f for f in AuditRecord.model_fields if f not in ADDED_FIELDS)
"""What every leaf holds (storage columns such as the leaf hash are not in it)."""

SAFE_INTEGER: Final = 2**53 - 1
"""RFC 8785 writes numbers as IEEE 754 doubles: integers beyond this are refused."""

Content = dict[str, Any]
"""A leaf's content: the JSON object its bytes encode (`leaf_content`)."""


ORDER: Final = tuple(sorted((*LEAF_FIELDS, *ADDED_FIELDS)))
"""A leaf's keys in RFC 8785's order (the names are ASCII: UTF-16 order is code point order)."""

_IN_ORDER: Final = frozenset(
    tuple(name for name in ORDER if name not in ADDED_FIELDS or name in added)
    for count in range(len(ADDED_FIELDS) + 1)
    for added in itertools.combinations(ADDED_FIELDS, count)
)
"""The key sequences of leaf content already in that order (`leaf_content` makes them so)."""

Encoder = Callable[[Any, int], Iterator[str]]


def _c_encoder(sort_keys: bool) -> Encoder | None:
    """The C encoder `json.dumps(sort_keys=..., separators=(",", ":"), ensure_ascii=False)` runs,
    made once (dumps builds one per call); None where the interpreter has none."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    strings = getattr(encoder, "c_encode_basestring", None)
    if make is None or strings is None:  # pragma: no cover
        return None
    made: Encoder = make(None, None, strings, None, ":", ",", sort_keys, False, False)
    return made


_ENCODE: Final = _c_encoder(sort_keys=True)
_ENCODE_IN_ORDER: Final = _c_encoder(sort_keys=False)  # a third faster: nothing to sort


def _c_encoded(content: Content) -> bytes:
    assert _ENCODE is not None and _ENCODE_IN_ORDER is not None
    encode = _ENCODE_IN_ORDER if tuple(content) in _IN_ORDER else _ENCODE
    return "".join(encode(content, 0)).encode("utf-8")


def plain(content: Content) -> bool:
    """Whether the C encoder writes RFC 8785's bytes for `content`: keys and strings of any
    text, null, integers within the safe range, arrays of strings (what a leaf holds)."""
    for value in content.values():
        kind = type(value)
        if kind is str or value is None:
            continue
        if kind is int:
            if not -SAFE_INTEGER <= value <= SAFE_INTEGER:
                return False
        elif kind is list or kind is tuple:
            if not all(type(item) is str for item in value):
                return False
        else:
            return False  # a float, a bool, an object: the reference decides
    return "".join(content).isascii()  # ASCII keys: code point order is UTF-16 order


def reference(content: Content) -> bytes:
    """RFC 8785 of `content` with the reference implementation (the `rfc8785` package)."""
    return rfc8785.dumps(content)


def canonical(content: Content) -> bytes:
    """RFC 8785 of a leaf's content: the C encoder where it writes the same bytes (the module's
    docstring), the reference otherwise; either raises what the reference raises."""
    if _ENCODE is not None and plain(content):
        try:
            return _c_encoded(content)
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference refuses it
    return reference(content)


def fast(content: Content) -> bytes:
    """`canonical` without its check that `content` is plain, for what a store hands back to be
    verified: every leaf `canonical` wrote holds plain content, for which the two write the same
    bytes; a record changed to hold anything else is written as JSON that differs from its leaf
    either way (equal JSON text is equal values, types included). Where the C encoder cannot
    write it at all, the reference decides."""
    if _ENCODE is not None:
        try:
            return _c_encoded(content)
        except (ValueError, TypeError, UnicodeEncodeError):
            pass
    return reference(content)


def leaf_content(record: AuditRecord | Mapping[str, Any]) -> Content:
    """The object a record's leaf encodes, from the record or its JSON document, its keys in
    RFC 8785's order."""
    document = record.document() if isinstance(record, AuditRecord) else record
    content = {
        name: document.get(name)
        for name in ORDER
        if name not in ADDED_FIELDS or document.get(name) is not None
    }
    content["fields"] = list(content["fields"] or ())
    content["reasons"] = list(content["reasons"] or ())
    return content


def leaf_bytes(record: AuditRecord | Mapping[str, Any]) -> bytes:
    """The leaf of a stored record, or of its JSON document (e.g. an NDJSON export's line
    without its `proof`): anyone holding the document can rebuild the leaf."""
    return canonical(leaf_content(record))


def record_leaf_hash(record: AuditRecord | Mapping[str, Any]) -> bytes:
    return leaf_hash(leaf_bytes(record))
