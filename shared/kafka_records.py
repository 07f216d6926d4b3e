"""Fetched records whose header names are not UTF-8 are read, not fatal.

Kafka's protocol calls a header name a String, but the broker stores whatever bytes a client
sent (librdkafka and raw protocol clients can send any). aiokafka decodes every header name as
strict UTF-8 while it unpacks a fetched batch, so one such record makes every `getmany` of its
partition raise UnicodeDecodeError, before the application sees any record, at the same
position, forever: anyone who may write a topic could stop each of its consumers.

`install()` makes aiokafka's fetcher read each batch as before and, only when a batch fails
that way, read it again with such names decoded with U+FFFD replacement characters. The record
then reaches the application like any other; a replaced name is never a name this project
signs or reads, so the record is refused (as unsigned or badly signed) by the code that
checks it. Process-wide and idempotent: every service, the partner SDK and tests call it
before they consume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import _DefaultRecordBatchPy, _DefaultRecordPy
from aiokafka.record.memory_records import _MemoryRecordsPy
from aiokafka.record.util import decode_varint

# stdlib logging, as aiokafka's own: the partner SDK brings no logging library of its own
log = logging.getLogger(__name__)

_FastMemoryRecords: Any = fetcher.MemoryRecords


class _ReplacingRecordBatch(_DefaultRecordBatchPy):  # type: ignore[misc]
    """aiokafka's pure-Python batch reader, but a header name that is not UTF-8 is decoded with
    replacement characters. The record layout (Kafka's DefaultRecord, message format v2):
      Length Varint, Attributes Int8, TimestampDelta Varlong, OffsetDelta Varint,
      Key Bytes, Value Bytes, Headers [HeaderKey String, HeaderValue Bytes]
    (Bytes: a Varint length, -1 for null, then the bytes)."""

    def _read_msg(
        self, decode_varint: Callable[[bytearray, int], tuple[int, int]] = decode_varint
    ) -> _DefaultRecordPy:
        buffer = self._buffer
        pos: int = self._pos  # type: ignore[has-type]
        length, pos = decode_varint(buffer, pos)
        start_pos = pos
        _, pos = decode_varint(buffer, pos)  # attributes: unused in v2 records
        ts_delta, pos = decode_varint(buffer, pos)
        timestamp = (
            self.max_timestamp
            if self.timestamp_type == self.LOG_APPEND_TIME
            else (self.first_timestamp + ts_delta)
        )
        offset_delta, pos = decode_varint(buffer, pos)
        offset = self.base_offset + offset_delta

        def nullable_bytes(pos: int) -> tuple[bytes | None, int]:
            size, pos = decode_varint(buffer, pos)
            if size < 0:
                return None, pos
            return bytes(buffer[pos : pos + size]), pos + size

        key, pos = nullable_bytes(pos)
        value, pos = nullable_bytes(pos)
        header_count, pos = decode_varint(buffer, pos)
        if header_count < 0:
            raise CorruptRecordException(f"Found invalid number of record headers {header_count}")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            name_size, pos = decode_varint(buffer, pos)
            if name_size < 0:
                raise CorruptRecordException(f"Invalid negative header key size {name_size}")
            name = bytes(buffer[pos : pos + name_size]).decode("utf-8", errors="replace")
            pos += name_size
            header_value, pos = nullable_bytes(pos)
            headers.append((name, header_value))
        if pos - start_pos != length:
            raise CorruptRecordException(
                f"Invalid record size: expected {length} bytes in record payload, read {pos - start_pos}"
            )
        self._pos = pos
        return _DefaultRecordPy(offset, timestamp, self.timestamp_type, key, value, headers)


class _ForgivingBatch:
    """One fetched batch: aiokafka's fast reader, else the replacing one (module docstring)."""

    def __init__(self, fast: Any, raw: bytes) -> None:
        self._fast = fast
        self._raw = raw
        self._records: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fast, name)

    def validate_crc(self) -> bool:
        return bool(self._fast.validate_crc())

    def __iter__(self) -> _ForgivingBatch:
        return self

    def __next__(self) -> Any:
        if self._records is None:
            try:
                records = list(self._fast)
            except (UnicodeDecodeError, CorruptRecordException):
                records = list(_ReplacingRecordBatch(self._raw))
                log.warning("record_header_name_not_utf8 base_offset=%d", self._fast.base_offset)
            self._records = iter(records)
        return next(self._records)


class ForgivingMemoryRecords(_MemoryRecordsPy):  # type: ignore[misc]
    """The records of one fetch response, batch by batch (aiokafka's own slicing)."""

    def next_batch(self, *args: Any) -> Any:
        raw = self._next_slice
        batch = super().next_batch(*args)
        if raw is None or batch is None or batch.magic < 2:
            return batch
        return _ForgivingBatch(batch, bytes(raw))


def install() -> None:
    """Make every aiokafka consumer of this process read such records (idempotent)."""
    fetcher.MemoryRecords = ForgivingMemoryRecords
