"""Peer mode: one party of an experiment, no coordinator.

A :class:`Peer` holds one learner and one key. It follows the contract (its state and
events) and acts on its own behalf, with its own transactions:

- its turn to propose: it trains, publishes the weights by id through its
  :class:`WeightsExchange` and proposes the id;
- another's proposal: it fetches the weights by id from the proposer's announced
  endpoint, checks they hash to the id and fit the shared model, validates them on its
  own data, signs its ballot and sends it;
- a round past its deadline (a proposer or voter that went quiet): anyone may close
  it, so it sends ``skip`` or ``finalize`` (a race with another peer is harmless);
- ``Finalized``: it adopts the weights if accepted.

Weights travel through the :class:`WeightsExchange` seam: :class:`DirectoryExchange`
(parties that share a file system; what the tests use) is here; the Network issue's
gRPC learner server plugs in as another exchange that serves weights by id and
fetches them from a peer's endpoint.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colearning.core.codec import WeightsSpec, check_weights, decode, encode, weights_id
from colearning.core.exceptions import ColearningError, LedgerError, WeightsError
from colearning.core.interface import MachineLearningInterface, ProposedWeights, Weights
from colearning.ledger.client import Ballot, LedgerClient
from colearning.ledger.contract import ABSTAIN, APPROVE, REJECT
from colearning.ledger.keys import Key

#: Contract reasons that mean another party got there first: not an error for a peer.
_RACES = (
    "round: not the open round",
    "already proposed",
    "nothing proposed yet",
    "voting is still open",  # the chain's clock is behind ours: try again later
    "the proposer still has time",
    "the proposal deadline passed",  # too late: the round is skipped without us
    "the vote deadline passed",  # too late: our ballot counts as missing
)


class WeightsExchange(abc.ABC):
    """How a peer serves weights by id and fetches them from another peer."""

    @abc.abstractmethod
    def endpoint(self) -> str:
        """Where others fetch this peer's weights (announced on chain)."""

    @abc.abstractmethod
    def publish(self, wid: str, blob: bytes) -> None:
        """Serve ``blob`` under its id."""

    @abc.abstractmethod
    def fetch(self, wid: str, endpoint: str) -> bytes:
        """The blob with id ``wid`` from the peer at ``endpoint`` (not yet checked)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop serving."""


