"""Peer mode: one party of an experiment, no coordinator.

A :class:`Peer` holds one learner and one key. It follows the contract (its state and
events) and acts on its own behalf, with its own transactions:

- its turn to propose: it trains, publishes the weights by id through its
  :class:`WeightsExchange` and proposes the id;
- another's proposal: it fetches the weights by id from the proposer's announced
  endpoint, checks they hash to the id and fit the shared model, validates them on its
  own data, signs its ballot and sends it (with a committee, only a member of the
  round's committee votes; the others fetch the candidate all the same, while its
  proposer serves it, to adopt it if it is accepted);
- a round past its deadline (a proposer or voter that went quiet): anyone may close
  it, so it sends ``skip`` or ``finalize`` (a race with another peer is harmless);
- ``Finalized``: it adopts the weights if accepted;
- done (``rounds`` closed): it serves for ``linger`` seconds more before it returns, so
  that a slower party can still fetch the last proposal from it.

Weights travel through the :class:`WeightsExchange` seam: :class:`GrpcExchange`
(each party serves its own published weights by id over gRPC, the network layer's
``colearning.v1.Weights`` service, with mutual TLS; ``colearn peer --serve``) and
:class:`DirectoryExchange` (parties that share a file system). Whatever the exchange,
the bytes fetched are checked against the id before anything uses them.

With ``record_dir`` a peer keeps what ``colearn ledger verify`` audits: where the
contract is (``ledger/ledger.json``), the rounds as it saw them and its own ballots
(``peer.json``), and the blob of every weights it adopted (``blobs/ID.safetensors``).
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
    def fetch(self, wid: str, endpoint: str, source: int | None = None) -> bytes:
        """The blob with id ``wid`` from learner ``source`` (its index in the contract),
        which announced ``endpoint`` (the caller checks the bytes against the id)."""

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

    def fetch(self, wid: str, endpoint: str, source: int | None = None) -> bytes:
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


class GrpcExchange(WeightsExchange):
    """Serve this party's published weights by id over gRPC and fetch the others'
    (:mod:`colearning.network.exchange`).

    ``certs`` is a directory with ``ca.pem`` and this party's ``NAME.pem``/``NAME.key``
    (``colearn certs``); then everything is mutual TLS, and the party at index I must
    present a certificate naming ``learner-I``. Without ``certs`` it is plaintext, on
    both sides. ``announce`` is the ``HOST:PORT`` others reach (default: where it
    listens). Bytes are verified against the id as they arrive; ``publish`` refuses to
    serve bytes that are not their id's.
    """

    def __init__(
        self,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        certs: str | Path | None = None,
        announce: str | None = None,
        max_bytes: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        from colearning.network import exchange, tls
        from colearning.network.transfer import DEFAULT_MAX_BYTES

        self._fetch = exchange.fetch_weights
        self.name = name
        self.timeout = timeout
        self.max_bytes = max_bytes or DEFAULT_MAX_BYTES
        server_creds = tls.server_credentials(certs, name) if certs is not None else None
        self.credentials = tls.client_credentials(certs, name) if certs is not None else None
        self.server = exchange.WeightsServer(
            name, host=host, port=port, credentials=server_creds
        ).start()
        scheme = "grpcs" if certs is not None else "grpc"
        self._endpoint = f"{scheme}://{announce or self.server.address}"
        exchange.parse_endpoint(self._endpoint)

    def endpoint(self) -> str:
        return self._endpoint

    def publish(self, wid: str, blob: bytes) -> None:
        if hashlib.sha256(blob).hexdigest() != wid:
            raise WeightsError(f"refusing to serve bytes that do not hash to {wid[:12]}...")
        self.server.publish(wid, blob)

    def fetch(self, wid: str, endpoint: str, source: int | None = None) -> bytes:
        return self._fetch(
            endpoint,
            wid,
            credentials=self.credentials,
            server_name=None if source is None else f"learner-{source}",
            max_bytes=self.max_bytes,
            timeout=self.timeout,
        )

    def close(self) -> None:
        self.server.stop()


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


#: Seconds a finished peer keeps serving (:class:`Peer`'s ``linger``).
DEFAULT_LINGER = 2.0


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
        record_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 300.0,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        self.client = client
        self.linger = linger
        self.record_dir = None if record_dir is None else Path(record_dir)
        self.start_timeout = start_timeout
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
        self._ballots: dict[int, str] = {}  # round -> the ballot this peer signed

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
            self._blobs[self.initial_id] = blob
            initial = own
        else:
            initial = self._initial_weights()
        self.learner.mli_accept_weights(initial)
        self.current_id = self.initial_id
        self._record_start()
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
        self._read_events()  # the last round may have closed since the events were read
        self.result.final_weights_id = str(self.current_id)
        self._record()
        if self.linger > 0:  # a slower party may still fetch this one's last proposal
            time.sleep(self.linger)
        return self.result

    def _initial_weights(self) -> Weights:
        """The initial weights from learner 0 (whose model starts the experiment), once
        it has announced where it serves them and its server answers."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._read_events()
            try:
                return self._weights(self.initial_id, learner_index=0)
            except LedgerError as exc:  # not announced or not up yet
                if time.monotonic() > deadline:
                    raise LedgerError(
                        f"the initial weights {self.initial_id[:12]}... could not be fetched "
                        f"from learner 0 within {self.start_timeout:.0f} s ({exc}); start "
                        "learner 0's peer, which serves them"
                    ) from None
            time.sleep(self.poll_seconds)

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
            and state.eligible(self.index)  # a member of the round's committee, if any
            and ("vote", r) not in self._acted
            and not (state.voted >> self.index) & 1
        ):
            self._acted.add(("vote", r))
            if now <= state.deadline:
                self._vote(r, state.candidate.hex())
                return True
        if (
            proposer != self.index
            and not state.eligible(self.index)
            and ("fetch", r) not in self._acted
        ):
            # not in this round's committee: no ballot, but fetch the candidate now, while
            # its proposer surely serves it (it waits for the ballots), so that this peer
            # can adopt it if accepted even when the proposer has finished and gone
            self._acted.add(("fetch", r))
            try:
                self._fetched(state.candidate.hex(), learner_index=proposer)
            except (ColearningError, WeightsError) as exc:  # tried again on Finalized
                print(f"round {r}: could not fetch the candidate yet ({exc})", file=sys.stderr)
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
            weights = self._fetched(wid, learner_index=r % self.n)
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
        if self._race(lambda: self.client.vote(r, Ballot(self.index, code, sig), sender=self.key)):
            self._ballots[r] = {APPROVE: "approve", REJECT: "reject", ABSTAIN: "abstain"}[code]

    def _fetched(self, wid: str, learner_index: int, attempts: int = 3) -> Weights:
        """:meth:`_weights`, trying again a moment later when the proposer could not be
        reached (a server restarting, a dropped connection); bytes that fail the checks
        are not tried again."""
        for attempt in range(1, attempts + 1):
            try:
                return self._weights(wid, learner_index)
            except LedgerError:
                if attempt == attempts:
                    raise
                time.sleep(self.poll_seconds * attempt)
        raise AssertionError("unreachable")

    def _weights(self, wid: str, learner_index: int) -> Weights:
        """The weights with id ``wid``, from memory or from the learner that has them,
        checked against the id and the shared model's shape."""
        blob = self._blobs.get(wid)
        if blob is None:
            address = self.client.config().learners[learner_index]
            endpoint = self.endpoints.get(address)
            if endpoint is None:
                raise LedgerError(f"learner {learner_index} has announced no endpoint")
            blob = self.exchange.fetch(wid, endpoint, learner_index)
            actual = hashlib.sha256(blob).hexdigest()
            if actual != wid:
                raise WeightsError(
                    f"the bytes learner {learner_index} served for {wid[:12]}... hash to "
                    f"{actual[:12]}...: substituted or damaged; not used"
                )
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
                self._keep(wid)
        record.proposed = ("propose", r) in self._acted and r % self.n == self.index
        record.my_ballot = self._ballots.get(r)
        self.result.rounds.append(record)
        self._record()
        if self.on_round is not None:
            self.on_round(record)

    # -- what ``colearn ledger verify`` audits (with record_dir) ----------------------

    def _keep(self, wid: str) -> None:
        if self.record_dir is None:
            return
        target = self.record_dir / BLOBS / f"{wid}.safetensors"
        if not target.exists():
            _write_atomic(target, self._blobs[wid])

    def _record_start(self) -> None:
        if self.record_dir is None:
            return
        from eth_utils import to_checksum_address

        from colearning.ledger.contract import artifact
        from colearning.ledger.session import INFO_NAME, LedgerInfo, ledger_dir

        config = self.client.config()
        chain = self.client.chain
        info = LedgerInfo(
            chain=chain.kind,
            chain_id=chain.chain_id,
            chain_url=getattr(chain, "url", None),
            contract=to_checksum_address(self.client.address),
            deploy_nonce=0,
            experiment="0x" + config.experiment.hex(),
            operator="",
            learners={
                f"learner-{i}": to_checksum_address(a) for i, a in enumerate(config.learners)
            },
            vote_mode="peer",
            contract_source_sha256=artifact().source_sha256,
        )
        _write_atomic(ledger_dir(self.record_dir) / INFO_NAME, info.to_json().encode())
        self._keep(self.initial_id)
        self._record()

    def _record(self) -> None:
        if self.record_dir is None or self.current_id is None:
            return
        document = {
            "learner_index": self.index,
            "address": self.key.checksum,
            "endpoint": self.exchange.endpoint(),
            "initial_weights_id": self.initial_id,
            "current_weights_id": self.current_id,
            "rounds": [r.to_dict() for r in self.result.rounds],
        }
        _write_atomic(
            self.record_dir / PEER_RECORD, (json.dumps(document, indent=1) + "\n").encode()
        )


#: Files of a peer's record directory (``colearn peer --out DIR``).
PEER_RECORD = "peer.json"
BLOBS = "blobs"


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)


def print_round(record: PeerRound) -> None:
    """One JSON line per closed round on stdout (what ``colearn peer`` prints)."""
    print(json.dumps(record.to_dict()), flush=True)
