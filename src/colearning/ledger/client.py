"""The ledger client: deploy the contract, sign and send its calls, read its state and
events. One :class:`LedgerClient` talks to one contract on one :class:`Chain`.

Every transaction is a signed EIP-1559 transaction with a fixed gas limit (from the
call's shape) and fixed fees, and a nonce counted locally from one look-up per sender:
no estimate, fee or nonce request per call. A reverted call raises
:class:`~colearning.core.exceptions.LedgerError` naming the function and the
contract's reason, on either chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from colearning.core.exceptions import LedgerError
from colearning.ledger import eip712
from colearning.ledger.chain import Chain, Log, Receipt
from colearning.ledger.contract import MAX_LEARNERS, Artifact, artifact
from colearning.ledger.eip712 import Signature
from colearning.ledger.keys import Key

#: Default seconds a proposer has to propose, and voters to vote, in a coordinator's
#: run (its transactions come one right after another); peers choose their own.
DEFAULT_PROPOSE_PERIOD = 7 * 24 * 3600
DEFAULT_VOTE_PERIOD = 7 * 24 * 3600

# Gas limits by call shape: measured use plus a margin (see bench/ledger_gas.py).
_GAS_DEPLOY = 4_000_000
_GAS_BASE = 150_000
_GAS_PER_BALLOT = 12_000
# a call that opens the next round draws its committee there (the seed's new slot,
# the members' word, and the shuffle: about one SHA-256 per four members)
_GAS_DRAW = 60_000
_GAS_PER_MEMBER = 1_500

_NO_SIG = Signature(bytes(32), bytes(32))


@dataclass(frozen=True)
class LedgerConfig:
    """What the contract holds about its experiment (fixed at deployment)."""

    experiment: bytes
    learners: tuple[bytes, ...]
    threshold: tuple[int, int]
    propose_period: int
    vote_period: int
    initial_weights: bytes
    #: voters drawn each round from the non-proposers by the chain (0: all of them)
    committee: int = 0


@dataclass(frozen=True)
class OpenRound:
    """The contract's open round, as ``state()`` reports it."""

    index: int
    deadline: int
    voting: bool
    ballots: int
    approvals: int
    candidate: bytes
    current_weights: bytes
    voted: int
    #: the round's committee, bit i for learner i (0: every non-proposer votes)
    members: int = 0

    def eligible(self, index: int) -> bool:
        """Whether learner ``index`` may cast a ballot in this round (its committee's
        member, or, without a committee, any learner: the contract refuses the
        proposer's own)."""
        return self.members == 0 or bool((self.members >> index) & 1)


@dataclass(frozen=True)
class Ballot:
    """One learner's signed ballot: its index in the contract, the ballot code
    (``REJECT``, ``APPROVE``, ``ABSTAIN``) and the compact signature."""

    voter: int
    ballot: int
    signature: Signature


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log of the contract."""

    name: str
    fields: dict[str, Any]
    block_number: int
    tx_hash: bytes
    log_index: int

    @property
    def round_index(self) -> int | None:
        value = self.fields.get("round_index")
        return None if value is None else int(value)


class _Nonces:
    """Each sender's next nonce, looked up once and then counted locally; kept on the
    chain object, so every client of one chain shares it."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.next: dict[bytes, int] = {}

    @classmethod
    def of(cls, chain: Chain) -> _Nonces:
        found = getattr(chain, "_colearning_nonces", None)
        if not isinstance(found, _Nonces):
            found = cls(chain)
            chain._colearning_nonces = found  # type: ignore[attr-defined]
        return found

    def take(self, address: bytes) -> int:
        if address not in self.next:
            self.next[address] = self.chain.nonce(address)
        value = self.next[address]
        self.next[address] = value + 1
        return value

    def forget(self, address: bytes) -> None:
        self.next.pop(address, None)


def contract_address(sender: bytes, nonce: int) -> bytes:
    """The address a contract deployed by ``sender`` with ``nonce`` gets."""
    import rlp

    return eip712.keccak(rlp.encode([sender, nonce]))[12:]