class DirectoryExchange(WeightsExchange):
    """Weights as files ``<id>.safetensors`` in a directory each party can read (one
    machine, a shared volume). The endpoint is the directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)

    def endpoint(self) -> str:
        return f"file://{self.directory}"

    def publish(self, wid: str, blob: bytes) -> None:
        target = self.directory / f"{wid}.safetensors"
        if target.exists():
            return
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, target)

    def fetch(self, wid: str, endpoint: str) -> bytes:
        if not endpoint.startswith("file://"):
            raise LedgerError(
                f"a directory exchange fetches from file:// endpoints; got {endpoint!r} (that "
                "peer serves weights another way, e.g. over gRPC)"
            )
        path = Path(endpoint[len("file://") :]) / f"{wid}.safetensors"
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise LedgerError(f"weights {wid[:12]}... are not at {endpoint}") from exc


@dataclass
class PeerRound:
    """What a peer saw of one closed round."""

    round_index: int
    status: str
    weights_id: str | None
    my_ballot: str | None = None
    proposed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class PeerResult:
    rounds: list[PeerRound] = field(default_factory=list)
    final_weights_id: str = ""


class Peer:
    """One party's loop (see the module docstring)."""

    def __init__(
        self,
        client: LedgerClient,
        key: Key,
        learner: MachineLearningInterface,
        exchange: WeightsExchange,
        poll_seconds: float = 0.2,
        on_round: Callable[[PeerRound], None] | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.learner = learner
        self.exchange = exchange
        self.poll_seconds = poll_seconds
        self.on_round = on_round
        config = client.config()
        if key.address not in config.learners:
            raise LedgerError(
                f"{key.checksum} is not a learner of the contract at 0x{client.address.hex()}; "
                "use the key file registered at deployment"
            )
        self.index = config.learners.index(key.address)
        self.n = len(config.learners)
        self.initial_id = config.initial_weights.hex()
        self.endpoints: dict[bytes, str] = {}
        self._cursor = 0  # next block whose events are unread
        self._acted: set[tuple[str, int]] = set()
        self._blobs: dict[str, bytes] = {}
        self.result = PeerResult()
        self.spec: WeightsSpec | None = None
        self.current_id: str | None = None  # set once the initial weights are adopted
        self._pending: list[tuple[str, dict[str, Any]]] = []

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Announce this peer's endpoint and adopt the initial weights (once)."""
        if self.current_id is not None:
            return
        self._read_events()
        endpoint = self.exchange.endpoint()
        if self.endpoints.get(self.key.address) != endpoint:
            self.client.announce(endpoint, sender=self.key)
            self._read_events()
        own = self.learner.mli_get_current_weights()
        self.spec = WeightsSpec.of(own)
        blob = encode(own)
        if weights_id(blob) == self.initial_id:
            self.exchange.publish(self.initial_id, blob)  # the party whose model starts it
            initial = own
        else:
            initial = self._weights(self.initial_id, learner_index=0)
        self.learner.mli_accept_weights(initial)
        self.current_id = self.initial_id
        # rounds closed before this peer (re)started: adopt their outcomes in order
        pending, self._pending = self._pending, []
        for name, fields in pending:
            self._closed(name, fields)

    def run(self, rounds: int) -> PeerResult:
        """Take part until ``rounds`` rounds are closed on chain."""
        self.start()
        while True:
            self._read_events()
            state = self.client.state()
            if state.index >= rounds:
                break
            if not self._act(state):
                time.sleep(self.poll_seconds)
        self.result.final_weights_id = str(self.current_id)
        return self.result

    def _act(self, state: Any) -> bool:
        """Do what this peer should in the open round; ``True`` if it did something."""
        r = state.index
        proposer = r % self.n
        now = self._now()
        if not state.voting:
            if proposer == self.index and ("propose", r) not in self._acted:
                self._acted.add(("propose", r))
                self._propose(r)
                return True
            if now > state.deadline:
                return self._race(lambda: self.client.skip(r, sender=self.key))
            return False
        if (
            proposer != self.index
            and ("vote", r) not in self._acted
            and not (state.voted >> self.index) & 1
        ):
            self._acted.add(("vote", r))
            if now <= state.deadline:
                self._vote(r, state.candidate.hex())
                return True
        if now > state.deadline:
            return self._race(lambda: self.client.finalize(r, sender=self.key))
        return False

    def _now(self) -> int:
        """The time deadlines are judged by. A node mines only when sent something, so
        its last block's time lags: try a deadline by the wall clock too (the contract
        has the last word). The embedded chain keeps its own clock."""
        chain_time = self.client.chain.timestamp()
        if self.client.chain.kind == "embedded":
            return chain_time
        return max(chain_time, int(time.time()))

    def _race(self, send: Callable[[], Any]) -> bool:
        """Send; ``False`` if another party (or the chain's clock) got there first."""
        try:
            send()
        except LedgerError as exc:
            if not any(text in str(exc) for text in _RACES):
                raise
            return False
        return True

    # -- steps ------------------------------------------------------------------------

    def _propose(self, r: int) -> None:
        if hasattr(self.learner, "mli_set_round"):
            self.learner.mli_set_round(r)
        try:
            weights = self.learner.mli_propose_weights()
            assert self.spec is not None
            check_weights(weights, self.spec)
        except Exception as exc:  # a failing learner passes its turn, as in the driver
            print(f"round {r}: this peer's proposal failed ({exc}); passing", file=sys.stderr)
            self._race(lambda: self.client.propose(r, bytes(32), sender=self.key))
            return
        blob = encode(weights)
        wid = weights_id(blob)
        self._blobs[wid] = blob
        self.exchange.publish(wid, blob)
        self._race(lambda: self.client.propose(r, bytes.fromhex(wid), sender=self.key))

    def _vote(self, r: int, wid: str) -> None:
        code, detail = ABSTAIN, ""
        try:
            weights = self._weights(wid, learner_index=r % self.n)
            answer = self.learner.mli_test_weights(weights)
            if isinstance(answer, ProposedWeights) and isinstance(answer.vote, bool):
                code = APPROVE if answer.vote else REJECT
            else:
                detail = "bad answer from the learner"
        except (ColearningError, WeightsError, Exception) as exc:  # abstain, as the driver
            detail = str(exc)
        if detail:
            print(f"round {r}: abstaining ({detail})", file=sys.stderr)
        sig = self.client.sign_vote(self.key, r, bytes.fromhex(wid), code)
        self._race(lambda: self.client.vote(r, Ballot(self.index, code, sig), sender=self.key))

    def _weights(self, wid: str, learner_index: int) -> Weights:
        """The weights with id ``wid``, from memory or from the learner that has them,
        checked against the id and the shared model's shape."""
        blob = self._blobs.get(wid)
        if blob is None:
            address = self.client.config().learners[learner_index]
            endpoint = self.endpoints.get(address)
            if endpoint is None:
                raise LedgerError(f"learner {learner_index} has announced no endpoint")
            blob = self.exchange.fetch(wid, endpoint)
            if hashlib.sha256(blob).hexdigest() != wid:
                raise WeightsError(f"the bytes fetched for {wid[:12]}... hash to another id")
            self._blobs[wid] = blob
        weights = decode(blob, self.spec)
        return weights

    def _read_events(self) -> None:
        last = self.client.chain.block_number()
        if last < self._cursor:
            return
        for e in self.client.events(self._cursor, last):
            if e.name == "Announced":
                self.endpoints[bytes.fromhex(str(e.fields["learner"])[2:])] = str(
                    e.fields["endpoint"]
                )
            elif e.name in ("Finalized", "Skipped"):
                self._closed(e.name, e.fields)
        self._cursor = last + 1

    def _closed(self, name: str, fields: dict[str, Any]) -> None:
        if self.current_id is None:
            self._pending.append((name, fields))
            return
        r = int(fields["round_index"])
        if name == "Skipped":
            record = PeerRound(r, "skipped", None)
        else:
            wid = bytes(fields["weights"]).hex()
            accepted = bool(fields["accepted"])
            record = PeerRound(r, "accepted" if accepted else "rejected", wid)
            if accepted:
                self.learner.mli_accept_weights(self._weights(wid, learner_index=r % self.n))
                self.current_id = wid
        record.proposed = ("propose", r) in self._acted and r % self.n == self.index
        self.result.rounds.append(record)
        if self.on_round is not None:
            self.on_round(record)


def print_round(record: PeerRound) -> None:
    """One JSON line per closed round on stdout (what ``colearn peer`` prints)."""
    print(json.dumps(record.to_dict()), flush=True)
