"""RFC 9162 Merkle trees: roots and proofs from stored perfect nodes, checked three ways.

1. Against a naive implementation written in this file straight from RFC 9162 section 2.1
   (MTH, PATH, PROOF/SUBPROOF), for every (index, size) and (first, second) up to 32 leaves.
2. Against the published RFC 6962/9162 vectors of transparency-dev/merkle (the Go library behind
   Trillian, Tessera and the witness network), commit 417fb0c314750d94e53942e9f92e79b6d35915db:
   rfc6962/rfc6962_test.go (hashes), testonly/constants.go (the 8-leaf tree: every perfect node and
   every root), cmd/proofgen/main.go (inclusion and consistency proofs), and every probe of
   testdata/inclusion and testdata/consistency (happy paths and their tamperings).
3. By tampering: every changed proof is refused, and a proof reads O(log n) stored nodes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import pytest

from shared.contracts.tlog.merkle import (
    EMPTY_ROOT,
    InMemoryNodes,
    ProofError,
    completed_nodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 32


# --- A naive RFC 9162 section 2.1 implementation, independent of the module under test ----------


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 section 2.1.1."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _largest_power_of_two_below(n)
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if b else [naive_mth(leaves)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], b), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def naive_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1."""
    return naive_subproof(m, leaves, True)


def _leaf_data(i: int) -> bytes:
    return f"audit record {i}".encode()


LEAVES = [_leaf_data(i) for i in range(MAX_LEAVES)]


@cache
def _log() -> InMemoryNodes:
    log = InMemoryNodes()
    for data in LEAVES:
        log.append(data)
    return log


@cache
def _naive_root(size: int) -> bytes:
    return naive_mth(LEAVES[:size])


def _pairs(low: int) -> list[tuple[int, int]]:
    """Every (a, b) with low <= a < b <= MAX_LEAVES for inclusion (low 0) or a <= b for consistency."""
    if low == 0:
        return [(i, n) for n in range(1, MAX_LEAVES + 1) for i in range(n)]
    return [(m, n) for n in range(1, MAX_LEAVES + 1) for m in range(1, n + 1)]


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _hx(text: str) -> bytes:
    return bytes.fromhex(text)


# --- Hashing ----------------------------------------------------------------------------------


def test_hashes_match_the_rfc_6962_vectors_of_transparency_dev() -> None:
    # rfc6962/rfc6962_test.go TestRFC6962Hasher.
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


