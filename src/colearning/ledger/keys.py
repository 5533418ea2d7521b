"""Keys: each learner signs with its own secp256k1 key; the operator pays for gas.

Two ways to hold a learner's key:

- **Simulation** (``colearn run --ledger evm``): every learner runs in one process, so
  their keys are generated into the experiment directory (``DIR/ledger/keys.json``,
  mode 0600) with a :class:`SimulationKeysWarning`. Whoever can read the directory can
  sign as any learner: this is for simulations only.
- **Deployment** (``colearn peer --key-file K``): each party keeps its own key in a
  file, an encrypted Ethereum keystore (``colearn ledger keygen``; the password from
  ``--password-file`` or ``COLEARN_KEY_PASSWORD``) or, for test networks, a file
  holding the private key in hex.

The operator (who submits a coordinator's transactions and pays their gas) is a
separate account; it signs nothing a learner signs, so it cannot vote.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import coincurve
from eth_keys.datatypes import PrivateKey
from eth_utils import to_checksum_address

from colearning.core.exceptions import LedgerError

SIMULATION_WARNING = (
    "ledger keys for every learner were generated into {path}: anyone who can read it "
    "can sign as any learner, so this is for simulations only; in a deployment each "
    "party keeps its own key (colearn peer --key-file)"
)

#: The private key of eth-tester's first funded account (and so of the embedded
#: chain's operator): public knowledge, for local chains only.
EMBEDDED_OPERATOR_KEY = "0x" + "00" * 31 + "01"
#: anvil's first dev account (from its default mnemonic): public knowledge.
ANVIL_OPERATOR_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_CHAIN_ID = 31337


class SimulationKeysWarning(UserWarning):
    """Learner keys were generated into an experiment directory (simulations only)."""


@dataclass(frozen=True)
class Key:
    """A secp256k1 private key and its Ethereum address."""

    private_key: PrivateKey

    @cached_property
    def address(self) -> bytes:
        return bytes(self.private_key.public_key.to_canonical_address())

    @cached_property
    def signer(self) -> coincurve.PrivateKey:
        """The same key for libsecp256k1 (signing every ballot is the hot path)."""
        return coincurve.PrivateKey(bytes(self.private_key.to_bytes()))

    @property
    def checksum(self) -> str:
        return str(to_checksum_address(self.address))

    def hex(self) -> str:
        return "0x" + bytes(self.private_key.to_bytes()).hex()

    @classmethod
    def from_hex(cls, text: str) -> Key:
        raw = text.strip().removeprefix("0x")
        try:
            data = bytes.fromhex(raw)
        except ValueError as exc:
            raise LedgerError("a private key must be 64 hex digits (0x optional)") from exc
        if len(data) != 32:
            raise LedgerError(f"a private key must be 32 bytes (64 hex digits); got {len(data)}")
        return cls(PrivateKey(data))

    @classmethod
    def generate(cls) -> Key:
        return cls(PrivateKey(secrets.token_bytes(32)))

    def __repr__(self) -> str:  # never print the secret
        return f"Key({self.checksum})"


def generate_simulation_keys(path: Path, learner_ids: Sequence[str]) -> dict[str, Key]:
    """Fresh keys for ``learner_ids``, written to ``path`` (mode 0600), with a warning."""
    made = {lid: Key.generate() for lid in learner_ids}
    document = {
        "warning": SIMULATION_WARNING.format(path=path),
        "keys": {lid: {"address": k.checksum, "private_key": k.hex()} for lid, k in made.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps(document, indent=1) + "\n")
    warnings.warn(SIMULATION_WARNING.format(path=path), SimulationKeysWarning, stacklevel=2)
    return made


def load_simulation_keys(path: Path) -> dict[str, Key]:
    try:
        document = json.loads(path.read_text())
        return {lid: Key.from_hex(entry["private_key"]) for lid, entry in document["keys"].items()}
    except FileNotFoundError as exc:
        raise LedgerError(
            f"{path} is missing: the learners' ledger keys of this experiment are gone, so "
            "its rounds cannot be signed; resume needs the directory as it was written"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"{path} cannot be read as ledger keys ({exc})") from exc


def read_key_file(path: str | os.PathLike[str], password: str | None = None) -> Key:
    """A party's key: an encrypted keystore (JSON) or a private key in hex."""
    p = Path(path)
    try:
        text = p.read_text().strip()
    except OSError as exc:
        raise LedgerError(f"cannot read the key file {p}: {exc.strerror}") from exc
    if text.startswith("{"):
        from eth_account import Account

        if password is None:
            password = os.environ.get("COLEARN_KEY_PASSWORD")
        if password is None:
            raise LedgerError(
                f"{p} is an encrypted keystore; give its password with --password-file "
                "or the COLEARN_KEY_PASSWORD environment variable"
            )
        try:
            return Key(PrivateKey(bytes(Account.decrypt(json.loads(text), password))))
        except ValueError as exc:
            raise LedgerError(f"cannot decrypt {p}: {exc} (wrong password?)") from exc
    mode = p.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.warn(
            f"{p} holds a private key in plain hex and others may read it; "
            f"run: chmod 600 {p} (or use an encrypted keystore: colearn ledger keygen)",
            UserWarning,
            stacklevel=2,
        )
    return Key.from_hex(text)


def write_keystore(path: Path, key: Key, password: str) -> None:
    """Write ``key`` as an encrypted Ethereum keystore (scrypt), mode 0600."""
    from eth_account import Account

    document = Account.encrypt(key.private_key.to_bytes(), password)
    _write_private(path, json.dumps(document) + "\n")


def operator_key(chain_id: int, given: str | None, embedded: bool) -> Key:
    """The account that submits transactions and pays gas: ``given`` (a key file),
    else the embedded chain's or anvil's well-known funded account."""
    if given:
        return read_key_file(given)
    if embedded:
        return Key.from_hex(EMBEDDED_OPERATOR_KEY)
    if chain_id == ANVIL_CHAIN_ID:
        return Key.from_hex(ANVIL_OPERATOR_KEY)
    raise LedgerError(
        f"the chain with id {chain_id} is not a local dev chain; give the account that "
        "pays for gas with --operator-key-file FILE (a keystore or hex key, funded on "
        "that chain)"
    )


def addresses(keys_by_id: Mapping[str, Key], order: Sequence[str]) -> list[bytes]:
    return [keys_by_id[lid].address for lid in order]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