class LedgerClient:
    """The contract at ``address`` on ``chain``; transactions are paid by ``operator``
    unless a call names another sender."""

    def __init__(
        self,
        chain: Chain,
        address: bytes,
        operator: Key,
        contract: Artifact | None = None,
    ) -> None:
        self.chain = chain
        self.address = bytes(address)
        self.operator = operator
        self.contract = contract or artifact()
        self._nonces = _Nonces.of(chain)
        self.domain = eip712.domain_separator(chain.chain_id, self.address)
        self._config: LedgerConfig | None = None

    # -- deployment -------------------------------------------------------------------

    @staticmethod
    def next_address(chain: Chain, operator: Key) -> bytes:
        """Where the operator's next deployment will be (its address is known before
        the transaction is sent, so it can be recorded first)."""
        return contract_address(operator.address, chain.nonce(operator.address))

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        operator: Key,
        config: LedgerConfig,
        nonce: int | None = None,
    ) -> tuple[LedgerClient, Receipt]:
        """Deploy the contract for ``config``; returns the client and the receipt."""
        n = len(config.learners)
        if not 1 <= n <= MAX_LEARNERS:
            raise LedgerError(
                f"the ledger contract holds 1 to {MAX_LEARNERS} learners; got {n} (larger "
                "experiments run without --ledger: the contract keeps one bit per learner)"
            )
        k = config.committee
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n:
            raise LedgerError(
                f"the ledger's committee must be 0 (every non-proposer votes) to {n - 1} (the "
                f"learners besides the proposer) with {n} learners; got {k!r}"
            )
        contract = artifact()
        data = contract.deploy_data(
            config.experiment,
            [to_checksum_address(a) for a in config.learners],
            config.threshold[0],
            config.threshold[1],
            config.propose_period,
            config.vote_period,
            config.initial_weights,
            config.committee,
        )
        nonces = _Nonces.of(chain)
        if nonce is not None:
            nonces.next[operator.address] = nonce
        use = nonces.take(operator.address)
        draw = 0 if config.committee == 0 else _GAS_DRAW + _GAS_PER_MEMBER * config.committee
        raw = _sign_tx(chain, operator, use, None, data, _GAS_DEPLOY + 30_000 * n + draw)
        receipt = chain.send_raw(raw)
        if not receipt.status:
            raise LedgerError(f"deploying the ledger contract failed: {receipt.revert_reason}")
        address = receipt.contract_address or contract_address(operator.address, use)
        client = cls(chain, address, operator, contract)
        client._config = config
        return client, receipt

    # -- reading ----------------------------------------------------------------------

    def view(self, name: str, *args: Any) -> tuple[Any, ...]:
        data = self.chain.call(self.address, self.contract.call_data(name, *args))
        if not data:
            raise LedgerError(
                f"no ledger contract answers at {to_checksum_address(self.address)} on "
                f"{self.chain.where}; check the contract address and the chain"
            )
        return self.contract.decode_output(name, data)

    def config(self) -> LedgerConfig:
        if self._config is None:
            self._config = LedgerConfig(
                experiment=bytes(self.view("EXPERIMENT")[0]),
                learners=tuple(
                    bytes.fromhex(a[2:]) if isinstance(a, str) else bytes(a)
                    for a in self.view("learners")[0]
                ),
                threshold=(int(self.view("THRESHOLD_NUM")[0]), int(self.view("THRESHOLD_DEN")[0])),
                propose_period=int(self.view("PROPOSE_PERIOD")[0]),
                vote_period=int(self.view("VOTE_PERIOD")[0]),
                initial_weights=bytes(self.view("INITIAL_WEIGHTS")[0]),
                committee=int(self.view("COMMITTEE")[0]),
            )
        return self._config

    def state(self) -> OpenRound:
        index, deadline, voting, ballots, approvals, candidate, current, voted, members = self.view(
            "state"
        )
        return OpenRound(
            int(index),
            int(deadline),
            bool(voting),
            int(ballots),
            int(approvals),
            bytes(candidate),
            bytes(current),
            int(voted),
            int(members),
        )

    def round_seed(self, round_index: int) -> bytes:
        """The seed the chain drew round ``round_index``'s committee from, when the
        round opened (all zero for a round not opened yet, or without a committee)."""
        return bytes(self.view("seeds", round_index)[0])

    def events(self, from_block: int = 0, to_block: int | None = None) -> list[ChainEvent]:
        return decode_events(self.contract, self.chain.logs(self.address, from_block, to_block))

    # -- signing ----------------------------------------------------------------------

    def sign_vote(self, key: Key, round_index: int, weights: bytes, ballot: int) -> Signature:
        digest = eip712.vote_digest(
            self.domain, self.config().experiment, round_index, weights, ballot
        )
        return eip712.sign(key.signer, digest)

    def sign_proposal(self, key: Key, round_index: int, weights: bytes) -> Signature:
        digest = eip712.proposal_digest(self.domain, self.config().experiment, round_index, weights)
        return eip712.sign(key.signer, digest)

    # -- transactions -----------------------------------------------------------------

    def propose(
        self,
        round_index: int,
        weights: bytes,
        signature: Signature | None = None,
        sender: Key | None = None,
    ) -> Receipt:
        """Propose ``weights`` (all zero: pass). Without ``signature`` the sender must
        be the proposer."""
        sig = signature or _NO_SIG
        return self.transact(
            "propose", round_index, weights, sig.r, sig.vs, sender=sender,
            gas=_GAS_BASE + self._draw_gas(),
        )  # fmt: skip

    def vote(self, round_index: int, ballot: Ballot, sender: Key | None = None) -> Receipt:
        s = ballot.signature
        return self.transact(
            "vote", round_index, ballot.voter, ballot.ballot, s.r, s.vs, sender=sender,
            gas=_GAS_BASE + _GAS_PER_BALLOT + self._draw_gas(),
        )  # fmt: skip

    def cast(
        self,
        round_index: int,
        weights: bytes,
        ballots: Sequence[Ballot],
        sender: Key | None = None,
    ) -> Receipt:
        """Ballots on the open round's candidate ``weights``, in one transaction."""
        return self.settle(round_index, weights, _NO_SIG, ballots, sender=sender)

    def settle(
        self,
        round_index: int,
        weights: bytes,
        proposal: Signature,
        ballots: Sequence[Ballot],
        sender: Key | None = None,
    ) -> Receipt:
        """A whole round in one transaction: signed proposal and signed ballots."""
        voters, approvals, abstentions, sigs = _pack(ballots)
        return self.transact(
            "settle", round_index, weights, proposal.r, proposal.vs, voters, approvals,
            abstentions, sigs, sender=sender,
            gas=_GAS_BASE + _GAS_PER_BALLOT * len(ballots) + self._draw_gas(),
        )  # fmt: skip

    def finalize(self, round_index: int, sender: Key | None = None) -> Receipt:
        return self.transact(
            "finalize", round_index, sender=sender, gas=_GAS_BASE + self._draw_gas()
        )

    def skip(self, round_index: int, sender: Key | None = None) -> Receipt:
        return self.transact("skip", round_index, sender=sender, gas=_GAS_BASE + self._draw_gas())

    def _draw_gas(self) -> int:
        k = self.config().committee
        return 0 if k == 0 else _GAS_DRAW + _GAS_PER_MEMBER * k

    def announce(self, endpoint: str, sender: Key) -> Receipt:
        return self.transact("announce", endpoint, sender=sender, gas=_GAS_BASE)

    def fund(self, addresses: Iterable[bytes], wei: int) -> None:
        """Send ``wei`` from the operator to each address (so learners can send their
        own transactions)."""
        for address in addresses:
            nonce = self._nonces.take(self.operator.address)
            raw = _sign_tx(self.chain, self.operator, nonce, address, b"", 21_000, wei)
            receipt = self.chain.send_raw(raw)
            if not receipt.status:
                raise LedgerError(f"funding {to_checksum_address(address)} failed")

    def transact(self, name: str, *args: Any, sender: Key | None = None, gas: int) -> Receipt:
        """Sign and send ``name(*args)``; raise :class:`LedgerError` if it reverts."""
        key = sender or self.operator
        data = self.contract.call_data(name, *args)
        for attempt in (1, 2):
            nonce = self._nonces.take(key.address)
            raw = _sign_tx(self.chain, key, nonce, self.address, data, gas)
            try:
                receipt = self.chain.send_raw(raw)
                break
            except LedgerError as exc:
                self._nonces.forget(key.address)
                # another process sent from this account meanwhile: count again, once
                if attempt == 2 or "nonce" not in str(exc).lower():
                    raise
        if not receipt.status:
            raise LedgerError(
                f"the ledger contract refused {name}: {receipt.revert_reason or 'reverted'}"
            )
        return receipt