# testonly/constants.go: LeafInputs, NodeHashes (every perfect node by level) and RootHashes.
VECTOR_LEAVES = [_hx(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                  "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
VECTOR_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
VECTOR_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@cache
def _vector_log() -> InMemoryNodes:
    log = InMemoryNodes()
    for data in VECTOR_LEAVES:
        log.append(data)
    return log


def test_the_store_holds_exactly_the_published_perfect_nodes_of_the_8_leaf_tree() -> None:
    log = _vector_log()
    for level, hashes in enumerate(VECTOR_NODES):
        for index, expected in enumerate(hashes):
            assert log.perfect_node(level, index).hex() == expected, (level, index)
    # Nothing beyond them: no perfect node of a ninth leaf, no level above the root.
    with pytest.raises(KeyError):
        log.perfect_node(0, 8)
    with pytest.raises(KeyError):
        log.perfect_node(4, 0)


def test_roots_of_every_prefix_of_the_8_leaf_tree_match_the_published_roots() -> None:
    log = _vector_log()
    assert [log.root(size).hex() for size in range(9)] == VECTOR_ROOTS


# cmd/proofgen/main.go inclusionProofs: (leaf index, tree size, path); proofgen numbers leaves from
# 1 (it hashes leaves[leafIdx-1]), so its {1, 8} is leaf index 0 here.
PROOFGEN_INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip

# cmd/proofgen/main.go consistencyProofs: (first, second, proof).
PROOFGEN_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


@pytest.mark.parametrize(("index", "size", "expected"), PROOFGEN_INCLUSION)
def test_inclusion_proofs_match_the_published_proofs(index: int, size: int, expected: list[str]) -> None:
    log = _vector_log()
    proof = inclusion_proof(index, size, log)
    assert [h.hex() for h in proof] == expected
    verify_inclusion(leaf_hash(VECTOR_LEAVES[index]), index, size, proof, _hx(VECTOR_ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "expected"), PROOFGEN_CONSISTENCY)
def test_consistency_proofs_match_the_published_proofs(first: int, second: int, expected: list[str]) -> None:
    log = _vector_log()
    proof = consistency_proof(first, second, log)
    assert [h.hex() for h in proof] == expected
    verify_consistency(first, second, _hx(VECTOR_ROOTS[first]), _hx(VECTOR_ROOTS[second]), proof)


# testdata/inclusion and testdata/consistency, every probe (file name without .json). Generated from
# the JSON files; hashes are interned: each number is a position in _HASHES (base64, as in the JSON;
# some deliberately are not 32 bytes). A null proof in the JSON is the empty tuple here.
_HASHES = (
    "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    "hqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
    "Twg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
    "e0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    "",
    "V3JvbmdSb290",
    "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    "HrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
    "2oVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
    "w37kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
    "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
    "rBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
    "3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=",
    "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
    "oIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "ZG9uJ3QgY2FyZSAy",
    "ZG9uJ3QgY2FyZSAx",
    "q6yroAAAAAAAAAAAAAAAAAAAAAAAAAAAAGAGHgASNFY=",
    "V3JvbmdMZWFm",
    "nqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
    "Vwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
    "Y0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
    "tBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
    "woVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
    "237kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
    "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=",
    "8sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
    "ZjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
    "DTrtAjFI/9KiWfvQzcf7PPl1ZYdg03dbgq9vkKrMLfw=",
)
# (file, leaf index, tree size, leaf hash, proof, root, want error), hashes as positions in _HASHES
_INCLUSION_PROBES = (
    ("inclusion/0/empty-root", 0, 1, 0, (), 24, True),
    ("inclusion/0/happy-path", 0, 1, 0, (), 0, False),
    ("inclusion/0/leafIdx-XOR-@2", 2, 1, 0, (), 0, True),
    ("inclusion/0/leafIdx-plus-@1", 1, 1, 0, (), 0, True),
    ("inclusion/0/leafIdx-sub-@1", 18446744073709551615, 1, 0, (), 0, True),
    ("inclusion/0/preceding-garbage", 0, 1, 0, (8,), 0, True),
    ("inclusion/0/preceding-root", 0, 1, 0, (0,), 0, True),
    ("inclusion/0/random-root", 0, 1, 0, (), 27, True),
    ("inclusion/0/trailing-garbage", 0, 1, 0, (8,), 0, True),
    ("inclusion/0/trailing-root", 0, 1, 0, (0,), 0, True),
    ("inclusion/0/treeSize-div-@2", 0, 0, 0, (), 0, True),
    ("inclusion/0/treeSize-mul-@2", 0, 2, 0, (), 0, True),
    ("inclusion/0/wrong-leaf", 0, 1, 28, (), 0, True),
    ("inclusion/1/empty-root", 0, 8, 0, (2, 3, 4), 24, True),
    ("inclusion/1/happy-path", 0, 8, 0, (2, 3, 4), 1, False),
    ("inclusion/1/inserted-component", 0, 8, 0, (2, 27, 3, 4), 1, True),
    ("inclusion/1/leafIdx-XOR-@2", 2, 8, 0, (2, 3, 4), 1, True),
    ("inclusion/1/leafIdx-plus-@1", 1, 8, 0, (2, 3, 4), 1, True),
    ("inclusion/1/leafIdx-sub-@1", 18446744073709551615, 8, 0, (2, 3, 4), 1, True),
    ("inclusion/1/modified-proof[0]-bit-@3", 0, 8, 0, (29, 3, 4), 1, True),
    ("inclusion/1/modified-proof[1]-bit-@3", 0, 8, 0, (2, 30, 4), 1, True),
    ("inclusion/1/modified-proof[2]-bit-@3", 0, 8, 0, (2, 3, 31), 1, True),
    ("inclusion/1/preceding-garbage", 0, 8, 0, (8, 2, 3, 4), 1, True),
    ("inclusion/1/preceding-root", 0, 8, 0, (1, 2, 3, 4), 1, True),
    ("inclusion/1/random-root", 0, 8, 0, (2, 3, 4), 27, True),
    ("inclusion/1/removed-component", 0, 8, 0, (2, 3), 1, True),
    ("inclusion/1/trailing-garbage", 0, 8, 0, (2, 3, 4, 8), 1, True),
    ("inclusion/1/trailing-root", 0, 8, 0, (2, 3, 4, 1), 1, True),
    ("inclusion/1/treeSize-div-@2", 0, 4, 0, (2, 3, 4), 1, True),
    ("inclusion/1/treeSize-mul-@2", 0, 16, 0, (2, 3, 4), 1, True),
    ("inclusion/1/wrong-leaf", 0, 8, 28, (2, 3, 4), 1, True),
    ("inclusion/2/empty-root", 5, 8, 32, (19, 12, 13), 24, True),
    ("inclusion/2/happy-path", 5, 8, 32, (19, 12, 13), 1, False),
    ("inclusion/2/inserted-component", 5, 8, 32, (19, 27, 12, 13), 1, True),
    ("inclusion/2/leafIdx-XOR-@2", 7, 8, 32, (19, 12, 13), 1, True),
    ("inclusion/2/leafIdx-plus-@1", 6, 8, 32, (19, 12, 13), 1, True),
    ("inclusion/2/leafIdx-sub-@1", 4, 8, 32, (19, 12, 13), 1, True),
    ("inclusion/2/modified-proof[0]-bit-@3", 5, 8, 32, (33, 12, 13), 1, True),
    ("inclusion/2/modified-proof[1]-bit-@3", 5, 8, 32, (19, 34, 13), 1, True),
    ("inclusion/2/modified-proof[2]-bit-@3", 5, 8, 32, (19, 12, 35), 1, True),
    ("inclusion/2/preceding-garbage", 5, 8, 32, (8, 19, 12, 13), 1, True),
    ("inclusion/2/preceding-root", 5, 8, 32, (1, 19, 12, 13), 1, True),
    ("inclusion/2/random-root", 5, 8, 32, (19, 12, 13), 27, True),
    ("inclusion/2/removed-component", 5, 8, 32, (19, 12), 1, True),
    ("inclusion/2/trailing-garbage", 5, 8, 32, (19, 12, 13, 8), 1, True),
    ("inclusion/2/trailing-root", 5, 8, 32, (19, 12, 13, 1), 1, True),
    ("inclusion/2/treeSize-div-@2", 5, 4, 32, (19, 12, 13), 1, True),
    ("inclusion/2/treeSize-mul-@2", 5, 16, 32, (19, 12, 13), 1, True),
    ("inclusion/2/wrong-leaf", 5, 8, 28, (19, 12, 13), 1, True),
    ("inclusion/3/empty-root", 2, 3, 36, (17,), 24, True),
    ("inclusion/3/happy-path", 2, 3, 36, (17,), 37, False),
    ("inclusion/3/leafIdx-XOR-@2", 0, 3, 36, (17,), 37, True),
    ("inclusion/3/leafIdx-plus-@1", 3, 3, 36, (17,), 37, True),
    ("inclusion/3/leafIdx-sub-@1", 1, 3, 36, (17,), 37, True),
    ("inclusion/3/modified-proof[0]-bit-@3", 2, 3, 36, (38,), 37, True),
    ("inclusion/3/preceding-garbage", 2, 3, 36, (8, 17), 37, True),
    ("inclusion/3/preceding-root", 2, 3, 36, (37, 17), 37, True),
    ("inclusion/3/random-root", 2, 3, 36, (17,), 27, True),
    ("inclusion/3/removed-component", 2, 3, 36, (), 37, True),
    ("inclusion/3/trailing-garbage", 2, 3, 36, (17, 8), 37, True),
    ("inclusion/3/trailing-root", 2, 3, 36, (17, 37), 37, True),
    ("inclusion/3/treeSize-div-@2", 2, 1, 36, (17,), 37, True),
    ("inclusion/3/treeSize-mul-@2", 2, 6, 36, (17,), 37, True),
    ("inclusion/3/wrong-leaf", 2, 3, 28, (17,), 37, True),
    ("inclusion/4/empty-root", 1, 5, 2, (0, 3, 19), 24, True),
    ("inclusion/4/happy-path", 1, 5, 2, (0, 3, 19), 18, False),
    ("inclusion/4/inserted-component", 1, 5, 2, (0, 27, 3, 19), 18, True),
    ("inclusion/4/leafIdx-XOR-@2", 3, 5, 2, (0, 3, 19), 18, True),
    ("inclusion/4/leafIdx-plus-@1", 2, 5, 2, (0, 3, 19), 18, True),
    ("inclusion/4/leafIdx-sub-@1", 0, 5, 2, (0, 3, 19), 18, True),
    ("inclusion/4/modified-proof[0]-bit-@3", 1, 5, 2, (39, 3, 19), 18, True),
    ("inclusion/4/modified-proof[1]-bit-@3", 1, 5, 2, (0, 30, 19), 18, True),
    ("inclusion/4/modified-proof[2]-bit-@3", 1, 5, 2, (0, 3, 33), 18, True),
    ("inclusion/4/preceding-garbage", 1, 5, 2, (8, 0, 3, 19), 18, True),
    ("inclusion/4/preceding-root", 1, 5, 2, (18, 0, 3, 19), 18, True),
    ("inclusion/4/random-root", 1, 5, 2, (0, 3, 19), 27, True),
    ("inclusion/4/removed-component", 1, 5, 2, (0, 3), 18, True),
    ("inclusion/4/trailing-garbage", 1, 5, 2, (0, 3, 19, 8), 18, True),
    ("inclusion/4/trailing-root", 1, 5, 2, (0, 3, 19, 18), 18, True),
    ("inclusion/4/treeSize-div-@2", 1, 2, 2, (0, 3, 19), 18, True),
    ("inclusion/4/treeSize-mul-@2", 1, 10, 2, (0, 3, 19), 18, True),
    ("inclusion/4/wrong-leaf", 1, 5, 28, (0, 3, 19), 18, True),
    ("inclusion/additional/0/empty-root-and-random-leaf", 0, 0, 27, (), 24, True),
    ("inclusion/additional/0/empty-root", 0, 0, 8, (), 24, True),
    ("inclusion/additional/0/random-leaf", 0, 0, 27, (), 8, True),
    ("inclusion/additional/1/empty-root-and-random-leaf", 0, 1, 27, (), 24, True),
    ("inclusion/additional/1/empty-root", 0, 1, 8, (), 24, True),
    ("inclusion/additional/1/random-leaf", 0, 1, 27, (), 8, True),
    ("inclusion/additional/2/empty-root-and-random-leaf", 1, 0, 27, (), 24, True),
    ("inclusion/additional/2/empty-root", 1, 0, 8, (), 24, True),
    ("inclusion/additional/2/random-leaf", 1, 0, 27, (), 8, True),
    ("inclusion/additional/3/empty-root-and-random-leaf", 2, 1, 27, (), 24, True),
    ("inclusion/additional/3/empty-root", 2, 1, 8, (), 24, True),
    ("inclusion/additional/3/random-leaf", 2, 1, 27, (), 8, True),
    ("inclusion/single-entry/empty-leaf", 0, 1, 8, (), 40, True),
    ("inclusion/single-entry/empty-root-and-leaf", 0, 1, 8, (), 8, True),
    ("inclusion/single-entry/empty-root", 0, 1, 40, (), 8, True),
    ("inclusion/single-entry/matching-root-and-leaf", 0, 1, 40, (), 40, False),
)
# (file, first size, second size, first root, second root, proof, want error)
_CONSISTENCY_PROBES = (
    ("consistency/0/happy-path", 1, 1, 0, 0, (), False),
    ("consistency/1/empty-proof", 1, 8, 0, 1, (), True),
    ("consistency/1/happy-path", 1, 8, 0, 1, (2, 3, 4), False),
    ("consistency/1/modified-proof@0-bit-@4", 1, 8, 0, 1, (5, 3, 4), True),
    ("consistency/1/modified-proof@1-bit-@4", 1, 8, 0, 1, (2, 6, 4), True),
    ("consistency/1/modified-proof@2-bit-@4", 1, 8, 0, 1, (2, 3, 7), True),
    ("consistency/1/preceding-garbage", 1, 8, 0, 1, (8, 2, 3, 4), True),
    ("consistency/1/preceding-proof-@0", 1, 8, 0, 1, (2, 2, 3, 4), True),
    ("consistency/1/preceding-root1", 1, 8, 0, 1, (0, 2, 3, 4), True),
    ("consistency/1/preceding-root2", 1, 8, 0, 1, (1, 2, 3, 4), True),
    ("consistency/1/size1-XOR-@2", 3, 8, 0, 1, (2, 3, 4), True),
    ("consistency/1/size1-plus-@1", 2, 8, 0, 1, (2, 3, 4), True),
    ("consistency/1/size1-sub-@1", 0, 8, 0, 1, (2, 3, 4), True),
    ("consistency/1/size2-div-@2", 1, 4, 0, 1, (2, 3, 4), True),
    ("consistency/1/size2-mul-@2", 1, 16, 0, 1, (2, 3, 4), True),
    ("consistency/1/swapped-roots", 1, 8, 1, 0, (2, 3, 4), True),
    ("consistency/1/trailing-garbage", 1, 8, 0, 1, (2, 3, 4, 8), True),
    ("consistency/1/trailing-root1", 1, 8, 0, 1, (2, 3, 4, 0), True),
    ("consistency/1/trailing-root2", 1, 8, 0, 1, (2, 3, 4, 1), True),
    ("consistency/1/truncated-proof", 1, 8, 0, 1, (2, 3), True),
    ("consistency/1/wrong-root1", 1, 8, 9, 1, (2, 3, 4), True),
    ("consistency/1/wrong-root2", 1, 8, 0, 9, (2, 3, 4), True),
    ("consistency/2/empty-proof", 6, 8, 10, 1, (), True),
    ("consistency/2/happy-path", 6, 8, 10, 1, (11, 12, 13), False),
    ("consistency/2/modified-proof@0-bit-@4", 6, 8, 10, 1, (14, 12, 13), True),
    ("consistency/2/modified-proof@1-bit-@4", 6, 8, 10, 1, (11, 15, 13), True),
    ("consistency/2/modified-proof@2-bit-@4", 6, 8, 10, 1, (11, 12, 16), True),
    ("consistency/2/preceding-garbage", 6, 8, 10, 1, (8, 11, 12, 13), True),
    ("consistency/2/preceding-proof-@0", 6, 8, 10, 1, (11, 11, 12, 13), True),
    ("consistency/2/preceding-root1", 6, 8, 10, 1, (10, 11, 12, 13), True),
    ("consistency/2/preceding-root2", 6, 8, 10, 1, (1, 11, 12, 13), True),
    ("consistency/2/size1-XOR-@2", 4, 8, 10, 1, (11, 12, 13), True),
    ("consistency/2/size1-plus-@1", 7, 8, 10, 1, (11, 12, 13), True),
    ("consistency/2/size1-sub-@1", 5, 8, 10, 1, (11, 12, 13), True),
    ("consistency/2/size2-div-@2", 6, 4, 10, 1, (11, 12, 13), True),
    ("consistency/2/size2-mul-@2", 6, 16, 10, 1, (11, 12, 13), True),
    ("consistency/2/swapped-roots", 6, 8, 1, 10, (11, 12, 13), True),
    ("consistency/2/trailing-garbage", 6, 8, 10, 1, (11, 12, 13, 8), True),
    ("consistency/2/trailing-root1", 6, 8, 10, 1, (11, 12, 13, 10), True),
    ("consistency/2/trailing-root2", 6, 8, 10, 1, (11, 12, 13, 1), True),
    ("consistency/2/truncated-proof", 6, 8, 10, 1, (11, 12), True),
    ("consistency/2/wrong-root1", 6, 8, 9, 1, (11, 12, 13), True),
    ("consistency/2/wrong-root2", 6, 8, 10, 9, (11, 12, 13), True),
    ("consistency/3/empty-proof", 2, 5, 17, 18, (), True),
    ("consistency/3/happy-path", 2, 5, 17, 18, (3, 19), False),
    ("consistency/3/modified-proof@0-bit-@4", 2, 5, 17, 18, (6, 19), True),
    ("consistency/3/modified-proof@1-bit-@4", 2, 5, 17, 18, (3, 20), True),
    ("consistency/3/preceding-garbage", 2, 5, 17, 18, (8, 3, 19), True),
    ("consistency/3/preceding-proof-@0", 2, 5, 17, 18, (3, 3, 19), True),
    ("consistency/3/preceding-root1", 2, 5, 17, 18, (17, 3, 19), True),
    ("consistency/3/preceding-root2", 2, 5, 17, 18, (18, 3, 19), True),
    ("consistency/3/size1-XOR-@2", 0, 5, 17, 18, (3, 19), True),
    ("consistency/3/size1-plus-@1", 3, 5, 17, 18, (3, 19), True),
    ("consistency/3/size1-sub-@1", 1, 5, 17, 18, (3, 19), True),
    ("consistency/3/size2-div-@2", 2, 2, 17, 18, (3, 19), True),
    ("consistency/3/size2-mul-@2", 2, 10, 17, 18, (3, 19), True),
    ("consistency/3/swapped-roots", 2, 5, 18, 17, (3, 19), True),
    ("consistency/3/trailing-garbage", 2, 5, 17, 18, (3, 19, 8), True),
    ("consistency/3/trailing-root1", 2, 5, 17, 18, (3, 19, 17), True),
    ("consistency/3/trailing-root2", 2, 5, 17, 18, (3, 19, 18), True),
    ("consistency/3/truncated-proof", 2, 5, 17, 18, (3,), True),
    ("consistency/3/wrong-root1", 2, 5, 9, 18, (3, 19), True),
    ("consistency/3/wrong-root2", 2, 5, 17, 9, (3, 19), True),
    ("consistency/4/empty-proof", 6, 7, 10, 21, (), True),
    ("consistency/4/happy-path", 6, 7, 10, 21, (11, 22, 13), False),
    ("consistency/4/modified-proof@0-bit-@4", 6, 7, 10, 21, (14, 22, 13), True),
    ("consistency/4/modified-proof@1-bit-@4", 6, 7, 10, 21, (11, 23, 13), True),
    ("consistency/4/modified-proof@2-bit-@4", 6, 7, 10, 21, (11, 22, 16), True),
    ("consistency/4/preceding-garbage", 6, 7, 10, 21, (8, 11, 22, 13), True),
    ("consistency/4/preceding-proof-@0", 6, 7, 10, 21, (11, 11, 22, 13), True),
    ("consistency/4/preceding-root1", 6, 7, 10, 21, (10, 11, 22, 13), True),
    ("consistency/4/preceding-root2", 6, 7, 10, 21, (21, 11, 22, 13), True),
    ("consistency/4/size1-XOR-@2", 4, 7, 10, 21, (11, 22, 13), True),
    ("consistency/4/size1-plus-@1", 7, 7, 10, 21, (11, 22, 13), True),
    ("consistency/4/size1-sub-@1", 5, 7, 10, 21, (11, 22, 13), True),
    ("consistency/4/size2-div-@2", 6, 3, 10, 21, (11, 22, 13), True),
    ("consistency/4/size2-mul-@2", 6, 14, 10, 21, (11, 22, 13), True),
    ("consistency/4/swapped-roots", 6, 7, 21, 10, (11, 22, 13), True),
    ("consistency/4/trailing-garbage", 6, 7, 10, 21, (11, 22, 13, 8), True),
    ("consistency/4/trailing-root1", 6, 7, 10, 21, (11, 22, 13, 10), True),
    ("consistency/4/trailing-root2", 6, 7, 10, 21, (11, 22, 13, 21), True),
    ("consistency/4/truncated-proof", 6, 7, 10, 21, (11, 22), True),
    ("consistency/4/wrong-root1", 6, 7, 9, 21, (11, 22, 13), True),
    ("consistency/4/wrong-root2", 6, 7, 10, 9, (11, 22, 13), True),
    (
        "consistency/additional/consistency-check-on-empty-tree-size1-is-zero-is-useless",
        0,
        1,
        24,
        24,
        (24,),
        True,
    ),
    ("consistency/additional/roots-do-not-match-and-sizes-are-zero", 0, 0, 24, 25, (), True),
    ("consistency/additional/roots-do-not-not-match-and-sizes-are-one", 1, 1, 24, 25, (), True),
    ("consistency/additional/size1-is-greater-than-size2-again", 2, 1, 26, 25, (), True),
    ("consistency/additional/size1-is-greater-than-size2", 1, 0, 26, 25, (), True),
    ("consistency/additional/size1-is-zero-and-does-not-equal-size2", 0, 1, 26, 25, (), True),
    ("consistency/additional/size1-is-zero-and-size2-is-not-zero", 0, 1, 24, 25, (), True),
    ("consistency/additional/sizes-are-equal-one-and-proof-is-empty", 1, 1, 25, 25, (), False),
    ("consistency/additional/sizes-are-equal-one-but-roots-are-not", 1, 1, 26, 25, (), True),
    ("consistency/additional/sizes-are-equal-zero-and-proof-is-empty", 0, 0, 26, 26, (), True),
    ("consistency/additional/sizes-are-equal-zero-but-roots-are-not", 0, 0, 26, 25, (), True),
    ("consistency/additional/sizes-do-not-watch-and-proof-is-empty", 1, 2, 26, 25, (), True),
    (
        "consistency/additional/sizes-match-but-proof-is-not-empty-and-sizes-are-one",
        1,
        1,
        24,
        24,
        (24,),
        True,
    ),
    (
        "consistency/additional/sizes-match-but-proof-is-not-empty-and-sizes-are-zero",
        0,
        0,
        24,
        24,
        (24,),
        True,
    ),
)

# Where we are stricter than Go: the probe's roots are the 12-byte "don't care 2", equal to each
# other, and Go compares them as given; we refuse any root that is not 32 bytes.
_STRICTER_THAN_GO = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty"}


def _expect(want_error: bool, check: Callable[[], None]) -> None:
    if want_error:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("probe", _INCLUSION_PROBES, ids=lambda p: p[0])
def test_published_inclusion_probes(probe: tuple[str, int, int, int, tuple[int, ...], int, bool]) -> None:
    _name, index, size, leaf, proof, root_hash, want_error = probe
    _expect(
        want_error,
        lambda: verify_inclusion(
            _b64(_HASHES[leaf]), index, size, [_b64(_HASHES[h]) for h in proof], _b64(_HASHES[root_hash])
        ),
    )


@pytest.mark.parametrize("probe", _CONSISTENCY_PROBES, ids=lambda p: p[0])
def test_published_consistency_probes(probe: tuple[str, int, int, int, int, tuple[int, ...], bool]) -> None:
    name, first, second, first_root, second_root, proof, want_error = probe
    _expect(
        want_error or name in _STRICTER_THAN_GO,
        lambda: verify_consistency(
            first,
            second,
            _b64(_HASHES[first_root]),
            _b64(_HASHES[second_root]),
            [_b64(_HASHES[h]) for h in proof],
        ),
    )


def test_the_published_probes_include_happy_paths_and_tamperings() -> None:
    # Guards the table itself: both outcomes occur, so the probe tests can fail either way.
    outcomes = {p[-1] for p in _INCLUSION_PROBES} | {p[-1] for p in _CONSISTENCY_PROBES}
    assert outcomes == {True, False}
    assert len(_INCLUSION_PROBES) == 98 and len(_CONSISTENCY_PROBES) == 98


# --- Against the naive RFC implementation, every size up to 32 --------------------------------


def test_roots_match_the_rfc_definition_for_every_size() -> None:
    log = _log()
    for size in range(MAX_LEAVES + 1):
        assert root(size, log) == _naive_root(size), size


def test_inclusion_proofs_match_the_rfc_definition_and_verify() -> None:
    log = _log()
    for index, size in _pairs(0):
        proof = inclusion_proof(index, size, log)
        assert proof == naive_path(index, LEAVES[:size]), (index, size)
        verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, _naive_root(size))


def test_consistency_proofs_match_the_rfc_definition_and_verify() -> None:
    log = _log()
    for first, second in _pairs(1):
        proof = consistency_proof(first, second, log)
        assert proof == naive_proof(first, LEAVES[:second]), (first, second)
        verify_consistency(first, second, _naive_root(first), _naive_root(second), proof)


def test_an_append_completes_exactly_the_perfect_nodes_above_the_new_leaf() -> None:
    log = InMemoryNodes()
    for index, data in enumerate(LEAVES):
        leaf = leaf_hash(data)
        completed = completed_nodes(index, leaf, log)
        # One node per level while the new leaf closes a right child, each the naive subtree hash.
        assert [(level, i) for level, i, _ in completed] == [
            (level, index >> level) for level in range(len(completed))
        ]
        for level, i, node in completed:
            assert node == naive_mth(LEAVES[i << level : (i + 1) << level])
        assert len(completed) == 1 + (~index & (index + 1)).bit_length() - 1
        log.append_leaf_hash(leaf)
    # A store of n leaves holds 2n - popcount(n) perfect nodes: nothing is stored twice.
    stored = sum(1 for level in range(6) for i in range(MAX_LEAVES) if _has_node(log, level, i))
    assert stored == 2 * MAX_LEAVES - bin(MAX_LEAVES).count("1")


def _has_node(log: InMemoryNodes, level: int, index: int) -> bool:
    try:
        log.perfect_node(level, index)
    except KeyError:
        return False
    return True


# --- Tampering: every changed proof is refused --------------------------------------------------


def _flip_bit(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


def _tampered(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    variants: list[tuple[str, list[bytes]]] = []
    for position, value in enumerate(proof):
        for bit in (0, 131, 255):
            variants.append((f"bit {bit} of hash {position} flipped", [*proof[:position],
                             _flip_bit(value, bit), *proof[position + 1 :]]))  # fmt: skip
        variants.append((f"hash {position} dropped", proof[:position] + proof[position + 1 :]))
        variants.append((f"hash {position} doubled", [*proof[: position + 1], *proof[position:]]))
    for a, b in itertools.combinations(range(len(proof)), 2):
        if proof[a] != proof[b]:
            swapped = list(proof)
            swapped[a], swapped[b] = swapped[b], swapped[a]
            variants.append((f"hashes {a} and {b} swapped", swapped))
    extra = hashlib.sha256(b"extra").digest()
    variants.append(("hash prepended", [extra, *proof]))
    variants.append(("hash appended", [*proof, extra]))
    variants.append(("a real node appended", [*proof, _naive_root(1)]))
    return variants


def _accepts(verify: Callable[..., None], *args: Any) -> bool:
    """Whether `verify` takes these arguments (a refusal is a ProofError; anything else is a bug)."""
    try:
        verify(*args)
    except ProofError:
        return False
    return True


def test_every_tampered_inclusion_proof_is_refused() -> None:
    log = _log()
    accepted: list[str] = []
    for index, size in _pairs(0):
        proof = inclusion_proof(index, size, log)
        leaf, root_hash = leaf_hash(LEAVES[index]), _naive_root(size)
        accepted += [
            f"({index}, {size}) with {what}"
            for what, bad in _tampered(proof)
            if _accepts(verify_inclusion, leaf, index, size, bad, root_hash)
        ]
        # Another leaf, and this leaf claimed at another index.
        if _accepts(verify_inclusion, leaf_hash(b"not in the log"), index, size, proof, root_hash):
            accepted.append(f"({index}, {size}) for another leaf")
        accepted += [
            f"({index}, {size}) claimed at index {other}"
            for other in range(size)
            if other != index and _accepts(verify_inclusion, leaf, other, size, proof, root_hash)
        ]
        # Another size, with that size's true root (size and root come together from a checkpoint):
        # refused unless the proof for that size is literally the same list of hashes.
        accepted += [
            f"({index}, {size}) claimed for size {other_size}"
            for other_size in range(index + 1, MAX_LEAVES + 1)
            if other_size != size
            and inclusion_proof(index, other_size, log) != proof
            and _accepts(verify_inclusion, leaf, index, other_size, proof, _naive_root(other_size))
        ]
    assert accepted == []


def test_every_tampered_consistency_proof_is_refused() -> None:
    log = _log()
    accepted: list[str] = []
    for first, second in _pairs(1):
        proof = consistency_proof(first, second, log)
        first_root, second_root = _naive_root(first), _naive_root(second)
        accepted += [
            f"({first}, {second}) with {what}"
            for what, bad in _tampered(proof)
            if _accepts(verify_consistency, first, second, first_root, second_root, bad)
        ]
        # A wrong first or second size, with that size's true root (size and root come together
        # from a checkpoint): refused unless the proof for that claim is the very same list.
        claims = [(m, second) for m in range(1, second + 1)] + [
            (first, n) for n in range(first, MAX_LEAVES + 1)
        ]
        accepted += [
            f"({first}, {second}) claimed as ({other_first}, {other_second})"
            for other_first, other_second in claims
            if _consistency(other_first, other_second) != proof
            and _accepts(
                verify_consistency,
                other_first,
                other_second,
                _naive_root(other_first),
                _naive_root(other_second),
                proof,
            )
        ]
    assert accepted == []


@cache
def _consistency(first: int, second: int) -> list[bytes]:
    return consistency_proof(first, second, _log())


def test_a_rewritten_history_is_not_consistent_with_the_old_checkpoint() -> None:
    # Two logs agree except for one leaf: no proof from the rewritten log links the old root to it.
    for changed in range(0, 16, 3):
        rewritten_leaves = list(LEAVES[:16])
        rewritten_leaves[changed] = b"rewritten"
        rewritten = InMemoryNodes()
        for data in rewritten_leaves:
            rewritten.append(data)
        for first in range(changed + 1, 16):
            for second in range(first, 17):
                with pytest.raises(ProofError):
                    verify_consistency(
                        first,
                        second,
                        _naive_root(first),
                        rewritten.root(second),
                        consistency_proof(first, second, rewritten),
                    )


def test_a_split_view_of_the_same_size_is_refused() -> None:
    rewritten = InMemoryNodes()
    for data in [*LEAVES[:4], b"other"]:
        rewritten.append(data)
    with pytest.raises(ProofError, match="two different roots"):
        verify_consistency(5, 5, _naive_root(5), rewritten.root(), [])


@pytest.mark.parametrize(
    ("index", "size", "reason"),
    [(3, 3, "not below"), (4, 3, "not below"), (0, 0, "not below"), (-1, 3, "negative")],
)
def test_inclusion_refuses_an_index_outside_the_tree(index: int, size: int, reason: str) -> None:
    with pytest.raises(ProofError, match=reason):
        verify_inclusion(leaf_hash(b"x"), index, size, [], EMPTY_ROOT)


def test_inclusion_refuses_a_proof_of_the_wrong_length_with_its_reason() -> None:
    log = _log()
    proof = inclusion_proof(5, 13, log)
    with pytest.raises(ProofError, match="more hashes"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 13, [*proof, proof[0]], _naive_root(13))
    with pytest.raises(ProofError, match="fewer hashes"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 13, proof[:-1], _naive_root(13))
    with pytest.raises(ProofError, match="does not lead"):
        verify_inclusion(leaf_hash(LEAVES[6]), 5, 13, proof, _naive_root(13))
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 13, [proof[0][:31], *proof[1:]], _naive_root(13))


def test_consistency_refuses_malformed_sizes_and_lengths_with_their_reason() -> None:
    log = _log()
    r5, r9 = _naive_root(5), _naive_root(9)
    proof = consistency_proof(5, 9, log)
    with pytest.raises(ProofError, match="larger than"):
        verify_consistency(9, 5, r9, r5, proof)
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, r5, r5, proof)
    with pytest.raises(ProofError, match="empty proof"):
        verify_consistency(5, 9, r5, r9, [])
    with pytest.raises(ProofError, match="more hashes"):
        verify_consistency(5, 9, r5, r9, [*proof, proof[0]])
    with pytest.raises(ProofError, match="fewer hashes"):
        verify_consistency(5, 9, r5, r9, proof[:-1])
    with pytest.raises(ProofError, match="tree of 5"):
        verify_consistency(5, 9, _naive_root(6), r9, proof)
    with pytest.raises(ProofError, match="tree of 9"):
        verify_consistency(5, 9, r5, _naive_root(10), proof)


def test_builders_refuse_impossible_requests() -> None:
    log = _log()
    requests: list[Callable[[], object]] = [
        partial(inclusion_proof, 4, 4, log),
        partial(inclusion_proof, -1, 4, log),
        partial(consistency_proof, 0, 4, log),
        partial(consistency_proof, 5, 4, log),
        partial(root, -1, log),
        partial(completed_nodes, 0, b"short", log),
    ]
    for request in requests:
        with pytest.raises(ValueError):
            request()
    # Asking for a size the store does not hold reads a node it does not have.
    with pytest.raises(KeyError):
        root(MAX_LEAVES + 1, log)


# --- Cost: a proof reads O(log n) stored nodes ---------------------------------------------------


class UniformTree:
    """A counting NodeReader over a real tree of `size` identical leaves.

    With identical leaves every perfect node of a level has the same hash, so a tree of a million
    leaves is exact without hashing them all. Asking for a node that is not complete raises, as a
    store would; `reads` counts the nodes asked for.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.reads = 0
        self._levels = [leaf_hash(b"the same record")]
        while len(self._levels) <= size.bit_length():
            self._levels.append(node_hash(self._levels[-1], self._levels[-1]))

    def perfect_node(self, level: int, index: int) -> bytes:
        if index < 0 or (index + 1) << level > self.size:
            raise KeyError((level, index))
        self.reads += 1
        return self._levels[level]

    def count(self, work: Callable[[], object]) -> int:
        self.reads = 0
        work()
        return self.reads


def test_a_proof_in_a_log_of_a_million_leaves_reads_o_log_n_nodes() -> None:
    n = 2**20 + 3
    tree = UniformTree(n)
    bound = 2 * n.bit_length() + 2  # one node per level, plus the nodes under one non-perfect edge
    assert tree.count(lambda: root(n, tree)) == bin(n).count("1")
    root_n = root(n, tree)
    for index in (0, 1, n // 2, 2**20 - 1, 2**20, n - 2, n - 1):
        reads = tree.count(partial(inclusion_proof, index, n, tree))
        assert reads <= bound, (index, reads)
        verify_inclusion(tree.perfect_node(0, index), index, n, inclusion_proof(index, n, tree), root_n)
    for first in (1, 2, 3, 1000, 2**19 + 1, 2**20, 2**20 + 1, n - 1):
        reads = tree.count(partial(consistency_proof, first, n, tree))
        assert reads <= bound, (first, reads)
        verify_consistency(first, n, root(first, tree), root_n, consistency_proof(first, n, tree))


def test_appending_reads_one_stored_node_per_append_on_average() -> None:
    n = 1024
    tree = UniformTree(n)
    total = sum(tree.count(partial(completed_nodes, i, leaf_hash(b"x"), tree)) for i in range(n))
    assert total == n - 1  # each interior node is built once, from one stored left sibling
