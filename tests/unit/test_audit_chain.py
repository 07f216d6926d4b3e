"""The audit hash chain: any edit, deletion or reordering is found and named."""

from __future__ import annotations

from typing import Any

from services.audit.chain import GENESIS, chain_hash, verify_chain


def build_chain(count: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    previous = GENESIS
    for seq in range(1, count + 1):
        record: dict[str, Any] = {
            "seq": seq,
            "event_type": "x",
            "signal_id": f"s{seq}",
            "prev_hash": previous.hex(),
        }
        digest = chain_hash(previous, record)
        record["hash"] = digest.hex()
        records.append(record)
        previous = digest
    return records


def test_an_untouched_chain_verifies() -> None:
    result = verify_chain(build_chain(5))
    assert result.intact and result.records_checked == 5


def test_an_edited_record_is_named() -> None:
    records = build_chain(5)
    records[2]["signal_id"] = "forged"
    result = verify_chain(records)
    assert not result.intact and result.first_bad_seq == 3 and "hash" in (result.problem or "")


def test_a_deleted_record_is_named() -> None:
    records = build_chain(5)
    del records[1]
    result = verify_chain(records)
    assert not result.intact and result.first_bad_seq == 3


def test_a_rehashed_edit_still_breaks_the_next_link() -> None:
    records = build_chain(4)
    records[1]["signal_id"] = "forged"
    records[1]["hash"] = chain_hash(bytes.fromhex(records[1]["prev_hash"]), records[1]).hex()
    result = verify_chain(records)
    assert not result.intact and result.first_bad_seq == 3