def decode_events(contract: Artifact, logs: Iterable[Log]) -> list[ChainEvent]:
    out = []
    for log in logs:
        decoded = contract.decode_event(list(log.topics), log.data)
        if decoded is None:
            continue
        name, fields = decoded
        out.append(ChainEvent(name, fields, log.block_number, log.tx_hash, log.log_index))
    return out


def _pack(ballots: Sequence[Ballot]) -> tuple[int, int, int, list[bytes]]:
    """Ballots as the contract's bitmaps and ascending signature list."""
    from colearning.ledger.contract import ABSTAIN, APPROVE

    voters = approvals = abstentions = 0
    sigs: list[bytes] = []
    for b in sorted(ballots, key=lambda b: b.voter):
        bit = 1 << b.voter
        voters |= bit
        if b.ballot == APPROVE:
            approvals |= bit
        elif b.ballot == ABSTAIN:
            abstentions |= bit
        sigs += [b.signature.r, b.signature.vs]
    return voters, approvals, abstentions, sigs


def _sign_tx(
    chain: Chain,
    key: Key,
    nonce: int,
    to: bytes | None,
    data: bytes,
    gas: int,
    value: int = 0,
) -> bytes:
    """A signed EIP-1559 (type 2) transaction, encoded by hand: ``0x02 || rlp([chain
    id, nonce, tip, fee cap, gas, to, value, data, access list, y, r, s])``, signed over
    the keccak of the same without the signature. Deterministic (RFC 6979)."""
    import rlp

    fields = [
        chain.chain_id,
        nonce,
        chain.priority_fee_per_gas,
        chain.max_fee_per_gas,
        min(gas, 29_000_000),
        b"" if to is None else bytes(to),
        value,
        data,
        [],
    ]
    digest = eip712.keccak(b"\x02" + rlp.encode(fields))
    raw = key.signer.sign_recoverable(digest, hasher=None)
    r, s, y = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    return b"\x02" + bytes(rlp.encode([*fields, y, r, s]))
