"""C2SP checkpoints, witness cosignatures and proof files, checked against the C2SP specs' examples.

Vectors: C2SP/C2SP commit 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9 — tlog-checkpoint.md (the
example checkpoint body), tlog-cosignature.md (the example cosignature line, whose timestamp is the
one of the example signed message "cosignature/v1 / time 1679315147 / ..."), tlog-proof.md (the
example proof file). The specs publish no private key for their signatures, so the cosignature's
byte layout is also checked against one built in this file straight from tlog-cosignature.md with
hashlib and `cryptography`, independently of the module under test.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.tlog.checkpoint import (
    PROOF_HEADER,
    Checkpoint,
    CheckpointError,
    CosignatureVerifier,
    Cosigner,
    build_proof_file,
    cosignature_message,
    cosignature_timestamp,
    open_checkpoint,
    parse_proof_file,
    sign_checkpoint,
    verify_proof_file,
)
from shared.contracts.tlog.merkle import InMemoryNodes, ProofError, inclusion_proof
from shared.contracts.tlog.note import (
    InvalidSignatureError,
    NoteError,
    Signer,
    add_signatures,
    parse_note,
    sign_note,
)

SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIGNED = (
    SPEC_BODY
    + "\n"
    + "— example.com/behind-the-sofa "
    + "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    + "— witness.example.com/w1 "
    + "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+"
    + "mbIUBkBIfZ+qnA==\n"
)
SPEC_SIGNED_MESSAGE = (
    "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_PROOF_HEAD = (
    "c2sp.org/tlog-proof@v1\n"
    "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
    "index 73894\n"
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
    "\n"
    "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
    "\n"
)

ORIGIN = "audit.safety-chain.example/log"
LOG = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
WITNESS_1 = Cosigner(
    "witness.gemeente-a.example/w1",
    Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))),
    lambda: 1767225600,
)
WITNESS_2 = Cosigner(
    "witness.partner-b.example/w2",
    Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))),
    lambda: 1767225601,
)
RECORDS = [f'{{"seq":{i},"event":"signal.accepted"}}'.encode() for i in range(11)]


def _log(records: list[bytes]) -> InMemoryNodes:
    log = InMemoryNodes()
    for record in records:
        log.append(record)
    return log


def _cosigned(log: InMemoryNodes, *witnesses: Cosigner, extensions: tuple[str, ...] = ()) -> str:
    checkpoint = Checkpoint(ORIGIN, log.size, log.root(), extensions)
    return add_signatures(sign_checkpoint(checkpoint, LOG), *witnesses)


# --- Checkpoint bodies ---------------------------------------------------------------------------


def test_the_spec_example_body_parses_and_is_written_back_byte_for_byte() -> None:
    checkpoint = Checkpoint.parse(SPEC_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.to_body() == SPEC_BODY


def test_extension_lines_are_kept_in_order() -> None:
    body = SPEC_BODY + "first extension\nsecond\n"
    checkpoint = Checkpoint.parse(body)
    assert checkpoint.extensions == ("first extension", "second")
    assert checkpoint.to_body() == body


@pytest.mark.parametrize(
    "body",
    [
        "example.com/log\n5\n",  # no root hash line
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",  # no final newline
        "\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # empty origin
        "example.com/log\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
        "example.com/log\n+5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n-5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n 5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n1_0\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n\u0665\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # Arabic-Indic five
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2=\n",  # 31 bytes
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # no padding
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  # non-canonical
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",  # empty extension
    ],
)
def test_malformed_checkpoint_bodies_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


def test_a_checkpoint_cannot_be_made_that_could_not_be_parsed() -> None:
    root = bytes(32)
    requests: list[Callable[[], object]] = [
        lambda: Checkpoint("", 1, root),
        lambda: Checkpoint("two\nlines", 1, root),
        lambda: Checkpoint(ORIGIN, -1, root),
        lambda: Checkpoint(ORIGIN, 1, bytes(31)),
        lambda: Checkpoint(ORIGIN, 1, root, ("",)),
    ]
    for request in requests:
        with pytest.raises(CheckpointError):
            request()


# --- Cosignatures --------------------------------------------------------------------------------


def test_the_spec_example_cosignature_carries_the_spec_example_timestamp_big_endian() -> None:
    text, signatures = parse_note(SPEC_COSIGNED)
    assert text == SPEC_BODY
    witness = signatures[1]
    assert witness.name == "witness.example.com/w1"
    assert cosignature_timestamp(witness.signature) == 1679315147
    assert cosignature_message(1679315147, SPEC_BODY) == SPEC_SIGNED_MESSAGE.encode()


def test_a_cosignature_is_the_spec_byte_layout() -> None:
    # Built here from tlog-cosignature.md alone: key ID with type 0x04, the signed message, and the
    # payload key ID || 8-byte big-endian timestamp || Ed25519 signature.
    seed, name, timestamp = bytes(range(1, 33)), "witness.gemeente-a.example/w1", 1767225600
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    body = Checkpoint(ORIGIN, 3, hashlib.sha256(b"root").digest()).to_body()
    expected_key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    message = b"cosignature/v1\ntime 1767225600\n" + body.encode()
    payload = expected_key_id + timestamp.to_bytes(8, "big") + key.sign(message)
    expected_line = f"— {name} {base64.b64encode(payload).decode()}\n"

    signed = add_signatures(sign_checkpoint(Checkpoint.parse(body), LOG), WITNESS_1)
    assert signed.endswith(expected_line)
    assert WITNESS_1.key_id == expected_key_id
    vkey = (
        "witness.gemeente-a.example/w1+"
        + expected_key_id.hex()
        + "+"
        + base64.b64encode(b"\x04" + public).decode()
    )
    assert WITNESS_1.verifier().vkey == vkey
    assert CosignatureVerifier.from_vkey(vkey).key_id == expected_key_id


def test_a_checkpoint_opens_with_the_log_key_and_reports_known_witnesses() -> None:
    log = _log(RECORDS)
    signed = _cosigned(log, WITNESS_1, WITNESS_2)
    verified = open_checkpoint(signed, LOG.verifier(), [WITNESS_1.verifier(), WITNESS_2.verifier()])
    assert verified.checkpoint == Checkpoint(ORIGIN, 11, log.root())
    assert verified.witnesses == (WITNESS_1.name, WITNESS_2.name)
    assert [c.timestamp for c in verified.cosignatures] == [1767225600, 1767225601]
    # An unknown witness is ignored, not an error.
    assert open_checkpoint(signed, LOG.verifier(), [WITNESS_2.verifier()]).witnesses == (WITNESS_2.name,)
    assert open_checkpoint(signed, LOG.verifier()).witnesses == ()


def test_a_checkpoint_signed_only_by_witnesses_is_not_the_logs() -> None:
    body = Checkpoint(ORIGIN, 1, bytes(32)).to_body()
    only_witness = sign_note(body, WITNESS_1)
    with pytest.raises(CheckpointError, match="not signed by the log"):
        open_checkpoint(only_witness, LOG.verifier(), [WITNESS_1.verifier()])
    with pytest.raises(NoteError):
        open_checkpoint(only_witness, LOG.verifier())


def test_a_checkpoint_of_another_origin_is_refused() -> None:
    other = Signer("other.example/log", Ed25519PrivateKey.generate())
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, bytes(32)), other)
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(signed, other.verifier())
    # Unless the caller names the origin it expects for that key.
    assert open_checkpoint(signed, other.verifier(), origin=ORIGIN).checkpoint.origin == ORIGIN


def test_a_cosignature_moved_to_another_checkpoint_does_not_verify() -> None:
    # A split view: the log shows the witness one tree and the others another of the same size.
    honest, forked = _log(RECORDS), _log([*RECORDS[:-1], b"rewritten"])
    cosignature_line = _cosigned(honest, WITNESS_1).splitlines(keepends=True)[-1]
    forged = sign_checkpoint(Checkpoint(ORIGIN, forked.size, forked.root()), LOG) + cosignature_line
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(forged, LOG.verifier(), [WITNESS_1.verifier()])


def test_a_cosignature_covers_extension_lines_and_its_timestamp() -> None:
    signed = _cosigned(_log(RECORDS), WITNESS_1, extensions=("extension",))
    text, signatures = parse_note(signed)
    cosignature = signatures[-1]
    witness = WITNESS_1.verifier()
    assert witness.verify(text.encode(), cosignature.signature)
    assert not witness.verify(text.replace("extension", "extensioN").encode(), cosignature.signature)
    # The same signature bytes under another timestamp: the timestamp is signed too.
    retimed = (1767225601).to_bytes(8, "big") + cosignature.signature[8:]
    assert not witness.verify(text.encode(), retimed)
    line = f"— {WITNESS_1.name} {base64.b64encode(cosignature.key_id + retimed).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(text + "\n" + signatures[0].line + line, LOG.verifier(), [witness])


def test_a_timestamp_beyond_2_63_minus_1_is_refused() -> None:
    with pytest.raises(CheckpointError):
        cosignature_message(2**63, SPEC_BODY)
    late = Cosigner("witness.example/late", Ed25519PrivateKey.generate(), lambda: 2**63)
    with pytest.raises(CheckpointError):
        add_signatures(sign_checkpoint(Checkpoint.parse(SPEC_BODY), LOG), late)


def test_cosignature_vkeys_of_another_type_are_refused() -> None:
    with pytest.raises(NoteError, match="cosignature"):
        CosignatureVerifier.from_vkey(LOG.verifier().vkey)


# --- Proof files ---------------------------------------------------------------------------------


def test_the_spec_example_proof_file_parses() -> None:
    parsed = parse_proof_file(SPEC_PROOF_HEAD + "— example.com/fancylog AAAAAAAA\n")
    assert parsed.index == 73894
    assert len(parsed.inclusion_path) == 5
    assert parsed.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert parsed.signed_checkpoint.startswith("example.com/fancylog\n109482\n")


def test_a_proof_file_proves_one_record_offline_with_its_witnesses() -> None:
    log = _log(RECORDS)
    signed = _cosigned(log, WITNESS_1, WITNESS_2)
    witnesses = [WITNESS_1.verifier(), WITNESS_2.verifier()]
    for index, record in enumerate(RECORDS):
        text = build_proof_file(index, inclusion_proof(index, log.size, log), signed, extra=b"seq %d" % index)
        assert text.startswith(PROOF_HEADER + "\n")
        verified = verify_proof_file(text, record, LOG.verifier(), witnesses, quorum=2)
        assert (verified.index, verified.size) == (index, 11)
        assert verified.witnesses == (WITNESS_1.name, WITNESS_2.name)
        assert verified.extra == b"seq %d" % index
        assert verify_proof_file(text.encode(), record, LOG.verifier()).witnesses == ()


def test_a_proof_file_without_extra_or_path_round_trips() -> None:
    log = _log(RECORDS[:1])
    text = build_proof_file(0, [], _cosigned(log))
    assert text.startswith(f"{PROOF_HEADER}\nindex 0\n\n{ORIGIN}\n1\n")
    assert parse_proof_file(text).extra is None
    assert verify_proof_file(text, RECORDS[0], LOG.verifier()).size == 1


def _proof_text(index: int = 4) -> tuple[InMemoryNodes, str]:
    log = _log(RECORDS)
    return log, build_proof_file(index, inclusion_proof(index, log.size, log), _cosigned(log, WITNESS_1))


def test_a_proof_file_for_another_record_or_index_is_refused() -> None:
    _, text = _proof_text()
    with pytest.raises(ProofError):
        verify_proof_file(text, RECORDS[5], LOG.verifier())
    with pytest.raises(ProofError):
        verify_proof_file(text, RECORDS[4] + b" ", LOG.verifier())
    with pytest.raises(ProofError):
        verify_proof_file(text.replace("index 4\n", "index 5\n"), RECORDS[5], LOG.verifier())


def test_a_tampered_inclusion_path_is_refused() -> None:
    _, text = _proof_text()
    head, _, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    path = lines[2:]
    assert len(path) == 4
    for position in range(len(path)):
        dropped = [*lines[:2], *path[:position], *path[position + 1 :]]
        flipped_hash = bytearray(base64.b64decode(path[position]))
        flipped_hash[7] ^= 0x10
        flipped = [
            *lines[:2],
            *path[:position],
            base64.b64encode(flipped_hash).decode(),
            *path[position + 1 :],
        ]
        for variant in (dropped, flipped, [*lines, path[position]]):
            with pytest.raises(ProofError):
                verify_proof_file("\n".join(variant) + "\n\n" + checkpoint, RECORDS[4], LOG.verifier())


def test_a_proof_file_with_another_checkpoint_is_refused() -> None:
    log, text = _proof_text()
    head, _, _checkpoint = text.partition("\n\n")
    # The same path against the signed checkpoint of a larger tree.
    grown = _log([*RECORDS, b"one more"])
    with pytest.raises(ProofError):
        verify_proof_file(head + "\n\n" + _cosigned(grown), RECORDS[4], LOG.verifier())
    # A checkpoint signed by another key, even one with the log's name.
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())
    forged = sign_checkpoint(Checkpoint(ORIGIN, log.size, log.root()), impostor)
    with pytest.raises(NoteError):
        verify_proof_file(head + "\n\n" + forged, RECORDS[4], LOG.verifier())


def test_a_proof_file_short_of_its_witness_quorum_is_refused() -> None:
    _, text = _proof_text()
    with pytest.raises(CheckpointError, match="2 are required"):
        verify_proof_file(
            text, RECORDS[4], LOG.verifier(), [WITNESS_1.verifier(), WITNESS_2.verifier()], quorum=2
        )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace(PROOF_HEADER, "c2sp.org/tlog-proof@v2"),
        lambda t: t.replace("index 4\n", "index 04\n"),
        lambda t: t.replace("index 4\n", "index  4\n"),
        lambda t: t.replace("index 4\n", ""),
        lambda t: t.replace("index 4\n", "index 4\nextra AAAA\n"),
        lambda t: t.replace(PROOF_HEADER + "\n", PROOF_HEADER + "\nextra \n"),
        lambda t: t.replace(PROOF_HEADER + "\n", PROOF_HEADER + "\nextra !!\n"),
        lambda t: t.partition("\n\n")[0] + "\n",
        lambda t: t.replace("\n\n", "\nnot base64\n\n", 1),
    ],
)
def test_malformed_proof_files_are_refused(mangle: Callable[[str], str]) -> None:
    _, text = _proof_text()
    mangled = mangle(text)
    assert mangled != text
    with pytest.raises(CheckpointError):
        verify_proof_file(mangled, RECORDS[4], LOG.verifier())


def test_a_proof_file_is_only_built_from_sound_parts() -> None:
    log = _log(RECORDS)
    signed = _cosigned(log)
    with pytest.raises(CheckpointError):
        build_proof_file(-1, [], signed)
    with pytest.raises(CheckpointError):
        build_proof_file(0, [bytes(31)], signed)
    with pytest.raises(CheckpointError):
        build_proof_file(0, [], signed, extra=b"")
    with pytest.raises(NoteError):
        build_proof_file(0, [], Checkpoint(ORIGIN, 1, bytes(32)).to_body())
