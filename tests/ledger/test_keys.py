"""Party keys: encrypted keystores from `colearn ledger keygen`, hex key files, and
signatures that recover to their signer (the audit's check)."""

from __future__ import annotations

import os

import pytest

from colearning.cli.main import main
from colearning.core.exceptions import LedgerError
from colearning.ledger import eip712
from colearning.ledger.keys import Key, read_key_file


def test_keygen_writes_a_keystore_that_reads_back(tmp_path, capsys, monkeypatch):
    (tmp_path / "pw").write_text("correct horse\n")
    out = tmp_path / "party.json"
    assert (
        main(["ledger", "keygen", "--out", str(out), "--password-file", str(tmp_path / "pw")]) == 0
    )
    address = capsys.readouterr().out.split()[0]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert read_key_file(out, "correct horse").checksum == address
    monkeypatch.setenv("COLEARN_KEY_PASSWORD", "correct horse")
    assert read_key_file(out).checksum == address
    with pytest.raises(LedgerError, match="wrong password"):
        read_key_file(out, "wrong")
    monkeypatch.delenv("COLEARN_KEY_PASSWORD")
    with pytest.raises(LedgerError, match="--password-file"):
        read_key_file(out)


def test_a_readable_hex_key_file_warns(tmp_path):
    key = Key.generate()
    path = tmp_path / "key.hex"
    path.write_text(key.hex())
    path.chmod(0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        assert read_key_file(path).address == key.address
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(LedgerError, match="64 hex digits"):
        read_key_file(path)


def test_signatures_recover_to_their_signer_only():
    key = Key.generate()
    digest = os.urandom(32)
    sig = eip712.sign(key.signer, digest)
    assert eip712.recover(digest, sig) == key.address
    assert eip712.recover(os.urandom(32), sig) != key.address
    assert eip712.Signature.from_hex(sig.hex()) == sig
    assert repr(key) == f"Key({key.checksum})"  # the secret is never printed
