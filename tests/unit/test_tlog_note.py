"""C2SP signed notes: byte-exact against Go's golang.org/x/mod/sumdb/note and the C2SP spec's example.

Vectors:
- golang/mod commit fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db, sumdb/note/note_test.go: the keys of
  PeterNeumann and EnochRoot, the note TestSign produces, the signatures TestOpen opens, the
  malformed notes it refuses, and the key manglings of TestNewVerifier and TestNewSigner.
- C2SP/C2SP commit 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9, signed-note.md "Example": the vkey
  example.com/foo and the note it verifies.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.tlog.note import (
    InvalidSignatureError,
    NoteError,
    Signature,
    Signer,
    UnverifiedNoteError,
    Verifier,
    add_signatures,
    encode_vkey,
    is_valid_key_name,
    key_id,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
)

# golang/mod sumdb/note/note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# C2SP signed-note.md, "Example"
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def _sig(line: str) -> Signature:
    name, encoded = line.removeprefix("— ").rstrip("\n").split(" ")
    raw = base64.b64decode(encoded)
    return Signature(name, raw[:4], raw[4:])


def test_signing_with_gos_key_writes_gos_note_byte_for_byte() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    assert sign_note(TEXT, signer) == TEXT + "\n" + PETER_SIG
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier().vkey == PETER_VKEY
    assert signer.skey == PETER_SKEY


def test_the_key_id_is_the_truncated_hash_of_name_type_and_key() -> None:
    _name, signature_type, public_key = parse_vkey(PETER_VKEY)
    assert signature_type == 0x01
    assert key_id("PeterNeumann", 0x01, public_key).hex() == "c74f20a3"
    assert encode_vkey("PeterNeumann", 0x01, public_key) == PETER_VKEY
    assert Verifier.from_vkey(ENOCH_VKEY).key_id.hex() == "af0cfe78"


def test_the_c2sp_example_note_opens_with_the_c2sp_example_key() -> None:
    note = open_note(C2SP_NOTE, [Verifier.from_vkey(C2SP_VKEY)])
    assert note.text == "This is an example message.\n"
    assert [s.name for s in note.verified] == ["example.com/foo"]
    # One changed character of the text and the same signature no longer verifies.
    with pytest.raises(InvalidSignatureError):
        open_note(C2SP_NOTE.replace("example message", "example massage"), [Verifier.from_vkey(C2SP_VKEY)])


def test_a_signature_from_an_unknown_key_is_ignored_and_kept_apart() -> None:
    peter, enoch = Verifier.from_vkey(PETER_VKEY), Verifier.from_vkey(ENOCH_VKEY)
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert note.text == TEXT
    assert note.verified == (_sig(PETER_SIG),)
    assert note.unverified == (_sig(ENOCH_SIG),)
    both = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert both.verified == (_sig(PETER_SIG), _sig(ENOCH_SIG))
    assert both.unverified == ()


def test_a_note_without_a_signature_from_a_known_key_does_not_open() -> None:
    with pytest.raises(UnverifiedNoteError) as refused:
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert refused.value.note.verified == ()
    assert refused.value.note.unverified == (_sig(PETER_SIG), _sig(ENOCH_SIG))
    # A key that shares the name but not the ID, or the ID but not the name, is another key.
    other = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(UnverifiedNoteError):
        open_note(TEXT + "\n" + PETER_SIG, [other.verifier()])
    same_id = PETER_SIG.replace("PeterNeumann", "PeterNeumann2")
    with pytest.raises(UnverifiedNoteError):
        open_note(TEXT + "\n" + same_id, [Verifier.from_vkey(PETER_VKEY)])


def test_an_invalid_signature_from_a_known_key_refuses_the_whole_note() -> None:
    # note_test.go TestOpen "Invalid signature": four characters inserted into Peter's signature.
    corrupt = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError, match="PeterNeumann\\+c74f20a3"):
        open_note(TEXT + "\n" + corrupt, [Verifier.from_vkey(PETER_VKEY)])
    # Even when another known key signed validly.
    with pytest.raises(InvalidSignatureError):
        open_note(
            TEXT + "\n" + ENOCH_SIG + corrupt,
            [Verifier.from_vkey(PETER_VKEY), Verifier.from_vkey(ENOCH_VKEY)],
        )


def test_repeated_signature_lines_are_reported_once() -> None:
    corrupt_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    message = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + corrupt_enoch
    note = open_note(message, [Verifier.from_vkey(PETER_VKEY)])
    assert note.verified == (_sig(PETER_SIG),)
    assert note.unverified == (_sig(ENOCH_SIG), _sig(corrupt_enoch))


@pytest.mark.parametrize(
    "message",
    [
        # note_test.go TestOpen "Invalid encoded message syntax".
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        (b"\xff" + (TEXT + "\n" + PETER_SIG).encode()),
        TEXT
        + "\n"
        + "— Bad Name "
        + "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        # More than 100 signatures (note_test.go), and our own further cases.
        TEXT + "\n" + PETER_SIG * 101,
        TEXT + "\n" + PETER_SIG.replace("— ", "- "),
        TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),
        TEXT + "\n" + "— PeterNeumann x08gow==\n",
        TEXT + "\n" + "— PeterNeumann\n",
        TEXT + "\n" + "— Peter+Neumann " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + "— Peter\u00a0Neumann " + PETER_SIG.split(" ")[2],
        TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG + "\n",
    ],
)
def test_malformed_notes_are_refused(message: str | bytes) -> None:
    with pytest.raises(NoteError) as refused:
        open_note(message, [Verifier.from_vkey(PETER_VKEY)])
    assert not isinstance(refused.value, UnverifiedNoteError | InvalidSignatureError)


def test_a_text_may_hold_blank_lines_and_the_last_blank_line_separates_the_signatures() -> None:
    signer = Signer.generate("example.com/log")
    text = "first\n\nthird\n\n"
    note = open_note(sign_note(text, signer), [signer.verifier()])
    assert note.text == text


def test_only_texts_a_note_can_carry_are_signed() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    for text in ["abc", "", "tab\there\n", "no newline at the end"]:
        with pytest.raises(NoteError):
            sign_note(text, signer)
    with pytest.raises(ValueError):
        sign_note(TEXT)
    with pytest.raises(ValueError):
        sign_note(TEXT, Signer("bad name", Ed25519PrivateKey.generate()))


def test_adding_a_signature_keeps_the_others_and_replaces_the_signers_own() -> None:
    peter, witness = Signer.from_skey(PETER_SKEY), Signer.generate("witness.example/w1")
    cosigned = add_signatures(TEXT + "\n" + "— PeterNeumann x08go/AAAAAA\n" + ENOCH_SIG, peter, witness)
    _text, lines = parse_note(cosigned)
    assert [s.name for s in lines] == ["EnochRoot", "PeterNeumann", "witness.example/w1"]
    note = open_note(cosigned, [peter.verifier(), witness.verifier(), Verifier.from_vkey(ENOCH_VKEY)])
    assert len(note.verified) == 3


def test_two_verifiers_for_one_key_are_a_configuration_error() -> None:
    # note_test.go TestOpen "Check duplicated verifier" calls this an ambiguous key.
    with pytest.raises(ValueError, match="two verifiers"):
        open_note(TEXT + "\n" + ENOCH_SIG, [Verifier.from_vkey(ENOCH_VKEY), Verifier.from_vkey(ENOCH_VKEY)])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\u2003b", "a\tb", "a\nb"])
def test_key_names_without_spaces_or_plus(name: str) -> None:
    assert not is_valid_key_name(name)
    with pytest.raises(NoteError):
        key_id(name, 0x01, bytes(32))


def test_every_mangled_vkey_is_refused() -> None:
    # note_test.go TestNewVerifier: every proper substring and every single-byte increment.
    Verifier.from_vkey(PETER_VKEY)
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    Verifier.from_vkey(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            Verifier.from_vkey(mangled)
    # A key of the wrong length, and an unknown algorithm, each with its key ID adjusted to match.
    with pytest.raises(NoteError):
        Verifier.from_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(NoteError, match="signature type"):
        Verifier.from_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_every_mangled_skey_is_refused() -> None:
    # note_test.go TestNewSigner.
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(NoteError):
                    Signer.from_skey(PETER_SKEY[i:j])
    for i in range(len(PETER_SKEY)):
        mangled = PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(NoteError):
            Signer.from_skey(mangled)


def test_a_fresh_key_round_trips_through_its_encodings() -> None:
    signer = Signer.generate("audit.safety-chain.example/log")
    again = Signer.from_skey(signer.skey)
    assert again.verifier().vkey == signer.verifier().vkey
    note = sign_note("hello\n", again)
    assert open_note(note, [Verifier.from_vkey(signer.verifier().vkey)]).text == "hello\n"
