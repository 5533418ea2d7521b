"""The audit: rebuild an experiment's history from the chain's events alone and check
the experiment directory against it.

:func:`verify` checks, and names each discrepancy precisely:

- the code at the contract's address is the contract this package ships;
- the contract's registered learners, threshold and initial weights are the
  experiment's (``ledger.json``, the stored config, the initial blob);
- every round: its proposer, its committee (with a committee: the members the chain's
  seed for the round draws, against the directory's record of them), its outcome
  (accepted, rejected, skipped), the weights id voted on, each eligible learner's
  ballot, and the recount of the tally from the ballots
  (``approvals * den >= num * eligible``, as the contract and ``tally.py`` count),
  against the round's JSON record *and* its rows in the ``rounds`` and ``votes``
  tables;
- every recorded vote signature: made by that learner's key over exactly that
  (experiment, round, weights id, ballot);
- every accepted weights id (and the initial one) is in the blob store with bytes
  that hash to it, and the final model is the last accepted one.

What it cannot check is in ``docs/ledger.md``: the chain proves who voted how on which
weights id, not that a learner validated honestly.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from colearning.core.exceptions import LedgerError, StoreError
from colearning.core.plans import draw_committee
from colearning.core.records import RoundRecord
from colearning.core.store import DB_NAME, ExperimentStore
from colearning.ledger import eip712
from colearning.ledger.chain import Chain, EmbeddedChain
from colearning.ledger.client import LedgerClient, decode_events
from colearning.ledger.contract import ABSTAIN, APPROVE, REJECT, SKIP_PASSED, artifact
from colearning.ledger.eip712 import Signature
from colearning.ledger.history import BALLOT_NAMES, ChainHistory, ChainRound, rebuild
from colearning.ledger.keys import Key
from colearning.ledger.session import CHAIN_DB, INFO_NAME, LedgerInfo, ledger_dir, open_chain

_CODES = {"approve": APPROVE, "reject": REJECT, "abstain": ABSTAIN}


@dataclass(frozen=True)
class Discrepancy:
    """One thing the directory and the chain disagree on."""

    where: str  # "round 3", "round 3, learner-1", "contract", "blobs"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class AuditReport:
    directory: str
    contract: str
    chain: str
    rounds_in_directory: int
    rounds_on_chain: int
    accepted_on_chain: int
    final_weights_id: str | None
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "directory": self.directory,
            "contract": self.contract,
            "chain": self.chain,
            "rounds_in_directory": self.rounds_in_directory,
            "rounds_on_chain": self.rounds_on_chain,
            "accepted_on_chain": self.accepted_on_chain,
            "final_weights_id": self.final_weights_id,
            "discrepancies": [str(d) for d in self.discrepancies],
        }


def load_history(
    directory: str | Path, chain_url: str | None = None
) -> tuple[LedgerInfo, Chain, LedgerClient, ChainHistory]:
    """The ledger record, chain, client and on-chain history of an experiment directory
    (the embedded chain opened read-only). The caller closes the chain."""
    path = Path(directory)
    info = LedgerInfo.read(ledger_dir(path) / INFO_NAME)
    if info.chain == "embedded":
        if chain_url:
            raise LedgerError(
                f"this experiment's ledger is on the embedded chain kept in "
                f"{ledger_dir(path) / CHAIN_DB}; drop --chain-url"
            )
        chain: Chain = EmbeddedChain(ledger_dir(path) / CHAIN_DB, read_only=True)
    else:
        chain = open_chain(path, info, chain_url)
    try:
        client = LedgerClient(chain, bytes.fromhex(info.contract[2:]), Key.generate())
        events = decode_events(client.contract, chain.logs(client.address, info.deploy_block or 0))
        return info, chain, client, rebuild(events)
    except BaseException:
        chain.close()
        raise


def verify(
    directory: str | Path, chain_url: str | None = None, replay: bool = False
) -> AuditReport:
    """Audit the experiment in ``directory`` against its chain (see the module doc).

    ``replay`` also rebuilds the embedded chain from its stored signed transactions
    and compares every block's state root (slower).
    """
    path = Path(directory)
    if is_peer_record(path):
        return verify_peer(path, chain_url)
    store = ExperimentStore.open(path, readonly=True)
    try:
        info, chain, client, history = load_history(path, chain_url)
        try:
            report = _Audit(path, store, info, chain, client, history).run(replay)
        finally:
            chain.close()
    finally:
        store.close()
    return report


class _Audit:
    def __init__(
        self,
        path: Path,
        store: ExperimentStore,
        info: LedgerInfo,
        chain: Chain,
        client: LedgerClient,
        history: ChainHistory,
    ) -> None:
        self.path = path
        self.store = store
        self.info = info
        self.chain = chain
        self.client = client
        self.history = history
        self.found: list[Discrepancy] = []
        self._stored: list[RoundRecord] = []
        self.ids = list(info.learners)
        self.address = {lid: bytes.fromhex(a[2:]) for lid, a in info.learners.items()}
        self.by_address = {a: lid for lid, a in self.address.items()}

    def flag(self, where: str, what: str) -> None:
        self.found.append(Discrepancy(where, what))

    def run(self, replay: bool) -> AuditReport:
        records = self._records()
        closed = self.history.closed_rounds()
        self._contract(replay)
        self._config()
        for text in self.history.anomalies:
            self.flag("chain", text)
        rows = self._rows()
        chain_rounds = {r.round_index: r for r in closed}
        last_db = max(records) if records else -1
        for r in sorted(set(records) | set(chain_rounds)):
            record, onchain = records.get(r), chain_rounds.get(r)
            if record is None:
                assert onchain is not None
                hint = (
                    " (the run was stopped after the chain closed it; `colearn run --resume "
                    f"{self.path}` records it)"
                    if r == last_db + 1
                    else ""
                )
                self.flag(
                    f"round {r}",
                    f"closed on chain ({onchain.status}) but missing from the directory{hint}",
                )
            elif onchain is None:
                self.flag(
                    f"round {r}",
                    f"the directory records it ({record.status}) but the chain has not closed it",
                )
            else:
                self._round(record, onchain, rows.get(r, {}))
        self._blobs(closed)
        final = self._final(records)
        return AuditReport(
            directory=str(self.path),
            contract=self.info.contract,
            chain=self.chain.where,
            rounds_in_directory=len(records),
            rounds_on_chain=len(closed),
            accepted_on_chain=sum(r.status == "accepted" for r in closed),
            final_weights_id=final,
            discrepancies=self.found,
        )

    # -- the directory --------------------------------------------------------------

    def _records(self) -> dict[int, RoundRecord]:
        """Every round the directory holds that can be read. The store refuses a
        damaged directory on ordinary reads; the audit reads past the damage (each
        problem the store's own checks find is a discrepancy) so it can compare every
        readable round with the chain."""
        try:
            inspection = self.store.inspect()
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.path}: a round's record cannot be read ({exc})") from exc
        for damage in inspection.damage:
            where = "directory" if damage.round_index is None else f"round {damage.round_index}"
            self.flag(where, f"the directory's own checks: {damage.message}")
        self._stored = inspection.records
        return {r.round_index: r for r in inspection.records}

    def _rows(self) -> dict[int, dict[str, Any]]:
        """The relational rows of each round: ``rounds`` and the candidate's ``votes``."""
        conn = sqlite3.connect(f"file:{self.path / DB_NAME}?mode=ro", uri=True)
        try:
            out: dict[int, dict[str, Any]] = {}
            for row in conn.execute(
                "SELECT round_index, status, candidate_weights_id, current_weights_id, "
                "approvals, eligible, record_json FROM rounds"
            ):
                out[int(row[0])] = {
                    "status": row[1],
                    "candidate": row[2],
                    "current": row[3],
                    "approvals": row[4],
                    "eligible": row[5],
                    "json": row[6],
                    "votes": {},
                }
            for r, lid, ballot in conn.execute(
                "SELECT round_index, learner_id, ballot FROM votes WHERE stage = 'candidate'"
            ):
                if int(r) in out:
                    out[int(r)]["votes"][lid] = ballot
            return out
        finally:
            conn.close()

    # -- the contract ---------------------------------------------------------------

    def _contract(self, replay: bool) -> None:
        shipped = artifact()
        code = self.chain.code(self.client.address)
        if not code:
            self.flag("contract", f"no code at {self.info.contract} on {self.chain.where}")
        elif code[: len(shipped.runtime)] != shipped.runtime:
            self.flag(
                "contract",
                f"the code at {self.info.contract} is not colearning's ledger contract "
                f"({shipped.compiler}, {shipped.evm_version}, source sha256 "
                f"{shipped.source_sha256[:12]}...)",
            )
        if replay and isinstance(self.chain, EmbeddedChain):
            for problem in self.chain.replay_check():
                self.flag("chain", problem)

    def _config(self) -> None:
        opened = self.history.opened
        if opened is None:
            self.flag("contract", "no Opened event: the contract's deployment is not on chain")
            return
        chain_learners = [to_checksum_address(a) for a in self.history.learners]
        recorded = list(self.info.learners.values())
        if chain_learners != recorded:
            self.flag(
                "ledger.json",
                f"registers learners {recorded}; the contract registered {chain_learners}",
            )
        if self.store.learner_ids != self.ids:
            self.flag(
                "learners",
                f"the directory has learners {self.store.learner_ids}; ledger.json has {self.ids}",
            )
        if "0x" + bytes(opened["experiment"]).hex() != self.info.experiment:
            self.flag("ledger.json", "its experiment id is not the contract's")
        from colearning.core.tally import threshold_fraction

        config = self.store.config
        want = threshold_fraction(float(config.get("vote_threshold") or 0.5))
        got = (int(opened["threshold_num"]), int(opened["threshold_den"]))
        if got != want:
            self.flag(
                "config",
                f"vote_threshold {config.get('vote_threshold')} is {want[0]}/{want[1]}; the "
                f"contract holds {got[0]}/{got[1]}",
            )
        initial = self.store.initial_weights_id
        if initial != bytes(opened["initial_weights"]).hex():
            self.flag(
                "initial weights",
                f"the directory starts from {_short(initial)}, the contract from "
                f"{_short(bytes(opened['initial_weights']).hex())}",
            )

    # -- a round --------------------------------------------------------------------

    def _round(self, record: RoundRecord, onchain: ChainRound, row: dict[str, Any]) -> None:
        r = record.round_index
        where = f"round {r}"
        n = len(self.ids)
        proposer_id = self.ids[r % n]
        if onchain.proposer != self.address[proposer_id]:
            self.flag(
                where, f"the chain's proposer is {self._name(onchain.proposer)}, not {proposer_id}"
            )
        if record.proposer_id != proposer_id:
            self.flag(where, f"the directory's proposer is {record.proposer_id}, not {proposer_id}")

        # outcome: a round with no usable proposal (skipped, or refused as malformed)
        # closes on chain with the proposer's pass
        decided_by = record.decision.decided_by if record.decision else None
        passed = record.status == "skipped" or decided_by == "check"
        if passed:
            if onchain.status != "skipped":
                self.flag(
                    where,
                    f"the directory has no proposal voted on ({record.status}); the chain "
                    f"{onchain.status} weights {_short(_hex(onchain.weights))}",
                )
            elif onchain.skip_reason != SKIP_PASSED:
                self.flag(where, "the chain skipped it at the proposal deadline, not a pass")
            self._row_status(where, record, row)
            return
        if onchain.status != record.status:
            self.flag(where, f"the directory says {record.status}, the chain {onchain.status}")
        if record.weights_id != _hex(onchain.weights):
            self.flag(
                where,
                f"the directory's candidate is {_short(record.weights_id)}, the chain's "
                f"{_short(_hex(onchain.weights))}",
            )
        self._row_status(where, record, row)
        voters = self._voters(record)
        self._ballots(record, onchain, row, voters)
        self._recount(record, onchain, len(voters))

    def _voters(self, record: RoundRecord) -> list[str]:
        """The round's eligible voters as the chain decides them: every non-proposer,
        or, with a committee, the members drawn from the seed the contract kept for the
        round (checked against the directory's record of the committee)."""
        r = record.round_index
        n = len(self.ids)
        proposer = r % n
        size = int((self.history.opened or {}).get("committee") or 0)
        if size == 0:
            if record.committee is not None:
                self.flag(
                    f"round {r}",
                    "the directory records a committee; the contract has none (every "
                    "non-proposer votes)",
                )
            return [lid for i, lid in enumerate(self.ids) if i != proposer]
        seed = self.client.round_seed(r)
        drawn = [self.ids[i] for i in draw_committee(seed, n, size, [proposer])]
        if record.committee is None or sorted(record.committee) != sorted(drawn):
            self.flag(
                f"round {r}",
                f"the directory's committee is {record.committee}; the chain's seed "
                f"{seed.hex()[:12]}... draws {drawn}",
            )
        return drawn

    def _row_status(self, where: str, record: RoundRecord, row: dict[str, Any]) -> None:
        if not row:
            return
        if row["status"] != record.status:
            self.flag(
                where,
                f"the rounds table says {row['status']}, its record says {record.status}",
            )
        if row["candidate"] != record.weights_id:
            self.flag(
                where,
                f"the rounds table's candidate is {_short(row['candidate'])}, its record's "
                f"{_short(record.weights_id)}",
            )
        if row["current"] != record.current_weights_id:
            self.flag(
                where,
                f"the rounds table's current weights are {_short(row['current'])}, its "
                f"record's {_short(record.current_weights_id)}",
            )

    def _ballots(
        self, record: RoundRecord, onchain: ChainRound, row: dict[str, Any], voters: list[str]
    ) -> None:
        r = record.round_index
        votes = {v.learner_id: v for v in record.votes}
        weights = onchain.weights or bytes(32)
        experiment = bytes.fromhex(self.info.experiment[2:])
        eligible = set(voters)
        for i, lid in enumerate(self.ids):
            if lid not in eligible:
                if i in onchain.ballots:
                    self.flag(f"round {r}, {lid}", "the chain holds a ballot of a non-voter")
                continue
            where = f"round {r}, {lid}"
            chain_code = onchain.ballots.get(i)
            chain_name = "no ballot" if chain_code is None else BALLOT_NAMES[chain_code]
            vote = votes.get(lid)
            mine = vote.ballot.value if vote is not None else "no vote"
            if vote is None or _CODES.get(mine) != chain_code:
                self.flag(where, f"the directory's vote is {mine}, the chain's {chain_name}")
            table = row.get("votes", {}).get(lid) if row else None
            if row and table != mine:
                self.flag(where, f"the votes table says {table}, the round's record says {mine}")
            if vote is None or vote.ballot.value not in _CODES:
                continue
            if not vote.signature:
                self.flag(where, "the directory holds no signature for this vote")
                continue
            try:
                sig = Signature.from_hex(vote.signature)
            except ValueError:
                self.flag(where, "the recorded signature is not a 64-byte compact signature")
                continue
            digest = eip712.vote_digest(
                self.client.domain, experiment, r, weights, _CODES[vote.ballot.value]
            )
            if eip712.recover(digest, sig) != self.address[lid]:
                self.flag(
                    where,
                    f"the recorded signature is not {lid}'s over ({mine}, round {r}, weights "
                    f"{_short(weights.hex())})",
                )

    def _recount(self, record: RoundRecord, onchain: ChainRound, eligible: int) -> None:
        where = f"round {record.round_index}"
        opened = self.history.opened or {}
        num, den = int(opened.get("threshold_num", 1)), int(opened.get("threshold_den", 2))
        approvals = sum(1 for code in onchain.ballots.values() if code == APPROVE)
        if onchain.approvals != approvals or onchain.eligible != eligible:
            self.flag(
                where,
                f"the contract counted {onchain.approvals}/{onchain.eligible}; its ballots "
                f"recount to {approvals}/{eligible}",
            )
        passes = approvals * den >= num * eligible
        if (onchain.status == "accepted") != passes:
            self.flag(
                where,
                f"the contract {onchain.status} with {approvals}/{eligible} approvals and "
                f"threshold {num}/{den}; the rule says {'accept' if passes else 'reject'}",
            )
        d = record.decision
        if d is not None and (d.approvals, d.eligible) != (approvals, eligible):
            self.flag(
                where,
                f"the directory's decision counts {d.approvals}/{d.eligible}, the chain's "
                f"ballots {approvals}/{eligible}",
            )

    # -- weights --------------------------------------------------------------------

    def _blobs(self, closed: Sequence[ChainRound]) -> None:
        wanted: list[tuple[str, str]] = []
        initial = self.history.initial_weights
        if initial is not None:
            wanted.append(("initial weights", initial.hex()))
        wanted += [(f"round {r.round_index}", _hex(r.weights) or "") for r in closed
                   if r.status == "accepted"]  # fmt: skip
        for where, wid in wanted:
            path = self.store.blob_path(wid)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                self.flag(
                    where, f"accepted weights {_short(wid)} are not in the blob store ({path})"
                )
                continue
            if hashlib.sha256(data).hexdigest() != wid:
                self.flag(
                    where,
                    f"the blob of accepted weights {_short(wid)} ({path}) does not hash to its "
                    "id: its bytes were changed",
                )

    def _final(self, records: dict[int, RoundRecord]) -> str | None:
        chain_final = _hex(self.history.current_weights())
        state = self.client.state()
        if _hex(state.current_weights) != chain_final:
            self.flag(
                "final model",
                f"the contract's current weights {_short(_hex(state.current_weights))} are "
                f"not the last accepted {_short(chain_final)}",
            )
        stored = (
            self._stored[-1].current_weights_id if self._stored else self.store.initial_weights_id
        )
        if (
            records
            and stored != chain_final
            and max(records) + 1 >= len(self.history.closed_rounds())
        ):
            self.flag(
                "final model",
                f"the directory's final weights are {_short(stored)}, the last accepted on "
                f"chain {_short(chain_final)}",
            )
        summary = self.store.get_meta("summary")
        if isinstance(summary, dict) and summary.get("final_weights_id") not in (None, stored):
            self.flag(
                "final model",
                f"the summary's final weights {_short(summary.get('final_weights_id'))} are "
                f"not the last round's {_short(stored)}",
            )
        return chain_final

    def _name(self, address: bytes | None) -> str:
        if address is None:
            return "nobody"
        return self.by_address.get(address, to_checksum_address(address))


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _short(wid: str | None) -> str:
    return "none" if not wid else f"{wid[:12]}..."


def dumps(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=1)


# -- a peer's record (colearn peer --out DIR) ----------------------------------------------


def is_peer_record(directory: str | Path) -> bool:
    from colearning.ledger.peer import PEER_RECORD

    return (Path(directory) / PEER_RECORD).is_file()


def verify_peer(directory: str | Path, chain_url: str | None = None) -> AuditReport:
    """Audit a peer's record directory (``colearn peer --out DIR``) against the chain.

    A peer holds no one else's votes or scores, so this checks what the chain and the
    party can: the code at the address is the shipped contract (which checked every
    ballot's and proposal's signature with ``ecrecover`` as it came); the registered
    learners and experiment are the recorded ones; every closed round's proposer is
    ``round_index % n``, no proposer voted, and the tally recounts from the ballots;
    every round the peer recorded has the chain's outcome and weights id, and its own
    ballot is the chain's; the initial and every accepted weights are in ``blobs/``
    with bytes that hash to their ids; and the peer's final weights are the last
    accepted on chain.
    """
    from colearning.ledger.peer import BLOBS, PEER_RECORD

    path = Path(directory)
    try:
        record = json.loads((path / PEER_RECORD).read_text())
    except (OSError, ValueError) as exc:
        raise LedgerError(
            f"{path / PEER_RECORD} cannot be read as a peer's record ({exc})"
        ) from exc
    info, chain, client, history = load_history(path, chain_url)
    found: list[Discrepancy] = []

    def flag(where: str, what: str) -> None:
        found.append(Discrepancy(where, what))

    try:
        shipped = artifact()
        code = chain.code(client.address)
        if not code or code[: len(shipped.runtime)] != shipped.runtime:
            flag("contract", f"the code at {info.contract} is not colearning's ledger contract")
        state = client.state()
        committee = int((history.opened or {}).get("committee") or 0)
        # with a committee, each round's seed on chain draws who may vote
        seeds = (
            {r.round_index: client.round_seed(r.round_index) for r in history.closed_rounds()}
            if committee
            else {}
        )
    finally:
        chain.close()
    for text in history.anomalies:
        flag("chain", text)
    learners = history.learners
    n = len(learners)
    if [to_checksum_address(a) for a in learners] != list(info.learners.values()):
        flag("ledger.json", "its learners are not the ones the contract registered")
    if history.opened is not None and (
        "0x" + bytes(history.opened["experiment"]).hex() != info.experiment
    ):
        flag("ledger.json", "its experiment id is not the contract's")
    opened = history.opened or {}
    num, den = int(opened.get("threshold_num", 1)), int(opened.get("threshold_den", 2))
    closed = history.closed_rounds()
    for r in closed:
        where = f"round {r.round_index}"
        if n and r.proposer is not None and r.proposer != learners[r.round_index % n]:
            flag(
                where,
                f"proposed by {to_checksum_address(r.proposer)}, not learner {r.round_index % n}",
            )
        if r.status == "skipped":
            continue
        if n and (r.round_index % n) in r.ballots:
            flag(where, "the proposer cast a ballot on its own proposal")
        eligible = n - 1
        if committee and n:
            members = draw_committee(seeds[r.round_index], n, committee, [r.round_index % n])
            outside = sorted(set(r.ballots) - set(members))
            if outside:
                flag(where, f"learners {outside} cast ballots outside the round's committee")
            eligible = committee
        approvals = sum(1 for c in r.ballots.values() if c == APPROVE)
        if (r.approvals, r.eligible) != (approvals, eligible):
            flag(
                where,
                f"the contract counted {r.approvals}/{r.eligible}; its ballots recount to "
                f"{approvals}/{eligible}",
            )
        if (r.status == "accepted") != (approvals * den >= num * eligible):
            flag(where, f"{r.status} with {approvals}/{eligible} approvals against {num}/{den}")
    mine = int(record.get("learner_index", -1))
    by_round = {r.round_index: r for r in closed}
    names = {v: k for k, v in BALLOT_NAMES.items()}
    for seen in record.get("rounds", []):
        r_index = int(seen["round_index"])
        where = f"round {r_index}, learner-{mine}"
        onchain = by_round.get(r_index)
        if onchain is None:
            flag(where, f"the peer recorded it {seen['status']}; the chain has not closed it")
            continue
        if seen["status"] != onchain.status or (
            onchain.status != "skipped" and seen["weights_id"] != _hex(onchain.weights)
        ):
            flag(
                where,
                f"the peer recorded {seen['status']} {_short(seen['weights_id'])}, the chain "
                f"{onchain.status} {_short(_hex(onchain.weights))}",
            )
        ballot = seen.get("my_ballot")
        chain_ballot = onchain.ballots.get(mine)
        if ballot is not None and names.get(ballot) != chain_ballot:
            flag(
                where,
                f"the peer signed {ballot}; the chain holds "
                f"{'no ballot' if chain_ballot is None else BALLOT_NAMES.get(chain_ballot)}",
            )
    wanted = [("initial weights", _hex(history.initial_weights) or "")]
    recorded = {int(seen["round_index"]) for seen in record.get("rounds", [])}
    wanted += [(f"round {r.round_index}", _hex(r.weights) or "") for r in closed
               if r.status == "accepted" and r.round_index in recorded]  # fmt: skip
    for where, wid in wanted:
        blob = path / BLOBS / f"{wid}.safetensors"
        try:
            data = blob.read_bytes()
        except FileNotFoundError:
            flag(where, f"accepted weights {_short(wid)} are not in the peer's blobs ({blob})")
            continue
        if hashlib.sha256(data).hexdigest() != wid:
            flag(where, f"the blob of {_short(wid)} ({blob}) does not hash to its id: changed")
    chain_final = _hex(history.current_weights())
    if _hex(state.current_weights) != chain_final:
        flag("final model", "the contract's current weights are not the last accepted")
    if (
        len(record.get("rounds", [])) >= len(closed)
        and record.get("current_weights_id") != chain_final
    ):
        flag(
            "final model",
            f"the peer's final weights are {_short(record.get('current_weights_id'))}, the "
            f"last accepted on chain {_short(chain_final)}",
        )
    return AuditReport(
        directory=str(path),
        contract=info.contract,
        chain=chain.where,
        rounds_in_directory=len(record.get("rounds", [])),
        rounds_on_chain=len(closed),
        accepted_on_chain=sum(r.status == "accepted" for r in closed),
        final_weights_id=chain_final,
        discrepancies=found,
    )
