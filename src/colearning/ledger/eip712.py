"""EIP-712 typed data of the ledger: what a learner signs, hashed exactly as the
contract hashes it.

Domain: ``EIP712Domain(string name,string version,uint256 chainId,address
verifyingContract)`` with name ``colearning``, version ``1``, the chain's id and the
contract's address, so a signature is bound to one contract on one chain.

- ``Vote(bytes32 experiment,uint256 round,bytes32 weights,uint8 ballot)``: a ballot
  (0 reject, 1 approve, 2 abstain) on a weights id in a round of an experiment;
- ``Proposal(bytes32 experiment,uint256 round,bytes32 weights)``: a proposer's weights
  id for its round (all zero: it passes).

Signatures travel in EIP-2098's compact form ``(r, vs)``: 64 bytes, ``v`` in the top
bit of ``vs``, ``s`` canonical (lower half of the curve order), as the contract demands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import coincurve
from Crypto.Hash import keccak as _keccak


def keccak(data: bytes = b"", *, text: str | None = None) -> bytes:
    """Keccak-256 (pycryptodome directly: the hot path signs every ballot)."""
    if text is not None:
        data = text.encode()
    return bytes(_keccak.new(digest_bits=256, data=data).digest())


DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH = keccak(text="colearning")
VERSION_HASH = keccak(text="1")
VOTE_TYPEHASH = keccak(text="Vote(bytes32 experiment,uint256 round,bytes32 weights,uint8 ballot)")
PROPOSAL_TYPEHASH = keccak(text="Proposal(bytes32 experiment,uint256 round,bytes32 weights)")

_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def domain_separator(chain_id: int, contract: bytes) -> bytes:
    """The domain hash of the ledger contract at ``contract`` (20 bytes) on a chain."""
    return keccak(
        DOMAIN_TYPEHASH + NAME_HASH + VERSION_HASH + _word(chain_id) + bytes(12) + bytes(contract)
    )


def vote_digest(
    domain: bytes, experiment: bytes, round_index: int, weights: bytes, ballot: int
) -> bytes:
    struct = keccak(VOTE_TYPEHASH + experiment + _word(round_index) + weights + _word(ballot))
    return keccak(b"\x19\x01" + domain + struct)


def proposal_digest(domain: bytes, experiment: bytes, round_index: int, weights: bytes) -> bytes:
    struct = keccak(PROPOSAL_TYPEHASH + experiment + _word(round_index) + weights)
    return keccak(b"\x19\x01" + domain + struct)


@dataclass(frozen=True)
class Signature:
    """A compact (EIP-2098) signature: ``r`` and ``vs``, 32 bytes each."""

    r: bytes
    vs: bytes

    def hex(self) -> str:
        return "0x" + (self.r + self.vs).hex()

    @classmethod
    def from_hex(cls, text: str) -> Signature:
        raw = bytes.fromhex(text.removeprefix("0x"))
        if len(raw) != 64:
            raise ValueError(f"a compact signature is 64 bytes; got {len(raw)}")
        return cls(raw[:32], raw[32:])


def sign(private_key: Any, digest: bytes) -> Signature:
    """Sign a 32-byte digest with ``private_key`` (a ``coincurve.PrivateKey``, or 32
    bytes). RFC 6979: the same key and digest always give the same signature."""
    if not isinstance(private_key, coincurve.PrivateKey):
        private_key = coincurve.PrivateKey(bytes(private_key))
    raw = private_key.sign_recoverable(digest, hasher=None)  # r | s | recovery id
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    if s > _HALF_N:  # libsecp256k1 signs with low s; keep the contract's rule explicit
        s, v = _N - s, v ^ 1
    return Signature(r, ((v << 255) | s).to_bytes(32, "big"))


def recover(digest: bytes, signature: Signature) -> bytes | None:
    """The 20-byte address that signed ``digest``, or ``None`` for an invalid signature."""
    vs = int.from_bytes(signature.vs, "big")
    s, v = vs & ((1 << 255) - 1), vs >> 255
    r = int.from_bytes(signature.r, "big")
    if not (0 < r < _N and 0 < s <= _HALF_N):
        return None
    raw = signature.r + s.to_bytes(32, "big") + bytes([v])
    try:
        public = coincurve.PublicKey.from_signature_and_message(raw, digest, hasher=None)
    except Exception:  # any failure to recover is "not a signature"
        return None
    return keccak(public.format(compressed=False)[1:])[12:]
