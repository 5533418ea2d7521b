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

from eth_keys.datatypes import PrivateKey
from eth_keys.datatypes import Signature as KeySignature
from eth_utils import keccak

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


def sign(private_key: PrivateKey, digest: bytes) -> Signature:
    """Sign a 32-byte digest (RFC 6979: the same key and digest give the same bytes)."""
    sig = private_key.sign_msg_hash(digest)
    s, v = sig.s, sig.v
    if s > _HALF_N:  # eth_keys already returns low s; keep the contract's rule explicit
        s, v = _N - s, v ^ 1
    vs = (v << 255) | s
    return Signature(sig.r.to_bytes(32, "big"), vs.to_bytes(32, "big"))


def recover(digest: bytes, signature: Signature) -> bytes | None:
    """The 20-byte address that signed ``digest``, or ``None`` for an invalid signature."""
    vs = int.from_bytes(signature.vs, "big")
    s, v = vs & ((1 << 255) - 1), vs >> 255
    r = int.from_bytes(signature.r, "big")
    if not (0 < r < _N and 0 < s <= _HALF_N):
        return None
    try:
        public = KeySignature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
    except Exception:  # any failure to recover is "not a signature"
        return None
    return bytes(public.to_canonical_address())
